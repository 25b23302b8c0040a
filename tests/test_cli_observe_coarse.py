"""Tests of ``sciffd data observe --coarsen`` and ``sciffd condition`` on coarse files.

As in ``test_cli_condition.py``: a small data file (Matern draws on a 16^2
torus, 3 members x 2 times) and a tiny FNO trained for a few steps by
:func:`sciffd.training.train` (no exact model can be loaded by the command).
What is checked:

- the coarse observation file: the coarse field on the coarse nodes, the
  attributes of its operator, the provenance of the point files, and its
  values: the block mean of the observed field by a reshape (or its
  spectral coarse graining by :func:`sciffd.spectral.resample`) plus the
  noise of the documented stream, ``ObservationNoise(S).sample(n, [0],
  seed)``; the noise level itself through ``sum ((y - H u) / sigma)^2 ~
  chi2(n)``, bounded at a false-alarm rate of 1e-4;
- the posterior from a coarse file, at a multiple of the coarse shape for
  block means and at any resolution for spectral coarse values, with the
  misfit that :class:`~sciffd.inverse.Observations` computes from the files;
- bad input to both commands: one line ``sciffd: error: ...``, exit 2, no
  file written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from test_cli_condition import ATTRS, GRID, make_workdir

from sciffd import cli
from sciffd.fields import to_dataset
from sciffd.grids import torus
from sciffd.inverse import CoarseGrain, ObservationNoise, Observations
from sciffd.io import read_netcdf, write_netcdf
from sciffd.spectral import resample


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A data file ``data.nc`` (3 members x 2 times) and a tiny trained model ``tiny/``."""
    return make_workdir(tmp_path_factory.mktemp("coarse"))


def observed_field(workdir: Path, member: int, time: int) -> np.ndarray:
    return read_netcdf(workdir / "data.nc", "vorticity").values[member, time].astype(np.float64)


def observe(workdir: Path, out: str, *options: str) -> Path:
    code = cli.main(["data", "observe", str(workdir / "data.nc"), *options,
                     "--out", str(workdir / out)])
    assert code == 0
    return workdir / out


def test_block_mean_file(workdir, capsys):
    path = observe(workdir, "blocks.nc", "--coarsen", "2", "--noise", "0.05", "--seed", "3",
                   "--member", "2", "--time", "0")
    assert capsys.readouterr().err == ""
    ds = read_netcdf(path)
    da = ds["values"]
    assert da.dims == ("y", "x") and da.shape == (8, 8) and "obs" not in ds.dims
    for d in ("y", "x"):
        np.testing.assert_array_equal(ds[d].values, np.arange(8) / 8)
        assert ds[d].attrs["units"] == "1" and ds[d].attrs["period"] == 1.0
    assert da.attrs["units"] == "s-1" and da.attrs["cell_methods"] == "y: x: mean"
    a = ds.attrs
    assert a["operator"] == "block_mean" and a["coarse_shape"].tolist() == [8, 8]
    assert a["noise_std"] == 0.05 and a["units"] == "s-1" and a["seed"] == 3
    assert a["coarsen_factor"] == 2 and "interpolation" not in a and "points" not in a
    assert a["source_variable"] == "vorticity" and a["source_file"].endswith("data.nc")
    assert a["source_member_index"] == 2 and a["source_time_index"] == 0
    assert a["source_time"] == 0.0 and a["Conventions"] == "CF-1.8"

    # y = block mean of the field + eta, eta from stream 0 of member 0 of the seed
    u = observed_field(workdir, 2, 0)
    clean = u.reshape(8, 2, 8, 2).mean(axis=(1, 3))
    eta = ObservationNoise(std=0.05).sample(64, [0], 3)[0].reshape(8, 8)
    np.testing.assert_allclose(da.values, clean + eta, rtol=0, atol=1e-12)
    chi2 = float((((da.values - clean) / 0.05) ** 2).sum())
    assert stats.chi2.ppf(0.5e-4, 64) < chi2 < stats.chi2.isf(0.5e-4, 64)

    # read back: the operator reproduces the clean values from the field
    obs = Observations.from_xarray(ds, GRID, units="1")
    assert isinstance(obs.operator, CoarseGrain) and obs.operator.shape == (8, 8)
    np.testing.assert_allclose(obs.operator.apply(u[None, None], GRID)[0], clean.reshape(-1),
                               rtol=0, atol=1e-14)


