"""Discretisation-invariance checks on nested Gaussian samples, where the
answers are known: identical low modes, and exact Gaussian moments."""

from __future__ import annotations

import numpy as np
import pytest

from sciffd.grids import torus
from sciffd.noise import Matern
from sciffd.spectral import resample
from sciffd.stats.invariance import (
    low_mode_error,
    resolution_series,
    restriction_law,
    spectra_agreement,
    spectral_statistic,
)

MU = Matern(alpha=2.0, tau=3.0)
GRIDS = [torus(n) for n in (16, 32, 64)]


@pytest.fixture(scope="module")
def nested():
    """Members 0 .. 31 of seed 1 at 16^2, 32^2 and 64^2 (the same low modes)."""
    return [MU.sample(g, 32, seed=1, dtype=np.float64)[:, 0] for g in GRIDS]


def test_nested_samples_have_the_same_spectra_on_the_shared_band(nested):
    result = spectra_agreement(nested, GRIDS, n_boot=20)
    assert result.n_max == 5 and result.errors.shape == (2, 5)
    assert result.max_error.max() < 1e-12
    assert result.floor.value > 0 and np.all(result.ratio < 1e-9)


def test_a_mis_scaled_resolution_shows_in_the_spectra(nested):
    wrong = [nested[0], 1.5 * nested[1]]
    result = spectra_agreement(wrong, GRIDS[:2], n_boot=20)
    np.testing.assert_allclose(result.errors, np.log10(2.25), rtol=1e-12)


def test_spectra_floor_from_a_reference_pair(nested):
    a = MU.sample(GRIDS[0], 32, seed=2, dtype=np.float64)[:, 0]
    b = MU.sample(GRIDS[0], 32, seed=3, dtype=np.float64)[:, 0]
    result = spectra_agreement(nested[:2], GRIDS[:2], reference=(a, b), n_boot=5)
    from sciffd.stats import log_spectral_error, power_spectrum

    direct = log_spectral_error(power_spectrum(a, GRIDS[0]), power_spectrum(b, GRIDS[0]),
                                n_max=5).max()
    assert result.floor.value == pytest.approx(direct, rel=1e-12)


def test_restriction_of_the_fine_sample_has_the_coarse_law(nested):
    result = restriction_law(nested[0], GRIDS[0], nested[1], GRIDS[1], n_boot=20)
    assert abs(result.distance) < 1e-10 and result.floor.value > 0
    # a law with other smoothness differs by far more than the floor
    rough = Matern(alpha=1.5, tau=3.0).sample(GRIDS[1], 32, seed=1, dtype=np.float64)[:, 0]
    wrong = restriction_law(nested[0], GRIDS[0], rough, GRIDS[1], n_boot=20)
    assert wrong.ratio > 3


def test_spectral_statistic_is_the_log_band_spectrum(nested):
    from sciffd.stats import power_spectrum

    stat = spectral_statistic(nested[0], GRIDS[0])
    np.testing.assert_allclose(stat, np.log10(power_spectrum(nested[0], GRIDS[0])[:, 1:6]))


def test_low_mode_error_of_known_perturbations():
    # a coarse field made of modes n <= 16/3 only, so its projection is itself
    g, fine = GRIDS[0], GRIDS[1]
    y, x = g.mesh()
    u = np.cos(2 * np.pi * (2 * x + y)) + 0.5 * np.sin(2 * np.pi * 3 * y)
    yf, xf = fine.mesh()
    high = 0.3 * np.cos(2 * np.pi * 9 * xf)  # shell 9 > 5: outside the compared band
    low = 0.01 * np.cos(2 * np.pi * xf)
    u_fine = resample(u[None], g, fine)[0]
    err = low_mode_error(u[None], g, (u_fine + high)[None], fine)
    assert err.shape == (1,) and err[0] < 1e-14
    err = low_mode_error(u[None], g, (u_fine + high + low)[None], fine)
    expected = np.sqrt(0.01**2 / 2 / np.mean(u**2))  # ||low|| / ||u||, grid means
    np.testing.assert_allclose(err, expected, rtol=1e-10)


def test_nested_members_agree_on_their_low_modes(nested):
    err = low_mode_error(nested[0], GRIDS[0], nested[2], GRIDS[2])
    assert err.shape == (32,) and err.max() < 1e-13


def full_sum(values, g):
    """Sum over the full spectrum from the half spectrum."""
    return float((g.hermitian_weight * values).sum())


def test_resolution_series_matches_the_gaussian_moments():
    m = 64
    samples = [MU.sample(g, m, seed=4, dtype=np.float64)[:, 0] for g in GRIDS]
    series = resolution_series(samples, GRIDS)
    assert series.shapes == ((16, 16), (32, 32), (64, 64))
    for i, g in enumerate(GRIDS):
        lam, k2 = MU.eigenvalues(g), g.k_squared
        # per real degree of freedom the sums are chi-square: Var(mean over members) of
        # sum_k |u_hat|^2 f_k is 2 sum_full lambda^2 f^2 / M (ddof=1 variance: M - 1)
        sd_var = np.sqrt(2 * full_sum(lam**2, g) / (m - 1))
        assert abs(series.variance[i] - MU.pointwise_variance(g)) < 5 * sd_var
        sd_z = 0.5 * np.sqrt(2 * full_sum(lam**2, g) / m)
        assert abs(series.enstrophy[i] - 0.5 * full_sum(lam, g)) < 5 * sd_z
        sd_p = 0.5 * np.sqrt(2 * full_sum(lam**2 * k2**2, g) / m)
        assert abs(series.palinstrophy[i] - 0.5 * full_sum(lam * k2, g)) < 5 * sd_p
    # nested members only gain modes as N grows: E |grad u|^2 diverges (log) for alpha = 2
    assert np.all(np.diff(series.palinstrophy) > 0)


def test_bad_input(nested):
    with pytest.raises(ValueError, match="got 3 samples and 2 grids"):
        spectra_agreement(nested, GRIDS[:2])
    with pytest.raises(ValueError, match="ordered from coarse to fine"):
        spectra_agreement(nested[::-1], GRIDS[::-1])
    with pytest.raises(ValueError, match="not a resolution of the domain"):
        low_mode_error(nested[0], GRIDS[0], nested[1], torus(32, lengths=2.0))
    with pytest.raises(ValueError, match="samples\\[1\\] has shape"):
        resolution_series([nested[0], nested[2]], GRIDS[:2])
    with pytest.raises(ValueError, match="same members"):
        low_mode_error(nested[0], GRIDS[0], nested[1][:4], GRIDS[1])
    with pytest.raises(ValueError, match="needs at least 4"):
        restriction_law(nested[0][:3], GRIDS[0], nested[1][:3], GRIDS[1])
    with pytest.raises(TypeError, match="statistic must be a callable"):
        restriction_law(nested[0], GRIDS[0], nested[1], GRIDS[1], statistic="spectrum")
