"""Shared helpers of the sciffd benchmarks: timing, machine description, doc sections.

The machines these run on are shared, so every figure is the best of
several repeats after a warm-up, and comparisons are made between
figures measured side by side in one run, never across runs.
"""

from __future__ import annotations

import math
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path

__all__ = [
    "best_time",
    "best_times",
    "command_line",
    "git_commit",
    "load_average",
    "machine_lines",
    "markdown_table",
    "replace_section",
]


def best_time(fn: Callable[[], object], repeats: int = 7, warmup: int = 1,
              min_seconds: float = 0.02) -> float:
    """Best wall time of one call of ``fn``, in seconds.

    ``fn`` runs ``warmup`` times first; then each of ``repeats`` rounds
    calls it ``number`` times in a row, ``number`` chosen so that a round
    lasts at least ``min_seconds``, and the fastest round (per call) is
    returned.
    """
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-9)
    number = max(1, math.ceil(min_seconds / once))
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def best_times(fns: Mapping[str, Callable[[], object]], repeats: int = 7, warmup: int = 1,
               min_seconds: float = 0.02) -> dict[str, float]:
    """Best wall time of one call of each function, measured interleaved.

    Like :func:`best_time`, but round ``r`` times every function once
    before round ``r + 1`` starts, so that a neighbour's job that slows
    the machine for a while slows all of them alike, and the best rounds
    of all of them come from the same quiet moments.
    """
    numbers = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        t0 = time.perf_counter()
        fn()
        once = max(time.perf_counter() - t0, 1e-9)
        numbers[name] = max(1, math.ceil(min_seconds / once))
    best = dict.fromkeys(fns, math.inf)
    for _ in range(repeats):
        for name, fn in fns.items():
            number = numbers[name]
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            best[name] = min(best[name], (time.perf_counter() - t0) / number)
    return best


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    flags = re.search(r"^flags\s*:\s*(.+)$", text, re.MULTILINE)
    model = found.group(1).strip() if found else "unknown CPU"
    if flags and "avx512f" in flags.group(1).split():
        model += " (AVX-512)"
    return model


def _memory_gib() -> str:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return "?"
    found = re.search(r"^MemTotal:\s*(\d+) kB", text, re.MULTILINE)
    return f"{int(found.group(1)) / 2**20:.0f}" if found else "?"


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine_lines(packages: Sequence[str]) -> list[str]:
    """Markdown bullet lines describing the machine and the library versions."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count()
    versions = [f"Python {platform.python_version()}"]
    for name in packages:
        v = _version(name)
        versions.append(f"{name} {v}" if v else f"{name} (not installed)")
    return [
        f"- CPU: {_cpu_model()}, {cores} cores available, {_memory_gib()} GiB memory",
        f"- {', '.join(versions)}",
        f"- {platform.system()} {platform.release()}",
    ]


def load_average() -> float | None:
    """The machine's 1-minute load average (runnable threads, all users)."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def command_line() -> str:
    """The command that is running, relative to the repository root where possible."""
    script = Path(sys.argv[0])
    try:
        script = script.resolve().relative_to(Path.cwd())
    except ValueError:
        pass
    return " ".join([".venv/bin/python", str(script), *sys.argv[1:]])


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A GitHub markdown table, first column left-aligned, the others right-aligned."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def replace_section(path: str | Path, key: str, body: str) -> None:
    """Write ``body`` between the markers of section ``key`` in ``path``.

    The markers are ``<!-- begin KEY -->`` and ``<!-- end KEY -->``; a
    missing section is appended, a missing file created. The file is
    replaced atomically.
    """
    path = Path(path)
    begin, end = f"<!-- begin {key} -->", f"<!-- end {key} -->"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def git_commit(paths: Sequence[str] = ("sciffd",)) -> str:
    """The short commit of the working tree, ``+dirty`` when ``paths`` have changes."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no",
                                "--", *paths], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")
