"""Checks against exact answers: Gaussian and Gaussian-mixture data with the samplers.

For Gaussian data ``N(m, Q)`` and the exact model
(:class:`~sciffd.models.GaussianScore`), each sampler of
:mod:`sciffd.sampling` is, mode by mode, an affine recursion: with the
gain ``g(t) = a q / (a^2 q + s^2 c)`` the C-preconditioned score is
``S = (a g - 1)(u - a m) / s^2``, so a Heun step of the probability-flow
ODE is ``u <- A_n u + B_n m`` and an Euler-Maruyama step of the reverse SDE
is ``u <- A_n u + B_n m + sqrt(beta_n h_n) xi_n``. From the start
``u_T = s(T) xi`` the law of every Fourier coefficient of the output is
therefore known in closed form (:func:`sampler_law`): its mean and its
variance, on the same time grid, with the final denoising. The checks
compare the sampled ensemble with that law:

- per-mode variance, pooled in bands of shells: ``sum 2 |u_hat - mu|^2 / v``
  over members and modes is ``chi2`` with ``2 M n_modes`` degrees of
  freedom (the real and imaginary parts of each interior half-spectrum
  entry are independent, each of variance ``v / 2``);
- the ensemble mean: ``sum 2 M |mean(u_hat) - mu|^2 / v`` is ``chi2``;
- the discretisation of the sampler itself: how far its exact law is from
  the data law ``q`` (no randomness: a property of the level's steps).

For a mixture ``sum_j w_j N(m_j, Q_j)``
(:class:`~sciffd.models.GaussianMixtureScore`) each sample is assigned to
the component of largest posterior weight under the data law; the counts
test the weights (Pearson chi-square), and the samples of component ``j``
are held to the closed-form law of ``j``'s own Gaussian flow, with an
allowance for the early steps in which the sampler has not yet chosen a
component.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..grids import TorusGrid, torus
from ..models import GaussianMixtureScore, GaussianScore, ScoreModel
from ..noise import Matern
from ..sampling import EulerMaruyama, Heun, sample
from ..stats import shell_index
from .checks import CheckResult, chi2_interval, chi2_upper, interval_check, upper_check

__all__ = [
    "ExactProblem",
    "exact_problem",
    "gaussian_problem",
    "mixture_problem",
    "sampler_law",
]

#: allowance on the per-mode variance of a mixture component (see mixture_checks)
MIXING_ALLOWANCE = 0.02

#: largest relative per-mode variance error of the samplers' exact law at a level's steps
DISCRETISATION_TOLERANCE = 0.05


@dataclass(frozen=True)
class ExactProblem:
    """A data law with a known answer and its exact model.

    Attributes
    ----------
    kind : {"gaussian", "mixture"}
    truth : GaussianScore or GaussianMixtureScore
        The exact model of the data law; a model under test is compared
        with the answers of this one.
    description : str
        The data law in words, for the report.
    """

    kind: str
    truth: GaussianScore | GaussianMixtureScore
    description: str


def _noise() -> Matern:
    # the default noise of sciffd's FNO models on the unit torus
    return Matern.unit_variance(2.0, 2 * math.pi * 4, 2)


def _cos_x(amplitude: float, phase: float = 0.0) -> Callable[[TorusGrid], np.ndarray]:
    def mean(grid: TorusGrid) -> np.ndarray:
        y, x = grid.mesh()
        return (amplitude * np.cos(2 * np.pi * x / grid.lengths[1] + phase))[None]

    return mean


def _gaussian_mean(grid: TorusGrid) -> np.ndarray:
    y, x = grid.mesh()
    return (0.5 * np.cos(2 * np.pi * x) + 0.3 * np.sin(2 * np.pi * (x + y)) + 0.2)[None]


def gaussian_problem() -> ExactProblem:
    """Gaussian data ``N(m, Q)`` on the unit torus with the default noise.

    ``Q = Matern.unit_variance(2, 4 pi)`` (unit pointwise variance, the
    same decay as the noise, ``|k|^-4``), ``m = 0.5 cos 2 pi x +
    0.3 sin 2 pi (x + y) + 0.2``, noise ``Matern.unit_variance(2, 8 pi)``.
    """
    data = Matern.unit_variance(2.0, 2 * math.pi * 2, 2)
    truth = GaussianScore(data, _noise(), mean=_gaussian_mean)
    return ExactProblem("gaussian", truth, (
        "u ~ N(m, Q), Q = Matern.unit_variance(alpha=2, tau=4 pi), "
        "m = 0.5 cos 2 pi x + 0.3 sin 2 pi (x + y) + 0.2; noise "
        "Matern.unit_variance(alpha=2, tau=8 pi)"))


def mixture_problem() -> ExactProblem:
    """A mixture of three equivalent Gaussians with well separated means.

    ``Q_j = Matern(2, tau_j, sigma)`` with ``tau = 2 pi (1.5, 2, 3)`` and one
    ``sigma`` (equivalent measures, so the model is discretisation
    invariant), weights ``(0.5, 0.3, 0.2)``, means ``+A cos 2 pi x``,
    ``-A cos 2 pi x`` and ``A sin 2 pi y`` with ``A`` six standard
    deviations of the mode ``|m| = 1`` of ``Q_2``: the components are
    told apart without error (Mahalanobis distance above 8).
    """
    sigma = Matern.unit_variance(2.0, 2 * math.pi * 2, 2).sigma
    taus = (2 * math.pi * 1.5, 2 * math.pi * 2, 2 * math.pi * 3)
    components = [Matern(2.0, tau, sigma) for tau in taus]
    q1 = float(components[1].spectrum(np.array([(2 * math.pi) ** 2]))[0])
    amplitude = 6 * math.sqrt(q1)

    def sin_y(grid: TorusGrid) -> np.ndarray:
        y, _ = grid.mesh()
        return (amplitude * np.sin(2 * np.pi * y / grid.lengths[0]))[None]

    truth = GaussianMixtureScore(components, _noise(), weights=[0.5, 0.3, 0.2],
                                 means=[_cos_x(amplitude), _cos_x(-amplitude), sin_y])
    return ExactProblem("mixture", truth, (
        f"0.5 N(+A cos 2 pi x, Q_1) + 0.3 N(-A cos 2 pi x, Q_2) + 0.2 N(A sin 2 pi y, Q_3), "
        f"Q_j = Matern(alpha=2, tau=2 pi (1.5, 2, 3)_j, sigma={sigma:.4g}), A = {amplitude:.4g}; "
        "noise Matern.unit_variance(alpha=2, tau=8 pi)"))


def exact_problem(kind: str) -> ExactProblem:
    """The problem of a kind: ``"gaussian"`` or ``"mixture"``."""
    problems = {"gaussian": gaussian_problem, "mixture": mixture_problem}
    if kind not in problems:
        raise ValueError(f"kind={kind!r} is not an exact problem; expected one of "
                         f"{sorted(problems)}")
    return problems[kind]()


# -- the closed-form law of a sampler ------------------------------------------
def _mean_hat(model: GaussianScore, grid: TorusGrid) -> np.ndarray:
    shape = (model.channels,) + grid.spectral_shape
    if model.mean is None:
        return np.zeros(shape, dtype=np.complex128)
    m = np.asarray(model.mean(grid), dtype=np.float64)
    return np.fft.rfftn(m, axes=tuple(range(-grid.ndim, 0)), norm="forward")


def sampler_law(model: GaussianScore, sampler: Heun | EulerMaruyama,
                grid: TorusGrid) -> tuple[np.ndarray, np.ndarray]:
    """The exact law of every Fourier coefficient of ``sample(model, grid, sampler=sampler)``.

    Parameters
    ----------
    model : GaussianScore
        An exact Gaussian model ``N(m, Q)`` with noise ``C``.
    sampler : Heun or EulerMaruyama
    grid : TorusGrid

    Returns
    -------
    mean : numpy array, shape ``(C, *K)``, complex128
        ``E u_hat[k]`` of the output (half spectrum).
    variance : numpy array, shape ``K``, float64
        ``E |u_hat[k] - mean|^2`` of the output; zero on Nyquist modes.

    Notes
    -----
    With ``f(t) = -1/2 beta (1 + (a g - 1) / s^2)`` and
    ``h(t) = 1/2 beta a (a g - 1) / s^2`` the ODE is ``du/dt = f u + h m``;
    Heun from ``t_n`` to ``t_{n+1}`` (``dt < 0``) gives
    ``A = 1 + dt/2 (f_n + f_{n+1} + dt f_n f_{n+1})`` and
    ``B = dt/2 (h_n + h_{n+1} + dt f_{n+1} h_n)``. Euler-Maruyama with
    ``h_n = t_n - t_{n+1}`` gives ``A = 1 + h beta (1/2 + (a g - 1)/s^2)``,
    ``B = h beta a (1 - a g) / s^2`` and adds ``beta h c`` to the variance.
    The final denoising maps ``(mu, v)`` to ``(m (1 - a g) + g mu, g^2 v)``.
    """
    if not isinstance(model, GaussianScore):
        raise TypeError(f"model must be a GaussianScore, got {type(model).__name__}")
    if not isinstance(sampler, (Heun, EulerMaruyama)):
        raise TypeError(f"sampler must be Heun or EulerMaruyama, got {type(sampler).__name__}")
    p = model.process
    c = model.noise.eigenvalues(grid)
    m = _mean_hat(model, grid)
    times = sampler.times(p)

    def coefficients(t: float) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        a, s, beta = float(p.a(t)), float(p.s(t)), float(p.beta(t))
        g = model.gain(t, grid)
        f = -0.5 * beta * (1 + (a * g - 1) / s**2)
        h = 0.5 * beta * a * (a * g - 1) / s**2
        return a, g, f, h

    v = float(p.s(times[0])) ** 2 * c
    mu = np.zeros_like(m)
    for n in range(sampler.steps):
        t, t_next = float(times[n]), float(times[n + 1])
        a, g, f1, h1 = coefficients(t)
        beta = float(p.beta(t))
        if sampler.stochastic:
            step = t - t_next
            s2 = float(p.s(t)) ** 2
            A = 1 + step * beta * (0.5 + (a * g - 1) / s2)
            B = step * beta * a * (1 - a * g) / s2
            v = A * A * v + beta * step * c
        else:
            dt = t_next - t
            _, _, f2, h2 = coefficients(t_next)
            A = 1 + 0.5 * dt * (f1 + f2 + dt * f1 * f2)
            B = 0.5 * dt * (h1 + h2 + dt * f2 * h1)
            v = A * A * v
        mu = A * mu + B * m
    if sampler.denoise_final:
        a, g, _, _ = coefficients(float(times[-1]))
        v = g * g * v
        mu = m * (1 - a * g) + g * mu
    v = np.where(grid.nyquist_mask, v, 0.0)
    return mu, v


# -- statistics of an ensemble against a per-mode law ----------------------------
def bands_of(grid: TorusGrid) -> list[tuple[int, int]]:
    """Octave bands of shells ``[1, 2), [2, 4), [4, 8), ..`` up to the grid's last shell."""
    top = int(shell_index(grid).max()) + 1
    edges = [1]
    while edges[-1] * 2 < top:
        edges.append(edges[-1] * 2)
    edges.append(top)
    return list(zip(edges[:-1], edges[1:], strict=True))


