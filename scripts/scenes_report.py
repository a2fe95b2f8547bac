#!/usr/bin/env python3
"""The Table III-style table of scripts/scenes-study.sh, from its published folder.

    scenes_report.py DIR      (DIR/results/<row>-s<seed>.csv from agcl evaluate --metric miou,
                               DIR/runs/<run>.seconds) -> Markdown on stdout

Per row: mIoU of each seed, their mean and sample standard deviation, the relative change of the
mean against the random-initialisation baseline (as Table III's +2.75 %), each class's IoU as the
mean over seeds, and the coarse network's own mIoU (the stage that gives the attention).
"""
import csv
import statistics
import sys
from pathlib import Path

ROWS = [
    ("random-e2e", "Random init., end to end (DeepLabv3+ baseline)"),
    ("agcl-frozen", "AGCL pre-trained, encoder frozen (paper's protocol)"),
    ("agcl-finetune", "AGCL pre-trained, fine-tuned"),
]


def read_miou(path):
    """(mean IoU, {class name: IoU}) of one agcl evaluate --metric miou CSV."""
    classes, mean = {}, None
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["class"] == "mean":
                mean = float(row["iou"])
            elif row["iou"] != "":
                classes[row["name"]] = float(row["iou"])
    if mean is None:
        raise SystemExit(f"{path}: no mean row")
    return mean, classes


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    root = Path(sys.argv[1])
    results = root / "results"
    lines = ["| row | seeds | mIoU per seed | mean ± sd | vs baseline | coarse mIoU |", "|---|---|---|---|---|---|"]
    per_class, names, baseline = {}, [], None
    for key, title in ROWS:
        seeds = sorted(p.name[len(key) + 2:-4] for p in results.glob(f"{key}-s*.csv") if ".coarse" not in p.name)
        seeds = [s for s in seeds if s.isdigit()]
        if not seeds:
            lines.append(f"| {title} | 0 | (not run) | | | |")
            continue
        values, coarse = [], []
        for s in seeds:
            mean, classes = read_miou(results / f"{key}-s{s}.csv")
            values.append(mean)
            for name, iou in classes.items():
                per_class.setdefault(key, {}).setdefault(name, []).append(iou)
                if name not in names:
                    names.append(name)
            coarse_file = results / f"{key}-s{s}.coarse.csv"
            if coarse_file.exists():
                coarse.append(read_miou(coarse_file)[0])
        m = statistics.mean(values)
        sd = f"{statistics.stdev(values):.4f}" if len(values) > 1 else "- (one seed)"
        if key == "random-e2e":
            baseline = m
        change = "" if baseline is None or key == "random-e2e" else f"{100 * (m - baseline) / baseline:+.2f} %"
        lines.append(
            f"| {title} | {len(seeds)} | {', '.join(f'{v:.4f}' for v in values)} | {m:.4f} ± {sd} | {change} | "
            + (f"{statistics.mean(coarse):.4f}" if coarse else "")
            + " |"
        )
    lines += ["", "IoU per class (mean over seeds):", "", "| row | " + " | ".join(names) + " |",
              "|---|" + "---|" * len(names)]
    for key, title in ROWS:
        if key in per_class:
            cells = [f"{statistics.mean(per_class[key][n]):.4f}" if n in per_class[key] else "" for n in names]
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
    seconds = {p.name[:-8]: sum(int(x) for x in p.read_text().split()) for p in (root / "runs").glob("*.seconds")}
    if seconds:
        lines += ["", f"Training wall time over {len(seconds)} runs: {sum(seconds.values()) / 60:.1f} min "
                  "(2-core machine, shared with the phantom study running beside it)."]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
