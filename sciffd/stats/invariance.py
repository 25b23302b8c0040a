"""Discretisation invariance of samples drawn at several resolutions.

A model of fields in function space draws, at resolutions ``N, 2N, 4N``
of one domain and with nested noise (member ``m`` has the same low modes
at every resolution), samples that should describe one law of
functions. Four checks make that testable; each returns numbers, and the
thresholds belong to the caller (:func:`~sciffd.stats.within_floor`):

1. :func:`spectra_agreement`: the ensemble-mean spectra agree on the
   shells every grid resolves, ``1 <= n <= N/3``; the largest
   log-spectral error ``max_n |log10(P_fine(n) / P_N(n))|`` is set beside
   its noise floor (the same metric between two independent truth sets).
2. :func:`restriction_law`: the spectral restriction of the ``2N``
   sample to the ``N`` grid (:func:`sciffd.spectral.resample`) has the law
   of the ``N`` sample: the energy distance between per-field statistics
   (by default the log power spectrum on ``1 <= n <= N/3``) against its
   floor.
3. :func:`low_mode_error`: member by member, the modes of shell
   ``n <= N/3`` agree between ``N`` and ``2N``; the relative ``L^2``
   error ``||P(u_2N) - P(u_N)|| / ||P(u_N)||`` per member.
4. :func:`resolution_series`: the pointwise variance, enstrophy
   ``<w^2>/2`` and palinstrophy ``<|grad w|^2>/2`` at each resolution, so
   that a check can test that they converge as ``N`` grows.

Samples are arrays ``(M, ..., *S)`` with members on axis 0 (numpy, torch
or cupy), each with its :class:`~sciffd.grids.TorusGrid`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backend import to_numpy
from ..grids import TorusGrid
from ..spectral import check_field, forward, resample, resample_spectrum
from .distributions import energy_distance
from .floor import NoiseFloor, noise_floor
from .quantities import enstrophy, palinstrophy
from .spectra import band_limit, log_spectral_error, power_spectrum, shell_index

__all__ = [
    "LawAgreement",
    "ResolutionSeries",
    "SpectraAgreement",
    "low_mode_error",
    "resolution_series",
    "restriction_law",
    "spectra_agreement",
    "spectral_statistic",
]


@dataclass(frozen=True)
class SpectraAgreement:
    """Result of :func:`spectra_agreement`.

    Attributes
    ----------
    n_max : int
        Last shell compared, ``band_limit`` of the coarsest grid.
    errors : numpy array, shape ``(R - 1, n_max)``
        ``|log10(P_r(n) / P_0(n))|`` for each finer resolution ``r`` and
        ``n = 1 .. n_max``.
    max_error : numpy array, shape ``(R - 1,)``
        The largest error over the band, per finer resolution.
    floor : NoiseFloor
        The floor of the largest error over the band.
    """

    n_max: int
    errors: np.ndarray
    max_error: np.ndarray
    floor: NoiseFloor

    @property
    def ratio(self) -> np.ndarray:
        """``max_error / floor.value``."""
        return self.max_error / self.floor.value


@dataclass(frozen=True)
class LawAgreement:
    """Result of :func:`restriction_law`: a distance, its floor and their ratio."""

    distance: float
    floor: NoiseFloor

    @property
    def ratio(self) -> float:
        """``distance / floor.value``."""
        return self.distance / self.floor.value


@dataclass(frozen=True)
class ResolutionSeries:
    """Result of :func:`resolution_series`, one entry per resolution.

    Attributes
    ----------
    shapes : tuple of tuple of int
        The grid shapes.
    variance : numpy array, shape ``(R,)``
        Pointwise variance across members (``ddof=1``), averaged over the
        domain and over any other leading axes.
    enstrophy, palinstrophy : numpy arrays, shape ``(R,)``
        ``<w^2>/2`` and ``<|grad w|^2>/2`` of the fields as vorticities,
        averaged over members (and other leading axes).
    """

    shapes: tuple[tuple[int, ...], ...]
    variance: np.ndarray
    enstrophy: np.ndarray
    palinstrophy: np.ndarray


def _check_pair(sample: Any, grid: Any, name: str) -> None:
    if not isinstance(grid, TorusGrid):
        raise TypeError(f"the grid of {name} must be a sciffd.grids.TorusGrid, got "
                        f"{type(grid).__name__}")
    check_field(sample, grid, name)
    if len(sample.shape) < grid.ndim + 1:
        raise ValueError(
            f"{name} has shape {tuple(sample.shape)}; expected members on axis 0 "
            f"before the grid shape {grid.shape}"
        )


def _check_series(samples: Any, grids: Any, minimum: int = 2) -> tuple[list, list]:
    samples, grids = list(samples), list(grids)
    if len(samples) != len(grids):
        raise ValueError(f"got {len(samples)} samples and {len(grids)} grids; give one grid "
                         "per sample")
    if len(samples) < minimum:
        raise ValueError(f"samples has {len(samples)} resolution(s); need at least {minimum}")
    for i, (u, g) in enumerate(zip(samples, grids, strict=True)):
        _check_pair(u, g, f"samples[{i}]")
    _check_same_domain(grids)
    return samples, grids


def _check_same_domain(grids: Sequence[TorusGrid]) -> None:
    first = grids[0]
    for i, g in enumerate(grids[1:], start=1):
        if g.lengths != first.lengths or g.ndim != first.ndim:
            raise ValueError(f"grids[{i}]={g} is not a resolution of the domain of "
                             f"grids[0]={first}")
        if any(n < m for n, m in zip(g.shape, grids[i - 1].shape, strict=True)):
            raise ValueError(f"grids must be ordered from coarse to fine; grids[{i}]={g} is "
                             f"coarser than grids[{i - 1}]={grids[i - 1]}")


def _halves(u: Any, name: str) -> tuple[Any, Any]:
    m = u.shape[0]
    if m < 4:
        raise ValueError(f"{name} has {m} members; splitting it into two halves for a "
                         "noise floor needs at least 4 (or pass reference=(a, b))")
    h = m // 2
    return u[:h], u[h: 2 * h]


def _reference(reference: Any, sample: Any, grid: TorusGrid) -> tuple[Any, Any]:
    if reference is None:
        return _halves(sample, "samples[0]")
    try:
        a, b = reference
    except (TypeError, ValueError):
        raise TypeError("reference must be a pair (truth_a, truth_b) of samples on the "
                        "coarsest grid") from None
    _check_pair(a, grid, "reference[0]")
    _check_pair(b, grid, "reference[1]")
    return a, b


def spectra_agreement(samples: Sequence[Any], grids: Sequence[TorusGrid], *,
                      reference: tuple[Any, Any] | None = None, n_boot: int = 200,
                      seed: int = 0, confidence: float = 0.95) -> SpectraAgreement:
    """Check 1: ensemble-mean spectra agree on the band every grid resolves.

    Parameters
    ----------
    samples : sequence of arrays, each ``(M, ..., *S_r)``
        Samples of one model, coarse to fine (for example ``N, 2N, 4N``).
    grids : sequence of TorusGrid
        The grid of each sample (one domain).
    reference : (array, array), optional
        Two independent truth samples on the coarsest grid, each the size
        of ``samples[0]``, for the floor. Default: the two halves of
        ``samples[0]`` (whose floor is about ``sqrt(2)`` larger than that
        of full-size samples, for a metric of sample means).
    n_boot, seed, confidence
        Of the bootstrap of the floor (:func:`~sciffd.stats.noise_floor`).

    Returns
    -------
    SpectraAgreement
    """
    samples, grids = _check_series(samples, grids)
    n_max = band_limit(grids[0])
    if n_max < 1:
        raise ValueError(f"grids[0]={grids[0]} resolves no shell n <= N/3 to compare")
    spectra = [power_spectrum(u, g) for u, g in zip(samples, grids, strict=True)]
    errors = np.stack([log_spectral_error(p, spectra[0], n_max=n_max) for p in spectra[1:]])
    g0 = grids[0]

    def metric(a: Any, b: Any) -> float:
        return float(np.max(log_spectral_error(power_spectrum(a, g0), power_spectrum(b, g0),
                                                n_max=n_max)))

    a, b = _reference(reference, samples[0], g0)
    floor = noise_floor(metric, a, b, n_boot=n_boot, seed=seed, confidence=confidence)
    return SpectraAgreement(n_max=n_max, errors=errors, max_error=errors.max(axis=1),
                            floor=floor)


def spectral_statistic(u: Any, grid: TorusGrid, n_max: int | None = None) -> np.ndarray:
    """Per-member statistic: ``log10 P(n)`` for ``1 <= n <= n_max``, shape ``(M, d)``.

    ``n_max`` defaults to :func:`~sciffd.stats.band_limit` of ``grid``; the
    spectra of all axes between the member axis and the grid are
    concatenated (one vector per member).
    """
    n_max = band_limit(grid) if n_max is None else n_max
    p = power_spectrum(u, grid)[..., 1: n_max + 1]
    if np.any(p <= 0):
        raise ValueError("a field has no power in a shell n <= N/3; its log spectrum is "
                         "undefined (pass another statistic=...)")
    return np.log10(p).reshape(p.shape[0], -1)


def restriction_law(sample_coarse: Any, grid_coarse: TorusGrid, sample_fine: Any,
                    grid_fine: TorusGrid, *,
                    statistic: Callable[[Any, TorusGrid], np.ndarray] | None = None,
                    reference: tuple[Any, Any] | None = None, n_boot: int = 200,
                    seed: int = 0, confidence: float = 0.95) -> LawAgreement:
    """Check 2: the restriction of the fine sample has the law of the coarse one.

    Parameters
    ----------
    sample_coarse : array ``(M, ..., *S_N)``
        The sample at resolution ``N``.
    grid_coarse : TorusGrid
    sample_fine : array ``(M', ..., *S_2N)``
        The sample at the finer resolution, restricted to ``grid_coarse``
        by Fourier truncation.
    grid_fine : TorusGrid
    statistic : callable ``(u, grid) -> (M, d)``, optional
        Per-member statistic whose law is compared; default
        :func:`spectral_statistic` with the band of ``grid_coarse``.
    reference : (array, array), optional
        Two independent truth samples on ``grid_coarse`` for the floor;
        default the halves of ``sample_coarse``.
    n_boot, seed, confidence
        Of the bootstrap of the floor.

    Returns
    -------
    LawAgreement
        The energy distance (Euclidean, between statistic vectors) of the
        restricted fine sample and the coarse sample, and its floor.
    """
    _check_pair(sample_coarse, grid_coarse, "sample_coarse")
    _check_pair(sample_fine, grid_fine, "sample_fine")
    _check_same_domain([grid_coarse, grid_fine])
    if statistic is None:
        n_max = band_limit(grid_coarse)

        def statistic(u: Any, g: TorusGrid) -> np.ndarray:
            return spectral_statistic(u, g, n_max)

    elif not callable(statistic):
        raise TypeError(f"statistic must be a callable (u, grid) -> (M, d), got "
                        f"{type(statistic).__name__}")
    restricted = resample(sample_fine, grid_fine, grid_coarse)
    distance = energy_distance(statistic(sample_coarse, grid_coarse),
                               statistic(restricted, grid_coarse), sample_axis=0)

    def metric(a: Any, b: Any) -> float:
        return energy_distance(statistic(a, grid_coarse), statistic(b, grid_coarse),
                               sample_axis=0)

    a, b = (_halves(sample_coarse, "sample_coarse") if reference is None
            else _reference(reference, sample_coarse, grid_coarse))
    floor = noise_floor(metric, a, b, n_boot=n_boot, seed=seed, confidence=confidence)
    return LawAgreement(distance=float(distance), floor=floor)


def low_mode_error(sample_coarse: Any, grid_coarse: TorusGrid, sample_fine: Any,
                   grid_fine: TorusGrid, *, n_max: int | None = None) -> np.ndarray:
    """Check 3: per member, the relative error of the low modes between resolutions.

    Parameters
    ----------
    sample_coarse : array ``(M, ..., *S_N)``
    grid_coarse : TorusGrid
    sample_fine : array ``(M, ..., *S_2N)``, the same members
    grid_fine : TorusGrid
    n_max : int, optional
        Modes of shell ``n <= n_max`` are compared; default
        :func:`~sciffd.stats.band_limit` of ``grid_coarse``.

    Returns
    -------
    error : numpy array, shape ``(M, ...)``
        ``||P(u_fine) - P(u_coarse)|| / ||P(u_coarse)||`` with ``P`` the
        projection on those modes and ``||.||`` the ``L^2`` norm (grid
        mean, computed by Parseval). NaN where ``P(u_coarse) = 0``.
    """
    _check_pair(sample_coarse, grid_coarse, "sample_coarse")
    _check_pair(sample_fine, grid_fine, "sample_fine")
    _check_same_domain([grid_coarse, grid_fine])
    if tuple(sample_coarse.shape[:-grid_coarse.ndim]) != tuple(
            sample_fine.shape[:-grid_fine.ndim]):
        raise ValueError(
            f"sample_coarse has leading shape {tuple(sample_coarse.shape[:-grid_coarse.ndim])}"
            f" and sample_fine {tuple(sample_fine.shape[:-grid_fine.ndim])}; they must hold "
            "the same members"
        )
    n_max = band_limit(grid_coarse) if n_max is None else n_max
    if isinstance(n_max, bool) or not isinstance(n_max, (int, np.integer)) or not (
            0 <= n_max <= band_limit(grid_coarse)):
        raise ValueError(f"n_max={n_max!r} must be an integer in [0, {band_limit(grid_coarse)}]"
                         " (the modes both grids resolve)")
    coarse_hat = np.asarray(to_numpy(forward(sample_coarse, grid_coarse)))
    fine_hat = np.asarray(to_numpy(resample_spectrum(forward(sample_fine, grid_fine),
                                                     grid_fine, grid_coarse)))
    weight = grid_coarse.hermitian_weight * (shell_index(grid_coarse) <= n_max)
    space = tuple(range(-grid_coarse.ndim, 0))
    diff = (np.abs(fine_hat - coarse_hat) ** 2 * weight).sum(axis=space)
    norm = (np.abs(coarse_hat) ** 2 * weight).sum(axis=space)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(diff / norm)


def resolution_series(samples: Sequence[Any], grids: Sequence[TorusGrid]) -> ResolutionSeries:
    """Check 4: pointwise variance, enstrophy and palinstrophy at each resolution.

    Parameters
    ----------
    samples : sequence of arrays, each ``(M, ..., *S_r)``, ``M >= 2``
        Samples at increasing resolution.
    grids : sequence of TorusGrid

    Returns
    -------
    ResolutionSeries
        For a trace-class law the variance converges as ``N`` grows; the
        palinstrophy converges only if the law is smooth enough
        (``E |grad u|^2 < inf``), and grows with ``N`` otherwise.
    """
    samples, grids = _check_series(samples, grids, minimum=1)
    variance, z, p = [], [], []
    for i, (u, g) in enumerate(zip(samples, grids, strict=True)):
        values = np.asarray(to_numpy(u), dtype=np.float64)
        if values.shape[0] < 2:
            raise ValueError(f"samples[{i}] has {values.shape[0]} member(s); the variance "
                             "needs at least 2")
        variance.append(float(values.var(axis=0, ddof=1).mean()))
        z.append(float(enstrophy(values, g).mean()))
        p.append(float(palinstrophy(values, g).mean()))
    return ResolutionSeries(shapes=tuple(g.shape for g in grids), variance=np.array(variance),
                            enstrophy=np.array(z), palinstrophy=np.array(p))
