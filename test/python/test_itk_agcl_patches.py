"""itk_agcl's model bundle, TensorDataObject and patch-level filters (sampler, encoder, decoder,
label fusion), each against an independent reference: the numpy reader of the model format,
numpy crops of the CT, a numpy painting of patch probabilities, and the one-call filter for the
composed pipeline. Environment as test_itk_agcl.py (PYTHONPATH, AGCL_TEST_MODEL)."""
import gc
import os
import sys

import numpy as np
import pytest

import itk_agcl

MODEL = os.environ["AGCL_TEST_MODEL"]
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
from read_agcl_model import read_agcl_model  # noqa: E402  (the documented numpy reader)


@pytest.fixture(scope="module")
def phantom():
    return itk_agcl.phantom((48, 48, 20), seed=4, modality="contrast")


@pytest.fixture(scope="module")
def model():
    return itk_agcl.load_model(MODEL)


# ------------------------------------------------------------------------------ model bundle
def test_model_save_writes_what_the_numpy_reader_reads_back(tmp_path, model):
    copy = str(tmp_path / "copy.agcl")
    model.Save(copy)
    original_config, original = read_agcl_model(MODEL)
    saved_config, saved = read_agcl_model(copy)
    assert saved_config == original_config == model.GetConfig()
    assert sorted(saved) == sorted(original) and len(saved) > 10
    for name, tensor in original.items():
        assert saved[name].dtype == tensor.dtype and saved[name].shape == tensor.shape, name
        np.testing.assert_array_equal(saved[name], tensor, err_msg=name)
    assert model.GetFileName() == MODEL and itk_agcl.load_model(copy).GetFileName() == copy
    assert not [p for p in os.listdir(tmp_path) if "partial" in p]


def test_model_from_config_is_seeded_and_usable(tmp_path, phantom):
    config = {"patch_size": 32, "organs": [{"name": "spleen", "label": 1}, {"name": "liver", "label": 6}]}
    paths = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        m = itk_agcl.AGCLModelObject.FromConfig(config, seed=seed)
        assert m.GetFileName() == "" and m.GetConfig()["patch_size"] == 32
        paths.append(str(tmp_path / (name + ".agcl")))
        m.Save(paths[-1])
    (ca, a), (_, b), (_, c) = [read_agcl_model(p) for p in paths]
    assert [o["label"] for o in ca["organs"]] == [1, 6]
    assert a["coarse.classifier.weight"].shape[0] == 3  # background + 2 organs
    assert all(np.array_equal(a[n], b[n]) for n in a)  # same seed, same weights
    assert any(not np.array_equal(a[n], c[n]) for n in a if a[n].dtype == np.float32)  # other seed
    # A model object in a filter gives what its file gives.
    ct, _ = phantom
    m = itk_agcl.load_model(paths[0])
    f = itk_agcl.AGCLSegmentationFilter.New(ct)
    f.SetModel(m)
    f.Update()
    from_file = itk_agcl.agcl_segmentation_filter(ct, model_file_name=paths[0])
    np.testing.assert_array_equal(itk_agcl.array_view_from_image(f.GetOutput()),
                                  itk_agcl.array_view_from_image(from_file))


def test_model_errors(tmp_path, model):
    garbage = tmp_path / "garbage.agcl"
    garbage.write_bytes(b"not a model at all")
    with pytest.raises(RuntimeError, match="garbage.agcl"):
        itk_agcl.load_model(str(garbage))
    with pytest.raises(RuntimeError, match="patch_size"):
        itk_agcl.AGCLModelObject.FromConfig({"patch_size": 40})
    with pytest.raises(TypeError, match="config"):
        itk_agcl.AGCLModelObject.FromConfig("patch_size=32")
    with pytest.raises(ValueError, match="no model yet"):
        itk_agcl.AGCLModelObject.New().Save(str(tmp_path / "empty.agcl"))
    with pytest.raises(RuntimeError, match="no_such_folder"):
        model.Save(str(tmp_path / "no_such_folder" / "m.agcl"))
    with pytest.raises(TypeError, match="Model"):
        itk_agcl.AGCLEncoderFilter.New().SetModel(MODEL)  # a file name is not a model object
    assert not os.path.exists(tmp_path / "empty.agcl")


