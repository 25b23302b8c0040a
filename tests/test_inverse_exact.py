"""Tests of the exact Gaussian posterior against brute-force Bayes.

The reference is written independently of the code: the prior is
expanded in an orthonormal basis ``E`` of its range (eigenvectors of the
dense covariance of grid values from :func:`references.dense_covariance`),
``u = m + E c`` with ``c ~ N(0, L)``, the observation matrices are written
out as sums of cosines, and the posterior of ``c`` is taken in information
form, ``P_c = (L^-1 + (H E)^T R^-1 (H E))^-1`` -- a different formula from
the Kalman gain the code uses.
"""

from __future__ import annotations

import numpy as np
import pytest
from references import TrigPolynomial, dense_covariance, full_modes, nyquist_free, point_indices
from scipy import stats

from sciffd.grids import torus
from sciffd.inverse import (
    Blur,
    CoarseGrain,
    LinearOperator,
    MaskObservation,
    ObservationNoise,
    Observations,
    PointObservation,
    exact_posterior,
    grid_covariance,
)
from sciffd.noise import Matern

PRIOR_1D = Matern(alpha=2.0, tau=2.0, sigma=2.0**2, ndim=1)
PRIOR_2D = Matern(alpha=2.5, tau=4.0, sigma=4.0**2.5)


# -- the independent reference ----------------------------------------------------
def nodes(grid) -> np.ndarray:
    return point_indices(grid.shape) * (np.asarray(grid.lengths) / np.asarray(grid.shape))


def cosine_matrix(points, grid, modes, weights=None) -> np.ndarray:
    """``(1/n) sum_m w_m cos(k_m . (x_p - x_j))``: rows points, columns grid nodes."""
    k = 2 * np.pi * modes / np.asarray(grid.lengths)
    w = np.ones(len(modes)) if weights is None else weights
    diff = points[:, None, :] - nodes(grid)[None]
    return (np.cos(diff @ k.T) * w).sum(-1) / grid.size


def band_modes(grid, band_shape=None) -> np.ndarray:
    """The modes of ``grid`` without Nyquist, within the band of ``band_shape``."""
    m = full_modes(grid.shape)
    m = m[nyquist_free(m, grid.shape)]
    if band_shape is not None:
        m = m[nyquist_free(m, band_shape) & (2 * np.abs(m) < np.asarray(band_shape)).all(1)]
    return m


def brute_force(prior, grid, mean, h, values, r):
    """Posterior mean and covariance of grid values, in information form."""
    q = dense_covariance(prior.spectrum, grid.shape, grid.lengths)
    lam, vec = np.linalg.eigh(q)
    keep = lam > 1e-12 * lam.max()
    e, lam = vec[:, keep], lam[keep]
    he = h @ e
    r_inv = np.linalg.inv(r)
    p_c = np.linalg.inv(np.diag(1 / lam) + he.T @ r_inv @ he)
    mean_c = p_c @ he.T @ r_inv @ (values - h @ mean)
    return mean + e @ mean_c, e @ p_c @ e.T


# -- tests ---------------------------------------------------------------------------
def test_grid_covariance_is_the_dense_covariance():
    for grid, prior in [(torus(8, ndim=1), PRIOR_1D), (torus((6, 8), (1.0, 2.0)), PRIOR_2D)]:
        np.testing.assert_allclose(grid_covariance(prior, grid),
                                   dense_covariance(prior.spectrum, grid.shape, grid.lengths),
                                   atol=1e-13)


@pytest.mark.parametrize("noise", [
    ObservationNoise(std=0.2),
    ObservationNoise(std=[0.1, 0.3, 0.05]),
    ObservationNoise(covariance=[[0.04, 0.01, 0.0], [0.01, 0.09, 0.02], [0.0, 0.02, 0.01]]),
], ids=["scalar", "per-point", "covariance"])
def test_point_posterior_1d_against_brute_force(noise, rng):
    grid = torus(8, lengths=3.0, ndim=1)
    points = np.array([[0.4], [1.3], [2.95]])
    values = np.array([0.7, -0.2, 1.1])
    obs = Observations(PointObservation(points, "spectral"), values, noise)
    post = exact_posterior(PRIOR_1D, None, obs, grid)
    assert post.method == "dense"
    h = cosine_matrix(points, grid, band_modes(grid))
    mean, cov = brute_force(PRIOR_1D, grid, np.zeros(8), h, values, noise.matrix(3))
    np.testing.assert_allclose(post.mean.reshape(-1), mean, atol=1e-10)
    np.testing.assert_allclose(post.covariance, cov, atol=1e-10)
    np.testing.assert_allclose(post.variance.reshape(-1), np.diag(cov), atol=1e-10)


def test_mask_and_linear_posteriors_2d_against_brute_force(rng):
    grid = torus((6, 8), lengths=(1.0, 2.0))
    poly = TrigPolynomial.random(rng, grid.shape, grid.lengths, terms=3)
    mean = poly.values(grid.shape)
    region = rng.random(grid.shape) < 0.2
    a = rng.standard_normal((4, grid.size))
    cases = [
        (MaskObservation(region, grid), np.eye(grid.size)[region.reshape(-1)]),
        (LinearOperator(lambda u: u.reshape(u.shape[0], -1) @ _torch(a).T, 4), a),
    ]
    for op, h in cases:
        values = rng.standard_normal(h.shape[0])
        obs = Observations(op, values, 0.1)
        post = exact_posterior(PRIOR_2D, mean[None], obs, grid)
        ref_mean, ref_cov = brute_force(PRIOR_2D, grid, mean.reshape(-1), h, values,
                                        0.01 * np.eye(h.shape[0]))
        np.testing.assert_allclose(post.mean.reshape(-1), ref_mean, atol=1e-9)
        np.testing.assert_allclose(post.covariance, ref_cov, atol=1e-10)


