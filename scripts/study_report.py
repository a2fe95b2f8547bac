#!/usr/bin/python3
"""Report of the paper's study on the phantom (scripts/phantom-study.sh): the main tables (encoder
frozen, the paper's protocol; fine-tuned), each row from several training seeds (mean +- standard
deviation over seeds of the mean Dice, per-organ means over seeds), Wilcoxon tests of AGCL
against each mode, and the Fig. 6 ablations (label fraction, temperature, pre-training
modalities) as tables and pictures.

    /usr/bin/python3 scripts/study_report.py STUDY_DIR [--agcl path/to/agcl]
    /usr/bin/python3 scripts/study_report.py STUDY_DIR --choose-encoder-lr LR [LR ...]

Reads STUDY_DIR/results/<run>.<split>.csv (agcl evaluate) and STUDY_DIR/runs/<run>.seconds;
writes STUDY_DIR/report.md, STUDY_DIR/report-*.csv (the tables' numbers), the pictures
STUDY_DIR/*.png and, for the tests, STUDY_DIR/compare/ (seed-averaged evaluations and agcl
compare's output). Runs not finished yet are shown as missing. --choose-encoder-lr prints the
encoder learning rate of the fine-tune protocol: the one whose validation mean Dice, averaged
over the agcl and random runs of seed 1, is highest.
"""
import argparse
import csv
import glob
import math
import os
import re
import statistics
import subprocess
import sys
from collections import OrderedDict, defaultdict

MODES = ["agcl", "sscl", "ce", "random"]
MODE_NAMES = {"agcl": "AGCL (Eq. 3)", "supcon": "SupCon", "sscl": "SSCL (Eq. 2)", "ce": "CE",
              "random": "RI (random init.)"}
SEEDS = [1, 2, 3]


def read_evaluation(path):
    """[(subject, image, modality, organ, dice)] of the rows whose reference has the organ."""
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["dice"] != "":
                rows.append((row["subject"], row["image"], row["modality"], row["organ"], float(row["dice"])))
    return rows


def organs_of(rows):
    return list(OrderedDict((r[3], None) for r in rows))


def summary(rows, modality=None):
    """(mean over organs of the organ's mean Dice over volumes, {organ: mean Dice})."""
    per = defaultdict(list)
    for subject, image, m, organ, dice in rows:
        if modality is None or m == modality:
            per[organ].append(dice)
    organ_means = OrderedDict((o, statistics.mean(v)) for o, v in per.items())
    return (statistics.mean(organ_means.values()) if organ_means else float("nan")), organ_means


def result_path(study, run, split):
    return os.path.join(study, "results", "%s.%s.csv" % (run, split))


def seeded_runs(study, pattern, split, seeds=SEEDS):
    """{seed: rows} of the runs pattern % seed that have results."""
    found = {}
    for seed in seeds:
        path = result_path(study, pattern % seed, split)
        if os.path.exists(path):
            found[seed] = read_evaluation(path)
    return found


def fmt(x, digits=3):
    return "n/a" if x is None or x != x else ("%." + str(digits) + "f") % x


def mean_sd(values):
    if not values:
        return "(not run yet)"
    if len(values) == 1:
        return "%.3f (1 seed)" % values[0]
    return "%.3f ± %.3f (%d seeds)" % (statistics.mean(values), statistics.stdev(values), len(values))


