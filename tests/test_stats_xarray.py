"""The xarray forms of the statistics: the same numbers as the array forms,
labelled dims and attributes, and lazy evaluation on Dask-backed input."""

from __future__ import annotations

import dask
import dask.array
import numpy as np
import pytest
import xarray as xr

from sciffd import stats
from sciffd.fields import to_dataarray
from sciffd.grids import torus

GRID = torus((12, 16), lengths=(1.5, 2.0))  # spacing 1/8 on both axes
ATTRS = {"units": "s-1", "long_name": "vorticity",
         "standard_name": "atmosphere_relative_vorticity", "seed": 11}


class NoCompute:
    """A dask scheduler that refuses to run: any compute inside raises."""

    def __call__(self, dsk, keys, **kwargs):
        raise RuntimeError("a lazy statistic computed its Dask input")


def fields():
    rng = np.random.default_rng(30)
    w = rng.standard_normal((4,) + GRID.shape)
    vel = rng.standard_normal((4, 2) + GRID.shape)
    truth = rng.standard_normal(GRID.shape)
    da = to_dataarray(w, GRID, "vorticity", ATTRS)
    dv = to_dataarray(vel, GRID, "velocity", {"units": "m s-1", "long_name": "velocity"},
                      leading_dims=("member", "channel"))
    dt = to_dataarray(truth[None], GRID, "vorticity", ATTRS).isel(member=0, drop=True)
    return w, vel, truth, da, dv, dt


W, VEL, TRUTH, DA, DV, DT = fields()
LABELLED = {"w": DA, "v": DV, "t": DT}

# (name, xarray call, array call, dims of the result)
LAZY = [
    ("power_spectrum", lambda d: stats.power_spectrum(d["w"]),
     lambda: stats.power_spectrum(W, GRID), ("member", "wavenumber")),
    ("enstrophy_spectrum", lambda d: stats.enstrophy_spectrum(d["w"]),
     lambda: stats.enstrophy_spectrum(W, GRID), ("member", "wavenumber")),
    ("energy_spectrum", lambda d: stats.energy_spectrum(d["w"]),
     lambda: stats.energy_spectrum(W, GRID), ("member", "wavenumber")),
    ("energy_spectrum", lambda d: stats.energy_spectrum(d["v"], kind="velocity"),
     lambda: stats.energy_spectrum(VEL, GRID, kind="velocity"), ("member", "wavenumber")),
    ("energy", lambda d: stats.energy(d["w"]), lambda: stats.energy(W, GRID), ("member",)),
    ("energy", lambda d: stats.energy(d["v"], kind="velocity"),
     lambda: stats.energy(VEL, GRID, kind="velocity"), ("member",)),
    ("enstrophy", lambda d: stats.enstrophy(d["w"]), lambda: stats.enstrophy(W, GRID),
     ("member",)),
    ("palinstrophy", lambda d: stats.palinstrophy(d["w"]), lambda: stats.palinstrophy(W, GRID),
     ("member",)),
    ("divergence", lambda d: stats.divergence(d["v"]), lambda: stats.divergence(VEL, GRID),
     ("member", "y", "x")),
    ("skewness", lambda d: stats.skewness(d["w"], dim=("y", "x")),
     lambda: stats.skewness(W, axis=(1, 2)), ("member",)),
    ("flatness", lambda d: stats.flatness(d["w"], dim="member"), lambda: stats.flatness(W, axis=0),
     ("y", "x")),
    ("increment", lambda d: stats.increments(d["w"], separation=0.25, dim="y"),
     lambda: stats.increments(W, GRID, separation=0.25, axis=0), ("member", "y", "x")),
    ("structure_function", lambda d: stats.structure_function(d["w"], order=3),
     lambda: stats.structure_function(W, GRID, order=3)[1], ("member", "separation")),
    ("structure_function",
     lambda d: stats.structure_function(d["v"], kind="velocity", average_axes=False),
     lambda: stats.structure_function(VEL, GRID, kind="velocity", average_axes=False)[1],
     ("member", "direction", "separation")),
    ("two_point_correlation", lambda d: stats.two_point_correlation(d["w"]),
     lambda: stats.two_point_correlation(W, GRID)[1], ("member", "separation")),
    ("integral_length_scale", lambda d: stats.integral_length_scale(d["w"]),
     lambda: stats.integral_length_scale(W, GRID), ("member",)),
    ("crps", lambda d: stats.crps_ensemble(d["w"], d["t"]), lambda: stats.crps_ensemble(W, TRUTH),
     ("y", "x")),
    ("energy_score", lambda d: stats.energy_score(d["w"], d["t"], dims=("x",)),
     lambda: stats.energy_score(W, TRUTH, vector_axes=1), ("y",)),
    ("spread_skill_ratio", lambda d: stats.spread_skill_ratio(d["w"], d["t"]),
     lambda: stats.spread_skill_ratio(W, TRUTH), ()),
    ("rank", lambda d: stats.ensemble_rank(d["w"], d["t"]), lambda: stats.ensemble_rank(W, TRUTH),
     ("y", "x")),
]
IDS = [f"{case[0]}-{i}" for i, case in enumerate(LAZY)]


