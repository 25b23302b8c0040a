"""Tests of sciffd.sampling against the exact Gaussian model.

For Gaussian data ``N(0, Q)`` and noise ``N(0, C)``, both diagonal in the
Fourier basis, the exact preconditioned score is ``S = -c_k / m_k(t) u`` per
mode, ``m_k(t) = a(t)^2 q_k + s(t)^2 c_k``. Every sampler is then a linear
map per Fourier mode with real coefficients, and the variance it produces
is known exactly by a recursion of the discrete scheme, computed here
independently of the sampler code (float64, one mode per array entry):

- Euler-Maruyama: ``v_{n+1} = g_n^2 v_n + h_n beta_n c_k`` with
  ``g_n = 1 + h_n beta_n (1/2 - c_k / m_k(t_n))``;
- Heun: ``v_N = A^2 v_0`` with ``A`` the product of the per-step
  amplification factors ``1 + dt/2 (l_n + l_{n+1} (1 + dt l_n))``,
  ``l(t) = -1/2 beta(t) (1 - c_k / m_k(t))``;

with ``v_0 = s(T)^2 c_k`` and the final denoising ``(a q_k / m_k)^2`` at
``t_min``. Sample variances per wavenumber shell are compared with this
exact discrete variance by chi-square bounds; the exact discrete variance is
compared with ``q_k`` and with the exact continuous-time answer.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.integrate import quad_vec

from sciffd.grids import torus
from sciffd.models import GaussianScore
from sciffd.noise import Matern
from sciffd.sampling import EulerMaruyama, Heun, sample, time_steps
from sciffd.sde import CosineSchedule, VPProcess
from sciffd.spectral import forward, resample

# q_0 = c_0 = 1: data and noise of the same size in the mean mode; the noise
# is rougher (alpha 2 against 3), as in function-space diffusion
DATA = Matern(alpha=3.0, tau=5.0, sigma=5.0**3)
NOISE = Matern(alpha=2.0, tau=1.0)


@pytest.fixture(scope="module")
def model() -> GaussianScore:
    return GaussianScore(DATA, NOISE)


# -- the independent reference ---------------------------------------------
def reference_times(process: VPProcess, steps: int, spacing: str) -> np.ndarray:
    """EDM times written out from the formula (rho = 7), or uniform times."""
    if spacing == "uniform":
        return np.linspace(process.t_max, process.t_min, steps + 1)
    lo = float(process.sigma(process.t_min)) ** (1 / 7)
    hi = float(process.sigma(process.t_max)) ** (1 / 7)
    sigma = np.array([(hi + n / steps * (lo - hi)) ** 7 for n in range(steps + 1)])
    t = process.time_of_sigma(sigma)
    t[0], t[-1] = process.t_max, process.t_min
    return t


def marginal(process: VPProcess, t: float, q: np.ndarray, c: np.ndarray) -> np.ndarray:
    return float(process.a(t)) ** 2 * q + float(process.s(t)) ** 2 * c


def em_factors(sampler, process, q, c):
    """Per-step factors ``g_n`` and noise scales ``sqrt(h_n beta_n)`` of Euler-Maruyama."""
    t = reference_times(process, sampler.steps, sampler.spacing)
    for n in range(sampler.steps):
        h, beta = t[n] - t[n + 1], float(process.beta(t[n]))
        yield 1 + h * beta * (0.5 - c / marginal(process, t[n], q, c)), np.sqrt(h * beta)


def heun_amplification(sampler, process, q, c) -> np.ndarray:
    """The product over the steps of Heun's per-mode amplification factors."""
    return heun_amplification_over(reference_times(process, sampler.steps, sampler.spacing),
                                   process, q, c)


def heun_amplification_over(t, process, q, c) -> np.ndarray:
    """Heun's per-mode amplification over the times ``t``."""
    def rate(time):
        return -0.5 * float(process.beta(time)) * (1 - c / marginal(process, time, q, c))

    amplification = np.ones_like(q)
    for n in range(len(t) - 1):
        dt = t[n + 1] - t[n]
        l1, l2 = rate(t[n]), rate(t[n + 1])
        amplification *= 1 + 0.5 * dt * (l1 + l2 * (1 + dt * l1))
    return amplification