# ----------------------------------------------------------------------------- tensor data
def test_tensor_data_round_trip_views_and_metadata():
    t = itk_agcl.TensorDataObject.New()
    rng = np.random.default_rng(1)
    arrays = {"f": rng.normal(size=(3, 2, 4, 4)).astype(np.float32),
              "d": rng.normal(size=(3, 5)).T.T.astype(">f8"),  # big-endian: converted
              "i": np.array([[1 << 40], [-2], [3]], np.int64),
              "m": rng.integers(0, 2, size=(3, 1, 2, 2)).astype(bool),
              "u": np.arange(24, dtype=np.uint8).reshape(3, 8)[:, ::2]}  # strided: copied once
    for name, array in arrays.items():
        t.SetTensor(name, array)
    assert sorted(t.GetTensorNames()) == sorted(arrays) and t.GetNumberOfItems() == 3
    for name, array in arrays.items():
        back = t.GetTensor(name)
        assert back.shape == array.shape and back.dtype == array.dtype.newbyteorder("=")
        np.testing.assert_array_equal(back, array)
        assert not np.shares_memory(back, array)
    # A view: read-only, the same storage on every call, alive after the object is gone.
    view = t.GetTensor("f")
    assert not view.flags.writeable
    assert t.GetTensor("f").__array_interface__["data"][0] == view.__array_interface__["data"][0]
    del t
    gc.collect()
    np.testing.assert_array_equal(view, arrays["f"])

    t = itk_agcl.TensorDataObject.New()
    metadata = [{"organ": 6, "modality": 1, "slice": 7, "index": [1, -2, 7], "origin": [0.5, -3.25, 12.0],
                 "spacing": [0.75, 0.75], "axes": [1, 0, 0, 0, 1, 0]},
                {"organ": np.uint8(2), "index": np.array([4, 5, 6])}]  # numpy values, missing keys
    t.SetMetadata(metadata)
    back = t.GetMetadata()
    assert back[0] == {**metadata[0], "axes": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]}
    assert back[1] == {"organ": 2, "modality": 0, "slice": 0, "index": [4, 5, 6], "origin": [0.0, 0.0, 0.0],
                       "spacing": [0.0, 0.0], "axes": [0.0] * 6}
    assert t.GetNumberOfItems() == 2
    t.SetTensor("probability", np.zeros((2, 1, 4, 4), np.float32))
    with pytest.raises(RuntimeError, match="'x' has 3 items"):
        t.SetTensor("x", np.zeros((3, 1), np.float32))
    with pytest.raises(RuntimeError, match="unknown key 'organs'"):
        t.SetMetadata([{"organs": 1}])
    with pytest.raises(RuntimeError, match="no tensor 'nothing'"):
        t.GetTensor("nothing")
    with pytest.raises(TypeError, match="x: expected a numpy.ndarray"):
        t.SetTensor("x", [1, 2])
    with pytest.raises(ValueError, match="batch dimension"):
        t.SetTensor("x", np.array(1.0, np.float32))
    with pytest.raises(TypeError, match="dtype complex64"):
        t.SetTensor("x", np.zeros((2, 1), np.complex64))
    with pytest.raises(TypeError, match="metadata"):
        t.SetMetadata({"organ": 1})
    t.RemoveTensor("probability")
    assert t.GetTensorNames() == []


