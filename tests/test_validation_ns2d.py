"""The quick validation level of the built-in ``ns2d`` model, run as CI runs it.

``sciffd validate --model ns2d --level quick`` through the real command:
the held-out reference members are solved for the run, the model is
sampled at 64^2, 128^2 and 256^2, and the report is written. The test
runs in the default ``pytest`` run (a few minutes on two cores) and is
skipped when the built-in model is not installed.

Each check must come out as in the committed report of the model
(``docs/validation/ns2d/metrics.json``): the run is seeded, so a change of
outcome means that the model, the sampler or the suite changed, and the
report has to be made again (``validation/README.md``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sciffd.models.registry import builtin_models

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "docs" / "validation" / "ns2d" / "metrics.json"


def test_quick_level_of_the_builtin_model(tmp_path):
    if "ns2d" not in builtin_models():
        pytest.skip("the built-in model sciffd/builtin/ns2d is not installed (train it with "
                    "datasets/train_ns2d.py and copy the run directory there)")
    result = subprocess.run(
        [sys.executable, "-m", "sciffd", "validate", "--model", "ns2d", "--level", "quick",
         "--report", "out", "--quiet"], cwd=tmp_path, capture_output=True, text=True,
        timeout=1200)
    assert result.returncode in (0, 1), result.stderr
    data = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert data["passed"] is (result.returncode == 0)
    assert data["level"]["name"] == "quick"
    for figure in data["figures"]:
        assert (tmp_path / "out" / figure["file"]).is_file()
    assert (tmp_path / "out" / "report.md").is_file()

    outcome = {c["name"]: c["passed"] for c in data["checks"]}
    # discretisation invariance is built into the FNO and the nested noise
    for name in ("finite", "spectra", "restriction", "low_modes", "variance", "mean_square"):
        assert outcome[f"ns2d.invariance.{name}"], name
    assert outcome["ns2d.member_subsets"]
    if COMMITTED.is_file():
        report = json.loads(COMMITTED.read_text())
        assert report["metrics"]["model"]["weights_sha256"] == \
            data["metrics"]["model"]["weights_sha256"], (
                "docs/validation/ns2d describes other weights than the installed model: "
                "make the report again (validation/README.md)")
        committed = {c["name"]: c["passed"] for c in report["checks"]}
        assert outcome == committed
