"""The organ report: `agcl segment`'s <name>.organs.csv, its warnings (stderr, settings.json, exit
code unchanged) and AGCLSegmentationFilter.GetOrganReport() in Python, on a phantom and on inputs
that are clearly not an abdominal CT (a uniform water cylinder, a phantom with inverted
contrast), with the shipped model and its recorded statistics. Volumes are recounted here with
numpy."""
import csv
import json
import os
import subprocess

import numpy as np
import pytest

import itk_agcl

TOOL = os.environ["AGCL_TOOL"]
MODEL = os.environ["AGCL_SHIPPED_MODEL"]
# The shipped model records its own statistics on the study's 12 validation volumes.
SOURCE = "calibration: 12 volumes of split 'val' of manifest.csv"
_CONFIG = itk_agcl.model_config(MODEL)
THRESHOLD = {o["label"]: o.get("threshold", _CONFIG["threshold"]) for o in _CONFIG["organs"]}


@pytest.fixture(scope="module")
def volumes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    ct, labels = itk_agcl.phantom(size=(96, 96, 40), seed=41)
    itk_agcl.imwrite(ct, str(folder / "phantom.nii.gz"))
    hu = itk_agcl.array_from_image(ct).astype(np.int32)
    spacing, origin = ct.GetSpacing(), ct.GetOrigin()
    # A water cylinder (0 HU) in air (-1000 HU), no organ at all.
    z, y, x = np.indices(hu.shape)
    cylinder = np.where((x - 48) ** 2 + (y - 48) ** 2 < 40 ** 2, 0, -1000).astype(np.int16)
    itk_agcl.imwrite(itk_agcl.image_from_array(cylinder, spacing=spacing, origin=origin),
                     str(folder / "cylinder.nii.gz"))
    # Inverted contrast: bright where the phantom is dark.
    inverted = np.clip(-hu, -1024, 3071).astype(np.int16)
    itk_agcl.imwrite(itk_agcl.image_from_array(inverted, spacing=spacing, origin=origin),
                     str(folder / "inverted.nii.gz"))
    return folder, ct, labels


def read_report(path):
    """(rows, comment lines) of an organs.csv."""
    with open(path) as f:
        lines = f.read().splitlines()
    comments = [line for line in lines if line.startswith("#")]
    assert comments[0] == "# plausibility checked against: " + SOURCE
    return list(csv.DictReader(line for line in lines if not line.startswith("#"))), comments