def averaged_csv(study, name, runs):
    """A CSV in agcl evaluate's columns (those compare reads) whose Dice is each (image, organ)'s
    mean over the seeds' runs; None without runs."""
    if not runs:
        return None
    values = defaultdict(list)
    keys = OrderedDict()
    for rows in runs.values():
        for subject, image, modality, organ, dice in rows:
            keys[(subject, image, modality, organ)] = None
            values[(image, organ)].append(dice)
    os.makedirs(os.path.join(study, "compare"), exist_ok=True)
    path = os.path.join(study, "compare", name + ".seed-mean.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["subject", "image", "modality", "organ", "label", "status", "dice"])
        for (subject, image, modality, organ) in keys:
            v = values[(image, organ)]
            w.writerow([subject, image, modality, organ, "", "ok", "%.6f" % statistics.mean(v)])
    return path


def compare(agcl, study, a, b, name):
    """agcl compare's overall row (pairs, means, p) of two seed-averaged evaluations."""
    if a is None or b is None:
        return None
    out = os.path.join(study, "compare", name + ".csv")
    subprocess.run([agcl, "compare", a, b, "--out", out], check=True, stdout=subprocess.DEVNULL)
    with open(out, newline="") as f:
        for row in csv.DictReader(f):
            if row["organ"].startswith("overall"):
                return row
    return None


def main_table(study, agcl, protocol, title, out, organs, csv_rows, pattern_of):
    """One main table: a row per mode, seeds 1-3 of pattern_of(mode) % seed on the test split."""
    out += ["### " + title, "",
            "| mode | mean Dice, mean ± sd over seeds | " + " | ".join(organs) + " |",
            "| --- | --- |" + " --- |" * len(organs)]
    averaged = {}
    for mode in MODES:
        runs = seeded_runs(study, pattern_of(mode), "test")
        means = [summary(rows)[0] for rows in runs.values()]
        organ_means = [statistics.mean(summary(rows)[1].get(o, float("nan")) for rows in runs.values())
                       if runs else None for o in organs]
        out.append("| %s | %s | %s |" % (MODE_NAMES[mode], mean_sd(means), " | ".join(fmt(v) for v in organ_means)))
        for seed, rows in runs.items():
            csv_rows.append([protocol, mode, seed, "%.4f" % summary(rows)[0]] +
                            ["%.4f" % summary(rows)[1].get(o, float("nan")) for o in organs])
        averaged[mode] = averaged_csv(study, "%s-%s" % (protocol, mode), runs)
    out += ["", "Wilcoxon signed-rank test (two-sided, `agcl compare`), AGCL against each mode: pairs are "
            "the 12 test subjects; a subject's value is its mean Dice over organs and its two phases, "
            "each volume's Dice first averaged over the seeds. The p-value covers the variation between "
            "test subjects of the seed-averaged models; the spread between seeds is the ± above.", "",
            "| AGCL vs | pairs | mean Dice AGCL | mean Dice other | p |", "| --- | --- | --- | --- | --- |"]
    for mode in MODES[1:]:
        row = compare(agcl, study, averaged["agcl"], averaged[mode], "%s-agcl-vs-%s" % (protocol, mode))
        if row is None:
            out.append("| %s | | | | (not run yet) |" % MODE_NAMES[mode])
        else:
            out.append("| %s | %s | %s | %s | %s |" % (MODE_NAMES[mode], row["pairs"], row["mean_dice_a"][:5],
                                                       row["mean_dice_b"][:5], row["pvalue"] or "n/a"))
    out.append("")
    return averaged


def boxplot(study, name, title, organs, runs_by_mode):
    """Fig. 5: Dice per test volume (seed-averaged) per organ and mode."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    present = [m for m in MODES if runs_by_mode.get(m)]
    if not present:
        return None
    data = {}
    for m in present:
        values = defaultdict(lambda: defaultdict(list))
        for rows in runs_by_mode[m].values():
            for subject, image, modality, organ, dice in rows:
                values[organ][image].append(dice)
        data[m] = {o: [statistics.mean(v) for v in per.values()] for o, per in values.items()}
    columns = 4
    rows_n = (len(organs) + columns - 1) // columns
    figure, axes = plt.subplots(rows_n, columns, figsize=(3.2 * columns, 2.6 * rows_n), squeeze=False)
    for k, organ in enumerate(organs):
        ax = axes[k // columns][k % columns]
        ax.boxplot([data[m].get(organ, []) or [float("nan")] for m in present], labels=present, widths=0.6)
        ax.set_title(organ, fontsize=9)
        ax.set_ylim(-0.02, 1.02)
        ax.tick_params(labelsize=7)
    for k in range(len(organs), rows_n * columns):
        axes[k // columns][k % columns].axis("off")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path = os.path.join(study, name + ".png")
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def line_plot(study, name, title, xlabel, series, xticks):
    """series: {label: [(x, mean, sd or None)]}."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if not any(series.values()):
        return None
    figure, ax = plt.subplots(figsize=(5, 3.4))
    for label, points in series.items():
        if points:
            xs, ys, sds = zip(*points)
            ax.errorbar(xs, ys, yerr=[s or 0 for s in sds], marker="o", capsize=3, label=label)
    ax.set_xscale("log")
    ax.set_xticks(xticks)
    ax.set_xticklabels([str(x) for x in xticks])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean Dice (test)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    figure.tight_layout()
    path = os.path.join(study, name + ".png")
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def embedding_summary(study, run):
    """(organ, modality, modality x organ) 1-NN accuracies from agcl embed's output, or None."""
    path = os.path.join(study, "embeddings", run, "embed.out")
    if not os.path.exists(path):
        return None
    m = re.search(r"organ ([0-9.]+), modality ([0-9.]+), modality x organ ([0-9.]+)", open(path).read())
    return tuple(float(v) for v in m.groups()) if m else None


def pca_picture(study, runs):
    """Fig. 3: PCA scatter of each run's test-patch representations (agcl embed's CSV)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    present = [(mode, run) for mode, run in runs
               if os.path.exists(os.path.join(study, "embeddings", run, "embedding.csv"))]
    if not present:
        return None
    figure, axes = plt.subplots(1, len(present), figsize=(3.4 * len(present), 3.6), squeeze=False)
    colours = {}
    for k, (mode, run) in enumerate(present):
        ax = axes[0][k]
        with open(os.path.join(study, "embeddings", run, "embedding.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        for organ in sorted({r["organ"] for r in rows}):
            colours.setdefault(organ, "C%d" % len(colours) if len(colours) < 10 else
                               ("#8c564b" if len(colours) == 10 else "#000000"))
            for modality, marker in (("contrast", "o"), ("noncontrast", "x")):
                points = [(float(r["pc1"]), float(r["pc2"])) for r in rows
                          if r["organ"] == organ and r["modality"] == modality]
                if points:
                    ax.scatter(*zip(*points), s=5, marker=marker, c=colours[organ], alpha=0.6,
                               label=organ if modality == "contrast" else None)
        accuracy = embedding_summary(study, run)
        ax.set_title("%s\n1-NN organ %.2f, modality %.2f" % (MODE_NAMES[mode], accuracy[0], accuracy[1])
                     if accuracy else MODE_NAMES[mode], fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][-1].legend(fontsize=5, markerscale=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
    figure.suptitle("PCA of the encoders' representations of test patches (seed 1); o contrast, x non-contrast",
                    fontsize=9)
    figure.tight_layout()
    path = os.path.join(study, "fig3-pca.png")
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def choose_encoder_lr(study, rates):
    best = None
    for rate in rates:
        scores = []
        for mode in ("agcl", "random"):
            path = result_path(study, "%s-finetune-lr%s-f10-s1" % (mode, rate), "val")
            if not os.path.exists(path):
                sys.exit("study_report: %s is missing" % path)
            scores.append(summary(read_evaluation(path))[0])
        score = statistics.mean(scores)
        print("encoder learning rate %s: validation mean Dice agcl %.4f, random %.4f, mean %.4f"
              % ((rate,) + tuple(scores) + (score,)), file=sys.stderr)
        if best is None or score > best[1]:
            best = (rate, score)
    print(best[0])


def run_times(study):
    lines = ["| run | wall time (s) |", "| --- | --- |"]
    total = 0
    for path in sorted(glob.glob(os.path.join(study, "runs", "*.seconds"))):
        seconds = sum(int(x) for x in open(path).read().split())
        total += seconds
        lines.append("| %s | %d |" % (os.path.basename(path)[:-len(".seconds")], seconds))
    lines.append("| **all runs** | **%d (%.1f h)** |" % (total, total / 3600.0))
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study")
    parser.add_argument("--agcl", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build",
                                                       "apps", "agcl", "agcl"))
    parser.add_argument("--choose-encoder-lr", nargs="+", metavar="LR")
    args = parser.parse_args()
    study = args.study
    if args.choose_encoder_lr:
        choose_encoder_lr(study, args.choose_encoder_lr)
        return
    any_result = sorted(glob.glob(os.path.join(study, "results", "*.test.csv")))
    if not any_result:
        sys.exit("study_report: no results in %s/results yet" % study)
    organs = organs_of(read_evaluation(any_result[0]))
    lr_file = os.path.join(study, "results", "encoder-lr.txt")
    encoder_lr = open(lr_file).read().strip() if os.path.exists(lr_file) else None

    out = ["# The paper's study on the phantom: report", "",
           "Generated by scripts/study_report.py from the runs of scripts/phantom-study.sh. Dice per organ: "
           "the mean over the test volumes (12 subjects x 2 phases) whose reference has the organ; a run's "
           "mean Dice is the mean over the 12 organs. Rows from training seeds 1, 2, 3 (coarse network, "
           "pre-training and decoder seeded together); no ensembling.", ""]
    table_rows = []
    out += ["## Main tables (100% of the training subjects labelled)", ""]
    frozen = main_table(study, args.agcl, "frozen", "The paper's protocol: encoder frozen in stage 2", out, organs,
                        table_rows, lambda m: m + "-frozen-f10-s%d")
    frozen_runs = {m: seeded_runs(study, m + "-frozen-f10-s%d", "test") for m in MODES}
    picture = boxplot(study, "boxplot-frozen", "Dice per test volume (seed mean), encoder frozen", organs,
                      frozen_runs)
    if picture:
        out += ["![Fig. 5: Dice per organ, encoder frozen](%s)" % os.path.basename(picture), ""]
    runs = [(m, m + "-frozen-f10-s1") for m in MODES]
    out += ["Representations (Fig. 3; `agcl embed`, test patches, seed 1, encoder as stage 2 used it): "
            "leave-one-out 1-NN accuracy (cosine)", "",
            "| mode | organ | modality | modality x organ |", "| --- | --- | --- | --- |"]
    for mode, run in runs:
        accuracy = embedding_summary(study, run)
        out.append("| %s | %s |" % (MODE_NAMES[mode], " | ".join("%.3f" % a for a in accuracy) if accuracy
                                    else "(not run yet) | |"))
    picture = pca_picture(study, runs)
    out += ["", "![Fig. 3: PCA of the representations](%s)" % os.path.basename(picture) if picture else "", ""]
    if encoder_lr:
        main_table(study, args.agcl, "finetune", "Fine-tuned: encoder trained with the decoder in stage 2 "
                   "(encoder learning rate %s, chosen on validation)" % encoder_lr, out, organs, table_rows,
                   lambda m: m + "-finetune-lr" + encoder_lr + "-f10-s%d")
    else:
        out += ["### Fine-tuned", "", "(not run yet)", ""]
    with open(os.path.join(study, "report-main.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["protocol", "mode", "seed", "mean_dice"] + organs)
        w.writerows(table_rows)

    # Fig. 6a: label fraction.
    out += ["## Fig. 6a: label fraction (encoder frozen, seed 1; 100% = the main table's seed 1)", "",
            "| mode | " + " | ".join(["10%", "20%", "50%", "100%"]) + " |", "| --- |" + " --- |" * 4]
    series = {}
    for mode in ("agcl", "sscl", "random"):
        cells, points = [], []
        for fraction, tag in ((0.1, "f01"), (0.2, "f02"), (0.5, "f05"), (1.0, "f10")):
            path = result_path(study, "%s-frozen-%s-s1" % (mode, tag), "test")
            value = summary(read_evaluation(path))[0] if os.path.exists(path) else None
            cells.append(fmt(value))
            if value is not None:
                points.append((fraction * 100, value, None))
        series[MODE_NAMES[mode]] = points
        out.append("| %s | %s |" % (MODE_NAMES[mode], " | ".join(cells)))
    picture = line_plot(study, "fig6a-label-fraction", "Label fraction (encoder frozen, seed 1)",
                        "labelled training subjects (%)", series, [10, 20, 50, 100])
    out += ["", "![Fig. 6a](%s)" % os.path.basename(picture) if picture else "", ""]

    # Fig. 6b: temperature.
    out += ["## Fig. 6b: temperature (AGCL, encoder frozen, 100% labelled)", "",
            "| T | mean Dice, mean ± sd over seeds |", "| --- | --- |"]
    points = []
    for t, suffix in (("0.05", "-t005"), ("0.1", ""), ("0.5", "-t05"), ("1.0", "-t10")):
        runs = seeded_runs(study, "agcl" + suffix + "-frozen-f10-s%d", "test")
        means = [summary(rows)[0] for rows in runs.values()]
        out.append("| %s | %s |" % (t, mean_sd(means)))
        if means:
            points.append((float(t), statistics.mean(means), statistics.stdev(means) if len(means) > 1 else None))
    picture = line_plot(study, "fig6b-temperature", "Temperature (AGCL, frozen, 100%)", "temperature T",
                        {"AGCL": points}, [0.05, 0.1, 0.5, 1.0])
    out += ["", "![Fig. 6b](%s)" % os.path.basename(picture) if picture else "", ""]

    # Fig. 6c: pre-training modalities, evaluated per modality.
    out += ["## Fig. 6c: pre-training on one modality or both (AGCL, encoder frozen, seed 1)", "",
            "| pre-trained on | mean Dice, contrast volumes | mean Dice, non-contrast volumes | all |",
            "| --- | --- | --- | --- |"]
    for label, name in (("both", "agcl-frozen-f10-s1"), ("contrast only", "agcl-contrast-frozen-f10-s1"),
                        ("non-contrast only", "agcl-noncontrast-frozen-f10-s1")):
        path = result_path(study, name, "test")
        if os.path.exists(path):
            rows = read_evaluation(path)
            out.append("| %s | %s | %s | %s |" % (label, fmt(summary(rows, "contrast")[0]),
                                                  fmt(summary(rows, "noncontrast")[0]), fmt(summary(rows)[0])))
        else:
            out.append("| %s | | | (not run yet) |" % label)
    out += ["", "## Every run", ""] + run_times(study) + [""]
    path = os.path.join(study, "report.md")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    print("wrote " + path)


if __name__ == "__main__":
    main()
