"""The Fourier mean field (sciffd.models.mean) and the FNO denoiser about it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import xarray as xr

from sciffd.grids import TorusGrid, torus
from sciffd.models import GaussianScore
from sciffd.models.fno import FNO, FNODenoiser, _band_mask, _shells, default_noise
from sciffd.models.mean import MeanField
from sciffd.noise import Matern, SpectralGaussian
from sciffd.sde import VPProcess
from sciffd.spectral import resample
from sciffd.training import load_model, train


def _direct(modes, coefficients, grid):
    """``sum_m 2 Re(c_m exp(i k_m . x))`` by explicit sums at the grid points."""
    mesh = grid.mesh()
    out = np.zeros((coefficients.shape[0],) + grid.shape)
    for j, m in enumerate(modes):
        phase = sum(2 * np.pi * m[i] * mesh[i] / grid.lengths[i] for i in range(grid.ndim))
        c = coefficients[:, j].reshape((-1,) + (1,) * grid.ndim)
        out += 2 * np.real(c * np.exp(1j * phase)[None])
    return out


@pytest.mark.parametrize("shape, lengths", [((16, 16), (1.0, 1.0)), ((15, 21), (2.0, 3.0)),
                                            ((12,), (4.0,)), ((8, 9, 10), (1.0, 1.0, 2.0))])
def test_evaluate_is_the_fourier_sum(shape, lengths):
    rng = np.random.default_rng(1)
    modes = np.array({1: [[1], [3], [5]],
                      2: [[1, 0], [0, 1], [-2, 1], [3, 0], [1, 4]],
                      3: [[1, 0, 0], [0, 0, 1], [-2, 1, 3], [0, 1, 0],
                          [3, -2, 1]]}[len(shape)])
    c = rng.normal(size=(2, len(modes))) + 1j * rng.normal(size=(2, len(modes)))
    mu = MeanField(modes, c, lengths)
    g = TorusGrid(shape, lengths)
    np.testing.assert_allclose(mu.evaluate(g), _direct(modes, c, g), atol=1e-12)


def test_coarse_grids_get_the_fourier_restriction():
    """A mode a grid cannot hold (Nyquist and beyond) is dropped, as restriction does."""
    modes = np.array([[1, 1], [4, 0], [0, 6], [-3, 2]])
    c = np.array([[0.3 - 0.1j, 0.2 + 0.05j, -0.1j, 0.07]])
    mu = MeanField(modes, c, (1.0, 1.0))
    fine = mu.evaluate(torus(32))
    for n in (8, 9, 12, 13):
        coarse = mu.evaluate(torus(n))
        np.testing.assert_allclose(coarse, resample(fine, torus(32), torus(n)), atol=1e-12)
    # at 8^2 only (1, 1) and (-3, 2) remain
    np.testing.assert_allclose(mu.evaluate(torus(8)),
                               _direct(modes[[0, 3]], c[:, [0, 3]], torus(8)), atol=1e-12)


def _planted(n, seed, grid, amplitude=(0.4, 0.15)):
    modes = np.array([[1, 1], [0, 2]])
    c = np.array([[amplitude[0] * (1 - 1j) / math.sqrt(2), amplitude[1] * 1j]])
    noise = Matern(3.0, 2 * np.pi, 20.0).sample(grid, n, seed=seed, dtype=np.float64)
    return modes, c, MeanField(modes, c, grid.lengths).evaluate(grid)[None] + noise


def test_from_samples_finds_the_planted_modes_and_only_them():
    """The test keeps the two planted modes and no other (family-wise level 1e-3).

    The anomaly variance of the Matern field at the planted modes is below
    3e-4, so they give ``z = n |c|^2 / q`` above 1e5, far above
    ``log(M / level) ~ 12``; each coefficient is checked within 5
    standard errors ``sqrt(q / 2n)`` per real component.
    """
    grid = torus(16)
    n = 400
    modes, c, fields = _planted(n, 3, grid)
    mu = MeanField.from_samples(fields, grid)
    assert sorted(mu.modes.tolist()) == sorted(modes.tolist())
    order = [mu.modes.tolist().index(m) for m in modes.tolist()]
    lam = Matern(3.0, 2 * np.pi, 20.0).eigenvalues(grid)
    for j, m in enumerate(modes):
        se = math.sqrt(lam[tuple(m % 16)] / (2 * n))
        err = mu.coefficients[0, order[j]] - c[0, j]
        assert abs(err.real) < 5 * se and abs(err.imag) < 5 * se


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_from_samples_keeps_nothing_from_zero_mean_data(seed):
    """With zero-mean data, a mode is kept with probability at most ``level`` = 1e-3."""
    grid = torus((12, 14))
    fields = Matern(2.5, 2 * np.pi, 10.0).sample(grid, 200, seed=seed, dtype=np.float64)
    assert len(MeanField.from_samples(fields, grid).modes) == 0


def test_fewer_independent_samples_is_more_conservative():
    grid = torus(16)
    _, _, fields = _planted(50, 5, grid, amplitude=(0.4, 0.01))
    loose = MeanField.from_samples(fields, grid)
    strict = MeanField.from_samples(fields, grid, independent=2)
    assert len(strict.modes) <= len(loose.modes)
    assert [1, 1] in loose.modes.tolist()


def test_config_round_trip_through_json():
    mu = MeanField([[1, 1], [-2, 3]], [[0.1 - 0.2j, 0.3j], [1.0, -0.5 + 0.5j]], (1.0, 2.0))
    back = MeanField.from_config(json.loads(json.dumps(mu.to_config())))
    np.testing.assert_array_equal(back.modes, mu.modes)
    np.testing.assert_array_equal(back.coefficients, mu.coefficients)
    assert back.lengths == mu.lengths
    empty = MeanField(np.zeros((0, 2), dtype=int), np.zeros((1, 0)), (1.0, 1.0))
    assert len(MeanField.from_config(json.loads(json.dumps(empty.to_config()))).modes) == 0


@pytest.mark.parametrize("modes, coefficients, lengths, match", [
    ([[0, 0]], [[1.0]], (1.0, 1.0), "non-zero"),
    ([[1, -1]], [[1.0]], (1.0, 1.0), "last non-zero"),
    ([[1, 1], [1, 1]], [[1.0, 2.0]], (1.0, 1.0), "twice"),
    ([[1, 1]], [[1.0, 2.0]], (1.0, 1.0), "coefficients"),
    ([[1.5, 1]], [[1.0]], (1.0, 1.0), "integer"),
    ([[1, 1]], [[np.nan]], (1.0, 1.0), "finite"),
    ([[1, 1]], [[1.0]], (1.0, -1.0), "lengths"),
])
def test_bad_mean_fields_are_refused(modes, coefficients, lengths, match):
    with pytest.raises(ValueError, match=match):
        MeanField(modes, coefficients, lengths)


def test_bad_samples_are_refused():
    grid = torus(8)
    with pytest.raises(ValueError, match="fields has shape"):
        MeanField.from_samples(np.zeros((4, 8, 8)), grid)
    with pytest.raises(ValueError, match="independent"):
        MeanField.from_samples(np.zeros((4, 1, 8, 8)), grid, independent=9)
    with pytest.raises(ValueError, match="level"):
        MeanField.from_samples(np.zeros((4, 1, 8, 8)), grid, level=2.0)
    with pytest.raises(ValueError, match="not a grid"):
        MeanField([[1, 0]], [[1.0]], (2.0, 2.0)).evaluate(grid)


def _zero_denoiser(mu, lengths=(1.0, 1.0), modes=5, tail=None):
    torch.manual_seed(0)
    net = FNO(1, width=4, layers=1, modes=modes).double()
    g = TorusGrid((16, 16), lengths)
    return FNODenoiser(net, VPProcess(), default_noise(g), data_mean=0.25, data_std=2.0,
                       lengths=lengths, mean_field=mu, tail_variance=tail)


@pytest.mark.parametrize("shape", [(16, 16), (24, 24), (10, 13)])
def test_untrained_denoiser_shrinks_towards_the_mean_field(shape):
    """With ``F = 0``, ``D = m + mu + c_skip (u / a - m - mu)`` exactly, on every grid."""
    mu = MeanField([[1, 1], [3, 0]], [[0.4 - 0.4j, 0.1j]], (1.0, 1.0))
    model = _zero_denoiser(mu)
    g = torus(shape)
    u = torch.randn((2, 1) + shape, dtype=torch.float64)
    t = torch.tensor([0.1, 0.7], dtype=torch.float64)
    a = model.process.a(t.numpy())[:, None, None, None]
    sig = model.process.sigma(t.numpy())[:, None, None, None] / 2.0
    m = 0.25 + mu.evaluate(g)[None]
    expected = m + (u.numpy() / a - m) / (sig**2 + 1.0)
    with torch.no_grad():
        np.testing.assert_allclose(model.denoise(u, t, g).numpy(), expected, rtol=1e-12,
                                   atol=1e-12)


@pytest.mark.parametrize("t", [0.05, 0.5])
def test_tail_modes_are_the_exact_gaussian_denoiser_about_the_mean(t):
    """Data ``N(mu, Q)``: outside the network's band ``D = mu + D_0(u - a mu)``,
    ``D_0`` the exact denoiser of ``N(0, Q)`` (``GaussianScore``)."""
    grid = torus(24)
    table = np.abs(np.sin(np.arange(20.0))) * 1e-3 + 1e-6
    table[0] = 0.0
    mu = MeanField([[1, 1], [7, 2], [0, 9]], [[0.4 - 0.4j, 0.05j, 0.02 + 0.01j]], (1.0, 1.0))
    net = FNO(1, width=4, layers=1, modes=5).double()
    noise = Matern.unit_variance(3.0, 10.0, 2)
    model = FNODenoiser(net, VPProcess(), noise, tail_variance=table[None], mean_field=mu)

    def spectrum(k2):
        n = np.floor(np.sqrt(k2) / (2 * np.pi) + 0.5).astype(int)
        return np.where(n < table.size, table[np.minimum(n, table.size - 1)], 0.0)

    exact = GaussianScore(SpectralGaussian(spectrum, ndim=2), noise, VPProcess())
    u = noise.sample(grid, 2, seed=3, dtype=np.float64)
    a = float(VPProcess().a(t))
    m = mu.evaluate(grid)[None]
    want = m + exact.denoise(u - a * m, t, grid)
    with torch.no_grad():
        got = model.denoise(torch.as_tensor(u), t, grid).numpy()
    tail = ~(_band_mask(grid, net.modes) & (_shells(grid) < model.tail_start))
    got_hat = np.fft.rfftn(got, axes=(-2, -1), norm="forward")[..., tail]
    want_hat = np.fft.rfftn(want, axes=(-2, -1), norm="forward")[..., tail]
    # the planted modes (7, 2) and (0, 9) lie in the tail
    assert np.abs(mu.spectrum(grid)[0][tail]).max() > 0.01
    np.testing.assert_allclose(got_hat, want_hat, atol=1e-12)


def test_denoiser_refuses_a_mean_field_of_another_model():
    net = FNO(1, width=4, layers=1, modes=3)
    noise = default_noise(torus(8))
    with pytest.raises(ValueError, match="channel"):
        FNODenoiser(net, VPProcess(), noise, mean_field=MeanField([[1, 0]], [[1], [2]], (1, 1)))
    with pytest.raises(ValueError, match="lengths"):
        FNODenoiser(net, VPProcess(), noise, lengths=(1.0, 1.0),
                    mean_field=MeanField([[1, 0]], [[1.0]], (2.0, 2.0)))
    with pytest.raises(TypeError, match="MeanField"):
        FNODenoiser(net, VPProcess(), noise, mean_field={"modes": []})


def test_training_stores_the_mean_field_and_loading_restores_it(tmp_path):
    """``train`` keeps the planted modes, measures ``data_std`` about them, and the
    saved model evaluates the same mean at another resolution.

    Each coefficient is the mean of 96 fields, with standard error
    ``sqrt(q / 192)`` per real component (``q < 2.5e-4``, so below 1.2e-3);
    at 5 standard errors the field, ``2 Re`` of two modes, is off by less than
    ``4 * 5 * sqrt(2) * 1.2e-3 / 2 < 0.025``.
    """
    grid = torus(16)
    modes, c, fields = _planted(96, 7, grid)
    da = xr.DataArray(fields.reshape(48, 2, 16, 16).astype(np.float32),
                      dims=("member", "time", "y", "x"),
                      coords={"y": grid.coords(0), "x": grid.coords(1)}, name="w")
    out = train(da.to_dataset(), tmp_path / "run", variable="w", steps=2, batch_size=4,
                progress=False, model_options={"width": 4, "layers": 1, "modes": 3,
                                               "time_features": 4, "time_width": 8})
    model, config = load_model(out)
    assert sorted(model.mean_field.modes.tolist()) == sorted(modes.tolist())
    anomaly = fields - model.mean_field.evaluate(grid)[None]
    np.testing.assert_allclose(model.data_std, [anomaly.astype(np.float32).std()], rtol=1e-5)
    fine = torus(32)
    np.testing.assert_allclose(model.mean_field.evaluate(fine),
                               MeanField(modes, c, (1.0, 1.0)).evaluate(fine),
                               atol=0.025)
    off = train(da.to_dataset(), tmp_path / "off", variable="w", steps=2, batch_size=4,
                progress=False, mean_field=False,
                model_options={"width": 4, "layers": 1, "modes": 3, "time_features": 4,
                               "time_width": 8})
    assert load_model(off)[0].mean_field is None


@pytest.mark.parametrize("shape", [(16, 16), (20, 12)])
def test_gaussian_skip_makes_an_untrained_denoiser_the_gaussian_model(shape):
    """``skip='gaussian'`` with ``F = 0``: on every mode, ``D = mu + D_0(u - a mu)``, the
    exact denoiser of ``N(mu, Q)`` with ``Q`` the shell spectrum, at any resolution."""
    table = np.abs(np.cos(np.arange(14.0))) * 1e-2 + 1e-5
    table[0] = 0.0
    mu = MeanField([[1, 1], [0, 3]], [[0.4 - 0.4j, 0.05j]], (1.0, 1.0))
    torch.manual_seed(0)
    net = FNO(1, width=4, layers=1, modes=4).double()
    noise = Matern.unit_variance(3.0, 10.0, 2)
    model = FNODenoiser(net, VPProcess(), noise, data_std=0.3, lengths=(1.0, 1.0),
                        tail_variance=table[None], mean_field=mu, skip="gaussian")

    def spectrum(k2):
        n = np.floor(np.sqrt(k2) / (2 * np.pi) + 0.5).astype(int)
        return np.where(n < table.size, table[np.minimum(n, table.size - 1)], 0.0)

    exact = GaussianScore(SpectralGaussian(spectrum, ndim=2), noise, VPProcess())
    grid = torus(shape)
    u = noise.sample(grid, 3, seed=8, dtype=np.float64)
    t = np.array([0.02, 0.3, 0.95])
    a = VPProcess().a(t)[:, None, None, None]
    m = mu.evaluate(grid)[None]
    want = m + exact.denoise(u - a * m, t, grid)
    with torch.no_grad():
        got = model.denoise(torch.as_tensor(u), torch.as_tensor(t), grid).numpy()
    np.testing.assert_allclose(got, want, atol=1e-12 * np.abs(want).max())
    with pytest.raises(ValueError, match="skip"):
        FNODenoiser(net, VPProcess(), noise, skip="gaussian")


def test_balanced_loss_weights_modes_by_the_shell_spectrum():
    """``network_loss(balance=gamma)``: a network error on a single kept mode ``k`` costs
    ``w_k |e_hat_k|^2`` with ``w_k`` proportional to ``(q_1 / q_k)^gamma``; the tail costs
    nothing; ``gamma = 0`` is the grid-mean square."""
    from sciffd.training.dsm import _balance_weights

    table = np.array([0.0, 1.0, 1e-2, 1e-3, 1e-4, 1e-7, 1e-9, 1e-10])
    net = FNO(1, width=4, layers=1, modes=6)
    model = FNODenoiser(net, VPProcess(), Matern.unit_variance(3.0, 10.0, 2), lengths=(1.0, 1.0),
                        tail_variance=table[None], skip="gaussian")
    assert model.tail_start == 5
    grid = torus(16)
    w = _balance_weights(model, grid.shape, 0.5, "cpu").numpy()[0]
    herm = grid.hermitian_weight
    # shells 1..4 kept: the weight per unit power goes as q^-1/2, relative to shell 1
    for (i, j), n in [((0, 2), 2), ((3, 0), 3), ((4, 0), 4)]:
        assert _shells(grid)[i, j] == n
        np.testing.assert_allclose((w[i, j] / herm[i, j]) / (w[0, 1] / herm[0, 1]),
                                   (table[1] / table[n]) ** 0.5, rtol=1e-6)
    assert np.all(w[_shells(grid) >= 5] == 0)
    # the domain mean (variance 0) weighs as the weakest kept variance, 1e-4 of the peak
    np.testing.assert_allclose((w[0, 0] / herm[0, 0]) / (w[0, 1] / herm[0, 1]), 1e4**0.5,
                               rtol=1e-6)
    # the Gaussian anomalies keep their grid-mean norm
    from sciffd.models.fno import _tail_eigenvalues
    q = _tail_eigenvalues(table[None], grid)[0]
    np.testing.assert_allclose((w * q).sum(), (herm * q * grid.nyquist_mask).sum(), rtol=1e-6)
