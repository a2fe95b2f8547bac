#!/usr/bin/python3
"""Example: segment a CT with itk_agcl, keep each organ's largest connected component (scipy),
write the label map.

    segment_keep_largest.py CT.nii.gz MODEL.agcl OUT.nii.gz [device]
"""
import sys

import numpy as np
from scipy import ndimage

import itk_agcl


def main(ct_file, model_file, out_file, device="cpu"):
    ct = itk_agcl.imread(ct_file)
    f = itk_agcl.AGCLSegmentationFilter.New(ct, ModelFileName=model_file, Device=device, PostProcessing=False)
    f.Update()
    labels = f.GetOutput()
    array = itk_agcl.array_view_from_image(labels)  # a view: edited in place
    for organ in itk_agcl.model_config(model_file)["organs"]:
        mask = array == organ["label"]
        components, count = ndimage.label(mask, structure=np.ones((3, 3, 3)))  # 26-connected, as ITK's fully connected
        if count > 1:
            sizes = np.bincount(components.ravel())[1:]
            array[mask & (components != 1 + int(np.argmax(sizes)))] = 0
        print("%s: %d component(s), kept %d voxels" % (organ["name"], count, int((array == organ["label"]).sum())))
    itk_agcl.imwrite(labels, out_file)


if __name__ == "__main__":
    main(*sys.argv[1:])
