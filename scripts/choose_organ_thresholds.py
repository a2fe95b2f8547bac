#!/usr/bin/python3
"""Chooses each organ's own fusion threshold for a trained model on validation volumes:

    PYTHONPATH=build/wrapping/python/site scripts/choose_organ_thresholds.py MODEL.agcl MANIFEST.csv [SPLIT]

Each volume of SPLIT (default val) is segmented once with the patch-level filters
(examples/python/organ_probability.py's pipeline, the organs' score maps kept); the fusion's
decision and post-processing are then redone in numpy for each candidate setting (the rule of
itk::LabelFusionFilter: the largest margin of an organ's score above its own threshold, inside its
attention, ties to the first organ; each organ's largest 26-connected component, holes filled).
Greedy: each organ's threshold in turn from 0.35..0.65, kept when the mean Dice over the organs
rises by more than 0.0001; two sweeps. Prints the thresholds and the scripts/set_model_config.py
command that writes them into a copy of the model. The script first checks that its numpy rule
reproduces the filter's label maps voxel for voxel."""
import csv
import os
import sys

import numpy as np
from scipy import ndimage

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "python"))
import itk_agcl  # noqa: E402
from organ_probability import stage_by_stage  # noqa: E402

CANDIDATES = (0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65)


def decide(scores, attention, thresholds):
    margin = np.where(attention, scores - thresholds[:, None, None, None], -10.0)
    best = np.argmax(margin, axis=0)  # ties: the first organ
    top = np.take_along_axis(margin, best[None], 0)[0]
    return np.where(top >= 0, best + 1, 0)


def postprocess(indices, count):
    out = indices.copy()
    structure = np.ones((3, 3, 3), bool)
    for i in range(1, count + 1):
        mask = indices == i
        if not mask.any():
            continue
        components, n = ndimage.label(mask, structure)
        if n > 1:
            sizes = ndimage.sum(mask, components, range(1, n + 1))
            keep = components == 1 + int(np.argmax(sizes))
            out[mask & ~keep] = 0
            mask = keep
        out[ndimage.binary_fill_holes(mask) & (out == 0)] = i
    return out


def dice(a, b):
    total = a.sum() + b.sum()
    return 2.0 * (a & b).sum() / total if total else np.nan


def main(model_file, manifest, split="val"):
    model = itk_agcl.load_model(model_file)
    config = model.GetConfig()
    organs = [o["label"] for o in config["organs"]]
    current = np.array([o.get("threshold", config["threshold"]) for o in config["organs"]], dtype=np.float64)
    volumes = []
    for row in csv.DictReader(open(manifest)):
        if row["split"] != split:
            continue
        base = os.path.dirname(manifest)
        ct = itk_agcl.imread(os.path.join(base, row["image"]))
        f = stage_by_stage(ct, model)
        scores = np.stack([np.array(itk_agcl.array_from_image(f["fusion"].GetProbabilityMap(label)))
                           for label in organs]).astype(np.float64)
        attention = np.stack([np.array(itk_agcl.array_from_image(f["attention"].GetAttentionMap(label))) > 0
                              for label in organs])
        reference = np.array(itk_agcl.array_from_image(itk_agcl.imread(os.path.join(base, row["label"]))))
        mine = postprocess(decide(scores, attention, current), len(organs))
        mine = np.where(mine > 0, np.array([0] + organs)[mine], 0)
        filters = np.array(itk_agcl.array_from_image(f["fusion"].GetOutput()))
        if not np.array_equal(mine, filters):
            sys.exit("%s: the numpy rule differs from the filter in %d voxels" % (row["image"],
                                                                                 int((mine != filters).sum())))
        volumes.append((scores, attention, reference))
        print("segmented", row["image"], flush=True)
    if not volumes:
        sys.exit("no volumes of split '%s' in %s" % (split, manifest))

    def mean_dice(thresholds):
        per = []
        for scores, attention, reference in volumes:
            labels = postprocess(decide(scores, attention, thresholds), len(organs))
            labels = np.where(labels > 0, np.array([0] + organs)[labels], 0)
            per.append([dice(labels == label, reference == label) for label in organs])
        return float(np.mean(np.nanmean(np.array(per), axis=0)))

    thresholds = current.copy()
    score = mean_dice(thresholds)
    print("start: mean Dice %.4f" % score)
    for sweep in range(2):
        for k, organ in enumerate(config["organs"]):
            for candidate in CANDIDATES:
                if candidate == thresholds[k]:
                    continue
                trial = thresholds.copy()
                trial[k] = candidate
                value = mean_dice(trial)
                if value > score + 1e-4:
                    score, thresholds = value, trial
            print("sweep %d, %s: %.2f (mean Dice %.4f)" % (sweep + 1, organ["name"], thresholds[k], score), flush=True)
    settings = ["organs.%d.threshold=%g" % (k, t) for k, (t, organ) in enumerate(zip(thresholds, config["organs"]))
                if t != config["threshold"] or "threshold" in organ]
    print("chosen: mean Dice %.4f" % score)
    print("scripts/set_model_config.py %s OUT.agcl %s" % (model_file, " ".join(settings)))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
