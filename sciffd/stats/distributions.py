"""Pointwise distributions of fields and distances between them.

Moments: skewness ``E[(x - mu)^3] / sd^3`` and flatness (kurtosis)
``E[(x - mu)^4] / sd^4`` (3 for a Gaussian). Distances between two samples
``X``, ``Y`` of scalars:

- Wasserstein-1, ``int |F_X - F_Y|``, from the sorted samples;
- energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` (Szekely and Rizzo
  2013, doi:10.1016/j.jspi.2013.03.018), computed exactly from sorted
  samples in ``O(n log n)``;
- Kolmogorov-Smirnov, ``sup |F_X - F_Y|``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import to_numpy

__all__ = [
    "energy_distance",
    "flatness",
    "histogram_pdf",
    "ks_distance",
    "skewness",
    "wasserstein1",
]


def _flat(x: Any, name: str) -> np.ndarray:
    a = np.asarray(to_numpy(x), dtype=np.float64).reshape(-1)
    if a.size < 2:
        raise ValueError(f"{name} needs at least 2 values, got {a.size}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def skewness(x: Any) -> float:
    """Sample skewness of all values of ``x``."""
    a = _flat(x, "x")
    d = a - a.mean()
    return float((d**3).mean() / (d**2).mean() ** 1.5)


def flatness(x: Any) -> float:
    """Sample flatness (kurtosis, 3 for a Gaussian) of all values of ``x``."""
    a = _flat(x, "x")
    d = a - a.mean()
    return float((d**4).mean() / (d**2).mean() ** 2)


def histogram_pdf(x: Any, bins: int | np.ndarray = 64, range_: tuple | None = None):
    """Density histogram ``(centres, pdf)`` of all values of ``x``."""
    a = _flat(x, "x")
    pdf, edges = np.histogram(a, bins=bins, range=range_, density=True)
    return 0.5 * (edges[1:] + edges[:-1]), pdf


def _ecdf_on(x: np.ndarray, points: np.ndarray) -> np.ndarray:
    return np.searchsorted(x, points, side="right") / x.size


def wasserstein1(x: Any, y: Any) -> float:
    """Wasserstein-1 distance ``int |F_x(z) - F_y(z)| dz`` between two samples."""
    a, b = np.sort(_flat(x, "x")), np.sort(_flat(y, "y"))
    z = np.concatenate([a, b])
    z.sort()
    dz = np.diff(z)
    fa, fb = _ecdf_on(a, z[:-1]), _ecdf_on(b, z[:-1])
    return float(np.sum(np.abs(fa - fb) * dz))


def ks_distance(x: Any, y: Any) -> float:
    """Kolmogorov-Smirnov statistic ``sup |F_x - F_y|``."""
    a, b = np.sort(_flat(x, "x")), np.sort(_flat(y, "y"))
    z = np.concatenate([a, b])
    return float(np.max(np.abs(_ecdf_on(a, z) - _ecdf_on(b, z))))


def _mean_abs_within(a: np.ndarray) -> float:
    """``E|X - X'|`` over all ordered pairs (i != j allowed to be equal: V-statistic)."""
    a = np.sort(a)
    n = a.size
    i = np.arange(n)
    # sum_{i<j} (a_j - a_i) = sum_j a_j (2j - n + 1)
    return float(2 * np.sum(a * (2 * i - n + 1)) / n**2)


def _mean_abs_between(a: np.ndarray, b: np.ndarray) -> float:
    """``E|X - Y|`` over all pairs, from sorted samples."""
    b = np.sort(b)
    prefix = np.concatenate([[0.0], np.cumsum(b)])
    k = np.searchsorted(b, a, side="right")
    total_b = prefix[-1]
    below = a * k - prefix[k]
    above = (total_b - prefix[k]) - a * (b.size - k)
    return float(np.sum(below + above) / (a.size * b.size))


def energy_distance(x: Any, y: Any) -> float:
    """Energy distance ``2 E|X-Y| - E|X-X'| - E|Y-Y'|`` (V-statistic) of two samples.

    Samples of vectors are compared through their flattened values; for
    fields compare pointwise values or per-field statistics.

    Examples
    --------
    >>> round(energy_distance([0.0, 1.0], [0.0, 1.0]), 12)
    0.0
    """
    a, b = _flat(x, "x"), _flat(y, "y")
    return 2 * _mean_abs_between(a, b) - _mean_abs_within(a) - _mean_abs_within(b)
