"""The examples (examples/*.cxx, examples/python/*.py) run on a phantom: the C++ and Python
versions of each agree, and agree with independent numpy/scipy computations. Environment:
PYTHONPATH (itk_agcl), AGCL_EXAMPLES_DIR (built C++ examples), AGCL_EXAMPLES_SOURCE
(examples/python), AGCL_TEST_MODEL (a small model bundle)."""
import os
import subprocess
import sys

import numpy as np
from scipy import ndimage

import itk_agcl

BIN = os.environ["AGCL_EXAMPLES_DIR"]
PY = os.environ["AGCL_EXAMPLES_SOURCE"]
MODEL = os.environ["AGCL_TEST_MODEL"]


def run(*command):
    return subprocess.run([str(c) for c in command], check=True, capture_output=True, text=True).stdout


def test_segment_keep_largest_cpp_and_python_agree(tmp_path):
    ct, _ = itk_agcl.phantom((48, 48, 20), seed=9)
    itk_agcl.imwrite(ct, str(tmp_path / "ct.nii.gz"))
    run(os.path.join(BIN, "SegmentKeepLargestOrgans"), tmp_path / "ct.nii.gz", MODEL, tmp_path / "cpp.nii.gz")
    run(sys.executable, os.path.join(PY, "segment_keep_largest.py"), tmp_path / "ct.nii.gz", MODEL, tmp_path / "py.nii.gz")
    cpp = itk_agcl.array_from_image(itk_agcl.imread(str(tmp_path / "cpp.nii.gz")))
    py = itk_agcl.array_from_image(itk_agcl.imread(str(tmp_path / "py.nii.gz")))
    np.testing.assert_array_equal(cpp, py)
    # Every organ left is one 26-connected component, and a subset of the unprocessed segmentation.
    raw = itk_agcl.array_view_from_image(
        itk_agcl.agcl_segmentation_filter(ct, model_file_name=MODEL, post_processing=False))
    organs = [label for label in np.unique(cpp) if label != 0]
    assert organs, "the example kept no organ at all"
    for label in organs:
        assert ndimage.label(cpp == label, structure=np.ones((3, 3, 3)))[1] == 1
        assert np.all(raw[cpp == label] == label)


def test_organ_volumes_cpp_and_python_match_numpy(tmp_path):
    _, labels = itk_agcl.phantom((40, 40, 16), seed=5)
    itk_agcl.imwrite(labels, str(tmp_path / "labels.nrrd"))
    cpp = run(os.path.join(BIN, "OrganVolumes"), tmp_path / "labels.nrrd").split()
    py = run(sys.executable, os.path.join(PY, "organ_volumes.py"), tmp_path / "labels.nrrd").split()
    assert cpp[0] == py[0] == "label,voxels,volume_ml"
    array = itk_agcl.array_view_from_image(labels)
    voxel_mm3 = np.prod(np.array(labels.GetSpacing(), dtype=np.float64))
    expected = {int(v): int((array == v).sum()) for v in np.unique(array) if v != 0}
    for lines in (cpp, py):
        rows = {int(r.split(",")[0]): (int(r.split(",")[1]), float(r.split(",")[2])) for r in lines[1:]}
        assert set(rows) == set(expected)
        for label, (voxels, ml) in rows.items():
            assert voxels == expected[label]
            assert abs(ml - voxels * voxel_mm3 / 1000.0) < 1e-3


def test_organ_probability_stage_by_stage_matches_the_one_call_filter(tmp_path):
    ct, _ = itk_agcl.phantom((48, 48, 20), seed=9)
    itk_agcl.imwrite(ct, str(tmp_path / "ct.nii.gz"))
    threshold = itk_agcl.model_config(MODEL)["threshold"]
    for flags, post_processing in (([], True), (["--raw"], False)):
        out = run(sys.executable, os.path.join(PY, "organ_probability.py"), tmp_path / "ct.nii.gz", MODEL, 6,
                  tmp_path / "p.nrrd", tmp_path / "labels.nii.gz", *flags)
        assert "query patches" in out
        labels = itk_agcl.array_from_image(itk_agcl.imread(str(tmp_path / "labels.nii.gz")))
        one_call = itk_agcl.agcl_segmentation_filter(ct, model_file_name=MODEL, post_processing=post_processing)
        np.testing.assert_array_equal(labels, itk_agcl.array_view_from_image(one_call))
        probability = itk_agcl.imread(str(tmp_path / "p.nrrd"))
        assert probability.GetPixelType() == "float32" and probability.shape == ct.shape
        p = itk_agcl.array_view_from_image(probability)
        assert p.min() >= 0.0 and p.max() <= 1.0
    # Without post-processing every liver voxel is one whose probability passed the threshold.
    assert (labels == 6).sum() > 0
    assert (p[labels == 6] > threshold).all()
