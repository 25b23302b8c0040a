"""Tests of the conditional samplers of sciffd.inverse against exact Gaussian posteriors.

The prior is Gaussian, ``N(0, Q)``, and the model is its exact score
(:class:`GaussianScore`), so every question has an exact answer:

- the moment-matched denoiser must equal ``E[u_0 | u_t, y]`` of the joint
  Gaussian of ``(u_0, u_t, y)``, computed here in information form in a
  basis of the prior's range (independently of the Tweedie covariance and
  of conjugate gradients);
- the moment-matched ensemble must be a sample of the exact posterior
  ``N(mu, P)``. In the eigenbasis ``P = V diag(lambda) V^T`` the whitened
  members ``w_j = diag(lambda)^(-1/2) V^T (u_j - mu)`` are independent
  standard normals, so over the ``k`` leading directions
  ``M |mean(w)|^2 ~ chi2(k)`` and ``sum_j |w_j|^2 ~ chi2(M k)``; pointwise,
  ``(mean - mu_i) / sqrt(P_ii / M) ~ N(0, 1)`` and
  ``(M - 1) var_i / P_ii ~ chi2(M - 1)``. Bounds are the quantiles at a
  false-alarm rate of 1e-4 (divided over the points for the pointwise
  ones: a union bound, valid whatever their correlation). The sampler's
  time discretisation must stay below this sampling error, which the
  number of steps is chosen for.
- calibration over many truths drawn from the prior: the rank of the
  truth among the members is uniform (chi-square test of the histogram),
  and the mean squared error of the ensemble mean is ``(1 + 1/M)`` times
  the ensemble variance (a t-test over truths).

DPS and replacement are approximations: the tests check what is known of
them (the data misfit drops from the prior's, replacement imposes exactly
the noised data) and record their errors.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from references import dense_covariance
from scipy import stats
from test_inverse_exact import band_modes, cosine_matrix

from sciffd.grids import torus
from sciffd.inverse import (
    DPS,
    Blur,
    MaskObservation,
    MomentMatching,
    ObservationNoise,
    Observations,
    PointObservation,
    condition,
    exact_posterior,
    summarize,
)
from sciffd.models import GaussianScore
from sciffd.noise import Matern
from sciffd.sampling import EulerMaruyama, Heun

# data rougher than the noise is in the high modes, unit-size pointwise variance
DATA = Matern(alpha=2.5, tau=4.0, sigma=4.0**2.5)
NOISE = Matern(alpha=2.0, tau=2.0, sigma=2.0**2)
STD = 0.1
ALPHA = 1e-4


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    # small batched FFTs on a shared 2-core machine run fastest on one thread
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model() -> GaussianScore:
    return GaussianScore(DATA, NOISE)


def grid_nodes(grid) -> np.ndarray:
    return np.stack([m.reshape(-1) for m in grid.mesh()], axis=1)


def point_data(grid, fraction, seed, truth=None, std=STD):
    """Point observations at ``fraction`` of the nodes (chosen by ``seed``) of a prior
    draw (member ``truth``, default ``seed``), with noise of ``std``."""
    rng = np.random.default_rng(seed)
    n = max(1, round(fraction * grid.size))
    op = PointObservation(grid_nodes(grid)[rng.choice(grid.size, n, replace=False)],
                          "spectral")
    truth = seed if truth is None else truth
    field = DATA.sample(grid, [truth], seed=1, dtype=np.float64, backend_name="numpy")
    eta = std * np.random.default_rng([seed, truth]).standard_normal(n)
    return Observations(op, op.apply(field, grid)[0] + eta, std), field


# -- the guided denoisers against the exact conditional mean -----------------------
def conditional_mean(grid, h, r, values, u_t, a, s, mean=None):
    """``E[u_0 | u_t, y]`` for ``u_0 ~ N(m, Q)``, ``u_t = a u_0 + s xi``, ``y = H u_0 + eta``."""
    q = dense_covariance(DATA.spectrum, grid.shape, grid.lengths)
    c = dense_covariance(NOISE.spectrum, grid.shape, grid.lengths)
    lam, vec = np.linalg.eigh(q)
    keep = lam > 1e-12 * lam.max()
    e, lam = vec[:, keep], lam[keep]
    m = np.zeros(grid.size) if mean is None else mean
    c_e = e.T @ c @ e
    he = h @ e
    r_inv = np.linalg.inv(r)
    precision = np.diag(1 / lam) + (a * a / s**2) * np.linalg.inv(c_e) + he.T @ r_inv @ he
    rhs = (a / s**2) * np.linalg.solve(c_e, e.T @ (u_t - a * m)) + he.T @ r_inv @ (values
                                                                                 - h @ m)
    return m + e @ np.linalg.solve(precision, rhs)


def denoiser_cases(rng):
    """(grid, operator, explicit H, noise) for the exactness tests."""
    g = torus((6, 8), lengths=(1.0, 1.5))
    pts = rng.uniform(0, 1, (4, 2)) * np.asarray(g.lengths)
    region = rng.random(g.shape) < 0.25
    k2 = ((2 * np.pi * band_modes(g) / np.asarray(g.lengths)) ** 2).sum(1)
    cov = np.array([[0.02, 0.005, 0.0], [0.005, 0.01, 0.0], [0.0, 0.0, 0.03]])
    return [
        (g, PointObservation(pts[:3], "spectral"), cosine_matrix(pts[:3], g, band_modes(g)),
         ObservationNoise(covariance=cov)),
        (g, PointObservation(pts, "spectral"), cosine_matrix(pts, g, band_modes(g)),
         ObservationNoise(std=[0.1, 0.2, 0.05, 0.1])),
        (g, MaskObservation(region, g), np.eye(g.size)[region.reshape(-1)],
         ObservationNoise(std=0.05)),
        (g, Blur(0.1), cosine_matrix(grid_nodes(g), g, band_modes(g), np.exp(-0.005 * k2)),
         ObservationNoise(std=0.3)),
    ]


@pytest.mark.parametrize("t", [0.02, 0.3, 0.8])
def test_moment_matching_denoiser_is_the_exact_conditional_mean(t, model, rng):
    a, s = float(model.process.a(t)), float(model.process.s(t))
    guidance = MomentMatching(cg_iterations=200, cg_tol=1e-13)
    for grid, op, h, noise in denoiser_cases(rng):
        values = rng.standard_normal(h.shape[0])
        obs = Observations(op, values, noise)
        u = torch.from_numpy(rng.standard_normal((2, 1) + grid.shape))
        got = guidance.denoise(model, obs, u, t, grid).numpy().reshape(2, -1)
        r = noise.matrix(h.shape[0])
        for b in range(2):
            ref = conditional_mean(grid, h, r, values, u[b].numpy().reshape(-1), a, s)
            np.testing.assert_allclose(got[b], ref, atol=1e-8 * (1 + np.abs(ref).max()),
                                       err_msg=f"{op!r} at t={t}")


def test_moment_matching_with_a_prior_mean(rng):
    grid = torus((6, 8), lengths=(1.0, 1.5))
    y, x = grid.mesh()
    mean = 0.5 + np.sin(2 * np.pi * x / 1.5)
    prior = GaussianScore(DATA, NOISE, mean=lambda g: mean[None])
    pts = rng.uniform(0, 1, (3, 2)) * np.asarray(grid.lengths)
    obs = Observations(PointObservation(pts, "spectral"), rng.standard_normal(3), 0.1)
    t = 0.4
    a, s = float(prior.process.a(t)), float(prior.process.s(t))
    u = torch.from_numpy(rng.standard_normal((1, 1) + grid.shape))
    got = MomentMatching(cg_iterations=50, cg_tol=1e-13).denoise(prior, obs, u, t, grid)
    ref = conditional_mean(grid, cosine_matrix(pts, grid, band_modes(grid)), 0.01 * np.eye(3),
                           obs.values, u.numpy().reshape(-1), a, s, mean.reshape(-1))
    np.testing.assert_allclose(got.numpy().reshape(-1), ref, atol=1e-8)


def test_dps_default_weight_is_exact_for_one_observation(model, rng):
    # the line-search weight solves the 1x1 moment-matched system exactly
    grid = torus((6, 8), lengths=(1.0, 1.5))
    pts = np.array([[0.4, 0.9]])
    obs = Observations(PointObservation(pts, "spectral"), [0.8], 0.05)
    h = cosine_matrix(pts, grid, band_modes(grid))
    for t in [0.05, 0.5]:
        a, s = float(model.process.a(t)), float(model.process.s(t))
        u = torch.from_numpy(rng.standard_normal((2, 1) + grid.shape))
        got = DPS().denoise(model, obs, u, t, grid).numpy().reshape(2, -1)
        for b in range(2):
            ref = conditional_mean(grid, h, np.array([[0.0025]]), obs.values,
                                   u[b].numpy().reshape(-1), a, s)
            np.testing.assert_allclose(got[b], ref, atol=1e-10)


# -- ensembles against the exact posterior ---------------------------------------------
def whitened_statistics(ensemble, post, k_floor=1e-3):
    """The chi-square statistics of the module notes over the leading directions."""
    m = ensemble.shape[0]
    lam, vec = np.linalg.eigh(post.covariance)
    keep = lam >= k_floor * lam.max()
    w = (ensemble.reshape(m, -1) - post.mean.reshape(-1)) @ vec[:, keep] / np.sqrt(lam[keep])
    return m * (w.mean(0) ** 2).sum(), (w**2).sum(), int(keep.sum())


def check_against_exact(ensemble, post, record):
    """Assert the ensemble is a sample of ``post`` within the sampling error."""
    m = ensemble.shape[0]
    t_mean, t_all, k = whitened_statistics(ensemble, post)
    record("chi2_mean_per_dof", t_mean / k)
    record("chi2_cov_per_dof", t_all / (m * k))
    assert stats.chi2.ppf(ALPHA / 2, k) < t_mean < stats.chi2.ppf(1 - ALPHA / 2, k)
    assert stats.chi2.ppf(ALPHA / 2, m * k) < t_all < stats.chi2.ppf(1 - ALPHA / 2, m * k)

    # pointwise, with a union bound over the n points
    n = post.mean.size
    z = (ensemble.mean(0) - post.mean) / np.sqrt(post.variance / m)
    ratio = ensemble.var(0, ddof=1) / post.variance
    record("mean_error_rms_over_sd", float(np.sqrt(((ensemble.mean(0) - post.mean) ** 2
                                                     / post.variance).mean())))
    record("variance_ratio_mean", float(ratio.mean()))
    assert np.abs(z).max() < stats.norm.ppf(1 - ALPHA / (2 * n))
    lo = stats.chi2.ppf(ALPHA / (2 * n), m - 1) / (m - 1)
    hi = stats.chi2.ppf(1 - ALPHA / (2 * n), m - 1) / (m - 1)
    assert lo < ratio.min() and ratio.max() < hi


FAST_CASES = [(16, 0.03, 128), (32, 0.01, 64)]
SLOW_CASES = [(n, f, 256) for n in (16, 32) for f in (0.01, 0.03, 0.10)]


@pytest.mark.parametrize("n, fraction, members", FAST_CASES)
def test_moment_matching_samples_the_exact_posterior(n, fraction, members, model,
                                                     record_property):
    grid = torus(n)
    obs, _ = point_data(grid, fraction, seed=n)
    post = exact_posterior(DATA, None, obs, grid)
    u = condition(model, obs, grid, members, seed=5, method="mmps", sampler=Heun(steps=16),
                  progress=False, dtype=np.float64)
    check_against_exact(u, post, record_property)


@pytest.mark.slow
@pytest.mark.parametrize("sampler", [Heun(steps=32), EulerMaruyama(steps=200)],
                         ids=["heun32", "em200"])
@pytest.mark.parametrize("n, fraction, members", SLOW_CASES)
def test_moment_matching_samples_the_exact_posterior_full(n, fraction, members, sampler,
                                                          model, record_property):
    grid = torus(n)
    obs, _ = point_data(grid, fraction, seed=n + int(100 * fraction))
    post = exact_posterior(DATA, None, obs, grid)
    u = condition(model, obs, grid, members, seed=5, method="mmps", sampler=sampler,
                  progress=False, dtype=np.float64)
    check_against_exact(u, post, record_property)


def prior_misfit(obs, grid, members=64):
    prior = DATA.sample(grid, members, seed=11, dtype=np.float64, backend_name="numpy")
    return obs.misfit(prior, grid)


def check_misfit_drops(model, grid, obs, method, members, sampler, record_property):
    post = exact_posterior(DATA, None, obs, grid)
    u = condition(model, obs, grid, members, seed=5, method=method, sampler=sampler,
                  progress=False, dtype=np.float64)
    summary = summarize(u, obs, grid)
    before = prior_misfit(obs, grid)
    record_property("misfit_prior", float(before.mean()))
    record_property("misfit", float(summary.misfit.mean()))
    record_property("mean_error_rms_over_sd", float(np.sqrt(
        ((summary.mean - post.mean) ** 2 / post.variance).mean())))
    record_property("variance_ratio_mean", float((summary.spread**2 / post.variance).mean()))
    assert np.isfinite(u).all()
    assert summary.misfit.mean() < before.mean()


@pytest.mark.parametrize("method", ["dps", "replacement"])
def test_approximate_methods_reduce_the_misfit(method, model, record_property):
    grid = torus(16)
    obs, _ = point_data(grid, 0.03, seed=16)
    check_misfit_drops(model, grid, obs, method, 64, Heun(steps=16), record_property)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["dps", "replacement"])
@pytest.mark.parametrize("n, fraction, members", SLOW_CASES)
def test_approximate_methods_reduce_the_misfit_full(n, fraction, members, method, model,
                                                    record_property):
    grid = torus(n)
    obs, _ = point_data(grid, fraction, seed=n + int(100 * fraction))
    check_misfit_drops(model, grid, obs, method, members, Heun(steps=32), record_property)


def test_replacement_imposes_the_noised_data(model):
    grid = torus(16)
    region = MaskObservation(lambda y, x: (x < 0.5) & (y < 0.5))
    truth = DATA.sample(grid, 1, seed=3, dtype=np.float64, backend_name="numpy")
    obs = Observations(region, region.apply(truth, grid)[0], 0.01)
    sampler = EulerMaruyama(steps=10, denoise_final=False)
    u = condition(model, obs, grid, [2, 5], seed=4, method="replacement", sampler=sampler,
                  progress=False, dtype=np.float64)
    xi = NOISE.sample(grid, [2, 5], 4, dtype=np.float64, backend_name="numpy")
    t = model.process.t_min
    mask = region.mask(grid)
    expected = float(model.process.a(t)) * obs.values + float(model.process.s(t)) \
        * xi[:, 0][:, mask]
    np.testing.assert_allclose(u[:, 0][:, mask], expected, atol=1e-12)


@pytest.mark.parametrize("method", [MomentMatching(cg_tol=1e-10), "dps", "replacement"],
                         ids=["mmps", "dps", "replacement"])
def test_members_do_not_depend_on_the_batch(method, model):
    # conjugate gradients stop member by member: a member is the same in any
    # batch to within the solver tolerance (here tight), exactly otherwise
    grid = torus(16)
    obs, _ = point_data(grid, 0.03, seed=2)
    run = {"sampler": EulerMaruyama(steps=6), "progress": False, "dtype": np.float64}
    together = condition(model, obs, grid, 4, seed=9, method=method, **run)
    alone = condition(model, obs, grid, [1, 3], seed=9, method=method, batch_size=1, **run)
    np.testing.assert_allclose(alone, together[[1, 3]], atol=1e-8)


# -- calibration over many truths ------------------------------------------------------
def calibration(model, grid, truths, members, steps):
    """Ranks of the truth at one random node per truth, squared errors and spreads.

    The points are the same for every truth, so the posterior covariance
    is too (it does not depend on the values).
    """
    rng = np.random.default_rng(0)
    ranks, skill, spread = [], [], []
    for i in range(truths):
        obs, truth = point_data(grid, 0.03, seed=16, truth=1000 + i)
        u = condition(model, obs, grid, members, seed=i, method="mmps",
                      sampler=Heun(steps=steps), progress=False, dtype=np.float64)
        j = rng.integers(grid.size)
        ranks.append(int((u.reshape(members, -1)[:, j] < truth.reshape(-1)[j]).sum()))
        skill.append(((u.mean(0) - truth[0]) ** 2).mean())
        spread.append(u.var(0, ddof=1).mean())
    post = exact_posterior(DATA, None, obs, grid)
    return np.array(ranks), np.array(skill), np.array(spread), float(post.variance.mean())


def check_calibration(ranks, skill, spread, members, post_variance, record):
    """Rank-histogram flatness and spread-skill, with the bounds of the module notes."""
    # M + 1 equally likely ranks; at least 5 expected per bin for the chi-square law
    counts = np.bincount(ranks, minlength=members + 1)
    expected = len(ranks) / (members + 1)
    assert expected >= 5
    chi2 = ((counts - expected) ** 2 / expected).sum()
    record("rank_counts", counts.tolist())
    assert chi2 < stats.chi2.ppf(1 - ALPHA, members)
    # E[skill] = (1 + 1/M) E[spread] and E[spread] = mean_i P_ii: the per-truth
    # values are independent, so their means are normal to within the CLT
    d = skill - (1 + 1 / members) * spread
    n = len(d)
    z = stats.norm.ppf(1 - ALPHA / 2)
    record("skill_over_spread", float(skill.mean() / ((1 + 1 / members) * spread.mean())))
    record("spread_over_exact", float(spread.mean() / post_variance))
    assert abs(d.mean()) < z * d.std(ddof=1) / np.sqrt(n)
    assert abs(spread.mean() - post_variance) < z * spread.std(ddof=1) / np.sqrt(n)


def test_moment_matching_is_calibrated(model, record_property):
    ranks, skill, spread, post_variance = calibration(model, torus(16), truths=60,
                                                      members=5, steps=12)
    check_calibration(ranks, skill, spread, 5, post_variance, record_property)


@pytest.mark.slow
def test_moment_matching_is_calibrated_many_truths(model, record_property):
    ranks, skill, spread, post_variance = calibration(model, torus(16), truths=400,
                                                      members=9, steps=32)
    check_calibration(ranks, skill, spread, 9, post_variance, record_property)


# -- bad input ------------------------------------------------------------------------
def test_condition_refusals(model):
    grid = torus(16)
    obs, _ = point_data(grid, 0.03, seed=2)
    with pytest.raises(ValueError, match="method='kalman' is not supported; expected one of "
                                         r"\('mmps', 'dps', 'replacement'\)"):
        condition(model, obs, grid, 2, method="kalman")
    with pytest.raises(TypeError, match=r"method='dps' takes the options \['weight'\], not "
                                        r"\['cg_iterations'\]"):
        condition(model, obs, grid, 2, method="dps", cg_iterations=3)
    off = Observations(PointObservation([[0.51, 0.5]], "spectral"), [1.0], 0.1)
    with pytest.raises(NotImplementedError, match="replacement imposes values on grid nodes"):
        condition(model, off, grid, 2, method="replacement", progress=False)
    with pytest.raises(ValueError, match="observes 8 values of a 1-channel field"):
        condition(model, Observations(obs.operator, np.zeros(9), 0.1), grid, 2)
    with pytest.raises(ValueError, match="cg_iterations=0 must be a positive integer"):
        MomentMatching(cg_iterations=0)


def test_numpy_models_give_numpy_float32_by_default(model):
    grid = torus(16)
    obs, _ = point_data(grid, 0.03, seed=2)
    u = condition(model, obs, grid, 2, sampler=Heun(steps=4), progress=False)
    assert isinstance(u, np.ndarray) and u.dtype == np.float32 and u.shape == (2, 1, 16, 16)


def _batched(matrices):
    def apply(p):
        return np.einsum("bij,bj->bi", matrices, p)
    return apply


def test_conjugate_gradient_floor_leaves_positive_definite_systems_alone():
    """With ``A = I + A'``, ``A'`` PSD, the floor never binds: CG solves to tolerance."""
    from sciffd.inverse.conditional import conjugate_gradient

    rng = np.random.default_rng(3)
    g = rng.normal(size=(4, 30, 30))
    a = np.eye(30) + np.einsum("bij,bkj->bik", g, g) * 10.0 ** rng.uniform(-2, 2, (4, 1, 1))
    b = rng.normal(size=(4, 30))
    exact = np.linalg.solve(a, b[..., None])[..., 0]
    plain = conjugate_gradient(_batched(a), b, 200, 1e-10)
    floored = conjugate_gradient(_batched(a), b, 200, 1e-10, floor=1.0)
    np.testing.assert_allclose(plain, exact, rtol=1e-6)
    np.testing.assert_allclose(floored, exact, rtol=1e-6)


def test_conjugate_gradient_floor_stops_an_indefinite_system():
    """``I + A'`` with ``A'`` indefinite: the floored solve stops at the first direction of
    curvature below 1 and never increases the quadratic model ``x.A x / 2 - b.x`` above
    its value 0 at ``x = 0``; a positive definite system of the same batch is solved."""
    from sciffd.inverse.conditional import conjugate_gradient

    rng = np.random.default_rng(5)
    q, _ = np.linalg.qr(rng.normal(size=(20, 20)))
    eig = np.concatenate([np.geomspace(1e3, 1.0, 17), [-40.0, -200.0, -900.0]])
    indefinite = np.eye(20) + (q * eig) @ q.T
    g = rng.normal(size=(20, 20))
    spd = np.eye(20) + g @ g.T
    mats = np.stack([indefinite, spd])
    b = rng.normal(size=(2, 20))
    x = conjugate_gradient(_batched(mats), b, 50, 1e-8, floor=1.0)
    model = 0.5 * np.einsum("i,ij,j", x[0], indefinite, x[0]) - b[0] @ x[0]
    assert model <= 0.0
    np.testing.assert_allclose(x[1], np.linalg.solve(spd, b[1]), rtol=1e-6)
    # it stopped: the floored iterate is not the solution that plain CG reaches here
    plain = conjugate_gradient(_batched(mats), b, 50, 1e-8)
    np.testing.assert_allclose(plain[0], np.linalg.solve(indefinite, b[0]), rtol=1e-5)
    assert not np.allclose(x[0], plain[0], rtol=1e-2)


def test_conjugate_gradient_floor_never_returns_a_larger_residual():
    """A non-symmetric ``A`` (as a learned Tweedie covariance is): the floored solve
    returns an iterate whose residual ``||b - A x||`` is at most ``||b||``, the least met;
    plain CG on the same systems ends with a larger residual than it started with."""
    from sciffd.inverse.conditional import conjugate_gradient

    rng = np.random.default_rng(2)
    n = 40
    skew = rng.normal(size=(8, n, n))
    g = rng.normal(size=(8, n, n)) / np.sqrt(n)
    mats = np.eye(n) + np.einsum("bij,bkj->bik", g, g) + 3.0 * (skew - skew.transpose(0, 2, 1))
    b = rng.normal(size=(8, n))
    res = lambda x: np.linalg.norm(b - np.einsum("bij,bj->bi", mats, x), axis=-1)  # noqa: E731
    floored = conjugate_gradient(_batched(mats), b, 30, 1e-12, floor=1.0)
    plain = conjugate_gradient(_batched(mats), b, 30, 1e-12)
    assert np.all(res(floored) <= np.linalg.norm(b, axis=-1) * (1 + 1e-12))
    assert np.all(res(floored) <= res(plain) * (1 + 1e-12))
    assert np.any(res(plain) > np.linalg.norm(b, axis=-1))