def test_spectral_file_and_defaults(workdir):
    path = observe(workdir, "band.nc", "--coarsen", "4", "--coarse-method", "spectral",
                   "--noise", "0.1", "--seed", "5")
    ds = read_netcdf(path)
    a = ds.attrs
    assert a["operator"] == "spectral" and a["coarse_shape"].tolist() == [4, 4]
    assert "cell_methods" not in ds["values"].attrs
    # defaults: member 0, the last time
    assert a["source_member_index"] == 0 and a["source_time_index"] == 1
    assert a["source_time"] == 1.5
    clean = resample(observed_field(workdir, 0, 1), GRID, 4)
    eta = ObservationNoise(std=0.1).sample(16, [0], 5)[0].reshape(4, 4)
    np.testing.assert_allclose(ds["values"].values, clean + eta, rtol=0, atol=1e-12)


def test_observe_is_reproducible_and_seeded(workdir):
    a, b, c = (read_netcdf(observe(workdir, name, "--coarsen", "4", "--noise", "0.1",
                                   "--seed", seed))["values"].values
               for name, seed in (("r1.nc", "7"), ("r2.nc", "7"), ("r3.nc", "8")))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_condition_on_block_means_at_a_multiple(workdir, capsys):
    obs_path = observe(workdir, "blocks24.nc", "--coarsen", "2", "--noise", "0.05",
                       "--seed", "3")
    code = cli.main(["condition", "--model", str(workdir / "tiny"), "--obs", str(obs_path),
                     "--members", "3", "--resolution", "24", "--steps", "2", "--seed", "1",
                     "--quiet", "--out", str(workdir / "post_blocks.nc")])
    assert code == 0
    assert capsys.readouterr().err == ""
    post = read_netcdf(workdir / "post_blocks.nc")
    w = post["vorticity"]
    assert w.dims == ("member", "y", "x") and w.shape == (3, 24, 24)
    assert np.isfinite(w.values).all()
    obs = Observations.from_xarray(read_netcdf(workdir / "blocks24.nc"), torus(24))
    np.testing.assert_allclose(post["misfit"].values,
                               obs.misfit(w.values.astype(np.float64)[:, None], torus(24)),
                               rtol=1e-5)
    a = post.attrs
    assert a["n_obs"] == 64 and a["noise_std"] == 0.05 and a["resolution"] == "24x24"
    assert a["observation_operator"] == "CoarseGrain(shape=(8, 8), method='block_mean')"
    assert a["observations_file"] == str(obs_path)


def test_condition_on_spectral_values_at_any_resolution(workdir, tmp_path, capsys):
    path = observe(workdir, "band10.nc", "--coarsen", "4", "--coarse-method", "spectral",
                   "--noise", "0.1")
    code = cli.main(["condition", "--model", str(workdir / "tiny"), "--obs", str(path),
                     "--members", "2", "--resolution", "10", "--steps", "1", "--quiet",
                     "--out", str(tmp_path / "post.nc")])
    assert code == 0, capsys.readouterr().err
    post = read_netcdf(tmp_path / "post.nc")
    assert post["vorticity"].shape == (2, 10, 10) and post.attrs["n_obs"] == 16
    assert post.attrs["observation_operator"] == "CoarseGrain(shape=(4, 4), method='spectral')"
    obs = Observations.from_xarray(read_netcdf(path), torus(10))
    np.testing.assert_allclose(
        post["misfit"].values,
        obs.misfit(post["vorticity"].values.astype(np.float64)[:, None], torus(10)), rtol=1e-5)


