"""Noise floors by bootstrap and thresholds stated as multiples of them."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from sciffd.stats import FloorCheck, NoiseFloor, noise_floor, wasserstein1, within_floor


def mean_difference(a, b):
    return float(a.mean() - b.mean())


def test_bootstrap_interval_of_a_mean_difference_is_the_normal_one():
    # the bootstrap law of mean(a*) - mean(b*) is about N(value, (var a + var b) / n), so the
    # 95 % percentile interval is value -/+ 1.96 sd; with 2000 replicates each end is
    # estimated to sqrt(p (1 - p) / B) / phi(1.96) = 0.06 sd: a 5-sigma bound is 0.3 sd
    rng = np.random.default_rng(20)
    n = 400
    a, b = rng.standard_normal(n), 1.5 * rng.standard_normal(n)
    floor = noise_floor(mean_difference, a, b, n_boot=2000, seed=1)
    assert isinstance(floor, NoiseFloor) and floor.n_boot == 2000
    assert floor.value == mean_difference(a, b)
    sd = np.sqrt((a.var() + b.var()) / n)
    assert abs(floor.low - (floor.value - 1.96 * sd)) < 0.3 * sd
    assert abs(floor.high - (floor.value + 1.96 * sd)) < 0.3 * sd


def test_noise_floor_is_reproducible_and_takes_arrays_of_metrics():
    rng = np.random.default_rng(21)
    a, b = rng.standard_normal((30, 4)), rng.standard_normal((30, 4))

    def per_column(x, y):
        return np.abs(x.mean(axis=0) - y.mean(axis=0))

    f1 = noise_floor(per_column, a, b, n_boot=50, seed=5)
    f2 = noise_floor(per_column, a, b, n_boot=50, seed=5)
    np.testing.assert_array_equal(f1.replicates, f2.replicates)
    assert f1.replicates.shape == (50, 4) and f1.low.shape == (4,)
    assert np.all(f1.low <= f1.high)
    np.testing.assert_array_equal(f1.value, per_column(a, b))


def test_noise_floor_resamples_members_of_dataarrays_and_torch(xp):
    rng = np.random.default_rng(22)
    a, b = rng.standard_normal((40, 3)), rng.standard_normal((40, 3))
    da = xr.DataArray(a, dims=("member", "x"))
    db = xr.DataArray(b, dims=("member", "x"))
    labelled = noise_floor(lambda x, y: float(x.mean() - y.mean()), da, db, n_boot=20, seed=2)
    plain = noise_floor(mean_difference, a, b, n_boot=20, seed=2)
    np.testing.assert_allclose(labelled.replicates, plain.replicates, rtol=1e-12)
    other = noise_floor(mean_difference, xp.asarray(a), xp.asarray(b), n_boot=20, seed=2)
    np.testing.assert_allclose(other.replicates, plain.replicates, rtol=1e-12)
    # a member axis other than 0
    moved = noise_floor(lambda x, y: float(x.mean() - y.mean()), a.T, b.T, n_boot=20, seed=2,
                        member_axis=1)
    np.testing.assert_allclose(moved.replicates, plain.replicates, rtol=1e-12)


def test_within_floor_states_a_threshold():
    assert within_floor(0.03, 0.02, 2.0) == FloorCheck(ratio=pytest.approx(1.5), passed=True)
    ratio, passed = within_floor(0.05, 0.02, 2.0)
    assert ratio == pytest.approx(2.5) and passed is False
    floor = NoiseFloor(value=0.02, low=0.01, high=0.04, confidence=0.95,
                       replicates=np.zeros(3))
    assert within_floor(0.05, floor, 2.0, bound="high").passed
    check = within_floor(np.array([0.01, 0.1]), np.array([0.02, 0.02]), 3.0)
    np.testing.assert_allclose(check.ratio, [0.5, 5.0])
    np.testing.assert_array_equal(check.passed, [True, False])


def test_floor_of_wasserstein_distance_between_two_truth_samples():
    # E W1 between two samples of N(0, 1) of size n shrinks like n^(-1/2): the floor of
    # samples 16 times larger is about 4 times smaller (asserted loosely: smaller)
    rng = np.random.default_rng(23)
    small = noise_floor(wasserstein1, rng.standard_normal(250), rng.standard_normal(250),
                        n_boot=1)
    large = noise_floor(wasserstein1, rng.standard_normal(4000), rng.standard_normal(4000),
                        n_boot=1)
    assert large.value < small.value


def test_bad_input():
    a = np.zeros((10, 2))
    with pytest.raises(ValueError, match="truth_a has 10 members and truth_b 9"):
        noise_floor(mean_difference, a, a[:9])
    with pytest.raises(TypeError, match="metric must be a callable"):
        noise_floor("w1", a, a)
    with pytest.raises(ValueError, match="n_boot=0"):
        noise_floor(mean_difference, a, a, n_boot=0)
    with pytest.raises(ValueError, match="confidence=1.5"):
        noise_floor(mean_difference, a, a, confidence=1.5)
    with pytest.raises(ValueError, match="no dim 'member'"):
        noise_floor(mean_difference, xr.DataArray(a, dims=("case", "x")),
                    xr.DataArray(a, dims=("case", "x")))
    with pytest.raises(ValueError, match="floor=0.0 must be finite and positive"):
        within_floor(0.1, 0.0, 2.0)
    with pytest.raises(ValueError, match="factor=-1"):
        within_floor(0.1, 0.1, -1)
    with pytest.raises(ValueError, match="bound='low'"):
        within_floor(0.1, 0.1, 2.0, bound="low")
