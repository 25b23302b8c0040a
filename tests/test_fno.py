"""Tests of the Fourier neural operator and its denoiser (sciffd.models.fno)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from sciffd.grids import torus
from sciffd.models import denoiser_to_noise, noise_to_denoiser, score_to_denoiser
from sciffd.models.fno import FNO, FNODenoiser, SpectralConv, default_noise
from sciffd.noise import Matern
from sciffd.sde import VPProcess
from sciffd.spectral import forward, resample


def _dense_dft(u: np.ndarray) -> np.ndarray:
    """Full-spectrum coefficients by explicit sums, ``(1/N^d) sum_j u_j e^{-2 pi i m.j/N}``."""
    out = u.astype(np.complex128)
    for axis in range(-len(u.shape) + 2, 0):
        n = u.shape[axis]
        j = np.arange(n)
        matrix = np.exp(-2j * np.pi * np.outer(j, j) / n) / n
        out = np.moveaxis(np.tensordot(out, matrix, axes=([axis], [1])), -1, axis)
    return out


def _dense_idft(u_hat: np.ndarray, ndim: int) -> np.ndarray:
    out = u_hat
    for axis in range(-ndim, 0):
        n = u_hat.shape[axis]
        j = np.arange(n)
        matrix = np.exp(2j * np.pi * np.outer(j, j) / n)
        out = np.moveaxis(np.tensordot(out, matrix, axes=([axis], [1])), -1, axis)
    return out


def _reference_conv(conv: SpectralConv, h: np.ndarray) -> np.ndarray:
    """``sum_m R[m] h^[m] e_m`` over the kept modes, the matrix of ``-m`` being
    ``conj(R[m])`` (and the symmetrised matrix on ``m_x = 0``), by dense DFTs."""
    w = conv.weight.detach().double().numpy()
    w = w[..., 0] + 1j * w[..., 1]
    d = conv.ndim
    shape = h.shape[2:]
    h_hat = _dense_dft(h)
    kept = [min(k, (n - 1) // 2 + 1) for n, k in zip(shape, conv.modes, strict=True)]

    def stored(m):
        index = tuple(mi % (2 * K - 1) for mi, K in zip(m[:-1], conv.modes[:-1], strict=True))
        return w[index + (m[-1],)]

    out = np.zeros((h.shape[0], conv.out_channels) + shape, dtype=np.complex128)
    for m in itertools.product(*[range(-(k - 1), k) for k in kept]):
        neg = tuple(-mi for mi in m)
        if m[-1] > 0:
            matrix = stored(m)
        elif m[-1] < 0:
            matrix = np.conj(stored(neg))
        else:
            matrix = 0.5 * (stored(m) + np.conj(stored(neg)))
        at = (slice(None), slice(None)) + tuple(mi % n for mi, n in zip(m, shape, strict=True))
        out[at] = h_hat[at] @ matrix
    y = _dense_idft(out, d)
    # the imaginary part vanishes: the operator is real
    assert np.abs(y.imag).max() < 1e-12
    return y.real


@pytest.mark.parametrize(
    ("modes", "shape"),
    [((4,), (12,)), ((4,), (7,)), ((3, 5), (8, 12)), ((5, 5), (8, 9)), ((2, 3, 3), (6, 7, 8))],
)
def test_spectral_conv_matches_dense_reference(modes, shape):
    torch.manual_seed(0)
    conv = SpectralConv(3, 2, modes).double()
    h = torch.randn((2, 3) + shape, dtype=torch.float64)
    # float64 throughout: agreement to rounding
    np.testing.assert_allclose(conv(h).detach().numpy(), _reference_conv(conv, h.numpy()),
                               atol=1e-13, rtol=0)


def test_spectral_conv_is_exactly_resolution_invariant(rng):
    torch.manual_seed(1)
    conv = SpectralConv(2, 3, (6, 6)).double()
    g = torus((13, 16))
    u = Matern(2.0, 10.0).sample(g, 2, seed=3, channels=2, dtype=np.float64)
    out = {}
    for shape in [(13, 16), (26, 32), (40, 24)]:
        fine = torch.as_tensor(resample(u, g, shape))
        out[shape] = resample(conv(fine).detach().numpy(), g.with_shape(shape), g.shape)
    # a linear spectral layer acting on a band-limited field has no aliasing: equal
    # to float64 rounding on every grid that holds its modes
    np.testing.assert_allclose(out[(26, 32)], out[(13, 16)], atol=1e-13)
    np.testing.assert_allclose(out[(40, 24)], out[(13, 16)], atol=1e-13)


def test_spectral_conv_gradients_match_finite_differences():
    torch.manual_seed(2)
    conv = SpectralConv(2, 2, (2, 3)).double()
    h = torch.randn(1, 2, 4, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: conv(x), (h,), eps=1e-6, atol=1e-8)
    w = conv.weight.detach().clone().requires_grad_()
    x = h.detach()
    assert torch.autograd.gradcheck(
        lambda v: torch.func.functional_call(conv, {"weight": v}, (x,)), (w,),
        eps=1e-6, atol=1e-8)


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return FNO(1, width=12, layers=2, modes=8)


def test_shapes_and_determinism_on_several_grids(net):
    for shape in [(32, 32), (48, 64), (64, 64)]:
        x = torch.randn((3, 1) + shape, generator=torch.Generator().manual_seed(4))
        c = torch.tensor([-1.0, 0.0, 1.0])
        with torch.no_grad():
            y1, y2 = net(x, c), net(x, c)
            single = torch.cat([net(x[i : i + 1], c[i : i + 1]) for i in range(3)])
        assert y1.shape == x.shape
        assert torch.equal(y1, y2)
        # batch members do not interact (float32 rounding of a differently shaped GEMM)
        torch.testing.assert_close(single, y1, atol=1e-6, rtol=1e-5)


def test_same_seed_same_weights():
    torch.manual_seed(5)
    a = FNO(2, width=8, layers=1, modes=4)
    torch.manual_seed(5)
    b = FNO(2, width=8, layers=1, modes=4)
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert na == nb and torch.equal(pa, pb)


@pytest.mark.parametrize(("ndim", "shape"), [(1, (20,)), (3, (8, 10, 12))])
def test_one_and_three_dimensions(ndim, shape):
    net = FNO(2, width=6, layers=2, modes=3, ndim=ndim)
    x = torch.randn((2, 2) + shape)
    assert net(x, torch.zeros(2)).shape == x.shape


def test_translation_equivariance():
    # spectral multipliers and pointwise layers commute with grid shifts
    torch.manual_seed(6)
    net = FNO(1, width=8, layers=2, modes=5).double()
    torch.nn.init.normal_(net.project[2].weight)
    x = torch.randn(2, 1, 24, 20, dtype=torch.float64)
    c = torch.zeros(2, dtype=torch.float64)
    with torch.no_grad():
        shifted = net(torch.roll(x, (5, -3), (-2, -1)), c)
        expected = torch.roll(net(x, c), (5, -3), (-2, -1))
    torch.testing.assert_close(shifted, expected, atol=1e-12, rtol=1e-12)


def _low_modes(y: np.ndarray, shape: tuple[int, int], k: int) -> np.ndarray:
    y_hat = forward(y, torus(shape))
    return np.concatenate([y_hat[..., :k, :k], y_hat[..., shape[0] - k + 1 :, :k]], axis=-2)


def _out_of_band(fields: list[torch.Tensor], n_fine: int, n: int) -> float:
    """Largest relative amplitude, over the hidden fields on the fine grid, outside the
    band ``|m_i| <= (n - 1) // 2`` of a grid of ``n`` points (mean mode left out)."""
    g = torus(n_fine)
    ky = np.abs(g.mode_indices(0))[:, None]
    kx = g.mode_indices(1)[None, :]
    inside = (ky <= (n - 1) // 2) & (kx <= (n - 1) // 2)
    worst = 0.0
    for h in fields:
        power = np.abs(forward(h.detach().numpy(), g)) ** 2 * g.hermitian_weight
        power[..., 0, 0] = 0.0
        worst = max(worst, math.sqrt(power[..., ~inside].sum() / power.sum()))
    return worst


def test_resolution_consistency_is_limited_by_aliasing():
    """A band-limited input at N and 2N: the shared low modes of the outputs agree
    up to aliasing of the harmonics that GELU creates.

    On the grid of N points the pointwise nonlinearity folds the hidden fields'
    modes beyond N/2 back into the band; on the finer grid they are kept. So
    the discrepancy is bounded by the out-of-band content of the hidden
    fields, measured on a grid of 4N, times a factor 3 for its accumulation
    over the 3 layers (each layer is about norm-preserving at initialisation).
    GELU is smooth, so that content falls off faster than any power of N
    and the discrepancy converges to zero, here by orders of magnitude per
    doubling.
    """
    torch.manual_seed(7)
    net = FNO(1, width=16, layers=3, modes=8).double()
    torch.nn.init.normal_(net.project[2].weight, std=0.3)
    g0 = torus(16)
    u0 = Matern(3.0, 2 * np.pi * 2, 1.0).sample(g0, 2, seed=1, dtype=np.float64)
    u0 = u0 / u0.std()
    c = torch.full((2,), 0.1, dtype=torch.float64)

    def run(n):
        x = torch.as_tensor(resample(u0, g0, n))
        with torch.no_grad():
            return net(x, c).numpy(), net.features(x, c)

    low, tails = {}, {}
    for n in (16, 32, 64, 128):
        y, _ = run(n)
        low[n] = _low_modes(y, (n, n), 8)
    for n in (16, 32):
        tails[n] = _out_of_band(run(4 * n)[1], 4 * n, n)

    def gap(a, b):
        return np.linalg.norm(low[a] - low[b]) / np.linalg.norm(low[b])

    for n in (16, 32):
        assert gap(n, 2 * n) <= 3 * tails[n]
    # the input fills the 16^2 band, so aliasing there is visible ...
    assert gap(16, 32) > 1e-4
    # ... and it vanishes as the grid is refined
    assert gap(32, 64) < 1e-2 * gap(16, 32)
    assert gap(64, 128) < 1e-2 * gap(32, 64)


def test_gradients_reach_every_parameter_and_the_input():
    torch.manual_seed(8)
    net = FNO(1, width=8, layers=2, modes=4)
    torch.nn.init.normal_(net.project[2].weight, std=0.1)
    torch.nn.init.normal_(net.film.weight, std=0.1)
    x = torch.randn(4, 1, 16, 16, requires_grad=True)
    loss = (net(x, torch.linspace(-1, 1, 4)) ** 2).mean()
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    assert x.grad.abs().sum() > 0


def test_default_network_is_a_few_megabytes():
    net = FNO(1)
    assert net.options()["width"] == 24 and net.modes == (12, 12) and net.layers == 4
    assert net.parameter_count() * 4 < 6e6


def _denoiser(channels=1, mean=0.0, std=1.0, seed=0, zero=False):
    torch.manual_seed(seed)
    net = FNO(channels, width=8, layers=2, modes=5).double()
    if not zero:
        torch.nn.init.normal_(net.project[2].weight, std=0.2)
    g = torus(16)
    return FNODenoiser(net, VPProcess(), default_noise(g), data_mean=mean, data_std=std,
                       channels=channels), g


def test_untrained_denoiser_is_the_edm_skip():
    """With ``F = 0``, ``D = m + c_skip (u / a - m)`` exactly (Karras et al. Table 1)."""
    model, g = _denoiser(channels=2, mean=[1.5, -2.0], std=[3.0, 0.5], zero=True)
    u = torch.randn(3, 2, 16, 16, dtype=torch.float64)
    t = torch.tensor([0.05, 0.3, 0.9], dtype=torch.float64)
    p = model.process
    a = p.a(t.numpy())[:, None, None, None]
    sig = p.sigma(t.numpy())[:, None, None, None] / np.array([3.0, 0.5])[None, :, None, None]
    c_skip = 1.0 / (sig**2 + 1.0)
    m = np.array([1.5, -2.0])[None, :, None, None]
    expected = m + c_skip * (u.numpy() / a - m)
    with torch.no_grad():
        np.testing.assert_allclose(model.denoise(u, t, g).numpy(), expected, rtol=1e-12)


def test_edm_coefficients():
    model, _ = _denoiser(std=2.0)
    sigma = torch.tensor([0.1, 1.0, 10.0], dtype=torch.float64)
    c_skip, c_out, c_in, c_noise = model.coefficients(sigma, 2)
    s = sigma.numpy() / 2.0
    np.testing.assert_allclose(c_skip.reshape(-1), 1 / (s**2 + 1))
    np.testing.assert_allclose(c_out.reshape(-1), s / np.sqrt(s**2 + 1))
    np.testing.assert_allclose(c_in.reshape(-1), 1 / np.sqrt(s**2 + 1))
    np.testing.assert_allclose(c_noise, np.log(sigma.numpy()) / 4)
    # the identity behind the network-space loss: lambda c_out^2 = 1
    lam = (s**2 + 1) / s**2
    np.testing.assert_allclose(lam * c_out.reshape(-1).numpy() ** 2, 1.0)


def test_denoise_noise_score_conversions_agree():
    model, g = _denoiser(mean=0.3, std=1.7)
    u = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    t = torch.tensor([0.2, 0.6], dtype=torch.float64)
    with torch.no_grad():
        d = model.denoise(u, t, g)
        eps = model.predict_noise(u, t, g)
        score = model.score(u, t, g)
    p = model.process
    s = p.s(t)[:, None, None, None]
    torch.testing.assert_close(noise_to_denoiser(eps, u, t, p), d)
    torch.testing.assert_close(score_to_denoiser(score, u, t, p), d)
    torch.testing.assert_close(score, -eps / s)
    torch.testing.assert_close(denoiser_to_noise(d, u, t, p), eps)


def test_time_as_float_tensor_or_array():
    model, g = _denoiser()
    u = torch.randn(3, 1, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        ref = model.denoise(u, 0.4, g)
        torch.testing.assert_close(model.denoise(u, torch.full((3,), 0.4), g), ref)
        torch.testing.assert_close(model.denoise(u, np.full(3, 0.4), g), ref)
        # any resolution of the domain
        assert model.denoise(torch.zeros(1, 1, 24, 40, dtype=torch.float64), 0.4,
                             torus((24, 40))).shape == (1, 1, 24, 40)


def test_denoiser_passes_gradients_to_its_input():
    model, g = _denoiser()
    u = torch.randn(2, 1, 16, 16, dtype=torch.float64, requires_grad=True)
    model.denoise(u, 0.5, g).sum().backward()
    assert u.grad is not None and u.grad.abs().sum() > 0


def test_denoiser_rejects_bad_input():
    model, g = _denoiser()
    u = torch.zeros(2, 1, 16, 16, dtype=torch.float64)
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        model.denoise(u.numpy(), 0.5, g)
    with pytest.raises(ValueError, match=r"u has shape \(2, 2, 16, 16\); expected "
                       r"\(B, 1, 16, 16\)"):
        model.denoise(torch.zeros(2, 2, 16, 16), 0.5, g)
    with pytest.raises(ValueError, match=r"expected \(B, 1, 32, 32\)"):
        model.denoise(u, 0.5, torus(32))
    with pytest.raises(ValueError, match=r"t has shape \(3,\); expected a float or \(2,\)"):
        model.denoise(u, torch.ones(3) * 0.5, g)
    with pytest.raises(ValueError, match=r"must lie in \(0, t_max=1.0\]"):
        model.denoise(u, 1.5, g)
    with pytest.raises(ValueError, match="dimension"):
        model.denoise(torch.zeros(2, 1, 16), 0.5, torus(16, ndim=1))
    with pytest.raises(TypeError, match="grid must be"):
        model.denoise(u, 0.5, (16, 16))
    bounded = FNODenoiser(model.network, model.process, model.noise, lengths=(1.0, 1.0))
    with pytest.raises(ValueError, match="trained on the domain"):
        bounded.denoise(u, 0.5, torus(16, lengths=2.0))


def test_fno_rejects_bad_options():
    with pytest.raises(ValueError, match="ndim=4 must be 1, 2 or 3"):
        FNO(1, ndim=4)
    with pytest.raises(ValueError, match="modes=0 must be a positive integer"):
        FNO(1, modes=0)
    with pytest.raises(ValueError, match=r"modes=\(4, 4, 4\) must have 2 entries"):
        FNO(1, modes=(4, 4, 4))
    with pytest.raises(ValueError, match="width=-3"):
        FNO(1, width=-3)
    net = FNO(1, width=4, layers=1, modes=2)
    with pytest.raises(ValueError, match=r"x has shape \(2, 3, 8, 8\)"):
        net(torch.zeros(2, 3, 8, 8), torch.zeros(2))
    with pytest.raises(ValueError, match=r"c_noise has shape \(3,\)"):
        net(torch.zeros(2, 1, 8, 8), torch.zeros(3))
    with pytest.raises(ValueError, match="a denoiser of 2 channel"):
        FNODenoiser(net, VPProcess(), default_noise(torus(8)), channels=2)
    with pytest.raises(TypeError, match="network must be"):
        FNODenoiser(torch.nn.Linear(1, 1), VPProcess(), default_noise(torus(8)))


def test_options_rebuild_the_network():
    net = FNO(2, width=6, layers=3, modes=(5, 4), time_features=4, time_width=8)
    again = FNO(**net.options())
    assert again.options() == net.options()
    assert {k: v.shape for k, v in again.state_dict().items()} == \
        {k: v.shape for k, v in net.state_dict().items()}


def test_default_noise_has_unit_variance_in_the_continuum():
    noise = default_noise(torus(64))
    assert noise.alpha == 2.0 and noise.ndim == 2
    # the truncation to 64^2 misses the tail sum_{|m| > 31} lambda_m ~ |m|^-2 of it
    assert 0.98 < noise.pointwise_variance(torus(64)) < 1.0
    assert 0.999 < noise.pointwise_variance(torus(512)) <= 1.0
