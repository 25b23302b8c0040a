"""Report for a trained ns2d model: spectra and vorticity PDFs against held-out solver data.

Samples the model at 64^2 and 128^2, compares with held-out solver fields,
and writes ``docs/models/ns2d.md`` with plots and ``metrics.json`` in
``docs/models/ns2d/``.

Every comparison is stated against the noise floor, the distribution of
the same metric between truth and truth. The held-out members are split at
random into two halves (snapshots of one member are correlated, members
are independent); the reference is every field of one half, and the floor
sample is as many fields of the other half as the model ensemble has
members. Over ``--splits`` random splits the report gives the floor's
median and 95% quantile, and the model's and the baseline's metric
against the same references (their mean over the splits). One split alone
is not enough: the energy in the high shells varies by a factor of 2-3
between members and decays over the snapshot window, so one pair of halves
can be far closer, or further apart, than is typical. The Gaussian baseline
has the data's own pointwise mean and per-mode variance (its full
anisotropic spectrum), estimated from the training set.

Usage::

    python validation/ns2d_report.py --model ns2d --train ns2d_train.nc \\
        --test ns2d_test.nc --out docs/models --members 64 --steps 32
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


#: metrics of a sample against a reference (smaller is closer)
METRICS = ("log_spectral_error_mean", "log_spectral_error_max", "flatness_error",
           "energy_distance", "wasserstein1")


def _metrics(sample: np.ndarray, spectra: np.ndarray, reference: np.ndarray,
             ref_spectra: np.ndarray, n_max: int, values: int,
             rng: np.random.Generator) -> dict:
    """Spectrum error on shells 1..n_max, flatness error and pointwise PDF distances.

    ``spectra`` and ``ref_spectra`` are the per-field energy spectra of
    ``sample`` and ``reference``.
    """
    lse = stats.log_spectral_error(spectra.mean(axis=0), ref_spectra.mean(axis=0), n_max=n_max)
    a = rng.choice(sample.reshape(-1), values, replace=False)
    b = rng.choice(reference.reshape(-1), values, replace=False)
    return {
        "log_spectral_error_mean": float(lse.mean()),
        "log_spectral_error_max": float(lse.max()),
        "flatness_error": abs(stats.flatness(sample) - stats.flatness(reference)),
        "energy_distance": stats.energy_distance(a, b),
        "wasserstein1": stats.wasserstein1(sample, reference),
    }


def _compare(ensembles: dict, test: np.ndarray, members: np.ndarray, grid: TorusGrid,
             n_max: int, m: int, splits: int, seed: int, values: int = 20000) -> dict:
    """Every ensemble and the truth-vs-truth floor over random member splits (module notes)."""
    rng = np.random.default_rng(seed)
    test_spectra = stats.energy_spectrum(test, grid)
    spectra = {name: stats.energy_spectrum(x, grid) for name, x in ensembles.items()}
    ids = np.unique(members)
    rows: dict[str, list] = {name: [] for name in ("floor", *ensembles)}
    for _ in range(splits):
        perm = rng.permutation(ids)
        in_a = np.isin(members, perm[: ids.size // 2])
        ref = np.flatnonzero(~in_a)
        pick = rng.choice(np.flatnonzero(in_a), size=min(m, int(in_a.sum())), replace=False)
        rows["floor"].append(_metrics(test[pick], test_spectra[pick], test[ref],
                                      test_spectra[ref], n_max, values, rng))
        for name, x in ensembles.items():
            rows[name].append(_metrics(x, spectra[name], test[ref], test_spectra[ref],
                                       n_max, values, rng))
    out: dict = {"splits": splits, "reference_fields": int(ref.size),
                 "floor_fields": int(pick.size)}
    floor = {k: np.array([r[k] for r in rows["floor"]]) for k in METRICS}
    out["floor"] = {k: {"median": float(np.median(v)), "q95": float(np.quantile(v, 0.95))}
                    for k, v in floor.items()}
    for name in ensembles:
        vals = {k: np.array([r[k] for r in rows[name]]) for k in METRICS}
        out[name] = {k: float(v.mean()) for k, v in vals.items()}
        out[name]["within_floor"] = {k: bool(vals[k].mean() <= out["floor"][k]["q95"])
                                     for k in METRICS}
    return out


def _g(x: float, n: int = 3) -> str:
    return f"{x:.{n}g}"


def _how_sampled(stop: float | None) -> str:
    if stop is None:
        return ("**How it is sampled.** The reverse process runs to `t_min` (the model "
                "has no `sampling.sigma_stop`), so the two model-64^2 columns agree.")
    return f"""**How it is sampled.** As `sciffd sample` does by default for this model:
