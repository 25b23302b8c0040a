"""Report for a trained ns2d model: spectra and vorticity PDFs against held-out solver data.

Samples the model at 64^2 and 128^2, compares with held-out solver fields,
and writes ``docs/models/ns2d.md`` with plots in ``docs/models/ns2d/``.

Every comparison is stated against the noise floor: the same metric
between two disjoint halves of the held-out set, split by solver member
(snapshots of one member are correlated, members are independent), at the
same sample size as the model ensemble. The Gaussian baseline has the
data's own pointwise mean and per-mode variance (its full anisotropic
spectrum), estimated from the training set.

Usage::

    python validation/ns2d_report.py --model sciffd/builtin/ns2d \\
        --train ns2d_train.nc --test ns2d_test.nc --out docs/models
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import sciffd
from sciffd import io, stats
from sciffd.fields import from_dataarray
from sciffd.grids import TorusGrid
from sciffd.spectral import resample


def _fields(path: str) -> tuple[np.ndarray, np.ndarray, TorusGrid]:
    """Vorticity (member, time, y, x) and the member id of each field, flattened."""
    ds = io.read_netcdf(path)
    w, grid = from_dataarray(ds["vorticity"])
    members = np.repeat(np.arange(w.shape[0]), w.shape[1])
    return w.reshape((-1,) + grid.shape).astype(np.float64), members, grid


def _gaussian_baseline(train: np.ndarray, grid: TorusGrid, n: int, seed: int) -> np.ndarray:
    """Gaussian fields with the training set's pointwise mean and per-mode variance."""
    mean = train.mean(axis=0)
    anomaly_hat = np.fft.rfft2(train - mean, norm="forward")
    var = (np.abs(anomaly_hat) ** 2).mean(axis=0)
    # white noise has E|w_hat[m]|^2 = 1 / prod(N) and Hermitian symmetry built in;
    # colouring it by sqrt(prod(N) var) gives E|u_hat[m]|^2 = var[m] on every mode
    white = np.random.default_rng(seed).standard_normal((n,) + grid.shape)
    coef = np.fft.rfft2(white, norm="forward") * np.sqrt(var * grid.size)
    return mean + np.fft.irfft2(coef, s=grid.shape, norm="forward")


