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
