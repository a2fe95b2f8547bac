"""The numpy reader of Documentation/model-format.md reads what the C++ ModelBundle writes.

The file comes from test/core/WriteTestBundle.cxx (agclWriteTestBundle); the expected values
are the formulas that program uses, recomputed here with numpy."""
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
from read_agcl_model import read_agcl_model  # noqa: E402


def test_reader_matches_the_cpp_writer(tmp_path):
    path = tmp_path / "test.agcl"
    subprocess.run([os.environ["AGCL_WRITE_TEST_BUNDLE"], str(path)], check=True)
    config, weights = read_agcl_model(str(path))
    assert config == {"patch_size": 64, "organs": ["spleen", "liver"]}
    np.testing.assert_array_equal(weights["ramp"], (np.arange(24, dtype=np.float32) * 0.25).reshape(2, 3, 4))
    np.testing.assert_array_equal(weights["ids"], np.array([3, -1, 1 << 40], dtype=np.int64))
    np.testing.assert_array_equal(weights["mask"], np.array([True, False]))
    assert weights["half"].dtype == np.float16 and weights["half"][0] == np.float16(0.5)


def test_set_model_config_changes_settings_and_keeps_every_weight(tmp_path):
    source, target = tmp_path / "test.agcl", tmp_path / "changed.agcl"
    subprocess.run([os.environ["AGCL_WRITE_TEST_BUNDLE"], str(source)], check=True)
    script = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "set_model_config.py")
    subprocess.run([sys.executable, script, str(source), str(target), "patch_size=32",
                    "coarse.attention_probability=0.05"], check=True)
    config, weights = read_agcl_model(str(target))
    assert config == {"patch_size": 32, "organs": ["spleen", "liver"], "coarse": {"attention_probability": 0.05}}
    _, original = read_agcl_model(str(source))
    assert weights.keys() == original.keys()
    for name in original:
        np.testing.assert_array_equal(weights[name], original[name])
    for bad, message in ((["margin_mm"], "expected key=value"), (["margin_mm=abc"], "not JSON")):
        result = subprocess.run([sys.executable, script, str(source), str(tmp_path / "x.agcl"), *bad],
                                capture_output=True, text=True)
        assert result.returncode == 1 and message in result.stderr
    garbage = tmp_path / "garbage.agcl"
    garbage.write_bytes(b"not a model at all, but long enough for a header")
    result = subprocess.run([sys.executable, script, str(garbage), str(tmp_path / "x.agcl"), "patch_size=32"],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "not an AGCL model file" in result.stderr
    assert not (tmp_path / "x.agcl").exists()