def test_the_native_layer_reads_no_raw_address():
    # Reading memory from an address given by Python would crash it (or leak memory contents):
    # the native image has no FromBuffer, and tensors are copied from buffers, checked first.
    from itk_agcl import _native
    assert not hasattr(_native.Image, "FromBuffer")
    native = itk_agcl.TensorDataObject.New()._native
    for not_a_buffer in (0, 12345678, None, "abcd"):
        with pytest.raises((RuntimeError, TypeError), match="C-contiguous buffer"):
            native.SetTensorFromBuffer("x", "float32", [1], not_a_buffer)
    with pytest.raises(RuntimeError, match="8 bytes do not match its shape \\(4 expected\\)"):
        native.SetTensorFromBuffer("x", "float32", [1], np.zeros(2, np.float32))
    with pytest.raises(RuntimeError, match="C-contiguous buffer"):
        native.SetTensorFromBuffer("x", "float32", [2], np.zeros(4, np.float32)[::2])
    with pytest.raises(RuntimeError, match="shape overflows"):
        native.SetTensorFromBuffer("x", "float32", [1 << 62, 1 << 62], np.zeros(1, np.float32))
    native.SetTensorFromBuffer("x", "float32", [2], np.array([1.5, -2.0], np.float32))
    np.testing.assert_array_equal(itk_agcl.TensorDataObject(native).GetTensor("x"), [1.5, -2.0])


# ------------------------------------------------------------------------------- the filters
def _attention(phantom, organs, margin=6.0):
    ct, labels = phantom
    f = itk_agcl.CoarseAttentionFilter.New(ct, CoarseLabelMap=labels, MarginMM=margin, OrganLabels=organs)
    f.Update()
    return f


def test_sampler_patches_are_numpy_crops_of_the_windowed_ct(phantom):
    ct, labels = phantom
    attention = _attention(phantom, [1, 6])
    sampler = itk_agcl.QueryPatchSamplerFilter.New(ct, PatchSize=16, Overlap=0.25, WindowLow=-100, WindowHigh=200)
    for organ in (1, 6):
        sampler.SetAttentionMap(organ, attention.GetAttentionMap(organ))
    sampler.Update()
    out = sampler.GetOutput()
    image, metadata = out.GetTensor("image"), out.GetMetadata()
    assert image.shape == (len(metadata), 2, 16, 16) and len(metadata) > 10
    P, pad = 16, 16
    hu = np.pad(itk_agcl.array_from_image(ct).astype(np.float64), ((0, 0), (pad, pad), (pad, pad)),
                constant_values=-100)
    windowed = np.clip((hu + 100.0) / 300.0, 0.0, 1.0)
    maps = {o: np.pad(itk_agcl.array_from_image(attention.GetAttentionMap(o)) != 0, ((0, 0), (pad, pad), (pad, pad)))
            for o in (1, 6)}
    covered = {o: np.zeros(ct.shape, bool) for o in (1, 6)}
    for n, m in enumerate(metadata):
        x, y, z = m["index"]
        assert m["slice"] == z and m["axes"] == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        crop = np.s_[z, y + pad:y + pad + P, x + pad:x + pad + P]
        np.testing.assert_allclose(image[n, 0], windowed[crop], atol=1e-6, err_msg="patch %d" % n)
        np.testing.assert_array_equal(image[n, 1], maps[m["organ"]][crop].astype(np.float32))
        covered[m["organ"]][z, max(y, 0):y + P, max(x, 0):x + P] = True
    for o in (1, 6):  # every attention voxel lies in one of its organ's patches
        assert not (maps[o][:, pad:-pad, pad:-pad] & ~covered[o]).any()
    # Training mode: "label" is the organ's mask in the label map's crop.
    sampler.SetMode("training")
    sampler.SetPatchesPerOrgan(5)
    sampler.SetSeed(9)
    sampler.SetLabelMap(labels)
    sampler.Update()
    out = sampler.GetOutput()
    truth = np.pad(itk_agcl.array_from_image(labels), ((0, 0), (pad, pad), (pad, pad)))
    metadata = out.GetMetadata()
    assert sorted(m["organ"] for m in metadata) == [1] * 5 + [6] * 5
    for n, m in enumerate(metadata):
        x, y, z = m["index"]
        np.testing.assert_array_equal(out.GetTensor("label")[n, 0],
                                      truth[z, y + pad:y + pad + P, x + pad:x + pad + P] == m["organ"])


