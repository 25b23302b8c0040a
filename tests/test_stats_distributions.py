"""Moments along axes and the energy distance of vector samples."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from sciffd.stats import energy_distance, flatness, skewness


def test_moments_along_axes_match_scipy():
    x = np.random.default_rng(40).gamma(2.0, size=(5, 300))
    np.testing.assert_allclose(skewness(x, axis=1), scipy.stats.skew(x, axis=1), rtol=1e-10)
    np.testing.assert_allclose(flatness(x, axis=-1),
                               scipy.stats.kurtosis(x, axis=-1, fisher=False), rtol=1e-10)
    assert isinstance(skewness(x), float)


def test_energy_distance_of_vectors_against_a_direct_double_sum():
    rng = np.random.default_rng(41)
    a, b = rng.standard_normal((7, 3)), 0.5 + rng.standard_normal((5, 3))

    def mean_norm(p, q):
        return np.mean([[np.linalg.norm(u - v) for v in q] for u in p])

    expected = 2 * mean_norm(a, b) - mean_norm(a, a) - mean_norm(b, b)
    np.testing.assert_allclose(energy_distance(a, b, sample_axis=0), expected, rtol=1e-12)
    # samples on another axis, and vectors of several axes flattened
    np.testing.assert_allclose(energy_distance(a.T, b.T, sample_axis=1), expected, rtol=1e-12)
    np.testing.assert_allclose(
        energy_distance(a.reshape(7, 3, 1), b.reshape(5, 3, 1), sample_axis=0), expected,
        rtol=1e-12)


def test_energy_distance_of_scalar_vectors_is_the_scalar_one():
    rng = np.random.default_rng(42)
    a, b = rng.standard_normal(40), rng.standard_normal(30)
    np.testing.assert_allclose(energy_distance(a[:, None], b[:, None], sample_axis=0),
                               energy_distance(a, b), rtol=1e-12)


def test_bad_input():
    with pytest.raises(ValueError, match="same shape apart from sample_axis"):
        energy_distance(np.zeros((3, 2)), np.zeros((3, 4)), sample_axis=0)
    with pytest.raises(ValueError, match="sample_axis=2 is out of range"):
        energy_distance(np.zeros((3, 2)), np.zeros((3, 2)), sample_axis=2)
    with pytest.raises(TypeError, match="dim=.* needs a DataArray"):
        skewness(np.zeros(4), dim="x")
    with pytest.raises(ValueError, match="NaN"):
        flatness(np.array([[1.0, np.nan]]), axis=1)
