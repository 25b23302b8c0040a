"""Tests of :meth:`sciffd.pipeline.FieldModel.condition` with the exact Gaussian score.

The prior is Gaussian and the model is its exact score wrapped by
:meth:`FieldModel.from_score_model`, so the posterior is known exactly
(:func:`sciffd.inverse.exact_posterior`). The tests check

- the structure of the dataset: the members labelled as by ``sample``,
  equal to what :func:`sciffd.inverse.condition` returns, and the mean,
  spread and attributes that go with them;
- the misfit against a direct evaluation of the members' Fourier series
  at the points (a dense DFT, no FFT), and the mean and spread against the
  ensemble's own;
- that an observation file (an ``xarray.Dataset``) gives the same
  ensemble as the ``Observations`` it was written from, on a domain with
  different lengths along ``y`` and ``x`` (so swapped axes cannot pass);
- that the ensemble samples the exact posterior: pointwise,
  ``(mean_i - mu_i) / sqrt(P_ii / M) ~ N(0, 1)`` and ``(M - 1) var_i /
  P_ii ~ chi2(M - 1)``, with bounds at a false-alarm rate of 1e-4 split
  over the grid points (a union bound, valid whatever their correlation);
- the refusals: coordinates or values in other units, points outside the
  domain, fewer than two members, unknown options.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from references import direct_dft, full_modes
from scipy import stats

import sciffd
from sciffd import inverse
from sciffd.grids import TorusGrid
from sciffd.inverse import ObservationNoise, Observations, PointObservation
from sciffd.models import GaussianScore
from sciffd.noise import Matern
from sciffd.pipeline import FieldModel
from sciffd.sampling import Heun

DATA = Matern(alpha=2.5, tau=4.0, sigma=4.0**2.5)
NOISE = Matern(alpha=2.0, tau=2.0, sigma=2.0**2)
VARIABLE = {"name": "vorticity", "units": "s-1", "long_name": "vorticity"}
GRID = TorusGrid((16, 16), (1.0, 2.0))
STD = 0.1


def series_at(u: np.ndarray, lengths: tuple[float, ...], points: np.ndarray) -> np.ndarray:
    """The Fourier series of grid values ``u`` (shape ``S``) at ``points`` ``(P, d)``.

    ``u(x) = Re sum_m u_hat[m] prod_i e_i(m_i, x_i)`` over the full spectrum
    (a dense DFT), ``e_i = exp(2 pi i m_i x_i / L_i)`` except on the Nyquist
    index of an even axis, where it is ``cos`` (the real interpolant).
    """
    coef = direct_dft(u).reshape(-1)
    modes = full_modes(u.shape)
    factor = np.ones((len(points), len(modes)), dtype=complex)
    for i, (n, length) in enumerate(zip(u.shape, lengths, strict=True)):
        phase = 2 * np.pi * np.outer(points[:, i], modes[:, i]) / length
        nyquist = (n % 2 == 0) & (np.abs(modes[:, i]) == n // 2)
        factor *= np.where(nyquist, np.cos(phase), np.exp(1j * phase))
    return (factor @ coef).real


@pytest.fixture(scope="module")
def field_model() -> FieldModel:
    return FieldModel.from_score_model(GaussianScore(DATA, NOISE), variable=VARIABLE,
                                       grid=GRID, name="gauss")


@pytest.fixture(scope="module")
def observed() -> tuple[Observations, np.ndarray]:
    """Noisy spectral point values of one prior draw, and the draw."""
    rng = np.random.default_rng(7)
    truth = DATA.sample(GRID, members=[100], seed=5, dtype=np.float64)[0, 0]
    points = rng.random((12, 2)) * np.asarray(GRID.lengths)
    values = series_at(truth, GRID.lengths, points) + STD * rng.standard_normal(12)
    attrs = {"units": "s-1", "long_name": "observed vorticity", "coordinate_units": "1"}
    return Observations(PointObservation(points, "spectral"), values, STD, attrs), truth


def test_dataset_structure_values_and_attributes(field_model, observed):
    obs, _ = observed
    ds = field_model.condition(obs, members=4, seed=3, steps=4, progress=False)

    # the members are the conditional sampler's, labelled like an unconditional ensemble
    direct = inverse.condition(field_model.model, obs, GRID, 4, 3, "mmps", Heun(steps=4),
                               progress=False)
    np.testing.assert_array_equal(ds["vorticity"].values, direct[:, 0])
    prior = field_model.sample(members=4, seed=3, steps=4, progress=False)
    assert ds["vorticity"].dims == ("member", "y", "x")
    assert ds["vorticity"].attrs == prior["vorticity"].attrs
    for name in ("member", "y", "x"):
        np.testing.assert_array_equal(ds[name].values, prior[name].values)
        assert ds[name].attrs == prior[name].attrs
    assert set(ds.data_vars) == {"vorticity", "vorticity_mean", "vorticity_spread", "misfit"}

    # mean and spread are the ensemble's
    u = ds["vorticity"].values.astype(np.float64)
    np.testing.assert_allclose(ds["vorticity_mean"].values, u.mean(axis=0), rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_allclose(ds["vorticity_spread"].values, u.std(axis=0, ddof=1),
                               rtol=1e-5, atol=1e-6)
    assert ds["vorticity_mean"].dims == ds["vorticity_spread"].dims == ("y", "x")
    for name in ("vorticity_mean", "vorticity_spread"):
        assert ds[name].attrs["units"] == "s-1" and "vorticity" in ds[name].attrs["long_name"]

    # misfit ||H u - y|| / (sqrt(n) sigma) from the Fourier series of each member
    hu = np.stack([series_at(m, GRID.lengths, obs.operator.coords) for m in u])
    expected = np.sqrt(((hu - obs.values) ** 2).mean(axis=1)) / STD
    np.testing.assert_allclose(ds["misfit"].values, expected, rtol=1e-6)
    assert ds["misfit"].dims == ("member",) and ds["misfit"].attrs["units"] == "1"
    assert "||H u - y|| / (sqrt(n) sigma)" in ds["misfit"].attrs["long_name"]
    mean_hu = series_at(u.mean(axis=0), GRID.lengths, obs.operator.coords)
    assert ds.attrs["misfit_of_mean"] == pytest.approx(
        np.sqrt(((mean_hu - obs.values) ** 2).mean()) / STD, rel=1e-6)

    a = ds.attrs
    assert a["method"] == "mmps"
    assert json.loads(a["method_options"]) == {"cg_iterations": 32, "cg_tol": 1e-4}
    assert a["n_obs"] == 12 and a["noise_std"] == STD
    assert a["sampler"] == "Heun" and a["steps"] == 4 and a["seed"] == 3
    assert a["members"] == 4 and a["resolution"] == "16x16" and a["model"] == "gauss"
    assert a["sciffd_version"] == sciffd.__version__
    assert "PointObservation" in a["observation_operator"]
    np.testing.assert_array_equal(a["grid_lengths"], [1.0, 2.0])


def test_an_observation_file_gives_the_same_ensemble(field_model, observed):
    obs, _ = observed
    from_file = field_model.condition(obs.to_xarray(), members=2, steps=3, progress=False)
    direct = field_model.condition(obs, members=2, steps=3, progress=False)
    np.testing.assert_array_equal(from_file["vorticity"].values, direct["vorticity"].values)
    np.testing.assert_array_equal(from_file["misfit"].values, direct["misfit"].values)


def test_other_methods_record_their_options(field_model, observed):
    obs, _ = observed
    ds = field_model.condition(obs, members=2, steps=3, method="dps", weight=0.5,
                               sampler="em", progress=False)
    assert ds.attrs["method"] == "dps" and json.loads(ds.attrs["method_options"]) == {
        "weight": 0.5}
    assert ds.attrs["sampler"] == "EulerMaruyama" and ds.attrs["steps"] == 3

    # replacement on nodes imposes y at the last step up to a(t_min), s(t_min)
    nodes = np.array([[0.25, 0.5], [0.5, 1.25], [0.75, 0.125]])
    on_nodes = Observations(PointObservation(nodes, "spectral"), [0.3, -0.2, 0.1], STD)
    ds = field_model.condition(on_nodes, members=2, steps=3, method="replacement",
                               progress=False)
    assert ds.attrs["method"] == "replacement" and ds.attrs["method_options"] == "{}"
    assert ds.attrs["n_obs"] == 3


def test_other_resolutions(field_model, observed):
    obs, _ = observed
    ds = field_model.condition(obs, members=2, grid=24, steps=3, progress=False)
    assert ds["vorticity"].shape == (2, 24, 24) and ds.attrs["resolution"] == "24x24"
    assert ds["vorticity_mean"].shape == (24, 24)


def test_the_ensemble_samples_the_exact_posterior(field_model, observed):
    obs, _ = observed
    members = 32
    # 16 Heun steps keep the time discretisation well below the sampling error
    ds = field_model.condition(obs.to_xarray(), members=members, seed=11, steps=16,
                               progress=False)
    mu, var, _ = inverse.exact_posterior(DATA, None, obs, GRID)
    n = GRID.size
    alpha = 1e-4

    z = (ds["vorticity_mean"].values - mu[0]) / np.sqrt(var[0] / members)
    assert np.abs(z).max() < stats.norm.isf(alpha / (2 * n))

    ratio = (members - 1) * ds["vorticity_spread"].values ** 2 / var[0]
    assert ratio.min() > stats.chi2.ppf(alpha / (2 * n), members - 1)
    assert ratio.max() < stats.chi2.isf(alpha / (2 * n), members - 1)


def test_refusals(field_model, observed):
    obs, _ = observed
    file = obs.to_xarray()

    metres = file.copy(deep=True)
    metres["x"].attrs["units"] = "m"
    with pytest.raises(ValueError, match=r"coordinate 'x' has units 'm'.*in '1'"):
        field_model.condition(metres, members=2, steps=2, progress=False)

    kelvin = file.copy(deep=True)
    kelvin["values"].attrs["units"] = "K"
    with pytest.raises(ValueError, match=r"values are in 'K'.*vorticity in 's-1'"):
        field_model.condition(kelvin, members=2, steps=2, progress=False)

    other = Observations(obs.operator, obs.values, obs.noise, {"coordinate_units": "km"})
    with pytest.raises(ValueError, match=r"coordinates are in 'km'"):
        field_model.condition(other, members=2, steps=2, progress=False)

    outside = file.copy(deep=True)
    outside["x"].values[0] = 2.5
    with pytest.raises(ValueError, match="outside"):
        field_model.condition(outside, members=2, steps=2, progress=False)

    with pytest.raises(ValueError, match="at least 2 members"):
        field_model.condition(obs, members=1, steps=2, progress=False)
    with pytest.raises(TypeError, match=r"takes the options .*cg_tol"):
        field_model.condition(obs, members=2, steps=2, tolerance=1e-3, progress=False)
    with pytest.raises(TypeError, match="Observations or an xarray.Dataset"):
        field_model.condition(obs.values, members=2, steps=2, progress=False)
    with pytest.raises(ValueError, match="noise"):
        field_model.condition(file.drop_attrs(), members=2, steps=2, progress=False)


def test_per_observation_noise_is_recorded(field_model, observed):
    obs, _ = observed
    std = np.linspace(0.05, 0.2, obs.n_obs)
    varied = Observations(obs.operator, obs.values, ObservationNoise(std=std), obs.attrs)
    ds = field_model.condition(varied, members=2, steps=2, progress=False)
    np.testing.assert_allclose(ds.attrs["noise_std"], std)
    u = ds["vorticity"].values.astype(np.float64)
    hu = np.stack([series_at(m, GRID.lengths, obs.operator.coords) for m in u])
    expected = np.sqrt((((hu - obs.values) / std) ** 2).mean(axis=1))
    np.testing.assert_allclose(ds["misfit"].values, expected, rtol=1e-6)