def _metrics(sample: np.ndarray, truth: np.ndarray, grid: TorusGrid, n_max: int,
             values: int, seed: int) -> dict:
    """Spectrum error on shells 1..n_max, flatness, and pointwise PDF distances."""
    e_s = stats.energy_spectrum(sample, grid).mean(axis=0)
    e_t = stats.energy_spectrum(truth, grid).mean(axis=0)
    lse = stats.log_spectral_error(e_s, e_t, n_max=n_max)
    rng = np.random.default_rng(seed)
    a = rng.choice(sample.reshape(-1), values, replace=False)
    b = rng.choice(truth.reshape(-1), values, replace=False)
    return {
        "log_spectral_error_mean": float(lse.mean()),
        "log_spectral_error_max": float(lse.max()),
        "flatness": stats.flatness(sample),
        "skewness": stats.skewness(sample),
        "energy_distance": stats.energy_distance(a, b),
        "wasserstein1": stats.wasserstein1(sample, truth),
        "std": float(sample.std()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ns2d")
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--out", default="docs/models")
    parser.add_argument("--members", type=int, default=120)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(args.out)
    figdir = out / "ns2d"
    figdir.mkdir(parents=True, exist_ok=True)

    train, _, grid = _fields(args.train)
    test, test_members, _ = _fields(args.test)
    n_max = stats.band_limit(grid)

    # two disjoint halves of the held-out set, split by solver member
    ids = np.unique(test_members)
    half_a = test[np.isin(test_members, ids[: ids.size // 2])]
    half_b = test[np.isin(test_members, ids[ids.size // 2:])]
    m = min(args.members, half_a.shape[0], half_b.shape[0])
    half_a, half_b = half_a[:m], half_b[:m]

    model = sciffd.load(args.model)
    samples, seconds = {}, {}
    for n in (64, 128):
        t0 = time.perf_counter()
        ds = model.sample(members=m, grid=n, seed=args.seed, sampler="heun", steps=args.steps,
                          batch_size=40, progress=False)
        seconds[n] = time.perf_counter() - t0
        samples[n] = ds["vorticity"].values.astype(np.float64)
    # the 128^2 ensemble restricted to 64^2, for pointwise and band-limited comparisons
    fine_on_coarse = resample(samples[128], grid.with_shape(128), 64)
    gaussian = _gaussian_baseline(train, grid, m, args.seed)

    values = 20000
    report = {
        "members": m,
        "steps": args.steps,
        "seconds": {str(k): v for k, v in seconds.items()},
        "floor": _metrics(half_a, half_b, grid, n_max, values, 1),
        "model_64": _metrics(samples[64], half_b, grid, n_max, values, 2),
        "model_128_restricted": _metrics(fine_on_coarse, half_b, grid, n_max, values, 3),
        "gaussian": _metrics(gaussian, half_b, grid, n_max, values, 4),
        "truth_flatness": stats.flatness(test),
        "truth_skewness": stats.skewness(test),
    }
    floor = stats.noise_floor(
        lambda x, y: stats.energy_distance(x.reshape(-1)[::7], y.reshape(-1)[::7]),
        half_a, half_b, n_boot=50, seed=0)
    report["energy_distance_floor_interval"] = [floor.low, floor.high]
    (figdir / "metrics.json").write_text(json.dumps(report, indent=2))

    # spectra
    fig, ax = plt.subplots(figsize=(6, 4.2))
    shells = np.arange(1, 44)
    for label, f, g, style in [
        ("held-out solver data", test, grid, "k-"),
        ("model, 64^2", samples[64], grid, "C0--"),
        ("model, 128^2", samples[128], grid.with_shape(128), "C1-."),
        ("Gaussian baseline", gaussian, grid, "C2:"),
    ]:
        e = stats.energy_spectrum(f, g).mean(axis=0)
        k = shells[shells < e.size]
        ax.loglog(k, e[k], style, label=label)
    ea = stats.energy_spectrum(half_a, grid).mean(axis=0)
    eb = stats.energy_spectrum(half_b, grid).mean(axis=0)
    k = shells[shells < ea.size]
    ax.fill_between(k, np.minimum(ea[k], eb[k]), np.maximum(ea[k], eb[k]), color="0.8",
                    label="truth vs truth (floor)")
    ax.axvline(n_max, color="0.5", lw=0.8)
    ax.set_xlabel("wavenumber shell n")
    ax.set_ylabel("E(n)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(figdir / "spectrum.png", dpi=110)
    plt.close(fig)

    # PDFs
    fig, ax = plt.subplots(figsize=(6, 4.2))
    edges = np.linspace(-2.5, 2.5, 81)
    for label, f, style in [("held-out solver data", test, "k-"),
                            ("model, 64^2", samples[64], "C0--"),
                            ("model, 128^2", samples[128], "C1-."),
                            ("Gaussian baseline", gaussian, "C2:")]:
        c, p = stats.histogram_pdf(f, bins=edges)
        ax.semilogy(c, p, style, label=label)
    ax.set_xlabel("vorticity")
    ax.set_ylabel("PDF")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(figdir / "pdf.png", dpi=110)
    plt.close(fig)

    # fields side by side
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.2))
    for axis, (label, f) in zip(axes, [("solver", test[0]), ("model 64^2", samples[64][0]),
                                       ("model 128^2", samples[128][0]),
                                       ("Gaussian", gaussian[0])], strict=True):
        axis.imshow(f, origin="lower", cmap="RdBu_r", vmin=-2, vmax=2)
        axis.set_title(label)
        axis.set_xticks([])
        axis.set_yticks([])
    fig.tight_layout()
    fig.savefig(figdir / "fields.png", dpi=90)
    plt.close(fig)

    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
