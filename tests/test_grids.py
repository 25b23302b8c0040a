"""Tests of sciffd.grids: coordinates, spectral layout, weights, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sciffd.grids import TorusGrid, torus

shapes = st.lists(st.integers(2, 11), min_size=1, max_size=3).map(tuple)


def test_coordinates_and_spacing_non_unit_lengths():
    g = TorusGrid((6, 5), (2.0, 3.5))
    np.testing.assert_allclose(g.coords(0), np.arange(6) * 2.0 / 6, rtol=0, atol=1e-15)
    np.testing.assert_allclose(g.coords(1), np.arange(5) * 3.5 / 5, rtol=0, atol=1e-15)
    assert g.coords(0).dtype == np.float64
    assert g.spacing == pytest.approx((2.0 / 6, 3.5 / 5), rel=1e-15)
    assert g.volume == pytest.approx(7.0)
    assert g.size == 30
    assert g.weight == pytest.approx(1 / 30)
    assert g.dims == ("y", "x")
    # the last point stops one spacing short of the period
    assert g.coords(1)[-1] == pytest.approx(3.5 - 3.5 / 5)


def test_mesh_is_ij_indexed():
    g = TorusGrid((3, 4, 5), (1.0, 2.0, 3.0))
    z, y, x = g.mesh()
    assert z.shape == y.shape == x.shape == (3, 4, 5)
    np.testing.assert_array_equal(z[:, 0, 0], g.coords(0))
    np.testing.assert_array_equal(y[0, :, 0], g.coords(1))
    np.testing.assert_array_equal(x[0, 0, :], g.coords(2))
    assert g.dims == ("z", "y", "x")


@pytest.mark.property
@given(shapes, st.floats(0.3, 7.0))
def test_wavenumber_layout_matches_numpy_fft(shape, length):
    lengths = tuple(length * (i + 1) for i in range(len(shape)))
    g = TorusGrid(shape, lengths)
    *first, last = shape
    assert g.spectral_shape == tuple(first) + (last // 2 + 1,)
    for i, n in enumerate(shape):
        if i < len(shape) - 1:
            expected = np.fft.fftfreq(n, 1.0 / n)
        else:
            expected = np.fft.rfftfreq(n, 1.0 / n)
        np.testing.assert_array_equal(g.mode_indices(i), expected.round().astype(np.int64))
        k = g.wavenumbers()[i]
        assert k.ndim == len(shape) and k.shape[i] == expected.size
        # angular wavenumbers 2 pi m / L; fftfreq with d = L/N gives m / L
        # angular wavenumbers 2 pi m / L; numpy's frequencies with d = L/N are m / L
        freq = np.fft.rfftfreq if i == len(shape) - 1 else np.fft.fftfreq
        np.testing.assert_allclose(
            k.reshape(-1), 2 * np.pi * freq(n, lengths[i] / n), rtol=1e-13, atol=1e-12
        )
    k2 = sum(np.broadcast_to(k, g.spectral_shape) ** 2 for k in g.wavenumbers())
    np.testing.assert_allclose(g.k_squared, k2, rtol=1e-14)
    assert g.k_squared.shape == g.spectral_shape


def test_negative_axis_means_the_same_axis():
    g = TorusGrid((6, 8))
    np.testing.assert_array_equal(g.mode_indices(-1), g.mode_indices(1))
    np.testing.assert_array_equal(g.mode_indices(-2), g.mode_indices(0))


@pytest.mark.property
@given(shapes)
def test_nyquist_mask(shape):
    g = TorusGrid(shape)
    expected = np.ones(g.spectral_shape, dtype=bool)
    for idx in np.ndindex(*g.spectral_shape):
        for i, n in enumerate(shape):
            m = g.mode_indices(i)[idx[i]]
            if n % 2 == 0 and abs(m) == n // 2:
                expected[idx] = False
    np.testing.assert_array_equal(g.nyquist_mask, expected)
    # the number of full-spectrum modes off every Nyquist plane
    n_modes = np.prod([n - (n % 2 == 0) for n in shape])
    assert (g.hermitian_weight * g.nyquist_mask).sum() == n_modes


@pytest.mark.property
@given(shapes, st.integers(0, 2**32 - 1))
def test_parseval_with_hermitian_weight(shape, seed):
    g = TorusGrid(shape)
    u = np.random.default_rng(seed).standard_normal(shape)
    u_hat = np.fft.rfftn(u, norm="forward")
    lhs = np.mean(u**2)
    rhs = np.sum(g.hermitian_weight * np.abs(u_hat) ** 2)
    # both sides are sums of O(N) positive terms of size O(1): relative rounding
    assert rhs == pytest.approx(lhs, rel=1e-12)


@pytest.mark.property
@given(shapes)
def test_hermitian_weight_counts_full_spectrum_modes(shape):
    g = TorusGrid(shape)
    w = g.hermitian_weight
    assert set(np.unique(w)) <= {1.0, 2.0}
    assert w.sum() == np.prod(shape)
    n = shape[-1]
    last = g.mode_indices(-1)
    self_conjugate = (last == 0) | ((n % 2 == 0) & (last == n // 2))
    np.testing.assert_array_equal(w[..., self_conjugate], 1.0)
    np.testing.assert_array_equal(w[..., ~self_conjugate], 2.0)


def test_with_shape_and_refine_keep_the_domain():
    g = TorusGrid((6, 10), (2.0, 5.0))
    assert g.with_shape(12) == TorusGrid((12, 12), (2.0, 5.0))
    assert g.with_shape((3, 7)).lengths == (2.0, 5.0)
    assert g.refine(3) == TorusGrid((18, 30), (2.0, 5.0))
    assert g == TorusGrid([6, 10], [2, 5])
    assert hash(g) == hash(TorusGrid((6, 10), (2.0, 5.0)))


def test_torus_builder():
    assert torus(16).shape == (16, 16)
    assert torus(16, ndim=1).shape == (16,)
    assert torus(4, ndim=3).shape == (4, 4, 4)
    assert torus((8, 12), lengths=(1.0, 2.0)).lengths == (1.0, 2.0)
    assert torus(8, lengths=2 * np.pi).lengths == (2 * np.pi, 2 * np.pi)
    assert torus(8, lengths=np.float32(2.0)).lengths == (2.0, 2.0)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (((),), ValueError, r"shape=\(\) must have 1, 2 or 3 axes"),
        (((2, 2, 2, 2),), ValueError, "must have 1, 2 or 3 axes"),
        (((8, 1),), ValueError, "at least 2 points, got 1"),
        (((8, 2.5),), TypeError, "must contain integers, got 2.5"),
        (((8, True),), TypeError, "must contain integers"),
        (("ab",), TypeError, "must contain integers"),
        ((None,), TypeError, "shape=None must be a tuple of integers"),
        (((8, 8), (1.0,)), ValueError, "must have 2 entries, one per axis"),
        (((8, 8), (1.0, -2.0)), ValueError, "finite and positive"),
        (((8,), float("inf")), ValueError, "finite and positive"),
        (((8,), "a"), TypeError, "must contain numbers"),
        (((8, 8), object()), TypeError, "must be a number or a sequence of 2 numbers"),
    ],
)
def test_bad_grids_are_refused(args, error, match):
    with pytest.raises(error, match=match):
        TorusGrid(*args)


def test_bad_torus_arguments_are_refused():
    with pytest.raises(ValueError, match="ndim=4 must be 1, 2 or 3"):
        torus(8, ndim=4)
    with pytest.raises(ValueError, match="resolution=1 must be at least 2"):
        torus(1)
    with pytest.raises(TypeError, match="resolution=True"):
        torus(True)
    with pytest.raises(ValueError, match="factor=0 must be a positive integer"):
        TorusGrid((4, 4)).refine(0)


def test_torus_passes_bad_resolution_to_the_grid_check():
    with pytest.raises(TypeError, match="shape=8.0 must be a tuple of integers"):
        torus(8.0)
    with pytest.raises(ValueError, match="must have 2 entries"):
        torus((8, 8), lengths=(1.0, 2.0, 3.0))
