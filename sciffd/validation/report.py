"""A validation report: the checks, their numbers and figures, written to a folder.

:func:`write_report` writes into one folder

- ``metrics.json``: every check (value, threshold, tolerance, reason,
  details) and the metrics behind them, with the level, the sizes, the
  package version, the command and the wall time;
- the PNG figures (spectra with floor bands, PDFs, rank histograms,
  fields side by side, variance ratios per band);
- ``report.md``: the result, a table of the checks per group with their
  tolerances and reasons, and the figures linked.

Files are written to a temporary name in the folder and renamed, so a
crash never leaves a half-written report file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..fields import history_stamp
from .checks import CheckResult, jsonable

__all__ = ["Figure", "Report", "write_report"]


@dataclass(frozen=True)
class Figure:
    """A figure of the report: file name, caption and the function that draws it.

    ``draw(path)`` writes the PNG at ``path``.
    """

    filename: str
    caption: str
    draw: Callable[[Path], Any]


@dataclass
class Report:
    """The outcome of a validation run.

    Attributes
    ----------
    title : str
    target : str
        What was validated, in words.
    level : Level
        The sizes used.
    checks : list of CheckResult
    metrics : dict
        JSON-ready numbers behind the checks.
    figures : list of Figure
    seconds : float
        Wall time of the run.
    command : str, optional
        The command line that made it.
    notes : list of str
        Remarks for the reader (how the reference was made, ...).
    """

    title: str
    target: str
    level: Any
    checks: list[CheckResult] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    seconds: float = 0.0
    command: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every check passed (and there is at least one)."""
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[CheckResult]:
        """The checks that failed."""
        return [c for c in self.checks if not c.passed]

    def check(self, name: str) -> CheckResult:
        """The check called ``name``."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check {name!r}; the report has {[c.name for c in self.checks]}")

    def summary(self) -> str:
        """One line per check and a last line with the result."""
        lines = [f"{'PASS' if c.passed else 'FAIL'}  {c.name}: {_value(c.value)} "
                 f"(threshold {c.threshold})" for c in self.checks]
        n, bad = len(self.checks), len(self.failed)
        verdict = "passed" if self.passed else f"FAILED ({bad} of {n} checks)"
        lines.append(f"{self.title}: {verdict} in {self.seconds:.1f} s")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """The JSON content of ``metrics.json``."""
        from .. import __version__

        level = {k: getattr(self.level, k) for k in self.level.__dataclass_fields__}
        return jsonable({
            "title": self.title, "target": self.target, "level": level,
            "passed": self.passed, "checks_total": len(self.checks),
            "checks_failed": len(self.failed), "seconds": round(self.seconds, 2),
            "command": self.command, "sciffd_version": __version__,
            "created": history_stamp(),
            "notes": self.notes, "checks": [c.to_dict() for c in self.checks],
            "metrics": self.metrics,
            "figures": [{"file": f.filename, "caption": f.caption} for f in self.figures],
        })


def _value(v: float) -> str:
    try:
        return f"{float(v):.4g}"
    except (TypeError, ValueError):
        return str(v)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _atomic_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def markdown(report: Report) -> str:
    """The text of ``report.md``."""
    data = report.to_dict()
    n, bad = len(report.checks), len(report.failed)
    verdict = (f"**PASS**: all {n} checks passed" if report.passed
               else f"**FAIL**: {bad} of {n} checks failed")
    lv = report.level
    out = [f"# {report.title}", "", f"- target: {report.target}",
           f"- level: `{lv.name}`", f"- result: {verdict}",
           f"- wall time: {report.seconds:.1f} s on this machine",
           f"- sciffd {data['sciffd_version']}, {data['created']}"]
    if report.command:
        out.append(f"- command: `{report.command}`")
    out += ["", "Every check states its tolerance and why. Statistical bounds hold with "
            f"probability 1 - alpha (alpha = {lv.alpha:g} per check) for a correct model; "
            "noise floors are the same metric between two independent truth samples.", ""]
    for note in report.notes:
        out.append(f"- {note}")
    if report.notes:
        out.append("")

    groups: dict[str, list[CheckResult]] = {}
    for c in report.checks:
        groups.setdefault(c.group, []).append(c)
    for group, checks in groups.items():
        out += [f"## {group}", "", "| result | check | value | threshold | tolerance |",
                "|---|---|---|---|---|"]
        for c in checks:
            out.append(f"| {'pass' if c.passed else '**FAIL**'} | `{c.name}`: {_cell(c.title)}"
                       f" | {_value(c.value)} | {_cell(c.threshold)} | {_cell(c.tolerance)} |")
        out += ["", "Reasons:", ""]
        for c in checks:
            out.append(f"- `{c.name}`: {c.reason}")
        out.append("")
    if report.figures:
        out += ["## Figures", ""]
        for f in report.figures:
            out += [f"### {f.caption}", "", f"![{_cell(f.caption)}]({f.filename})", ""]
    out += ["## Files", "", "- `metrics.json`: every check with its details, and the "
            "metrics behind the figures", ""]
    return "\n".join(out)


def write_report(report: Report, folder: str | os.PathLike) -> Path:
    """Write ``metrics.json``, the figures and ``report.md`` into ``folder``.

    Parameters
    ----------
    report : Report
    folder : path-like
        Created if missing (with its parents).

    Returns
    -------
    pathlib.Path
        The path of ``report.md``.
    """
    if not isinstance(report, Report):
        raise TypeError(f"report must be a sciffd.validation.Report, got "
                        f"{type(report).__name__}")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"report folder {str(folder)!r} is a file; give a directory")
    folder.mkdir(parents=True, exist_ok=True)
    for f in report.figures:
        target = folder / f.filename
        fd, tmp = tempfile.mkstemp(prefix=f".{f.filename}.", suffix=".png", dir=folder)
        os.close(fd)
        try:
            f.draw(Path(tmp))
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
    _atomic_text(folder / "metrics.json", json.dumps(report.to_dict(), indent=1) + "\n")
    path = folder / "report.md"
    _atomic_text(path, markdown(report))
    return path
