#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (test/fuzz/corpus/<target>/): small valid inputs of each
format, from which libFuzzer mutates. Run from anywhere: python3 test/fuzz/make_seeds.py"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
TINY = {"organs": [{"name": "spleen", "label": 1}, {"name": "liver", "label": 6}], "patch_size": 16,
        "encoder": {"depth": 18, "width": 4}, "decoder": {"channels": 8, "low_level_projection": 4},
        "coarse": {"spacing_mm": [8, 8, 8], "base_channels": 4, "levels": 2}}
TRAINER = {"stage": 1, "step": 4, "best_dice": -1.0, "options": {"seed": 1, "mode": "agcl"},
           "labelled_subjects": ["s1"], "subjects": [["s1", "contrast", "train", True]]}


def bundle(config, tensors):
    """An AGCL model file (format 1): magic, version, header size, JSON header, 64-byte aligned data."""
    entries, data = [], b""
    for name, dtype, shape, raw in tensors:
        entries.append({"name": name, "dtype": dtype, "shape": shape, "offset": len(data), "nbytes": len(raw)})
        data += raw
    header = json.dumps({"format": "agcl-model", "version": 1, "config": config, "tensors": entries}).encode()
    prefix = b"AGCLMDL\0" + struct.pack("<IIQ", 1, 0, len(header))
    start = (24 + len(header) + 63) // 64 * 64
    return prefix + header + b"\0" * (start - 24 - len(header)) + data


def write(target, name, content):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(content if isinstance(content, bytes) else content.encode())


small = [("a.weight", "float32", [2, 3], struct.pack("<6f", *range(6))),
         ("a.count", "int64", [1], struct.pack("<q", 7)),
         ("a.flags", "bool", [3], b"\x01\x00\x01"),
         ("a.half", "float16", [2], b"\x00\x3c\x00\x40")]
write("model_bundle", "config_only.agcl", bundle(TINY, []))
write("model_bundle", "small_tensors.agcl", bundle(TINY, small))
write("model_bundle", "empty_config.agcl", bundle({}, small[:1]))
write("checkpoint", "stage1.agcl", bundle(dict(TINY, trainer=TRAINER), small[:2]))
write("checkpoint", "finished.agcl", bundle(dict(TINY, trainer=dict(TRAINER, stage=3, step=0, best_dice=0.5)), []))
write("model_config", "tiny.json", json.dumps(TINY))
write("model_config", "empty.json", "{}")
write("model_config", "full.json", json.dumps(dict(
    TINY, margin_mm=10, threshold=0.5, overlap=0.25, patch_spacing_mm=1.8, window=[-175, 275],
    modalities=["contrast", "noncontrast"], encoder={"depth": 18, "width": 4, "output_stride": 16},
    decoder={"channels": 8, "low_level_projection": 4, "rates": [6, 12, 18]},
    coarse=dict(TINY["coarse"], window=[-175, 275], window_slices=32, attention_probability=0.2,
                coordinates=True))))
write("manifest", "cohort.csv", "subject,image,label,modality,split\n"
      "s1,images/s1.nii.gz,labels/s1.nii.gz,contrast,train\n"
      "s2,/abs/s2.nii.gz,,noncontrast,val\r\n\n"
      "s3,images/s3.nii.gz,labels/s3.nii.gz,contrast,test\n")
write("manifest", "reordered.csv", "split,modality,image,subject,label\ntrain,contrast,a.nii.gz,s1,b.nii.gz\n")
write("evaluation", "evaluation.csv", "subject,image,organ,dice,iou,msd_mm,hd_mm,hd95_mm\n"
      "s1,s1_contrast.nii.gz,spleen,0.91,0.83,0.5,3.1,1.2\n"
      "s1,s1_noncontrast.nii.gz,spleen,0.87,0.77,0.7,4.0,1.9\n"
      "s1,s1_contrast.nii.gz,liver,,,,,\n"
      "s2,s2_contrast.nii.gz,spleen,1e-3,0,9,9,9\n")
# corpus/evaluation/agcl-evaluate.csv: the head of a CSV written by agcl evaluate (kept as it is).
print("seeds written under", os.path.join(HERE, "corpus"))
