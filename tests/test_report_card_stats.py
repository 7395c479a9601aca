"""finetune.stats: Wilson intervals against published values."""

from __future__ import annotations

import pytest

from finetune.stats import overlap, rate, wilson


def test_wilson_known_values():
    # Newcombe (1998), Table I: 81/263 -> 0.2553-0.3662; 15/148 -> 0.0624-0.1605
    lo, hi = wilson(81, 263)
    assert lo == pytest.approx(0.2553, abs=1e-4) and hi == pytest.approx(0.3662, abs=1e-4)
    lo, hi = wilson(15, 148)
    assert lo == pytest.approx(0.0624, abs=1e-4) and hi == pytest.approx(0.1605, abs=1e-4)
    # 0/10 and 10/10: the interval touches the bound and stays informative on the other side
    assert wilson(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    assert wilson(10, 10) == (pytest.approx(0.7225, abs=1e-4), pytest.approx(1.0))


def test_wilson_edges_and_rate():
    assert wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson(3, 2)
    r = rate(25, 100)
    assert r["rate"] == 0.25 and r["ci95"][0] < 0.25 < r["ci95"][1] and r["n"] == 100
    assert rate(0, 0)["rate"] is None
    assert overlap((0.1, 0.3), (0.25, 0.5)) and not overlap((0.1, 0.2), (0.3, 0.4))


def test_diff_ci_newcombe_method_10():
    from finetune.stats import diff_ci

    # Newcombe (1998), Table II example (a): 56/70 - 48/80 -> 0.0524 to 0.3339
    lo, hi = diff_ci(56, 70, 48, 80)
    assert lo == pytest.approx(0.0524, abs=1e-3) and hi == pytest.approx(0.3339, abs=1e-3)
    lo, hi = diff_ci(5, 10, 5, 10)
    assert lo < 0 < hi
