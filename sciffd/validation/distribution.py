"""A sample against reference fields: spectra, PDFs, moments, ensemble scores.

**Distributional checks.** The reference fields are split into two
disjoint halves ``A`` and ``B`` by their group (the solver member of a
dataset: snapshots of one member are correlated, members are
independent). With ``n`` fields from each of the sample ``X``, ``A`` and
``B``, every metric ``D`` is computed as ``D(X, A)`` and its noise floor
as ``D(B, A)`` (:func:`sciffd.stats.noise_floor`, with a bootstrap
interval), and the check passes when ``D(X, A) <= c floor`` with
``c = FLOOR_FACTOR`` and the upper end of the floor's interval. The
metrics:

- spectrum: ``max |log10 P_X(n) / P_A(n)|`` over the shells
  ``1 <= n <= N/3`` of the ensemble-mean power spectra;
- PDF: the Wasserstein-1 distance of the pooled pointwise values;
- flatness: ``|F(X) - F(A)|`` of the pooled values (``F = 3`` Gaussian);
- pointwise variance: ``|v(X) / v(A) - 1|``, ``v`` the variance across
  fields, averaged over the domain;
- mean field: ``rms(mean X - mean A) / sqrt(v(A))``.

Snapshots of one solver member in ``B`` are correlated, so ``B`` holds
fewer independent fields than ``n``: the floor is that of a smaller
sample, larger than the floor of ``n`` independent fields, which makes
the checks lenient rather than strict.

**Ensemble scores.** Against a member-wise truth (one verifying field per
case), on a sparse lattice of points (every ``N/4``-th point per axis, far
apart compared with the correlation length of smooth fields, so that the
points are nearly independent):

- spread-skill ratio (:func:`sciffd.stats.spread_skill_ratio`): for a
  calibrated Gaussian ensemble of ``M`` members at ``n`` independent
  points, ``SSR^2`` is an ``F(n (M - 1), n)`` variable, which gives its
  two-sided bounds;
- rank histogram: Pearson's chi-square of the ranks, grouped into bins
  that each expect at least five points.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..grids import TorusGrid
from ..stats import (
    crps_ensemble,
    energy_score,
    ensemble_rank,
    flatness,
    noise_floor,
    power_spectrum,
    spread_skill_ratio,
    wasserstein1,
)
from ..stats.spectra import band_limit
from .checks import CheckResult, floor_check, interval_check
from .invariance import FLOOR_FACTOR

__all__ = ["MIN_FIELDS", "ReferenceFields", "distribution_checks", "score_checks",
           "split_halves"]

#: fields of each of the sample and the reference halves that a floor needs: the
#: bootstrap resamples n fields with replacement, and with n = 4 one resample in 64 is a
#: single field repeated (variance 0); with 8, one in 2 million
MIN_FIELDS = 8


@dataclass(frozen=True)
class ReferenceFields:
    """Reference fields ``(F, C, *S)`` with the group (independent unit) of each."""

    fields: np.ndarray
    groups: np.ndarray
    grid: TorusGrid


def split_halves(ref: ReferenceFields) -> tuple[np.ndarray, np.ndarray]:
    """The fields of the first and the second half of the groups (sorted ids)."""
    ids = np.unique(ref.groups)
    if ids.size < 2:
        raise ValueError(
            f"the reference has {ids.size} independent group(s) (members); a noise floor "
            "needs at least 2 to split into halves"
        )
    first = np.isin(ref.groups, ids[: ids.size // 2])
    return ref.fields[first], ref.fields[~first]


def _spectrum(u: np.ndarray, grid: TorusGrid) -> np.ndarray:
    p = power_spectrum(u, grid)
    return p.reshape(-1, p.shape[-1]).mean(axis=0)


def _metrics(grid: TorusGrid) -> dict[str, tuple[str, Callable, str]]:
    n_max = band_limit(grid)

    def spectrum(x: np.ndarray, a: np.ndarray) -> float:
        px, pa = _spectrum(x, grid)[1:n_max + 1], _spectrum(a, grid)[1:n_max + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.max(np.abs(np.log10(px / pa))))

    def variance(u: np.ndarray) -> float:
        return float(u.var(axis=0, ddof=1).mean())

    def var_error(x: np.ndarray, a: np.ndarray) -> float:
        return abs(variance(x) / variance(a) - 1)

    def mean_error(x: np.ndarray, a: np.ndarray) -> float:
        return float(np.sqrt(((x.mean(axis=0) - a.mean(axis=0)) ** 2).mean() / variance(a)))

    return {
        "spectrum": (f"ensemble-mean power spectrum on shells 1 <= n <= {n_max}: "
                     "max |log10 P / P_ref|", spectrum,
                     "the spectrum of a model of the data law agrees with the data's "
                     "wherever both resolve it (n <= N/3) as well as two independent "
                     "halves of the reference agree"),
        "pdf": ("pointwise PDF: Wasserstein-1 distance of the pooled values", wasserstein1,
                "the one-point law of the values, tails included"),
        "flatness": ("flatness (kurtosis) of the pooled values: |F - F_ref|",
                     lambda x, a: abs(flatness(x) - flatness(a)),
                     "intermittency: the weight of the tails of the one-point law"),
        "variance": ("pointwise variance across fields: |v / v_ref - 1|", var_error,
                     "the amplitude of the fluctuations about the mean field"),
        "mean": ("mean field: rms(mean - mean_ref) / sqrt(v_ref)", mean_error,
                 "the forced or mean part of the law (zero for a law without one)"),
    }


def distribution_checks(sample: np.ndarray, reference: ReferenceFields, *, group: str,
                        prefix: str, n_boot: int, seed: int = 0) -> tuple[list, dict]:
    """Spectrum, PDF, flatness, variance and mean of ``sample`` against ``reference``.

    Parameters
    ----------
    sample : array ``(M, C, *S)``
        Fields of the model or ensemble, on ``reference.grid``.
    reference : ReferenceFields
    group, prefix : str
    n_boot, seed
        Of the bootstrap of the floors.

    Returns
    -------
    checks : list of CheckResult
    metrics : dict
        Sizes, the spectra (mean and per-shell floor) and the PDFs, for plots.
    """
    grid = reference.grid
    a_all, b_all = split_halves(reference)
    n = min(sample.shape[0], a_all.shape[0], b_all.shape[0])
    if n < MIN_FIELDS:
        raise ValueError(
            f"the sample and each half of the reference need at least {MIN_FIELDS} fields "
            f"for a noise floor; got {sample.shape[0]} (sample), {a_all.shape[0]} and "
            f"{b_all.shape[0]} (reference halves): give more members or reference fields")
    x, a, b = sample[:n], a_all[:n], b_all[:n]
    checks, values = [], {}
    finite = bool(np.isfinite(x).all())
    for key, (title, metric, reason) in _metrics(grid).items():
        floor = noise_floor(metric, b, a, n_boot=n_boot, seed=seed)
        value = metric(x, a) if finite else float("nan")
        values[key] = {"value": value, "floor": floor.value, "floor_high": floor.high}
        checks.append(floor_check(f"{prefix}.{key}", title, group, value, floor, FLOOR_FACTOR,
                                  reason=reason + f" (n = {n} fields of each)"))

    n_max = band_limit(grid)

    def per_shell(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.abs(np.log10(_spectrum(u, grid)[1:n_max + 1]
                                   / _spectrum(v, grid)[1:n_max + 1]))

    shell_floor = noise_floor(per_shell, b, a, n_boot=n_boot, seed=seed)
    metrics = {
        "fields": n, "reference_fields": int(reference.fields.shape[0]),
        "reference_groups": int(np.unique(reference.groups).size),
        "values": values, "n_max": n_max, "shape": list(grid.shape),
        "spectrum_sample": _spectrum(x, grid) if finite else None,
        "spectrum_reference": _spectrum(a, grid),
        "spectrum_reference_b": _spectrum(b, grid),
        "shell_floor_high": shell_floor.high,
    }
    return checks, metrics


# -- ensemble scores against a member-wise truth ------------------------------------
def _lattice(grid: TorusGrid) -> tuple[slice, ...]:
    return tuple(slice(0, n, max(1, n // 4)) for n in grid.shape)


def score_checks(forecast: np.ndarray, truth: np.ndarray, grid: TorusGrid, *, alpha: float,
                 group: str, prefix: str, seed: int = 0) -> tuple[list, dict]:
    """Spread-skill and rank-histogram checks, and CRPS and energy score as metrics.

    Parameters
    ----------
    forecast : array ``(M, cases, *S)``
        The ensemble (members first; ``cases`` any number of leading axes
        flattened into one, including the channels).
    truth : array ``(cases, *S)``
    grid : TorusGrid
    alpha : float
    group, prefix : str
    seed : int
        Of the tie-breaking draws of the ranks.
    """
    from scipy.stats import chi2
    from scipy.stats import f as f_distribution

    m = forecast.shape[0]
    x = forecast.reshape((m, -1) + grid.shape)
    y = truth.reshape((-1,) + grid.shape)
    if x.shape[1] != y.shape[0]:
        raise ValueError(f"the forecast holds {x.shape[1]} case(s) and the truth {y.shape[0]}")
    lattice = (slice(None), slice(None)) + _lattice(grid)
    xs, ys = x[lattice].reshape(m, -1), y[lattice[1:]].reshape(-1)
    n = ys.size
    checks = []

    ssr = spread_skill_ratio(xs, ys)
    # (M - 1) s^2 / var ~ chi2_{M-1} and err^2 M / ((M + 1) var) ~ chi2_1 per point, so
    # SSR^2 = (M + 1) / M <s^2> / <err^2> is F(n (M - 1), n) over n independent points
    lo = float(np.sqrt(f_distribution.ppf(alpha / 2, n * (m - 1), n)))
    hi = float(np.sqrt(f_distribution.isf(alpha / 2, n * (m - 1), n)))
    checks.append(interval_check(
        f"{prefix}.spread_skill", f"spread-skill ratio on {n} lattice points", group, ssr,
        lo, hi, tolerance=f"two-sided F({n * (m - 1)}, {n}) bound on SSR^2, "
                          f"alpha = {alpha:g}",
        reason="for a calibrated ensemble the truth is exchangeable with the members: the "
               "member variance and the squared error of the mean estimate the same "
               "variance, and their ratio is F-distributed at independent points"))

    ranks = ensemble_rank(xs, ys, seed=seed)
    bins = max(2, min(m + 1, n // 5))
    groups = np.array_split(np.arange(m + 1), bins)
    counts = np.array([np.isin(ranks, g).sum() for g in groups])
    expected = n * np.array([g.size for g in groups]) / (m + 1)
    stat = float(((counts - expected) ** 2 / expected).sum())
    p = float(chi2.sf(stat, bins - 1))
    checks.append(CheckResult(
        f"{prefix}.rank_histogram", f"rank histogram is flat ({bins} bins of ranks, "
        f"{n} lattice points)", group, p >= alpha, p, f">= {alpha:g}",
        f"Pearson chi-square, {bins - 1} dof, at least 5 expected points per bin",
        "the rank of an exchangeable truth among M members is uniform on 0 .. M",
        {"counts": counts, "expected": expected, "chi2": stat}))

    crps = float(np.mean(crps_ensemble(x.reshape(m, -1), y.reshape(-1))))
    es = float(np.mean(energy_score(x, y, vector_axes=tuple(range(-grid.ndim, 0)))))
    full_ranks = np.bincount(np.ravel(ensemble_rank(xs, ys, seed=seed)), minlength=m + 1)
    metrics = {"members": m, "cases": int(y.shape[0]), "lattice_points": n,
               "spread_skill_ratio": ssr, "crps": crps, "energy_score": es,
               "rank_counts": full_ranks}
    return checks, metrics
