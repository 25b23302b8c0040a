"""Tests of sciffd.noise: sample statistics, operators, densities, nesting.

Statistical checks use a fixed seed (overridable, see conftest) and bounds
computed from the distribution the statistic has when the code is right;
every test states its false-alarm probability. References are explicit
sums over modes and dense covariance matrices of grid values
(``references.dense_covariance``), never the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from references import dense_covariance, full_modes, nyquist_free
from scipy import stats

from sciffd import spectral
from sciffd.backend import to_numpy
from sciffd.grids import TorusGrid
from sciffd.noise import (
    Matern,
    SpectralGaussian,
    WhiteNoise,
    measure_from_config,
    measure_to_config,
)

# total false-alarm probability allowed to one statistical test
ALPHA = 1e-4


def _spectrum(u, grid):
    return np.asarray(spectral.forward(u, grid))


def _canonical(grid):
    """Half-spectrum entries standing for one independent pair ``+-m`` each.

    Every entry with ``0 < m_x < N_x/2`` is canonical; on the ``m_x = 0``
    plane, the entry whose last nonzero index (from the x end) is positive.
    Nyquist entries and ``m = 0`` are not canonical.
    """
    m = np.stack(np.meshgrid(*[grid.mode_indices(i) for i in range(grid.ndim)],
                             indexing="ij"), axis=-1)
    canonical = np.zeros(grid.spectral_shape, dtype=bool)
    decided = np.zeros(grid.spectral_shape, dtype=bool)
    for axis in range(grid.ndim - 1, -1, -1):
        canonical |= ~decided & (m[..., axis] > 0)
        decided |= m[..., axis] != 0
    return canonical & grid.nyquist_mask, m


def _fourier_coordinates(u, grid):
    """Real coordinates ``(u_hat_0, Re u_hat_m, Im u_hat_m for canonical m)``.

    Returns ``(coords, index)``; ``coords`` has shape ``(..., 1 + 2n)``.
    """
    u_hat = _spectrum(u, grid)
    canonical, _ = _canonical(grid)
    flat = u_hat.reshape(u_hat.shape[: u_hat.ndim - grid.ndim] + (-1,))
    pick = canonical.reshape(-1)
    return np.concatenate(
        [flat[..., :1].real, flat[..., pick].real, flat[..., pick].imag], axis=-1
    ), pick


# -- per-mode and pointwise variance -------------------------------------------
@pytest.mark.parametrize(
    ("mu", "shape", "lengths"),
    [
        (Matern(alpha=2.0, tau=3.0), (16, 12), (1.0, 2.0)),
        (Matern(alpha=1.5, tau=1.0, sigma=2.0, ndim=1), (33,), (2 * np.pi,)),
        (Matern(alpha=2.5, tau=5.0, ndim=3), (8, 7, 6), (1.0, 1.0, 1.5)),
    ],
)
def test_per_mode_variance_chi_square_on_shells(mu, shape, lengths, seed):
    grid = TorusGrid(shape, lengths)
    members = 200
    u = mu.sample(grid, members, seed, dtype=np.float64)[:, 0]
    u_hat = _spectrum(u, grid)
    lam = mu.eigenvalues(grid)
    canonical, m = _canonical(grid)

    # Nyquist coefficients are exactly zero (up to the transform's rounding)
    assert np.abs(u_hat[:, ~grid.nyquist_mask]).max(initial=0.0) < 1e-12

    # For a canonical mode, Re and Im are independent N(0, lambda/2): so
    # 2 |u_hat|^2 / lambda ~ chi2(2); the mean mode u_hat_0^2 / lambda_0 ~ chi2(1).
    # Pooled over a shell r = max|m_i| and over members, the sum is chi2(dof)
    # exactly; each shell is tested two-sided at ALPHA / (number of tests).
    shell = np.abs(m).max(axis=-1)
    tests = []
    mean_mode = u_hat.reshape(members, -1)[:, 0]
    assert np.abs(mean_mode.imag).max() < 1e-15
    tests.append((np.sum(mean_mode.real**2) / lam.flat[0], members))
    for r in range(1, shell[canonical].max() + 1):
        sel = canonical & (shell == r)
        if sel.any():
            t = np.sum(2 * np.abs(u_hat[:, sel]) ** 2 / lam[sel])
            tests.append((t, 2 * members * sel.sum()))
    level = ALPHA / (2 * len(tests))
    for t, dof in tests:
        lo, hi = stats.chi2.ppf(level, dof), stats.chi2.isf(level, dof)
        assert lo < t < hi, (t, dof, lo, hi)


def test_pointwise_variance_formula():
    mu = Matern(alpha=1.7, tau=2.0, sigma=0.5)
    for shape, lengths in [((8, 9), (1.0, 3.0)), ((7, 6), (2.0, 0.5))]:
        grid = TorusGrid(shape, lengths)
        # sum_m lambda_m over every mode but the Nyquist ones, by explicit loop
        m = full_modes(shape)
        m = m[nyquist_free(m, shape)]
        k2 = ((2 * np.pi * m / np.asarray(lengths)) ** 2).sum(axis=1)
        expected = float(np.sum(0.25 * (4.0 + k2) ** -1.7))
        assert mu.pointwise_variance(grid) == pytest.approx(expected, rel=1e-13)
        # and the dense covariance has it on its diagonal
        cov = dense_covariance(mu.spectrum, shape, lengths)
        np.testing.assert_allclose(np.diag(cov), expected, rtol=1e-12)


def test_pointwise_variance_of_samples(seed):
    mu = Matern(alpha=2.0, tau=4.0, sigma=3.0)
    grid = TorusGrid((32, 24), (1.0, 0.75))
    members = 400
    u = mu.sample(grid, members, seed, dtype=np.float64)[:, 0]
    v = mu.pointwise_variance(grid)

    # E u(x)^2 = v at every x, so y_b = mean_x u_b(x)^2 has mean v, i.i.d. over
    # members; its mean is within z * std(y) / sqrt(M) of v, by the normal
    # approximation with the sample's own standard deviation. Two statistics
    # (the grid mean and the point x = 0), each at ALPHA / 2.
    z = stats.norm.isf(ALPHA / 4)
    for y in (np.mean(u**2, axis=(1, 2)), u[:, 0, 0] ** 2):
        assert abs(y.mean() - v) < z * y.std(ddof=1) / math.sqrt(members)


@pytest.mark.parametrize(
    ("shape", "lengths"), [((6, 5), (1.0, 1.5)), ((9,), (2.0,)), ((4, 3, 2), (1.0, 1.0, 2.0))]
)
def test_sample_covariance_against_dense_covariance(shape, lengths, seed):
    ndim = len(shape)
    mu = Matern(alpha=ndim / 2 + 1.0, tau=2.0, sigma=1.5, ndim=ndim)
    grid = TorusGrid(shape, lengths)
    members = 3000
    u = mu.sample(grid, members, seed, dtype=np.float64).reshape(members, -1)
    cov = dense_covariance(mu.spectrum, shape, lengths)

    # whiten with the dense covariance: on its range, y = diag(e)^(-1/2) V^T u
    # is N(0, I_r); off its range (the Nyquist modes) u has no component
    e, vecs = np.linalg.eigh(cov)
    positive = e > 1e-10 * e.max()
    assert positive.sum() == np.prod([n - (n % 2 == 0) for n in shape])
    null = u @ vecs[:, ~positive]
    assert np.abs(null).max(initial=0.0) < 1e-12 * math.sqrt(e.max())
    y = (u @ vecs[:, positive]) / np.sqrt(e[positive])
    r = y.shape[1]
    w = y.T @ y  # M times the whitened sample covariance

    # tests, Bonferroni over all of them at ALPHA:
    # - total: trace(w) ~ chi2(M r)  (sharp against a wrong overall scale)
    # - diagonal: w_ii ~ chi2(M)
    # - off-diagonal: w_ij / sqrt(M) ~ N(0, 1) (CLT, M = 3000 products)
    n_tests = 1 + r + r * (r - 1) // 2
    level = ALPHA / n_tests
    total = np.trace(w)
    assert stats.chi2.ppf(level / 2, members * r) < total < stats.chi2.isf(level / 2,
                                                                            members * r)
    d = np.diag(w)
    assert np.all(d > stats.chi2.ppf(level / 2, members))
    assert np.all(d < stats.chi2.isf(level / 2, members))
    off = w[np.triu_indices(r, 1)] / math.sqrt(members)
    assert np.abs(off).max() < stats.norm.isf(level / 2)


# -- operators --------------------------------------------------------------------
def _project(u, grid, lam):
    """``u`` with the modes of ``lambda = 0`` removed (the range of C)."""
    u_hat = np.fft.rfftn(u, axes=tuple(range(-grid.ndim, 0)), norm="forward")
    return np.fft.irfftn(u_hat * (lam > 0), s=grid.shape, axes=tuple(range(-grid.ndim, 0)),
                         norm="forward")


@pytest.mark.parametrize("tau", [1.0, 0.0])
def test_apply_sqrt_inverse_compose(tau, rng, xp):
    mu = Matern(alpha=2.5, tau=tau, sigma=2.0)
    grid = TorusGrid((7, 8), (1.0, 2.0))
    u = rng.standard_normal((2,) + grid.shape)
    ux = xp.asarray(u)
    lam = mu.eigenvalues(grid)
    positive = lam[lam > 0]
    cond = positive.max() / positive.min()
    # rounding: an FFT round trip costs ~ 10 eps; a multiplier and its
    # inverse in sequence amplify it by at most the condition number
    eps = np.finfo(np.float64).eps
    tol = 100 * eps * cond * np.abs(u).max()

    cu = to_numpy(mu.apply(ux, grid))
    np.testing.assert_allclose(to_numpy(mu.sqrt(mu.sqrt(ux, grid), grid)), cu,
                               rtol=0, atol=100 * eps * lam.max() * np.abs(u).max())
    pu = _project(u, grid, lam)
    np.testing.assert_allclose(to_numpy(mu.inverse(mu.apply(ux, grid), grid)), pu,
                               rtol=0, atol=tol)
    np.testing.assert_allclose(to_numpy(mu.apply(mu.inverse(ux, grid), grid)), pu,
                               rtol=0, atol=tol)
    np.testing.assert_allclose(to_numpy(mu.inverse_sqrt(mu.sqrt(ux, grid), grid)), pu,
                               rtol=0, atol=tol)
    if tau == 0.0:
        # lambda_0 = 0: C^(-1) C removes the mean
        assert np.abs(pu.mean(axis=(1, 2))).max() < 1e-14

    # C is the integral operator with the dense kernel, against the grid-mean
    # measure: (C u)(x_i) = (1/P) sum_j Cov(x_i, x_j) u_j
    cov = dense_covariance(mu.spectrum, grid.shape, grid.lengths)
    dense = (u.reshape(2, -1) @ cov.T / grid.size).reshape(u.shape)
    np.testing.assert_allclose(cu, dense, rtol=0, atol=1e-13 * lam.max() * np.abs(u).max()
                               * grid.size)


def test_cameron_martin_norm_against_dense(rng, xp):
    mu = Matern(alpha=2.0, tau=3.0, sigma=0.7)
    grid = TorusGrid((6, 7), (1.0, 1.3))
    u = rng.standard_normal((3,) + grid.shape)
    cm = to_numpy(mu.cameron_martin_norm(xp.asarray(u), grid))
    assert cm.shape == (3,)
    # ||u||_C^2 = <u, C^(-1) u> = mean(u C^(-1) u), and with C = Sigma / P on
    # grid values, = u^T pinv(Sigma) u (the Nyquist row's null space is dropped)
    cov = dense_covariance(mu.spectrum, grid.shape, grid.lengths)
    flat = u.reshape(3, -1)
    expected = np.einsum("bi,ij,bj->b", flat, np.linalg.pinv(cov, rcond=1e-12, hermitian=True),
                         flat)
    np.testing.assert_allclose(cm**2, expected, rtol=1e-9)
    inv = to_numpy(mu.inverse(xp.asarray(u), grid))
    np.testing.assert_allclose(cm**2, np.mean(u * inv, axis=(1, 2)), rtol=1e-12)


@pytest.mark.parametrize(
    ("mu", "shape", "lengths"),
    [
        (Matern(alpha=2.0, tau=3.0), (6, 5), (1.0, 1.5)),
        (Matern(alpha=1.5, tau=1.0, sigma=0.3, ndim=1), (10,), (2.0,)),
        (Matern(alpha=2.0, tau=0.0, sigma=2.0, ndim=1), (9,), (1.0,)),
        (Matern(alpha=2.0, tau=2.0, ndim=3), (4, 3, 4), (1.0, 2.0, 1.0)),
    ],
)
def test_log_density_against_scipy_on_fourier_coordinates(mu, shape, lengths, seed, xp):
    grid = TorusGrid(shape, lengths)
    u = mu.sample(grid, 4, seed, dtype=np.float64)[:, 0]
    u = u + 0.1 * np.random.default_rng(seed).standard_normal(u.shape)  # off-sample too
    coords, pick = _fourier_coordinates(u, grid)
    lam = mu.eigenvalues(grid).reshape(-1)
    var = np.concatenate([lam[:1], lam[pick] / 2, lam[pick] / 2])
    keep = var > 0  # tau = 0 leaves the mean out
    expected = stats.multivariate_normal(np.zeros(keep.sum()), np.diag(var[keep])).logpdf(
        coords[:, keep]
    )
    got = to_numpy(mu.log_density(xp.asarray(u), grid))
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    cm = to_numpy(mu.cameron_martin_norm(xp.asarray(u), grid))
    np.testing.assert_allclose(cm**2, np.sum(coords[:, keep] ** 2 / var[keep], axis=1),
                               rtol=1e-10)


@pytest.mark.parametrize(("shape", "lengths"), [((5, 7), (1.0, 2.0)), ((6, 4), (1.0, 1.0))])
def test_log_density_differences_against_dense_grid_gaussian(shape, lengths, seed):
    # grid values are a linear image of the Fourier coordinates, so the two
    # log-densities differ by a constant (the Jacobian), and their
    # differences between two fields agree; the dense Gaussian is singular on
    # an even grid (Nyquist), handled by scipy's pseudo-determinant
    mu = Matern(alpha=2.0, tau=2.0, sigma=1.3)
    grid = TorusGrid(shape, lengths)
    u = mu.sample(grid, 6, seed, dtype=np.float64)[:, 0]
    cov = dense_covariance(mu.spectrum, shape, lengths)
    dense = stats.multivariate_normal(np.zeros(grid.size), cov, allow_singular=True)
    lp_dense = dense.logpdf(u.reshape(6, -1))
    lp = mu.log_density(u, grid)
    scale = np.abs(lp).max()
    np.testing.assert_allclose(lp - lp[0], lp_dense - lp_dense[0], rtol=0, atol=1e-9 * scale)


# -- nested noise and batch independence -------------------------------------
grid_pairs = st.integers(1, 3).flatmap(
    lambda d: st.tuples(
        st.lists(st.integers(2, 12 if d < 3 else 7), min_size=d, max_size=d),
        st.lists(st.integers(2, 12 if d < 3 else 7), min_size=d, max_size=d),
    )
)


@pytest.mark.property
@given(grid_pairs, st.integers(0, 2**63), st.integers(0, 10**6), st.integers(0, 3))
def test_nested_noise_same_low_modes_at_every_resolution(shapes, seed, member, stream):
    a, b = (TorusGrid(tuple(s)) for s in shapes)
    ndim = a.ndim
    mu = Matern(alpha=ndim / 2 + 1.0, tau=2.0, ndim=ndim)
    sa = mu.sample_spectrum(a, [member], seed, stream=stream, dtype=np.float64)
    sb = mu.sample_spectrum(b, [member], seed, stream=stream, dtype=np.float64)
    # the modes both grids represent (|m_i| < N_i/2 on both) are the same draws
    common = TorusGrid(tuple(min(x, y) for x, y in zip(a.shape, b.shape, strict=True)))
    np.testing.assert_allclose(
        spectral.resample_spectrum(sa, a, common), spectral.resample_spectrum(sb, b, common),
        rtol=1e-13, atol=0,
    )


@pytest.mark.property
@given(
    st.lists(st.integers(0, 10**5), min_size=1, max_size=12, unique=True),
    st.integers(0, 12),
    st.integers(0, 2**32),
)
def test_members_are_independent_of_the_batch(ids, split, seed):
    grid = TorusGrid((6, 7))
    mu = Matern(alpha=2.0, tau=3.0)
    batch = mu.sample(grid, ids, seed, channels=2, dtype=np.float64)
    assert batch.shape == (len(ids), 2) + grid.shape
    split = min(split, len(ids))
    parts = [mu.sample(grid, part, seed, channels=2, dtype=np.float64)
             for part in (ids[:split], ids[split:]) if part]
    np.testing.assert_array_equal(np.concatenate(parts), batch)
    alone = mu.sample(grid, [ids[-1]], seed, channels=2, dtype=np.float64)
    np.testing.assert_array_equal(alone[0], batch[-1])
    # a channel does not depend on how many channels are drawn
    one = mu.sample(grid, ids, seed, channels=1, dtype=np.float64)
    np.testing.assert_array_equal(one[:, 0], batch[:, 0])


def test_counts_seeds_streams_and_precisions(seed):
    grid = TorusGrid((8, 9))
    mu = Matern(alpha=2.0, tau=3.0)
    a = mu.sample(grid, 3, seed, dtype=np.float64)
    np.testing.assert_array_equal(a, mu.sample(grid, [0, 1, 2], seed, dtype=np.float64))
    assert a.dtype == np.float64
    assert not np.allclose(a[0], a[1])
    assert not np.allclose(a, mu.sample(grid, 3, seed + 1, dtype=np.float64))
    assert not np.allclose(a, mu.sample(grid, 3, seed, stream=1, dtype=np.float64))
    single = mu.sample(grid, 3, seed)
    assert single.dtype == np.float32
    # the same normals, rounded: float32 relative rounding ~ 6e-8, times log P
    np.testing.assert_allclose(single, a, rtol=0, atol=1e-6 * np.abs(a).max())
    spec = mu.sample_spectrum(grid, 3, seed, dtype=np.float64)
    assert spec.shape == (3, 1) + grid.spectral_shape
    np.testing.assert_allclose(spectral.inverse(spec, grid), a, rtol=0, atol=1e-15)


def test_torch_samples_equal_numpy_samples(seed):
    torch = pytest.importorskip("torch")
    grid = TorusGrid((8, 6))
    mu = Matern(alpha=2.0, tau=3.0)
    a = mu.sample(grid, 2, seed, dtype=np.float64)
    t = mu.sample(grid, 2, seed, dtype=np.float64, backend_name="torch")
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float64
    np.testing.assert_allclose(t.numpy(), a, rtol=0, atol=1e-14)


# -- the measures ---------------------------------------------------------------
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_matern_refuses_non_trace_class(ndim):
    with pytest.raises(ValueError, match=rf"alpha={ndim / 2}\) on a {ndim}-dimensional torus "
                                         "is not trace class"):
        Matern(alpha=ndim / 2, ndim=ndim)
    with pytest.raises(ValueError, match="not trace class.*alpha > d/2"):
        Matern(alpha=ndim / 4, ndim=ndim)
    Matern(alpha=ndim / 2 + 0.01, ndim=ndim)


def test_measure_dimension_must_match_the_grid():
    # Matern(alpha=1.2) is trace class in 2D but not in 3D
    mu = Matern(alpha=1.2)
    with pytest.raises(ValueError, match="2-dimensional.*3-dimensional grid"):
        mu.eigenvalues(TorusGrid((4, 4, 4)))
    with pytest.raises(ValueError, match="2-dimensional.*1-dimensional grid"):
        mu.sample(TorusGrid((8,)), 1)


def test_spectral_gaussian_tail_check_and_values():
    for d in (1, 2, 3):
        with pytest.raises(ValueError, match=f"not trace class on a {d}-dimensional torus"):
            SpectralGaussian(lambda k2, d=d: (1.0 + k2) ** (-d / 2), ndim=d)
        SpectralGaussian(lambda k2, d=d: (1.0 + k2) ** (-(d + 0.2) / 2), ndim=d)
    with pytest.raises(ValueError, match="finite non-negative eigenvalues"):
        SpectralGaussian(lambda k2: -((1.0 + k2) ** -3))
    with pytest.raises(ValueError, match="same shape as its argument"):
        SpectralGaussian(lambda k2: 1.0)
    with pytest.raises(TypeError, match="must be callable"):
        SpectralGaussian(3.0)

    # a pure power law is infinite at k = 0: refused when evaluated on a grid
    power = SpectralGaussian(lambda k2: np.asarray(k2, dtype=float) ** -2.0)
    with np.errstate(divide="ignore"):
        with pytest.raises(ValueError, match=r"eigenvalue inf at \|k\|\^2 = 0.0 on grid "
                                             r"\(4, 4\); eigenvalues must be finite"):
            power.eigenvalues(TorusGrid((4, 4)))

    # a Gaussian-shaped spectrum (any decay passes) matches its function
    mu = SpectralGaussian(lambda k2: np.exp(-k2 / 50.0))
    grid = TorusGrid((6, 7), (1.0, 2.0))
    lam = mu.eigenvalues(grid)
    expected = np.exp(-grid.k_squared / 50.0) * grid.nyquist_mask
    np.testing.assert_allclose(lam, expected, rtol=1e-15)
    cov = dense_covariance(mu.spectrum, grid.shape, grid.lengths)
    assert mu.pointwise_variance(grid) == pytest.approx(cov[0, 0], rel=1e-12)


def test_white_noise_variance_grows_with_resolution(seed):
    mu = WhiteNoise(sigma=2.0)
    assert mu.trace_class is False
    variances = []
    for n in (5, 8, 16, 33):
        grid = TorusGrid((n, n))
        v = mu.pointwise_variance(grid)
        assert v == pytest.approx(4.0 * (n - (n % 2 == 0)) ** 2)
        variances.append(v)
    assert variances == sorted(variances) and variances[-1] > 40 * variances[0]

    # on an odd grid the dense covariance of white noise is sigma^2 P I: the
    # grid values are i.i.d. N(0, sigma^2 P), so sum u^2 / (sigma^2 P) ~ chi2(M P)
    grid = TorusGrid((9, 7))
    u = mu.sample(grid, 50, seed, dtype=np.float64)
    np.testing.assert_allclose(dense_covariance(mu.spectrum, grid.shape, grid.lengths),
                               4.0 * grid.size * np.eye(grid.size), atol=1e-10)
    t = np.sum(u**2) / (4.0 * grid.size)
    dof = u.size
    assert stats.chi2.ppf(ALPHA / 2, dof) < t < stats.chi2.isf(ALPHA / 2, dof)


def _lattice_tail_bound(alpha, ndim, K):
    """Upper bound on ``sum_{|m|_inf > K} (2 pi |m|)^(-2 alpha)`` (unit lengths).

    Each lattice point ``m`` outside the cube owns the unit cube around it,
    which lies in ``|x| > R = K - sqrt(d)/2``; there ``(2 pi |m|)^(-2 alpha)``
    is at most ``(1 + sqrt(d) / (2K))^(2 alpha)`` times the value at ``x``.
    So the sum is bounded by that factor times ``int_{|x|>R} (2 pi |x|)^(-2 alpha) dx``
    ``= S_d (2 pi)^(-2 alpha) R^(d - 2 alpha) / (2 alpha - d)``.
    This also bounds the Matern eigenvalues, which are below the pure power.
    """
    surface = {1: 2.0, 2: 2 * np.pi, 3: 4 * np.pi}[ndim]
    radius = K - math.sqrt(ndim) / 2
    factor = (1 + math.sqrt(ndim) / (2 * K)) ** (2 * alpha)
    return factor * surface * (2 * np.pi) ** (-2 * alpha) * radius ** (ndim - 2 * alpha) \
        / (2 * alpha - ndim)


@pytest.mark.parametrize("length", [1.0, 2 * np.pi])
@pytest.mark.parametrize("tau", [0.5, 3.0])
def test_unit_variance_closed_form_in_one_dimension(length, tau):
    # alpha = 1, d = 1: sum_m 1 / (tau^2 + (2 pi m / L)^2) = L coth(tau L / 2) / (2 tau)
    mu = Matern.unit_variance(alpha=1.0, tau=tau, ndim=1, lengths=length)
    exact = mu.sigma**2 * length / (2 * tau * math.tanh(tau * length / 2))
    # unit_variance sums |m| <= K = 512 and adds T = 2 (L / 2 pi)^2 / K for the
    # rest; the true rest lies between 2 int_{K+1}^inf dm / (tau^2 + c^2 m^2)
    # (c = 2 pi / L) and T, so the continuum variance is 1 to within that gap
    K = 512
    c = 2 * np.pi / length
    tail = 2 / c**2 / K
    lower = 2 / (c * tau) * (np.pi / 2 - math.atan(c * (K + 1) / tau))
    gap = mu.sigma**2 * (tail - lower)
    # the gap is far below the tail itself, so a missing or wrong tail fails
    assert 0 < gap < 0.01 * mu.sigma**2 * tail
    assert 1 - gap - 1e-13 <= exact <= 1 + 1e-13


@pytest.mark.parametrize(("alpha", "tau", "ndim", "n"), [(2.0, 3.0, 2, 255), (2.0, 2.0, 3, 63),
                                                        (1.5, 1.0, 2, 201)])
def test_unit_variance_on_a_fine_grid(alpha, tau, ndim, n):
    mu = Matern.unit_variance(alpha=alpha, tau=tau, ndim=ndim)
    v = mu.pointwise_variance(TorusGrid((n,) * ndim))
    # continuum variance V: |V - 1| <= sigma^2 B(K_used) (unit_variance sums
    # |m_i| <= 512 in 2D, 64 in 3D, plus an integral tail below B); the grid
    # misses the modes with |m_i| > (n - 1)/2, at most sigma^2 B((n - 1)/2)
    used = 512 if ndim < 3 else 64
    b_used = mu.sigma**2 * _lattice_tail_bound(alpha, ndim, used)
    b_grid = mu.sigma**2 * _lattice_tail_bound(alpha, ndim, (n - 1) // 2)
    assert 1 - b_used - b_grid <= v <= 1 + b_used


def test_measure_configuration_round_trip():
    for mu in (Matern(alpha=2.5, tau=7.0, sigma=7.0**1.5), Matern(1.0, 0.0, ndim=1),
               WhiteNoise(0.3)):
        cfg = measure_to_config(mu)
        assert measure_from_config(cfg) == mu
    with pytest.raises(TypeError, match="SpectralGaussian has no configuration form"):
        measure_to_config(SpectralGaussian(lambda k2: np.exp(-k2)))
    with pytest.raises(ValueError, match="unknown noise kind 'pink'"):
        measure_from_config({"kind": "pink"})
    with pytest.raises(ValueError, match="not a noise configuration"):
        measure_from_config({"alpha": 2.0})


# -- bad input -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"members": 0}, ValueError, "members=0 must be at least 1"),
        ({"members": True}, TypeError, "members=True must be a count"),
        ({"members": []}, ValueError, "non-empty sequence of integer ids"),
        ({"members": [0, 1.5]}, ValueError, "non-empty sequence of integer ids"),
        ({"members": [3, -1]}, ValueError, "member ids must be non-negative"),
        ({"members": 2.0}, TypeError, "members=2.0 must be a count"),
        ({"seed": -1}, ValueError, "seed=-1 must be a non-negative integer"),
        ({"seed": 1.0}, ValueError, "seed=1.0 must be a non-negative integer"),
        ({"dtype": int}, ValueError, "dtype=int64 is not supported; expected float32 or"),
        ({"dtype": np.complex64}, ValueError, "is not supported"),
        ({"channels": 0}, ValueError, "channels=0 must be a positive integer"),
        ({"stream": -2}, ValueError, "stream=-2 must be a non-negative integer"),
        ({"backend_name": "jax"}, ValueError, "backend='jax' is not supported"),
    ],
)
def test_bad_sample_arguments_are_refused(kwargs, error, match):
    mu = Matern(alpha=2.0)
    with pytest.raises(error, match=match):
        mu.sample(TorusGrid((8, 8)), **kwargs)


def test_bad_measure_arguments_are_refused():
    with pytest.raises(TypeError, match="grid must be a sciffd.grids.TorusGrid"):
        Matern(alpha=2.0).sample((8, 8))
    with pytest.raises(TypeError, match="grid must be a sciffd.grids.TorusGrid"):
        Matern(alpha=2.0).eigenvalues((8, 8))
    with pytest.raises(ValueError, match="its last 2 axes"):
        Matern(alpha=2.0).apply(np.zeros((8, 7)), TorusGrid((8, 8)))
    with pytest.raises(ValueError, match="tau=-1.0 must be non-negative"):
        Matern(alpha=2.0, tau=-1.0)
    with pytest.raises(ValueError, match="sigma=0.0 must be positive"):
        Matern(alpha=2.0, sigma=0.0)
    with pytest.raises(TypeError, match="alpha='2' must be a real number"):
        Matern(alpha="2")
    with pytest.raises(ValueError, match="alpha=nan must be finite"):
        Matern(alpha=float("nan"))
    with pytest.raises(ValueError, match="ndim=4 must be 1, 2 or 3"):
        Matern(alpha=3.0, ndim=4)
    with pytest.raises(ValueError, match="sigma=-1.0 must be positive"):
        WhiteNoise(sigma=-1)
