"""``sciffd validate`` through the real command: exit status 0, 1 and 2, and the report.

The command runs as a subprocess of the installed package (``python -m
sciffd``), on small ensemble files written here: a calibrated ensemble and
its truth (every check passes: exit 0), an underdispersed one (the
spread-skill and rank-histogram checks fail: exit 1), and bad input
(exit 2, one line on stderr, nothing written).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from validation_cases import ensemble_and_truth

from sciffd.fields import to_dataset
from sciffd.grids import torus
from sciffd.io import write_netcdf
from sciffd.noise import Matern


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sciffd", "validate", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("validate")
    ens, truth = ensemble_and_truth(members=16, cases=20)
    write_netcdf(ens, folder / "ens.nc")
    write_netcdf(truth, folder / "truth.nc")
    under, _ = ensemble_and_truth(members=16, cases=20, spread=0.3)
    write_netcdf(under, folder / "under.nc")
    # 4 fields against a reference of 2 members x 5 snapshots: too few for a floor
    grid, attrs = torus(16), {"units": "1", "long_name": "psi"}
    u = Matern(3.0, 5.0, 5.0**3).sample(grid, 14, seed=1, dtype=np.float64)[:, 0]
    write_netcdf(to_dataset(u[:10].reshape((2, 5) + grid.shape), grid, "psi", attrs,
                            ("member", "time")), folder / "few_ref.nc")
    write_netcdf(to_dataset(u[10:], grid, "psi", attrs, ("member",)), folder / "few.nc")
    return folder


def test_passing_ensemble_exits_0_and_writes_the_report(files):
    result = run("ens.nc", "--reference", "truth.nc", "--report", "out", cwd=files)
    assert result.returncode == 0, result.stderr
    assert "passed" in result.stdout.splitlines()[-1]
    data = json.loads((files / "out" / "metrics.json").read_text())
    assert data["passed"] is True and data["checks_failed"] == 0
    assert data["command"].startswith("sciffd validate ens.nc --reference truth.nc")
    assert (files / "out" / "report.md").is_file()
    assert (files / "out" / "ens_rank_histogram.png").is_file()


def test_failing_ensemble_exits_1(files):
    result = run("under.nc", "--reference", "truth.nc", "--report", "bad", cwd=files)
    assert result.returncode == 1, result.stderr
    assert "FAIL" in result.stdout
    data = json.loads((files / "bad" / "metrics.json").read_text())
    assert data["passed"] is False
    assert {c["name"] for c in data["checks"] if not c["passed"]} == {
        "under.scores.spread_skill", "under.scores.rank_histogram"}


@pytest.mark.parametrize(("args", "words"), [
    ((), "exactly one of"),
    (("--exact", "gaussian", "--model", "ns2d"), "exactly one of"),
    (("ens.nc",), "--reference"),
    (("missing.nc", "--reference", "truth.nc"), "no such file"),
    (("ens.nc", "--reference", "missing.nc"), "no such file"),
    (("--exact", "gaussian", "--reference", "truth.nc"), "not used with --exact"),
    (("--exact", "poisson"), "invalid choice"),
    (("--exact", "gaussian", "--level", "medium"), "invalid choice"),
    (("ens.nc", "--reference", "truth.nc", "--report", "ens.nc"), "is a file"),
    (("--model", "no-such-model"), "unknown model"),
    (("ens.nc", "--reference", "truth.nc", "--variable", "vorticity"), "no variable"),
    (("few.nc", "--reference", "few_ref.nc"), "need at least 8 fields for a noise floor"),
])
def test_bad_input_exits_2_with_one_line(files, args, words):
    before = sorted(p.name for p in files.iterdir())
    result = run(*args, cwd=files)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sciffd: error:"), result.stderr
    assert words in lines[0]
    assert sorted(p.name for p in files.iterdir()) == before


@pytest.mark.slow
def test_exact_models_quick_level_pass(tmp_path):
    """The quick level of the exact models (about 30 s on two cores)."""
    result = run("--exact", "all", "--level", "quick", "--report", "exact", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((tmp_path / "exact" / "metrics.json").read_text())
    assert data["passed"] and data["checks_total"] == 32