def denoise_gain(process, q, c) -> np.ndarray:
    """The final denoiser ``a q / m`` at ``t_min``."""
    return float(process.a(process.t_min)) * q / marginal(process, process.t_min, q, c)


def exact_variance(sampler, process, q, c, *, denoise=True) -> np.ndarray:
    """Per-mode variance of the output of ``sampler`` for eigenvalues ``q, c``."""
    v = float(process.s(process.t_max)) ** 2 * c
    if isinstance(sampler, EulerMaruyama):
        for g, scale in em_factors(sampler, process, q, c):
            v = g * g * v + scale**2 * c
    else:
        v = heun_amplification(sampler, process, q, c) ** 2 * v
    if denoise:
        v = denoise_gain(process, q, c) ** 2 * v
    return v


def continuous_variance(kind: str, process, q, c) -> np.ndarray:
    """Exact variance at ``t_min`` of the continuous SDE / ODE started at ``s(T)^2 c``.

    Both keep ``m_k(t)`` when started at ``m_k(T)``. The start misses
    ``delta = a(T)^2 q``: the ODE is linear and keeps the ratio,
    ``v = m(t_min) (1 - delta / m(T))``; for the SDE the error obeys
    ``de/d(-t) = beta (1 - 2 c/m) e``, so ``v = m(t_min) - delta Phi`` with
    ``Phi = exp(int_{t_min}^T beta (1 - 2 c/m) dt)``.
    """
    T, t_min = process.t_max, process.t_min
    m_min, m_T = marginal(process, t_min, q, c), marginal(process, T, q, c)
    delta = float(process.a(T)) ** 2 * q
    if kind == "ode":
        return m_min * (1 - delta / m_T)

    def integrand(t):
        return float(process.beta(t)) * (1 - 2 * c / marginal(process, t, q, c))

    log_phi = quad_vec(integrand, t_min, T, epsabs=0.0, epsrel=1e-12)[0]
    return m_min - delta * np.exp(log_phi)


def eigen(grid, flat=True) -> tuple[np.ndarray, np.ndarray]:
    """``q_k`` and ``c_k``: flat on the represented modes (Nyquist left out),
    or on the half spectrum with 1 at the Nyquist modes (which stay zero)."""
    keep = grid.nyquist_mask
    q, c = DATA.eigenvalues(grid), NOISE.eigenvalues(grid)
    if flat:
        return q[keep], c[keep]
    return np.where(keep, q, 1.0), np.where(keep, c, 1.0)


# -- chi-square tests of the sample variance --------------------------------
def shell_statistics(u_hat, v, grid):
    """Chi-square statistics and degrees of freedom per wavenumber shell.

    Each canonical mode (one of each pair +-m, Nyquist excluded) of each
    member gives ``2 |u_hat|^2 / v ~ chi2(2)`` (real and imaginary parts
    independent, each of variance v/2); the mean mode gives
    ``u_hat^2 / v ~ chi2(1)``. Shell ``r`` holds the modes with
    ``round(|m|) = r``; the mean mode is a shell of its own. The last
    entry pools every mode.
    """
    my = grid.mode_indices(0)[:, None]
    mx = grid.mode_indices(1)[None, :]
    canonical = grid.nyquist_mask & ((mx > 0) | ((mx == 0) & (my > 0)))
    shell = np.rint(np.hypot(my, mx)).astype(int)
    power = np.abs(u_hat[:, 0]) ** 2 / v
    members = u_hat.shape[0]
    chi2 = [float(power[:, 0, 0].sum())]
    dof = [members]
    for r in range(1, shell[canonical].max() + 1):
        sel = canonical & (shell == r)
        if sel.any():
            chi2.append(float(2 * power[:, sel].sum()))
            dof.append(2 * members * int(sel.sum()))
    chi2.append(sum(chi2))
    dof.append(sum(dof))
    return np.array(chi2), np.array(dof)


