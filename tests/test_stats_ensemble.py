"""Ensemble scores against properscoring, scoringrules, scipy and statistics."""

from __future__ import annotations

import numpy as np
import properscoring
import pytest
import scipy.stats
import scoringrules
from hypothesis import given
from hypothesis import strategies as st

from sciffd.stats import (
    crps_ensemble,
    energy_score,
    ensemble_rank,
    rank_histogram,
    spread_skill_ratio,
)


@pytest.fixture
def ensemble():
    rng = np.random.default_rng(10)
    forecast = rng.standard_normal((9, 4, 5))  # members first
    truth = 0.3 + 1.2 * rng.standard_normal((4, 5))
    return forecast, truth


def test_crps_against_properscoring_and_scoringrules(ensemble):
    forecast, truth = ensemble
    members_last = np.moveaxis(forecast, 0, -1)
    # properscoring.crps_ensemble is the score of the empirical measure, c_M = 1/(2 M^2)
    np.testing.assert_allclose(crps_ensemble(forecast, truth, fair=False),
                               properscoring.crps_ensemble(truth, members_last), rtol=1e-13)
    np.testing.assert_allclose(
        crps_ensemble(forecast, truth, fair=False),
        scoringrules.crps_ensemble(truth, members_last, estimator="nrg"), rtol=1e-13)
    # scoringrules' "fair" estimator is Ferro's, c_M = 1/(2 M (M - 1))
    np.testing.assert_allclose(
        crps_ensemble(forecast, truth),
        scoringrules.crps_ensemble(truth, members_last, estimator="fair"), rtol=1e-13)
    np.testing.assert_allclose(crps_ensemble(np.moveaxis(forecast, 0, 1), truth, member_axis=1),
                               crps_ensemble(forecast, truth), rtol=1e-14)