def test_fusion_equals_a_numpy_painting_of_the_probabilities(phantom):
    ct, _ = phantom
    shape = ct.shape  # (z, y, x)
    spacing, origin = np.array(ct.GetSpacing()), np.array(ct.GetOrigin())  # identity direction
    rng = np.random.default_rng(5)
    P = 8
    patches = [(1, (3, 4, 5)), (6, (6, 7, 5)), (6, (30, 20, 11)), (1, (44, 44, 2))]  # organ, (x, y, z) first pixel
    probability = rng.uniform(0, 1, size=(len(patches), 1, P, P)).astype(np.float32)
    metadata = [{"organ": organ, "slice": z, "index": [x, y, z], "origin": list(origin + spacing * (x, y, z)),
                 "spacing": list(spacing[:2]), "axes": [1, 0, 0, 0, 1, 0]} for organ, (x, y, z) in patches]
    data = itk_agcl.TensorDataObject.New()
    data.SetMetadata(metadata)
    data.SetTensor("probability", probability)
    everywhere = itk_agcl.image_from_array(np.ones(shape, np.uint8), spacing=ct.GetSpacing(), origin=ct.GetOrigin())
    fusion = itk_agcl.LabelFusionFilter.New(data, Threshold=0.5, PostProcessing=False, ProbabilityMaps=True)
    fusion.SetReferenceImage(ct)
    for organ in (1, 6):
        fusion.SetAttentionMap(organ, everywhere)
    fusion.Update()
    # Reference: per organ the mean of its patches' values over each voxel they cover (0 where
    # none does), then the most probable organ above the threshold.
    expected = {}
    for organ in (1, 6):
        total, count = np.zeros(shape), np.zeros(shape)
        for (o, (x, y, z)), p in zip(patches, probability[:, 0]):
            if o != organ:
                continue
            ys, xs = slice(y, min(y + P, shape[1])), slice(x, min(x + P, shape[2]))
            total[z, ys, xs] += p[:ys.stop - y, :xs.stop - x]
            count[z, ys, xs] += 1
        expected[organ] = np.divide(total, count, out=np.zeros(shape), where=count > 0)
        np.testing.assert_allclose(itk_agcl.array_view_from_image(fusion.GetProbabilityMap(organ)), expected[organ],
                                   atol=1e-6)
    labels = np.where(expected[6] > expected[1], 6, 1)
    labels[np.maximum(expected[1], expected[6]) <= 0.5] = 0
    np.testing.assert_array_equal(itk_agcl.array_view_from_image(fusion.GetOutput()), labels)
    assert (labels == 1).sum() > 10 and (labels == 6).sum() > 10
    # Bad patches: the probability of another shape, a patch of an organ without attention.
    data.SetTensor("probability", np.zeros((len(patches), 2, P, P), np.float32))
    with pytest.raises(RuntimeError, match="probability"):
        fusion.Update()
    data.SetTensor("probability", probability)
    data.SetMetadata([dict(m, organ=3) for m in metadata])
    with pytest.raises(RuntimeError, match="organ 3"):
        fusion.Update()


def test_composed_pipeline_equals_the_one_call_filter(phantom, model):
    # The pipeline of examples/python/organ_probability.py (the user-facing composition).
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python"))
    from organ_probability import stage_by_stage
    ct, _ = phantom
    config = model.GetConfig()
    filters = stage_by_stage(ct, model)
    composed = itk_agcl.array_view_from_image(filters["fusion"].GetOutput())
    one_call = itk_agcl.array_view_from_image(itk_agcl.agcl_segmentation_filter(ct, model_file_name=MODEL))
    np.testing.assert_array_equal(composed, one_call)
    assert len(np.unique(one_call)) > 1
    probability = filters["decoder"].GetOutput().GetTensor("probability")
    n = filters["sampler"].GetOutput().GetNumberOfItems()
    assert probability.shape == (n, 1, config["patch_size"], config["patch_size"])
    assert probability.min() >= 0.0 and probability.max() <= 1.0
    # The encoder's batch size does not change its features.
    encoder = filters["encoder"]
    features = encoder.GetOutput().GetTensor("high_level").copy()
    for batch in (7, 64):
        encoder.SetBatchSize(batch)
        encoder.Update()
        np.testing.assert_allclose(encoder.GetOutput().GetTensor("high_level"), features, atol=1e-5)