@pytest.mark.parametrize("sampler", [EulerMaruyama(steps=100), Heun(steps=32)],
                         ids=["euler-maruyama", "heun"])
def test_shell_variance_is_the_exact_discrete_variance(model, sampler):
    # one model object at both resolutions; members 0..M-1 of one seed
    for resolution, members in ((32, 64), (128, 32)):
        grid = torus(resolution)
        u = sample(model, grid, members=members, seed=11, sampler=sampler,
                   dtype=np.float64, progress=False)
        assert u.shape == (members, 1, resolution, resolution)
        v = exact_variance(sampler, model.process, *eigen(grid, flat=False))
        chi2, dof = shell_statistics(forward(u, grid), v, grid)
        # two-sided 99.9% bound for the family of shells (and the pooled
        # statistic): Bonferroni, alpha = 1e-3 / number of statistics
        alpha = 1e-3 / len(dof)
        lo, hi = stats.chi2.ppf(alpha / 2, dof), stats.chi2.ppf(1 - alpha / 2, dof)
        bad = np.nonzero((chi2 < lo) | (chi2 > hi))[0]
        assert bad.size == 0, (resolution, bad, chi2[bad] / dof[bad])


def test_samples_are_the_exact_linear_maps_of_their_noise(model):
    # pathwise: with the same draws of N(0, C) the scheme, written per mode,
    # gives each member's output to rounding
    grid = torus(16)
    process, ids, seed = model.process, [0, 5], 3
    q, c = eigen(grid, flat=False)
    s_T = float(process.s(process.t_max))

    def draw(stream):
        return NOISE.sample_spectrum(grid, ids, seed, stream=stream, dtype=np.float64)

    em = EulerMaruyama(steps=12)
    x = s_T * draw(0)
    for n, (g, scale) in enumerate(em_factors(em, process, q, c)):
        x = g * x + scale * draw(n + 1)
    u = sample(model, grid, ids, seed, em, dtype=np.float64, progress=False)
    expected = denoise_gain(process, q, c) * x
    np.testing.assert_allclose(forward(u, grid), expected, rtol=0, atol=1e-13)

    heun = Heun(steps=6, denoise_final=False)
    u = sample(model, grid, ids, seed, heun, dtype=np.float64, progress=False)
    expected = heun_amplification(heun, process, q, c) * s_T * draw(0)
    np.testing.assert_allclose(forward(u, grid), expected, rtol=0, atol=1e-13)


# -- the discrete variance against the truth --------------------------------
@pytest.mark.parametrize("resolution", [32, 128])
def test_default_samplers_target_the_data_measure(model, resolution):
    q, c = eigen(torus(resolution))
    process = model.process
    # Two biases no number of steps removes, per mode. Stopping at t_min and
    # denoising gives q / (1 + r), r = s^2 c / (a^2 q) at t_min: at most
    # 1.1e-4 * max(c/q) = 1.1e-4 * 20 = 2.2e-3 here, at the highest 128^2
    # mode. The start field misses a(T)^2 q: for the ODE, whose linear flow
    # keeps the ratio, a relative a(T)^2 q / m(T) <= 4.3e-5 * max(q/c) =
    # 4.3e-5 * 96 = 4.1e-3, near |k|^2 = 47; the SDE damps it. They peak at
    # different modes, so their sum stays below 5e-3.
    gain2 = denoise_gain(process, q, c) ** 2
    for sampler, kind, claim in ((EulerMaruyama(), "sde", 0.015), (Heun(), "ode", 0.01)):
        target = gain2 * continuous_variance(kind, process, q, c)
        assert np.abs(target / q - 1).max() < 5e-3
        # the discretisation bias at the default steps (the claim: 1.5% for
        # 500 Euler-Maruyama steps, 1% for 64 Heun steps), and with the two
        # above, the bias against q_k: below 2%
        v = exact_variance(sampler, process, q, c)
        bias = np.abs(v / target - 1).max()
        assert bias < claim
        assert np.abs(v / q - 1).max() < 0.02
        # it shrinks with the steps: 4x the steps, at least 1/4 (order 1) of it
        finer = exact_variance(type(sampler)(steps=4 * sampler.steps), process, q, c)
        assert np.abs(finer / target - 1).max() < 0.3 * bias


