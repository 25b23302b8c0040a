"""Pointwise distributions of fields and distances between them.

Moments: skewness ``E[(x - mu)^3] / sd^3`` and flatness (kurtosis)
``E[(x - mu)^4] / sd^4`` (3 for a Gaussian), both with population
(``1/n``) moments. Distances between two samples ``X``, ``Y`` of scalars:

- Wasserstein-1, ``int |F_X - F_Y|``, from the sorted samples;
- energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` (Szekely and Rizzo
  2013, doi:10.1016/j.jspi.2013.03.018), computed exactly from sorted
  samples in ``O(n log n)``; with ``sample_axis`` the samples are vectors
  and ``|.|`` is the Euclidean norm (``O(n m d)``);
- Kolmogorov-Smirnov, ``sup |F_X - F_Y|``.

All expectations are V-statistics (the empirical measures of the samples,
pairs ``i = j`` included). Arrays of any backend and DataArrays are
accepted; distances compute a Dask-backed input (they need every value).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backend import to_numpy
from . import _labels

__all__ = [
    "energy_distance",
    "flatness",
    "histogram_pdf",
    "ks_distance",
    "skewness",
    "wasserstein1",
]


def _values(x: Any) -> np.ndarray:
    if _labels.is_xarray(x):
        return np.asarray(x.values, dtype=np.float64)
    _labels.check_dataarray_input(x, "x")
    return np.asarray(to_numpy(x), dtype=np.float64)


def _flat(x: Any, name: str) -> np.ndarray:
    a = _values(x).reshape(-1)
    if a.size < 2:
        raise ValueError(f"{name} needs at least 2 values, got {a.size}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def _standard_moment(x: Any, order: int, axis: Any, dim: Any, name: str) -> Any:
    """``E[(x - mu)^order] / E[(x - mu)^2]^(order/2)`` over ``axis`` (or ``dim``)."""
    if _labels.is_xarray(x):
        if axis is not None:
            raise TypeError(f"{name}: pass dim=..., not axis=..., for a DataArray")
        if isinstance(dim, str):
            dim = [dim]
        if dim is not None:
            for d in dim:
                _labels.has_dim(x, d, "x", "dim")
        d = x - x.mean(dim)
        out = (d**order).mean(dim) / (d**2).mean(dim) ** (order / 2)
        return _labels.labelled(out, x, name, "1", f"{name} of {_labels.variable_long_name(x)}")
    if dim is not None:
        raise TypeError(f"{name}: dim={dim!r} needs a DataArray; use axis=... for arrays")
    if axis is None:
        a = _flat(x, "x")
        d = a - a.mean()
        return float((d**order).mean() / (d**2).mean() ** (order / 2))
    a = _values(x)
    if not np.all(np.isfinite(a)):
        raise ValueError("x contains NaN or infinite values")
    d = a - a.mean(axis=axis, keepdims=True)
    return (d**order).mean(axis=axis) / (d**2).mean(axis=axis) ** (order / 2)


def skewness(x: Any, axis: int | tuple[int, ...] | None = None, *,
             dim: str | Sequence[str] | None = None) -> Any:
    """Sample skewness ``m_3 / m_2^(3/2)`` (population moments ``m_p``).

    Parameters
    ----------
    x : array or xarray.DataArray
        Values; NaN or infinite values are refused.
    axis : int or tuple of int, optional
        Axes reduced for an array; default all values (returns a float).
    dim : str or sequence of str, optional
        Dims reduced for a DataArray; default all (lazy on Dask).

    Returns
    -------
    float, numpy array or xarray.DataArray
    """
    return _standard_moment(x, 3, axis, dim, "skewness")


def flatness(x: Any, axis: int | tuple[int, ...] | None = None, *,
             dim: str | Sequence[str] | None = None) -> Any:
    """Sample flatness (kurtosis, 3 for a Gaussian) ``m_4 / m_2^2``.

    Parameters and returns as in :func:`skewness`.

    Examples
    --------
    >>> round(flatness([-1.0, 1.0]), 12)
    1.0
    """
    return _standard_moment(x, 4, axis, dim, "flatness")


def histogram_pdf(x: Any, bins: int | np.ndarray = 64, range_: tuple | None = None):
    """Density histogram ``(centres, pdf)`` of all values of ``x``.

    Parameters
    ----------
    x : array or xarray.DataArray
        Values (all of them are pooled).
    bins : int or array of edges
    range_ : (float, float), optional
        Range of the bins; default the range of the values.

    Returns
    -------
    centres, pdf : numpy arrays, shape ``(n_bins,)``
        For a DataArray, one DataArray ``pdf`` over the dim ``bin`` with
        coordinate ``value`` (the centres), in the inverse units of ``x``.
    """
    a = _flat(x, "x")
    pdf, edges = np.histogram(a, bins=bins, range=range_, density=True)
    centres = 0.5 * (edges[1:] + edges[:-1])
    if not _labels.is_xarray(x):
        return centres, pdf
    units = _labels.variable_units(x)
    out = _labels.xr().DataArray(pdf, dims=("bin",), coords={
        "value": ("bin", centres, {"units": units, "long_name": "bin centre"})})
    return _labels.labelled(out, x, "pdf", _labels.power_units(units, -1),
                            f"probability density of {_labels.variable_long_name(x)}")


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


def _vectors(x: Any, sample_axis: int, name: str) -> np.ndarray:
    """Samples of vectors ``(n, d)``: ``sample_axis`` first, the other axes flattened."""
    a = _values(x)
    if a.ndim == 0:
        raise ValueError(f"{name} must have a sample axis; got a scalar")
    if isinstance(sample_axis, bool) or not isinstance(sample_axis, (int, np.integer)):
        raise TypeError(f"sample_axis={sample_axis!r} must be an integer")
    if not -a.ndim <= sample_axis < a.ndim:
        raise ValueError(f"sample_axis={sample_axis} is out of range for {name} of "
                         f"shape {a.shape}")
    a = np.moveaxis(a, sample_axis, 0).reshape(a.shape[sample_axis], -1)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def _mean_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``E||A - B||`` over all pairs of rows (Euclidean)."""
    from scipy.spatial.distance import cdist

    return float(cdist(a, b).mean())


def energy_distance(x: Any, y: Any, *, sample_axis: int | None = None) -> float:
    """Energy distance ``2 E|X-Y| - E|X-X'| - E|Y-Y'|`` (V-statistic) of two samples.

    Parameters
    ----------
    x, y : arrays or DataArrays
        Two samples. Without ``sample_axis`` every value is one scalar
        sample (pointwise distributions); fields can also be compared
        through per-field statistics.
    sample_axis : int, optional
        The axis of ``x`` and ``y`` that indexes samples; the other axes
        (flattened) are the components of vector samples, compared in the
        Euclidean norm. Both must have the same number of components.

    Returns
    -------
    float
        Non-negative, zero when the empirical laws agree; the square of
        :func:`scipy.stats.energy_distance` for scalars.

    Examples
    --------
    >>> round(energy_distance([0.0, 1.0], [0.0, 1.0]), 12)
    0.0
    """
    if sample_axis is None:
        a, b = _flat(x, "x"), _flat(y, "y")
        return 2 * _mean_abs_between(a, b) - _mean_abs_within(a) - _mean_abs_within(b)
    a, b = _vectors(x, sample_axis, "x"), _vectors(y, sample_axis, "y")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"x and y hold vectors of {a.shape[1]} and {b.shape[1]} components; "
            "they must have the same shape apart from sample_axis"
        )
    return 2 * _mean_distance(a, b) - _mean_distance(a, a) - _mean_distance(b, b)
