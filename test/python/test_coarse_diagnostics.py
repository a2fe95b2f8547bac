"""agcl segment --save-coarse / --save-attention / --oracle-attention and the coarse-stage columns
of agcl evaluate, recounted voxel by voxel with numpy from the files themselves (read by a small
NIfTI-1 reader of our own, not ITK). Environment: AGCL_TOOL (the agcl tool), AGCL_TRAIN_DIR (the
cli.train test's folder: ph/manifest.csv and run/model.agcl)."""
import csv
import os
import subprocess

import numpy as np
from scipy import ndimage

from nifti import read_nifti

AGCL = os.environ["AGCL_TOOL"]
TRAIN = os.environ["AGCL_TRAIN_DIR"]
MANIFEST = os.path.join(TRAIN, "ph", "manifest.csv")
MODEL = os.path.join(TRAIN, "run", "model.agcl")
def close(printed, value):
    """agcl evaluate prints 6 significant digits."""
    return abs(float(printed) - value) <= 1e-5 * max(1.0, abs(value))


def rows_of(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def manifest_rows(split):
    return [r for r in rows_of(MANIFEST) if r["split"] == split]


def organs_of(settings_dir):
    import json
    with open(os.path.join(settings_dir, "settings.json")) as f:
        config = json.load(f)["model_config"]
    return [(o["name"], o["label"]) for o in config["organs"]]


def segment(out, *extra):
    subprocess.run([AGCL, "segment", "--model", MODEL, "--manifest", MANIFEST, "--split", "val", "--out", str(out),
                    *extra], check=True, capture_output=True, text=True)
    subprocess.run([AGCL, "evaluate", "--pred", str(out), "--manifest", MANIFEST, "--split", "val"],
                   check=True, capture_output=True, text=True)
    return rows_of(os.path.join(out, "evaluation.csv"))


def name_of(image):
    return os.path.basename(image)[:-len(".nii.gz")]


def test_coarse_dice_and_attention_recall_match_a_recount(tmp_path):
    out = tmp_path / "seg"
    evaluation = segment(out, "--save-coarse", "--save-attention")
    organs = organs_of(out)
    checked_recall = 0
    partial_recall = 0
    for row in manifest_rows("val"):
        image = os.path.join(os.path.dirname(MANIFEST), row["image"])
        label = os.path.join(os.path.dirname(MANIFEST), row["label"])
        reference, spacing = read_nifti(label)
        coarse, _ = read_nifti(os.path.join(out, name_of(image) + ".coarse.nii.gz"))
        bits, _ = read_nifti(os.path.join(out, name_of(image) + ".attention.nii.gz"))
        assert coarse.shape == reference.shape == bits.shape
        # The coarse map holds organ labels only.
        assert set(np.unique(coarse)) <= {0} | {label for _, label in organs}
        for o, (organ, value) in enumerate(organs):
            got = [r for r in evaluation if r["image"].endswith(row["image"]) and r["organ"] == organ]
            assert len(got) == 1, (row["image"], organ)
            got = got[0]
            ref = reference == value
            predicted = coarse == value
            if ref.sum() + predicted.sum() > 0:
                dice = 2.0 * np.logical_and(ref, predicted).sum() / (ref.sum() + predicted.sum())
                assert close(got["coarse_dice"], dice), (organ, got["coarse_dice"], dice)
            else:
                assert got["coarse_dice"] == ""
            attention = (bits.astype(np.uint64) >> o) & 1 == 1
            assert int(got["attention_voxels"]) == attention.sum()
            if ref.sum() == 0:
                assert got["attention_recall"] == "" and got["attention_vs_grown10mm"] == ""
                continue
            recall = np.logical_and(ref, attention).sum() / ref.sum()
            assert close(got["attention_recall"], recall), (organ, got["attention_recall"], recall)
            assert close(got["attention_ratio"], attention.sum() / ref.sum())
            # The reference grown by 10 mm: every voxel whose centre lies within 10 mm of a voxel of the organ.
            grown = ndimage.distance_transform_edt(~ref, sampling=spacing) <= 10.0 + 1e-6
            assert close(got["attention_vs_grown10mm"], attention.sum() / grown.sum())
            checked_recall += 1
            partial_recall += 0.0 < recall < 1.0
    assert checked_recall >= 4 and partial_recall >= 2  # not only the trivial recalls 0 and 1
    # The summary carries the coarse-stage table.
    with open(os.path.join(out, "evaluation.md")) as f:
        summary = f.read()
    assert "attention recall (mean)" in summary and "coarse Dice (mean)" in summary

    # A second run into the same folder without the flags leaves no stale coarse-stage files.
    again = segment(out)
    assert not [f for f in os.listdir(out) if f.endswith((".coarse.nii.gz", ".attention.nii.gz"))]
    assert all(r["attention_recall"] == "" and r["coarse_dice"] == "" for r in again)


def test_oracle_attention_contains_every_organ(tmp_path):
    out = tmp_path / "oracle"
    evaluation = segment(out, "--oracle-attention", "--save-coarse", "--save-attention")
    checked = 0
    for row in manifest_rows("val"):
        image = os.path.join(os.path.dirname(MANIFEST), row["image"])
        label = os.path.join(os.path.dirname(MANIFEST), row["label"])
        reference, _ = read_nifti(label)
        coarse, _ = read_nifti(os.path.join(out, name_of(image) + ".coarse.nii.gz"))
        organs = {value for _, value in organs_of(out)}
        np.testing.assert_array_equal(coarse, np.where(np.isin(reference, list(organs)), reference, 0))
    for r in evaluation:
        if r["attention_recall"] != "":
            assert float(r["attention_recall"]) == 1.0 and float(r["coarse_dice"]) == 1.0
            checked += 1
    assert checked >= 4


def test_oracle_attention_needs_a_manifest(tmp_path):
    image = os.path.join(TRAIN, "ph", manifest_rows("val")[0]["image"])
    result = subprocess.run([AGCL, "segment", "--model", MODEL, image, "--oracle-attention", "--out", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "--oracle-attention: expected --manifest" in result.stderr