def test_composed_pipeline_with_the_coarse_vote_equals_the_one_call_filter(tmp_path, phantom):
    # The test model with coarse_weight 0.1 (weights unchanged): the composed filters pass the
    # coarse network's probabilities to the fusion as the one-call filter does.
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python"))
    from organ_probability import stage_by_stage
    from set_model_config import main as set_model_config
    voting = str(tmp_path / "vote.agcl")
    assert set_model_config(["set_model_config.py", MODEL, voting, "coarse_weight=0.1"]) == 0
    ct, _ = phantom
    model = itk_agcl.load_model(voting)
    assert model.GetConfig()["coarse_weight"] == 0.1
    filters = stage_by_stage(ct, model)
    composed = itk_agcl.array_view_from_image(filters["fusion"].GetOutput())
    one_call = itk_agcl.array_view_from_image(itk_agcl.agcl_segmentation_filter(ct, model_file_name=voting))
    np.testing.assert_array_equal(composed, one_call)
    without = itk_agcl.array_view_from_image(itk_agcl.agcl_segmentation_filter(ct, model_file_name=MODEL))
    assert (one_call != without).sum() > 0  # the vote changed something
    coarse = filters["attention"].GetCoarseProbabilityMap(1)
    values = itk_agcl.array_view_from_image(coarse)
    assert coarse.GetPixelType() == "float32" and values.min() >= 0.0 and values.max() <= 1.0
    assert np.allclose(values * 255, np.round(values * 255), atol=1e-3)  # steps of 1/255
    with pytest.raises(RuntimeError, match="float32"):
        filters["fusion"].SetCoarseProbabilityMap(1, filters["attention"].GetAttentionMap(1))


def test_composed_pipeline_with_organ_thresholds_equals_the_one_call_filter(tmp_path, phantom):
    # Own thresholds for some organs (set in a copy of the test model): the composed filters
    # (SetOrganThreshold from the config, as organ_probability.py does) give the one-call filter's map.
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python"))
    from organ_probability import stage_by_stage
    from set_model_config import main as set_model_config
    own = str(tmp_path / "own.agcl")
    count = len(itk_agcl.model_config(MODEL)["organs"])
    settings = ["organs.%d.threshold=%s" % (k, "0.2" if k % 2 == 0 else "0.8") for k in range(count)]
    assert set_model_config(["set_model_config.py", MODEL, own] + settings) == 0
    ct, _ = phantom
    model = itk_agcl.load_model(own)
    filters = stage_by_stage(ct, model)
    first = model.GetConfig()["organs"][0]["label"]
    assert filters["fusion"].GetOrganThreshold(first) == pytest.approx(0.2)
    composed = itk_agcl.array_view_from_image(filters["fusion"].GetOutput())
    one_call = itk_agcl.array_view_from_image(itk_agcl.agcl_segmentation_filter(ct, model_file_name=own))
    np.testing.assert_array_equal(composed, one_call)
    without = itk_agcl.array_view_from_image(itk_agcl.agcl_segmentation_filter(ct, model_file_name=MODEL))
    assert (one_call != without).sum() > 0  # the own thresholds changed something
    with pytest.raises(RuntimeError, match="expected a probability in 0..1"):
        filters["fusion"].SetOrganThreshold(first, 1.5)


