"""Tests of sciffd.models.registry: built-in names and model directories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sciffd.models.registry import BUILTIN_ROOT, builtin_models, resolve


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A folder of built-in models: two real ones and one without config.json."""
    (tmp_path / "ns2d").mkdir()
    (tmp_path / "ns2d" / "config.json").write_text(
        json.dumps({"description": "2D Navier-Stokes vorticity, 64^2"}))
    (tmp_path / "gauss").mkdir()
    (tmp_path / "gauss" / "config.json").write_text("{}")
    (tmp_path / "gauss" / "README.md").write_text("\n# Exact Gaussian reference\n\nmore\n")
    (tmp_path / "broken").mkdir()
    (tmp_path / "notes.txt").write_text("not a model")
    return tmp_path


def test_builtin_models_lists_directories_with_a_config(root):
    assert builtin_models(root) == {
        "gauss": "Exact Gaussian reference",
        "ns2d": "2D Navier-Stokes vorticity, 64^2",
    }
    assert builtin_models(root / "absent") == {}


def test_installed_builtin_models_are_model_directories():
    for name in builtin_models():
        assert (BUILTIN_ROOT / name / "config.json").is_file()
        assert resolve(name) == BUILTIN_ROOT / name


def test_resolve_names_and_directories(root, tmp_path, monkeypatch):
    assert resolve("ns2d", root) == root / "ns2d"
    assert resolve(root / "gauss", root) == root / "gauss"
    assert resolve(str(root / "gauss")) == root / "gauss"

    # a training directory in the working directory wins over a built-in name
    run = tmp_path / "work"
    (run / "ns2d").mkdir(parents=True)
    (run / "ns2d" / "config.json").write_text("{}")
    monkeypatch.chdir(run)
    assert resolve("ns2d", root) == Path("ns2d")


def test_resolve_refuses_with_the_available_names(root):
    with pytest.raises(ValueError, match=r"unknown model 'ns3d'.*available: gauss, ns2d"):
        resolve("ns3d", root)
    with pytest.raises(ValueError, match="available: none installed"):
        resolve("ns3d", root / "absent")
    with pytest.raises(ValueError, match="directory without config.json"):
        resolve(root / "broken", root)
    with pytest.raises(ValueError, match="is a file, not a model directory"):
        resolve(root / "notes.txt", root)
    with pytest.raises(ValueError, match="empty"):
        resolve("", root)
    with pytest.raises(TypeError, match="built-in model name or a path"):
        resolve(3, root)