@pytest.mark.parametrize(
    "kind, steps, order",
    [("ode", (32, 64, 128, 256), 2.0), ("sde", (250, 500, 1000, 2000), 1.0)],
    ids=["heun", "euler-maruyama"],
)
@pytest.mark.parametrize("spacing", ["edm", "uniform"])
def test_convergence_order_of_the_variance_bias(kind, steps, order, spacing):
    process = VPProcess()
    q, c = eigen(torus(32))
    exact = continuous_variance(kind, process, q, c)
    cls = Heun if kind == "ode" else EulerMaruyama
    bias = [np.abs(exact_variance(cls(steps=n, spacing=spacing), process, q, c,
                                  denoise=False) / exact - 1).max() for n in steps]
    slope = -np.polyfit(np.log(steps), np.log(bias), 1)[0]
    # the next term of the error expansion is smaller by a factor ~ 1/N; over a
    # factor 8 in N from these N it moves the fitted slope by less than 0.1
    assert abs(slope - order) < 0.1, (bias, slope)


# -- members, batches and resolutions ---------------------------------------
_ALONE: dict = {}


def _alone(model, sampler, member):
    key = (sampler, member)
    if key not in _ALONE:
        _ALONE[key] = sample(model, torus(16), [member], 7, sampler, dtype=np.float64,
                             progress=False)[0]
    return _ALONE[key]


