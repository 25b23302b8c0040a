"""Tests of sciffd.spectral against explicit sums and closed-form derivatives.

Tolerances: every check here is exact in exact arithmetic, so the bounds
are rounding bounds. An FFT of a field of size O(1) over P points has an
error of about ``eps log P`` per coefficient (eps = 2.2e-16); derivatives
multiply by ``|k|^order``, so their bound is relative to ``max |k|^order``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from references import TrigPolynomial, direct_dft

from sciffd import spectral
from sciffd.backend import to_numpy
from sciffd.grids import TorusGrid

SHAPES = [(8,), (16,), (7,), (11,), (6, 9), (8, 8), (7, 11), (4, 5, 6), (3, 7, 2)]
# rounding of an FFT-based operator on O(1) data: a few hundred eps
RTOL = 1e-12


def _half(full: np.ndarray) -> np.ndarray:
    return full[..., : full.shape[-1] // 2 + 1]


def _irfft(u_hat: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """numpy's inverse real FFT with norm="forward" (an independent implementation)."""
    return np.fft.irfftn(u_hat, s=shape, axes=tuple(range(-len(shape), 0)), norm="forward")


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_direct_dft(shape, rng, xp):
    grid = TorusGrid(shape, tuple(1.0 + i for i in range(len(shape))))
    u = rng.standard_normal(shape)
    u_hat = to_numpy(spectral.forward(xp.asarray(u), grid))
    assert u_hat.shape == grid.spectral_shape
    np.testing.assert_allclose(u_hat, _half(direct_dft(u)), rtol=0, atol=1e-14)


@pytest.mark.parametrize("shape", SHAPES)
def test_inverse_round_trip_and_batches(shape, rng, xp):
    grid = TorusGrid(shape)
    u = rng.standard_normal((3, 2) + shape)
    u_hat = spectral.forward(xp.asarray(u), grid)
    assert tuple(u_hat.shape) == (3, 2) + grid.spectral_shape
    back = to_numpy(spectral.inverse(u_hat, grid))
    np.testing.assert_allclose(back, u, rtol=0, atol=1e-14)
    # leading axes are independent transforms
    np.testing.assert_allclose(
        to_numpy(u_hat)[1, 0], _half(direct_dft(u[1, 0])), rtol=0, atol=1e-14
    )


def test_forward_single_mode_is_exact():
    grid = TorusGrid((9, 8), (2.0, 3.0))
    y, x = grid.mesh()
    u = 2.0 * np.cos(2 * np.pi * (2 * y / 2.0 - 3 * x / 3.0))
    u_hat = spectral.forward(u, grid)
    # cos(theta) = (e^{i theta} + e^{-i theta}) / 2: coefficient 1 at (m_y, m_x) = (-2, 3)
    expected = np.zeros(grid.spectral_shape, dtype=complex)
    expected[-2, 3] = 1.0
    np.testing.assert_allclose(u_hat, expected, rtol=0, atol=1e-14)


LENGTHS = {1: (2.5,), 2: (2 * np.pi, 0.7), 3: (1.0, 3.0, 0.5)}


@pytest.mark.parametrize("shape", [(16,), (9,), (12, 9), (6, 10), (4, 6, 5)])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_derivative_of_trigonometric_polynomial(shape, order, rng, xp):
    lengths = LENGTHS[len(shape)]
    grid = TorusGrid(shape, lengths)
    p = TrigPolynomial.random(rng, shape, lengths)
    u = xp.asarray(p.values(shape))
    for axis in range(len(shape)):
        du = to_numpy(spectral.derivative(u, grid, axis=axis, order=order))
        expected = p.values(shape, [(axis, order)])
        scale = (np.pi * shape[axis] / lengths[axis]) ** order
        np.testing.assert_allclose(du, expected, rtol=0, atol=RTOL * scale)
    # a negative axis is the same axis
    np.testing.assert_allclose(
        to_numpy(spectral.derivative(u, grid, axis=-1, order=order)),
        p.values(shape, [(len(shape) - 1, order)]),
        rtol=0, atol=RTOL * (np.pi * shape[-1] / lengths[-1]) ** order,
    )


def test_order_zero_is_identity_and_nyquist_cosine():
    grid = TorusGrid((8,), (3.0,))
    x = grid.coords(0)
    k = np.pi * 8 / 3.0
    u = np.cos(k * x)  # the Nyquist mode, cos(pi j)
    np.testing.assert_allclose(spectral.derivative(u, grid, 0, 0), u, atol=1e-15)
    # du/dx = -k sin(k x) vanishes on every grid point: dropping the Nyquist
    # coefficient for odd orders is exact; even orders keep it
    np.testing.assert_allclose(spectral.derivative(u, grid, 0, 1), 0.0, atol=1e-13)
    np.testing.assert_allclose(spectral.derivative(u, grid, 0, 2), -(k**2) * u, rtol=1e-13)


