"""Tests of sciffd.io: netCDF round trips, atomic writes, independent readers."""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

from sciffd.fields import to_dataset
from sciffd.grids import TorusGrid
from sciffd.io import read_netcdf, write_netcdf

ERAINT = Path(__file__).resolve().parents[2] / "shared" / "data" / "eraint_uvz.nc"
ATTRS = {"units": "s-1", "long_name": "vorticity"}
GLOBAL = {"Conventions": "CF-1.8", "seed": 7, "sampler": "Heun", "shape": np.array([8, 16])}


@pytest.fixture
def dataset(rng):
    grid = TorusGrid((8, 16), (1.0, 2.0))
    u = rng.standard_normal((3,) + grid.shape)
    return to_dataset(u, grid, "vorticity", ATTRS, global_attrs=GLOBAL)


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_round_trip_keeps_values_dims_coords_and_attributes(dataset, tmp_path):
    path = write_netcdf(dataset, tmp_path / "w.nc")
    assert path == tmp_path / "w.nc"
    back = read_netcdf(path)

    w, w0 = back["vorticity"], dataset["vorticity"]
    assert w.dims == w0.dims
    # stored as float32: the values are exactly the float32 rounding
    assert w.dtype == np.float32
    np.testing.assert_array_equal(w.values, w0.values.astype(np.float32))
    # coordinates keep float64, so the grid spacing is exact
    for c in ("member", "y", "x"):
        np.testing.assert_array_equal(back[c].values, dataset[c].values)
        assert back[c].attrs == dataset[c].attrs
    assert back["x"].dtype == np.float64
    assert w.attrs == ATTRS
    for key, value in GLOBAL.items():
        np.testing.assert_array_equal(back.attrs[key], value)
    assert _listing(tmp_path) == ["w.nc"]


def test_float64_kept_on_request_and_compression_applied(dataset, tmp_path):
    write_netcdf(dataset, tmp_path / "f64.nc", float32=False)
    back = read_netcdf(tmp_path / "f64.nc", "vorticity")
    assert back.dtype == np.float64
    np.testing.assert_array_equal(back.values, dataset["vorticity"].values)
    assert back.encoding["zlib"] is True

    # a constant field compresses to almost nothing, and only with zlib; the
    # two files share the same HDF5 header overhead
    smooth = dataset.copy(deep=True)
    smooth["vorticity"].values[:] = 1.0
    smooth = smooth.isel(member=[0] * 256)
    write_netcdf(smooth, tmp_path / "z.nc")
    write_netcdf(smooth, tmp_path / "raw.nc", compress=False)
    raw_bytes = 256 * 8 * 16 * 4
    saved = os.path.getsize(tmp_path / "raw.nc") - os.path.getsize(tmp_path / "z.nc")
    assert saved > 0.9 * raw_bytes


def test_a_named_dataarray_is_written(dataset, tmp_path):
    write_netcdf(dataset["vorticity"], tmp_path / "da.nc")
    assert list(read_netcdf(tmp_path / "da.nc").data_vars) == ["vorticity"]
    with pytest.raises(ValueError, match="needs a name"):
        write_netcdf(xr.DataArray(np.zeros(3)), tmp_path / "x.nc")


def test_permissions_follow_the_umask(dataset, tmp_path):
    old = os.umask(0o022)
    try:
        write_netcdf(dataset, tmp_path / "w.nc")
    finally:
        os.umask(old)
    assert (os.stat(tmp_path / "w.nc").st_mode & 0o777) == 0o644


def _failing_dask_dataset(dataset):
    """A dataset whose second chunk raises while it is being written."""
    da = pytest.importorskip("dask.array")

    def fail_on_second(block, block_info=None):
        if block_info[0]["chunk-location"][0] == 1:
            raise RuntimeError("simulated failure in the middle of a write")
        return block

    values = da.from_array(dataset["vorticity"].values, chunks=(1, 8, 16))
    broken = dataset.copy()
    broken["vorticity"] = (("member", "y", "x"),
                           values.map_blocks(fail_on_second, dtype=np.float64), ATTRS)
    return broken