@settings(max_examples=12, deadline=None)
@given(
    ids=st.lists(st.integers(0, 9), min_size=1, max_size=6),
    batch_size=st.integers(1, 6),
    stochastic=st.booleans(),
)
@pytest.mark.property
def test_members_do_not_depend_on_batches(model, ids, batch_size, stochastic):
    sampler = EulerMaruyama(steps=6) if stochastic else Heun(steps=4)
    u = sample(model, torus(16), ids, 7, sampler, batch_size=batch_size, dtype=np.float64,
               progress=False)
    expected = np.stack([_alone(model, sampler, m) for m in ids])
    # only the FFT of a batch against the FFT of one field can differ: rounding
    np.testing.assert_allclose(u, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("sampler", [EulerMaruyama(steps=20), Heun(steps=10)],
                         ids=["euler-maruyama", "heun"])
def test_member_is_nested_across_resolutions(model, sampler):
    ids = [0, 3, 8]
    fine = sample(model, torus(64), ids, 2, sampler, dtype=np.float64, progress=False)
    coarse = sample(model, torus(32), ids, 2, sampler, dtype=np.float64, progress=False)
    restricted = resample(fine, torus(64), 32)
    scale = np.abs(coarse).max()
    np.testing.assert_allclose(restricted, coarse, rtol=0, atol=1e-12 * scale)
    # and the fine member is not merely the coarse one: it has its own high modes
    assert np.abs(fine - resample(coarse, torus(32), 64)).max() > 1e-3 * scale


def test_channels_are_independent_fields():
    model = GaussianScore(DATA, NOISE, channels=2)
    u = sample(model, torus(16), 3, 0, Heun(steps=4), dtype=np.float64, progress=False)
    assert u.shape == (3, 2, 16, 16)
    assert not np.allclose(u[:, 0], u[:, 1])


def test_other_schedule_runs(model):
    cosine = GaussianScore(DATA, NOISE, VPProcess(CosineSchedule()))
    u = sample(cosine, torus(16), 2, 0, EulerMaruyama(steps=10), progress=False)
    assert u.dtype == np.float32 and np.all(np.isfinite(u))


# -- backends ----------------------------------------------------------------
@pytest.mark.parametrize("sampler", [EulerMaruyama(steps=10), Heun(steps=5)],
                         ids=["euler-maruyama", "heun"])
def test_torch_gives_the_numpy_samples(model, sampler):
    torch = pytest.importorskip("torch")
    on_torch = GaussianScore(DATA, NOISE)
    on_torch.backend = "torch"
    grid = torus(32)
    for dtype, rtol in ((np.float64, 1e-10), (np.float32, 1e-4)):
        u_np = sample(model, grid, 3, 5, sampler, dtype=dtype, progress=False)
        u_t = sample(on_torch, grid, 3, 5, sampler, dtype=dtype, progress=False)
        assert isinstance(u_t, torch.Tensor) and not u_t.requires_grad
        assert u_t.dtype == (torch.float64 if dtype == np.float64 else torch.float32)
        assert u_np.dtype == dtype
        # float64: FFT libraries differ by rounding; float32: ~30 steps of
        # single-precision rounding, 1e-6 each, relative to the field scale
        scale = np.abs(u_np).max()
        np.testing.assert_allclose(u_t.numpy(), u_np, rtol=0, atol=rtol * scale)


# -- time steps ----------------------------------------------------------------
def test_time_steps_follow_the_spacing_formulas():
    process = VPProcess()
    t = time_steps(process, 10)
    assert t.shape == (11,) and t[0] == process.t_max and t[-1] == process.t_min
    assert np.all(np.diff(t) < 0)
    root = process.sigma(t) ** (1 / 7)
    np.testing.assert_allclose(np.diff(root), np.full(10, (root[-1] - root[0]) / 10),
                               rtol=1e-9)
    np.testing.assert_allclose(time_steps(process, 10, "uniform"),
                               process.t_max - np.arange(11) / 10 * (1 - process.t_min),
                               rtol=1e-14)
    assert time_steps(process, 1).tolist() == [process.t_max, process.t_min]


# -- progress and bad input ----------------------------------------------------
def test_progress_bar_can_be_silenced(model, capsys):
    sample(model, torus(8), 2, 0, Heun(steps=3), progress=True)
    assert "Heun sampling" in capsys.readouterr().err
    sample(model, torus(8), 2, 0, Heun(steps=3), progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: EulerMaruyama(steps=0), ValueError, r"steps=0 must be at least 1"),
        (lambda: Heun(steps=2.5), TypeError, r"steps=2.5 must be an integer"),
        (lambda: Heun(spacing="log"), ValueError, r"spacing='log'.*'edm', 'uniform'"),
        (lambda: Heun(rho=-1.0), ValueError, r"rho=-1.0 must be finite and positive"),
        (lambda: EulerMaruyama(denoise_final="yes"), TypeError, r"denoise_final='yes'"),
        (lambda: time_steps("vp", 4), TypeError, r"process must be a sciffd.sde.VPProcess"),
    ],
)
def test_bad_sampler_configuration(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"members": 0}, ValueError, r"members=0 must be at least 1"),
        ({"members": [1, -2]}, ValueError, r"member ids must be non-negative"),
        ({"seed": -1}, ValueError, r"seed=-1 must be a non-negative integer"),
        ({"grid": (16, 16)}, TypeError, r"grid must be a sciffd.grids.TorusGrid, got tuple"),
        ({"sampler": "heun"}, TypeError, r"sampler must be one of .*got str"),
        ({"batch_size": 0}, ValueError, r"batch_size=0 must be a positive integer"),
        ({"dtype": np.int32}, ValueError, r"dtype=int32 is not supported"),
    ],
)
def test_bad_sample_arguments(model, kwargs, error, match):
    args = {"grid": torus(8), "members": 2, "seed": 0, "sampler": Heun(steps=2)} | kwargs
    with pytest.raises(error, match=match):
        sample(model, progress=False, **args)


def test_bad_model():
    with pytest.raises(TypeError, match=r"model must be a sciffd.models.ScoreModel"):
        sample(object(), torus(8), progress=False)
    broken = GaussianScore(DATA, NOISE)
    broken.channels = 0
    with pytest.raises(ValueError, match=r"model.channels=0 must be a positive integer"):
        sample(broken, torus(8), progress=False)


def test_euler_maruyama_step_needs_noise(model):
    u = np.zeros((1, 1, 8, 8))
    with pytest.raises(TypeError, match=r"EulerMaruyama.step needs noise"):
        EulerMaruyama().step(model, torus(8), u, 0.5, 0.4)
