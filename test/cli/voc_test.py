#!/usr/bin/env python3
"""agcl scenes, agcl voc-manifest and agcl evaluate --metric miou (issue 19), on the files a
PASCAL VOC user gives: the PNGs are read here by a small decoder of our own (zlib + the PNG
filters), independent of ITK, and the mean IoU is recounted with numpy.

1. agcl scenes writes VOC's layout: JPEG photographs, palette PNG labels carrying VOC's colour map,
   a void band (255) around the outlines, the lists; --aug adds greyscale labels and train_aug.txt.
2. agcl voc-manifest reads both layouts (auto takes the augmented set) and refuses, writing nothing:
   a folder that is not VOC's, an RGB picture of the labels, a label of another size than its
   image, an id listed twice, a missing image.
3. agcl evaluate --metric miou equals a numpy recount of VOC's mean IoU (one confusion matrix over
   the set, void ignored, mean over the classes present); palette predictions are read as indices;
   a prediction outside the classes and an ignore label inside them are refused.
4. A 2D model end to end: agcl train on the VOC manifest (a tiny RGB model, few steps), agcl
   segment writes palette PNG label maps of each picture's size and an area report that a recount
   of the PNG confirms; bad input (a grey picture for an RGB model, a cohort holding one) is refused
   with exit code 1 and nothing written.

Usage: voc_test.py AGCL WORKDIR
"""
import csv
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from pngio import read_png, write_png  # noqa: E402  (our own PNG decoder and writer)

AGCL, WORK = sys.argv[1:3]


def fail(message):
    print("FAIL:", message, flush=True)
    sys.exit(1)


def run(*args, rc=0, output=None):
    result = subprocess.run([AGCL] + [str(a) for a in args], capture_output=True, text=True)
    text = result.stdout + result.stderr
    if result.returncode != rc:
        fail(f"agcl {' '.join(map(str, args))}: exit code {result.returncode}, expected {rc}\n{text}")
    if output is not None and output not in text:
        fail(f"agcl {' '.join(map(str, args))}: output lacks {output!r}\n{text}")
    print(f"ok: agcl {' '.join(map(str, args))[:100]} -> {rc}", flush=True)
    return text


def jpeg_size(path):
    """(width, height, components) from a JPEG's SOF marker."""
    data = open(path, "rb").read()
    if data[:2] != b"\xff\xd8":
        fail(f"{path}: not a JPEG")
    pos = 2
    while pos < len(data):
        marker, length = data[pos + 1], struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if 0xC0 <= marker <= 0xC3:
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            return width, height, data[pos + 9]
        pos += 2 + length
    fail(f"{path}: no SOF marker")


def lines(path):
    return [line.strip() for line in open(path) if line.strip()]


def manifest_rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
voc = os.path.join(WORK, "VOC2012")

# 1. The scenes.
run("scenes", "--out", voc, "--train", 6, "--val", 4, "--size", 64, 48, "--classes", 5, "--seed", 3, "--aug",
    output="wrote 6 training and 4 validation scenes of 64 x 48 pixels")
train = lines(f"{voc}/ImageSets/Segmentation/train.txt")
val = lines(f"{voc}/ImageSets/Segmentation/val.txt")
if len(train) != 6 or len(val) != 4 or set(train) & set(val):
    fail(f"lists: train {train}, val {val}")
if lines(f"{voc}/ImageSets/Segmentation/trainval.txt") != train + val:
    fail("trainval.txt is not train + val")
if lines(f"{voc}/ImageSets/Segmentation/train_aug.txt")[0] != \
        f"/JPEGImages/{train[0]}.jpg /SegmentationClassAug/{train[0]}.png":
    fail("train_aug.txt's first line")
# VOC's colour map, from its definition (index bits spread over R, G, B from the high bit).
voc_colours = {0: (0, 0, 0), 1: (128, 0, 0), 2: (0, 128, 0), 3: (128, 128, 0), 4: (0, 0, 128), 5: (128, 0, 128),
               15: (192, 128, 128), 255: (224, 224, 192)}
