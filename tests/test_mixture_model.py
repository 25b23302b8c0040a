"""Tests of the exact Gaussian-mixture score (sciffd.models.mixture).

The references:

- dense: on a tiny grid the mixture ``sum_j w_j N(m_j, Q_j)`` of grid
  values is written with dense covariance matrices
  (``references.dense_covariance``); the posterior weights are the
  normalised ``w_j N(u; a m_j, a^2 Q_j + s^2 C)`` from
  ``scipy.stats.multivariate_normal`` and the denoiser the weighted sum of
  the dense Gaussian conditional means;
- Monte Carlo: draws ``(j, u_0, xi)`` of the model itself, for which
  ``E[1{J = j} - pi_j(u_t)] = 0`` and ``E[(u_0 - D(u_t)) phi(u_t)] = 0``
  (the conditional mean is an orthogonal projection), checked with normal
  confidence bounds computed from the draws.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from references import dense_covariance
from scipy import stats as sps

from sciffd.grids import TorusGrid, torus
from sciffd.models import GaussianMixtureScore, GaussianScore
from sciffd.noise import Matern, WhiteNoise
from sciffd.sde import CosineSchedule, VPProcess


def _mean(shift: float, amplitude: float, channels: int = 1):
    def mean(grid: TorusGrid) -> np.ndarray:
        y, x = grid.mesh()
        m = amplitude * np.cos(2 * np.pi * (x / grid.lengths[1] + shift)) \
            + 0.5 * amplitude * np.sin(2 * np.pi * y / grid.lengths[0]) + 0.1
        return np.stack([m * (c + 1) for c in range(channels)])

    return mean


def _model(process=None, channels=1, weights=(0.5, 0.3, 0.2)):
    components = [Matern(3.0, 4.0), Matern(3.0, 6.0, sigma=1.5), Matern(2.5, 3.0)]
    means = [_mean(0.0, 0.4, channels), None, _mean(0.25, -0.3, channels)]
    return GaussianMixtureScore(components, Matern(2.0, 1.0), weights=list(weights),
                                process=process, means=means, channels=channels)


def _dense(model, grid, t, u):
    """Posterior weights (B, K) and denoiser (B, P) from dense covariances."""
    a, s = float(model.process.a(t)), float(model.process.s(t))
    c = dense_covariance(model.noise.spectrum, grid.shape, grid.lengths)
    flat = u.reshape(u.shape[0], -1)
    logp, parts = [], []
    for j, q_measure in enumerate(model.components):
        q = dense_covariance(q_measure.spectrum, grid.shape, grid.lengths)
        m = np.zeros(grid.size) if model.means[j] is None \
            else model.means[j](grid).reshape(-1)
        cov = a * a * q + s * s * c
        dist = sps.multivariate_normal(a * m, cov, allow_singular=True)
        logp.append(np.log(model.weights[j]) + dist.logpdf(flat))
        gain = a * q @ np.linalg.pinv(cov, rcond=1e-13, hermitian=True)
        parts.append(m + (flat - a * m) @ gain.T)
    logp = np.stack(logp, axis=-1).reshape(flat.shape[0], -1)
    pi = np.exp(logp - logp.max(axis=1, keepdims=True))
    pi /= pi.sum(axis=1, keepdims=True)
    return pi, np.einsum("bj,jbp->bp", pi, np.stack(parts))


GRIDS = {"5x7": TorusGrid((5, 7), (1.0, 1.3)), "6x4": TorusGrid((6, 4))}


@pytest.mark.parametrize("name", sorted(GRIDS))
@pytest.mark.parametrize("t", [0.05, 0.3, 0.8])
def test_denoiser_equals_dense_mixture_posterior_mean(name, t, rng):
    grid = GRIDS[name]
    model = _model()
    # fields near the components, so that the weights are neither 0 nor 1
    u0, _ = model.sample_data(grid, 4, seed=3)
    u = float(model.process.a(t)) * u0 + float(model.process.s(t)) * \
        model.noise.sample(grid, 4, seed=9, dtype=np.float64)
    pi_ref, d_ref = _dense(model, grid, t, u)
    pi = model.posterior_weights(u, t, grid)
    # float64 on both sides; the dense side inverts matrices of condition
    # number below 1e7 here, so agreement to 1e-7 leaves a wide margin
    np.testing.assert_allclose(pi, pi_ref, rtol=0, atol=1e-7)
    scale = np.abs(d_ref).max()
    np.testing.assert_allclose(model.denoise(u, t, grid).reshape(4, -1), d_ref, rtol=0,
                               atol=1e-7 * scale)


def test_two_channels_equal_dense_mixture_of_stacked_channels(rng):
    grid = TorusGrid((5, 5))
    model = _model(channels=2)
    u = rng.standard_normal((3, 2) + grid.shape) * 0.3
    t = 0.2
    a, s = float(model.process.a(t)), float(model.process.s(t))
    c = dense_covariance(model.noise.spectrum, grid.shape, grid.lengths)
    logp, parts = [], []
    flat = u.reshape(3, -1)
    for j, qm in enumerate(model.components):
        q1 = dense_covariance(qm.spectrum, grid.shape, grid.lengths)
        # channels independent given the component: block-diagonal covariance
        q = np.kron(np.eye(2), q1)
        cov = a * a * q + s * s * np.kron(np.eye(2), c)
        m = np.zeros(2 * grid.size) if model.means[j] is None \
            else model.means[j](grid).reshape(-1)
        logp.append(np.log(model.weights[j])
                    + sps.multivariate_normal(a * m, cov).logpdf(flat))
        parts.append(m + (flat - a * m) @ (a * q @ np.linalg.inv(cov)).T)
    logp = np.stack(logp, axis=-1)
    pi_ref = np.exp(logp - logp.max(axis=1, keepdims=True))
    pi_ref /= pi_ref.sum(axis=1, keepdims=True)
    d_ref = np.einsum("bj,jbp->bp", pi_ref, np.stack(parts))
    np.testing.assert_allclose(model.posterior_weights(u, t, grid), pi_ref, atol=1e-8)
    np.testing.assert_allclose(model.denoise(u, t, grid).reshape(3, -1), d_ref, atol=1e-8)


def test_log_densities_are_those_of_the_gaussian_measure():
    """With no mean and at t = 0 the component density is ``Q_j.log_density``."""
    grid = torus(8)
    q = Matern(3.0, 4.0)
    model = GaussianMixtureScore([q, Matern(3.0, 5.0)], Matern(2.0, 1.0), weights=[0.4, 0.6])
    u = q.sample(grid, 3, seed=1, dtype=np.float64)
    logp = model.component_log_densities(u, 0.0, grid)
    expected = np.log(0.4) + q.log_density(u[:, 0], grid)
    np.testing.assert_allclose(logp[:, 0], expected, rtol=1e-12)


def test_one_component_is_the_gaussian_score(rng):
    grid = torus(12)
    data, noise = Matern(3.0, 4.0), Matern(2.0, 1.0)
    mean = _mean(0.1, 0.5)
    mix = GaussianMixtureScore([data], noise, means=[mean])
    gauss = GaussianScore(data, noise, mean=mean)
    u = rng.standard_normal((3, 1) + grid.shape)
    for t in (0.01, 0.5, np.array([0.1, 0.6, 0.9])):
        np.testing.assert_allclose(mix.denoise(u, t, grid), gauss.denoise(u, t, grid),
                                   rtol=0, atol=1e-12)


def test_per_sample_times_equal_one_call_per_time(rng):
    grid = torus(10)
    model = _model(process=VPProcess(CosineSchedule()))
    u = rng.standard_normal((3, 1) + grid.shape) * 0.5
    t = np.array([0.05, 0.4, 0.9])
    got = model.denoise(u, t, grid)
    weights = model.posterior_weights(u, t, grid)
    for b in range(3):
        np.testing.assert_allclose(got[b], model.denoise(u[b:b + 1], float(t[b]), grid)[0],
                                   atol=1e-12)
        np.testing.assert_allclose(weights[b],
                                   model.posterior_weights(u[b:b + 1], float(t[b]), grid)[0],
                                   atol=1e-12)


@given(scale=st.floats(1e2, 1e6), t=st.floats(1e-3, 1.0), shift=st.integers(0, 2))
def test_weights_stay_finite_far_from_every_component(scale, t, shift):
    """Log-densities of order -scale^2 N^2: the log-sum-exp keeps the weights exact."""
    grid = torus(16)
    model = _model()
    u = scale * np.roll(_mean(0.0, 1.0)(grid), shift, axis=-1)[None]
    logp = model.component_log_densities(u, t, grid)
    pi = model.posterior_weights(u, t, grid)
    assert np.all(np.isfinite(pi)) and np.isclose(pi.sum(), 1.0, rtol=0, atol=1e-12)
    # the winner is the component of largest log-density, with weight ~1
    assert np.argmax(pi[0]) == np.argmax(logp[0])
    assert np.all(np.isfinite(model.denoise(u, t, grid)))


def test_monte_carlo_weights_are_calibrated_and_denoiser_is_a_projection():
    """``E[1{J=j} - pi_j] = 0`` and ``E[<u_0 - D, phi>] = 0`` over exact draws."""
    grid = torus(16)
    model = _model()
    n = 4000
    t = 0.5
    u0, labels = model.sample_data(grid, n, seed=11)
    a, s = float(model.process.a(t)), float(model.process.s(t))
    ut = a * u0 + s * model.noise.sample(grid, n, seed=12, dtype=np.float64)
    pi = model.posterior_weights(ut, t, grid)
    d = model.denoise(ut, t, grid)
    # the weights here are neither degenerate nor uniform: the test has power
    assert 0.2 < np.mean(pi.max(axis=1)) < 0.99
    # 5 sigma normal bounds (Bonferroni-safe over the few statistics below),
    # with the sample standard deviation of each mean
    z = 5.0
    resid = (labels[:, None] == np.arange(3)) - pi
    assert np.all(np.abs(resid.mean(axis=0)) <= z * resid.std(axis=0) / np.sqrt(n))
    err = (u0 - d).reshape(n, -1)
    y, x = grid.mesh()
    for phi in (d.reshape(n, -1), ut.reshape(n, -1),
                np.broadcast_to(np.cos(2 * np.pi * x).reshape(-1), (n, grid.size))):
        inner = (err * phi).mean(axis=1)
        assert abs(inner.mean()) <= z * inner.std() / np.sqrt(n)
    # and it beats the best single-Gaussian denoiser of the same second moments:
    # E|u_0 - D|^2 is the Bayes risk, below that of any other function of u_t
    risk = (err**2).mean()
    gauss = GaussianScore(model.components[0], model.noise)
    other = ((u0 - gauss.denoise(ut, t, grid)) ** 2).mean()
    assert risk < other


def test_sample_data_follows_weights_and_component_laws():
    grid = torus(16)
    model = _model()
    n = 3000
    u, labels = model.sample_data(grid, n, seed=5)
    counts = np.bincount(labels, minlength=3)
    # Pearson chi-square of the component counts, 2 dof, at level 1e-4
    expected = n * model.weights
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < sps.chi2.ppf(1 - 1e-4, 2)
    # per component, the power of mode (1, 2) about its mean: 2|z|^2/q ~ chi2_2
    means = model.mean_spectra(grid)
    for j, q in enumerate(model.components):
        chosen = u[labels == j, 0]
        coef = np.fft.rfft2(chosen, norm="forward")[:, 1, 2] - means[j, 0, 1, 2]
        stat = float((2 * np.abs(coef) ** 2 / q.eigenvalues(grid)[1, 2]).sum())
        dof = 2 * chosen.shape[0]
        assert sps.chi2.ppf(1e-4, dof) < stat < sps.chi2.ppf(1 - 1e-4, dof)


def test_sample_data_is_nested_over_members_and_resolutions():
    model = _model()
    u, labels = model.sample_data(torus(16), 6, seed=2)
    alone, one = model.sample_data(torus(16), [4], seed=2)
    np.testing.assert_array_equal(alone[0], u[4])
    assert one[0] == labels[4]
    fine, fine_labels = model.sample_data(torus(32), 6, seed=2)
    np.testing.assert_array_equal(fine_labels, labels)
    # the low modes of a member are the same at 16^2 and 32^2
    lo = np.fft.rfft2(u[:, 0], norm="forward")[:, :3, :3]
    hi = np.fft.rfft2(fine[:, 0], norm="forward")[:, :3, :3]
    np.testing.assert_allclose(hi, lo, atol=1e-12)


def test_torch_fields_keep_their_library_and_precision():
    torch = pytest.importorskip("torch")
    grid = torus(12)
    model = _model()
    u = torch.randn(2, 1, 12, 12, dtype=torch.float32)
    d = model.denoise(u, 0.3, grid)
    assert isinstance(d, torch.Tensor) and d.dtype == torch.float32
    ref = model.denoise(u.double().numpy(), 0.3, grid)
    np.testing.assert_allclose(d.numpy(), ref, rtol=0, atol=1e-5 * np.abs(ref).max())


def test_white_noise_process_is_accepted():
    grid = torus(8)
    model = GaussianMixtureScore([Matern(2.0, 3.0)], WhiteNoise(0.1))
    assert model.denoise(np.zeros((1, 1, 8, 8)), 0.5, grid).shape == (1, 1, 8, 8)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"components": []}, ValueError, "at least one component"),
    ({"components": Matern(3.0, 1.0)}, TypeError, "sequence of GaussianMeasure"),
    ({"components": [Matern(3.0, 1.0), "x"]}, TypeError, r"components\[1\]"),
    ({"weights": [0.5, 0.6]}, ValueError, "sum to"),
    ({"weights": [1.0]}, ValueError, "one weight per component"),
    ({"weights": [1.5, -0.5]}, ValueError, "positive"),
    ({"means": [None]}, ValueError, "one per component"),
    ({"means": [None, 3]}, TypeError, r"means\[1\]"),
    ({"noise": "white"}, TypeError, "GaussianMeasure"),
    ({"channels": 0}, ValueError, "channels=0"),
])
def test_bad_arguments_are_refused(kwargs, error, match):
    args = {"components": [Matern(3.0, 1.0), Matern(3.0, 2.0)], "noise": Matern(2.0, 1.0)}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        GaussianMixtureScore(**args)


def test_bad_fields_and_times_are_refused():
    grid = torus(8)
    model = GaussianMixtureScore([Matern(3.0, 1.0)], Matern(2.0, 1.0),
                                 means=[lambda g: np.zeros(g.shape)])
    with pytest.raises(ValueError, match="expected"):
        model.denoise(np.zeros((2, 8, 8)), 0.5, grid)
    with pytest.raises(ValueError, match=r"means\[0\]\(grid\) returned shape"):
        model.denoise(np.zeros((2, 1, 8, 8)), 0.5, grid)
    ok = GaussianMixtureScore([Matern(3.0, 1.0)], Matern(2.0, 1.0))
    with pytest.raises(ValueError, match="one time per sample"):
        ok.denoise(np.zeros((2, 1, 8, 8)), np.array([0.1, 0.2, 0.3]), grid)
