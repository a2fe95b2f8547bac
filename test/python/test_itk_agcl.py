"""The Python module itk_agcl (SWIG): run by CTest with PYTHONPATH at the build's module folder,
AGCL_TOOL = the agcl tool, AGCL_TEST_MODEL = a small untrained model bundle."""
import gc
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import itk_agcl

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from pngio import read_png, write_png  # noqa: E402  (our own PNG decoder and writer)

AGCL = os.environ["AGCL_TOOL"]
MODEL = os.environ["AGCL_TEST_MODEL"]


@pytest.fixture(scope="module")
def phantom():
    return itk_agcl.phantom((48, 48, 20), seed=4, modality="contrast")


def test_segment_picture_equals_the_command_line(tmp_path):
    """A 2D RGB model (issue 19) on a numpy picture: the Python path and agcl segment on the same
    picture saved as a lossless PNG give the same label map; with every organ's threshold at 0
    something is labelled, and bad input raises named errors."""
    config = {"organs": [{"name": "disc", "label": 1}, {"name": "box", "label": 2}], "modalities": ["voc"],
              "image": {"dimensions": 2, "channels": 3, "mean": [124, 116, 104], "std": [58, 57, 57]},
              "patch_size": 16, "margin_mm": 4, "threshold": 0.0, "encoder": {"depth": 18, "width": 8},
              "decoder": {"channels": 16, "low_level_projection": 8},
              "coarse": {"spacing_mm": [4, 4, 4], "base_channels": 4, "levels": 3}}
    model = itk_agcl.AGCLModelObject.FromConfig(config, seed=3)
    model.Save(str(tmp_path / "picture.agcl"))
    rng = np.random.default_rng(1)
    picture = rng.integers(0, 256, (40, 52, 3), dtype=np.uint8)
    labels = itk_agcl.segment_picture(model, picture)
    assert labels.shape == (40, 52) and labels.dtype == np.uint8
    assert set(np.unique(labels).tolist()) <= {0, 1, 2} and (labels != 0).any()
    write_png(str(tmp_path / "picture.png"), picture)
    subprocess.run([AGCL, "segment", "--model", str(tmp_path / "picture.agcl"), str(tmp_path / "picture.png"),
                    "--out", str(tmp_path / "seg")], check=True, stdout=subprocess.DEVNULL)
    written, colour, _ = read_png(str(tmp_path / "seg" / "picture.png"))
    assert colour == 3  # a palette PNG
    np.testing.assert_array_equal(written, labels)
    with pytest.raises(ValueError, match="1 channel\\(s\\) per pixel; the model reads 3"):
        itk_agcl.segment_picture(model, picture[:, :, 0])
    with pytest.raises(ValueError, match="a model for 3D volumes"):
        itk_agcl.segment_picture(itk_agcl.load_model(MODEL), picture)
    with pytest.raises(TypeError, match="picture: expected a numpy.ndarray"):
        itk_agcl.segment_picture(model, picture.tolist())


def test_array_round_trip_and_geometry(tmp_path):
    rng = np.random.default_rng(0)
    array = rng.integers(-1000, 1000, size=(7, 5, 6)).astype(np.int16)
    direction = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    image = itk_agcl.image_from_array(array, spacing=(0.7, 0.8, 2.5), origin=(-10.0, 20.0, 30.5), direction=direction)
    assert image.shape == (7, 5, 6)
    np.testing.assert_array_equal(itk_agcl.array_from_image(image), array)
    for suffix in (".nrrd", ".nii.gz", ".mha"):
        path = str(tmp_path / ("volume" + suffix))
        itk_agcl.imwrite(image, path)
        back = itk_agcl.imread(path)
        assert back.GetPixelType() == "int16"
        np.testing.assert_array_equal(itk_agcl.array_view_from_image(back), array)
        np.testing.assert_allclose(back.GetSpacing(), (0.7, 0.8, 2.5), rtol=1e-6)
        np.testing.assert_allclose(back.GetOrigin(), (-10.0, 20.0, 30.5), atol=1e-4)
        np.testing.assert_allclose(back.GetDirection(), direction, atol=1e-6)
    assert not [p for p in os.listdir(tmp_path) if "partial" in p]  # nothing half-written left
    # A non-contiguous array (a transposed view) arrives with its values in (z, y, x) order.
    strided = np.arange(60, dtype=np.uint8).reshape(3, 4, 5).transpose(2, 1, 0)
    np.testing.assert_array_equal(itk_agcl.array_view_from_image(itk_agcl.image_from_array(strided)), strided)


