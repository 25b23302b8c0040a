"""Discretisation invariance of a model, checked with nested noise.

A model of a law on functions gives the same law at every resolution, and,
because member ``m`` of seed ``s`` draws the same low Fourier modes of its
noise on every grid (:mod:`sciffd.noise`), the same member at ``N`` and
``2N`` must be nearly the same function. Given samples of the same members
at resolutions ``N_0 < N_1 < ..`` (from :func:`sciffd.sampling.sample`),
the checks are (with :mod:`sciffd.stats.invariance`):

- the ensemble-mean spectra agree on the shells every grid resolves,
  ``1 <= n <= N_0 / 3``, within ``c`` times the noise floor of two
  independent halves of the coarse ensemble;
- the spectral restriction of each finer sample to ``N_0`` has the law of
  the ``N_0`` sample (energy distance of the log spectra, against its floor);
- member by member, the modes ``n <= N_0 / 3`` agree between resolutions:
  the median relative ``L^2`` error is a small fraction of the distance
  between two different members;
- the pointwise variance and the mean square ``<u^2> / 2`` (the enstrophy
  of a vorticity) converge: between consecutive resolutions they change by
  at most :data:`CONVERGENCE_ALLOWANCE`, plus a normal bound on the sampling
  error of the paired difference (the same members at both).

Two properties range over inputs, drawn by hypothesis
(:mod:`sciffd.validation.properties`): member subsets (a member drawn in
a small batch is the member of the large one) and, for models cheap to
sample, pairs of resolutions (the low-mode agreement for any two).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..grids import TorusGrid
from ..stats.invariance import low_mode_error, restriction_law, spectra_agreement
from ..stats.spectra import power_spectrum
from .checks import CheckResult, floor_check, upper_check

__all__ = [
    "CONVERGENCE_ALLOWANCE",
    "FLOOR_FACTOR",
    "LOW_MODE_FRACTION",
    "InvarianceRun",
    "invariance_checks",
    "resolution_pair_check",
    "subset_check",
]

#: c of "within c times the noise floor" for every floor check of the suite
FLOOR_FACTOR = 2.0

#: the low modes of a member across resolutions: at most this fraction of
#: the distance between two different members
LOW_MODE_FRACTION = 0.1

#: relative change of the pointwise variance and mean square allowed
#: between consecutive resolutions (besides the sampling error)
CONVERGENCE_ALLOWANCE = 0.05

#: draw(grid, members, seed) -> numpy array (M, C, *S)
Draw = Callable[[TorusGrid, Any, int], np.ndarray]


@dataclass(frozen=True)
class InvarianceRun:
    """Checks and the numbers behind them (for metrics and plots)."""

    checks: list
    metrics: dict
    samples: list
    grids: list


def _normal_quantile(p: float) -> float:
    from scipy.stats import norm

    return float(norm.isf(p))


def _failed(name: str, title: str, group: str, why: str) -> CheckResult:
    return CheckResult(name, title, group, False, float("nan"), "undefined", "-", why)


def _member_mean_squares(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per member: squared deviation from the ensemble mean, and half the mean square."""
    axes = tuple(range(1, u.ndim))
    d = u - u.mean(axis=0, keepdims=True)
    return (d**2).mean(axis=axes), 0.5 * (u**2).mean(axis=axes)


def _convergence(name: str, title: str, group: str, per_member: list, scale: float,
                 alpha: float, shapes: list, what: str) -> CheckResult:
    """Relative change of ``scale * sum`` between consecutive resolutions, paired."""
    m = per_member[0].size
    totals = [scale * float(p.sum()) for p in per_member]
    z = _normal_quantile(alpha / (2 * max(1, len(per_member) - 1)))
    rows, scores = [], []
    for r in range(1, len(per_member)):
        diff = per_member[r] - per_member[r - 1]
        change = scale * float(diff.sum())
        se = scale * math.sqrt(m) * float(diff.std(ddof=1))
        base = abs(totals[r - 1]) if totals[r - 1] != 0 else float("inf")
        rel = abs(change) / base
        bound = CONVERGENCE_ALLOWANCE + z * se / base
        rows.append({"from": list(shapes[r - 1]), "to": list(shapes[r]),
                     "relative_change": rel, "bound": bound})
        scores.append(rel / bound if math.isfinite(rel) else float("inf"))
    worst = int(np.argmax(scores))
    return upper_check(
        name, title, group, rows[worst]["relative_change"], rows[worst]["bound"],
        tolerance=f"{CONVERGENCE_ALLOWANCE:g} + z SE per resolution step (z = {z:.3g}, "
                  f"alpha = {alpha:g}; SE of the paired difference over the members)",
        reason=f"for a trace-class law {what} converges as N grows: a finer grid adds only "
               "the small variance of its extra modes; the same members at both grids "
               "make the sampling error that of a paired difference",
        details={"values": totals, "steps": rows})


