"""Tests of sciffd.fields: labelling arrays as xarray objects and reading them back."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hypothesis import given
from hypothesis import strategies as st

from sciffd.fields import (
    check_dataarray,
    from_dataarray,
    grid_from,
    grid_origin,
    to_dataarray,
    to_dataset,
)
from sciffd.grids import TorusGrid, torus

ERAINT = Path(__file__).resolve().parents[2] / "shared" / "data" / "eraint_uvz.nc"
ATTRS = {"units": "s-1", "long_name": "vorticity"}


def _field(rng, shape=(3, 8, 16), lengths=(1.0, 2.0)):
    grid = TorusGrid(shape[-2:], lengths)
    return rng.standard_normal(shape), grid


def _plain(values, dims, coords, name="w"):
    """A DataArray built by hand, the way another program would write it."""
    return xr.DataArray(values, dims=dims, coords=coords, name=name, attrs=ATTRS)


# -- writing ---------------------------------------------------------------
def test_to_dataarray_labels_dims_coords_and_attributes(rng):
    u, grid = _field(rng)
    da = to_dataarray(u, grid, "vorticity", ATTRS)

    assert da.dims == ("member", "y", "x")
    assert da.name == "vorticity"
    assert da.attrs == ATTRS
    np.testing.assert_array_equal(da.values, u)
    np.testing.assert_array_equal(da["member"].values, np.arange(3))
    # x_j = j L / N exactly, as the grid defines them
    np.testing.assert_array_equal(da["x"].values, np.arange(16) * (2.0 / 16))
    np.testing.assert_array_equal(da["y"].values, np.arange(8) * (1.0 / 8))
    assert da["x"].attrs["axis"] == "X" and da["y"].attrs["axis"] == "Y"
    assert da["x"].attrs["period"] == 2.0 and da["y"].attrs["period"] == 1.0
    for c in ("x", "y", "member"):
        assert "units" in da[c].attrs


def test_to_dataarray_accepts_torch_and_extra_coords(rng):
    torch = pytest.importorskip("torch")
    u, grid = _field(rng, (2, 4, 8, 16))
    time = ("time", np.array([0.0, 0.5, 1.0, 1.5]), {"units": "s", "axis": "T",
                                                     "long_name": "time"})
    da = to_dataarray(torch.from_numpy(u), grid, "w", ATTRS, ("member", "time"),
                      coords={"time": time})
    assert da.dims == ("member", "time", "y", "x")
    np.testing.assert_array_equal(da.values, u)
    assert da["time"].attrs["units"] == "s"


def test_to_dataarray_with_an_origin_keeps_the_grid(rng):
    u, grid = _field(rng, (2, 8, 8), (2 * math.pi, 2 * math.pi))
    x = -math.pi + grid.coords(1)
    da = to_dataarray(u, grid, "w", ATTRS, coords={"x": x})
    assert grid_from(da) == grid
    assert grid_origin(da) == pytest.approx((0.0, -math.pi))


def test_to_dataarray_refuses_bad_input(rng):
    u, grid = _field(rng)
    with pytest.raises(ValueError, match="lack \\['units'\\]"):
        to_dataarray(u, grid, "w", {"long_name": "w"})
    with pytest.raises(ValueError, match=r"u has shape \(3, 8, 16\).*grid shape \(8, 8\)"):
        to_dataarray(u, torus(8), "w", ATTRS)
    with pytest.raises(ValueError, match=r"expected 2 leading axes \(.member., .time.\)"):
        to_dataarray(u, grid, "w", ATTRS, leading_dims=("member", "time"))
    with pytest.raises(ValueError, match="grid spacing"):
        to_dataarray(u, grid, "w", ATTRS, coords={"x": np.linspace(0, 2, 16)})
    with pytest.raises(TypeError, match="TorusGrid"):
        to_dataarray(u, (8, 16), "w", ATTRS)


def test_to_dataset_sets_global_attributes(rng):
    u, grid = _field(rng)
    ds = to_dataset(u, grid, "w", ATTRS, global_attrs={"Conventions": "CF-1.8"})
    assert isinstance(ds, xr.Dataset)
    assert ds.attrs == {"Conventions": "CF-1.8"}
    assert list(ds.data_vars) == ["w"]


# -- reading ---------------------------------------------------------------
@given(
    shape=st.lists(st.integers(2, 9), min_size=1, max_size=3),
    lengths=st.lists(st.floats(0.1, 100.0), min_size=3, max_size=3),
    lead=st.integers(0, 2),
    float32=st.booleans(),
)
def test_round_trip_is_exact(shape, lengths, lead, float32):
    grid = TorusGrid(tuple(shape), tuple(lengths[: len(shape)]))
    dims = ("member", "time")[:lead]
    rng = np.random.default_rng(len(shape) + 10 * lead)
    u = rng.standard_normal((2,) * lead + grid.shape)
    u = u.astype(np.float32) if float32 else u
    da = to_dataarray(u, grid, "w", ATTRS, dims)

    v, g = from_dataarray(da)
    assert v.dtype == u.dtype
    np.testing.assert_array_equal(v, u)
    assert g.shape == grid.shape
    # L = N dx recovered to the rounding of the float64 coordinates
    np.testing.assert_allclose(g.lengths, grid.lengths, rtol=1e-12)


def test_reader_sorts_descending_coordinates_and_orders_axes(rng):
    grid = TorusGrid((8, 16), (1.0, 2.0))
    u = rng.standard_normal((2,) + grid.shape)
    da = _plain(u, ("member", "y", "x"),
                {"y": grid.coords(0), "x": grid.coords(1)})

    # the same field stored with y descending and axes as (x, member, y)
    flipped = da.isel(y=slice(None, None, -1)).transpose("x", "member", "y")
    v, g = from_dataarray(flipped)
    np.testing.assert_array_equal(v, u)
    assert g == grid


def test_reader_accepts_extra_dims_when_named(rng):
    u = rng.standard_normal((2, 3, 4, 4))
    c = np.arange(4) / 4
    da = _plain(u, ("level", "member", "y", "x"), {"y": c, "x": c})
    with pytest.raises(ValueError, match=r"variable 'w' has unknown dim\(s\) \('level',\)"):
        from_dataarray(da)
    v, g = from_dataarray(da, extra_dims=("level",))
    assert v.shape == (2, 3, 4, 4) and g == torus(4)


def test_grid_from_named_dims_and_dataset(rng):
    c = np.arange(6) * 0.5
    da = _plain(rng.standard_normal((6, 6)), ("a", "b"), {"a": c, "b": c})
    assert grid_from(da, dims=("a", "b")) == TorusGrid((6, 6), (3.0, 3.0))
    assert grid_from(da.to_dataset(), dims=("a", "b")) == TorusGrid((6, 6), (3.0, 3.0))
    with pytest.raises(ValueError, match="none of the spatial dims"):
        grid_from(da)


def test_longitude_period_is_checked():
    lon = np.arange(-180.0, 180.0, 2.5)
    attrs = {"units": "degrees_east"}
    da = xr.DataArray(np.zeros(lon.size), dims="lon",
                      coords={"lon": ("lon", lon, attrs)}, name="t")
    assert grid_from(da, dims=("lon",)) == TorusGrid((144,), (360.0,))
    with pytest.raises(ValueError, match="not periodic with period 360"):
        grid_from(da.isel(lon=slice(0, 100)), dims=("lon",))


# -- refusals: one line, naming the variable and the problem ------------------
def _bad_cases():
    c8 = np.arange(8) / 8
    good = {"y": c8, "x": c8}
    base = np.zeros((2, 8, 8))
    nan = base.copy()
    nan[1, 2, 3] = np.nan
    inf = base.copy()
    inf[0, 0, 0] = np.inf
    uneven = c8.copy()
    uneven[3] += 0.01
    endpoint = xr.Variable("x", np.linspace(0, 1, 8), {"period": 1.0})
    lat = xr.Variable("y", np.linspace(-45, 45, 8), {"units": "degrees_north"})
    dims = ("member", "y", "x")
    return {
        "nan": (nan, dims, good, r"variable 'w' has 1 NaN value\(s\) out of 128"),
        "inf": (inf, dims, good, r"variable 'w' has 1 infinite value\(s\)"),
        "missing coordinate": (base, dims, {"y": c8},
                               "variable 'w' is missing the coordinate 'x'"),
        "non-uniform": (base, dims, {"y": c8, "x": uneven},
                        "variable 'w': coordinate 'x' is not uniformly spaced"),
        "endpoint repeated": (base, dims, {"y": c8, "x": endpoint},
                              "coordinate 'x' is not periodic with period 1"),
        "latitude": (base, dims, {"y": lat, "x": c8},
                     "coordinate 'y' is a latitude .* not periodic"),
        "unknown dim": (base, ("level", "y", "x"), good,
                        r"variable 'w' has unknown dim\(s\) \('level',\)"),
        "float16": (base.astype(np.float16), dims, good,
                    "variable 'w' has dtype float16; expected float32 or float64"),
        "integer": (base.astype(np.int16), dims, good,
                    "variable 'w' has dtype int16; expected float32 or float64"),
        "complex": (base.astype(np.complex128), dims, good,
                    "has dtype complex128; expected float32 or float64"),
    }


@pytest.mark.parametrize("case", sorted(_bad_cases()))
def test_check_dataarray_refuses(case):
    values, dims, coords, message = _bad_cases()[case]
    da = _plain(values, dims, coords)
    with pytest.raises(ValueError, match=message) as info:
        check_dataarray(da)
    assert "\n" not in str(info.value)
    # the readers refuse the same input with the same message
    with pytest.raises(ValueError, match=message):
        from_dataarray(da)


def test_check_dataarray_uses_the_given_name():
    da = _plain(np.full((4, 4), np.nan), ("y", "x"), {"y": np.arange(4.0),
                                                      "x": np.arange(4.0)}, name=None)
    with pytest.raises(ValueError, match="variable 'psi' has 16 NaN"):
        check_dataarray(da, "psi")
    with pytest.raises(TypeError, match="DataArray"):
        check_dataarray(np.zeros((4, 4)))


# -- a real file -----------------------------------------------------------
@pytest.fixture(scope="module")
def eraint():
    if not ERAINT.is_file():
        pytest.skip(f"real test file {ERAINT} is absent (it lives in ../shared/data)")
    with warnings.catch_warnings():
        # its float _FillValue on int16 packed data does not conform; xarray drops it
        warnings.simplefilter("ignore", xr.SerializationWarning)
        with xr.open_dataset(ERAINT, engine="netcdf4") as ds:
            yield ds.load()


def test_eraint_longitude_from_minus_180_is_a_periodic_axis(eraint):
    z = eraint["z"]
    assert z.dtype == np.float64 and eraint["longitude"].dtype == np.float32
    extra = ("month", "level", "latitude")
    u, grid = from_dataarray(z, dims=("longitude",), extra_dims=extra)

    # 480 points of 0.75 degrees from -180: the full circle
    assert grid == TorusGrid((480,), (360.0,))
    assert grid_origin(z, dims=("longitude",)) == (-180.0,)
    assert u.dtype == np.float64 and u.shape == (2, 3, 241, 480)


def test_eraint_descending_latitude_is_sorted(eraint):
    z = eraint["z"]
    assert eraint["latitude"].values[0] == 90.0
    u, _ = from_dataarray(z, dims=("longitude",), extra_dims=("month", "level", "latitude"))
    # after sorting, latitude index 0 is the south pole
    np.testing.assert_array_equal(u[:, :, 0, :], z.sel(latitude=-90.0).values)
    np.testing.assert_array_equal(u[:, :, -1, :], z.sel(latitude=90.0).values)


def test_eraint_refusals_name_the_problem(eraint):
    z = eraint["z"]
    with pytest.raises(ValueError, match="none of the spatial dims"):
        check_dataarray(z)
    with pytest.raises(ValueError, match=r"unknown dim\(s\) \('month', 'level'\)"):
        check_dataarray(z, dims=("latitude", "longitude"))
    with pytest.raises(ValueError, match="'latitude' is a latitude"):
        check_dataarray(z, dims=("latitude", "longitude"), extra_dims=("month", "level"))
