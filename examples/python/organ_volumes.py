#!/usr/bin/python3
"""Example: organ volumes in mL from a label map (voxel count x voxel volume).

    organ_volumes.py LABELS.nii.gz     -> "label,voxels,volume_ml" lines
"""
import sys

import numpy as np

import itk_agcl


def main(label_file):
    labels = itk_agcl.imread(label_file)
    array = itk_agcl.array_view_from_image(labels)
    voxel_ml = float(np.prod(labels.GetSpacing())) / 1000.0
    counts = np.bincount(array.ravel())
    print("label,voxels,volume_ml")
    for label in np.nonzero(counts)[0]:
        if label != 0:
            print("%d,%d,%.3f" % (label, counts[label], counts[label] * voxel_ml))


if __name__ == "__main__":
    main(*sys.argv[1:])
