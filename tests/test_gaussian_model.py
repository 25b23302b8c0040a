"""Tests of the exact Gaussian score (sciffd.models.gaussian) and the conversions.

The reference is the Gaussian conditional mean written with dense
covariance matrices of grid values (``references.dense_covariance``):
for ``u_0 ~ N(m, Q)``, ``u_t = a u_0 + s xi``, ``xi ~ N(0, C)``,

    E[u_0 | u_t] = m + a Q (a^2 Q + s^2 C)^+ (u_t - a m),

with the pseudo-inverse covering the Nyquist modes (zero variance) of even
grids. Matrices are ``P x P`` with ``P`` the number of grid points.
"""

from __future__ import annotations

import numpy as np
import pytest
from references import dense_covariance

from sciffd.backend import to_numpy
from sciffd.grids import TorusGrid
from sciffd.models import (
    GaussianScore,
    ScoreModel,
    denoiser_to_noise,
    denoiser_to_score,
    noise_to_denoiser,
    score_to_denoiser,
)
from sciffd.noise import Matern
from sciffd.sde import CosineSchedule, VPProcess

CASES = {
    "1d-9": (TorusGrid((9,), (2.0,)), Matern(2.0, 3.0, ndim=1), Matern(1.0, 1.0, ndim=1)),
    "2d-6x6": (TorusGrid((6, 6), (1.0, 1.5)), Matern(3.0, 4.0), Matern(2.0, 1.0)),
    "2d-5x4-tau0": (TorusGrid((5, 4)), Matern(2.5, 2.0, sigma=3.0), Matern(1.5, 0.0)),
}


def _mean_field(grid, channels=1):
    """A smooth mean with a Nyquist component on even axes (kept exactly by D)."""
    xs = grid.mesh()
    m = 0.3 + sum(np.cos(2 * np.pi * x / L + i) for i, (x, L)
                  in enumerate(zip(xs, grid.lengths, strict=True)))
    m = m + 0.2 * np.cos(np.pi * grid.shape[0] * xs[0] / grid.lengths[0])
    return np.stack([m * (c + 1) for c in range(channels)])


def _dense_denoiser(grid, data, noise, process, t, u, mean=None):
    q = dense_covariance(data.spectrum, grid.shape, grid.lengths)
    c = dense_covariance(noise.spectrum, grid.shape, grid.lengths)
    a, s = float(process.a(t)), float(process.s(t))
    flat = u.reshape(-1, grid.size)
    m = np.zeros(grid.size) if mean is None else mean.reshape(-1)
    gain = a * q @ np.linalg.pinv(a * a * q + s * s * c, rcond=1e-13, hermitian=True)
    return (m + (flat - a * m) @ gain.T).reshape(u.shape)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("t", [0.05, 0.4, 0.9])
@pytest.mark.parametrize("with_mean", [False, True])
def test_denoise_equals_dense_conditional_mean(case, t, with_mean, rng):
    grid, data, noise = CASES[case]
    process = VPProcess()
    mean = (lambda g: _mean_field(g)) if with_mean else None
    model = GaussianScore(data, noise, process, mean=mean)
    u = rng.standard_normal((3, 1) + grid.shape)
    got = model.denoise(u, t, grid)
    assert got.shape == u.shape
    m = _mean_field(grid)[0] if with_mean else None
    expected = np.stack([_dense_denoiser(grid, data, noise, process, t, u[b, 0], m)
                         for b in range(3)])[:, None]
    # both are exact; the dense pseudo-inverse is the less accurate one: its
    # condition number (ratio of extreme marginal eigenvalues, below 1e8 here)
    # times eps, relative to the size of the answer
    lam = model.marginal_eigenvalues(t, grid)
    cond = lam.max() / lam[lam > 0].min()
    tol = 100 * cond * np.finfo(np.float64).eps * max(1.0, np.abs(expected).max())
    np.testing.assert_allclose(got, expected, rtol=0, atol=tol)


def test_denoise_with_channels_and_mean(rng):
    grid, data, noise = CASES["2d-6x6"]
    process = VPProcess(CosineSchedule())
    model = GaussianScore(data, noise, process, mean=lambda g: _mean_field(g, 2), channels=2)
    u = rng.standard_normal((2, 2) + grid.shape)
    got = model.denoise(u, 0.5, grid)
    mean = _mean_field(grid, 2)
    for b in range(2):
        for ch in range(2):
            expected = _dense_denoiser(grid, data, noise, process, 0.5, u[b, ch], mean[ch])
            np.testing.assert_allclose(got[b, ch], expected, rtol=0, atol=1e-10)


