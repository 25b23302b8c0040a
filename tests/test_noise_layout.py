"""The layout of the nested noise and the fast sampler behind ``GaussianMeasure.sample``.

Every value is checked against a slow reference written from the
definition: member ``m`` of seed ``s`` draws ``1 + 2 M`` float64 normals
from ``Generator(SFC64(SeedSequence(s, spawn_key=(m, c, t))))``, the mean
mode first, then the real and imaginary parts of the canonical modes in
shell order (``r = max_i |m_i|``, lexicographic in a shell); the half
spectrum holds ``sqrt(lambda / 2) (z' + i z'')`` and the conjugates on the
plane ``m_x = 0``.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sciffd import _nested, backend, spectral
from sciffd.grids import TorusGrid, torus
from sciffd.noise import Matern, WhiteNoise, member_generator

MU = Matern(alpha=2.0, tau=3.0)


def _canonical(m: tuple[int, ...]) -> bool:
    """Exactly one of ``m`` and ``-m``: the last nonzero entry is positive."""
    for v in reversed(m):
        if v != 0:
            return v > 0
    return False


def reference_spectrum(measure, grid: TorusGrid, member: int, seed: int, channel: int = 0,
                       stream: int = 0) -> np.ndarray:
    """Half spectrum of one member, entry by entry from the definition (complex128)."""
    shape, d = grid.shape, grid.ndim
    Ks = [(n - 1) // 2 for n in shape]
    K = max(Ks)
    modes = [m for m in itertools.product(range(-K, K + 1), repeat=d) if _canonical(m)]
    modes.sort(key=lambda m: (max(abs(v) for v in m), m))
    z = member_generator(seed, member, channel, stream).standard_normal(1 + 2 * len(modes))
    pairs = {m: (z[1 + 2 * j], z[2 + 2 * j]) for j, m in enumerate(modes)}
    lam = measure.eigenvalues(grid)

    out = np.zeros(grid.spectral_shape, dtype=np.complex128)
    for index in np.ndindex(grid.spectral_shape):
        m = tuple(i if 2 * i < n else i - n for i, n in zip(index[:-1], shape[:-1],
                                                            strict=True)) + (index[-1],)
        if any(abs(v) > k for v, k in zip(m, Ks, strict=True)):
            continue  # Nyquist, or outside the band of a non-square grid
        if not any(m):
            out[index] = math.sqrt(lam[index]) * z[0]
            continue
        s = math.sqrt(lam[index] / 2)
        if m in pairs:
            re, im = pairs[m]
            out[index] = complex(s * re, s * im)
        else:
            re, im = pairs[tuple(-v for v in m)]
            out[index] = complex(s * re, -(s * im))
    return out


def reference(measure, grid, members, seed, channels=1, stream=0) -> np.ndarray:
    return np.stack([
        np.stack([reference_spectrum(measure, grid, m, seed, c, stream)
                  for c in range(channels)])
        for m in members
    ])


# -- the generators ------------------------------------------------------------------
def test_member_generator_is_sfc64_of_the_spawned_seed_sequence():
    ss = np.random.SeedSequence(11, spawn_key=(4, 1, 2))
    expected = np.random.Generator(np.random.SFC64(ss)).standard_normal(50)
    np.testing.assert_array_equal(member_generator(11, 4, 1, 2).standard_normal(50), expected)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**128 - 1),
       keys=st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
                               st.integers(0, 2**32 - 1)), min_size=1, max_size=6))
@pytest.mark.property
def test_seed_words_reproduce_seed_sequence(seed, keys):
    words = _nested.seed_words(seed, np.array(keys, dtype=np.int64))
    for key, w in zip(keys, words, strict=True):
        ss = np.random.SeedSequence(seed, spawn_key=key)
        np.testing.assert_array_equal(w, ss.generate_state(3, np.uint64))


def test_seed_words_refuse_what_numpy_lays_out_differently():
    assert _nested.seed_words(2**128, np.zeros((2, 3), dtype=np.int64)) is None
    assert _nested.seed_words(0, np.array([[2**32, 0, 0]])) is None
    assert _nested.vectorised_seeding_ok()


# -- values against the reference ------------------------------------------------------
@pytest.mark.parametrize("shape", [(16, 16), (24, 33), (9, 8), (15,), (16,), (6, 5, 8)])
@pytest.mark.parametrize("members", [[0, 1, 2], list(range(7))])  # numpy's and vectorised seeding
def test_spectrum_matches_reference_exactly(shape, members):
    grid = TorusGrid(shape)
    mu = Matern(alpha=2.0, tau=3.0, ndim=len(shape))
    got = mu.sample_spectrum(grid, members, seed=5, channels=2, stream=3, dtype=np.float64)
    expected = reference(mu, grid, members, 5, channels=2, stream=3)
    np.testing.assert_array_equal(got, expected)
    # float32 holds the same values, rounded once
    got32 = mu.sample_spectrum(grid, members, seed=5, channels=2, stream=3, dtype=np.float32)
    assert got32.dtype == np.complex64
    np.testing.assert_array_equal(got32, expected.astype(np.complex64))


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(2, 12), min_size=1, max_size=3).map(tuple),
       seed=st.integers(0, 2**64), member=st.integers(0, 2**40))
@pytest.mark.property
def test_spectrum_matches_reference_on_any_grid(shape, seed, member):
    grid = TorusGrid(shape)
    mu = Matern(alpha=2.0, tau=1.0, ndim=len(shape))
    got = mu.sample_spectrum(grid, [member] * 5, seed=seed, dtype=np.float64)
    expected = reference_spectrum(mu, grid, member, seed)
    for row in got[:, 0]:
        np.testing.assert_array_equal(row, expected)


def test_large_member_ids_and_seeds_take_numpy_seeding():
    grid = torus(8)
    ids = [2**33, 2**33 + 1, 5, 6]
    got = MU.sample_spectrum(grid, ids, seed=2**130, dtype=np.float64)
    np.testing.assert_array_equal(got, reference(MU, grid, ids, 2**130))


# -- the properties of nested noise ----------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_coarse_member_is_the_restriction_of_the_fine_one(dtype):
    coarse, fine = torus(32), torus(64)
    u_coarse = MU.sample(coarse, 4, seed=9, dtype=dtype)
    u_fine = MU.sample(fine, 4, seed=9, dtype=dtype)
    restricted = spectral.resample(u_fine.astype(np.float64), fine, coarse)
    scale = float(np.abs(u_coarse).max())
    tol = 1e-5 if dtype == np.float32 else 1e-12  # a few roundings of the transforms
    np.testing.assert_allclose(restricted, u_coarse, rtol=0, atol=tol * scale)
    # the spectra agree exactly on the shared modes
    s_coarse = MU.sample_spectrum(coarse, 4, seed=9, dtype=np.float64)
    s_fine = MU.sample_spectrum(fine, 4, seed=9, dtype=np.float64)
    np.testing.assert_array_equal(spectral.resample_spectrum(s_fine, fine, coarse), s_coarse)


def test_odd_and_non_square_grids_are_nested_too():
    coarse, fine = TorusGrid((24, 33), (1.0, 1.5)), TorusGrid((48, 67), (1.0, 1.5))
    s_coarse = MU.sample_spectrum(coarse, 3, seed=1, dtype=np.float64)
    s_fine = MU.sample_spectrum(fine, 3, seed=1, dtype=np.float64)
    np.testing.assert_array_equal(spectral.resample_spectrum(s_fine, fine, coarse), s_coarse)
    u = MU.sample(coarse, 3, seed=1, dtype=np.float64)
    assert u.shape == (3, 1, 24, 33)
    np.testing.assert_allclose(spectral.forward(u, coarse), s_coarse, rtol=0,
                               atol=1e-13 * float(np.abs(s_coarse).max()))


@pytest.mark.parametrize("pyfftw", ["0", "1"])
@pytest.mark.parametrize("shape", [(64, 64), (24, 33)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_alone_or_in_a_batch_gives_identical_values(monkeypatch, pyfftw, shape, dtype):
    monkeypatch.setenv("SCIFFD_PYFFTW", pyfftw)
    grid = TorusGrid(shape)
    np.testing.assert_array_equal(MU.sample(grid, [3], 4, dtype=dtype)[0],
                                  MU.sample(grid, 8, 4, dtype=dtype)[3])
    # a batch large enough to be drawn on several threads, in chunks
    batch = MU.sample(grid, 48, 4, channels=2, stream=1, dtype=dtype)
    alone = MU.sample(grid, [37, 2], 4, channels=2, stream=1, dtype=dtype)
    np.testing.assert_array_equal(alone[0], batch[37])
    np.testing.assert_array_equal(alone[1], batch[2])
    np.testing.assert_array_equal(MU.sample_spectrum(grid, [37], 4, channels=2, stream=1,
                                                     dtype=dtype)[0],
                                  MU.sample_spectrum(grid, 48, 4, channels=2, stream=1,
                                                     dtype=dtype)[37])


def test_pyfftw_and_scipy_paths_agree_to_rounding(monkeypatch):
    pytest.importorskip("pyfftw")
    grid = torus(64)
    monkeypatch.setenv("SCIFFD_PYFFTW", "1")
    assert backend.uses_pyfftw(grid.shape)
    u_fftw = MU.sample(grid, 6, 2, dtype=np.float64)
    monkeypatch.setenv("SCIFFD_PYFFTW", "0")
    assert not backend.uses_pyfftw(grid.shape)
    u_scipy = MU.sample(grid, 6, 2, dtype=np.float64)
    np.testing.assert_allclose(u_fftw, u_scipy, rtol=0, atol=1e-13 * np.abs(u_scipy).max())


def test_grid_values_are_the_inverse_transform_of_the_spectrum():
    grid = torus(64)
    for dtype in (np.float32, np.float64):
        u = MU.sample(grid, 5, 3, channels=2, dtype=dtype)
        assert u.dtype == dtype and u.shape == (5, 2, 64, 64)
        u_hat = MU.sample_spectrum(grid, 5, 3, channels=2, dtype=dtype)
        expected = np.fft.irfftn(u_hat.astype(np.complex128), s=grid.shape, axes=(-2, -1),
                                 norm="forward")
        tol = 1e-6 if dtype == np.float32 else 1e-14
        np.testing.assert_allclose(u, expected, rtol=0, atol=tol * np.abs(expected).max())


def test_float32_fields_are_the_float64_fields_rounded():
    grid = torus(48)
    u32 = MU.sample(grid, 4, 8, dtype=np.float32)
    u64 = MU.sample(grid, 4, 8, dtype=np.float64)
    # the spectra agree to one rounding; the float32 transform adds a few more
    np.testing.assert_allclose(u32, u64, rtol=0, atol=1e-6 * np.abs(u64).max())


def test_nyquist_modes_are_zero():
    grid = TorusGrid((16, 12))
    u_hat = MU.sample_spectrum(grid, 3, 1, dtype=np.float64)
    assert np.all(u_hat[..., 8, :] == 0) and np.all(u_hat[..., 6] == 0)
    lam = MU.eigenvalues(grid)
    assert np.all(u_hat[..., lam == 0] == 0)
    assert np.all(u_hat[..., lam > 0] != 0)


def test_member_depends_only_on_seed_member_channel_stream():
    grid = torus(16)
    a = MU.sample_spectrum(grid, [5], 3, channels=2, stream=1)
    b = MU.sample_spectrum(grid, [9, 5], 3, channels=3, stream=1)
    np.testing.assert_array_equal(a[0], b[1, :2])
    assert not np.array_equal(a, MU.sample_spectrum(grid, [5], 3, channels=2, stream=2))
    assert not np.array_equal(a, MU.sample_spectrum(grid, [5], 4, channels=2, stream=1))
    assert not np.array_equal(a[0, 0], a[0, 1])


def test_mode_variance_matches_the_eigenvalues():
    grid = TorusGrid((12, 15), (1.0, 2.0))
    members = 800
    u_hat = MU.sample_spectrum(grid, members, 21, dtype=np.float64)[:, 0]
    lam = MU.eigenvalues(grid)
    # canonical half-spectrum entries: u_hat = sqrt(lam/2) (z' + i z''), so
    # sum_members |u_hat|^2 / (lam/2) ~ chi^2 with 2 * members degrees of
    # freedom; the mean mode ~ chi^2(members); the m_x = 0 plane holds each
    # mode and its conjugate, so its upper half is tested (the rest is equal)
    tests = [((0, 0), members)]
    for iy in range(grid.shape[0]):
        for ix in range(grid.spectral_shape[1]):
            if lam[iy, ix] > 0 and (ix > 0 or 0 < iy <= grid.shape[0] // 2):
                tests.append(((iy, ix), 2 * members))
    alpha = 1e-6 / len(tests)  # family-wise false-alarm rate 1e-6 (Bonferroni)
    for index, dof in tests:
        power = np.abs(u_hat[(slice(None),) + index]) ** 2
        statistic = power.sum() / (lam[index] if dof == members else lam[index] / 2)
        low, high = stats.chi2.ppf(alpha / 2, dof), stats.chi2.isf(alpha / 2, dof)
        assert low < statistic < high, (index, statistic, low, high)


def test_white_noise_energy_is_chi_square():
    grid = torus(32)
    members = 64
    u = WhiteNoise().sample(grid, members, 3, dtype=np.float64)[:, 0]
    # Parseval: mean(u^2) = sum over the full spectrum of |u_hat|^2 = z_0^2 +
    # sum over canonical modes of (z'^2 + z''^2), a chi-square with as many
    # degrees of freedom as represented modes, prod(N) - #Nyquist = 32^2 - 63
    dof = members * (grid.size - 63)
    energy = float((u**2).mean(axis=(-2, -1)).sum())
    assert stats.chi2.ppf(1e-7, dof) < energy < stats.chi2.isf(1e-7, dof)


def test_torch_backend_matches_numpy():
    torch = pytest.importorskip("torch")
    grid = torus(32)
    u_np = MU.sample(grid, 3, 6, dtype=np.float64)
    u_t = MU.sample(grid, 3, 6, dtype=np.float64, backend_name="torch")
    assert isinstance(u_t, torch.Tensor)
    np.testing.assert_allclose(u_t.numpy(), u_np, rtol=0, atol=1e-13 * np.abs(u_np).max())


def _draw_in_child(_: int) -> float:
    return float(MU.sample(torus(64), 40, 1, dtype=np.float64).sum())


def test_threads_survive_a_fork():
    expected = _draw_in_child(0)  # starts the thread pool in this process
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.map_async(_draw_in_child, [0]).get(timeout=120) == [expected]


# -- the cached multipliers of the spectral operators ------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cached_derivative_and_laplacian_match_their_multipliers(dtype):
    """The operators reuse multipliers cached per grid and precision; each call
    must still equal the plain multiplication, and leave the cache untouched."""
    grid = TorusGrid((16, 15), (1.0, 2.0))
    u = MU.sample(grid, 3, 1, dtype=dtype)
    tol = 1e-4 if dtype == np.float32 else 1e-11
    for _ in range(2):
        for axis, order in [(0, 1), (1, 1), (1, 2), (0, 3)]:
            expected = spectral.multiply(u, grid, spectral.derivative_multiplier(grid, axis,
                                                                                 order))
            got = spectral.derivative(u, grid, axis=axis, order=order)
            assert got.dtype == dtype
            np.testing.assert_allclose(got, expected, rtol=0, atol=tol * np.abs(expected).max())
        expected = spectral.multiply(u, grid, -grid.k_squared)
        got = spectral.laplacian(u, grid)
        np.testing.assert_allclose(got, expected, rtol=0, atol=tol * np.abs(expected).max())
    # a Laplacian is the sum of the second derivatives
    second = sum(spectral.derivative(u, grid, axis=i, order=2) for i in range(2))
    np.testing.assert_allclose(spectral.laplacian(u, grid), second, rtol=0,
                               atol=tol * np.abs(second).max())


def test_sampling_from_a_pool_thread_does_not_wait_on_the_pool():
    grid = torus(64)
    expected = MU.sample(grid, 40, 1, dtype=np.float64)
    pool = _nested._executor(1)  # the pool sampling itself uses, one thread busy below
    got = pool.submit(MU.sample, grid, 40, 1, dtype=np.float64).result(timeout=120)
    np.testing.assert_array_equal(got, expected)
