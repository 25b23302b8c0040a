"""Spectra and pointwise distances against independent values."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from sciffd.grids import torus
from sciffd.noise import Matern
from sciffd.stats import (
    energy_distance,
    energy_spectrum,
    enstrophy_spectrum,
    flatness,
    ks_distance,
    log_spectral_error,
    power_spectrum,
    skewness,
    wasserstein1,
)


def test_single_mode_power_lands_in_its_shell():
    g = torus(32)
    y, x = g.mesh()
    # |m| = 5 for m = (3, 4): amplitude 2 cos has power 2^2 / 2 = 2
    u = 2.0 * np.cos(2 * np.pi * (3 * y + 4 * x))
    P = power_spectrum(u, g)
    assert np.argmax(P) == 5
    np.testing.assert_allclose(P[5], 2.0, rtol=1e-12)
    np.testing.assert_allclose(P.sum() - P[5], 0.0, atol=1e-12)


def test_energy_spectrum_of_analytic_vorticity():
    # w = cos(2 pi 3 x): psi = w / (2 pi 3)^2, u_y = -dpsi/dx, energy = mean(u^2)/2
    g = torus(24)
    y, x = g.mesh()
    k = 2 * np.pi * 3
    w = np.cos(k * x)
    E = energy_spectrum(w, g)
    velocity_amplitude = 1.0 / k
    np.testing.assert_allclose(E[3], velocity_amplitude**2 / 4, rtol=1e-12)
    np.testing.assert_allclose(enstrophy_spectrum(w, g)[3], 0.25, rtol=1e-12)


@pytest.mark.property
@settings(max_examples=25, deadline=None)
@given(ny=st.integers(3, 20), nx=st.integers(3, 20), seed=st.integers(0, 2**31))
def test_parseval_is_exact(ny, nx, seed):
    g = torus((ny, nx), lengths=(1.0, 1.5))
    u = np.random.default_rng(seed).standard_normal((2, ny, nx))
    P = power_spectrum(u, g)
    np.testing.assert_allclose(P.sum(axis=-1), (u**2).mean(axis=(-2, -1)), rtol=1e-12)


def test_spectrum_of_gaussian_field_matches_eigenvalues():
    g = torus(32)
    mu = Matern(alpha=2.0, tau=4.0)
    u = mu.sample(g, 400, seed=3, dtype=np.float64)[:, 0]
    measured = power_spectrum(u, g).mean(axis=0)
    lam = mu.eigenvalues(g)
    from sciffd.stats.spectra import _shell_sum

    expected = _shell_sum(lam, g)[: measured.size]
    n = np.arange(1, 12)
    # each shell pools about 2 pi n complex modes x 400 fields: relative sd of the
    # mean power is about 1/sqrt(400 * 2 pi n / 2); 5 sd bound
    rel_sd = 1 / np.sqrt(400 * np.pi * n)
    assert np.all(np.abs(measured[n] / expected[n] - 1) < 5 * rel_sd)
    assert log_spectral_error(measured, expected, n_max=10).max() < 0.05


def test_distances_against_scipy():
    rng = np.random.default_rng(0)
    a = rng.standard_normal(300)
    b = 1.2 * rng.standard_normal(411) + 0.3
    np.testing.assert_allclose(wasserstein1(a, b), scipy.stats.wasserstein_distance(a, b),
                               rtol=1e-12)
    np.testing.assert_allclose(energy_distance(a, b), scipy.stats.energy_distance(a, b) ** 2,
                               rtol=1e-10)
    np.testing.assert_allclose(ks_distance(a, b), scipy.stats.ks_2samp(a, b).statistic,
                               rtol=1e-12)
    np.testing.assert_allclose(skewness(b), scipy.stats.skew(b), rtol=1e-10)
    np.testing.assert_allclose(flatness(b), scipy.stats.kurtosis(b, fisher=False), rtol=1e-10)


def test_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        flatness([1.0, np.nan, 2.0])
    with pytest.raises(ValueError, match="last 2 axes"):
        power_spectrum(np.zeros((4, 5)), torus(8))