# -- bad input ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def bad_files(workdir) -> Path:
    """Coarse observation files and a data file that must be refused, next to the good one."""
    root = workdir / "bad_coarse"
    root.mkdir()
    good_path = observe(workdir, "bad_coarse/good.nc", "--coarsen", "4", "--noise", "0.1")
    good = read_netcdf(good_path)

    def variant(name: str, change) -> None:
        ds = change(good.copy(deep=True))
        write_netcdf(ds, root / name, float32=False)

    def nan(ds):
        ds["values"].values[1, 3] = np.nan
        return ds

    def attr(key, value):
        def change(ds):
            ds.attrs[key] = value
            return ds
        return change

    def coord_units(ds):
        ds["x"].attrs["units"] = "m"
        return ds

    def value_units(ds):
        ds["values"].attrs["units"] = "K"
        return ds

    def shifted(ds):
        return ds.assign_coords(y=("y", ds["y"].values + 0.125, dict(ds["y"].attrs)))

    variant("nan.nc", nan)
    variant("zero_noise.nc", attr("noise_std", 0.0))
    variant("median.nc", attr("operator", "median"))
    variant("shape.nc", attr("coarse_shape", np.int32([4, 2])))
    variant("metres.nc", coord_units)
    variant("kelvin.nc", value_units)
    variant("shifted.nc", shifted)
    # block means on a 6^2 grid: 16, the model's grid, is not a multiple of it
    six = torus(6)
    obs = Observations(CoarseGrain(shape=(6, 6)), np.zeros(36), 0.1,
                       {"units": "s-1", "long_name": "observed vorticity"})
    write_netcdf(obs.to_xarray(six), root / "six.nc", float32=False)
    u = np.zeros((2,) + GRID.shape)
    u[1, 3, 4] = np.nan
    write_netcdf(to_dataset(u, GRID, "vorticity", ATTRS), root / "nan_data.nc")
    return root


OBSERVE = ["data", "observe", "{work}/data.nc", "--noise", "0.1"]
CONDITION = ["condition", "--model", "{work}/tiny", "--members", "2", "--steps", "1",
             "--quiet"]

