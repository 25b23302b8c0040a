"""Built-in models and model directories.

A model directory holds ``config.json`` (the model's configuration and
metadata), its weights (``weights.safetensors``, where it has any) and a
``README.md``. The built-in models ship with sciffd as such directories,
``sciffd/builtin/<name>/``; a trained model is the output directory of
:func:`sciffd.training.train`. :func:`resolve` turns a built-in name or a
directory into the path of a model directory; loading it is the job of
:func:`sciffd.load`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["BUILTIN_ROOT", "builtin_models", "resolve"]

#: the folder of the built-in model directories
BUILTIN_ROOT = Path(__file__).resolve().parent.parent / "builtin"

CONFIG_NAME = "config.json"


def _root(root: str | os.PathLike | None) -> Path:
    return BUILTIN_ROOT if root is None else Path(root)


def _description(directory: Path) -> str:
    """A one-line description: ``config["description"]``, else the README's first line."""
    try:
        config = json.loads((directory / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    text = config.get("description") if isinstance(config, dict) else None
    if isinstance(text, str) and text.strip():
        return text.strip().splitlines()[0]
    readme = directory / "README.md"
    if readme.is_file():
        for line in readme.read_text(encoding="utf-8").splitlines():
            line = line.strip().lstrip("#").strip()
            if line:
                return line
    return ""


def builtin_models(root: str | os.PathLike | None = None) -> dict[str, str]:
    """The built-in models: ``{name: one-line description}``, sorted by name.

    Parameters
    ----------
    root : path-like, optional
        Folder holding the model directories (default :data:`BUILTIN_ROOT`).

    Returns
    -------
    dict
        Empty when no built-in model is installed.
    """
    folder = _root(root)
    if not folder.is_dir():
        return {}
    found = {}
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and (entry / CONFIG_NAME).is_file():
            found[entry.name] = _description(entry)
    return found


def resolve(name_or_path: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """The model directory named by a built-in name or a path.

    Parameters
    ----------
    name_or_path : str or path-like
        A built-in name (see :func:`builtin_models`) or a directory that
        contains ``config.json``. A directory with ``config.json`` wins
        over a built-in model of the same name.
    root : path-like, optional
        Folder of the built-in models (default :data:`BUILTIN_ROOT`).

    Returns
    -------
    pathlib.Path
        The model directory (it contains ``config.json``).

    Raises
    ------
    ValueError
        If ``name_or_path`` is neither a built-in name nor a model
        directory; the message lists the available names.
    TypeError
        If ``name_or_path`` is not a string or a path.
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(
            f"name_or_path={name_or_path!r} must be a built-in model name or a path"
        )
    text = os.fspath(name_or_path)
    if not text:
        raise ValueError("name_or_path='' is empty; give a built-in model name or a path")
    path = Path(text)
    if path.is_dir() and (path / CONFIG_NAME).is_file():
        return path
    available = builtin_models(root)
    if isinstance(name_or_path, str) and text in available:
        return _root(root) / text
    if path.is_dir():
        raise ValueError(
            f"{text!r} is a directory without {CONFIG_NAME}, so not a model directory "
            "(expected a training output directory or a built-in model name)"
        )
    if path.exists():
        raise ValueError(f"{text!r} is a file, not a model directory")
    names = ", ".join(sorted(available)) or "none installed"
    raise ValueError(
        f"unknown model {text!r}: not a built-in model (available: {names}) and not a "
        f"directory with {CONFIG_NAME}"
    )
