"""Fitting a Matern spectrum to fields."""

from __future__ import annotations

import numpy as np
import pytest

from sciffd.grids import torus
from sciffd.noise import Matern, fit_matern
from sciffd.stats.spectra import _shell_sum


def _shell_mean(lam, grid):
    return _shell_sum(lam, grid) / _shell_sum(np.ones(grid.spectral_shape), grid)


@pytest.mark.parametrize("alpha, tau", [(2.5, 6.0), (4.0, 10.0)])
def test_fit_recovers_the_spectrum_of_a_matern_sample(alpha, tau):
    grid = torus(32)
    true = Matern(alpha, tau, sigma=3.0)
    n_fields = 300
    u = true.sample(grid, n_fields, seed=11, dtype=np.float64)[:, 0]
    fit = fit_matern(u, grid, unit_variance=False)

    n = np.arange(1, 11)
    ratio = _shell_mean(fit.eigenvalues(grid), grid)[n] / _shell_mean(true.eigenvalues(grid),
                                                                      grid)[n]
    # the smallest shell pools 8 modes (4 complex pairs x 2 real dofs... at least 8
    # real chi-square dofs) per field; the relative sd of its mean power is at most
    # 1/sqrt(4 * n_fields), and the fit, pooling all shells, is no worse than
    # the worst shell: a 5-sd bound on the log
    bound = 5 / np.sqrt(4 * n_fields)
    assert np.all(np.abs(np.log(ratio)) < bound)


def test_unit_variance_fit():
    grid = torus(32)
    u = Matern(3.0, 5.0, sigma=40.0).sample(grid, 50, seed=2, dtype=np.float64)[:, 0]
    fit = fit_matern(u, grid)
    fine = torus(256)
    # continuum variance 1 up to the truncation of a 256^2 grid
    assert abs(fit.pointwise_variance(fine) - 1.0) < 1e-3


def test_fit_refuses_bad_fields():
    grid = torus(16)
    with pytest.raises(ValueError, match="expected"):
        fit_matern(np.zeros((4, 8, 8)), grid)
    with pytest.raises(ValueError, match="finite"):
        fit_matern(np.full((4, 16, 16), np.nan), grid)
    with pytest.raises(TypeError, match="TorusGrid"):
        fit_matern(np.zeros((4, 16, 16)), (16, 16))
