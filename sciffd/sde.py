"""Forward noising processes in function space.

The variance-preserving (VP) process noises a field ``u_0`` with a
Gaussian measure ``N(0, C)``:

    u_t = a(t) u_0 + s(t) xi,      xi ~ N(0, C),      a^2 + s^2 = 1,

the marginal of the SDE ``du = -1/2 beta(t) u dt + sqrt(beta(t)) C^(1/2) dW``
with ``beta = -2 d log a / dt``. Two schedules are provided:

- :class:`LinearSchedule`: ``beta(t) = beta_min + t (beta_max - beta_min)``,
  ``a(t) = exp(-1/2 int_0^t beta)`` (Song et al. 2021, arXiv:2011.13456);
- :class:`CosineSchedule`: ``a(t) = cos(pi/2 (t+s)/(1+s)) / cos(pi/2 s/(1+s))``
  (Nichol and Dhariwal 2021, arXiv:2102.09672).

The C-preconditioned score of the noised measure,
``C grad log p_t(u) = -E[xi | u_t = u] / s(t) = (a(t) E[u_0 | u_t = u] - u) / s(t)^2``,
is well defined in function space; :mod:`sciffd.models` converts between it,
the denoiser ``E[u_0 | u_t]`` and the noise prediction ``E[xi | u_t]``.
Times run over ``[t_min, t_max]``; ``sigma(t) = s(t) / a(t)`` is the EDM noise
level of the rescaled field ``u_t / a(t) = u_0 + sigma xi``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CosineSchedule", "LinearSchedule", "VPProcess"]


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}={value!r} must be a real number")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}={value!r} must be finite")
    return value


def _lib(t: Any):
    """Elementwise math for python floats, numpy and torch arrays."""
    if isinstance(t, (int, float, np.floating, np.integer)):
        return np
    module = type(t).__module__
    if module.startswith("torch"):
        import torch

        return torch
    return np


@dataclass(frozen=True)
class LinearSchedule:
    """``beta(t) = beta_min + t (beta_max - beta_min)`` on ``t in [0, 1]``."""

    beta_min: float = 0.1
    beta_max: float = 20.0

    def __post_init__(self) -> None:
        lo, hi = _number(self.beta_min, "beta_min"), _number(self.beta_max, "beta_max")
        if not 0 < lo < hi:
            raise ValueError(
                f"LinearSchedule needs 0 < beta_min < beta_max, got beta_min={lo}, beta_max={hi}"
            )

    t_max = 1.0

    def log_a(self, t: Any) -> Any:
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def beta(self, t: Any) -> Any:
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def time_of_log_a(self, log_a: Any) -> Any:
        """Inverse of :meth:`log_a` (the root in ``[0, inf)``)."""
        lib = _lib(log_a)
        d = self.beta_max - self.beta_min
        b = self.beta_min
        return (-b + lib.sqrt(b * b - 4 * d * log_a)) / d


@dataclass(frozen=True)
class CosineSchedule:
    """``a(t) = cos(pi/2 (t+s)/(1+s)) / cos(pi/2 s/(1+s))`` on ``t in [0, t_max]``.

    ``t_max`` (default 0.98, where ``a^2 = 1e-3``) keeps ``beta(t)``, which
    diverges at ``t = 1``, finite.
    """

    s: float = 0.008
    t_max: float = 0.98

    def __post_init__(self) -> None:
        if not 0 <= _number(self.s, "s") < 1:
            raise ValueError(f"CosineSchedule needs 0 <= s < 1, got s={self.s}")
        if not 0 < _number(self.t_max, "t_max") < 1:
            raise ValueError(f"CosineSchedule needs 0 < t_max < 1, got t_max={self.t_max}")

    def _phase(self, t: Any) -> Any:
        return 0.5 * math.pi * (t + self.s) / (1 + self.s)

    def log_a(self, t: Any) -> Any:
        lib = _lib(t)
        return lib.log(lib.cos(self._phase(t))) - math.log(math.cos(self._phase(0.0)))

    def beta(self, t: Any) -> Any:
        lib = _lib(t)
        return math.pi / (1 + self.s) * lib.tan(self._phase(t))

    def time_of_log_a(self, log_a: Any) -> Any:
        lib = _lib(log_a)
        c = lib.exp(log_a) * math.cos(self._phase(0.0))
        arccos = np.arccos if lib is np else lib.acos
        return arccos(c) * 2 * (1 + self.s) / math.pi - self.s


@dataclass(frozen=True)
class VPProcess:
    """The variance-preserving process ``u_t = a(t) u_0 + s(t) xi`` with a schedule.

    Parameters
    ----------
    schedule : LinearSchedule or CosineSchedule
        The noise schedule (default linear, ``beta`` from 0.1 to 20).
    t_min : float
        Smallest time a sampler integrates to (default ``1e-3``).

    Examples
    --------
    >>> p = VPProcess()
    >>> round(float(p.a(0.5) ** 2 + p.s(0.5) ** 2), 12)
    1.0
    """

    schedule: LinearSchedule | CosineSchedule = LinearSchedule()
    t_min: float = 1e-3

    def __post_init__(self) -> None:
        if not isinstance(self.schedule, (LinearSchedule, CosineSchedule)):
            raise TypeError(
                f"schedule must be a LinearSchedule or CosineSchedule, got {self.schedule!r}"
            )
        if not 0 < _number(self.t_min, "t_min") < self.schedule.t_max:
            raise ValueError(
                f"t_min={self.t_min} must lie in (0, t_max={self.schedule.t_max})"
            )

    @property
    def t_max(self) -> float:
        return self.schedule.t_max

    def a(self, t: Any) -> Any:
        """Signal scale ``a(t)``."""
        return _lib(t).exp(self.schedule.log_a(t))

    def s(self, t: Any) -> Any:
        """Noise scale ``s(t) = sqrt(1 - a(t)^2)``."""
        lib = _lib(t)
        return lib.sqrt(-lib.expm1(2 * self.schedule.log_a(t)))

    def sigma(self, t: Any) -> Any:
        """EDM noise level ``s(t) / a(t)``."""
        lib = _lib(t)
        return lib.sqrt(lib.expm1(-2 * self.schedule.log_a(t)))

    def time_of_sigma(self, sigma: Any) -> Any:
        """The time ``t`` with ``s(t)/a(t) = sigma``."""
        lib = _lib(sigma)
        log_a = -0.5 * lib.log1p(sigma**2)
        return self.schedule.time_of_log_a(log_a)

    def beta(self, t: Any) -> Any:
        """``beta(t) = -2 d log a / dt``."""
        return self.schedule.beta(t)

    def marginal(self, u0: Any, t: Any, xi: Any) -> Any:
        """``a(t) u_0 + s(t) xi`` with ``xi`` a draw of ``N(0, C)``."""
        return self.a(t) * u0 + self.s(t) * xi

    def to_config(self) -> dict:
        """A JSON-ready description of the process."""
        sch = self.schedule
        if isinstance(sch, LinearSchedule):
            cfg = {"kind": "linear", "beta_min": sch.beta_min, "beta_max": sch.beta_max}
        else:
            cfg = {"kind": "cosine", "s": sch.s, "t_max": sch.t_max}
        return {"process": "vp", "schedule": cfg, "t_min": self.t_min}

    @classmethod
    def from_config(cls, config: dict) -> VPProcess:
        """Inverse of :meth:`to_config`."""
        if not isinstance(config, dict) or config.get("process") != "vp":
            raise ValueError(f"not a VP process configuration: {config!r}")
        sch = config.get("schedule")
        if not isinstance(sch, dict) or "kind" not in sch:
            raise ValueError(
                f"VP process configuration {config!r} needs a 'schedule' entry with a 'kind'"
            )
        sch = dict(sch)
        kind = sch.pop("kind")
        if kind == "linear":
            schedule = LinearSchedule(**sch)
        elif kind == "cosine":
            schedule = CosineSchedule(**sch)
        else:
            raise ValueError(f"unknown schedule kind {kind!r}; expected 'linear' or 'cosine'")
        return cls(schedule=schedule, t_min=config.get("t_min", 1e-3))
