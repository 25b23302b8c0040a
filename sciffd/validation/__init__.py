"""The validation suite: properties of models, samplers and ensembles, with a report.

A check is a property with a stated tolerance and its reason: a
confidence bound (chi-square, F, normal) for quantities with a known law,
or "within ``c`` times the noise floor" for distances to data, where the
floor is the same distance between two independent truth samples. The
suite has three targets:

1. the exact models (:class:`~sciffd.models.GaussianScore`,
   :class:`~sciffd.models.GaussianMixtureScore`) with the samplers, where
   every answer is known: per-mode variance and mean (closed form for the
   Gaussian, :func:`~sciffd.validation.exact.sampler_law`), mixture weights
   (:func:`validate_exact`);
2. a model against its dataset: spectra on ``n <= N/3``, pointwise PDF,
   flatness, variance and mean against noise floors, and discretisation
   invariance with nested noise at the model's grid and its refinements
   (:func:`validate_model`);
3. an ensemble file against a reference file: ensemble scores against a
   member-wise truth, else the distributional checks (:func:`validate_ensemble`).

Properties that range over inputs (seeds, member subsets, pairs of
resolutions) are checked on examples drawn by hypothesis
(:mod:`.properties`). Levels (:data:`QUICK`, :data:`FULL`) only change
sizes. :func:`write_report` writes ``metrics.json``, PNG figures and
``report.md``; the command is ``sciffd validate``.

Examples
--------
>>> from sciffd.validation import QUICK, validate_exact
>>> tiny = QUICK.replace(exact_resolution=16, exact_members=16, exact_seeds=1,
...                      heun_steps=8, em_steps=16, exact_resolutions=(16, 32),
...                      resolution_pairs=1, subset_examples=1, n_boot=10)
>>> report = validate_exact("gaussian", tiny)
>>> report.check("gaussian.heun.mode_variance").passed
True
"""

from __future__ import annotations

from .checks import CheckResult
from .exact import ExactProblem, exact_problem, gaussian_problem, mixture_problem, sampler_law
from .levels import FULL, LEVELS, QUICK, Level, get_level
from .report import Figure, Report, write_report
from .runner import reference_fields, validate_ensemble, validate_exact, validate_model

__all__ = [
    "FULL",
    "LEVELS",
    "QUICK",
    "CheckResult",
    "ExactProblem",
    "Figure",
    "Level",
    "Report",
    "exact_problem",
    "gaussian_problem",
    "get_level",
    "mixture_problem",
    "reference_fields",
    "sampler_law",
    "validate_ensemble",
    "validate_exact",
    "validate_model",
    "write_report",
]