def test_segment_writes_the_report_and_warns_about_missing_organs(volumes):
    folder, _, _ = volumes
    out = folder / "out"
    inputs = [str(folder / f"{name}.nii.gz") for name in ("phantom", "cylinder", "inverted")]
    done = subprocess.run([TOOL, "segment", "--model", MODEL, *inputs, "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr  # warnings do not change the exit code
    settings = json.loads((out / "settings.json").read_text())
    warned = {}
    for name in ("phantom", "cylinder", "inverted"):
        rows, comments = read_report(out / f"{name}.organs.csv")
        assert [int(r["label"]) for r in rows] == list(range(1, 13))
        image = itk_agcl.imread(str(out / f"{name}.nii.gz"))
        labels, spacing = itk_agcl.array_from_image(image), image.GetSpacing()
        for row in rows:
            voxels = int(np.count_nonzero(labels == int(row["label"])))
            assert int(row["voxels"]) == voxels
            assert float(row["volume_ml"]) == pytest.approx(voxels * np.prod(spacing) / 1000, abs=1e-3)
            assert (row["warning"] == "missing") == (voxels == 0)
            assert (row["mean_probability"] == "") == (voxels == 0)
            if voxels:  # every voxel's score is at least its organ's threshold
                assert THRESHOLD[int(row["label"])] - 1e-6 <= float(row["mean_probability"]) <= 1.0
        volume_warnings = [c[len("# warning: "):] for c in comments if c.startswith("# warning: ")]
        organ_warnings = [f"{r['organ']} (label {r['label']}): {r['warning']}" for r in rows if r["warning"]]
        warned[name] = volume_warnings + organ_warnings
        for line in warned[name]:
            assert f"agcl segment: warning: {inputs[['phantom', 'cylinder', 'inverted'].index(name)]}: {line}" \
                in done.stderr
        assert settings["warnings"].get(name, []) == warned[name]
    assert warned["phantom"] == []  # an unseen phantom: nothing implausible
    # Off-distribution inputs: their intensities are flagged, and organs of implausible size.
    for name in ("cylinder", "inverted"):
        assert warned[name][0].startswith("intensities far from the training data"), warned[name]
        assert len(warned[name]) >= 4, warned[name]


def test_python_filter_gives_the_same_report(volumes):
    folder, _, _ = volumes
    # The file agcl segment read (the phantom in memory may hold values the file rounds).
    ct = itk_agcl.imread(str(folder / "phantom.nii.gz"))
    f = itk_agcl.AGCLSegmentationFilter.New(ct, ModelFileName=MODEL, Device="cpu")
    f.Update()
    report = f.GetOrganReport()
    assert report["statistics"] == SOURCE
    assert 0 < report["intensity_distance_hu"] < 30
    labels = itk_agcl.array_from_image(f.GetOutput())
    assert [o["label"] for o in report["organs"]] == list(range(1, 13))
    for organ in report["organs"]:
        assert organ["voxels"] == int(np.count_nonzero(labels == organ["label"]))
    rows, _ = read_report(folder / "out" / "phantom.organs.csv")
    for organ, row in zip(report["organs"], rows):
        assert organ["name"] == row["organ"] and organ["voxels"] == int(row["voxels"])
        assert organ["mean_probability"] == pytest.approx(float(row["mean_probability"]), abs=1e-4)
    assert report["warnings"] == []


def test_calibrate_model_records_the_percentiles_of_its_own_predictions(tmp_path):
    """itk_agcl.calibrate_model (the library's itk::CalibrateAGCLModelFile, as `agcl calibrate`)
    on 6 phantoms: each organ's p5/p95/min/max volume and the intensity statistics, recounted
    with numpy from the model's own segmentations and the CTs."""
    config = itk_agcl.model_config(MODEL)
    low, high = config["window"]
    rows = ["subject,image,modality,split"]
    volumes, histograms = {label: [] for label in range(1, 13)}, []
    for seed in range(61, 67):
        ct, _ = itk_agcl.phantom(size=(64, 64, 32), seed=seed)
        itk_agcl.imwrite(ct, str(tmp_path / f"ct{seed}.nii.gz"))
        rows.append(f"s{seed},ct{seed}.nii.gz,contrast,val")
        labels = itk_agcl.array_from_image(itk_agcl.agcl_segmentation_filter(ct, model_file_name=MODEL))
        for label in volumes:
            volumes[label].append(np.count_nonzero(labels == label) * np.prod(ct.GetSpacing()) / 1000)
        hu = itk_agcl.array_from_image(ct).astype(np.float64).ravel()
        counts, _ = np.histogram(hu, bins=50, range=(low, high))
        histograms.append(counts / counts.sum())
    rows.append("other,ct61.nii.gz,contrast,test")  # not in the split: not used
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "calibrated.agcl"
    statistics = itk_agcl.calibrate_model(MODEL, str(tmp_path / "manifest.csv"), str(out))
    assert statistics["volumes"] == 6
    for label, values in volumes.items():
        organ = statistics["organs"][str(label)]
        assert organ["p5_ml"] == pytest.approx(np.percentile(values, 5), abs=1e-9)
        assert organ["p95_ml"] == pytest.approx(np.percentile(values, 95), abs=1e-9)
        assert organ["min_ml"] == pytest.approx(min(values), abs=1e-9)
        assert organ["max_ml"] == pytest.approx(max(values), abs=1e-9)
    mean = np.mean(histograms, axis=0)
    assert statistics["intensity"]["histogram"] == pytest.approx(mean.tolist(), abs=1e-12)
    width = (high - low) / 50
    largest = max(np.sum(np.abs(np.cumsum(h) - np.cumsum(mean))) * width for h in histograms)
    assert statistics["intensity"]["threshold_hu"] == pytest.approx(2 * largest, abs=1e-9)
    # The written copy carries them; the weights are the model's.
    f = itk_agcl.AGCLSegmentationFilter.New(itk_agcl.imread(str(tmp_path / "ct61.nii.gz")), ModelFileName=str(out))
    f.Update()
    assert f.GetOrganReport()["statistics"].endswith("6 volumes of split 'val' of manifest.csv")
    assert np.array_equal(itk_agcl.array_from_image(f.GetOutput()),
                          itk_agcl.array_from_image(itk_agcl.agcl_segmentation_filter(
                              itk_agcl.imread(str(tmp_path / "ct61.nii.gz")), model_file_name=MODEL)))
    # Too few volumes: a clear error naming the manifest, nothing written.
    (tmp_path / "few.csv").write_text("\n".join(rows[:4]) + "\n")
    with pytest.raises(RuntimeError, match=r"few\.csv.*3 volume\(s\) in split 'val'; at least 6"):
        itk_agcl.calibrate_model(MODEL, str(tmp_path / "few.csv"), str(tmp_path / "few.agcl"))
    assert not (tmp_path / "few.agcl").exists()