def test_patch_filter_errors(phantom, model):
    ct, labels = phantom
    with pytest.raises(RuntimeError, match="no attention maps"):
        itk_agcl.QueryPatchSamplerFilter.New(ct).Update()
    with pytest.raises(RuntimeError, match="Mode 'bogus'"):
        itk_agcl.QueryPatchSamplerFilter.New(ct, Mode="bogus")
    with pytest.raises(ValueError, match="PatchSize"):
        itk_agcl.QueryPatchSamplerFilter.New(ct, PatchSize=0)
    with pytest.raises(TypeError, match="Overlap"):
        itk_agcl.QueryPatchSamplerFilter.New(ct, Overlap="a quarter")
    sampler = itk_agcl.QueryPatchSamplerFilter.New(ct, PatchSize=20)
    with pytest.raises(RuntimeError, match="uint8"):
        sampler.SetAttentionMap(1, ct)
    with pytest.raises(RuntimeError, match="organ label 0"):
        sampler.SetAttentionMap(0, labels)
    sampler.SetAttentionMap(1, labels)
    with pytest.raises(RuntimeError, match="PatchSize 20"):
        sampler.Update()
    with pytest.raises(TypeError, match="input"):
        itk_agcl.AGCLEncoderFilter.New(ct)
    data = itk_agcl.TensorDataObject.New()
    data.SetMetadata([{"organ": 1}, {"organ": 6}])
    data.SetTensor("image", np.zeros((2, 2, 32, 32), np.float32))
    with pytest.raises(RuntimeError, match="encoder"):
        itk_agcl.AGCLEncoderFilter.New(data).Update()  # no model
    decoder = itk_agcl.ASPPDecoderFilter.New(data)
    decoder.SetModel(model)
    with pytest.raises(RuntimeError, match="low_level"):
        decoder.Update()  # the decoder needs the encoder's features
    with pytest.raises(RuntimeError, match="device 'tpu'"):
        e = itk_agcl.AGCLEncoderFilter.New(data, Device="tpu")
        e.SetModel(model)
        e.Update()


# --------------------------------------------------------------------- pictures (issue 19)
@pytest.fixture(scope="module")
def picture_model():
    # A small 2D RGB model; every organ's threshold 0, so the fusion labels every attended pixel.
    config = {"organs": [{"name": "disc", "label": 1}, {"name": "box", "label": 2}], "modalities": ["voc"],
              "image": {"dimensions": 2, "channels": 3, "mean": [124, 116, 104], "std": [58, 57, 57]},
              "patch_size": 16, "margin_mm": 4, "threshold": 0.0, "encoder": {"depth": 18, "width": 8},
              "decoder": {"channels": 16, "low_level_projection": 8},
              "coarse": {"spacing_mm": [4, 4, 4], "base_channels": 4, "levels": 3}}
    return itk_agcl.AGCLModelObject.FromConfig(config, seed=3)


@pytest.fixture(scope="module")
def picture():
    return np.random.default_rng(1).integers(0, 256, (40, 52, 3), dtype=np.uint8)


def _picture_stages(model, picture):
    coarse = itk_agcl.PictureCoarseAttentionFilter.New(picture, Model=model)
    coarse.Update()
    organs = [o["label"] for o in model.GetConfig()["organs"]]
    sampler = itk_agcl.PictureQueryPatchSamplerFilter.New(picture, Model=model)
    for label in organs:
        sampler.SetAttentionMap(label, coarse.GetAttentionMap(label))
    sampler.Update()
    encoder = itk_agcl.AGCLEncoderFilter.New(sampler.GetOutput(), Model=model)
    encoder.Update()
    decoder = itk_agcl.ASPPDecoderFilter.New(encoder.GetOutput(), Model=model)
    decoder.Update()
    fusion = itk_agcl.PictureLabelFusionFilter.New(decoder.GetOutput(), Model=model)
    fusion.SetReferenceImage(picture)
    for label in organs:
        fusion.SetAttentionMap(label, coarse.GetAttentionMap(label))
    fusion.SetCoarseProbabilities(coarse.GetCoarseProbabilities())
    fusion.Update()
    return coarse, sampler, fusion