def test_views_share_the_buffer_and_keep_the_image_alive():
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    image = itk_agcl.image_from_array(array)
    view = itk_agcl.array_view_from_image(image)
    assert view.__array_interface__["data"][0] == int(image._native.GetBufferAddress())
    assert not np.shares_memory(view, array)  # the input was copied (once) into the image
    view[1, 2, 3] = -5.0
    assert itk_agcl.array_view_from_image(image)[1, 2, 3] == -5.0  # a view, not a copy
    del image
    gc.collect()
    assert view[1, 2, 3] == -5.0 and view[0, 0, 1] == 1.0  # the view keeps the buffer alive


def test_filter_from_numpy_equals_the_command_line_tool(tmp_path, phantom):
    ct, _ = phantom
    path = str(tmp_path / "ct.nii.gz")
    itk_agcl.imwrite(ct, path)
    subprocess.run([AGCL, "segment", "--model", MODEL, path, "--out", str(tmp_path / "seg")], check=True,
                   stdout=subprocess.DEVNULL)
    reference = itk_agcl.array_view_from_image(itk_agcl.imread(str(tmp_path / "seg" / "ct.nii.gz")))
    # Object style, from an image made from a numpy array with the phantom's geometry.
    image = itk_agcl.image_from_array(itk_agcl.array_from_image(ct), spacing=ct.GetSpacing(), origin=ct.GetOrigin(),
                                      direction=ct.GetDirection())
    f = itk_agcl.AGCLSegmentationFilter.New(image, ModelFileName=MODEL, Device="cpu", SlabThickness=7)
    assert f.GetModelFileName() == MODEL and f.GetDevice() == "cpu" and f.GetSlabThickness() == 7
    progress = []
    f.SetProgressCallback(progress.append)
    f.Update()
    labels = f.GetOutput()
    np.testing.assert_array_equal(itk_agcl.array_view_from_image(labels), reference)
    assert labels.GetSpacing() == ct.GetSpacing() and labels.GetOrigin() == ct.GetOrigin()
    assert progress[0] == 0.0 and progress[-1] == 1.0 and progress == sorted(progress)
    assert set(f.GetStageSeconds()) >= {"coarse", "encoder", "decoder", "fusion"}
    assert f.GetNumberOfPatches() > 0
    # Functional form, from a file.
    again = itk_agcl.agcl_segmentation_filter(itk_agcl.imread(path), model_file_name=MODEL, device="cpu")
    np.testing.assert_array_equal(itk_agcl.array_view_from_image(again), reference)


def test_precision_and_tensor_patch_stages_from_python(phantom):
    # Issue 17's options: the tensor patch stages give the ITK loops' labels (C++ tests compare
    # them voxel for voxel; here the same through Python), bfloat16 runs and stays close, a
    # precision the filter does not know is an error naming it.
    ct, _ = phantom
    reference = itk_agcl.AGCLSegmentationFilter.New(ct, ModelFileName=MODEL)
    reference.Update()
    expected = itk_agcl.array_from_image(reference.GetOutput())
    f = itk_agcl.AGCLSegmentationFilter.New(ct, ModelFileName=MODEL, TensorPatchStages=True)
    assert f.GetTensorPatchStages() is True and f.GetPrecision() == "float32"
    f.Update()
    np.testing.assert_array_equal(itk_agcl.array_from_image(f.GetOutput()), expected)
    low = itk_agcl.AGCLSegmentationFilter.New(ct, ModelFileName=MODEL, Precision="bfloat16")
    assert low.GetPrecision() == "bfloat16"
    low.Update()
    labels = itk_agcl.array_from_image(low.GetOutput())
    assert np.mean(labels != expected) < 0.01, np.mean(labels != expected)
    bad = itk_agcl.AGCLSegmentationFilter.New(ct, ModelFileName=MODEL, Precision="half")
    with pytest.raises(RuntimeError, match="half"):
        bad.Update()