seen_classes, void_pixels = set(), 0
for name in train + val:
    width, height, components = jpeg_size(f"{voc}/JPEGImages/{name}.jpg")
    if (width, height, components) != (64, 48, 3):
        fail(f"{name}.jpg: {width} x {height} x {components}")
    labels, colour, palette = read_png(f"{voc}/SegmentationClass/{name}.png")
    if colour != 3 or palette is None:
        fail(f"{name}.png: colour type {colour}, expected a palette PNG (3)")
    for index, rgb in voc_colours.items():
        if tuple(palette[index]) != rgb:
            fail(f"{name}.png: palette entry {index} is {tuple(palette[index])}, VOC's is {rgb}")
    values = set(np.unique(labels).tolist())
    if not values <= set(range(6)) | {255}:
        fail(f"{name}.png: values {values}")
    seen_classes |= values - {0, 255}
    void_pixels += int((labels == 255).sum())
    # Void separates every object from what surrounds it: no object pixel touches another label.
    inner = labels[1:-1, 1:-1]
    for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
        neighbour = labels[1 + dy:labels.shape[0] - 1 + dy, 1 + dx:labels.shape[1] - 1 + dx]
        clash = (inner != 255) & (neighbour != 255) & (inner != neighbour)
        if clash.any():
            fail(f"{name}.png: labels {inner[clash][0]} and {neighbour[clash][0]} touch without void between")
    if name in train:
        aug, aug_colour, _ = read_png(f"{voc}/SegmentationClassAug/{name}.png")
        if aug_colour != 0 or not np.array_equal(aug, labels):
            fail(f"SegmentationClassAug/{name}.png: colour type {aug_colour} or indices differ")
if len(seen_classes) < 3 or void_pixels == 0:
    fail(f"scenes: classes {seen_classes}, void pixels {void_pixels}")
print(f"ok: scenes carry classes {sorted(seen_classes)} and {void_pixels} void pixels", flush=True)
run("scenes", "--out", f"{WORK}/bad", "--classes", 9, rc=1, output="--classes 9: expected 1..8")
run("scenes", "--out", f"{WORK}/bad", "--size", 8, 48, rc=1, output="--size: expected two pixel counts")

# 2. The manifest.
manifest = f"{WORK}/manifest.csv"
run("voc-manifest", voc, "--out", manifest, output="6 training images (augmented set, train_aug.txt")
rows = manifest_rows(manifest)
if [r["split"] for r in rows] != ["train"] * 6 + ["val"] * 4 or [r["subject"] for r in rows] != train + val:
    fail(f"manifest rows: {rows}")
if not all(os.path.exists(os.path.join(WORK, r["image"])) and os.path.exists(os.path.join(WORK, r["label"]))
           for r in rows):
    fail("manifest paths are not relative to its folder")
if "SegmentationClassAug" not in rows[0]["label"] or "SegmentationClass/" not in rows[-1]["label"]:
    fail(f"labels: {rows[0]['label']}, {rows[-1]['label']}")
if any(r["modality"] != "voc" for r in rows):
    fail("modality column")
run("voc-manifest", voc, "--out", f"{WORK}/plain.csv", "--train-set", "train", output="train.txt, SegmentationClass")
if any("SegmentationClassAug" in r["label"] for r in manifest_rows(f"{WORK}/plain.csv")):
    fail("--train-set train used the augmented labels")

run("voc-manifest", WORK, "--out", f"{WORK}/x.csv", rc=1, output=f"did you mean '{voc}'")
broken = os.path.join(WORK, "broken")


def broken_copy():
    shutil.rmtree(broken, ignore_errors=True)
    shutil.copytree(voc, broken)
    shutil.rmtree(f"{broken}/SegmentationClassAug")
    os.remove(f"{broken}/ImageSets/Segmentation/train_aug.txt")


broken_copy()
labels, _, palette = read_png(f"{voc}/SegmentationClass/{val[1]}.png")
write_png(f"{broken}/SegmentationClass/{val[1]}.png", palette[labels])  # the labels as an RGB picture
run("voc-manifest", broken, "--out", f"{WORK}/x.csv", rc=1,
    output=f"SegmentationClass/{val[1]}.png': 3 channels (rgb); expected a palette (indexed) PNG")