@pytest.mark.parametrize("failure", ["bool attribute", "failing chunk"])
def test_failed_write_leaves_earlier_file_and_no_temporary(dataset, tmp_path, failure):
    target = tmp_path / "w.nc"
    write_netcdf(dataset, target)
    before = target.read_bytes()

    if failure == "bool attribute":
        # xarray lets it through; netCDF4 refuses it once the file is open
        broken = dataset.copy()
        broken["vorticity"].attrs = {**ATTRS, "flag": True}
        error = TypeError
    else:
        broken = _failing_dask_dataset(dataset)
        error = RuntimeError
    with pytest.raises(error):
        write_netcdf(broken, target)

    assert _listing(tmp_path) == ["w.nc"]
    assert target.read_bytes() == before


def test_failed_first_write_leaves_nothing(dataset, tmp_path):
    broken = dataset.copy()
    broken.attrs = {"history": {"not": "storable"}}
    with pytest.raises(TypeError, match="Invalid value for attr 'history'"):
        write_netcdf(broken, tmp_path / "w.nc")
    assert _listing(tmp_path) == []


def test_write_refuses_missing_folder_and_directory(dataset, tmp_path):
    with pytest.raises(FileNotFoundError, match="output folder .*nowhere.* does not exist"):
        write_netcdf(dataset, tmp_path / "nowhere" / "w.nc")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        write_netcdf(dataset, tmp_path)
    with pytest.raises(TypeError, match="xarray.Dataset"):
        write_netcdf({"a": 1}, tmp_path / "w.nc")


def test_read_errors(dataset, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file: .*absent.nc"):
        read_netcdf(tmp_path / "absent.nc")
    write_netcdf(dataset, tmp_path / "w.nc")
    with pytest.raises(ValueError, match=r"has no variable 'psi'; its variables are "
                                         r"\['vorticity'\]"):
        read_netcdf(tmp_path / "w.nc", "psi")
    (tmp_path / "text.nc").write_text("not a netCDF file\n")
    with pytest.raises(ValueError, match="is not a readable netCDF file"):
        read_netcdf(tmp_path / "text.nc")


def test_file_is_closed_after_reading(dataset, tmp_path):
    path = tmp_path / "w.nc"
    write_netcdf(dataset, path)
    first = read_netcdf(path)
    # replacing and removing the file while the result is alive must work
    write_netcdf(dataset.isel(member=[0]), path)
    assert read_netcdf(path).sizes["member"] == 1
    os.remove(path)
    assert first.sizes["member"] == 3


# -- independent readers -------------------------------------------------------
def test_netcdf4_library_reads_the_file(dataset, tmp_path):
    path = write_netcdf(dataset, tmp_path / "w.nc")
    with netCDF4.Dataset(path) as nc:
        assert nc.data_model == "NETCDF4"
        var = nc.variables["vorticity"]
        assert var.dimensions == ("member", "y", "x")
        assert var.dtype == np.float32
        assert var.filters()["zlib"] is True
        assert var.units == "s-1" and var.long_name == "vorticity"
        assert nc.Conventions == "CF-1.8"
        assert nc.variables["x"].axis == "X"
        assert "_FillValue" not in nc.variables["x"].ncattrs()
        np.testing.assert_array_equal(var[:], dataset["vorticity"].values.astype(np.float32))


def test_ncdump_reads_the_header(dataset, tmp_path):
    ncdump = shutil.which("ncdump")
    if ncdump is None:
        pytest.skip("ncdump is not installed (Debian package netcdf-bin)")
    path = write_netcdf(dataset, tmp_path / "w.nc")
    header = subprocess.run([ncdump, "-h", str(path)], capture_output=True, text=True,
                            check=True).stdout
    assert "float vorticity(member, y, x) ;" in header
    assert 'vorticity:units = "s-1" ;' in header
    assert "double x(x) ;" in header
    assert ':Conventions = "CF-1.8" ;' in header
    assert "member = 3 ;" in header


# -- a real file -----------------------------------------------------------
def test_reads_a_real_file_with_a_nonconforming_fill_value():
    if not ERAINT.is_file():
        pytest.skip(f"real test file {ERAINT} is absent (it lives in ../shared/data)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = read_netcdf(ERAINT)
        z = read_netcdf(ERAINT, "z")
    assert z.dtype == np.float64 and z.dims == ("month", "level", "latitude", "longitude")
    assert np.isfinite(z.values).all()
    assert ds["latitude"].values[0] == 90.0 and ds["longitude"].values[0] == -180.0
    assert z.attrs["units"] == "m**2 s**-2"