def invariance_checks(draw: Draw, grids: Sequence[TorusGrid], members: int, seed: int, *,
                      group: str, prefix: str, alpha: float, n_boot: int,
                      coarse: np.ndarray | None = None,
                      low_mode_tolerance: tuple[float, str] | None = None) -> InvarianceRun:
    """The resolution checks of one model.

    Parameters
    ----------
    draw : callable ``(grid, members, seed) -> array (M, C, *S)``
        Samples the model (float64 numpy output).
    grids : sequence of TorusGrid
        Coarse to fine, one domain.
    members : int
        Members ``0 .. members - 1`` drawn at every resolution.
    seed : int
    group, prefix : str
        Report group and name prefix of the checks.
    alpha : float
        False-alarm probability of each statistical check.
    n_boot : int
        Bootstrap replicates of the floors.
    coarse : array, optional
        The sample at ``grids[0]``, if already drawn (its first ``members``
        members are used).
    low_mode_tolerance : (float, str), optional
        An absolute bound on the median low-mode error and its reason (for
        models that act mode by mode); default :data:`LOW_MODE_FRACTION`
        of the distance between members.

    Returns
    -------
    InvarianceRun
    """
    samples = []
    for i, g in enumerate(grids):
        if i == 0 and coarse is not None:
            samples.append(np.asarray(coarse[:members], dtype=np.float64))
        else:
            samples.append(np.asarray(draw(g, members, seed), dtype=np.float64))
    shapes = [g.shape for g in grids]
    label = " / ".join("x".join(map(str, s)) for s in shapes)
    group = f"{group}: resolutions {label}"
    checks = []
    finite = all(bool(np.isfinite(u).all()) for u in samples)
    checks.append(upper_check(
        f"{prefix}.finite", "every sampled value is finite at every resolution", group,
        0.0 if finite else 1.0, 0.0, tolerance="exact",
        reason="a discretisation-invariant model does not blow up on a finer grid"))
    metrics: dict = {"shapes": [list(s) for s in shapes],
                     "spectra": [power_spectrum(u, g).mean(axis=tuple(range(u.ndim - 2)))
                                 if np.isfinite(u).all() else None
                                 for u, g in zip(samples, grids, strict=True)]}
    if not finite:
        why = "non-finite samples: the comparison is undefined"
        for key, title in (("spectra", "shared-band spectra"),
                           ("restriction", "restriction law"),
                           ("low_modes", "same-member low modes"),
                           ("variance", "pointwise variance converges"),
                           ("mean_square", "mean square converges")):
            checks.append(_failed(f"{prefix}.{key}", title, group, why))
        return InvarianceRun(checks, metrics, samples, list(grids))

    agreement = spectra_agreement(samples, grids, n_boot=n_boot, seed=seed)
    checks.append(floor_check(
        f"{prefix}.spectra", "ensemble-mean spectra agree on the shells every grid resolves "
        f"(1 <= n <= {agreement.n_max}); value: max |log10 P_fine / P_coarse|", group,
        float(agreement.max_error.max()), agreement.floor, FLOOR_FACTOR,
        reason="the same law at every resolution: the finer ensembles must agree with the "
               "coarse one at least as well as two independent halves of it agree with each "
               "other (the floor)",
        details={"max_error": agreement.max_error, "errors": agreement.errors}))
    metrics["spectra_errors"] = agreement.errors

    laws = [restriction_law(samples[0], grids[0], samples[r], grids[r], n_boot=n_boot,
                            seed=seed) for r in range(1, len(grids))]
    worst = int(np.argmax([law.distance / max(float(law.floor.high), 1e-300)
                           for law in laws]))
    checks.append(floor_check(
        f"{prefix}.restriction", "the restriction of each finer sample to the coarse grid "
        "has the coarse law (energy distance of log spectra, n <= N/3)", group,
        laws[worst].distance, laws[worst].floor, FLOOR_FACTOR,
        reason="Fourier truncation maps the law at 2N to the law at N for a "
               "discretisation-invariant model; the floor is the distance between two "
               "independent halves of the coarse sample",
        details={"distances": [law.distance for law in laws], "worst_finer": worst + 1}))

    errors = [low_mode_error(samples[0], grids[0], samples[r], grids[r])
              for r in range(1, len(grids))]
    medians = [float(np.nanmedian(e)) for e in errors]
    between = float(np.nanmedian(low_mode_error(samples[0], grids[0],
                                                np.roll(samples[0], 1, axis=0), grids[0])))
    value = max(medians)
    if low_mode_tolerance is None:
        bound = LOW_MODE_FRACTION * between
        tolerance = (f"{LOW_MODE_FRACTION:g} x the median distance between two different "
                     f"members ({between:.3g})")
        reason = ("nested noise gives member m the same low noise modes at every grid, so "
                  "the member must stay itself: its large scales much closer to its coarse "
                  "self than to another member")
    else:
        bound, reason = low_mode_tolerance
        tolerance = f"absolute bound {bound:g}"
    checks.append(upper_check(
        f"{prefix}.low_modes", "the same member has the same modes n <= N/3 at every "
        "resolution (median relative L2 error)", group, value, bound,
        tolerance=tolerance, reason=reason,
        details={"median_error": medians, "between_members": between}))
    metrics["low_mode_errors"] = medians
    metrics["between_members"] = between

    pairs = [_member_mean_squares(u) for u in samples]
    m = samples[0].shape[0]
    checks.append(_convergence(
        f"{prefix}.variance", "the pointwise variance converges as the grid is refined",
        group, [p[0] for p in pairs], 1.0 / (m - 1), alpha, shapes,
        "the pointwise variance"))
    checks.append(_convergence(
        f"{prefix}.mean_square", "the mean square <u^2>/2 (enstrophy of a vorticity) "
        "converges as the grid is refined", group, [p[1] for p in pairs], 1.0 / m, alpha,
        shapes, "the mean square"))
    metrics["variance"] = [float(p[0].sum() / (m - 1)) for p in pairs]
    metrics["mean_square"] = [float(p[1].mean()) for p in pairs]
    return InvarianceRun(checks, metrics, samples, list(grids))