@pytest.mark.parametrize(("name", "labelled", "plain", "dims"), LAZY, ids=IDS)
def test_dataarray_form_matches_the_array_form(name, labelled, plain, dims):
    out = labelled(LABELLED)
    assert isinstance(out, xr.DataArray) and out.name == name
    assert out.dims == dims
    np.testing.assert_allclose(out.values, plain(), rtol=1e-12, atol=1e-14)
    assert {"units", "long_name"} <= set(out.attrs)
    assert "standard_name" not in out.attrs


@pytest.mark.parametrize(("name", "labelled", "plain", "dims"), LAZY, ids=IDS)
def test_dask_backed_input_stays_lazy_and_gives_the_same_numbers(name, labelled, plain,
                                                                 dims):
    chunked = {"w": DA.chunk({"member": 2, "y": 6}), "v": DV.chunk({"member": 2}),
               "t": DT.chunk({"y": 6})}
    with dask.config.set(scheduler=NoCompute()):
        out = labelled(chunked)
    assert isinstance(out.data, dask.array.Array)
    np.testing.assert_allclose(out.compute(scheduler="synchronous").values,
                               labelled(LABELLED).values, rtol=1e-12, atol=1e-14)


def test_attributes_and_coordinates_of_labelled_results():
    P = stats.power_spectrum(DA)
    assert P.attrs["seed"] == 11 and P.attrs["units"] == "(s-1)^2"
    S = stats.structure_function(DA)
    np.testing.assert_allclose(S.r, np.arange(7) / 8)
    assert S.r.attrs["units"] == "1" and S.attrs["units"] == "(s-1)^2"
    L = stats.integral_length_scale(DA, average_axes=False)
    assert L.dims == ("member", "direction") and L.direction.values.tolist() == ["y", "x"]
    c = stats.crps_ensemble(DA, DT)
    assert c.attrs["units"] == "s-1" and "member" not in c.dims


def test_computing_statistics_accept_dataarrays():
    chunked = DA.chunk({"member": 1})
    assert stats.wasserstein1(chunked, DT) == pytest.approx(stats.wasserstein1(W, TRUTH))
    assert stats.energy_distance(chunked, DT) == pytest.approx(stats.energy_distance(W, TRUTH))
    assert stats.ks_distance(chunked, DT) == pytest.approx(stats.ks_distance(W, TRUTH))
    pdf = stats.histogram_pdf(chunked, bins=8)
    centres, values = stats.histogram_pdf(W, bins=8)
    np.testing.assert_allclose(pdf.values, values)
    np.testing.assert_allclose(pdf.value, centres)
    assert pdf.attrs["units"] == "(s-1)^-1"
    h = stats.rank_histogram(chunked, DT)
    np.testing.assert_array_equal(h.counts, stats.rank_histogram(W, TRUTH).counts)
    ipdf = stats.increment_pdf(chunked, separations=[0.125, 0.5], dim="x", bins=6)
    _, expected = stats.increment_pdf(W, GRID, separations=[0.125, 0.5], axis=-1, bins=6)
    np.testing.assert_allclose(ipdf.values, expected)
    assert ipdf.dims == ("separation", "bin")


def test_any_member_dim_name():
    renamed, truth = DA.rename(member="ens"), DT
    np.testing.assert_allclose(stats.crps_ensemble(renamed, truth, member_dim="ens").values,
                               stats.crps_ensemble(W, TRUTH))
    np.testing.assert_allclose(
        float(stats.spread_skill_ratio(renamed, truth, member_dim="ens", dim="x").mean()),
        float(np.mean(stats.spread_skill_ratio(W, TRUTH, axis=1))))
    with pytest.raises(ValueError, match=r"no dim 'member' \(given as member_dim\)"):
        stats.crps_ensemble(renamed, truth)


def test_bad_dataarray_input():
    with pytest.raises(TypeError, match="truth is ndarray"):
        stats.crps_ensemble(DA, TRUTH)
    with pytest.raises(ValueError, match="truth has the member dim"):
        stats.crps_ensemble(DA, DA)
    with pytest.raises(ValueError, match="dim='z' is not one of the spatial dims"):
        stats.increments(DA, separation=0.125, dim="z")
    with pytest.raises(TypeError, match="pass dim=..., not axis="):
        stats.skewness(DA, axis=0)
    with pytest.raises(ValueError, match="no dim 'channel'"):
        stats.divergence(DA)


def test_importing_sciffd_stats_stays_light():
    import subprocess
    import sys

    code = ("import sys, sciffd.stats, sciffd.stats.invariance; "
            "print(sorted(m for m in ('xarray', 'dask', 'torch', 'netCDF4') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
