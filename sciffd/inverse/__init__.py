"""Inverse problems: observation operators and conditional sampling.

Observations ``y = H u + eta`` of a field (sparse sensors, a masked region,
a coarse grid, a blurred image, any linear measurement) with Gaussian noise
``eta ~ N(0, R)`` are described on the function, not on a pixel grid, so
one posterior can be drawn at any resolution:

- :mod:`~sciffd.inverse.operators`: the operators ``H``;
- :mod:`~sciffd.inverse.observations`: the noise ``R`` and the bundle of
  operator, values and noise (read from and written to xarray);
- :mod:`~sciffd.inverse.exact`: the exact Gaussian posterior, the
  reference every conditional sampler is tested against;
- :mod:`~sciffd.inverse.conditional`: conditional samplers for any score
  model (diffusion posterior sampling, moment-matched guidance,
  replacement) and the summary of a posterior ensemble.
"""

from __future__ import annotations

from .conditional import (
    DPS,
    METHODS,
    EnsembleSummary,
    GuidedModel,
    MomentMatching,
    Replacement,
    condition,
    conjugate_gradient,
    summarize,
    tweedie_covariance,
)
from .exact import GaussianPosterior, exact_posterior, grid_covariance
from .observations import ObservationNoise, Observations
from .operators import (
    Blur,
    CoarseGrain,
    LinearOperator,
    MaskObservation,
    ObservationOperator,
    PointObservation,
    operator_from_config,
)

__all__ = [
    "DPS",
    "METHODS",
    "Blur",
    "CoarseGrain",
    "EnsembleSummary",
    "GuidedModel",
    "GaussianPosterior",
    "LinearOperator",
    "MaskObservation",
    "MomentMatching",
    "ObservationNoise",
    "ObservationOperator",
    "Observations",
    "PointObservation",
    "Replacement",
    "condition",
    "conjugate_gradient",
    "exact_posterior",
    "grid_covariance",
    "operator_from_config",
    "summarize",
    "tweedie_covariance",
]