def test_picture_filters_compose_to_segment_picture(picture_model, picture):
    coarse, sampler, fusion = _picture_stages(picture_model, picture)
    labels = fusion.GetOutput()
    assert labels.shape == (40, 52) and labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, itk_agcl.segment_picture(picture_model, picture))
    # Threshold 0: exactly the attended pixels are labelled (an organ wins where maps overlap).
    attended = np.zeros((40, 52), bool)
    for label in (1, 2):
        attention = coarse.GetAttentionMap(label)
        assert attention.shape == (40, 52) and set(np.unique(attention).tolist()) <= {0, 1}
        attended |= attention.astype(bool)
    assert attended.any()
    np.testing.assert_array_equal(labels != 0, attended)
    assert set(np.unique(coarse.GetCoarseLabelOutput()).tolist()) <= {0, 1, 2}
    probabilities = coarse.GetCoarseProbabilities()
    assert probabilities.shape[:2] == (2, 1) and probabilities.min() >= 0 and probabilities.max() <= 1
    # The sampler's patches: the model's normalisation of the 3 channels, then the attention (0/1).
    patches = sampler.GetOutput()
    image = patches.GetTensor("image")
    metadata = patches.GetMetadata()
    assert image.shape == (len(metadata), 4, 16, 16) and len(metadata) > 0
    assert set(np.unique(image[:, 3]).tolist()) <= {0.0, 1.0}
    # Every patch pixel inside the picture: the bilinear interpolation (double precision) of the
    # normalised picture at the pixel's position in its frame (origin and steps in pixels).
    normalised = (picture.astype(np.float64) - [124, 116, 104]) / [58, 57, 57]
    checked = 0
    for n, m in enumerate(metadata):
        for i in range(16):
            for j in range(16):
                x, y = m["origin"][0] + j * m["spacing"][0], m["origin"][1] + i * m["spacing"][1]
                if not (0 <= x <= 51 and 0 <= y <= 39):
                    continue
                x0, y0 = min(int(np.floor(x)), 50), min(int(np.floor(y)), 38)
                fx, fy = x - x0, y - y0
                expected = ((1 - fy) * ((1 - fx) * normalised[y0, x0] + fx * normalised[y0, x0 + 1]) +
                            fy * ((1 - fx) * normalised[y0 + 1, x0] + fx * normalised[y0 + 1, x0 + 1]))
                np.testing.assert_allclose(image[n, :3, i, j], expected, atol=1e-4)
                checked += 1
    assert checked > 100


def test_picture_sampler_training_mode(picture_model, picture):
    labels = np.zeros((40, 52), np.uint8)
    labels[5:20, 5:25] = 1
    labels[25:38, 30:50] = 2
    labels[4, :] = 255  # void
    attention = {1: (labels == 1).astype(np.uint8), 2: (labels == 2).astype(np.uint8)}

    def sample(seed):
        s = itk_agcl.PictureQueryPatchSamplerFilter.New(picture, Model=picture_model, Training=True,
                                                        PatchesPerOrgan=6, Seed=seed)
        for label, map_ in attention.items():
            s.SetAttentionMap(label, map_)
        s.SetLabelMap(labels)
        s.Update()
        return s.GetOutput()
    first, again, other = sample(5), sample(5), sample(6)
    assert first.GetNumberOfItems() == 12
    np.testing.assert_array_equal(first.GetTensor("image"), again.GetTensor("image"))
    assert not np.array_equal(first.GetTensor("image"), other.GetTensor("image"))
    masks = first.GetTensor("label")
    assert masks.shape == (12, 1, 16, 16) and set(np.unique(masks).tolist()) <= {0, 1, 255}
    # Each patch's mask against the label map at its pixels' nearest pixel (brute force; the
    # nearest of x is floor(x + 0.5); 255 where that is void or outside the picture).
    expected = np.empty((12, 16, 16), np.uint8)
    for n, m in enumerate(first.GetMetadata()):
        for i in range(16):
            for j in range(16):
                x = int(np.floor(m["origin"][0] + j * m["spacing"][0] + 0.5))
                y = int(np.floor(m["origin"][1] + i * m["spacing"][1] + 0.5))
                if not (0 <= x < 52 and 0 <= y < 40) or labels[y, x] == 255:
                    expected[n, i, j] = 255
                else:
                    expected[n, i, j] = 1 if labels[y, x] == m["organ"] else 0
    np.testing.assert_array_equal(masks[:, 0], expected)
    assert (expected == 1).sum() > 0 and (expected == 0).sum() > 0


