"""The drift statistics agree with scipy's reference implementations to 1e-9, ties and odd sizes included."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon as scipy_jensenshannon

from loopml.errors import InvalidValueError
from loopml.monitoring import stattests
from loopml.monitoring.samples import DISCRETE_MAX, counts, prepare, sorted_quantile

TOL = 1e-9


def sorted_normal(rng: np.random.Generator, n: int, shift: float = 0.0) -> np.ndarray:
    return np.sort(rng.normal(size=n) + shift)


@pytest.mark.parametrize(("n_ref", "n_cur"), [(50, 50), (300, 170), (1000, 999), (5000, 20000)])
def test_ks_matches_scipy(n_ref, n_cur):
    rng = np.random.default_rng(n_ref + n_cur)
    ref, cur = sorted_normal(rng, n_ref), sorted_normal(rng, n_cur, 0.1)
    statistic, p_value = stattests.ks(ref, cur)
    expected = stats.ks_2samp(ref, cur)
    assert statistic == pytest.approx(expected.statistic, abs=TOL)
    assert p_value == pytest.approx(expected.pvalue, abs=TOL)


def test_ks_exact_p_values_match_scipy_on_many_random_samples():
    """Our exact p-values (no scipy.stats) against ks_2samp: the same statistic, p-values within 1e-9, same verdicts.

    Absolute, not relative: like any "1 - P(inside)" a p-value far below 1e-9 is only right to about
    1e-12 (ks_2samp computes the outside share directly); the verdict at 0.05 never depends on it.
    """
    rng = np.random.default_rng(17)
    for trial in range(400):
        n_ref = int(rng.integers(1, 400))
        n_cur = n_ref if trial % 8 == 0 else int(rng.integers(1, 400))
        shift = float(rng.choice([0.0, 0.1, 0.3, 1.0]))
        ref, cur = sorted_normal(rng, n_ref), sorted_normal(rng, n_cur, shift)
        if trial % 5 == 0:  # ties, within and across the samples
            ref, cur = np.round(ref, 1), np.round(cur, 1)
        statistic, p_value = stattests.ks(ref, cur)
        expected = stats.ks_2samp(ref, cur)
        assert statistic == expected.statistic, (n_ref, n_cur)
        assert p_value == pytest.approx(expected.pvalue, abs=TOL), (n_ref, n_cur)
        assert (p_value < 0.05) == (expected.pvalue < 0.05), (n_ref, n_cur)


@pytest.mark.parametrize(("n_ref", "n_cur"), [(1, 1), (1, 7), (10, 10), (333, 1000), (4096, 1000), (20000, 20000)])
def test_wasserstein_matches_scipy_for_equal_and_unequal_sizes(n_ref, n_cur):
    rng = np.random.default_rng(n_ref * 7 + n_cur)
    ref, cur = sorted_normal(rng, n_ref), np.sort(rng.exponential(size=n_cur))
    assert stattests.wasserstein(ref, cur) == pytest.approx(stats.wasserstein_distance(ref, cur), rel=TOL, abs=TOL)


def test_wasserstein_with_many_ties_matches_scipy():
    rng = np.random.default_rng(3)
    ref = np.sort(rng.integers(0, 4, 1000).astype(float))
    cur = np.sort(rng.integers(1, 6, 777).astype(float))
    assert stattests.wasserstein(ref, cur) == pytest.approx(stats.wasserstein_distance(ref, cur), abs=TOL)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-20, 20), min_size=1, max_size=60),
    st.lists(st.integers(-20, 20), min_size=1, max_size=60),
)
def test_wasserstein_property_against_scipy(ref, cur):
    ref_values, cur_values = np.sort(np.array(ref, dtype=float) / 4), np.sort(np.array(cur, dtype=float) / 4)
    expected = stats.wasserstein_distance(ref_values, cur_values)
    assert stattests.wasserstein(ref_values, cur_values) == pytest.approx(expected, abs=TOL)


def test_wasserstein_normed_divides_by_reference_std_and_floors_a_constant_reference():
    rng = np.random.default_rng(4)
    ref, cur = sorted_normal(rng, 2000) * 3, sorted_normal(rng, 1500, 1.0) * 3
    statistic, p_value = stattests.wasserstein_normed(ref, cur)
    assert statistic == pytest.approx(stats.wasserstein_distance(ref, cur) / np.std(ref), rel=TOL)
    assert math.isnan(p_value)
    constant = np.full(100, 5.0)
    shifted = np.sort(np.r_[np.full(99, 5.0), 6.0])
    statistic, _ = stattests.wasserstein_normed(constant, shifted)
    assert statistic == pytest.approx(0.01 / stattests.STD_FLOOR)
    assert stattests.wasserstein_normed(constant, constant)[0] == 0.0


@pytest.mark.parametrize(
    ("ref", "cur"),
    [
        ([50, 30, 20], [45, 35, 20]),
        ([500, 300, 200, 0], [450, 300, 200, 50]),  # a category new in the current data
        ([10, 90], [30, 70]),  # two categories: the two-proportion z-test, squared
        ([7, 0, 3, 11, 1], [2, 5, 8, 1, 0]),
    ],
)
def test_chisquare_matches_chi2_contingency(ref, cur):
    table = np.array([ref, cur])
    statistic, p_value = stattests.chisquare(np.array(ref), np.array(cur))
    kept = table[:, table.sum(axis=0) > 0]
    expected = stats.chi2_contingency(kept, correction=False)
    assert statistic == pytest.approx(expected.statistic, abs=TOL)
    assert p_value == pytest.approx(expected.pvalue, abs=TOL)


def test_chi2_survival_function_matches_scipy_to_1e9_relative():
    """Ours in pure Python against ``scipy.special.chdtrc``, dof 1 to 20,000, both tails."""
    from scipy.special import chdtrc

    rng = np.random.default_rng(6)
    for _ in range(2000):
        dof = int(rng.choice([rng.integers(1, 40), rng.integers(1, 20_000)]))
        x = float(rng.gamma(dof / 2, 2) * rng.choice([0.01, 0.5, 0.9, 1.0, 1.1, 2.0, 5.0]))
        assert stattests._chi2_sf(dof, x) == pytest.approx(float(chdtrc(dof, x)), rel=TOL, abs=1e-300), (dof, x)
    assert stattests._chi2_sf(3, 0.0) == 1.0 and stattests._chi2_sf(3, 1e7) == 0.0


def test_chisquare_of_a_single_category_is_no_evidence():
    assert stattests.chisquare(np.array([10]), np.array([4])) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("ref", "cur"),
    [([50, 30, 20], [45, 35, 20]), ([1, 0, 0], [0, 0, 1]), ([5, 5], [5, 5]), ([3, 0, 9, 1], [0, 4, 9, 2])],
)
def test_jensenshannon_matches_scipy(ref, cur):
    statistic, p_value = stattests.jensenshannon(np.array(ref, dtype=float), np.array(cur, dtype=float))
    assert statistic == pytest.approx(scipy_jensenshannon(ref, cur), abs=TOL)
    assert math.isnan(p_value)


def test_jensenshannon_of_identical_histograms_is_zero_without_warnings():
    counts_ = np.array([1e6, 3.0, 1e-3, 7.0])
    assert stattests.jensenshannon(counts_, counts_ * 3)[0] == pytest.approx(0.0, abs=1e-7)


def test_psi_follows_its_formula_with_floored_empty_bins():
    ref, cur = np.array([40.0, 40.0, 20.0, 0.0]), np.array([30.0, 30.0, 30.0, 10.0])
    p = np.array([0.4, 0.4, 0.2, stattests.PSI_FLOOR])
    q = np.array([0.3, 0.3, 0.3, 0.1])
    assert stattests.psi(ref, cur)[0] == pytest.approx(float(np.sum((q - p) * np.log(q / p))), abs=TOL)
    assert stattests.psi(ref, ref)[0] == 0.0


def test_test_names_resolve_with_aliases_and_suggest_on_typos():
    assert stattests.get_test("KS").name == "ks"
    assert stattests.get_test("chi2").name == "chisquare"
    assert stattests.get_test("js").name == "jensenshannon"
    with pytest.raises(InvalidValueError, match=r"Unknown drift test 'wasserstien'.*Did you mean 'wasserstein'"):
        stattests.get_test("wasserstien")


def test_p_value_tests_flag_below_the_threshold_and_distances_at_or_above_it():
    ks, psi = stattests.TESTS["ks"], stattests.TESTS["psi"]
    assert ks.drifted(0.5, 0.049, 0.05) and not ks.drifted(0.5, 0.05, 0.05)
    assert psi.drifted(0.1, math.nan, 0.1) and not psi.drifted(0.099, math.nan, 0.1)
    assert not psi.drifted(math.nan, math.nan, 0.1) and not ks.drifted(math.nan, math.nan, 0.05)


def test_sorted_quantile_matches_numpy():
    values = np.sort(np.random.default_rng(5).normal(size=1001))
    q = np.array([0, 0.005, 0.1, 0.5, 0.995, 1])
    np.testing.assert_allclose(sorted_quantile(values, q), np.quantile(values, q), rtol=0, atol=1e-12)


def test_numeric_bins_match_numpy_histograms():
    rng = np.random.default_rng(6)
    ref_s, cur_s = pd.Series(rng.normal(size=3000)), pd.Series(rng.normal(size=2000) + 0.2)
    sample = prepare("x", ref_s, cur_s, stattests.NUMERIC)
    ref_counts, cur_counts = counts(sample, "jensenshannon")
    edges = np.histogram_bin_edges(np.r_[ref_s, cur_s], bins="sturges")
    np.testing.assert_array_equal(ref_counts, np.histogram(ref_s, edges)[0])
    np.testing.assert_array_equal(cur_counts, np.histogram(cur_s, edges)[0])
    deciles_ref, deciles_cur = counts(sample, "psi")
    assert deciles_ref.sum() == 3000 and deciles_cur.sum() == 2000
    assert np.all(np.abs(deciles_ref - 300) <= 1)


def test_a_numeric_column_with_few_values_is_counted_per_value():
    sample = prepare("k", pd.Series([1, 2, 2, 3, 3, 3]), pd.Series([3, 4, 4]), stattests.NUMERIC)
    assert sample.n_distinct == 4 <= DISCRETE_MAX
    ref_counts, cur_counts = counts(sample, "chisquare")
    assert ref_counts.tolist() == [1, 2, 3, 0] and cur_counts.tolist() == [0, 0, 1, 2]
