"""The figures of a validation report, drawn with matplotlib's object API.

Figures are made with :class:`matplotlib.figure.Figure` and saved with
its Agg canvas, so that drawing a report neither needs a display nor
changes the pyplot backend of the caller. Every function writes one
small PNG (90 dpi) and returns its path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "band_ratio_figure",
    "convergence_figure",
    "fields_figure",
    "pdf_figure",
    "rank_histogram_figure",
    "spectra_figure",
    "weights_figure",
]

DPI = 90


def _figure(width: float = 6.4, height: float = 4.0) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=DPI)
    return path


def band_ratio_figure(path: str | Path, tests: Sequence[Any], title: str) -> Path:
    """Per-band variance ratios (ensemble / exact law), each with its chi-square interval."""
    fig = _figure()
    ax = fig.subplots()
    shown = list(tests)[:6]
    for i, t in enumerate(shown):
        centres = np.array([np.sqrt(lo * hi) for lo, hi in t.bands], dtype=float)
        centres = centres * (1 + 0.05 * (i - (len(shown) - 1) / 2))
        line = ax.plot(centres, t.ratios, "o", ms=4, label=t.label)[0]
        ax.vlines(centres, t.low, t.high, color=line.get_color(), lw=2, alpha=0.35)
    from matplotlib.ticker import ScalarFormatter

    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_xlabel("shell n (octave band, geometric centre)")
    ax.set_ylabel("variance / exact law (bars: interval)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, path)


def spectra_figure(path: str | Path, spectra: Mapping[str, np.ndarray], title: str, *,
                   band: tuple[np.ndarray, np.ndarray] | None = None,
                   band_label: str = "", n_max: int | None = None) -> Path:
    """Spectra ``P(n)`` (log-log, from ``n = 1``), optionally with a floor band.

    Pass each spectrum up to the last shell its grid resolves in every
    direction (``n < N/2``); the corner shells beyond hold few modes.
    A label starting with ``"exact"`` is drawn as a dashed black line.
    """
    from matplotlib.ticker import ScalarFormatter

    fig = _figure()
    ax = fig.subplots()
    if band is not None:
        lo, hi = band
        n = np.arange(1, lo.size + 1)
        ax.fill_between(n, lo, hi, color="0.7", alpha=0.5, label=band_label, lw=0)
    for label, p in spectra.items():
        if p is None:
            continue
        p = np.asarray(p, dtype=float)
        n = np.arange(1, p.size)
        style = {"color": "k", "ls": "--", "lw": 1.0} if label.startswith("exact") \
            else {"lw": 1.2}
        ax.loglog(n, np.where(p[1:] > 0, p[1:], np.nan), label=label, **style)
    if n_max is not None:
        ax.axvline(n_max, color="k", ls=":", lw=0.8, label=f"n = N/3 = {n_max}")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_xlabel("shell n")
    ax.set_ylabel("power spectrum P(n)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, path)


def pdf_figure(path: str | Path, values: Mapping[str, np.ndarray], title: str,
               units: str = "1") -> Path:
    """Histograms of pooled pointwise values (density, log scale)."""
    fig = _figure()
    ax = fig.subplots()
    finite = [np.asarray(v, dtype=float).reshape(-1) for v in values.values()]
    finite = [v[np.isfinite(v)] for v in finite]
    lo = min(float(v.min()) for v in finite if v.size)
    hi = max(float(v.max()) for v in finite if v.size)
    edges = np.linspace(lo, hi, 61)
    for (label, _), v in zip(values.items(), finite, strict=True):
        pdf, _ = np.histogram(v, bins=edges, density=True)
        centres = 0.5 * (edges[1:] + edges[:-1])
        ax.semilogy(centres, np.where(pdf > 0, pdf, np.nan), label=label, lw=1.2)
    ax.set_xlabel(f"value [{units}]")
    ax.set_ylabel("probability density")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, path)


def fields_figure(path: str | Path, rows: Mapping[str, np.ndarray], title: str) -> Path:
    """Fields side by side: one row per label, up to four fields each, one colour scale."""
    rows = {k: np.asarray(v, dtype=float)[:4] for k, v in rows.items()}
    cols = max(v.shape[0] for v in rows.values())
    fig = _figure(1.6 * cols + 0.8, 1.6 * len(rows) + 0.4)
    axes = np.atleast_2d(fig.subplots(len(rows), cols, squeeze=False))
    finite = np.concatenate([v[np.isfinite(v)].reshape(-1) for v in rows.values()])
    vmax = float(np.quantile(np.abs(finite), 0.995)) if finite.size else 1.0
    image = None
    for i, (label, fields) in enumerate(rows.items()):
        for j in range(cols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < fields.shape[0]:
                image = ax.imshow(fields[j], origin="lower", cmap="RdBu_r", vmin=-vmax,
                                  vmax=vmax)
            if j == 0:
                ax.set_ylabel(label, fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8)
    fig.suptitle(title, fontsize=10)
    # fields hold fine structure that compresses poorly: a lower resolution keeps
    # the file small
    fig.savefig(Path(path), dpi=72)
    return Path(path)


def rank_histogram_figure(path: str | Path, counts: np.ndarray, title: str) -> Path:
    """Counts of the truth's rank, with the flat expectation."""
    fig = _figure()
    ax = fig.subplots()
    counts = np.asarray(counts)
    ax.bar(np.arange(counts.size), counts, color="C0")
    ax.axhline(counts.sum() / counts.size, color="k", lw=0.8, label="flat")
    ax.set_xlabel("rank of the truth among the members")
    ax.set_ylabel("count")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, path)


def weights_figure(path: str | Path, counts: Sequence[np.ndarray], weights: np.ndarray,
                   title: str) -> Path:
    """Observed component frequencies per ensemble beside the mixture weights."""
    fig = _figure()
    ax = fig.subplots()
    k = len(weights)
    width = 0.8 / (len(counts) + 1)
    x = np.arange(k)
    ax.bar(x, weights, width, label="weights w_j", color="k", alpha=0.6)
    for i, c in enumerate(counts):
        c = np.asarray(c, dtype=float)
        n = c.sum()
        freq = c / n
        err = np.sqrt(np.asarray(weights) * (1 - np.asarray(weights)) / n)
        ax.bar(x + (i + 1) * width, freq, width, yerr=3 * err, capsize=2,
               label=f"ensemble {i + 1} (3 sd)")
    ax.set_xticks(x + 0.4 - width / 2, [f"component {j + 1}" for j in range(k)])
    ax.set_ylabel("frequency")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, path)


def convergence_figure(path: str | Path, shapes: Sequence[Sequence[int]],
                       series: Mapping[str, Sequence[float]], title: str,
                       allowance: float = 0.05) -> Path:
    """Relative change of quantities from the coarsest grid, against the resolution.

    The grey band is the allowance of the convergence checks, ``+-allowance``.
    """
    from matplotlib.ticker import NullFormatter

    fig = _figure()
    ax = fig.subplots()
    n = [s[0] for s in shapes]
    ax.axhspan(-allowance, allowance, color="0.85", label=f"allowance +-{allowance:g}")
    top = allowance
    for label, values in series.items():
        v = np.asarray(values, dtype=float)
        change = v / v[0] - 1
        top = max(top, float(np.nanmax(np.abs(change))))
        ax.semilogx(n, change, "o-", label=label)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_ylim(-1.2 * top, 1.2 * top)
    ax.set_xticks(n, [str(x) for x in n])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("points per axis N")
    ax.set_ylabel("relative change from the coarsest grid")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, path)