def subset_check(draw: Draw, grid: TorusGrid, sample: np.ndarray, subsets: Sequence[Any],
                 seed: int, *, tolerance: float, reason: str, group: str,
                 prefix: str) -> CheckResult:
    """Members drawn in small batches (``subsets``) equal the rows of ``sample``.

    ``sample`` holds members ``0 .. M-1`` of ``seed`` drawn together; the
    value is the largest relative ``L^2`` difference over the subsets'
    members.
    """
    worst, rows = 0.0, []
    for subset in subsets:
        ids = list(subset)
        alone = np.asarray(draw(grid, ids, seed), dtype=np.float64)
        ref = sample[ids]
        axes = tuple(range(1, ref.ndim))
        err = np.sqrt(((alone - ref) ** 2).sum(axis=axes) / (ref**2).sum(axis=axes))
        e = float(err.max()) if np.all(np.isfinite(err)) else float("inf")
        rows.append({"members": ids, "error": e})
        worst = max(worst, e)
    return upper_check(
        f"{prefix}.member_subsets", "a member is the same drawn in a small batch as in the "
        "whole ensemble (subsets drawn by hypothesis)", group, worst, tolerance,
        tolerance=f"relative L2 difference <= {tolerance:g}", reason=reason,
        details={"subsets": rows})


def resolution_pair_check(draw: Draw, base: TorusGrid, pairs: Sequence[tuple[int, int]],
                          members: int, seed: int, *, group: str, prefix: str,
                          low_mode_tolerance: tuple[float, str] | None = None
                          ) -> CheckResult:
    """The low-mode agreement of the same members for pairs of resolutions.

    Parameters
    ----------
    draw : callable
    base : TorusGrid
        Its domain; the pairs give the points per axis.
    pairs : sequence of (int, int)
        Resolutions ``N_1 < N_2`` (drawn by hypothesis).
    members, seed : int
    low_mode_tolerance : (float, str), optional
        As in :func:`invariance_checks`.
    """
    rows, scores = [], []
    for n1, n2 in pairs:
        g1, g2 = base.with_shape(n1), base.with_shape(n2)
        u1 = np.asarray(draw(g1, members, seed), dtype=np.float64)
        u2 = np.asarray(draw(g2, members, seed), dtype=np.float64)
        if not (np.isfinite(u1).all() and np.isfinite(u2).all()):
            rows.append({"pair": [n1, n2], "median_error": float("inf"), "bound": 0.0})
            scores.append(float("inf"))
            continue
        err = float(np.nanmedian(low_mode_error(u1, g1, u2, g2)))
        if low_mode_tolerance is None:
            between = float(np.nanmedian(low_mode_error(u1, g1, np.roll(u1, 1, axis=0), g1)))
            bound = LOW_MODE_FRACTION * between
        else:
            bound = low_mode_tolerance[0]
        rows.append({"pair": [n1, n2], "median_error": err, "bound": bound})
        scores.append(err / bound)
    worst = int(np.argmax(scores))
    if low_mode_tolerance is None:
        tolerance = (f"{LOW_MODE_FRACTION:g} x the median distance between two different "
                     "members, per pair")
        reason = "as for the fixed resolutions: member m stays itself on any grid"
    else:
        tolerance, reason = f"absolute bound {low_mode_tolerance[0]:g}", low_mode_tolerance[1]
    return upper_check(
        f"{prefix}.resolution_pairs", "the same member has the same low modes for any two "
        "resolutions (pairs drawn by hypothesis)", group, rows[worst]["median_error"],
        rows[worst]["bound"], tolerance=tolerance, reason=reason, details={"pairs": rows})