@pytest.mark.property
@given(m=st.integers(1, 12), cases=st.integers(1, 6), fair=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_crps_matches_scoringrules_for_any_ensemble(m, cases, fair, seed):
    if fair and m < 2:
        m = 2
    rng = np.random.default_rng(seed)
    forecast = rng.standard_normal((m, cases)) * rng.uniform(0.1, 3.0)
    truth = rng.standard_normal(cases)
    expected = scoringrules.crps_ensemble(truth, forecast.T, estimator="fair" if fair else "nrg")
    np.testing.assert_allclose(crps_ensemble(forecast, truth, fair=fair), expected,
                               rtol=1e-12, atol=1e-14)


def test_fair_crps_is_unbiased_for_small_ensembles():
    # E[fair CRPS] of M = 3 members of N(0, 1) equals the CRPS of N(0, 1) at y:
    # y (2 Phi(y) - 1) + 2 phi(y) - 1/sqrt(pi); the empirical-measure score is larger
    # by E|X - X'| / (2 M) = 1 / (sqrt(pi) M)
    rng = np.random.default_rng(11)
    n, m, y = 100_000, 3, 0.4
    forecast = rng.standard_normal((m, n))
    exact = y * (2 * scipy.stats.norm.cdf(y) - 1) + 2 * scipy.stats.norm.pdf(y) - 1 / np.sqrt(
        np.pi)
    fair = crps_ensemble(forecast, np.full(n, y))
    sd = fair.std() / np.sqrt(n)  # normal bound on the mean of n independent scores
    assert abs(fair.mean() - exact) < 5 * sd
    plain = crps_ensemble(forecast, np.full(n, y), fair=False).mean()
    assert abs(plain - exact - 1 / (np.sqrt(np.pi) * m)) < 5 * sd


def test_energy_score_against_scoringrules(ensemble):
    forecast, truth = ensemble
    # vectors on the last axis; scoringrules wants (..., M, D)
    members_then_vector = np.moveaxis(forecast, 0, -2)
    for fair, estimator in [(False, "nrg"), (True, "fair")]:
        expected = scoringrules.es_ensemble(truth, members_then_vector, estimator=estimator)
        got = energy_score(forecast, truth, vector_axes=-1, norm="euclidean", fair=fair)
        np.testing.assert_allclose(got, expected, rtol=1e-13)
        # the function-space norm is the Euclidean one over sqrt(D)
        np.testing.assert_allclose(energy_score(forecast, truth, vector_axes=-1, fair=fair),
                                   expected / np.sqrt(truth.shape[-1]), rtol=1e-13)
    # one vector of all 20 values
    whole = scoringrules.es_ensemble(truth.reshape(-1), forecast.reshape(9, -1))
    np.testing.assert_allclose(energy_score(forecast, truth, norm="euclidean"), whole,
                               rtol=1e-13)


def test_one_dimensional_energy_score_is_the_crps(ensemble):
    forecast, truth = ensemble
    np.testing.assert_allclose(
        energy_score(forecast[..., None], truth[..., None], vector_axes=-1, fair=True),
        crps_ensemble(forecast, truth), rtol=1e-12)


def calibrated(rng, n, m, member_sd=1.0):
    """n cases: a case mean, truth and members drawn around it (sd 1 and member_sd)."""
    mu = rng.normal(0.0, 3.0, n)
    truth = mu + rng.standard_normal(n)
    forecast = mu + member_sd * rng.standard_normal((m, n))
    return forecast, truth


def test_spread_skill_ratio_is_one_for_a_calibrated_ensemble():
    rng = np.random.default_rng(12)
    n, m = 20_000, 8
    forecast, truth = calibrated(rng, n, m)
    ratio = spread_skill_ratio(forecast, truth)
    # log SSR = (log A - log B) / 2 with A = <s^2> (relative variance 2 / ((M-1) n)) and
    # B = <(xbar - y)^2> M / (M+1) (relative variance 2 / n), independent: 5 sd bound
    sd = 0.5 * np.sqrt(2 / n * (1 + 1 / (m - 1)))
    assert abs(np.log(ratio)) < 5 * sd
    # without sqrt((M+1)/M) the ratio would be sqrt(M / (M+1)) = 0.943, outside the bound
    assert abs(np.log(np.sqrt(m / (m + 1)))) > 5 * sd

    # members with sd 1/2: SSR = sqrt((M+1)/M * 0.25 / (1 + 0.25 / M))
    narrow, truth = calibrated(rng, n, m, member_sd=0.5)
    expected = np.sqrt((m + 1) / m * 0.25 / (1 + 0.25 / m))
    assert abs(np.log(spread_skill_ratio(narrow, truth) / expected)) < 5 * sd


def test_spread_skill_ratio_over_some_axes():
    rng = np.random.default_rng(13)
    forecast = rng.standard_normal((5, 3, 40))
    truth = rng.standard_normal((3, 40))
    per_row = spread_skill_ratio(forecast, truth, axis=1)
    assert per_row.shape == (3,)
    np.testing.assert_allclose(per_row[1], spread_skill_ratio(forecast[:, 1], truth[1]))


def test_ranks_and_rank_histogram_against_direct_counts(ensemble):
    forecast, truth = ensemble
    direct = np.zeros(truth.shape, dtype=int)
    for i in np.ndindex(truth.shape):
        direct[i] = sum(forecast[(k,) + i] < truth[i] for k in range(9))
    np.testing.assert_array_equal(ensemble_rank(forecast, truth), direct)
    h = rank_histogram(forecast, truth)
    np.testing.assert_array_equal(h.counts, np.bincount(direct.ravel(), minlength=10))
    reference = scipy.stats.chisquare(h.counts)
    np.testing.assert_allclose([h.chi2, h.p_value], [reference.statistic, reference.pvalue],
                               rtol=1e-12)
    assert h.dof == 9 and h.frequencies.sum() == pytest.approx(1.0)


def test_rank_histogram_flat_when_calibrated_and_u_shaped_when_underdispersed():
    rng = np.random.default_rng(14)
    n, m = 20_000, 8
    # independent cases: under calibration the p-value is uniform on (0, 1)
    forecast, truth = calibrated(rng, n, m)
    assert rank_histogram(forecast, truth).p_value > 1e-3
    narrow, truth = calibrated(rng, n, m, member_sd=0.5)
    h = rank_histogram(narrow, truth)
    middle = h.counts[1:-1].max()
    assert h.counts[0] > 2 * middle and h.counts[-1] > 2 * middle
    assert h.p_value < 1e-12


def test_ties_are_split_at_random():
    # every member equals the truth: all ranks 0 .. M equally likely
    forecast, truth = np.zeros((4, 5000)), np.zeros(5000)
    h = rank_histogram(forecast, truth, seed=3)
    assert h.counts.sum() == 5000 and h.p_value > 1e-3
    np.testing.assert_array_equal(ensemble_rank(forecast, truth, seed=3),
                                  ensemble_rank(forecast, truth, seed=3))


def test_bad_input(ensemble):
    forecast, truth = ensemble
    with pytest.raises(ValueError, match=r"truth has shape \(5, 4\)"):
        crps_ensemble(forecast, truth.T)
    with pytest.raises(ValueError, match="member_axis=3 is out of range"):
        crps_ensemble(forecast, truth, member_axis=3)
    with pytest.raises(ValueError, match="needs at least 2"):
        crps_ensemble(forecast[:1], truth)
    with pytest.raises(ValueError, match="truth contains NaN"):
        spread_skill_ratio(forecast, np.full_like(truth, np.nan))
    with pytest.raises(ValueError, match="norm='l1'"):
        energy_score(forecast, truth, norm="l1")
    with pytest.raises(ValueError, match="vector_axes=5"):
        energy_score(forecast, truth, vector_axes=5)
    with pytest.raises(TypeError, match="member_axis=0.5"):
        rank_histogram(forecast, truth, member_axis=0.5)