def test_picture_filter_errors(picture_model, picture, model):
    with pytest.raises(RuntimeError, match="no output yet"):
        itk_agcl.PictureCoarseAttentionFilter.New(picture, Model=picture_model).GetAttentionMap(1)
    with pytest.raises(ValueError, match="1 channel\\(s\\) per pixel; the model reads 3"):
        itk_agcl.PictureCoarseAttentionFilter.New(Model=picture_model, Input=picture[:, :, 0])
    with pytest.raises(RuntimeError, match="the input has 1 component\\(s\\) per pixel; the model reads 3"):
        itk_agcl.PictureCoarseAttentionFilter.New(picture[:, :, 0], Model=picture_model).Update()
    with pytest.raises(ValueError, match="a model for 3D volumes"):
        itk_agcl.PictureCoarseAttentionFilter.New(Model=model, Input=picture)
    with pytest.raises(RuntimeError, match="the model is for 3D volumes"):
        itk_agcl.PictureCoarseAttentionFilter.New(picture, Model=model).Update()
    with pytest.raises(RuntimeError, match="no input picture"):
        itk_agcl.PictureCoarseAttentionFilter.New(Model=picture_model).Update()
    bad = picture.astype(np.float32)
    bad[3, 4, 1] = np.nan
    with pytest.raises(RuntimeError, match="not finite"):
        itk_agcl.PictureCoarseAttentionFilter.New(bad)
    sampler = itk_agcl.PictureQueryPatchSamplerFilter.New(picture, Model=picture_model)
    with pytest.raises(TypeError, match="attention map of label 1: expected integer or bool values"):
        sampler.SetAttentionMap(1, np.ones((40, 52), np.float32))
    with pytest.raises(ValueError, match="attention map of label 1: expected a map"):
        sampler.SetAttentionMap(1, np.ones((40, 52, 1), np.uint8))
    with pytest.raises(RuntimeError, match="organ label 0"):
        sampler.SetAttentionMap(0, np.ones((40, 52), np.uint8))
    sampler.SetAttentionMap(1, np.ones((30, 52), np.uint8))
    with pytest.raises(RuntimeError, match="attention map of label 1: .*the picture has"):
        sampler.Update()
    sampler.SetAttentionMap(1, np.ones((40, 52), np.uint8))
    sampler.SetAttentionMap(7, np.ones((40, 52), np.uint8))
    with pytest.raises(RuntimeError, match="label 7: not an organ of the model"):
        sampler.Update()
    fusion = itk_agcl.PictureLabelFusionFilter.New(Model=picture_model)
    with pytest.raises(RuntimeError, match="no picture size"):
        fusion.Update()
    with pytest.raises(RuntimeError, match="coarse probabilities: expected a float32 array \\[O, 1, h, w\\]"):
        fusion.SetCoarseProbabilities(np.zeros((2, 10, 13), np.float32))
    with pytest.raises(ValueError, match="height"):
        fusion.SetReferenceSize((0, 5))
    # The native layer takes buffers, never addresses.
    from itk_agcl import _native
    with pytest.raises(RuntimeError, match="C-contiguous buffer"):
        _native.SegmentPicture(picture_model._model(), [40, 52, 3], 12345678, "cpu")