broken_copy()
write_png(f"{broken}/SegmentationClass/{train[2]}.png", np.zeros((40, 64), np.uint8), palette)
run("voc-manifest", broken, "--out", f"{WORK}/x.csv", rc=1,
    output=f"SegmentationClass/{train[2]}.png' is 64 x 40 pixels but its image")
broken_copy()
with open(f"{broken}/ImageSets/Segmentation/val.txt", "a") as f:
    f.write(val[0] + "\n")
run("voc-manifest", broken, "--out", f"{WORK}/x.csv", rc=1, output=f"the id '{val[0]}' is listed twice")
broken_copy()
os.remove(f"{broken}/JPEGImages/{train[0]}.jpg")
run("voc-manifest", broken, "--out", f"{WORK}/x.csv", rc=1, output=f"JPEGImages/{train[0]}.jpg': no such file")
run("voc-manifest", broken, "--out", f"{WORK}/x.csv", "--train-set", "train_aug", rc=1, output="no ImageSets")
if os.path.exists(f"{WORK}/x.csv"):
    fail("a refused manifest was written")

# 3. Mean IoU: predictions = the validation labels with void filled and a seeded share of pixels
# changed to another class; some saved as palette PNGs (read as indices), some greyscale.
rng = np.random.default_rng(5)
pred_dir = f"{WORK}/pred"
os.makedirs(pred_dir)
classes = 21
confusion = np.zeros((classes, classes), np.int64)
for i, name in enumerate(val):
    reference, _, palette = read_png(f"{voc}/SegmentationClass/{name}.png")
    prediction = np.where(reference == 255, 0, reference).astype(np.uint8)
    change = rng.random(prediction.shape) < 0.2
    prediction[change] = rng.integers(0, 6, int(change.sum()))
    write_png(f"{pred_dir}/{name}.png", prediction, palette if i % 2 else None)
    keep = reference != 255
    np.add.at(confusion, (reference[keep].astype(int), prediction[keep].astype(int)), 1)
tp = np.diag(confusion).astype(float)
union = confusion.sum(0) + confusion.sum(1) - tp
present = union > 0
expected = float(np.mean(tp[present] / union[present]))
text = run("evaluate", "--metric", "miou", "--pred", pred_dir, "--manifest", manifest, "--split", "val",
           output="Mean IoU over 4 image(s) of split 'val'")
table = {r["class"]: r for r in manifest_rows(f"{pred_dir}/evaluation-miou.csv")}
if abs(float(table["mean"]["iou"]) - expected) > 1e-5:
    fail(f"mean IoU {table['mean']['iou']}, numpy recount {expected}")
for c in range(classes):
    got = table[str(c)]["iou"]
    if present[c] != (got != "") or (present[c] and abs(float(got) - tp[c] / union[c]) > 1e-5):
        fail(f"class {c}: IoU {got!r}, numpy {tp[c] / union[c] if present[c] else None}")
    if int(table[str(c)]["true_positives"]) != int(tp[c]):
        fail(f"class {c}: true positives")
print(f"ok: mean IoU {table['mean']['iou']} = numpy {expected:.6f} over {int(present.sum())} classes", flush=True)

run("evaluate", "--metric", "miou", "--pred", pred_dir, "--manifest", manifest, "--split", "val",
    "--ignore-label", 3, rc=1, output="--ignore-label 3: it is one of the 21 classes")
bad = prediction.copy()
bad[0, 0] = 30
write_png(f"{pred_dir}/{val[-1]}.png", bad)
run("evaluate", "--metric", "miou", "--pred", pred_dir, "--manifest", manifest, "--split", "val", rc=1,
    output="the prediction has the value 30 at pixel [0, 0, 0]; expected a class 0..20")

# 4. A 2D model end to end (few steps: the mechanics, not the accuracy; scripts/scenes-study.sh
# measures that).
write_png(f"{pred_dir}/{val[-1]}.png", prediction)  # section 3's bad prediction repaired
config = f"{WORK}/config-2d.json"
with open(config, "w") as f:
    f.write('{"organs": [{"name": "disc", "label": 1}, {"name": "box", "label": 2}, {"name": "triangle", "label": 3},'
            ' {"name": "ring", "label": 4}, {"name": "cross", "label": 5}], "modalities": ["voc"],'
            ' "image": {"dimensions": 2, "channels": 3, "mean": [124, 116, 104], "std": [58, 57, 57]},'
            ' "patch_size": 16, "margin_mm": 4, "encoder": {"depth": 18, "width": 8},'
            ' "decoder": {"channels": 16, "low_level_projection": 8},'
            ' "coarse": {"spacing_mm": [4, 4, 4], "base_channels": 4, "levels": 3}}')
