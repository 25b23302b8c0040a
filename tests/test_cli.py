"""Tests of the ``sciffd`` command: bad input gives one line and exit 2, no file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import sciffd
from sciffd import cli, pipeline
from sciffd.fields import to_dataset
from sciffd.grids import torus
from sciffd.io import read_netcdf, write_netcdf
from sciffd.models import GaussianScore
from sciffd.noise import Matern

ATTRS = {"units": "s-1", "long_name": "vorticity"}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real command, in a fresh interpreter."""
    return subprocess.run([sys.executable, "-m", "sciffd.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def assert_usage_error(result: subprocess.CompletedProcess, *words: str) -> None:
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sciffd: error: ")
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


@pytest.fixture
def bad_data(tmp_path: Path) -> dict[str, Path]:
    """Training files that must be refused: NaN values, non-uniform x."""
    grid = torus(8)
    u = np.zeros((2,) + grid.shape)
    u[1, 3, 4] = np.nan
    nan = write_netcdf(to_dataset(u, grid, "vorticity", ATTRS), tmp_path / "nan.nc")
    x = np.arange(8) / 8
    x[5] += 0.02
    uneven = xr.Dataset({"vorticity": (("member", "y", "x"), np.zeros((2, 8, 8)), ATTRS)},
                        coords={"y": np.arange(8) / 8, "x": x})
    return {"nan": nan, "uneven": write_netcdf(uneven, tmp_path / "uneven.nc")}


BAD_INPUT = {
    "sample resolution 0": (["sample", "--model", "ns2d", "--resolution", "0"],
                            ["--resolution", "at least 2"]),
    "sample resolution negative": (["sample", "--model", "ns2d", "--resolution", "-8"],
                                   ["--resolution", "at least 2"]),
    "sample members 0": (["sample", "--model", "ns2d", "--members", "0"],
                         ["--members", "at least 1"]),
    "sample steps not a number": (["sample", "--model", "ns2d", "--steps", "ten"],
                                  ["--steps", "'ten' is not an integer"]),
    "sample unknown model": (["sample", "--model", "no-such-model"],
                             ["unknown model 'no-such-model'", "available"]),
    "sample unknown sampler": (["sample", "--model", "ns2d", "--sampler", "rk4"],
                               ["--sampler", "rk4"]),
    "sample sigma-stop negative": (["sample", "--model", "ns2d", "--sigma-stop", "-1"],
                                   ["--sigma-stop", "must be finite and positive",
                                    "'none' or 'default'"]),
    "sample sigma-stop above the process": (["sample", "--model", "ns2d", "--sigma-stop",
                                             "1e6", "--members", "1", "--steps", "1"],
                                            ["--sigma-stop 1e+06: must lie between",
                                             "noise levels of the model's process"]),
    "sample empty output name": (["sample", "--model", "ns2d", "--out", ""],
                                 ["--out ''", "give a file name"]),
    "generate resolution 2": (["data", "generate", "ns2d", "--resolution", "2",
                               "--members", "1"], ["resolution=2", "at least 3"]),
    "sample missing folder": (["sample", "--model", "ns2d", "--out", "nowhere/ens.nc"],
                              ["nowhere", "does not exist"]),
    "generate unknown dataset": (["data", "generate", "ns3d", "--members", "2"],
                                 ["ns3d", "ns2d"]),
    "generate resolution 0": (["data", "generate", "ns2d", "--resolution", "0"],
                              ["--resolution", "at least 2"]),
    "generate missing folder": (["data", "generate", "ns2d", "--out", "nowhere/d.nc"],
                                ["nowhere", "does not exist"]),
    "train missing file": (["train", "--data", "absent.nc", "--out", "run"],
                           ["--data absent.nc", "no such file"]),
    "train NaN data": (["train", "--data", "nan.nc", "--out", "run"],
                       ["variable 'vorticity'", "NaN"]),
    "train non-uniform coordinates": (["train", "--data", "uneven.nc", "--out", "run"],
                                      ["variable 'vorticity'", "'x' is not uniformly spaced"]),
    "train missing variable": (["train", "--data", "nan.nc", "--variable", "psi",
                                "--out", "run"], ["no variable 'psi'"]),
    "no command": ([], ["required"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_one_line_exit_2_and_no_file(case, tmp_path, bad_data):
    args, words = BAD_INPUT[case]
    if "--out" not in args and args and args[0] in ("sample", "data"):
        args = [*args, "--out", "out.nc"]
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run(*args, cwd=tmp_path)
    assert_usage_error(result, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_version_and_models(tmp_path):
    result = run("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"sciffd {sciffd.__version__}"

    result = run("models", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.strip()


def test_python_dash_m_sciffd_and_the_installed_script(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sciffd", "--version"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "sciffd" in result.stdout

    script = Path(sys.executable).parent / "sciffd"
    if not script.is_file():
        pytest.skip(f"no installed sciffd script next to {sys.executable}")
    result = subprocess.run([str(script), "sample", "--model", "ns2d", "--resolution", "1",
                             "--out", "x.nc"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert_usage_error(result, "--resolution")


# -- sample, in-process with an exact Gaussian model ----------------------------
@pytest.fixture
def gaussian_load(monkeypatch):
    """``sciffd.pipeline.load`` answering "gauss" with an exact Gaussian model.

    The checkpoint format of sciffd.training does not describe an exact
    Gaussian model, so the command is run in-process with this loader in place.
    """
    exact = GaussianScore(Matern(3.0, 5.0), Matern(2.0, 1.0))
    model = pipeline.FieldModel.from_score_model(
        exact, variable={"name": "vorticity", **ATTRS}, grid=torus(16), name="gauss")
    real_load = pipeline.load

    def load(name_or_path, device=None):
        return model if name_or_path == "gauss" else real_load(name_or_path, device)

    monkeypatch.setattr(pipeline, "load", load)
    return model


def test_sample_writes_the_ensemble(gaussian_load, tmp_path, capsys):
    out = tmp_path / "ens.nc"
    code = cli.main(["sample", "--model", "gauss", "--members", "3", "--resolution", "8",
                     "--seed", "4", "--sampler", "em", "--steps", "5", "--quiet",
                     "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err == ""

    ds = read_netcdf(out)
    expected = gaussian_load.sample(members=3, grid=8, seed=4, sampler="em", steps=5,
                                    progress=False)
    np.testing.assert_array_equal(ds["vorticity"].values, expected["vorticity"].values)
    assert ds["vorticity"].dims == ("member", "y", "x")
    assert ds.attrs["sampler"] == "EulerMaruyama" and ds.attrs["steps"] == 5
    assert ds.attrs["resolution"] == "8x8" and ds.attrs["model"] == "gauss"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ens.nc"]


@pytest.mark.parametrize("flag, stop", [("0.5", 0.5), ("none", None), ("default", None)])
def test_sample_sigma_stop(gaussian_load, tmp_path, capsys, flag, stop):
    out = tmp_path / "ens.nc"
    code = cli.main(["sample", "--model", "gauss", "--members", "2", "--resolution", "8",
                     "--steps", "4", "--sigma-stop", flag, "--quiet", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    expected = gaussian_load.sample(members=2, grid=8, steps=4, progress=False,
                                    sigma_stop=stop)
    ds = read_netcdf(out)
    np.testing.assert_array_equal(ds["vorticity"].values, expected["vorticity"].values)
    assert ds.attrs["sigma_stop"] == ("none" if stop is None else stop)


def test_sample_shows_progress_unless_quiet(gaussian_load, tmp_path, capsys):
    code = cli.main(["sample", "--model", "gauss", "--members", "2", "--steps", "3",
                     "--out", str(tmp_path / "ens.nc")])
    assert code == 0
    assert "sampling" in capsys.readouterr().err


def test_sample_refuses_an_existing_directory_as_output(gaussian_load, tmp_path, capsys):
    code = cli.main(["sample", "--model", "gauss", "--out", str(tmp_path)])
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and len(err) == 1
    assert "is a directory" in err[0]


# -- the whole chain, with the real parts ---------------------------------------
@pytest.mark.slow
def test_generate_train_sample_end_to_end(tmp_path):
    pytest.importorskip("sciffd.training")
    pytest.importorskip("sciffd.domains.fluids.dataset")

    result = run("data", "generate", "ns2d", "--members", "1", "--resolution", "16",
                 "--quiet", "--out", "ns2d.nc", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = read_netcdf(tmp_path / "ns2d.nc", "vorticity")
    assert data.dims == ("member", "time", "y", "x") and data.sizes["x"] == 16

    result = run("train", "--data", "ns2d.nc", "--out", "run", "--steps", "2",
                 "--batch-size", "2", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "config.json").is_file()

    result = run("sample", "--model", "run", "--members", "2", "--resolution", "24",
                 "--steps", "2", "--seed", "3", "--quiet", "--out", "ens.nc", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    ens = read_netcdf(tmp_path / "ens.nc")
    w = ens["vorticity"]
    assert w.dims == ("member", "y", "x") and w.shape == (2, 24, 24)
    assert np.isfinite(w.values).all()
    assert w.attrs["units"] == data.attrs["units"]
    assert ens.attrs["model"] == "run" and ens.attrs["resolution"] == "24x24"
    assert ens.attrs["seed"] == 3 and ens.attrs["steps"] == 2

    # one convention across the files sciffd writes: the member coordinate is CF
    # realization, history lines open with an ISO 8601 UTC stamp to the second
    import re
    solver = read_netcdf(tmp_path / "ns2d.nc")
    for ds in (solver, ens):
        assert ds["member"].attrs == {"long_name": "ensemble member", "units": "1",
                                      "standard_name": "realization"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: .+", ds.attrs["history"])
    # and it is the command line that wrote the file
    assert "sciffd data generate ns2d --members 1 --resolution 16" in solver.attrs["history"]
    assert "sciffd sample --model run --members 2 --resolution 24" in ens.attrs["history"]
