"""Checks: a property, the value it measured, its tolerance and the reason for it.

Every check of the suite is a :class:`CheckResult`: the measured value,
the threshold it was held to, the tolerance written out (a confidence
bound, or "within c times the noise floor") and why that tolerance is the
right one. The builders below make the three kinds the suite uses:

- :func:`upper_check` / :func:`interval_check`: a value against a bound
  computed from statistics (a chi-square or normal quantile) or from
  numerical analysis (float rounding);
- :func:`floor_check`: a distance between model and truth against ``c``
  times its noise floor, the same distance between two independent truth
  samples (:func:`sciffd.stats.noise_floor`).

Statistical bounds hold with probability ``1 - alpha`` for a correct
model; a check made of several tests splits ``alpha`` between them
(Bonferroni), so that ``alpha`` bounds the false-alarm rate of each check.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..stats import NoiseFloor

__all__ = [
    "CheckResult",
    "chi2_interval",
    "chi2_upper",
    "floor_check",
    "interval_check",
    "jsonable",
    "upper_check",
]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    Attributes
    ----------
    name : str
        A short identifier, unique in a report (``"gaussian.heun.mode_variance"``).
    title : str
        What is checked, in words.
    group : str
        The part of the report it belongs to (``"exact gaussian"``, ...).
    passed : bool
    value : float
        The measured value (NaN when it could not be measured).
    threshold : str
        The bound it was held to, e.g. ``"<= 0.031"`` or ``"in [0.93, 1.07]"``.
    tolerance : str
        How the bound was made (``"2 x noise floor, upper end of its 95 %
        interval"``, ``"chi-square, alpha = 1e-3"``).
    reason : str
        Why that tolerance is the right one.
    details : dict
        JSON-ready numbers behind the check (per band, per resolution, ...).
    """

    name: str
    title: str
    group: str
    passed: bool
    value: float
    threshold: str
    tolerance: str
    reason: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A JSON-ready dict of the result."""
        return {"name": self.name, "title": self.title, "group": self.group,
                "passed": bool(self.passed), "value": jsonable(self.value),
                "threshold": self.threshold, "tolerance": self.tolerance,
                "reason": self.reason, "details": jsonable(dict(self.details))}


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars and arrays turned into Python numbers and lists.

    Non-finite floats become the strings ``"nan"``, ``"inf"``, ``"-inf"``
    (JSON has no such numbers).
    """
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else str(value)
    return obj


def _finite(value: Any) -> bool:
    return value is not None and bool(np.all(np.isfinite(np.asarray(value, dtype=float))))


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def upper_check(name: str, title: str, group: str, value: float, bound: float, *,
                tolerance: str, reason: str, details: Mapping[str, Any] | None = None
                ) -> CheckResult:
    """``value <= bound``; a non-finite value fails."""
    value = float(value)
    passed = _finite(value) and value <= bound
    return CheckResult(name, title, group, bool(passed), value, f"<= {_fmt(bound)}",
                       tolerance, reason, dict(details or {}))


def interval_check(name: str, title: str, group: str, value: float, low: float,
                   high: float, *, tolerance: str, reason: str,
                   details: Mapping[str, Any] | None = None) -> CheckResult:
    """``low <= value <= high``; a non-finite value fails."""
    value = float(value)
    passed = _finite(value) and low <= value <= high
    return CheckResult(name, title, group, bool(passed), value,
                       f"in [{_fmt(low)}, {_fmt(high)}]", tolerance, reason,
                       dict(details or {}))


def floor_check(name: str, title: str, group: str, value: float, floor: NoiseFloor,
                factor: float, *, reason: str, details: Mapping[str, Any] | None = None
                ) -> CheckResult:
    """``value <= factor * floor.high``: within ``c`` times the noise floor.

    The upper end of the floor's bootstrap interval is used, not the
    floor's own value: one draw of the floor can be small by chance (a
    difference of two flatnesses can be near zero), and a threshold made
    from it would fail correct models too often.
    """
    details = dict(details or {})
    details.update(floor=floor.value, floor_low=floor.low, floor_high=floor.high,
                   confidence=floor.confidence, factor=factor)
    high = float(floor.high)
    tolerance = (f"{factor:g} x noise floor (floor {_fmt(float(floor.value))}, "
                 f"{100 * floor.confidence:.0f} % bootstrap interval "
                 f"[{_fmt(float(floor.low))}, {_fmt(high)}]; the upper end is used)")
    value = float(value)
    if not (math.isfinite(high) and high > 0):
        return CheckResult(name, title, group, False, value, "undefined", tolerance,
                           reason + " (the floor is zero or undefined: the truth samples "
                           "are too small or identical)", details)
    bound = factor * high
    passed = _finite(value) and value <= bound
    details["ratio"] = value / high if _finite(value) else float("nan")
    return CheckResult(name, title, group, bool(passed), value, f"<= {_fmt(bound)}",
                       tolerance, reason, details)


def chi2_interval(dof: float, alpha: float) -> tuple[float, float]:
    """The two-sided ``1 - alpha`` interval of ``chi2_dof / dof``."""
    from scipy.stats import chi2

    return (float(chi2.ppf(alpha / 2, dof) / dof), float(chi2.isf(alpha / 2, dof) / dof))


def chi2_upper(dof: float, alpha: float) -> float:
    """The one-sided ``1 - alpha`` quantile of ``chi2_dof``."""
    from scipy.stats import chi2

    return float(chi2.isf(alpha, dof))