def test_score_is_the_preconditioned_gradient_of_the_log_density(rng):
    # for u_t ~ N(a m, S_t) on grid values, grad log p = -S_t^+ (u - a m)
    # (Euclidean); with the grid-mean inner product the gradient is P times
    # that, and C acts as Sigma_C / P, so C grad log p = -Sigma_C S_t^+ (u - a m)
    grid, data, noise = CASES["1d-9"]
    process = VPProcess()
    mean = _mean_field(grid)
    model = GaussianScore(data, noise, process, mean=lambda g: _mean_field(g))
    t = 0.3
    a, s = float(process.a(t)), float(process.s(t))
    q = dense_covariance(data.spectrum, grid.shape, grid.lengths)
    c = dense_covariance(noise.spectrum, grid.shape, grid.lengths)
    u = rng.standard_normal((2, 1) + grid.shape)
    expected = -(u.reshape(2, -1) - a * mean.reshape(-1)) @ (
        c @ np.linalg.inv(a * a * q + s * s * c)).T
    np.testing.assert_allclose(model.score(u, t, grid).reshape(2, -1), expected, rtol=0,
                               atol=1e-9 * np.abs(expected).max())


def test_gain_and_marginal_eigenvalues():
    grid, data, noise = CASES["2d-6x6"]
    process = VPProcess()
    model = GaussianScore(data, noise, process)
    t = 0.6
    a, s = float(process.a(t)), float(process.s(t))
    q, c = data.eigenvalues(grid), noise.eigenvalues(grid)
    np.testing.assert_allclose(model.marginal_eigenvalues(t, grid), a * a * q + s * s * c,
                               rtol=1e-15)
    gain = model.gain(t, grid)
    ok = q > 0
    np.testing.assert_allclose(gain[ok], a * q[ok] / (a * a * q[ok] + s * s * c[ok]), rtol=1e-14)
    np.testing.assert_array_equal(gain[~grid.nyquist_mask], 0.0)


@pytest.mark.parametrize("with_mean", [False, True])
def test_per_sample_times_equal_the_loop(with_mean, rng, xp):
    grid, data, noise = CASES["2d-5x4-tau0"]
    mean = (lambda g: _mean_field(g)) if with_mean else None
    model = GaussianScore(data, noise, VPProcess(), mean=mean)
    t = np.array([0.01, 0.2, 0.5, 0.99])
    u = rng.standard_normal((4, 1) + grid.shape)
    batch = to_numpy(model.denoise(xp.asarray(u), xp.asarray(t), grid))
    for b in range(4):
        alone = to_numpy(model.denoise(xp.asarray(u[b:b + 1]), float(t[b]), grid))
        np.testing.assert_allclose(batch[b:b + 1], alone, rtol=0, atol=1e-13)
    # the derived forms follow the same per-sample times
    eps = to_numpy(model.predict_noise(xp.asarray(u), xp.asarray(t), grid))
    for b in range(4):
        alone = to_numpy(model.predict_noise(xp.asarray(u[b:b + 1]), float(t[b]), grid))
        np.testing.assert_allclose(eps[b:b + 1], alone, rtol=0, atol=1e-11)


def test_torch_and_numpy_denoisers_agree(rng):
    torch = pytest.importorskip("torch")
    grid, data, noise = CASES["2d-6x6"]
    model = GaussianScore(data, noise, mean=lambda g: _mean_field(g))
    u = rng.standard_normal((2, 1) + grid.shape)
    out = model.denoise(torch.from_numpy(u), 0.3, grid)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), model.denoise(u, 0.3, grid), rtol=0, atol=1e-14)


