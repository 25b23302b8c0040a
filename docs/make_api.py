"""Write docs/api.md from the docstrings of sciffd's public modules.

Usage: ``python docs/make_api.py`` (from the repository root).
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

MODULES = [
    "sciffd", "sciffd.backend", "sciffd.grids", "sciffd.spectral", "sciffd.noise",
    "sciffd.fields", "sciffd.stats", "sciffd.sde", "sciffd.models", "sciffd.models.fno",
    "sciffd.models.mean",
    "sciffd.training", "sciffd.sampling", "sciffd.inverse", "sciffd.domains.fluids",
    "sciffd.io", "sciffd.pipeline", "sciffd.validation",
]


def _summary(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.split("\n\n")[0].replace("\n", " ")


def _signature(obj) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"


def main() -> int:
    lines = ["# API reference", "",
             "Generated from the docstrings by `python docs/make_api.py`; the full",
             "docstrings (parameters, shapes, notes, examples) are in the code and in",
             "`help()`.", ""]
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        lines += [f"## `{name}`", "", inspect.getdoc(module) or "", ""]
        public = getattr(module, "__all__", None)
        if public is None:
            continue
        for attr in public:
            obj = getattr(module, attr, None)
            if obj is None or inspect.ismodule(obj):
                continue
            if inspect.isclass(obj) or inspect.isfunction(obj):
                kind = "class" if inspect.isclass(obj) else "function"
                lines.append(f"- **`{attr}{_signature(obj)}`** ({kind}): {_summary(obj)}")
        lines.append("")
    out = Path(__file__).with_name("api.md")
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