def test_odd_derivatives_drop_the_nyquist_mode_of_every_even_axis():
    # on an even y axis, cos(pi j_y + theta) and cos(-pi j_y + theta) have the
    # same grid values and opposite y-derivatives: the Nyquist mode is
    # ambiguous for odd orders, and sciffd sets it to zero
    grid = TorusGrid((8, 9), (2.0, 3.0))
    y, x = grid.mesh()
    k_x = 2 * np.pi / 3.0
    u = np.cos(np.pi * 8 * y / 2.0 + k_x * x)
    np.testing.assert_allclose(spectral.derivative(u, grid, 0, 1), 0.0, atol=1e-13)
    np.testing.assert_allclose(spectral.derivative(u, grid, 0, 3), 0.0, atol=1e-10)
    k_y = np.pi * 8 / 2.0
    np.testing.assert_allclose(spectral.derivative(u, grid, 0, 2), -(k_y**2) * u, atol=1e-12)
    # the x-derivative of the same field is unambiguous
    np.testing.assert_allclose(spectral.derivative(u, grid, 1, 1),
                               -k_x * np.sin(np.pi * 8 * y / 2.0 + k_x * x), atol=1e-13)


@pytest.mark.parametrize("shape", [(10,), (7, 12), (6, 6), (4, 5, 6)])
def test_gradient_and_laplacian(shape, rng, xp):
    lengths = LENGTHS[len(shape)]
    grid = TorusGrid(shape, lengths)
    p = TrigPolynomial.random(rng, shape, lengths)
    u = xp.asarray(p.values(shape))
    kmax = max(np.pi * n / L for n, L in zip(shape, lengths, strict=True))
    grad = spectral.gradient(u, grid)
    assert len(grad) == len(shape)
    for axis, g in enumerate(grad):
        np.testing.assert_allclose(
            to_numpy(g), p.values(shape, [(axis, 1)]), rtol=0, atol=RTOL * kmax
        )
    lap = to_numpy(spectral.laplacian(u, grid))
    expected = sum(p.values(shape, [(axis, 2)]) for axis in range(len(shape)))
    np.testing.assert_allclose(lap, expected, rtol=0, atol=RTOL * len(shape) * kmax**2)


@pytest.mark.parametrize("shape", [(9,), (8, 12), (5, 7), (4, 6, 5)])
def test_inverse_laplacian_solves_poisson(shape, rng, xp):
    lengths = LENGTHS[len(shape)]
    grid = TorusGrid(shape, lengths)
    p = TrigPolynomial.random(rng, shape, lengths, terms=8)
    p.a[0] = 1.7  # make sure there is a mean to remove
    p.modes[0] = 0
    f = p.values(shape)

    # exact zero-mean solution: divide each term by -|k|^2, drop k = 0
    k2 = p.k_squared()
    nonzero = k2 > 0
    q = TrigPolynomial(p.modes[nonzero], -p.a[nonzero] / k2[nonzero],
                       -p.b[nonzero] / k2[nonzero], p.lengths)

    v = to_numpy(spectral.inverse_laplacian(xp.asarray(f), grid))
    np.testing.assert_allclose(v, q.values(shape), rtol=0, atol=1e-13)
    assert abs(v.mean()) < 1e-14
    back = to_numpy(spectral.laplacian(xp.asarray(v), grid))
    np.testing.assert_allclose(back, f - f.mean(), rtol=0, atol=1e-12)


resolutions = st.lists(st.integers(2, 12), min_size=1, max_size=3)