def _interior(grid: TorusGrid, variance: np.ndarray) -> np.ndarray:
    """Independent complex entries: Hermitian weight 2 and positive variance."""
    return (grid.hermitian_weight == 2.0) & (variance > 0)


def band_ratios(u: np.ndarray, grid: TorusGrid, mean_hat: np.ndarray,
                variance: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
    """``sum 2 |u_hat - mu|^2 / v / dof`` per band, and the degrees of freedom.

    Parameters
    ----------
    u : array ``(M, C, *S)``
    mean_hat : array ``(C, *K)``
    variance : array ``K``

    Returns
    -------
    ratios, dof : numpy arrays, shape ``(n_bands,)``
        Bands without a mode are left out.
    bands : list of (int, int)
    """
    u_hat = np.fft.rfftn(np.asarray(u, dtype=np.float64), axes=tuple(range(-grid.ndim, 0)),
                         norm="forward")
    ok = _interior(grid, variance)
    shells = shell_index(grid)
    z = 2 * np.abs(u_hat - mean_hat) ** 2 / np.where(ok, variance, 1.0)
    ratios, dofs, kept = [], [], []
    for lo, hi in bands_of(grid):
        sel = ok & (shells >= lo) & (shells < hi)
        n = int(sel.sum())
        if n == 0:
            continue
        dof = 2 * n * u.shape[0] * u.shape[1]
        ratios.append(float(z[..., sel].sum() / dof))
        dofs.append(dof)
        kept.append((lo, hi))
    return np.array(ratios), np.array(dofs, dtype=np.float64), kept


def mean_statistic(u: np.ndarray, grid: TorusGrid, mean_hat: np.ndarray,
                   variance: np.ndarray) -> tuple[float, int]:
    """``T = sum 2 M |mean(u_hat) - mu|^2 / v`` (plus the mean mode, 1 dof), and its dof."""
    u_hat = np.fft.rfftn(np.asarray(u, dtype=np.float64), axes=tuple(range(-grid.ndim, 0)),
                         norm="forward")
    m = u.shape[0]
    ok = _interior(grid, variance)
    d = u_hat.mean(axis=0) - mean_hat
    stat = float((2 * m * np.abs(d) ** 2 / np.where(ok, variance, 1.0))[..., ok].sum())
    dof = 2 * int(ok.sum()) * u.shape[1]
    v0 = float(variance.reshape(-1)[0])
    if v0 > 0:
        zero = (slice(None),) + (0,) * grid.ndim
        stat += float((m * np.real(d[zero]) ** 2 / v0).sum())
        dof += u.shape[1]
    return stat, dof


@dataclass(frozen=True)
class _BandTest:
    """Band ratios of one ensemble (one seed, one component) with their intervals."""

    label: str
    bands: list
    ratios: np.ndarray
    low: np.ndarray
    high: np.ndarray

    def score(self) -> np.ndarray:
        """Distance to the interval edge in units of the half width (> 1 outside)."""
        up = (self.ratios - 1) / np.maximum(self.high - 1, 1e-300)
        down = (1 - self.ratios) / np.maximum(1 - self.low, 1e-300)
        return np.where(self.ratios >= 1, up, down)


def _band_test(label: str, u: np.ndarray, grid: TorusGrid, mean_hat: np.ndarray,
               variance: np.ndarray, alpha: float, allowance: float = 0.0) -> _BandTest:
    ratios, dofs, bands = band_ratios(u, grid, mean_hat, variance)
    lows, highs = zip(*[chi2_interval(d, alpha) for d in dofs], strict=True)
    return _BandTest(label, bands, ratios, np.array(lows) * (1 - allowance),
                     np.array(highs) * (1 + allowance))


def _variance_check(name: str, title: str, group: str, tests: Sequence[_BandTest],
                    tolerance: str, reason: str) -> CheckResult:
    scores = [t.score() for t in tests]
    worst_test = int(np.argmax([s.max() for s in scores]))
    t = tests[worst_test]
    b = int(np.argmax(scores[worst_test]))
    details = {"worst": {"ensemble": t.label, "band": list(t.bands[b])},
               "ensembles": {x.label: {"bands": [list(bb) for bb in x.bands],
                                       "ratio": x.ratios, "low": x.low, "high": x.high}
                             for x in tests}}
    return interval_check(name, title, group, float(t.ratios[b]), float(t.low[b]),
                          float(t.high[b]), tolerance=tolerance, reason=reason,
                          details=details)


# -- the checks ------------------------------------------------------------------
@dataclass(frozen=True)
class ExactRun:
    """Samples and results of the exact checks of one problem (for plots and metrics)."""

    checks: list
    metrics: dict
    plots: dict


def _samplers(level: Any) -> list[tuple[str, Heun | EulerMaruyama]]:
    return [("heun", Heun(steps=level.heun_steps)),
            ("em", EulerMaruyama(steps=level.em_steps))]


def _check_model(model: Any, truth: ScoreModel) -> ScoreModel:
    if not isinstance(model, ScoreModel):
        raise TypeError(f"model must be a sciffd.models.ScoreModel, got {type(model).__name__}")
    if model.channels != truth.channels:
        raise ValueError(f"model has {model.channels} channel(s); the exact problem has "
                         f"{truth.channels}")
    return model


def exact_checks(problem: ExactProblem, level: Any, seeds: Sequence[int], *,
                 model: ScoreModel | None = None, progress: bool = False) -> ExactRun:
    """Per-mode variance, mean (and mixture weights) of ``model`` against ``problem``.

    Parameters
    ----------
    problem : ExactProblem
    level : Level
        Sizes: ``exact_resolution``, ``exact_members``, ``heun_steps``,
        ``em_steps``, ``alpha``.
    seeds : sequence of int
        Ensemble seeds (one ensemble of ``exact_members`` per seed).
    model : ScoreModel, optional
        The model under test (default ``problem.truth``).
    progress : bool

    Returns
    -------
    ExactRun
    """
    truth = problem.truth
    model = truth if model is None else _check_model(model, truth)
    grid = torus(level.exact_resolution)
    checks, metrics, plots = [], {}, {}
    for sname, sampler in _samplers(level):
        ensembles = [np.asarray(sample(model, grid, level.exact_members, s, sampler,
                                       batch_size=level.exact_members, progress=progress,
                                       dtype=np.float64), dtype=np.float64)
                     for s in seeds]
        group = f"exact {problem.kind}: {type(sampler).__name__}({sampler.steps} steps)"
        finite = all(bool(np.isfinite(u).all()) for u in ensembles)
        checks.append(upper_check(
            f"{problem.kind}.{sname}.finite", "every sampled value is finite", group,
            0.0 if finite else 1.0, 0.0, tolerance="exact",
            reason="a sampler of a trace-class model must not overflow"))
        if not finite:
            ensembles = [np.nan_to_num(u, nan=0.0, posinf=1e300, neginf=-1e300)
                         for u in ensembles]
        if problem.kind == "gaussian":
            found = _gaussian_checks(truth, sampler, sname, grid, ensembles, seeds, level,
                                     group)
        else:
            found = _mixture_checks(truth, sampler, sname, grid, ensembles, seeds, level,
                                    group)
        checks.extend(found[0])
        metrics[sname] = found[1]
        plots[sname] = {**found[2], "sample": ensembles[0][:4, 0]}
    plots["grid"] = grid
    plots["truth_sample"] = _truth_draws(truth, grid, 4)
    return ExactRun(checks, metrics, plots)


def _truth_draws(truth: Any, grid: TorusGrid, n: int) -> np.ndarray:
    if isinstance(truth, GaussianMixtureScore):
        return truth.sample_data(grid, n, seed=1)[0][:, 0]
    u = truth.data.sample(grid, n, seed=1, dtype=np.float64)[:, 0]
    return u + (0.0 if truth.mean is None else truth.mean(grid)[0])


def _gaussian_checks(truth: GaussianScore, sampler: Any, sname: str, grid: TorusGrid,
                     ensembles: list, seeds: Sequence[int], level: Any,
                     group: str) -> tuple[list, dict, dict]:
    mu, v = sampler_law(truth, sampler, grid)
    n_bands = len(bands_of(grid))
    alpha_band = level.alpha / (n_bands * len(seeds))
    tests = [_band_test(f"seed {s}", u, grid, mu, v, alpha_band)
             for s, u in zip(seeds, ensembles, strict=True)]
    reason = ("for Gaussian data every sampler is an affine map per Fourier mode, so the "
              "law of each output coefficient is known exactly (sampler_law); the "
              "chi-square interval holds with probability 1 - alpha for the right model")
    checks = [_variance_check(
        f"gaussian.{sname}.mode_variance",
        "per-mode variance of the ensemble equals the sampler's exact law (octave bands)",
        group, tests,
        f"chi-square interval per band, alpha = {level.alpha:g} split over "
        f"{n_bands} bands x {len(seeds)} seeds (seeds drawn by hypothesis)", reason)]

    stats = [mean_statistic(u, grid, mu, v) for u in ensembles]
    ratios = [s / d for s, d in stats]
    worst = int(np.argmax(ratios))
    dof = stats[worst][1]
    bound = chi2_upper(dof, level.alpha / len(seeds)) / dof
    checks.append(upper_check(
        f"gaussian.{sname}.mean", "ensemble mean equals the sampler's exact mean", group,
        ratios[worst], bound,
        tolerance=f"chi-square upper bound ({dof} dof), alpha = {level.alpha:g} over "
                  f"{len(seeds)} seeds",
        reason="the mean of M draws has covariance v / M per mode; its squared "
               "Mahalanobis distance from the exact mean is chi-square",
        details={"ratio_per_seed": ratios, "seeds": list(seeds)}))

    q = truth.data.eigenvalues(grid)
    low = _interior(grid, q) & (shell_index(grid) <= min(grid.shape) // 3)
    bias = float(np.abs(v[low] / q[low] - 1).max())
    checks.append(upper_check(
        f"gaussian.{sname}.discretisation",
        "the sampler's exact law is close to the data law on shells n <= N/3", group,
        bias, DISCRETISATION_TOLERANCE,
        tolerance=f"relative per-mode variance error <= {DISCRETISATION_TOLERANCE:g}, "
                  "computed exactly (no sampling)",
        reason="a property of the level's steps, not of the model: what a user gets "
               "from these settings on an exact model"))
    metrics = {"band_ratios": {t.label: t.ratios for t in tests}, "bands": tests[0].bands,
               "mean_ratio": ratios, "law_bias_low_shells": bias}
    plots = {"tests": tests}
    return checks, metrics, plots


def _mixture_checks(truth: GaussianMixtureScore, sampler: Any, sname: str, grid: TorusGrid,
                    ensembles: list, seeds: Sequence[int], level: Any,
                    group: str) -> tuple[list, dict, dict]:
    from scipy.stats import chi2

    k = truth.n_components
    laws = [sampler_law(GaussianScore(q, truth.noise, truth.process, mean=truth.means[j],
                                      channels=truth.channels), sampler, grid)
            for j, q in enumerate(truth.components)]
    labels = [np.asarray(truth.posterior_weights(u, 0.0, grid)).argmax(axis=1)
              for u in ensembles]
    checks = []

    counts = [np.bincount(lab, minlength=k) for lab in labels]
    p_values = []
    for c in counts:
        expected = c.sum() * truth.weights
        p_values.append(float(chi2.sf(float(((c - expected) ** 2 / expected).sum()), k - 1)))
    worst = int(np.argmin(p_values))
    alpha_w = level.alpha / len(seeds)
    checks.append(CheckResult(
        f"mixture.{sname}.weights", "the mixture weights are recovered (Pearson chi-square "
        "of the component counts)", group, p_values[worst] >= alpha_w, p_values[worst],
        f">= {alpha_w:.3g}", f"chi-square test with {k - 1} dof, alpha = {level.alpha:g} "
        f"over {len(seeds)} seeds",
        "each sample is assigned to the component of largest posterior weight under the "
        "data law (the components are told apart without error); the counts of a right "
        "model are multinomial with the weights",
        {"counts": [c.tolist() for c in counts], "weights": truth.weights,
         "p_values": p_values}))

    n_bands = len(bands_of(grid))
    alpha_band = level.alpha / (n_bands * len(seeds) * k)
    tests, mean_ratios, mean_bounds = [], [], []
    for s, u, lab in zip(seeds, ensembles, labels, strict=True):
        for j in range(k):
            chosen = u[lab == j]
            if chosen.shape[0] < 2:
                continue
            mu, v = laws[j]
            tests.append(_band_test(f"seed {s}, component {j + 1}", chosen, grid, mu, v,
                                    alpha_band, MIXING_ALLOWANCE))
            stat, dof = mean_statistic(chosen, grid, mu, v)
            mean_ratios.append(stat / dof)
            mean_bounds.append(chi2_upper(dof, level.alpha / (len(seeds) * k)) / dof
                               * (1 + MIXING_ALLOWANCE))
    reason = ("once the sampler has chosen a component its path is that component's "
              "Gaussian flow, whose law is exact (sampler_law); the allowance "
              f"{MIXING_ALLOWANCE:g} covers the early steps in which the weights are mixed")
    if tests:
        checks.append(_variance_check(
            f"mixture.{sname}.mode_variance", "per-mode variance of each component equals "
            "its exact Gaussian flow (octave bands)", group, tests,
            f"chi-square interval per band x (1 -+ {MIXING_ALLOWANCE:g}), alpha = "
            f"{level.alpha:g} split over bands, components and seeds", reason))
        worst = int(np.argmax(np.array(mean_ratios) / np.array(mean_bounds)))
        checks.append(upper_check(
            f"mixture.{sname}.mean", "the mean of each component equals its exact flow's",
            group, mean_ratios[worst], mean_bounds[worst],
            tolerance=f"chi-square upper bound x (1 + {MIXING_ALLOWANCE:g}), alpha = "
                      f"{level.alpha:g} over components and seeds",
            reason=reason, details={"ratios": mean_ratios}))
    else:
        checks.append(CheckResult(
            f"mixture.{sname}.mode_variance", "per-mode variance of each component", group,
            False, float("nan"), "undefined", "", "no component holds two samples"))
    pi_max = [float(np.asarray(truth.posterior_weights(u, 0.0, grid)).max(axis=1).min())
              for u in ensembles]
    metrics = {"counts": counts, "weights": truth.weights, "p_values": p_values,
               "smallest_top_weight": pi_max}
    plots = {"tests": tests, "counts": counts, "weights": truth.weights}
    return checks, metrics, plots
