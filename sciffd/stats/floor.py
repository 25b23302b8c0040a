"""The noise floor of a metric, and thresholds stated as multiples of it.

A metric ``D(A, B)`` between two finite samples is not zero even when both
come from the same law: its value between two independent samples of the
truth, of the size the check uses, is the noise floor

    floor = D(A_1, A_2),    A_1, A_2 ~ truth, |A_1| = |A_2| = M.

Every threshold of sciffd is stated against it: a model passes when
``D(model, truth) <= c floor`` for a stated factor ``c``
(:func:`within_floor`). The uncertainty of the floor itself is given by
a percentile bootstrap (Efron and Tibshirani 1993, ch. 13): both samples
are resampled with replacement along their member axis ``n_boot`` times
and ``D`` recomputed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from . import _labels

__all__ = ["FloorCheck", "NoiseFloor", "noise_floor", "within_floor"]


@dataclass(frozen=True)
class NoiseFloor:
    """A metric's value between two independent truth samples, with a bootstrap interval.

    Attributes
    ----------
    value : float or numpy array
        ``D(truth_a, truth_b)`` on the full samples.
    low, high : float or numpy array
        The percentile-bootstrap interval at level ``confidence``.
    confidence : float
        Level of the interval, e.g. 0.95.
    replicates : numpy array, shape ``(n_boot, ...)``
        The bootstrap values of ``D``.
    """

    value: Any
    low: Any
    high: Any
    confidence: float
    replicates: np.ndarray

    @property
    def n_boot(self) -> int:
        """Number of bootstrap replicates."""
        return int(self.replicates.shape[0])


class FloorCheck(NamedTuple):
    """Result of :func:`within_floor`: ``ratio = value / floor`` and ``passed = ratio <= c``."""

    ratio: Any
    passed: Any


def _member_count(x: Any, member_axis: int, member_dim: str, name: str) -> int:
    if _labels.is_xarray(x):
        _labels.has_dim(x, member_dim, name, "member_dim")
        return int(x.sizes[member_dim])
    shape = getattr(x, "shape", None)
    if shape is None:
        raise TypeError(f"{name} must be an array or DataArray, got {type(x).__name__}")
    if len(shape) == 0 or not -len(shape) <= member_axis < len(shape):
        raise ValueError(
            f"member_axis={member_axis} is out of range for {name} of shape {tuple(shape)}"
        )
    return int(shape[member_axis])


def _take(x: Any, index: np.ndarray, member_axis: int, member_dim: str) -> Any:
    if _labels.is_xarray(x):
        return x.isel({member_dim: index})
    from array_api_compat import array_namespace

    xp = array_namespace(x)
    if xp.__name__.endswith("numpy"):
        return np.take(x, index, axis=member_axis)
    return xp.take(x, xp.asarray(index, device=getattr(x, "device", None)),
                   axis=member_axis % x.ndim)


def _metric_value(metric: Callable, a: Any, b: Any) -> np.ndarray:
    value = metric(a, b)
    if _labels.is_xarray(value):
        value = value.values
    from ..backend import to_numpy

    return np.asarray(to_numpy(value) if hasattr(value, "shape") else value,
                      dtype=np.float64)


def noise_floor(metric: Callable[[Any, Any], Any], truth_a: Any, truth_b: Any,
                n_boot: int = 200, seed: int = 0, *, confidence: float = 0.95,
                member_axis: int = 0, member_dim: str = "member") -> NoiseFloor:
    """The noise floor ``D(truth_a, truth_b)`` of a metric, with a bootstrap interval.

    Parameters
    ----------
    metric : callable ``(a, b) -> float or array``
        Any metric between two samples, for example
        ``lambda a, b: energy_distance(a, b)``; it receives subsets of
        ``truth_a`` and ``truth_b`` of the same type.
    truth_a, truth_b : arrays or DataArrays
        Two independent samples of the truth, of the same size along their
        member axis (the size of the sample the metric is used on).
    n_boot : int
        Bootstrap replicates (at least 1; 200 or more for a 95 % interval).
    seed : int
        Seed of the resampling (``numpy.random.default_rng``).
    confidence : float
        Level of the percentile interval, in ``(0, 1)``.
    member_axis : int
        Member axis of array inputs.
    member_dim : str
        Member dim of DataArray inputs.

    Returns
    -------
    NoiseFloor

    Warnings
    --------
    Resampling with replacement repeats members, which biases metrics that
    reward diversity; the interval describes the spread of the floor, not
    an unbiased correction of it.

    Examples
    --------
    >>> import numpy as np
    >>> from sciffd.stats import wasserstein1
    >>> rng = np.random.default_rng(0)
    >>> f = noise_floor(wasserstein1, rng.normal(size=500), rng.normal(size=500), n_boot=50)
    >>> bool(f.low <= f.high), bool(0 < f.value < 0.3)
    (True, True)
    """
    if not callable(metric):
        raise TypeError(f"metric must be a callable (a, b) -> float, got {type(metric).__name__}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot={n_boot!r} must be a positive integer")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed={seed!r} must be an integer")
    if not isinstance(confidence, (int, float, np.floating)) or not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence!r} must lie strictly between 0 and 1")
    if isinstance(member_axis, bool) or not isinstance(member_axis, (int, np.integer)):
        raise TypeError(f"member_axis={member_axis!r} must be an integer")
    _labels.check_dim_name(member_dim, "member_dim")
    n_a = _member_count(truth_a, member_axis, member_dim, "truth_a")
    n_b = _member_count(truth_b, member_axis, member_dim, "truth_b")
    if n_a != n_b:
        raise ValueError(
            f"truth_a has {n_a} members and truth_b {n_b}; a noise floor compares two "
            "samples of the same size (the size the metric is used on)"
        )
    if n_a < 2:
        raise ValueError(f"truth_a and truth_b have {n_a} member(s); need at least 2")

    value = _metric_value(metric, truth_a, truth_b)
    rng = np.random.default_rng(int(seed))
    replicates = []
    for _ in range(int(n_boot)):
        ia = rng.integers(0, n_a, n_a)
        ib = rng.integers(0, n_b, n_b)
        replicates.append(_metric_value(
            metric, _take(truth_a, ia, member_axis, member_dim),
            _take(truth_b, ib, member_axis, member_dim)))
    replicates = np.stack(replicates)
    alpha = (1 - float(confidence)) / 2
    low, high = np.quantile(replicates, [alpha, 1 - alpha], axis=0)

    def scalar(v: np.ndarray) -> Any:
        return float(v) if np.ndim(v) == 0 else v

    return NoiseFloor(value=scalar(value), low=scalar(low), high=scalar(high),
                      confidence=float(confidence), replicates=replicates)


def within_floor(value: Any, floor: NoiseFloor | float, factor: float, *,
                 bound: str = "value") -> FloorCheck:
    """Whether a metric is within ``factor`` times its noise floor.

    Parameters
    ----------
    value : float or array
        The metric between the model and the truth, ``D(model, truth)``.
    floor : NoiseFloor or float or array
        The floor, from :func:`noise_floor`, or a positive number.
    factor : float
        ``c``: the check passes when ``value <= c * floor``.
    bound : {"value", "high"}
        Which floor of a :class:`NoiseFloor` to use: its value, or the
        upper end of its interval (more lenient).

    Returns
    -------
    FloorCheck
        ``(ratio, passed)`` with ``ratio = value / floor`` and
        ``passed = ratio <= factor``; floats and a bool for scalars,
        arrays elementwise.

    Examples
    --------
    >>> within_floor(0.03, 0.02, 2.0)
    FloorCheck(ratio=1.5, passed=True)
    """
    if bound not in ("value", "high"):
        raise ValueError(f"bound={bound!r} is not supported; expected 'value' or 'high'")
    if isinstance(floor, NoiseFloor):
        floor = floor.value if bound == "value" else floor.high
    if isinstance(factor, bool) or not isinstance(factor, (int, float, np.integer,
                                                           np.floating)):
        raise TypeError(f"factor={factor!r} must be a number")
    if not (np.isfinite(factor) and factor > 0):
        raise ValueError(f"factor={factor!r} must be finite and positive")
    f = np.asarray(floor, dtype=np.float64)
    v = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(f)) or np.any(f <= 0):
        raise ValueError(
            f"floor={floor!r} must be finite and positive; a zero floor cannot scale a "
            "threshold (compare larger samples, or state an absolute tolerance)"
        )
    if not np.all(np.isfinite(v)):
        raise ValueError(f"value={value!r} must be finite")
    ratio = v / f
    passed = ratio <= factor
    if ratio.ndim == 0:
        return FloorCheck(float(ratio), bool(passed))
    return FloorCheck(ratio, passed)