BAD_INPUT = {
    "observe coarsen not dividing": ([*OBSERVE, "--coarsen", "5"],
                                     ["--coarsen 5", "does not divide", "(16, 16)"]),
    "observe coarsen too coarse": ([*OBSERVE, "--coarsen", "16"],
                                   ["--coarsen 16", "(1, 1)", "at least 2 nodes"]),
    "observe coarsen 0": ([*OBSERVE, "--coarsen", "0"], ["--coarsen", "at least 1"]),
    "observe coarsen not a number": ([*OBSERVE, "--coarsen", "two"],
                                     ["--coarsen", "not an integer"]),
    "observe points and coarsen": ([*OBSERVE, "--coarsen", "2", "--points", "4"],
                                   ["--coarsen", "not allowed with", "--points"]),
    "observe neither points nor coarsen": (OBSERVE, ["one of the arguments", "--points",
                                                     "--coarsen", "required"]),
    "observe method with coarsen": ([*OBSERVE, "--coarsen", "2", "--method", "bilinear"],
                                    ["--method", "--coarse-method"]),
    "observe coarse method with points": ([*OBSERVE, "--points", "4", "--coarse-method",
                                           "spectral"], ["--coarse-method", "--method"]),
    "observe unknown coarse method": ([*OBSERVE, "--coarsen", "2", "--coarse-method",
                                       "median"], ["--coarse-method", "median"]),
    "observe NaN data": (["data", "observe", "{bad}/nan_data.nc", "--coarsen", "2",
                          "--noise", "0.1", "--member", "1"], ["'vorticity'", "NaN"]),
    "observe noise 0": ([*OBSERVE[:-1], "0", "--coarsen", "2"],
                        ["--noise", "must be finite and positive"]),
    "observe member out of range": ([*OBSERVE, "--coarsen", "2", "--member", "3"],
                                    ["--member 3", "out of range"]),
    "condition block means off the multiple": (
        [*CONDITION, "--obs", "{bad}/good.nc", "--resolution", "10"],
        ["--resolution 10x10", "does not fit", "good.nc", "4x4", "multiple"]),
    "condition block means off the model's grid": (
        [*CONDITION, "--obs", "{bad}/six.nc"],
        ["--resolution 16x16 (the model's training grid)", "6x6", "multiple"]),
    "condition NaN values": ([*CONDITION, "--obs", "{bad}/nan.nc"],
                             ["--obs", "not finite at y=1, x=3"]),
    "condition noise 0": ([*CONDITION, "--obs", "{bad}/zero_noise.nc"],
                          ["--obs", "must be finite and positive"]),
    "condition unknown operator": ([*CONDITION, "--obs", "{bad}/median.nc"],
                                   ["--obs", "operator='median'"]),
    "condition coarse shape disagrees": ([*CONDITION, "--obs", "{bad}/shape.nc"],
                                         ["--obs", "coarse_shape=[4, 2]", "[4, 4]"]),
    "condition coordinate units": ([*CONDITION, "--obs", "{bad}/metres.nc"],
                                   ["--obs", "units 'm'", "in '1'"]),
    "condition value units": ([*CONDITION, "--obs", "{bad}/kelvin.nc"],
                              ["--obs", "'K'", "'s-1'"]),
    "condition shifted nodes": ([*CONDITION, "--obs", "{bad}/shifted.nc"],
                                ["--obs", "coordinate 'y'", "not the coarse nodes"]),
    "condition not an observation file": ([*CONDITION, "--obs", "{work}/data.nc"],
                                          ["not an observation file", "'operator'"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_one_line_exit_2_and_no_file(case, workdir, bad_files, tmp_path,
                                                  capsys):
    args, words = BAD_INPUT[case]
    args = [a.format(work=workdir, bad=bad_files) for a in args]
    if "--out" not in args:
        args = [*args, "--out", str(tmp_path / "out.nc")]
    before = {p: sorted(q.name for q in p.iterdir()) for p in (tmp_path, bad_files)}
    code = cli.main(args)
    err = capsys.readouterr().err.splitlines()
    assert code == 2, err
    assert len(err) == 1, err
    assert err[0].startswith("sciffd: error: ")
    for word in words:
        assert word in err[0], err[0]
    assert {p: sorted(q.name for q in p.iterdir()) for p in before} == before


def test_help_describes_coarse_files(capsys):
    assert cli.main(["data", "observe", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--coarsen F" in text and "--coarse-method {block_mean,spectral}" in text
    assert "not written" not in text and "coarse_shape" in text


def test_out_that_is_an_input_is_refused_and_the_input_kept(workdir, tmp_path, capsys):
    """``--out`` naming the data file (observe) or the observations (condition) would
    destroy them: refused with exit 2, the file unchanged."""
    import shutil

    data = tmp_path / "data.nc"
    shutil.copy(workdir / "data.nc", data)
    before = data.read_bytes()
    code = cli.main(["data", "observe", str(data), "--points", "5", "--noise", "0.1",
                     "--out", str(data)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "same file" in err[0]
    assert data.read_bytes() == before
    obs = observe(workdir, "obs_alias.nc", "--points", "5", "--noise", "0.1")
    before = obs.read_bytes()
    code = cli.main(["condition", "--model", str(workdir / "tiny"), "--obs", str(obs),
                     "--members", "2", "--steps", "2", "--out", str(obs)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "same file" in err[0]
    assert obs.read_bytes() == before


def test_outputs_record_the_model_path_and_weights_hash(workdir):
    """A posterior file names the model directory and the sha256 of its weights."""
    import hashlib

    obs = observe(workdir, "obs_prov.nc", "--points", "5", "--noise", "0.1")
    out = workdir / "post_prov.nc"
    assert cli.main(["condition", "--model", str(workdir / "tiny"), "--obs", str(obs),
                     "--members", "2", "--steps", "2", "--quiet", "--out", str(out)]) == 0
    attrs = read_netcdf(out).attrs
    weights = (workdir / "tiny" / "weights.safetensors").read_bytes()
    assert attrs["model_weights_sha256"] == hashlib.sha256(weights).hexdigest()
    assert Path(attrs["model_path"]) == (workdir / "tiny")


def test_observe_takes_quiet_like_every_command(workdir):
    assert observe(workdir, "obs_quiet.nc", "--coarsen", "4", "--noise", "0.1",
                   "--quiet").is_file()
