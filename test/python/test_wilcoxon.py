"""agcl::WilcoxonSignedRank against scipy.stats.wilcoxon (Debian's scipy 1.10), called with
its method and zero_method given explicitly (two-sided, no continuity correction)."""
import os
import subprocess

import numpy as np
import pytest
from scipy import stats

TOOL = os.environ["AGCL_WILCOXON_TOOL"]


def agcl(x, y, method, zero_method):
    text = f"{method} {zero_method}\n" + " ".join(map(repr, x)) + "\n" + " ".join(map(repr, y)) + "\n"
    out = subprocess.run([TOOL], input=text, capture_output=True, text=True, check=True).stdout.split()
    assert out[0] != "error:", " ".join(out)
    return float(out[0]), float(out[1]), out[4]


rng = np.random.default_rng(7)


def continuous(n, shift):
    x = rng.normal(0.8, 0.05, n)
    return x, x + rng.normal(shift, 0.03, n)


CASES = []
for n in (5, 12, 30, 50):  # exact: continuous differences, no ties or zeros
    for shift in (0.0, 0.01, 0.05):
        CASES.append(("exact", "wilcox", *continuous(n, shift)))
for n in (12, 40, 80):  # approximation with ties (rounded differences) and zeros
    for zero_method in ("wilcox", "pratt", "zsplit"):
        x, y = continuous(n, 0.01)
        y = x + np.round(y - x, 2)
        y[:3] = x[:3]  # three zero differences
        CASES.append(("approx", zero_method, x, y))
CASES.append(("approx", "wilcox", *continuous(60, 0.02)))  # large n, no ties


@pytest.mark.parametrize("method,zero_method,x,y", CASES)
def test_matches_scipy(method, zero_method, x, y):
    expected = stats.wilcoxon(x, y, zero_method=zero_method, correction=False, alternative="two-sided",
                              method=method)
    statistic, pvalue, used = agcl(x, y, method, zero_method)
    assert used == method
    assert statistic == pytest.approx(expected.statistic, rel=1e-12, abs=1e-12)
    assert pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-15)


def test_auto_picks_exact_only_without_ties_zeros_and_up_to_50_pairs():
    x, y = continuous(50, 0.01)
    assert agcl(x, y, "auto", "wilcox")[2] == "exact"
    x, y = continuous(51, 0.01)
    assert agcl(x, y, "auto", "wilcox")[2] == "approx"
    x, y = continuous(20, 0.01)
    y[0] = x[0]
    assert agcl(x, y, "auto", "pratt")[2] == "approx"


def test_bad_input_is_refused():
    text = "auto wilcox\n1 2 3\n1 2\n"
    out = subprocess.run([TOOL], input=text, capture_output=True, text=True, check=True).stdout
    assert out.startswith("error:") and "pairs" in out
    text = "exact wilcox\n1 2 3 4\n0 1 2 3\n"  # ties
    out = subprocess.run([TOOL], input=text, capture_output=True, text=True, check=True).stdout
    assert out.startswith("error:") and "ties" in out
