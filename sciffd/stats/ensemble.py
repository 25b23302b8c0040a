"""Scores of an ensemble forecast ``x_1 .. x_M`` against a truth ``y``.

- CRPS (continuous ranked probability score), from the ensemble as an
  empirical measure, per point:

      CRPS = (1/M) sum_i |x_i - y| - c_M sum_{i,j} |x_i - x_j|,

  with ``c_M = 1 / (2 M (M - 1))`` for the fair score (Ferro 2014,
  doi:10.1002/qj.2270: its expectation does not depend on ``M`` for
  exchangeable members, so it is unbiased for the score of the underlying
  distribution), or ``c_M = 1 / (2 M^2)`` for the score of the empirical
  measure itself (``fair=False``).
- Energy score (Gneiting and Raftery 2007, doi:10.1198/016214506000001437),
  the same with a norm of vectors (whole fields) in place of ``|.|``.
- Spread-skill ratio with the finite-ensemble correction of Fortin et al.
  (2014, doi:10.1175/JHM-D-14-0008.1),

      SSR = sqrt((M + 1) / M) sqrt(<s^2>) / sqrt(<(xbar - y)^2>),

  where ``s^2`` is the unbiased member variance and ``xbar`` the member
  mean at each point, and ``< . >`` a mean over points (and cases). For a
  calibrated ensemble ``E (xbar - y)^2 = (M + 1)/M E s^2``, so ``SSR ~ 1``;
  below 1 is underdispersed.
- Rank histogram: the rank of ``y`` among the members (the number of
  members below it, ``0 .. M``) counted over points, and Pearson's
  chi-square statistic of flatness ``sum_k (n_k - n/(M+1))^2 / (n/(M+1))``
  with ``M`` degrees of freedom.

Arrays take the member axis as ``member_axis`` (default 0); DataArrays
take the member dim by name (``member_dim``, default ``"member"``) and
stay lazy on Dask where the score is pointwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backend import to_numpy
from . import _labels

__all__ = [
    "RankHistogram",
    "crps_ensemble",
    "energy_score",
    "ensemble_rank",
    "rank_histogram",
    "spread_skill_ratio",
]

_NORMS = ("mean", "euclidean")


def _as_float(x: Any, name: str, check_finite: bool = True) -> np.ndarray:
    _labels.check_dataarray_input(x, name)
    try:
        a = np.asarray(to_numpy(x), dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array of real numbers, got "
                        f"{type(x).__name__}") from err
    if check_finite and not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def _members_first(forecast: Any, truth: Any, member_axis: Any,
                   minimum: int) -> tuple[np.ndarray, np.ndarray]:
    """``forecast`` with its member axis first, and ``truth``; shapes checked."""
    x = _as_float(forecast, "forecast")
    y = _as_float(truth, "truth")
    if isinstance(member_axis, bool) or not isinstance(member_axis, (int, np.integer)):
        raise TypeError(f"member_axis={member_axis!r} must be an integer")
    if x.ndim == 0 or not -x.ndim <= member_axis < x.ndim:
        raise ValueError(
            f"member_axis={member_axis} is out of range for forecast of shape {x.shape}"
        )
    x = np.moveaxis(x, member_axis, 0)
    if x.shape[1:] != y.shape:
        raise ValueError(
            f"truth has shape {y.shape}; expected the forecast shape without its member "
            f"axis {member_axis}, {x.shape[1:]}"
        )
    if x.shape[0] < minimum:
        raise ValueError(
            f"forecast has {x.shape[0]} member(s) on member_axis={member_axis}; this "
            f"score needs at least {minimum}"
        )
    return x, y


def _check_xarray_pair(forecast: Any, truth: Any, member_dim: Any) -> str:
    member_dim = _labels.check_dim_name(member_dim, "member_dim")
    if not _labels.is_xarray(truth):
        raise TypeError(
            f"forecast is a DataArray but truth is {type(truth).__name__}; pass both as "
            "DataArrays or both as arrays"
        )
    _labels.has_dim(forecast, member_dim, "forecast", "member_dim")
    if member_dim in truth.dims:
        raise ValueError(
            f"truth has the member dim {member_dim!r}; the truth is one field per case "
            "(select it, or name the forecast's ensemble dim with member_dim=...)"
        )
    return member_dim


def _pair_sum_sorted(x: np.ndarray) -> np.ndarray:
    """``sum_{i,j} |x_i - x_j|`` over axis 0 from sorted values (``O(M log M)``)."""
    x = np.sort(x, axis=0)
    m = x.shape[0]
    weights = (2 * np.arange(m) - m + 1).reshape((m,) + (1,) * (x.ndim - 1))
    return 2 * np.sum(weights * x, axis=0)


def crps_ensemble(forecast: Any, truth: Any, *, member_axis: int = 0, fair: bool = True,
                  member_dim: str = "member") -> Any:
    """Pointwise CRPS of an ensemble, fair (default) or of the empirical measure.

    Parameters
    ----------
    forecast : array, shape ``(M, ...)`` (members on ``member_axis``), or DataArray
        The ensemble ``x_i``.
    truth : array, shape of ``forecast`` without the member axis, or DataArray
        The verifying value ``y``.
    member_axis : int
        Member axis of an array ``forecast``.
    fair : bool
        ``True``: ``c_M = 1 / (2 M (M - 1))`` (Ferro 2014; needs ``M >= 2``);
        ``False``: ``c_M = 1 / (2 M^2)`` (the form of
        ``properscoring.crps_ensemble``).
    member_dim : str
        Member dim of a DataArray ``forecast``.

    Returns
    -------
    crps : numpy array, shape of ``truth``, or DataArray (lazy on Dask)
        In the units of the variable; average it over points and cases.

    Examples
    --------
    >>> round(float(crps_ensemble([0.0, 2.0], 1.0)), 12)
    0.0
    >>> round(float(crps_ensemble([0.0, 2.0], 1.0, fair=False)), 12)
    0.5
    """
    if _labels.is_xarray(forecast):
        member_dim = _check_xarray_pair(forecast, truth, member_dim)
        out = _labels.apply(
            lambda x, y: crps_ensemble(x, y, member_axis=-1, fair=fair),
            forecast, truth, core_dims=[[member_dim], []])
        kind = "fair " if fair else ""
        return _labels.labelled(out, truth, "crps", _labels.variable_units(truth),
                                f"{kind}CRPS of the ensemble for "
                                f"{_labels.variable_long_name(truth)}")
    x, y = _members_first(forecast, truth, member_axis, 2 if fair else 1)
    m = x.shape[0]
    skill = np.abs(x - y).mean(axis=0)
    c = 1.0 / (2 * m * (m - 1)) if fair else 1.0 / (2 * m * m)
    return skill - c * _pair_sum_sorted(x)


def _vector_layout(x: np.ndarray, y: np.ndarray, vector_axes: Any) -> tuple:
    """``x`` as ``(M, B, D)`` and ``y`` as ``(B, D)``, with the batch shape."""
    if vector_axes is None:
        axes = tuple(range(y.ndim))
    else:
        axes = (vector_axes,) if isinstance(vector_axes, (int, np.integer)) else tuple(
            vector_axes)
        for a in axes:
            if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not (
                    -y.ndim <= a < y.ndim):
                raise ValueError(
                    f"vector_axes={vector_axes!r} must be axes of truth (shape {y.shape})"
                )
        axes = tuple(sorted({int(a) % y.ndim for a in axes}))
    if not axes:
        raise ValueError("the vectors of an energy score need at least one axis")
    batch_axes = tuple(a for a in range(y.ndim) if a not in axes)
    y = np.transpose(y, batch_axes + axes)
    x = np.transpose(x, (0,) + tuple(a + 1 for a in batch_axes + axes))
    batch = y.shape[: len(batch_axes)]
    d = int(np.prod(y.shape[len(batch_axes):]))
    return x.reshape(x.shape[0], -1, d), y.reshape(-1, d), batch


def energy_score(forecast: Any, truth: Any, *, member_axis: int = 0,
                 vector_axes: int | Sequence[int] | None = None, norm: str = "mean",
                 fair: bool = False, member_dim: str = "member",
                 dims: Sequence[str] | None = None) -> Any:
    """Energy score ``(1/M) sum_i ||x_i - y|| - c_M sum_{i,j} ||x_i - x_j||``.

    Parameters
    ----------
    forecast : array (members on ``member_axis``) or DataArray
        The ensemble of vectors (fields) ``x_i``.
    truth : array, shape of ``forecast`` without the member axis, or DataArray
        The verifying vector ``y``.
    member_axis : int
        Member axis of an array ``forecast``.
    vector_axes : int or sequence of int, optional
        Axes of ``truth`` that form one vector; default all (one score).
        The other axes are cases, scored separately.
    norm : {"mean", "euclidean"}
        ``"mean"``: the function-space norm ``||f|| = (mean f^2)^(1/2)``
        (grid mean, so the score does not grow with the resolution);
        ``"euclidean"``: ``(sum f^2)^(1/2)``, as in ``scoringrules``.
    fair : bool
        ``False`` (default, Gneiting and Raftery 2007): ``c_M = 1 / (2 M^2)``;
        ``True``: ``c_M = 1 / (2 M (M - 1))``, unbiased in ``M``.
    member_dim : str
        Member dim of a DataArray ``forecast``.
    dims : sequence of str, optional
        Dims of the vector for DataArrays; default all dims of ``truth``.

    Returns
    -------
    es : float, numpy array of the case shape, or DataArray (lazy on Dask)

    Examples
    --------
    >>> import numpy as np
    >>> round(float(energy_score(np.array([[0.0], [2.0]]), np.array([1.0]))), 12)
    0.5
    """
    if norm not in _NORMS:
        raise ValueError(f"norm={norm!r} is not supported; expected one of {_NORMS}")
    if _labels.is_xarray(forecast):
        member_dim = _check_xarray_pair(forecast, truth, member_dim)
        vdims = list(truth.dims) if dims is None else (
            [dims] if isinstance(dims, str) else list(dims))
        for d in vdims:
            _labels.has_dim(truth, d, "truth", "dims")
        n = len(vdims)
        out = _labels.apply(
            lambda x, y: energy_score(x, y, member_axis=-n - 1,
                                      vector_axes=tuple(range(-n, 0)), norm=norm,
                                      fair=fair),
            forecast, truth, core_dims=[[member_dim, *vdims], vdims])
        return _labels.labelled(out, truth, "energy_score", _labels.variable_units(truth),
                                f"energy score of the ensemble for "
                                f"{_labels.variable_long_name(truth)}")
    x, y = _members_first(forecast, truth, member_axis, 2 if fair else 1)
    x, y, batch = _vector_layout(x, y, vector_axes)
    m, d = x.shape[0], x.shape[-1]
    scale = 1.0 / np.sqrt(d) if norm == "mean" else 1.0
    skill = np.linalg.norm(x - y, axis=-1).mean(axis=0) * scale
    pairs = np.zeros(y.shape[0])
    for i in range(m - 1):
        pairs += np.linalg.norm(x[i + 1:] - x[i], axis=-1).sum(axis=0)
    pairs *= 2 * scale
    c = 1.0 / (2 * m * (m - 1)) if fair else 1.0 / (2 * m * m)
    es = (skill - c * pairs).reshape(batch)
    return float(es) if es.ndim == 0 else es


def spread_skill_ratio(forecast: Any, truth: Any, *, member_axis: int = 0,
                       axis: int | Sequence[int] | None = None, member_dim: str = "member",
                       dim: str | Sequence[str] | None = None) -> Any:
    """Spread-skill ratio ``sqrt((M+1)/M) sqrt(<s^2>) / sqrt(<(xbar - y)^2>)``.

    Parameters
    ----------
    forecast : array (members on ``member_axis``) or DataArray
        The ensemble, ``M >= 2`` members.
    truth : array, shape of ``forecast`` without the member axis, or DataArray
    member_axis : int
        Member axis of an array ``forecast``.
    axis : int or sequence of int, optional
        Axes of ``truth`` averaged in ``< . >``; default all (a float).
    member_dim : str
        Member dim of a DataArray ``forecast``.
    dim : str or sequence of str, optional
        Dims of ``truth`` averaged, for DataArrays; default all.

    Returns
    -------
    ratio : float, numpy array, or DataArray (lazy on Dask)
        About 1 for a calibrated ensemble, below 1 when it is
        underdispersed (too little spread for its error).

    Notes
    -----
    ``s^2`` uses ``ddof=1``; with ``E s^2 = sigma^2`` and
    ``E (xbar - y)^2 = sigma^2 (1 + 1/M)`` for exchangeable members and
    truth, the factor ``sqrt((M+1)/M)`` makes the expected squared ratio
    one at any ``M``. The ratio is of mean squares, not a mean of ratios.
    """
    if _labels.is_xarray(forecast):
        member_dim = _check_xarray_pair(forecast, truth, member_dim)
        m = forecast.sizes[member_dim]
        if m < 2:
            raise ValueError(f"forecast has {m} member(s); the spread needs at least 2")
        if isinstance(dim, str):
            dim = [dim]
        if dim is not None:
            for d in dim:
                _labels.has_dim(truth, d, "truth", "dim")
        spread2 = forecast.var(member_dim, ddof=1).mean(dim)
        error2 = ((forecast.mean(member_dim) - truth) ** 2).mean(dim)
        out = np.sqrt((m + 1) / m) * np.sqrt(spread2) / np.sqrt(error2)
        return _labels.labelled(out, truth, "spread_skill_ratio", "1",
                                "spread-skill ratio of the ensemble for "
                                f"{_labels.variable_long_name(truth)}")
    x, y = _members_first(forecast, truth, member_axis, 2)
    m = x.shape[0]
    axes = None if axis is None else _truth_axes(axis, y)
    spread2 = x.var(axis=0, ddof=1).mean(axis=axes)
    error2 = ((x.mean(axis=0) - y) ** 2).mean(axis=axes)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.sqrt((m + 1) / m) * np.sqrt(spread2 / error2)
    return float(ratio) if np.ndim(ratio) == 0 else ratio


def _truth_axes(axis: Any, y: np.ndarray) -> tuple[int, ...]:
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not (
                -y.ndim <= a < y.ndim):
            raise ValueError(f"axis={axis!r} must be axes of truth (shape {y.shape})")
    return axes


def ensemble_rank(forecast: Any, truth: Any, *, member_axis: int = 0,
                  member_dim: str = "member", seed: int = 0) -> Any:
    """Rank of the truth among the members, ``#{i : x_i < y}`` in ``0 .. M``.

    Ties (members equal to the truth) are split at random: the rank is
    ``#{x_i < y} + U`` with ``U`` uniform on ``0 .. #{x_i = y}``, drawn
    from ``numpy.random.default_rng(seed)`` (on Dask, per chunk).

    Parameters
    ----------
    forecast, truth, member_axis, member_dim
        As in :func:`crps_ensemble`.
    seed : int
        Seed of the tie-breaking draws.

    Returns
    -------
    rank : numpy int64 array, shape of ``truth``, or DataArray (lazy on Dask)
    """
    if _labels.is_xarray(forecast):
        member_dim = _check_xarray_pair(forecast, truth, member_dim)
        out = _labels.apply(
            lambda x, y: ensemble_rank(x, y, member_axis=-1, seed=seed),
            forecast, truth, core_dims=[[member_dim], []], output_dtype=np.int64)
        return _labels.labelled(out, truth, "rank", "1",
                                f"rank of {_labels.variable_long_name(truth)} among the "
                                "ensemble members")
    x, y = _members_first(forecast, truth, member_axis, 1)
    below = (x < y).sum(axis=0)
    ties = (x == y).sum(axis=0)
    if np.any(ties):
        rng = np.random.default_rng(seed)
        below = below + rng.integers(0, ties + 1)
    return below.astype(np.int64)


@dataclass(frozen=True)
class RankHistogram:
    """Counts of the truth's rank and the chi-square test of their flatness.

    Attributes
    ----------
    counts : numpy int64 array, shape ``(M + 1,)``
        ``counts[k]`` is the number of points whose truth has rank ``k``.
    chi2 : float
        ``sum_k (n_k - e)^2 / e`` with ``e = n / (M + 1)``.
    dof : int
        Degrees of freedom, ``M``.
    p_value : float
        ``P(chi2_M >= chi2)``: small when the histogram is not flat.
    """

    counts: np.ndarray
    chi2: float
    dof: int
    p_value: float

    @property
    def frequencies(self) -> np.ndarray:
        """``counts / sum(counts)``."""
        return self.counts / self.counts.sum()


def rank_histogram(forecast: Any, truth: Any, *, member_axis: int = 0,
                   member_dim: str = "member", seed: int = 0) -> RankHistogram:
    """Rank histogram of the truth among the members, with its flatness test.

    Parameters
    ----------
    forecast, truth, member_axis, member_dim, seed
        As in :func:`ensemble_rank`; every point of ``truth`` is counted.

    Returns
    -------
    RankHistogram
        Flat (large ``p_value``) for a calibrated ensemble, U-shaped for an
        underdispersed one, dome-shaped for an overdispersed one, sloped
        for a biased one.

    Warnings
    --------
    The chi-square test assumes independent ranks. Neighbouring points of
    one field are correlated, which makes the test reject too often; use
    points far apart, or independent cases, for a p-value that means
    what it says.

    Examples
    --------
    >>> import numpy as np
    >>> h = rank_histogram(np.array([[0.0, 0.0], [2.0, 2.0]]), np.array([1.0, 3.0]))
    >>> h.counts.tolist()
    [0, 1, 1]
    """
    if _labels.is_xarray(forecast):
        member_dim = _check_xarray_pair(forecast, truth, member_dim)
        m = forecast.sizes[member_dim]
        ranks = np.asarray(ensemble_rank(forecast, truth, member_dim=member_dim,
                                         seed=seed).values)
    else:
        x, _ = _members_first(forecast, truth, member_axis, 1)
        m = x.shape[0]
        ranks = ensemble_rank(forecast, truth, member_axis=member_axis, seed=seed)
    from scipy.stats import chi2 as chi2_distribution

    counts = np.bincount(np.ravel(ranks), minlength=m + 1).astype(np.int64)
    expected = counts.sum() / (m + 1)
    stat = float(np.sum((counts - expected) ** 2) / expected)
    return RankHistogram(counts=counts, chi2=stat, dof=m,
                         p_value=float(chi2_distribution.sf(stat, m)))
