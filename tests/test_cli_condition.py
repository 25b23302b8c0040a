"""Tests of ``sciffd data observe`` and ``sciffd condition``.

The round trip runs the real command in fresh interpreters: a small data
file (Matern draws) is observed at random points, and a tiny FNO trained
for a few steps by :func:`sciffd.training.train` is conditioned on the
observation file. What is checked:

- the observation file: its layout (dim ``obs``, coordinates with units,
  ``values``, ``noise_std``, provenance), points in the domain, values equal
  to the field's Fourier series at the points (a dense DFT) plus the noise
  of the documented stream, and the noise level itself: for ``P`` values
  ``sum_p ((y_p - u(x_p)) / sigma)^2 ~ chi2(P)``, bounded at a false-alarm
  rate of 1e-4;
- the posterior file: the members and their summary, and a misfit equal to
  the one :class:`~sciffd.inverse.Observations` computes from the files;
- bad input to both commands: one line ``sciffd: error: ...``, exit 2, no
  file written.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from test_condition_pipeline import series_at

from sciffd import cli
from sciffd.fields import to_dataset
from sciffd.grids import torus
from sciffd.inverse import ObservationNoise, Observations
from sciffd.io import read_netcdf, write_netcdf
from sciffd.noise import Matern

ATTRS = {"units": "s-1", "long_name": "vorticity"}
GRID = torus(16)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real command, in a fresh interpreter."""
    return subprocess.run([sys.executable, "-m", "sciffd.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def make_workdir(root: Path) -> Path:
    """Write a data file ``data.nc`` (3 members x 2 times) and a tiny trained model ``tiny/``."""
    training = pytest.importorskip("sciffd.training")
    u = Matern(3.0, 5.0, 5.0**3).sample(GRID, members=6, seed=1, dtype=np.float64)[:, 0]
    data = to_dataset(u.reshape((3, 2) + GRID.shape), GRID, "vorticity", ATTRS,
                      ("member", "time"), coords={"time": ("time", [0.0, 1.5],
                                                           {"units": "s", "long_name": "time"})})
    write_netcdf(data, root / "data.nc")
    training.train(data, root / "tiny", steps=3, batch_size=2, progress=False,
                   model_options={"width": 4, "layers": 1, "modes": 4,
                                  "time_features": 4, "time_width": 8})
    return root


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A data file ``data.nc`` (3 members x 2 times) and a tiny trained model ``tiny/``."""
    return make_workdir(tmp_path_factory.mktemp("cond"))


def test_observe_then_condition_round_trip(workdir):
    result = run("data", "observe", "data.nc", "--points", "40", "--noise", "0.05",
                 "--seed", "3", "--member", "2", "--time", "0", "--out", "sensors.nc",
                 cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""

    sensors = read_netcdf(workdir / "sensors.nc")
    assert sensors["values"].dims == ("obs",) and sensors.sizes["obs"] == 40
    for name in ("y", "x"):
        c = sensors[name]
        assert c.dims == ("obs",) and c.attrs["units"] == "1"
        assert ((c.values >= 0) & (c.values < 1)).all()
    a = sensors.attrs
    assert a["noise_std"] == 0.05 and a["units"] == "s-1" and a["seed"] == 3
    assert a["source_variable"] == "vorticity" and a["source_file"] == "data.nc"
    assert a["source_member_index"] == 2 and a["source_time_index"] == 0
    assert a["source_time"] == 0.0 and a["interpolation"] == "spectral"
    assert a["featureType"] == "point"  # a CF discrete sampling geometry
    assert "sciffd data observe data.nc --points 40 --noise 0.05 --seed 3" in a["history"]
    assert sensors["values"].attrs["units"] == "s-1"

    # y = u(x_p) + eta, eta from stream 0 of member 0 of the seed
    field = read_netcdf(workdir / "data.nc", "vorticity").values[2, 0].astype(np.float64)
    points = np.stack([sensors["y"].values, sensors["x"].values], axis=1)
    clean = series_at(field, GRID.lengths, points)
    eta = ObservationNoise(std=0.05).sample(40, [0], 3)[0]
    np.testing.assert_allclose(sensors["values"].values, clean + eta, rtol=0, atol=1e-9)
    chi2 = float((((sensors["values"].values - clean) / 0.05) ** 2).sum())
    assert stats.chi2.ppf(0.5e-4, 40) < chi2 < stats.chi2.isf(0.5e-4, 40)

    result = run("condition", "--model", "tiny", "--obs", "sensors.nc", "--members", "3",
                 "--resolution", "24", "--steps", "2", "--seed", "1", "--quiet",
                 "--out", "post.nc", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""

    post = read_netcdf(workdir / "post.nc")
    w = post["vorticity"]
    assert w.dims == ("member", "y", "x") and w.shape == (3, 24, 24)
    assert w.attrs["units"] == "s-1" and np.isfinite(w.values).all()
    u = w.values.astype(np.float64)
    np.testing.assert_allclose(post["vorticity_mean"].values, u.mean(axis=0), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(post["vorticity_spread"].values, u.std(axis=0, ddof=1),
                               rtol=1e-5, atol=1e-6)
    obs = Observations.from_xarray(sensors, torus(24), units="1")
    np.testing.assert_allclose(post["misfit"].values, obs.misfit(u[:, None], torus(24)),
                               rtol=1e-5)
    a = post.attrs
    assert a["method"] == "mmps" and a["n_obs"] == 40 and a["noise_std"] == 0.05
    assert a["model"] == "tiny" and a["resolution"] == "24x24" and a["steps"] == 2
    assert a["seed"] == 1 and a["members"] == 3 and a["observations_file"] == "sensors.nc"


def test_observe_is_reproducible_and_seeded(workdir, tmp_path, capsys):
    outs = []
    for seed, name in ((5, "a.nc"), (5, "b.nc"), (6, "c.nc")):
        code = cli.main(["data", "observe", str(workdir / "data.nc"), "--points", "7",
                         "--noise", "0.1", "--seed", str(seed), "--method", "bilinear",
                         "--out", str(tmp_path / name)])
        assert code == 0, capsys.readouterr().err
        outs.append(read_netcdf(tmp_path / name))
    a, b, c = outs
    np.testing.assert_array_equal(a["values"].values, b["values"].values)
    np.testing.assert_array_equal(a["x"].values, b["x"].values)
    assert not np.allclose(a["x"].values, c["x"].values)
    # defaults: member 0, the last time
    assert a.attrs["source_member_index"] == 0 and a.attrs["source_time_index"] == 1
    assert a.attrs["source_time"] == 1.5 and a.attrs["interpolation"] == "bilinear"


@pytest.fixture(scope="module")
def bad_files(workdir) -> Path:
    """Observation and data files that must be refused, next to the good ones."""
    root = workdir / "bad"
    root.mkdir()
    code = cli.main(["data", "observe", str(workdir / "data.nc"), "--points", "6",
                     "--noise", "0.1", "--out", str(root / "good.nc")])
    assert code == 0
    good = read_netcdf(root / "good.nc")

    def variant(name: str, change) -> None:
        ds = good.copy(deep=True)
        change(ds)
        write_netcdf(ds, root / name, float32=False)

    variant("outside.nc", lambda ds: ds["x"].values.__setitem__(2, 1.25))
    variant("nan.nc", lambda ds: ds["values"].values.__setitem__(1, np.nan))
    variant("zero_noise.nc", lambda ds: ds.attrs.__setitem__("noise_std", 0.0))
    variant("metres.nc", lambda ds: ds["x"].attrs.__setitem__("units", "m"))
    variant("kelvin.nc", lambda ds: ds["values"].attrs.__setitem__("units", "K"))
    u = np.zeros((2,) + GRID.shape)
    u[1, 3, 4] = np.nan
    write_netcdf(to_dataset(u, GRID, "vorticity", ATTRS), root / "nan_data.nc")
    return root


OBSERVE = ["data", "observe", "{work}/data.nc", "--points", "5", "--noise", "0.1"]
CONDITION = ["condition", "--model", "{work}/tiny", "--members", "2", "--steps", "1",
             "--quiet"]

BAD_INPUT = {
    "observe missing file": (["data", "observe", "{work}/absent.nc", "--points", "5",
                              "--noise", "0.1"], ["absent.nc", "no such file"]),
    "observe noise 0": ([*OBSERVE[:-1], "0"], ["--noise", "must be finite and positive"]),
    "observe noise negative": ([*OBSERVE[:-1], "-0.5"], ["--noise", "positive"]),
    "observe noise nan": ([*OBSERVE[:-1], "nan"], ["--noise", "positive"]),
    "observe points 0": (["data", "observe", "{work}/data.nc", "--points", "0",
                          "--noise", "0.1"], ["--points", "at least 1"]),
    "observe NaN data": (["data", "observe", "{bad}/nan_data.nc", "--points", "5",
                          "--noise", "0.1", "--member", "1"], ["'vorticity'", "NaN"]),
    "observe member out of range": ([*OBSERVE, "--member", "3"],
                                    ["--member 3", "out of range"]),
    "observe time out of range": ([*OBSERVE, "--time", "-3"], ["--time -3", "out of range"]),
    "observe no time dim": (["data", "observe", "{bad}/nan_data.nc", "--points", "5",
                             "--noise", "0.1", "--time", "0"], ["no dim 'time'"]),
    "observe missing variable": ([*OBSERVE, "--variable", "psi"], ["no variable 'psi'"]),
    "observe missing folder": ([*OBSERVE, "--out", "{work}/nowhere/s.nc"],
                               ["nowhere", "does not exist"]),
    "condition missing file": ([*CONDITION, "--obs", "{work}/absent.nc"],
                               ["--obs", "no such file"]),
    "condition point outside": ([*CONDITION, "--obs", "{bad}/outside.nc"],
                                ["--obs", "outside"]),
    "condition NaN values": ([*CONDITION, "--obs", "{bad}/nan.nc"],
                             ["--obs", "not finite"]),
    "condition noise 0": ([*CONDITION, "--obs", "{bad}/zero_noise.nc"],
                          ["--obs", "must be finite and positive"]),
    "condition coordinate units": ([*CONDITION, "--obs", "{bad}/metres.nc"],
                                   ["--obs", "units 'm'", "in '1'"]),
    "condition value units": ([*CONDITION, "--obs", "{bad}/kelvin.nc"],
                              ["--obs", "'K'", "'s-1'"]),
    "condition not an observation file": ([*CONDITION, "--obs", "{work}/data.nc"],
                                          ["not an observation file"]),
    "condition one member": ([*CONDITION, "--obs", "{bad}/good.nc", "--members", "1"],
                             ["at least 2 members"]),
    "condition replacement off the nodes": (
        [*CONDITION, "--obs", "{bad}/good.nc", "--method", "replacement"],
        ["replacement", "does not select nodes"]),
    "condition unknown method": ([*CONDITION, "--obs", "{bad}/good.nc", "--method", "pnp"],
                                 ["--method", "pnp"]),
    "condition unknown model": (["condition", "--model", "no-such-model", "--obs",
                                 "{bad}/good.nc"], ["unknown model 'no-such-model'"]),
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
        assert word in err[0]
    assert {p: sorted(q.name for q in p.iterdir()) for p in before} == before


def test_bad_input_in_a_fresh_interpreter(workdir, bad_files):
    result = run("condition", "--model", "tiny", "--obs", "bad/metres.nc", "--members", "2",
                 "--out", "post2.nc", cwd=workdir)
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("sciffd: error: --obs bad/metres.nc")
    assert not (workdir / "post2.nc").exists()