@pytest.mark.property
@given(resolutions, st.data())
def test_resample_is_exact_for_band_limited_fields(coarse, data):
    ndim = len(coarse)
    fine = data.draw(st.lists(st.integers(2, 16), min_size=ndim, max_size=ndim))
    lengths = LENGTHS[ndim]
    g_coarse = TorusGrid(tuple(coarse), lengths)
    g_fine = TorusGrid(tuple(fine), lengths)
    seed = data.draw(st.integers(0, 2**32 - 1))
    band = [min((a - 1) // 2, (b - 1) // 2) for a, b in zip(coarse, fine, strict=True)]
    p = TrigPolynomial.random(np.random.default_rng(seed), coarse, lengths, band=band)
    u_coarse, u_fine = p.values(tuple(coarse)), p.values(tuple(fine))

    # the modes of p lie in the band of both grids: resampling either way is exact
    np.testing.assert_allclose(
        spectral.resample(u_coarse, g_coarse, g_fine), u_fine, rtol=0, atol=1e-13
    )
    np.testing.assert_allclose(
        spectral.resample(u_fine, g_fine, tuple(coarse)), u_coarse, rtol=0, atol=1e-13
    )


@pytest.mark.property
@given(resolutions, st.data())
def test_resample_spectrum_keeps_exactly_the_shared_band(source, data):
    ndim = len(source)
    target = data.draw(st.lists(st.integers(2, 12), min_size=ndim, max_size=ndim))
    g_from, g_to = TorusGrid(tuple(source)), TorusGrid(tuple(target))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    u_hat = rng.standard_normal((2,) + g_from.spectral_shape) \
        + 1j * rng.standard_normal((2,) + g_from.spectral_shape)
    out = spectral.resample_spectrum(u_hat, g_from, g_to)
    assert out.shape == (2,) + g_to.spectral_shape

    # reference, entry by entry: a mode is copied when |m_i| < N_i / 2 on both
    # grids (so Nyquist modes of either grid are dropped), else zero
    expected = np.zeros_like(out)
    for idx in np.ndindex(*g_to.spectral_shape):
        m = [g_to.mode_indices(i)[j] for i, j in enumerate(idx)]
        if all(2 * abs(mi) < min(a, b) for mi, a, b in zip(m, source, target, strict=True)):
            src = tuple(mi % n if i < ndim - 1 else mi
                        for i, (mi, n) in enumerate(zip(m, source, strict=True)))
            expected[(slice(None),) + idx] = u_hat[(slice(None),) + src]
    np.testing.assert_array_equal(out, expected)


@pytest.mark.property
@given(resolutions, st.integers(2, 3), st.integers(0, 2**32 - 1))
def test_refine_then_restrict_is_identity(shape, factor, seed):
    grid = TorusGrid(tuple(shape), LENGTHS[len(shape)])
    u_hat = np.fft.rfftn(np.random.default_rng(seed).standard_normal(grid.shape),
                         norm="forward")
    # a band-limited field on the coarse grid: no Nyquist content
    u = _irfft(u_hat * grid.nyquist_mask, grid.shape)
    fine = grid.refine(factor)
    up = spectral.resample(u, grid, fine)
    assert up.shape == fine.shape
    np.testing.assert_allclose(spectral.resample(up, fine, grid), u, rtol=0, atol=1e-13)
    # restricting the refined field returns the coarse samples, which are
    # also every factor-th fine sample
    index = tuple(slice(None, None, factor) for _ in shape)
    np.testing.assert_allclose(up[index], u, rtol=0, atol=1e-13)


def test_resample_torus_backend_and_batches(rng, xp):
    grid = TorusGrid((7, 9), (1.0, 2.0))
    u = rng.standard_normal((2, 3) + grid.shape)
    fine = to_numpy(spectral.resample(xp.asarray(u), grid, (14, 18)))
    assert fine.shape == (2, 3, 14, 18)
    np.testing.assert_allclose(fine[..., ::2, ::2], u, rtol=0, atol=1e-13)
    assert spectral.resample(u, grid, grid.shape) is u


@pytest.mark.parametrize("shape", [(9,), (12,), (6, 9), (7, 8), (5, 6, 7)])
def test_dealias_mask_is_the_two_thirds_rule(shape):
    grid = TorusGrid(shape)
    mask = spectral.dealias_mask(grid)
    assert mask.shape == grid.spectral_shape and mask.dtype == bool
    # definition: keep |m_i| < N_i / 3 on every axis
    expected = np.ones(grid.spectral_shape, dtype=bool)
    for idx in np.ndindex(*grid.spectral_shape):
        for i, n in enumerate(shape):
            m = np.fft.fftfreq(n, 1.0 / n).round()[idx[i]] if i < len(shape) - 1 else idx[i]
            if not abs(m) < n / 3:
                expected[idx] = False
    np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize("shape", [(12,), (9, 12), (10, 7)])
def test_dealiased_product_has_no_aliasing(shape, rng, xp):
    # the point of the 2/3 rule: the product of two fields in the kept band,
    # computed on the grid and then dealiased, equals the exact product (on a
    # grid twice as fine, where it has no aliasing) truncated to the band
    grid = TorusGrid(shape)
    mask = spectral.dealias_mask(grid)
    fine = grid.refine(2)

    def band_field():
        u_hat = spectral.forward(rng.standard_normal(shape), grid) * mask
        return _irfft(u_hat, shape)

    u, v = band_field(), band_field()
    on_grid = to_numpy(spectral.dealias(spectral.forward(xp.asarray(u * v), grid), grid))
    exact = spectral.resample(spectral.resample(u, grid, fine) * spectral.resample(v, grid, fine),
                              fine, grid)
    np.testing.assert_allclose(on_grid, spectral.forward(exact, grid) * mask,
                               rtol=0, atol=1e-14)


def test_multiply_with_a_numpy_multiplier(rng, xp):
    grid = TorusGrid((6, 7))
    u = rng.standard_normal(grid.shape)
    m = rng.standard_normal(grid.spectral_shape)
    out = to_numpy(spectral.multiply(xp.asarray(u), grid, m))
    expected = _irfft(np.fft.rfftn(u, norm="forward") * m, grid.shape)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-14)


def test_as_array_like_keeps_namespace_and_precision():
    torch = pytest.importorskip("torch")
    a = np.array([1.0, 2.0])
    assert spectral.as_array_like(a, torch.zeros(1, dtype=torch.float32)).dtype == torch.float32
    assert spectral.as_array_like(a, torch.zeros(1, dtype=torch.float64)).dtype == torch.float64
    c = spectral.as_array_like(a + 1j, torch.zeros(1, dtype=torch.complex64))
    assert c.dtype == torch.complex64
    b = spectral.as_array_like(np.array([True]), np.zeros(1, dtype=np.float32))
    assert b.dtype == bool
    assert spectral.as_array_like(a, np.zeros(1, dtype=np.float32)).dtype == np.float32


def test_single_precision_torch_matches_numpy():
    torch = pytest.importorskip("torch")
    grid = TorusGrid((16, 12), (1.0, 2.0))
    u = np.random.default_rng(3).standard_normal(grid.shape).astype(np.float32)
    d_np = spectral.derivative(u, grid, axis=1, order=2)
    d_t = spectral.derivative(torch.from_numpy(u), grid, axis=1, order=2)
    assert d_t.dtype == torch.float32
    # float32 rounding (6e-8) times log P, relative to the largest |k|^2 term
    scale = np.abs(d_np).max()
    np.testing.assert_allclose(d_t.numpy(), d_np, rtol=0, atol=1e-5 * scale)


# -- bad input ---------------------------------------------------------------
def test_wrong_field_shapes_are_refused():
    grid = TorusGrid((8, 6))
    with pytest.raises(ValueError, match=r"shape \(8, 5\); its last 2 axes must be the grid "
                                         r"shape \(8, 6\)"):
        spectral.forward(np.zeros((8, 5)), grid)
    with pytest.raises(ValueError, match="its last 2 axes"):
        spectral.forward(np.zeros((6,)), grid)
    with pytest.raises(ValueError, match=r"half spectrum \(8, 4\)"):
        spectral.inverse(np.zeros((8, 6), dtype=complex), grid)
    with pytest.raises(ValueError, match="its last 2 axes"):
        spectral.derivative(np.zeros((6, 8)), grid, axis=0)


def test_wrong_grid_type_is_refused():
    u = np.zeros((8, 8))
    for call in (
        lambda: spectral.forward(u, (8, 8)),
        lambda: spectral.inverse(np.zeros((8, 5), dtype=complex), (8, 8)),
        lambda: spectral.laplacian(u, "grid"),
        lambda: spectral.resample(u, (8, 8), 16),
    ):
        with pytest.raises(TypeError, match="grid must be a sciffd.grids.TorusGrid"):
            call()


def test_bad_axis_and_order_are_refused():
    grid = TorusGrid((8, 6))
    u = np.zeros(grid.shape)
    with pytest.raises(ValueError, match="axis=2 is out of range for a 2-dimensional grid"):
        spectral.derivative(u, grid, axis=2)
    with pytest.raises(TypeError, match="axis=1.0 must be an integer"):
        spectral.derivative(u, grid, axis=1.0)
    with pytest.raises(ValueError, match="order=-1 must be a non-negative integer"):
        spectral.derivative(u, grid, axis=0, order=-1)


def test_resample_refuses_another_domain():
    grid = TorusGrid((8, 8), (1.0, 1.0))
    with pytest.raises(ValueError, match="the domains differ"):
        spectral.resample(np.zeros((8, 8)), grid, TorusGrid((16, 16), (1.0, 2.0)))
    with pytest.raises(ValueError, match="the domains differ"):
        spectral.resample_spectrum(np.zeros((8, 5), dtype=complex), grid,
                                   TorusGrid((16,), (1.0,)))
