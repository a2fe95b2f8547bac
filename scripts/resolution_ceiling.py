#!/usr/bin/env python3
"""The resolution ceiling of each organ (Documentation/experiments.md): the Dice of a reference
label map against itself shifted by one voxel in-plane, averaged over the four in-plane
directions and over the volumes of a manifest's split. A segmentation one voxel off everywhere
scores this; thin organs (adrenal, veins) score low at coarse voxels.

    /usr/bin/python3 scripts/resolution_ceiling.py MANIFEST [--split test]

Reads the gzipped NIfTI label maps with numpy alone (test/python/nifti.py's reader)."""
import argparse
import csv
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "python"))
from nifti import read_nifti  # noqa: E402

ORGANS = ["spleen", "right_kidney", "left_kidney", "gallbladder", "esophagus", "liver", "stomach", "aorta",
          "inferior_vena_cava", "portal_and_splenic_veins", "pancreas", "right_adrenal_gland"]


def shifted(array, axis, step):
    out = np.zeros_like(array)
    if step > 0:
        index = [slice(None)] * array.ndim
        index[axis] = slice(step, None)
        source = [slice(None)] * array.ndim
        source[axis] = slice(None, -step)
    else:
        index = [slice(None)] * array.ndim
        index[axis] = slice(None, step)
        source = [slice(None)] * array.ndim
        source[axis] = slice(-step, None)
    out[tuple(index)] = array[tuple(source)]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest")
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    base = os.path.dirname(os.path.abspath(args.manifest))
    with open(args.manifest) as f:
        rows = [r for r in csv.DictReader(f) if args.split in ("all", r["split"])]
    dice = {o: [] for o in ORGANS}
    for row in rows:
        label, _ = read_nifti(os.path.join(base, row["label"]))
        for value, organ in enumerate(ORGANS, start=1):
            mask = label == value
            if not mask.any():
                continue
            scores = []
            for axis in (0, 1):  # x and y: in-plane
                for step in (1, -1):
                    moved = shifted(mask, axis, step)
                    scores.append(2.0 * np.logical_and(mask, moved).sum() / (mask.sum() + moved.sum()))
            dice[organ].append(np.mean(scores))
    print("| organ | volumes | ceiling (Dice vs itself shifted 1 voxel in-plane) |")
    print("| --- | --- | --- |")
    for organ in ORGANS:
        if dice[organ]:
            print(f"| {organ} | {len(dice[organ])} | {np.mean(dice[organ]):.3f} |")


if __name__ == "__main__":
    main()
