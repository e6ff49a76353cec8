"""Paired tests and bootstrap intervals on cases whose answers are known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from eval.significance import bootstrap_ci, paired_test


def test_identical_systems_are_not_different():
    a = np.array([0.1, 0.5, 0.9])
    assert paired_test(a, a) == {"delta": 0.0, "t": 0.0, "p_ttest": 1.0, "p_randomization": 1.0}


def test_exact_randomisation_p_value():
    # differences 1, 0, 1, 1: of the 16 sign flips only the all-plus and all-minus ones (x2 for the zero) reach
    # |mean| >= 0.75, so p = 4 / 16. t = mean / (sd / sqrt(n)) = 0.75 / (0.5 / 2) = 3 with 3 degrees of freedom.
    got = paired_test(np.array([1.0, 0.0, 1.0, 1.0]), np.zeros(4))
    assert got["delta"] == 0.75
    assert got["p_randomization"] == pytest.approx(0.25)
    assert got["t"] == pytest.approx(3.0)
    assert got["p_ttest"] == pytest.approx(0.05767, abs=1e-5)


def test_constant_shift_gets_the_smallest_attainable_p():
    got = paired_test(np.full(5, 0.6), np.full(5, 0.4))
    assert got["delta"] == pytest.approx(0.2)
    assert got["p_randomization"] == got["p_ttest"] == 2.0**-4


def test_lengths_must_match():
    with pytest.raises(ValueError, match="equal lengths"):
        paired_test(np.zeros(3), np.zeros(4))


def test_bootstrap_interval_is_seeded_and_brackets_the_mean():
    values = np.linspace(0, 1, 50)
    lo, hi = bootstrap_ci(values, seed=3)
    assert lo < values.mean() < hi
    assert (lo, hi) == bootstrap_ci(values, seed=3)
    assert bootstrap_ci(np.full(4, 0.7)) == (0.7, 0.7)
    assert bootstrap_ci(np.array([])) == (0.0, 0.0)