steps = ["--coarse-steps", 10, "--pretrain-steps", 4, "--decoder-steps", 10, "--patches-per-organ", 4,
         "--decoder-ce", "true", "--decoder-dice", "false", "--quiet"]
run("train", "--manifest", manifest, "--config", config, "--out", f"{WORK}/run2d", *steps,
    output="2D model: no calibration statistics")
model = f"{WORK}/run2d/model.agcl"
seg = f"{WORK}/seg2d"
run("segment", "--model", model, "--manifest", manifest, "--split", "val", "--out", seg, "--save-coarse",
    output="segmented 4 of 4 volume(s)")
with open(f"{seg}/settings.json") as f:
    settings = json.load(f)
if settings["post_processing"] is not False or settings["slab_slices"] is not None:
    fail(f"{seg}/settings.json: post_processing {settings['post_processing']}, slab_slices {settings['slab_slices']};"
         " a picture is neither post-processed nor cut into slabs")
for name in val:
    labels, colour, palette = read_png(f"{seg}/{name}.png")
    if colour != 3 or palette is None or labels.shape != (48, 64):
        fail(f"{seg}/{name}.png: colour type {colour}, shape {labels.shape}; expected a 64 x 48 palette PNG")
    if tuple(palette[1]) != voc_colours[1] or not set(np.unique(labels).tolist()) <= set(range(6)):
        fail(f"{seg}/{name}.png: palette or values {np.unique(labels)}")
    coarse, _, _ = read_png(f"{seg}/{name}.coarse.png")
    if coarse.shape != (48, 64) or not set(np.unique(coarse).tolist()) <= set(range(6)):
        fail(f"{seg}/{name}.coarse.png")
    areas = {r["label"]: r for r in manifest_rows(f"{seg}/{name}.organs.csv")}
    for label in range(1, 6):
        pixels = int((labels == label).sum())
        if int(areas[str(label)]["pixels"]) != pixels or abs(float(areas[str(label)]["area_mm2"]) - pixels) > 1e-3:
            fail(f"{name}.organs.csv: label {label}: {areas[str(label)]}, PNG recount {pixels} pixels of 1 mm^2")
print("ok: 2D label maps (palette PNG, picture size) and areas match a recount", flush=True)
run("evaluate", "--metric", "miou", "--pred", seg, "--manifest", manifest, "--split", "val",
    output="Mean IoU over 4 image(s) of split 'val'")
grey = f"{WORK}/grey.png"
write_png(grey, np.zeros((48, 64), np.uint8))
run("segment", "--model", model, grey, "--out", f"{WORK}/seg_grey", rc=1,
    output="1 channel(s) per pixel; the model reads 3 (its image.channels)")
if os.path.exists(f"{WORK}/seg_grey/grey.png"):
    fail("a refused picture left an output")
run("segment", "--model", model, "--manifest", manifest, "--out", f"{WORK}/seg_x", "--save-attention", rc=1,
    output="--save-attention: not available for a 2D model")
run("segment", "--model", model, "--manifest", manifest, "--out", f"{WORK}/seg_x", "--precision", "bfloat16", rc=1,
    output="--precision bfloat16: a 2D model (pictures) runs in float32 only")
with open(manifest) as f:
    text = f.read()
with open(f"{WORK}/grey-manifest.csv", "w") as f:
    f.write(text.replace(rows[1]["image"], "grey.png"))  # paths are relative to the manifest's folder
run("train", "--manifest", f"{WORK}/grey-manifest.csv", "--config", config, "--out", f"{WORK}/run_grey", *steps, rc=1,
    output=f"subject '{train[1]}': image '{WORK}/grey.png': 1 channel(s) per pixel; the model reads 3")
if os.path.exists(f"{WORK}/run_grey"):
    fail("a refused cohort left a run folder")
print("PASS", flush=True)
