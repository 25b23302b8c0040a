"""Coarse-grid observation files: ``Observations.to_xarray`` / ``from_xarray`` with CoarseGrain.

The clean values are computed independently of :class:`CoarseGrain`: block
means by a reshape and a mean over the ``f^d`` nodes of each block, the
spectral coarse graining by :func:`sciffd.spectral.resample` to the coarse
shape. What is checked:

- the file layout: the coarse field on the dims of the grid's axes, the
  coarse nodes ``j L / Nc`` as coordinates with units and period, the
  attributes ``operator``, ``coarse_shape``, ``noise_std`` and the CF
  ``cell_methods`` of a block mean; ``ncdump -h`` reads the file;
- the round trip through a real netCDF file: the operator read back,
  applied to the original field, reproduces the clean values to float64
  rounding, the values and the noise come back unchanged, and a spectral
  file conditions a finer grid with the same clean values;
- every bad input is refused with a ``ValueError`` naming it.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from sciffd.grids import TorusGrid, torus
from sciffd.inverse import CoarseGrain, ObservationNoise, Observations
from sciffd.io import read_netcdf, write_netcdf
from sciffd.noise import Matern
from sciffd.spectral import resample

# (grid, factor): 1D, a 2D domain with unequal lengths and shape, 3D
CASES = {
    "1d": (TorusGrid((32,), (3.0,)), 4),
    "2d": (TorusGrid((16, 12), (2.0, 1.5)), 4),
    "3d": (TorusGrid((8, 8, 4), (1.0, 1.0, 0.5)), 2),
}
ATTRS = {"units": "s-1", "long_name": "observed vorticity", "coordinate_units": "m",
         "name": "values"}
SIGMA = 0.05


def field(grid: TorusGrid, seed: int = 0) -> np.ndarray:
    """One Matern draw ``(1, 1, *S)``, float64."""
    return Matern(3.0, 5.0, 5.0**3, ndim=grid.ndim).sample(grid, members=1, seed=seed,
                                                          dtype=np.float64)


def block_means(u: np.ndarray, factor: int) -> np.ndarray:
    """The mean of each block of ``factor^d`` nodes of one field ``(*S)``, by a reshape."""
    split = []
    for n in u.shape:
        split += [n // factor, factor]
    return u.reshape(split).mean(axis=tuple(range(1, 2 * u.ndim, 2)))


def clean_values(u: np.ndarray, grid: TorusGrid, factor: int, method: str) -> np.ndarray:
    """The coarse field of ``u`` ``(1, 1, *S)`` on the coarse grid, shape ``Nc``."""
    shape = tuple(n // factor for n in grid.shape)
    if method == "block_mean":
        return block_means(u[0, 0], factor)
    return resample(u[0, 0], grid, shape)


def coarse_file(grid: TorusGrid, factor: int, method: str, tmp_path, *, std=SIGMA,
                seed: int = 0):
    """Write a coarse observation file; returns (u, clean, written Observations, read dataset)."""
    u = field(grid, seed)
    clean = clean_values(u, grid, factor, method)
    noise = std if isinstance(std, ObservationNoise) else ObservationNoise(std=std)
    eta = noise.sample(clean.size, [0], seed=7)[0]
    obs = Observations(CoarseGrain(factor, method), clean.reshape(-1) + eta, noise, ATTRS)
    path = write_netcdf(obs.to_xarray(grid), tmp_path / f"coarse_{method}.nc", float32=False)
    return u, clean, obs, read_netcdf(path)


@pytest.mark.parametrize("method", ["block_mean", "spectral"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_file_layout(case, method, tmp_path):
    grid, factor = CASES[case]
    _, clean, obs, ds = coarse_file(grid, factor, method, tmp_path)
    shape = tuple(n // factor for n in grid.shape)
    da = ds["values"]
    assert da.dims == grid.dims and da.shape == shape
    assert "obs" not in ds.dims and "interpolation" not in ds.attrs
    for axis, d in enumerate(grid.dims):
        c = ds[d]
        np.testing.assert_array_equal(c.values, np.arange(shape[axis]) * grid.lengths[axis]
                                      / shape[axis])
        assert c.attrs["units"] == "m" and c.attrs["period"] == grid.lengths[axis]
        assert c.attrs["axis"] == d.upper()
    assert ds.attrs["operator"] == method
    assert np.atleast_1d(ds.attrs["coarse_shape"]).tolist() == list(shape)
    assert ds.attrs["noise_std"] == SIGMA
    assert da.attrs["units"] == "s-1" and da.attrs["long_name"] == "observed vorticity"
    if method == "block_mean":
        assert da.attrs["cell_methods"] == " ".join(f"{d}:" for d in grid.dims) + " mean"
        # CF cell bounds: the block of coarse node j spans the fine nodes j F .. j F + F - 1
        for axis, d in enumerate(grid.dims):
            assert ds[d].attrs["bounds"] == f"{d}_bounds"
            h = grid.lengths[axis] / grid.shape[axis]
            j = np.arange(shape[axis])
            np.testing.assert_allclose(ds[f"{d}_bounds"].values,
                                       np.stack([j * factor * h, (j + 1) * factor * h], 1),
                                       rtol=1e-14)
    else:
        assert "cell_methods" not in da.attrs and f"{grid.dims[0]}_bounds" not in ds
    # the file holds the coarse field itself, flattened in C order by the operator
    np.testing.assert_array_equal(da.values.reshape(-1), obs.values)


@pytest.mark.parametrize("method", ["block_mean", "spectral"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_reproduces_the_clean_values(case, method, tmp_path):
    grid, factor = CASES[case]
    u, clean, obs, ds = coarse_file(grid, factor, method, tmp_path)
    back = Observations.from_xarray(ds, grid, units="m")
    op = back.operator
    shape = tuple(n // factor for n in grid.shape)
    assert isinstance(op, CoarseGrain) and op.shape == shape and op.method == method
    np.testing.assert_array_equal(back.values, obs.values)
    assert back.noise.is_scalar and back.noise.std == SIGMA
    assert back.attrs == ATTRS
    # H u of the operator read back is the independent coarse graining of u
    np.testing.assert_allclose(op.apply(u, grid)[0], clean.reshape(-1), rtol=0,
                               atol=1e-13 * np.abs(clean).max())
    # the residual is the noise drawn for the file
    eta = ObservationNoise(std=SIGMA).sample(clean.size, [0], seed=7)[0]
    np.testing.assert_allclose(back.residual(u, grid)[0], eta, rtol=0, atol=1e-13)
    # written again, the same file
    again = back.to_xarray(grid)
    np.testing.assert_array_equal(again["values"].values, ds["values"].values)
    assert again.attrs["operator"] == method and again.attrs["noise_std"] == SIGMA
    assert again.attrs["coarse_shape"].tolist() == list(shape)
    for d in grid.dims:
        np.testing.assert_array_equal(again[d].values, ds[d].values)


def test_the_file_order_of_dims_does_not_matter(tmp_path):
    grid, factor = CASES["2d"]
    u, clean, obs, ds = coarse_file(grid, factor, "block_mean", tmp_path)
    back = Observations.from_xarray(ds.transpose("x", "y", ...), grid)
    np.testing.assert_array_equal(back.values, obs.values)
    np.testing.assert_allclose(back.operator.apply(u, grid)[0], clean.reshape(-1), atol=1e-14)


def test_spectral_file_conditions_any_resolution(tmp_path):
    grid, factor = CASES["2d"]
    u, clean, _, ds = coarse_file(grid, factor, "spectral", tmp_path)
    # every one of these grids holds the coarse band |m_i| < Nc_i / 2, so the field
    # resampled to it has the same coarse values
    for shape in ((32, 24), (20, 10), (5, 7)):
        other = grid.with_shape(shape)
        back = Observations.from_xarray(ds, other)
        back.check(other)
        np.testing.assert_allclose(back.operator.apply(resample(u, grid, shape), other)[0],
                                   clean.reshape(-1), rtol=0, atol=1e-12)


def test_block_mean_file_conditions_multiples_of_the_coarse_shape(tmp_path):
    grid, factor = CASES["2d"]
    u, _, _, ds = coarse_file(grid, factor, "block_mean", tmp_path)
    fine = grid.with_shape((32, 24))
    back = Observations.from_xarray(ds, fine)
    v = np.repeat(np.repeat(u, 2, axis=-2), 2, axis=-1)  # each node a 2 x 2 block
    np.testing.assert_allclose(back.operator.apply(v, fine)[0],
                               block_means(u[0, 0], factor).reshape(-1), atol=1e-14)


def test_noise_per_value_round_trip(tmp_path):
    grid, factor = CASES["2d"]
    std = np.linspace(0.01, 0.2, 12)
    _, _, obs, ds = coarse_file(grid, factor, "spectral", tmp_path,
                                std=ObservationNoise(std=std))
    assert ds["noise_std"].dims == grid.dims and "noise_std" not in ds.attrs
    back = Observations.from_xarray(ds, grid)
    np.testing.assert_array_equal(back.noise.std, std)
    np.testing.assert_array_equal(back.values, obs.values)


def test_noise_has_the_standard_deviation_of_the_file(tmp_path):
    """``sum ((y - H u) / sigma)^2 ~ chi2(n)`` for the noise drawn into a file (n = 1024)."""
    from scipy import stats

    grid = torus(64)
    u = field(grid, 3)
    clean = block_means(u[0, 0], 2).reshape(-1)
    noise = ObservationNoise(std=SIGMA)
    obs = Observations(CoarseGrain(2), clean + noise.sample(clean.size, [0], 11)[0], noise)
    path = write_netcdf(obs.to_xarray(grid), tmp_path / "c.nc", float32=False)
    back = Observations.from_xarray(read_netcdf(path), grid)
    chi2 = float(((back.residual(u, grid)[0] / back.noise.std) ** 2).sum())
    n = clean.size
    assert stats.chi2.ppf(0.5e-4, n) < chi2 < stats.chi2.isf(0.5e-4, n)


def test_ncdump_reads_the_file(tmp_path):
    ncdump = shutil.which("ncdump")
    if ncdump is None:
        pytest.skip("ncdump is not installed")
    grid, factor = CASES["2d"]
    coarse_file(grid, factor, "block_mean", tmp_path)
    result = subprocess.run([ncdump, "-h", str(tmp_path / "coarse_block_mean.nc")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    header = result.stdout
    assert "double values(y, x)" in header
    assert 'values:cell_methods = "y: x: mean"' in header
    assert ':operator = "block_mean"' in header and ":coarse_shape = 4, 3" in header
    assert ":noise_std = 0.05" in header


# -- bad input ---------------------------------------------------------------------
GRID, FACTOR = CASES["2d"]


def _nan_value(ds):
    ds["values"].values[1, 2] = np.nan
    return ds


def _attr(name, value):
    def change(ds):
        ds.attrs[name] = value
        return ds
    return change


def _coord(name, values):
    """Replace the coordinate ``name`` by ``values(old)``, keeping its attributes."""
    def change(ds):
        c = ds[name]
        return ds.assign_coords({name: (name, values(c.values.copy()), dict(c.attrs))})
    return change


def _drop_period(ds):
    for d in ("y", "x"):
        ds[d].attrs.pop("period")
    return ds


def _units(ds):
    ds["x"].attrs["units"] = "km"
    return ds


def _no_noise(ds):
    del ds.attrs["noise_std"]
    return ds


def _nan_at(x):
    x[1] = np.nan
    return x


OTHER_DOMAIN = TorusGrid((16, 12), (4.0, 1.5))

BAD_FILES = {
    "NaN value": (_nan_value, GRID, ["'values'", "not finite at y=1, x=2"]),
    "noise zero": (_attr("noise_std", 0.0), GRID, ["std=0.0", "must be finite and positive"]),
    "noise negative": (_attr("noise_std", -0.1), GRID,
                       ["std=-0.1", "must be finite and positive"]),
    "noise missing": (_no_noise, GRID, ["no noise level"]),
    "nodes shifted": (_coord("x", lambda x: x + 0.1), GRID,
                      ["coordinate 'x'", "not the coarse nodes", "shifted"]),
    "nodes descending": (_coord("y", lambda x: x[::-1]), GRID,
                         ["coordinate 'y'", "not the coarse nodes", "not ascending"]),
    "coordinate NaN": (_coord("x", _nan_at), GRID, ["coordinate 'x'", "NaN"]),
    "another domain (period)": (lambda ds: ds, OTHER_DOMAIN,
                                ["coordinate 'y'", "period 2", "length 4"]),
    "another domain (nodes)": (_drop_period, OTHER_DOMAIN,
                               ["coordinate 'y'", "L = 4", "span a period of 2"]),
    "coordinate units": (_units, GRID, ["coordinate 'x'", "units 'km'", "'m'"]),
    "block mean off the multiple": (lambda ds: ds, GRID.with_shape((18, 12)),
                                    ["block-mean", "4x3", "18x12", "multiple"]),
    "coarse_shape disagrees": (_attr("coarse_shape", [4, 4]), GRID,
                               ["coarse_shape=[4, 4]", "[4, 3]"]),
    "unknown operator": (_attr("operator", "median"), GRID,
                         ["operator='median'", "block_mean"]),
    "missing coordinate": (lambda ds: ds.drop_vars("x"), GRID, ["no coordinate 'x'"]),
    "another dimension": (lambda ds: ds, TorusGrid((16,), (2.0,)),
                          ["dims ('y', 'x')", "('x',)"]),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_is_refused(case, tmp_path):
    change, grid, words = BAD_FILES[case]
    *_, ds = coarse_file(GRID, FACTOR, "block_mean", tmp_path)
    ds = change(ds.copy(deep=True))
    with pytest.raises(ValueError) as info:
        Observations.from_xarray(ds, grid, units="m")
    message = str(info.value)
    for word in words:
        assert word in message, message


def test_writer_refuses_what_the_file_cannot_hold():
    obs = Observations(CoarseGrain(4), np.zeros(12), 0.1)
    with pytest.raises(ValueError, match="need grid="):
        obs.to_xarray()
    with pytest.raises(TypeError, match="TorusGrid"):
        obs.to_xarray((16, 12))
    with pytest.raises(ValueError, match="does not divide"):
        obs.to_xarray(GRID.with_shape((18, 12)))
    two = Observations(CoarseGrain(4), np.zeros(24), 0.1)
    with pytest.raises(NotImplementedError, match="several channels"):
        two.to_xarray(GRID)
    full = Observations(CoarseGrain(4), np.zeros(12), ObservationNoise(covariance=np.eye(12)))
    with pytest.raises(NotImplementedError, match="covariance"):
        full.to_xarray(GRID)


def test_field_model_conditions_on_a_coarse_file(tmp_path):
    """The exact Gaussian model via ``FieldModel``: coarse files read, off-multiples refused."""
    from sciffd.models import GaussianScore
    from sciffd.pipeline import FieldModel

    fm = FieldModel.from_score_model(
        GaussianScore(Matern(3.0, 5.0), Matern(2.0, 1.0)), grid=torus(16),
        variable={"name": "psi", "units": "s-1", "long_name": "stream function"})
    grid = torus(16)
    u = field(grid)
    obs = Observations(CoarseGrain(4), block_means(u[0, 0], 4).reshape(-1), 0.05,
                       {"units": "s-1", "long_name": "observed psi"})
    ds = read_netcdf(write_netcdf(obs.to_xarray(grid), tmp_path / "c.nc", float32=False))
    post = fm.condition(ds, members=2, grid=8, steps=4, progress=False)
    assert post["psi"].shape == (2, 8, 8) and post.attrs["n_obs"] == 16
    assert post.attrs["observation_operator"] == "CoarseGrain(shape=(4, 4), method='block_mean')"
    back = Observations.from_xarray(ds, torus(8))
    np.testing.assert_allclose(post["misfit"].values,
                               back.misfit(post["psi"].values[:, None].astype(np.float64),
                                           torus(8)), rtol=1e-5)
    with pytest.raises(ValueError, match="multiple"):
        fm.condition(ds, members=2, grid=10, steps=4, progress=False)
