#!/usr/bin/python3
"""Report of the phantom study (scripts/phantom-study.sh): Table II-style Markdown tables of the
mean Dice per organ, Wilcoxon p-values of AGCL against each other mode (agcl compare), the
temperature study, and box plots of the Dice per organ and method (the paper's Fig. 5).

    /usr/bin/python3 scripts/study_report.py STUDY_DIR [--agcl path/to/agcl]

Reads STUDY_DIR/results/<run>.csv (agcl evaluate) and STUDY_DIR/runs/<run>.out (agcl train's
summary); writes STUDY_DIR/report.md, STUDY_DIR/compare/*.csv and STUDY_DIR/boxplot-<fraction>.png.
Runs that have not finished are listed as missing.
"""
import argparse
import csv
import os
import re
import subprocess
import sys
from collections import OrderedDict, defaultdict

MODES = ["agcl", "supcon", "sscl", "ce", "none"]
MODE_NAMES = {"agcl": "AGCL (Eq. 3)", "supcon": "SupCon", "sscl": "SSCL (Eq. 2)", "ce": "CE", "none": "random init"}
FRACTIONS = [("f10", "100%"), ("f02", "20%")]
TEMPERATURES = [("0.05", "agcl-f10-t005"), ("0.1", "agcl-f10"), ("0.5", "agcl-f10-t05"), ("1.0", "agcl-f10-t10")]
ENCODER = "ResNet-18 (width 16)"


def read_evaluation(path):
    """organ -> list of Dice (volumes whose reference has the organ), organs in file order."""
    dice = OrderedDict()
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            dice.setdefault(row["organ"], [])
            if row["dice"] != "":
                dice[row["organ"]].append(float(row["dice"]))
    return dice


def mean(values):
    return sum(values) / len(values) if values else float("nan")


def run_summary(study, name):
    """(coarse val Dice, best val Dice) from agcl train's output, or (None, None)."""
    path = os.path.join(study, "runs", name + ".out")
    if not os.path.exists(path):
        return None, None
    text = open(path).read()
    coarse = re.search(r"coarse network validation Dice \(coarse grid\): ([0-9.eE+-]+)", text)
    best = re.search(r"best validation Dice \(val patches\): ([0-9.eE+-]+)", text)
    return (float(coarse.group(1)) if coarse else None, float(best.group(1)) if best else None)


def table(study, runs, labels, organs):
    lines = ["| encoder + pre-training | " + " | ".join(organs) + " | mean |",
             "| --- |" + " --- |" * (len(organs) + 1)]
    for run, label in zip(runs, labels):
        path = os.path.join(study, "results", run + ".csv")
        if not os.path.exists(path):
            lines.append("| " + label + " | " + " | ".join("" for _ in organs) + " | (not run yet) |")
            continue
        dice = read_evaluation(path)
        means = [mean(dice.get(o, [])) for o in organs]
        defined = [m for m in means if m == m]
        lines.append("| " + label + " | " + " | ".join("%.3f" % m if m == m else "n/a" for m in means) +
                     " | **%.3f** |" % mean(defined))
    return "\n".join(lines)


def compare(study, agcl, a, b):
    """Overall and per-organ p of agcl compare A B, or None when a result is missing."""
    pa, pb = (os.path.join(study, "results", r + ".csv") for r in (a, b))
    if not (os.path.exists(pa) and os.path.exists(pb)):
        return None
    out = os.path.join(study, "compare", "%s_vs_%s.csv" % (a, b))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    subprocess.run([agcl, "compare", pa, pb, "--out", out], check=True, stdout=subprocess.DEVNULL)
    with open(out, newline="") as f:
        return {row["organ"]: row for row in csv.DictReader(f)}