def test_metrics_match_a_numpy_dice(phantom):
    _, labels = phantom
    truth = itk_agcl.array_from_image(labels)
    shifted = np.roll(truth, 2, axis=2)
    prediction = itk_agcl.image_from_array(shifted, spacing=labels.GetSpacing(), origin=labels.GetOrigin(),
                                           direction=labels.GetDirection())
    for row in itk_agcl.segmentation_metrics(prediction, labels, [1, 6]):
        a, b = truth == row["label"], shifted == row["label"]
        assert row["status"] == "ok"
        assert row["dice"] == pytest.approx(2 * (a & b).sum() / (a.sum() + b.sum()), abs=1e-12)


def test_bad_input_raises_named_errors(tmp_path, phantom):
    ct, _ = phantom
    with pytest.raises(TypeError, match="array"):
        itk_agcl.image_from_array([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="3 dimensions"):
        itk_agcl.image_from_array(np.zeros((4, 4), np.int16))
    with pytest.raises(TypeError, match="dtype int32"):
        itk_agcl.image_from_array(np.zeros((2, 2, 2), np.int32))
    with pytest.raises(ValueError, match="spacing"):
        itk_agcl.image_from_array(np.zeros((2, 2, 2), np.uint8), spacing=(1, 1))
    with pytest.raises(RuntimeError, match="spacing"):
        itk_agcl.image_from_array(np.zeros((2, 2, 2), np.uint8), spacing=(1, -1, 1))
    with pytest.raises(RuntimeError, match="singular"):
        itk_agcl.image_from_array(np.zeros((2, 2, 2), np.uint8), direction=np.zeros((3, 3)))
    with pytest.raises(RuntimeError, match="no_such.nii.gz"):
        itk_agcl.imread(str(tmp_path / "no_such.nii.gz"))
    with pytest.raises(TypeError, match="input"):
        itk_agcl.AGCLSegmentationFilter.New("ct.nii.gz")
    with pytest.raises(TypeError, match="unknown keyword 'Modelfile'"):
        itk_agcl.AGCLSegmentationFilter.New(ct, Modelfile=MODEL)
    with pytest.raises(ValueError, match="BatchSize"):
        itk_agcl.AGCLSegmentationFilter.New(ct, BatchSize=0)
    with pytest.raises(RuntimeError, match="no_model.agcl"):
        itk_agcl.agcl_segmentation_filter(ct, model_file_name=str(tmp_path / "no_model.agcl"))
    with pytest.raises(RuntimeError, match="device 'tpu'"):
        itk_agcl.agcl_segmentation_filter(ct, model_file_name=MODEL, device="tpu")
    garbage = tmp_path / "garbage.agcl"
    garbage.write_bytes(b"not a model")
    with pytest.raises(RuntimeError, match="garbage.agcl"):
        itk_agcl.model_config(str(garbage))
    with pytest.raises(RuntimeError, match="no input"):
        itk_agcl.AGCLSegmentationFilter.New(ModelFileName=MODEL).Update()
    nan = itk_agcl.image_from_array(np.full((8, 8, 8), np.nan, np.float32))
    with pytest.raises(RuntimeError, match="int16"):
        itk_agcl.agcl_segmentation_filter(nan, model_file_name=MODEL)

    def stop(progress):
        raise KeyboardInterrupt("user stop")

    with pytest.raises(KeyboardInterrupt, match="user stop"):  # the callback's own exception
        itk_agcl.agcl_segmentation_filter(ct, model_file_name=MODEL, progress=stop)
    # The filter still works after an aborted run.
    assert itk_agcl.agcl_segmentation_filter(ct, model_file_name=MODEL).shape == ct.shape


def test_trainer_runs_a_few_steps(tmp_path):
    subprocess.run([AGCL, "phantom", "--subjects", "3", "--modality", "both", "--size", "48", "48", "24", "--seed", "2",
                    "--split", "0.67:0.33:0", "--out", str(tmp_path / "cohort")], check=True, stdout=subprocess.DEVNULL)
    config = json.loads(json.dumps(itk_agcl.model_config(MODEL)))
    config.pop("provenance", None)
    logged = []
    trainer = itk_agcl.AGCLTrainer(coarse_steps=2, pretraining_steps=2, decoder_steps=2, pretraining_batch_size=8,
                                   decoder_batch_size=8, patches_per_organ=4, log_every=1, show_progress=False)
    paths = []
    steps, seconds = _main_thread_runs_while(lambda: paths.append(
        trainer.Run(str(tmp_path / "cohort" / "manifest.csv"), str(tmp_path / "run"), config=config,
                    progress=logged.append)))
    model = paths[0]
    assert os.path.exists(model)
    assert steps >= 0.3 * seconds / 0.006, (steps, seconds)  # training does not keep the GIL
    trained = itk_agcl.model_config(model)
    assert [o["label"] for o in trained["organs"]] == [o["label"] for o in config["organs"]]
    assert trained["provenance"]["mode"] == "agcl"
    assert [(p["stage"], p["step"]) for p in logged] == [(s, k) for s in range(3) for k in (1, 2)]
    with pytest.raises(RuntimeError, match="unknown option 'steps'"):
        itk_agcl.AGCLTrainer(steps=3).Run(str(tmp_path / "cohort" / "manifest.csv"), str(tmp_path / "run2"))
    with pytest.raises(RuntimeError, match="no_such.csv"):
        itk_agcl.AGCLTrainer().Run(str(tmp_path / "no_such.csv"), str(tmp_path / "run3"))


def test_coarse_attention_filter_matches_a_scipy_dilation(phantom):
    from scipy import ndimage
    ct, labels = phantom
    f = itk_agcl.CoarseAttentionFilter.New(ct, CoarseLabelMap=labels, MarginMM=12.0, OrganLabels=[2, 6])
    assert f.GetOrganLabels() == [2, 6] and f.GetMarginMM() == 12.0
    f.Update()
    truth = itk_agcl.array_view_from_image(labels)
    spacing_zyx = labels.GetSpacing()[::-1]
    for organ in (2, 6):
        expected = ndimage.distance_transform_edt(truth != organ, sampling=spacing_zyx) <= 12.0
        attention = itk_agcl.array_view_from_image(f.GetAttentionMap(organ))
        np.testing.assert_array_equal(attention != 0, expected)
        assert expected.sum() > (truth == organ).sum()  # the margin did dilate
    np.testing.assert_array_equal(itk_agcl.array_view_from_image(f.GetCoarseLabelOutput()) != 0,
                                  np.isin(truth, [2, 6]))
    with pytest.raises(RuntimeError, match="not one of the organ labels"):
        f.GetAttentionMap(3)
    # A map of an earlier Update stays as it was when the filter runs again.
    view = itk_agcl.array_view_from_image(f.GetAttentionMap(6))
    expected = view.copy()
    f.SetMarginMM(2.0)
    f.Update()
    np.testing.assert_array_equal(view, expected)
    assert (itk_agcl.array_view_from_image(f.GetAttentionMap(6)) != 0).sum() < (expected != 0).sum()
    with pytest.raises(RuntimeError, match="uint8"):
        f.SetCoarseLabelMap(ct)


def test_dicom_series_folder_reads_like_the_nifti_copy():
    # The cli_segment fixture writes one phantom as a DICOM series and as NIfTI.
    folder = os.path.join(os.path.dirname(MODEL), "dicom")
    dicom = itk_agcl.imread(folder)
    nifti = itk_agcl.imread(os.path.join(os.path.dirname(MODEL), "phantom.nii.gz"))
    assert dicom.GetPixelType() == "int16" and dicom.shape == nifti.shape
    np.testing.assert_array_equal(itk_agcl.array_view_from_image(dicom), itk_agcl.array_view_from_image(nifti))
    np.testing.assert_allclose(dicom.GetSpacing(), nifti.GetSpacing(), rtol=1e-5)
    np.testing.assert_allclose(dicom.GetOrigin(), nifti.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(dicom.GetDirection(), nifti.GetDirection(), atol=1e-6)


def test_a_folder_without_dicom_is_named(tmp_path):
    with pytest.raises(RuntimeError, match="without a DICOM series"):
        itk_agcl.imread(str(tmp_path))


def _main_thread_runs_while(work):
    """Runs work() on a thread; meanwhile this thread sleeps in 5 ms steps. Returns the steps
    done while the work ran and the work's duration: a call that keeps the GIL stops the steps."""
    import threading
    import time
    done = threading.Event()
    result = {}

    def run():
        start = time.perf_counter()
        try:
            work()
        finally:
            result["seconds"] = time.perf_counter() - start
            done.set()

    thread = threading.Thread(target=run)
    steps = 0
    thread.start()
    while not done.is_set():
        time.sleep(0.005)
        steps += 1
    thread.join()
    return steps, result["seconds"]


def test_threads_sharing_one_model_give_the_serial_results():
    """Python threads (the GIL released in Update) running filters that share one model object."""
    import threading
    model = itk_agcl.AGCLModelObject.New()
    model.Load(MODEL)
    inputs = [itk_agcl.phantom((48, 48, 20), seed=seed)[0] for seed in (3, 4, 5)]

    def run(ct):
        f = itk_agcl.AGCLSegmentationFilter.New(ct, Device="cpu", SlabThickness=7)
        f.SetModel(model)
        f.Update()
        return itk_agcl.array_from_image(f.GetOutput())

    serial = [run(ct) for ct in inputs]
    results, errors = [None] * len(inputs), []

    def work(i):
        try:
            results[i] = run(inputs[i])
        except Exception as e:  # reported below, not lost in the thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for expected, got in zip(serial, results):
        np.testing.assert_array_equal(got, expected)


def test_update_releases_the_gil():
    ct, _ = itk_agcl.phantom((96, 96, 40), seed=3)
    calls = []
    steps, seconds = _main_thread_runs_while(
        lambda: itk_agcl.agcl_segmentation_filter(ct, model_file_name=MODEL, progress=calls.append))
    assert seconds > 0.2 and calls and calls[-1] == 1.0  # long enough to tell; the callback still ran
    # Had the GIL been kept, this thread would have run only during the few callbacks.
    assert steps >= 0.3 * seconds / 0.006, (steps, seconds)
    print("GIL check: %d sleep steps in %.2f s of segmentation" % (steps, seconds))


# A stand-in for ITK's Python package (not in Debian): the few calls itk_agcl makes of it
# (array_view_from_image, image_from_array, matrix_from_array, array_from_matrix, geometry).
_FAKE_ITK = '''
import numpy as np
class Image(object):
    def __init__(self, array):
        self.array, self.spacing, self.origin, self.direction = array, [1.0] * 3, [0.0] * 3, np.eye(3)
    def GetLargestPossibleRegion(self): return self.array.shape
    def GetSpacing(self): return self.spacing
    def SetSpacing(self, v): self.spacing = list(v)
    def GetOrigin(self): return self.origin
    def SetOrigin(self, v): self.origin = list(v)
    def GetDirection(self): return self.direction
    def SetDirection(self, m): self.direction = np.asarray(m)
def array_view_from_image(image): return image.array
def image_from_array(array): return Image(np.array(array))
def matrix_from_array(array): return np.array(array)
def array_from_matrix(matrix): return np.array(matrix)
'''

_WITH_FAKE_ITK = '''
import numpy as np, itk, itk_agcl, sys
assert itk.AGCLSegmentationFilter is itk_agcl.AGCLSegmentationFilter
assert itk.agcl_segmentation_filter is itk_agcl.agcl_segmentation_filter
ct, _ = itk_agcl.phantom((48, 48, 20), seed=4)
direction = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
ct.SetDirection(direction)
ct.SetOrigin((5.0, -7.5, 2.0))
image = itk.Image(itk_agcl.array_from_image(ct).astype(np.int32))  # int32: converted
image.SetSpacing(ct.GetSpacing()); image.SetOrigin(ct.GetOrigin()); image.SetDirection(direction)
out = itk.agcl_segmentation_filter(image, model_file_name=sys.argv[1])
assert isinstance(out, itk.Image), type(out)
expected = itk_agcl.agcl_segmentation_filter(ct, model_file_name=sys.argv[1])
np.testing.assert_array_equal(out.array, itk_agcl.array_view_from_image(expected))
np.testing.assert_allclose(out.GetSpacing(), ct.GetSpacing()); np.testing.assert_allclose(out.GetOrigin(), ct.GetOrigin())
np.testing.assert_allclose(out.GetDirection(), direction)
f = itk_agcl.AGCLSegmentationFilter.New(image, ModelFileName=sys.argv[1])
f.Update()
assert isinstance(f.GetOutput(), itk.Image) and f.GetInput() is image
print("fake itk ok")
'''


def test_itk_images_in_and_out_with_a_stand_in_itk_module(tmp_path):
    # Exercises itk_agcl's own conversion code; the real ITK Python package stays untested.
    (tmp_path / "itk").mkdir()
    (tmp_path / "itk" / "__init__.py").write_text(_FAKE_ITK)
    environment = dict(os.environ, PYTHONPATH=str(tmp_path) + os.pathsep + os.environ["PYTHONPATH"])
    result = subprocess.run([sys.executable, "-c", _WITH_FAKE_ITK, MODEL], env=environment, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert "fake itk ok" in result.stdout


def test_an_output_view_outlives_a_later_update_of_its_filter():
    # ITK filters reuse or reallocate their output's buffer when they run again: a view of an
    # earlier output must keep that output's buffer and values (not be rewritten or freed).
    big, _ = itk_agcl.phantom((96, 96, 40), seed=3)  # a label map of 369 KB: its own memory mapping
    small, _ = itk_agcl.phantom((48, 48, 20), seed=4)
    for first_input, second_input in ((big, small), (small, big)):
        f = itk_agcl.AGCLSegmentationFilter.New(first_input, ModelFileName=MODEL)
        f.Update()
        first = f.GetOutput()
        view = itk_agcl.array_view_from_image(first)
        expected = view.copy()
        assert len(np.unique(expected)) > 1
        f.SetInput(second_input)
        f.Update()
        del first
        gc.collect()
        reuse = [np.full(expected.size, 77, np.uint8) for _ in range(4)]  # claim freed memory, if any
        np.testing.assert_array_equal(view, expected)
        assert f.GetOutput().shape == second_input.shape and len(reuse) == 4
        # Update again with nothing changed: the same result.
        f.Update()
        np.testing.assert_array_equal(itk_agcl.array_view_from_image(f.GetOutput()),
                                      itk_agcl.array_view_from_image(itk_agcl.agcl_segmentation_filter(
                                          second_input, model_file_name=MODEL)))
