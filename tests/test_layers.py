"""The package's layering: what importing each part pulls in."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sciffd"

#: layer of each module or subpackage, from the design
LAYERS = {
    "backend": 1, "_nested": 1, "_files": 1, "grids": 2, "spectral": 2, "noise": 3, "fields": 3,
    "stats": 3, "sde": 4, "models": 4, "training": 5, "sampling": 5, "inverse": 6,
    "domains": 7, "io": 7, "pipeline": 7, "validation": 7, "cli": 8, "__main__": 8,
}


def _top_imports(path: Path) -> set[str]:
    """sciffd parts imported at module level (not inside functions) by a file."""
    tree = ast.parse(path.read_text())
    parts = set()
    depth = len(path.relative_to(PACKAGE).parts) - 1
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and node.module.startswith("sciffd."):
                parts.add(node.module.split(".")[1])
            elif node.level > 0:
                up = node.level - 1
                if up == depth and node.module:
                    parts.add(node.module.split(".")[0])
                elif up == depth:
                    parts.update(alias.name for alias in node.names)
                elif up < depth:
                    parts.add(path.relative_to(PACKAGE).parts[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("sciffd."):
                    parts.add(alias.name.split(".")[1])
    return parts


def _files():
    for path in sorted(PACKAGE.rglob("*.py")):
        top = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if top in LAYERS:
            yield top, path


@pytest.mark.parametrize("top, path", list(_files()), ids=lambda v: str(v))
def test_no_import_from_a_later_layer(top, path):
    later = {p for p in _top_imports(path) if p in LAYERS and LAYERS[p] > LAYERS[top]}
    assert not later, f"{path.relative_to(PACKAGE)} imports later layers {later} at module level"


def test_import_sciffd_is_light():
    code = ("import sys, sciffd, sciffd.backend, sciffd.grids, sciffd.spectral, sciffd.noise, "
            "sciffd.sde; print(sorted(m for m in ('xarray', 'netCDF4', 'torch', 'cupy', "
            "'matplotlib', 'dask') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