def boxplot(study, fraction, label, organs):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    present = [m for m in MODES if os.path.exists(os.path.join(study, "results", "%s-%s.csv" % (m, fraction)))]
    if not present:
        return None
    data = {m: read_evaluation(os.path.join(study, "results", "%s-%s.csv" % (m, fraction))) for m in present}
    columns = 4
    rows = (len(organs) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False)
    for k, organ in enumerate(organs):
        ax = axes[k // columns][k % columns]
        ax.boxplot([data[m].get(organ, []) or [float("nan")] for m in present], labels=present, widths=0.6)
        ax.set_title(organ, fontsize=9)
        ax.set_ylim(-0.02, 1.02)
        ax.tick_params(labelsize=7)
    for k in range(len(organs), rows * columns):
        axes[k // columns][k % columns].axis("off")
    figure.suptitle("Phantom study, %s of the training subjects labelled: Dice per test volume" % label, fontsize=10)
    figure.tight_layout()
    path = os.path.join(study, "boxplot-%s.png" % fraction)
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


def pca_picture(study, fraction, label):
    """PCA scatter of each mode's test-patch representations (agcl embed's CSV)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    present = [m for m in MODES if os.path.exists(os.path.join(study, "embeddings", "%s-%s" % (m, fraction),
                                                               "embedding.csv"))]
    if not present:
        return None
    figure, axes = plt.subplots(1, len(present), figsize=(3.4 * len(present), 3.6), squeeze=False)
    colours = {}
    for k, mode in enumerate(present):
        ax = axes[0][k]
        with open(os.path.join(study, "embeddings", "%s-%s" % (mode, fraction), "embedding.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        for organ in sorted({r["organ"] for r in rows}):
            colours.setdefault(organ, "C%d" % (len(colours) % 10) if len(colours) < 10 else
                               ("#8c564b" if len(colours) == 10 else "#000000"))
            for modality, marker in (("contrast", "o"), ("noncontrast", "x")):
                points = [(float(r["pc1"]), float(r["pc2"])) for r in rows
                          if r["organ"] == organ and r["modality"] == modality]
                if points:
                    ax.scatter(*zip(*points), s=5, marker=marker, c=colours[organ], alpha=0.6,
                               label=organ if modality == "contrast" else None)
        accuracy = embedding_summary(study, "%s-%s" % (mode, fraction))
        ax.set_title("%s\n1-NN organ %.2f, modality %.2f" % (MODE_NAMES[mode], accuracy[0], accuracy[1])
                     if accuracy else MODE_NAMES[mode], fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][-1].legend(fontsize=5, markerscale=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
    figure.suptitle("PCA of the encoder's representations of test patches (%s labelled); o contrast, x non-contrast"
                    % label, fontsize=9)
    figure.tight_layout()
    path = os.path.join(study, "pca-%s.png" % fraction)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study")
    parser.add_argument("--agcl", default="agcl")
    args = parser.parse_args()
    study = args.study
    organs = None
    for name in sorted(os.listdir(os.path.join(study, "results"))) if os.path.isdir(os.path.join(study, "results")) else []:
        if name.endswith(".csv") and ".partial" not in name:
            organs = list(read_evaluation(os.path.join(study, "results", name)).keys())
            break
    if organs is None:
        sys.exit("study_report: no results in %s/results yet" % study)

    out = ["# Phantom study report", "",
           "Mean Dice per organ over the test volumes (both phases) whose reference has the organ; "
           "the mean column is the mean over organs. Generated by scripts/study_report.py.", ""]
    for fraction, label in FRACTIONS:
        runs = ["%s-%s" % (m, fraction) for m in MODES]
        out += ["## %s of the training subjects labelled (stages 0 and 2)" % label, "",
                table(study, runs, ["%s + %s" % (ENCODER, MODE_NAMES[m]) for m in MODES], organs), ""]
        out += ["Validation (from agcl train): coarse network Dice on the coarse grid / best stage-2 Dice on "
                "the val patches:", ""]
        for m in MODES:
            coarse, best = run_summary(study, "%s-%s" % (m, fraction))
            if best is not None:
                out.append("- %s: %s / %.3f" % (m, "%.3f" % coarse if coarse is not None else "n/a", best))
        out += ["", "Two-sided Wilcoxon signed-rank test, AGCL against each mode, pairs = test subjects "
                "(mean of a subject's two phases); overall = each subject's mean Dice over the organs:", "",
                "| AGCL vs | pairs | mean Dice AGCL | mean Dice other | p (overall) |", "| --- | --- | --- | --- | --- |"]
        for m in MODES[1:]:
            rows = compare(study, args.agcl, "agcl-" + fraction, "%s-%s" % (m, fraction))
            if rows is None:
                out.append("| %s | | | | (not run yet) |" % MODE_NAMES[m])
                continue
            overall = rows["overall (subject means)"]
            out.append("| %s | %s | %s | %s | %s |" % (MODE_NAMES[m], overall["pairs"], overall["mean_dice_a"][:5],
                                                        overall["mean_dice_b"][:5], overall["pvalue"] or "n/a"))
        picture = boxplot(study, fraction, label, organs)
        if picture:
            out += ["", "![Dice box plots, %s labelled](%s)" % (label, os.path.basename(picture))]
        out += ["", "Representations (agcl embed, test patches): leave-one-out 1-NN accuracy (cosine) of", "",
                "| mode | organ | modality | modality x organ |", "| --- | --- | --- | --- |"]
        for m in MODES:
            accuracy = embedding_summary(study, "%s-%s" % (m, fraction))
            if accuracy:
                out.append("| %s | %.3f | %.3f | %.3f |" % ((MODE_NAMES[m],) + accuracy))
        picture = pca_picture(study, fraction, label)
        if picture:
            out += ["", "![PCA of the representations, %s labelled](%s)" % (label, os.path.basename(picture))]
        out.append("")
    out += ["## Temperature (AGCL, 100% labelled)", "",
            table(study, [run for _, run in TEMPERATURES], ["T = " + t for t, _ in TEMPERATURES], organs), ""]
    path = os.path.join(study, "report.md")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    print("wrote " + path)


if __name__ == "__main__":
    main()