def _torch(a):
    import torch

    return torch.from_numpy(a)


@pytest.mark.parametrize("case", ["blur", "blur-coarse", "coarse"])
def test_spectral_posterior_against_brute_force_and_dense(case, rng):
    grid = torus((8, 10), lengths=(1.0, 1.5))
    modes = band_modes(grid)
    k2 = ((2 * np.pi * modes / np.asarray(grid.lengths)) ** 2).sum(1)
    if case == "blur":
        op, obs_shape, w = Blur(0.1), grid.shape, np.exp(-0.5 * 0.01 * k2)
    elif case == "blur-coarse":
        op, obs_shape = Blur(0.1, shape=(4, 6)), (4, 6)
        w = np.exp(-0.5 * 0.01 * k2)
    else:
        op, obs_shape, w = CoarseGrain(shape=(6, 5), method="spectral"), (6, 5), np.ones(len(k2))
    in_band = nyquist_free(modes, obs_shape) & (2 * np.abs(modes) < np.asarray(obs_shape)).all(1)
    obs_grid = grid.with_shape(obs_shape)
    h = cosine_matrix(nodes(obs_grid), grid, modes[in_band], w[in_band])
    values = rng.standard_normal(obs_grid.size)
    obs = Observations(op, values, 0.3)
    post = exact_posterior(PRIOR_2D, None, obs, grid)
    assert post.method == "spectral"
    ref_mean, ref_cov = brute_force(PRIOR_2D, grid, np.zeros(grid.size), h, values,
                                    0.09 * np.eye(len(values)))
    np.testing.assert_allclose(post.mean.reshape(-1), ref_mean, atol=1e-10)
    np.testing.assert_allclose(post.variance.reshape(-1), np.diag(ref_cov), atol=1e-10)
    dense = exact_posterior(PRIOR_2D, None, obs, grid, method="dense")
    np.testing.assert_allclose(dense.mean, post.mean, atol=1e-10)


def test_channels_are_conditioned_independently(rng):
    grid = torus(8, ndim=1)
    points = np.array([[0.3], [0.6]])
    obs = Observations(PointObservation(points, "spectral"), [1.0, 2.0, -1.0, 0.5], 0.1)
    both = exact_posterior(PRIOR_1D, None, obs, grid, channels=2)
    for c, values in enumerate([[1.0, 2.0], [-1.0, 0.5]]):
        one = exact_posterior(PRIOR_1D, None,
                              Observations(PointObservation(points, "spectral"), values, 0.1),
                              grid)
        np.testing.assert_allclose(both.mean[c], one.mean[0], atol=1e-12)
        np.testing.assert_allclose(both.variance[c], one.variance[0], atol=1e-12)


def whitened_sums(draws, mean, cov):
    """``(M (xbar - mu)^T P^+ (xbar - mu), sum_j (x_j - mu)^T P^+ (x_j - mu), rank)``."""
    lam, vec = np.linalg.eigh(cov)
    keep = lam > 1e-10 * lam.max()
    z = (draws - mean) @ vec[:, keep] / np.sqrt(lam[keep])
    m = len(draws)
    return m * (z.mean(0) ** 2).sum(), (z**2).sum(), int(keep.sum())


@pytest.mark.parametrize("case", ["dense", "spectral"])
def test_posterior_draws_are_exact(case, rng):
    # the draws are N(mean, P) exactly: both whitened sums are chi-square
    grid = torus(8, ndim=1)
    if case == "dense":
        op = PointObservation([[0.1], [0.45], [0.8]], "spectral")
    else:
        op = CoarseGrain(shape=(4,), method="spectral")
    obs = Observations(op, np.array([0.5, -0.3, 1.0, 0.2])[:op.n_obs(grid)], 0.2)
    post = exact_posterior(PRIOR_1D, None, obs, grid)
    cov = exact_posterior(PRIOR_1D, None, obs, grid, method="dense").covariance
    m = 4000
    draws = post.sample(members=m, seed=7).reshape(m, -1)
    t_mean, t_all, rank = whitened_sums(draws, post.mean.reshape(-1), cov)
    # two-sided bounds at a false-alarm rate of 1e-4 each
    assert stats.chi2.ppf(5e-5, rank) < t_mean < stats.chi2.ppf(1 - 5e-5, rank)
    assert stats.chi2.ppf(5e-5, m * rank) < t_all < stats.chi2.ppf(1 - 5e-5, m * rank)
    # nested: a member is the same drawn alone
    np.testing.assert_array_equal(post.sample(members=[3, 11], seed=7).reshape(2, -1),
                                  draws[[3, 11]])


def test_posterior_unpacks_as_a_triple():
    grid = torus(8, ndim=1)
    obs = Observations(PointObservation([[0.5]], "spectral"), [1.0], 0.1)
    mean, variance, sample = exact_posterior(PRIOR_1D, None, obs, grid)
    assert mean.shape == variance.shape == (1, 8)
    assert sample(members=2, seed=0).shape == (2, 1, 8)


def test_exact_posterior_refusals():
    grid = torus(8)
    obs = Observations(PointObservation([[0.5, 0.5]], "spectral"), [1.0], 0.1)
    with pytest.raises(ValueError, match="method='spectral' needs an operator diagonal"):
        exact_posterior(PRIOR_2D, None, obs, grid, method="spectral")
    with pytest.raises(ValueError, match="exceeds max_points=32"):
        exact_posterior(PRIOR_2D, None, obs, grid, max_points=32)
    with pytest.raises(ValueError, match="observes 2 values of a 2-channel field"):
        exact_posterior(PRIOR_2D, np.zeros((2, 8, 8)), obs, grid)
