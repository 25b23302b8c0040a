"""Tests of the validation suite (sciffd.validation): right models pass, reports are whole.

What makes the checks trustworthy is tested against known answers:

- ``sampler_law`` (the closed-form law of a sampler on Gaussian data)
  against the exact probability-flow ODE and reverse SDE in the limit of
  many steps, with their convergence orders (2 for Heun, 1 for
  Euler-Maruyama);
- the exact models, a Gaussian model against exact draws of its law, and
  calibrated ensembles pass every check (so the checks are not vacuous
  in the other direction: tests/test_validation_broken.py fails broken ones);
- the report holds every check, consistent JSON, and the figures it links.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.integrate import quad
from validation_cases import (
    TINY,
    ensemble_and_truth,
    field_model,
    reference,
    truth,
)

from sciffd.grids import torus
from sciffd.sampling import EulerMaruyama, Heun
from sciffd.stats import NoiseFloor
from sciffd.validation import (
    FULL,
    QUICK,
    Level,
    get_level,
    reference_fields,
    sampler_law,
    validate_ensemble,
    validate_exact,
    validate_model,
    write_report,
)
from sciffd.validation.checks import chi2_interval, floor_check, jsonable, upper_check
from sciffd.validation.properties import (
    MemberSubsets,
    ResolutionPairs,
    Seeds,
    draw_examples,
)


# -- the closed-form sampler law -------------------------------------------------------
def _ode_limit(model, grid):
    """Exact flow from N(0, s(T)^2 c): ``u - a m`` scales by ``sqrt(lambda(t) / lambda(T))``."""
    p = model.process
    T, t0 = p.t_max, p.t_min
    lam = model.marginal_eigenvalues
    ok = grid.nyquist_mask
    r = np.sqrt(np.where(ok, lam(t0, grid), 0) / np.where(ok, lam(T, grid), 1))
    g = model.gain(t0, grid)
    m = np.fft.rfft2(model.mean(grid)[0], norm="forward")
    var = g**2 * float(p.s(T)) ** 2 * model.noise.eigenvalues(grid) * r**2
    return m - g * float(p.a(T)) * m * r, var


def test_heun_law_tends_to_the_exact_flow_at_second_order():
    model, grid = truth(), torus(16)
    mean, var = _ode_limit(model, grid)
    ok = var > 0
    errors = []
    for steps in (250, 1000):
        mu, v = sampler_law(model, Heun(steps=steps), grid)
        errors.append(np.abs(v[ok] / var[ok] - 1).max())
        np.testing.assert_allclose(mu[0][ok], mean[ok], rtol=0,
                                   atol=10 * errors[-1] * np.abs(mean).max())
    # the error of a second-order method falls 16-fold for 4x the steps
    order = math.log(errors[0] / errors[1]) / math.log(4)
    assert 1.8 < order < 2.2
    assert errors[1] < 2e-5


def test_euler_maruyama_law_tends_to_the_exact_reverse_sde_at_first_order():
    """Per mode, the deviation of the variance from lambda(t) decays by
    ``(lambda(t_min) / lambda(T)) exp(-int beta c / lambda dt)``."""
    model, grid = truth(), torus(16)
    p = model.process
    T, t0 = p.t_max, p.t_min
    q, c = model.data.eigenvalues(grid), model.noise.eigenvalues(grid)
    g = model.gain(t0, grid)
    modes = [(1, 2), (0, 3), (5, 5)]
    exact = []
    for k in modes:
        def lam(t, k=k):
            return float(p.a(t)) ** 2 * q[k] + float(p.s(t)) ** 2 * c[k]
        decay = math.exp(-quad(lambda t, k=k: float(p.beta(t)) * c[k] / lam(t), t0, T,
                               limit=200)[0])
        start_error = float(p.s(T)) ** 2 * c[k] - lam(T)
        exact.append(g[k] ** 2 * (lam(t0) + start_error * lam(t0) / lam(T) * decay))
    errors = []
    for steps in (1000, 4000):
        _, v = sampler_law(model, EulerMaruyama(steps=steps, spacing="uniform"), grid)
        errors.append(max(abs(v[k] / e - 1) for k, e in zip(modes, exact, strict=True)))
    order = math.log(errors[0] / errors[1]) / math.log(4)
    assert 0.85 < order < 1.15
    assert errors[1] < 1e-3


def test_sampler_law_refuses_other_models_and_samplers():
    with pytest.raises(TypeError, match="GaussianScore"):
        sampler_law(object(), Heun(steps=2), torus(8))
    with pytest.raises(TypeError, match="Heun or EulerMaruyama"):
        sampler_law(truth(), "heun", torus(8))


# -- right models pass -----------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_exact_gaussian_passes_every_check(seed):
    report = validate_exact("gaussian", TINY, seed=seed)
    assert report.passed, report.summary()
    names = {c.name for c in report.checks}
    for expected in ("gaussian.heun.mode_variance", "gaussian.em.mode_variance",
                     "gaussian.heun.mean", "gaussian.invariance.low_modes",
                     "gaussian.invariance.variance", "gaussian.resolution_pairs",
                     "gaussian.member_subsets"):
        assert expected in names
    # the exact model acts mode by mode: the low modes agree to rounding
    assert report.check("gaussian.invariance.low_modes").value < 1e-12


def test_exact_mixture_passes_and_recovers_the_weights():
    report = validate_exact("mixture", TINY)
    assert report.passed, report.summary()
    counts = report.metrics["mixture"]["heun"]["counts"][0]
    assert sum(counts) == TINY.exact_members


def test_model_against_exact_draws_of_its_law_passes():
    report = validate_model(field_model(truth(), 32), reference(32), TINY)
    assert report.passed, report.summary()
    assert {c.name for c in report.checks} >= {
        "gauss.data.spectrum", "gauss.data.pdf", "gauss.data.flatness",
        "gauss.data.variance", "gauss.data.mean", "gauss.invariance.spectra",
        "gauss.invariance.restriction", "gauss.invariance.low_modes",
        "gauss.invariance.variance", "gauss.invariance.mean_square",
        "gauss.member_subsets"}


def test_a_finer_reference_is_restricted_to_the_model_grid():
    report = validate_model(field_model(truth(), 32), reference(64), TINY)
    assert report.passed, report.summary()
    assert any("restricted spectrally" in note for note in report.notes)


def test_calibrated_ensemble_passes_the_score_checks(tmp_path):
    ens, tru = ensemble_and_truth()
    report = validate_ensemble(ens, tru, TINY)
    assert report.passed, report.summary()
    assert {c.name for c in report.checks} == {"ensemble.scores.spread_skill",
                                               "ensemble.scores.rank_histogram"}
    assert 0 < report.metrics["crps"] and 0 < report.metrics["energy_score"]


def test_ensemble_of_the_law_passes_the_distribution_checks():
    ens, _ = ensemble_and_truth()
    report = validate_ensemble(ens, reference(32), TINY)
    assert report.passed, report.summary()
    assert len(report.checks) == 5


# -- the report ----------------------------------------------------------------------------
def test_report_files_are_complete_and_consistent(tmp_path):
    report = validate_model(field_model(truth(), 32), reference(32), TINY,
                            command="sciffd validate --model gauss")
    path = write_report(report, tmp_path / "out")
    data = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert data["passed"] is report.passed
    assert data["checks_total"] == len(report.checks) and data["checks_failed"] == 0
    assert [c["name"] for c in data["checks"]] == [c.name for c in report.checks]
    assert data["level"]["name"] == "tiny"
    for c in data["checks"]:
        assert c["tolerance"] and c["reason"] and c["threshold"]
    text = path.read_text()
    assert "**PASS**" in text and "sciffd validate --model gauss" in text
    for figure in data["figures"]:
        png = tmp_path / "out" / figure["file"]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({figure['file']})" in text
    assert {"gauss_spectra.png", "gauss_pdf.png", "gauss_fields.png",
            "gauss_invariance_resolutions_spectra.png"} <= {f["file"] for f in data["figures"]}
    # nothing but the report is left in the folder (atomic writes)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        ["metrics.json", "report.md"] + [f["file"] for f in data["figures"]])


def test_write_report_refuses_a_file_as_folder(tmp_path):
    report = validate_ensemble(*ensemble_and_truth(), TINY)
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        write_report(report, tmp_path / "f")
    with pytest.raises(TypeError, match="Report"):
        write_report({}, tmp_path)


# -- pieces ---------------------------------------------------------------------------------
def test_floor_check_uses_the_upper_end_and_fails_without_a_floor():
    floor = NoiseFloor(value=0.1, low=0.05, high=0.2, confidence=0.95,
                       replicates=np.zeros(3))
    assert floor_check("a", "t", "g", 0.39, floor, 2.0, reason="r").passed
    assert not floor_check("a", "t", "g", 0.41, floor, 2.0, reason="r").passed
    assert not floor_check("a", "t", "g", float("nan"), floor, 2.0, reason="r").passed
    zero = NoiseFloor(value=0.0, low=0.0, high=0.0, confidence=0.95, replicates=np.zeros(3))
    result = floor_check("a", "t", "g", 0.0, zero, 2.0, reason="r")
    assert not result.passed and "undefined" in result.reason
    assert not upper_check("a", "t", "g", float("inf"), 1.0, tolerance="", reason="").passed


def test_chi2_interval_covers_its_level():
    """Coverage of the interval of chi2_dof / dof, checked by simulation:
    4000 draws, the miss rate at alpha = 0.1 within a 5-sigma binomial bound."""
    rng = np.random.default_rng(3)
    lo, hi = chi2_interval(40, 0.1)
    x = rng.chisquare(40, 4000) / 40
    miss = np.mean((x < lo) | (x > hi))
    assert abs(miss - 0.1) < 5 * math.sqrt(0.1 * 0.9 / 4000)


def test_jsonable_turns_numpy_and_non_finite_values_into_json():
    out = jsonable({"a": np.float32(1.5), "b": np.arange(3), "c": float("nan"),
                    "d": (np.int64(2), np.bool_(True)), 3: None})
    assert out == {"a": 1.5, "b": [0, 1, 2], "c": "nan", "d": [2, True], "3": None}
    json.dumps(out)


def test_examples_are_reproducible_distinct_and_in_their_domain():
    seeds = draw_examples(Seeds(), 4, seed=5)
    assert seeds == draw_examples(Seeds(), 4, seed=5)
    assert len(set(seeds)) == 4
    subsets = draw_examples(MemberSubsets(10, 3), 5, seed=1)
    assert all(1 <= len(s) <= 3 and len(set(s)) == len(s) and max(s) < 10 for s in subsets)
    pairs = draw_examples(ResolutionPairs((16, 24, 32)), 3, seed=2)
    assert sorted(pairs) == [(16, 24), (16, 32), (24, 32)]
    # a domain smaller than the count gives what it has
    assert len(draw_examples(ResolutionPairs((16, 24)), 5)) == 1
    rng = np.random.default_rng(0)
    assert 0 <= Seeds(0, 3).draw(rng) <= 3
    assert MemberSubsets(4, 2).draw(rng)[0] < 4


def test_reference_fields_group_by_member():
    ens, _ = ensemble_and_truth(members=4, cases=3, resolution=16)
    ref = reference_fields(ens["psi"])
    assert ref.fields.shape == (12, 1, 16, 16)
    assert ref.groups.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    np.testing.assert_array_equal(ref.fields[4, 0], ens["psi"].values[1, 1])


def test_levels():
    assert get_level("quick") is QUICK and get_level(FULL) is FULL
    assert FULL.refinements == (1, 2, 4)
    with pytest.raises(ValueError, match="not known"):
        get_level("medium")
    with pytest.raises(ValueError, match="exact_members"):
        QUICK.replace(exact_members=2)
    with pytest.raises(ValueError, match="refinements"):
        Level("x", refinements=(2, 1))
    with pytest.raises(ValueError, match="alpha"):
        Level("x", alpha=0.7)
    with pytest.raises(ValueError, match="heun_steps"):
        Level("x", heun_steps=0)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="not an exact problem"):
        validate_exact("poisson", TINY)
    with pytest.raises(ValueError, match="one problem"):
        validate_exact("all", TINY, model=truth())
    with pytest.raises(ValueError, match="no reference"):
        validate_model(field_model(truth(), 16), None, TINY)
    ens, tru = ensemble_and_truth(resolution=16)
    with pytest.raises(ValueError, match="no 'member' dim"):
        validate_ensemble(tru, ens, TINY)
    with pytest.raises(ValueError, match="no variable"):
        validate_ensemble(ens, tru, TINY, variable="vorticity")