the reverse process runs down to the noise level `sigma = {_g(stop)}` and
the last step draws from the Gaussian posterior about the learned
denoiser, `D(u) + N(0, V)` (`sciffd.sampling.gaussian_posterior_step`;
the model's `sampling.sigma_stop`). The column "integrated to `t_min`"
samples the same members with the reverse process run to its end
(`--sigma-stop none`), for comparison: there the network's shells 4-6
come out short of variance (`sciffd/builtin/ns2d/README.md`)."""


def _markdown(report: dict, n_max: int) -> str:
    """``docs/models/ns2d.md`` from the report's numbers."""
    c = report["comparison"]
    fl, m64, m128, g = c["floor"], c["model_64"], c["model_128_restricted"], c["gaussian"]
    full = c["model_64_to_t_min"]
    fa, st = report["flatness"], report["std"]
    names = {"log_spectral_error_mean": f"energy spectrum, mean log10 error on shells 1..{n_max}"
             " (`k <= N/3`)",
             "log_spectral_error_max": f"energy spectrum, max log10 error on shells 1..{n_max}",
             "flatness_error": "vorticity flatness, distance to the reference's",
             "energy_distance": "energy distance of pointwise vorticity",
             "wasserstein1": "Wasserstein-1 of pointwise vorticity"}
    rows = "\n".join(
        f"| {names[k]} | {_g(fl[k]['median'])} / {_g(fl[k]['q95'])} | {_g(m64[k])} | "
        f"{_g(m128[k])} | {_g(full[k])} | {_g(g[k])} |" for k in METRICS)
    spec_ok = m64["within_floor"]["log_spectral_error_mean"] and \
        m64["within_floor"]["log_spectral_error_max"]
    ed_better = m64["energy_distance"] < g["energy_distance"]
    flat_better = m64["flatness_error"] < g["flatness_error"]
    d_flat_m = abs(fa["model_64"] - fa["truth"])
    d_flat_g = abs(fa["gaussian"] - fa["truth"])
    flat_factor = max(d_flat_g, 1e-12) / max(d_flat_m, 1e-12)
    ed_ratio = g["energy_distance"] / m64["energy_distance"]
    ed_factor = ed_ratio if ed_better else 1 / ed_ratio
    cols = ("truth", "train", "model_64", "model_128_restricted", "model_64_to_t_min",
            "gaussian")
    flat_row = " | ".join(_g(fa[k], 4) for k in cols)
    std_row = " | ".join(_g(st[k], 4) for k in cols)
    stop = report["sigma_stop"]
    head = ("| metric | truth vs truth (floor: median / 95%) | model 64^2 | "
            "model 128^2 (restricted to 64^2) | model 64^2, integrated to t_min | "
            "Gaussian baseline |")
    head2 = ("| | held-out truth | training set | model 64^2 | model 128^2 (restricted) | "
             "model 64^2, to t_min | Gaussian baseline |")
    return f"""# ns2d: how well the built-in model matches the solver

The model `{report['model']}` sampled with Heun ({report['steps']} steps) at 64^2 and
at 128^2 (a resolution it was not trained on), {report['members']} members each,
against held-out solver fields (`ns2d` held-out set, seed 1, 52 solver
members x 5 snapshots, never seen in training).

{_how_sampled(stop)}

**Noise floor.** The held-out members are split at random into two halves,
{c['splits']} times. The reference is every field of one half
({c['reference_fields']} fields); the floor is the same metric between
{c['floor_fields']} fields of the other half (as many as the model ensemble
has members) and that reference. The model and the baseline are compared
with the same references, and their figures are means over the splits.
The floor column gives the median and the 95% quantile of the floor.
A single pair of halves is not enough here: the energy of the high shells
varies by a factor of 2-3 between members and decays over the snapshot
window (`t = 40 .. 50`), so one split can be far closer or further apart
than is typical.
**Gaussian baseline.** Gaussian fields with the training set's own
pointwise mean and per-mode variance (its full anisotropic spectrum).

## Results

{head}
|---|---|---|---|---|---|
{rows}

{head2}
|---|---|---|---|---|---|---|
| vorticity flatness | {flat_row} |
| pointwise standard deviation | {std_row} |

Sampling time for the {report['members']} members: {report['seconds']['64']:.0f} s at 64^2 and
{report['seconds']['128']:.0f} s at 128^2 (2-core machine; see `docs/benchmarks.md` for
measured ratios).

![energy spectra](ns2d/spectrum.png)
![vorticity PDFs](ns2d/pdf.png)
![fields](ns2d/fields.png)

## Reading the numbers

- **Spectrum.** On shells 1..{n_max} the model's mean log10 error is
  {_g(m64['log_spectral_error_mean'])} against a floor whose 95% quantile is
  {_g(fl['log_spectral_error_mean']['q95'])}, and its largest is
  {_g(m64['log_spectral_error_max'])} against {_g(fl['log_spectral_error_max']['q95'])}:
  **the requirement "match the spectrum on k <= N/3" is
  {'met' if spec_ok else 'not met'}** at this sample size.
- **PDF.** The solver's vorticity is sub-Gaussian (flatness {_g(fa['truth'], 3)}).
  The model's flatness is {_g(d_flat_m, 2)} from the truth's, the Gaussian
  baseline's {_g(d_flat_g, 2)}: the model is
  {'closer' if flat_better else 'further'} by a factor {_g(flat_factor, 2)}. The energy
  distance of pointwise values is
  {_g(m64['energy_distance'])} for the model and {_g(g['energy_distance'])} for the baseline
  (floor 95%: {_g(fl['energy_distance']['q95'])}): the model is
  **{'better' if ed_better else 'worse'}** than the Gaussian baseline by a factor
  {_g(ed_factor, 2)}.
- **Resolution.** The 128^2 ensemble restricted to 64^2 is drawn from the
  same seeds: its figures next to the 64^2 ones show the model's
  discretisation invariance on the band both grids hold.

## Reproduce

```bash
python validation/ns2d_report.py --model ns2d --train ns2d_train.nc --test ns2d_test.nc \\
    --out docs/models --members {report['members']} --steps {report['steps']}
```

with the two data sets made as in `datasets/README.md`.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ns2d")
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--out", default="docs/models")
    parser.add_argument("--members", type=int, default=64)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--splits", type=int, default=100)
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
    half = int(np.isin(test_members, np.unique(test_members)[: test_members.max() // 2 + 1])
               .sum())
    m = min(args.members, half)

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
    to_t_min = model.sample(members=m, grid=64, seed=args.seed, sampler="heun",
                            steps=args.steps, batch_size=40, progress=False, sigma_stop=None)

    ensembles = {"model_64": samples[64], "model_128_restricted": fine_on_coarse,
                 "model_64_to_t_min": to_t_min["vorticity"].values.astype(np.float64),
                 "gaussian": gaussian}
    report = {
        "model": str(args.model),
        "members": m,
        "steps": args.steps,
        "sigma_stop": model.default_sigma_stop,
        "seconds": {str(k): v for k, v in seconds.items()},
        "comparison": _compare(ensembles, test, test_members, grid, n_max, m, args.splits,
                               args.seed),
        "flatness": {"truth": stats.flatness(test), "train": stats.flatness(train),
                     **{k: stats.flatness(v) for k, v in ensembles.items()}},
        "skewness": {"truth": stats.skewness(test),
                     **{k: stats.skewness(v) for k, v in ensembles.items()}},
        "std": {"truth": float(test.std()), "train": float(train.std()),
                **{k: float(v.std()) for k, v in ensembles.items()}},
    }
    (figdir / "metrics.json").write_text(json.dumps(report, indent=2))
    (out / "ns2d.md").write_text(_markdown(report, n_max))

    # spectra, with the spread of the truth's spectrum over random halves
    rng = np.random.default_rng(args.seed)
    test_spectra = stats.energy_spectrum(test, grid)
    ids = np.unique(test_members)
    halves = np.stack([test_spectra[np.isin(test_members, rng.permutation(ids)[: ids.size // 2])]
                       .mean(axis=0) for _ in range(args.splits)])
    fig, ax = plt.subplots(figsize=(6, 4.2))
    shells = np.arange(1, 44)
    k = shells[shells < halves.shape[1]]
    ax.fill_between(k, np.quantile(halves[:, k], 0.025, axis=0),
                    np.quantile(halves[:, k], 0.975, axis=0), color="0.8",
                    label="truth, random halves (95%)")
    for label, f, g, style in [
        ("held-out solver data", test, grid, "k-"),
        ("model, 64^2", samples[64], grid, "C0--"),
        ("model, 128^2", samples[128], grid.with_shape(128), "C1-."),
        ("model, 64^2, integrated to t_min", ensembles["model_64_to_t_min"], grid, "C3-"),
        ("Gaussian baseline", gaussian, grid, "C2:"),
    ]:
        e = stats.energy_spectrum(f, g).mean(axis=0)
        kk = shells[shells < e.size]
        ax.loglog(kk, e[kk], style, label=label)
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
