"""Deliberately broken models: the validation suite must fail each of them.

Each broken model differs from the exact Gaussian model in one way
(tests/validation_cases.py), and each test names the checks that must
catch it, so that a check which stopped working is noticed:

- wrong noise scale: the exact denoiser sampled from noise of twice the
  standard deviation (the start field of the sampler has 4x the variance),
  or the exact model of ``N(m, 1.5 Q)`` in place of ``N(m, Q)``;
- a resolution-dependent output: the denoiser rescaled by ``N / N_0``;
- white process noise: the exact denoiser with ``WhiteNoise`` as the noise
  the sampler draws, whose pointwise variance diverges with ``N``.

tests/test_validation.py shows that the right models pass the same checks.
"""

from __future__ import annotations

import pytest
from validation_cases import (
    TINY,
    Wrapped,
    field_model,
    reference,
    resolution_dependent,
    scaled_covariance,
    white_noise,
    wrong_start,
)

from sciffd.validation import mixture_problem, validate_exact, validate_model


def _failed(report) -> set[str]:
    return {c.name for c in report.failed}


@pytest.mark.parametrize("make", [wrong_start, scaled_covariance],
                         ids=["wrong-start-variance", "covariance-x1.5"])
def test_wrong_noise_scale_fails_the_per_mode_variance(make):
    report = validate_exact("gaussian", TINY, model=make())
    assert not report.passed
    assert {"gaussian.heun.mode_variance", "gaussian.em.mode_variance"} <= _failed(report)
    # the sampler and the resolutions are not to blame: those checks still pass
    assert "gaussian.heun.discretisation" not in _failed(report)
    assert "gaussian.invariance.low_modes" not in _failed(report)


def test_wrong_noise_scale_fails_against_data():
    report = validate_model(field_model(wrong_start(), 32), reference(32), TINY)
    assert {"gauss.data.variance", "gauss.data.spectrum"} <= _failed(report)
    report = validate_model(field_model(scaled_covariance(), 32), reference(32), TINY)
    assert "gauss.data.variance" in _failed(report)


def test_resolution_dependent_output_fails_the_invariance_checks():
    base = TINY.exact_resolution
    report = validate_exact("gaussian", TINY, model=resolution_dependent(base))
    failed = _failed(report)
    # right at its own resolution ...
    assert "gaussian.heun.mode_variance" not in failed
    # ... and wrong at every other one
    assert {"gaussian.invariance.spectra", "gaussian.invariance.restriction",
            "gaussian.invariance.low_modes", "gaussian.invariance.variance",
            "gaussian.resolution_pairs"} <= failed


def test_resolution_dependent_model_fails_against_data_at_refinements():
    report = validate_model(field_model(resolution_dependent(32), 32), reference(32), TINY)
    failed = _failed(report)
    assert not any(name.startswith("gauss.data.") for name in failed)
    assert {"gauss.invariance.spectra", "gauss.invariance.low_modes",
            "gauss.invariance.variance"} <= failed


def test_white_process_noise_fails_the_variance_convergence():
    base = TINY.exact_resolution
    report = validate_exact("gaussian", TINY, model=white_noise(base))
    failed = _failed(report)
    assert {"gaussian.invariance.variance", "gaussian.invariance.mean_square",
            "gaussian.heun.mode_variance"} <= failed
    change = report.check("gaussian.invariance.variance").details["steps"]
    # the pointwise variance grows at every refinement
    assert all(step["relative_change"] > 0.5 for step in change)


def test_white_noise_model_fails_against_data_and_across_resolutions():
    report = validate_model(field_model(white_noise(32), 32), reference(32), TINY)
    failed = _failed(report)
    assert {"gauss.invariance.variance", "gauss.invariance.mean_square"} <= failed
    values = report.check("gauss.invariance.variance").details["values"]
    assert values[0] < values[1] < values[2]


def test_mixture_with_resolution_dependent_output_fails():
    broken = Wrapped(mixture_problem().truth, rescale_from=TINY.exact_resolution)
    report = validate_exact("mixture", TINY, model=broken)
    assert {"mixture.invariance.spectra", "mixture.invariance.low_modes",
            "mixture.resolution_pairs"} <= _failed(report)
    assert "mixture.heun.weights" not in _failed(report)