@pytest.mark.parametrize("with_mean", [False, True])
def test_numpy_times_with_torch_fields(with_mean, rng):
    torch = pytest.importorskip("torch")
    grid, data, noise = CASES["1d-9"]
    mean = (lambda g: _mean_field(g)) if with_mean else None
    model = GaussianScore(data, noise, mean=mean)
    t = np.array([0.1, 0.6])
    u = rng.standard_normal((2, 1) + grid.shape)
    expected = model.denoise(u, t, grid)
    for name in ("denoise", "predict_noise", "score"):
        out = getattr(model, name)(torch.from_numpy(u), t, grid)
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float64, name
        np.testing.assert_allclose(out.numpy(), getattr(model, name)(u, t, grid),
                                   rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.denoise(torch.from_numpy(u), t, grid).numpy(), expected,
                               rtol=0, atol=1e-14)
    # float32 fields stay float32 with float64 numpy times
    u32 = u.astype(np.float32)
    assert model.score(u32, t, grid).dtype == np.float32
    assert model.predict_noise(torch.from_numpy(u32), t, grid).dtype == torch.float32


@pytest.mark.parametrize("t", [0.2, np.array([0.05, 0.5, 0.95])])
def test_conversions_round_trip(t, rng):
    grid, data, noise = CASES["1d-9"]
    process = VPProcess(CosineSchedule())
    model = GaussianScore(data, noise, process)
    u = rng.standard_normal((3, 1) + grid.shape)
    d = model.denoise(u, t, grid)
    eps = model.predict_noise(u, t, grid)
    score = model.score(u, t, grid)
    a = np.reshape(process.a(t), (-1, 1, 1))
    s = np.reshape(process.s(t), (-1, 1, 1))
    # the definitions: eps = (u - a D) / s, score = (a D - u) / s^2 = -eps / s
    np.testing.assert_allclose(eps, (u - a * d) / s, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(score, -eps / s, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(denoiser_to_noise(d, u, t, process), eps, rtol=1e-13)
    np.testing.assert_allclose(denoiser_to_score(d, u, t, process), score, rtol=1e-13)
    # and back: every route returns the denoiser
    np.testing.assert_allclose(noise_to_denoiser(eps, u, t, process), d, rtol=0, atol=1e-12)
    np.testing.assert_allclose(score_to_denoiser(score, u, t, process), d, rtol=0, atol=1e-12)
    # the noise prediction is unbiased for xi when u is drawn from the model:
    # with u = a u0 + s xi, E[xi | u] solves the same relation
    u0 = model.denoise(u, t, grid)
    np.testing.assert_allclose(noise_to_denoiser(denoiser_to_noise(u0, u, t, process), u, t,
                                                 process), u0, rtol=0, atol=1e-12)


def test_model_interface_attributes():
    grid, data, noise = CASES["2d-6x6"]
    model = GaussianScore(data, noise)
    assert isinstance(model, ScoreModel)
    assert model.backend == "numpy" and model.channels == 1
    assert model.process == VPProcess() and model.noise is noise
    cfg = model.config()
    assert cfg["model"] == "GaussianScore" and cfg["process"] == "vp"


def test_bad_input_is_refused():
    grid, data, noise = CASES["2d-6x6"]
    with pytest.raises(TypeError, match="data must be a GaussianMeasure, got str"):
        GaussianScore("Q", noise)
    with pytest.raises(TypeError, match="noise must be a sciffd.noise.GaussianMeasure"):
        GaussianScore(data, 1.0)
    with pytest.raises(TypeError, match="process must be a sciffd.sde.VPProcess"):
        GaussianScore(data, noise, process="vp")
    with pytest.raises(TypeError, match="mean must be None or a callable"):
        GaussianScore(data, noise, mean=np.zeros((1, 6, 6)))
    with pytest.raises(ValueError, match="channels=0 must be a positive integer"):
        GaussianScore(data, noise, channels=0)
    model = GaussianScore(data, noise, mean=lambda g: np.zeros(g.shape))
    with pytest.raises(ValueError, match=r"mean\(grid\) returned shape \(6, 6\), expected "
                                         r"\(1, 6, 6\)"):
        model.denoise(np.zeros((1, 1, 6, 6)), 0.5, grid)
    with pytest.raises(ValueError, match="its last 2 axes must be the grid shape"):
        GaussianScore(data, noise).denoise(np.zeros((1, 1, 6, 5)), 0.5, grid)
    with pytest.raises(ValueError, match=r"t has shape \(3,\); expected a float or one time "
                                         r"per sample, shape \(2,\)"):
        GaussianScore(data, noise).denoise(np.zeros((2, 1, 6, 6)), np.full(3, 0.5), grid)
