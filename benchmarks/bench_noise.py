"""Noise sampling and spectral operators, side by side with the FFT libraries.

For each grid ``N x N`` and precision, in one run:

- the ``rfft2 + irfft2`` round trip of a batch of real fields with
  numpy.fft, scipy.fft (``workers=T``), torch.fft (``T`` threads, without
  and with ``THP_MEM_ALLOC_ENABLE=1``, each in a subprocess that sets its
  environment before torch allocates) and planned pyFFTW objects (``T``
  threads), when pyFFTW is importable;
- the minimal-work bound of a Gaussian field: ``N^2`` float64 standard
  normals from the fastest numpy bit generator on ``T`` threads, plus one
  inverse transform by the fastest library above (each timed here);
- ``sciffd.noise.Matern(...).sample`` (with and without its optional
  pyFFTW path), ``sciffd.spectral.derivative`` and ``laplacian``.

Figures are fields per second, the best of ``--repeats`` rounds after a
warm-up, all candidates of a grid and precision timed interleaved round by
round (torch in its subprocesses). The tables go to stdout and, unless
``--no-doc``, into the ``bench_noise-T-threads`` section of
``docs/benchmarks.md``.

Usage::

    .venv/bin/python benchmarks/bench_noise.py [--sizes 64 128 256 512]
        [--dtypes float32 float64] [--threads 2] [--repeats 7] [--no-doc]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import scipy.fft
from timing import (
    best_times,
    command_line,
    git_commit,
    load_average,
    machine_lines,
    markdown_table,
    replace_section,
)

ROOT = Path(__file__).resolve().parent.parent
GENERATORS = ("PCG64", "SFC64", "Philox")
# the code this benchmark exercises: a change there marks the commit +dirty
CODE = ["sciffd/backend.py", "sciffd/grids.py", "sciffd/spectral.py", "sciffd/noise.py",
        "sciffd/_nested.py", "benchmarks"]


def batch_size(n: int) -> int:
    """Fields per batch: 64 up to 256^2, fewer above (about 2^22 points a batch)."""
    return int(min(64, max(4, 2**22 // (n * n))))


def cdtype(dtype: str) -> type:
    return np.complex64 if dtype == "float32" else np.complex128


def fields(n: int, dtype: str) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((batch_size(n), n, n)).astype(dtype)


# -- what is timed ---------------------------------------------------------------------
def fft_candidates(n: int, dtype: str, opts) -> dict:
    """Round trips (``rt:``) and inverse transforms (``inv:``) of numpy, scipy, pyFFTW."""
    x = fields(n, dtype)
    w = opts.threads
    x_hat = scipy.fft.rfft2(x, norm="forward", workers=w)
    out = {
        "rt:numpy.fft": lambda: np.fft.irfft2(np.fft.rfft2(x, norm="forward"), s=(n, n),
                                              norm="forward"),
        "inv:numpy.fft": lambda: np.fft.irfft2(x_hat, s=(n, n), norm="forward"),
        f"rt:scipy.fft, workers={w}": lambda: scipy.fft.irfft2(
            scipy.fft.rfft2(x, norm="forward", workers=w), s=(n, n), norm="forward",
            workers=w),
        f"inv:scipy.fft, workers={w}": lambda: scipy.fft.irfft2(
            x_hat, s=(n, n), norm="forward", workers=w),
    }
    out.update(pyfftw_candidates(n, dtype, opts))
    return out


def pyfftw_candidates(n: int, dtype: str, opts) -> dict:
    try:
        import pyfftw
    except ImportError:
        return {}
    b = batch_size(n)
    x = pyfftw.empty_aligned((b, n, n), dtype=dtype)
    x_hat = pyfftw.empty_aligned((b, n, n // 2 + 1), dtype=cdtype(dtype))
    y = pyfftw.empty_aligned((b, n, n), dtype=dtype)
    fwd = pyfftw.FFTW(x, x_hat, axes=(1, 2), direction="FFTW_FORWARD",
                      flags=("FFTW_MEASURE",), threads=opts.threads)
    bwd = pyfftw.FFTW(x_hat, y, axes=(1, 2), direction="FFTW_BACKWARD",
                      flags=("FFTW_MEASURE", "FFTW_DESTROY_INPUT"), threads=opts.threads,
                      normalise_idft=False)
    x[:] = fields(n, dtype)
    fwd.execute()
    saved = x_hat.copy()
    scale = 1.0 / (n * n)

    def round_trip():
        fwd.execute()
        np.multiply(x_hat, scale, out=x_hat)  # norm="forward" on the forward transform
        bwd.execute()

    # the inverse destroys its input: refill it each time, and take the refill off
    def inverse():
        np.copyto(x_hat, saved)
        bwd.execute()

    name = f"pyFFTW, planned, {opts.threads} threads"
    return {f"rt:{name}": round_trip, f"inv:{name}": inverse,
            "refill:pyFFTW": lambda: np.copyto(x_hat, saved)}


def generator_candidates(n: int, opts, pool: ThreadPoolExecutor) -> dict:
    """A batch of N^2 float64 normals per field, drawn on ``threads`` threads."""
    z = np.empty(batch_size(n) * n * n)
    parts = np.array_split(z, opts.threads)
    out = {}
    for name in GENERATORS:
        gens = [np.random.Generator(getattr(np.random, name)(i)) for i in range(len(parts))]

        def draw(gens=gens):
            futures = [pool.submit(g.standard_normal, out=p)
                       for g, p in zip(gens[1:], parts[1:], strict=True)]
            gens[0].standard_normal(out=parts[0])
            for f in futures:
                f.result()

        out[f"gen:{name}"] = draw
    return out


def baseline_noise(commit: str):
    """``sciffd/noise.py`` as it was at ``commit``, loaded beside today's package."""
    source = subprocess.run(["git", "show", f"{commit}:sciffd/noise.py"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    module = types.ModuleType("sciffd._baseline_noise")
    module.__package__ = "sciffd"
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{commit}:sciffd/noise.py", "exec"), module.__dict__)
    return module


def sciffd_candidates(n: int, dtype: str, have_pyfftw: bool, baseline=None) -> dict:
    from sciffd import spectral
    from sciffd.grids import torus
    from sciffd.noise import Matern

    grid = torus(n)
    b = batch_size(n)
    mu = Matern(alpha=2.0, tau=3.0)

    def sample(pyfftw: str):
        def run():
            os.environ["SCIFFD_PYFFTW"] = pyfftw
            mu.sample(grid, b, 1, dtype=dtype)
        return run

    u = mu.sample(grid, b, 2, dtype=dtype)[:, 0]
    out = {"sciffd:sample_scipy": sample("0"),
           "sciffd:spectrum": lambda: mu.sample_spectrum(grid, b, 1, dtype=dtype),
           "sciffd:derivative": lambda: spectral.derivative(u, grid, axis=-1),
           "sciffd:laplacian": lambda: spectral.laplacian(u, grid)}
    if have_pyfftw:
        out["sciffd:sample"] = sample("1")
    if baseline is not None:
        old = baseline.Matern(alpha=2.0, tau=3.0)
        out["sciffd:baseline"] = lambda: old.sample(grid, b, 1, dtype=dtype)
    return out


def torch_worker(opts) -> None:
    """Run in a subprocess: torch.fft and torch's normals, printed as JSON."""
    import torch

    torch.set_num_threads(opts.threads)
    out = {}
    for n in opts.sizes:
        for dtype in opts.dtypes:
            x = torch.from_numpy(fields(n, dtype))
            x_hat = torch.fft.rfft2(x, norm="forward")
            z = torch.empty(batch_size(n) * n * n, dtype=getattr(torch, dtype))
            out[f"{n}/{dtype}"] = best_times({
                "rt": lambda x=x, n=n: torch.fft.irfft2(torch.fft.rfft2(x, norm="forward"),
                                                        s=(n, n), norm="forward"),
                "inv": lambda x_hat=x_hat, n=n: torch.fft.irfft2(x_hat, s=(n, n),
                                                                 norm="forward"),
                "normal": z.normal_,
            }, opts.repeats)
    print(json.dumps(out))


def torch_times(opts, huge_pages: bool) -> dict | None:
    env = dict(os.environ)
    env.pop("THP_MEM_ALLOC_ENABLE", None)
    if huge_pages:
        env["THP_MEM_ALLOC_ENABLE"] = "1"
    cmd = [sys.executable, __file__, "--torch-worker", "--threads", str(opts.threads),
           "--repeats", str(opts.repeats), "--sizes", *map(str, opts.sizes),
           "--dtypes", *opts.dtypes]
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as err:
        print(f"torch worker failed: {getattr(err, 'stderr', err)}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(n: int, dtype: str, opts, pool: ThreadPoolExecutor, have_pyfftw: bool,
            torch_plain: dict | None, torch_thp: dict | None, baseline=None) -> dict:
    """Everything for one grid and precision, interleaved; torch comes from its workers."""
    os.environ["SCIFFD_FFT_WORKERS"] = str(opts.threads)
    fns = {**fft_candidates(n, dtype, opts), **generator_candidates(n, opts, pool),
           **sciffd_candidates(n, dtype, have_pyfftw, baseline)}
    t = best_times(fns, opts.repeats)
    os.environ.pop("SCIFFD_PYFFTW", None)

    libs = {}
    for key, seconds in t.items():
        kind, _, name = key.partition(":")
        if kind in ("rt", "inv"):
            libs.setdefault(name, {})[kind] = seconds
    if "refill:pyFFTW" in t:
        name = f"pyFFTW, planned, {opts.threads} threads"
        libs[name]["inv"] = max(libs[name]["inv"] - t["refill:pyFFTW"], 1e-9)
    key = f"{n}/{dtype}"
    if torch_plain:
        libs[f"torch.fft, {opts.threads} threads"] = torch_plain[key]
    if torch_thp:
        libs[f"torch.fft, {opts.threads} threads, THP_MEM_ALLOC_ENABLE=1"] = torch_thp[key]
    sciffd = {k.partition(":")[2]: v for k, v in t.items() if k.startswith("sciffd:")}
    sciffd.setdefault("sample", sciffd["sample_scipy"])
    return {"libs": libs, "gens": {k[4:]: v for k, v in t.items() if k.startswith("gen:")},
            "sciffd": sciffd, "torch_normal": torch_thp[key]["normal"] if torch_thp else None}


# -- report ------------------------------------------------------------------------
def rate(n: int, seconds: float | None) -> float | None:
    return None if seconds is None else batch_size(n) / seconds


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def run(opts) -> str:
    opts.load_start = load_average()
    pool = ThreadPoolExecutor(max(1, opts.threads - 1))
    torch_plain = torch_times(opts, huge_pages=False)
    torch_thp = torch_times(opts, huge_pages=True)
    try:
        import pyfftw  # noqa: F401
        have_pyfftw = True
    except ImportError:
        have_pyfftw = False
    baseline = baseline_noise(opts.baseline) if opts.baseline else None
    res = {}
    for n in opts.sizes:
        for dtype in opts.dtypes:
            print(f"measuring {n}^2 {dtype} ...", file=sys.stderr, flush=True)
            res[f"{n}/{dtype}"] = measure(n, dtype, opts, pool, have_pyfftw, torch_plain,
                                          torch_thp, baseline)
    pool.shutdown()
    opts.load_end = load_average()
    return report(opts, res, have_pyfftw)


def report(opts, res: dict, have_pyfftw: bool) -> str:
    sizes, dtypes = opts.sizes, opts.dtypes
    head = ["", *[f"{n}^2" for n in sizes]]
    lines = [f"## Noise sampling and spectral operators, {opts.threads} "
             f"thread{'s' if opts.threads != 1 else ''}", "",
             "Fields per second (higher is better), best of "
             f"{opts.repeats} rounds after a warm-up, batches of "
             + ", ".join(f"{batch_size(n)} fields at {n}^2" for n in sizes) + ".",
             "The machine is shared with other developers, so single figures are "
             "noisy (+-10% or worse); compare the figures of one table, which were "
             "measured side by side in the same run.", "",
             f"Produced by `{command_line()}` at commit {git_commit(CODE)} on:", "",
             *machine_lines(["numpy", "scipy", "torch", "pyFFTW", "sciffd"]),
             f"- 1-minute load average {opts.load_start} when the run started, "
             f"{opts.load_end} when it ended ({os.cpu_count()} cores: other jobs ran "
             "meanwhile)", ""]

    for dtype in dtypes:
        lines += [f"### rfft2 + irfft2 round trip, {dtype}", ""]
        names = list(res[f"{sizes[0]}/{dtype}"]["libs"])
        rows = [[name, *[fmt(rate(n, res[f"{n}/{dtype}"]["libs"][name]["rt"]))
                         for n in sizes]] for name in names]
        lines += markdown_table(head, rows) + [""]

    lines += ["### Standard normals, millions per second on "
              f"{opts.threads} threads", ""]

    def mega(n: int, seconds: float) -> str:
        return f"{batch_size(n) * n * n / seconds / 1e6:.0f}"

    rows = [[f"numpy {g}, float64", *[mega(n, res[f"{n}/{dtypes[0]}"]["gens"][g]) for n in sizes]]
            for g in GENERATORS]
    for dtype in dtypes:
        if res[f"{sizes[0]}/{dtype}"]["torch_normal"] is not None:
            rows.append([f"torch normal_, {dtype} (THP)",
                         *[mega(n, res[f"{n}/{dtype}"]["torch_normal"]) for n in sizes]])
    lines += markdown_table(head, rows) + [""]

    for dtype in dtypes:
        lines += [f"### Noise sampling, Matern(alpha=2, tau=3), {dtype}", ""]
        rows = {k: [] for k in ("bound", "ifft", "gen", "sample", "scipy", "spectrum",
                                "r_bound", "r_rt", "r_bound_scipy", "rt", "baseline",
                                "torch_bound")}
        for n in sizes:
            r = res[f"{n}/{dtype}"]
            gen = min(r["gens"], key=r["gens"].get)
            lib_inv = min(r["libs"], key=lambda k, r=r: r["libs"][k]["inv"])
            lib_rt = min(r["libs"], key=lambda k, r=r: r["libs"][k]["rt"])
            t_bound = r["gens"][gen] + r["libs"][lib_inv]["inv"]
            scipy_key = f"scipy.fft, workers={opts.threads}"
            t_bound_scipy = r["gens"][gen] + r["libs"][scipy_key]["inv"]
            s = r["sciffd"]
            rows["gen"].append(gen)
            rows["ifft"].append(lib_inv.split(",")[0])
            rows["bound"].append(fmt(rate(n, t_bound)))
            best_rt = fmt(rate(n, r["libs"][lib_rt]["rt"]))
            rows["rt"].append(f"{best_rt} ({lib_rt.split(',')[0]})")
            rows["sample"].append(fmt(rate(n, s["sample"])))
            rows["scipy"].append(fmt(rate(n, s["sample_scipy"])))
            rows["spectrum"].append(fmt(rate(n, s["spectrum"])))
            rows["baseline"].append(fmt(rate(n, s.get("baseline"))))
            rows["r_bound"].append(f"{t_bound / s['sample']:.2f}")
            rows["r_rt"].append(f"{r['libs'][lib_rt]['rt'] / s['sample']:.2f}")
            rows["r_bound_scipy"].append(f"{t_bound_scipy / s['sample_scipy']:.2f}")
            if r["torch_normal"] is not None:
                t_torch = r["torch_normal"] + r["libs"][lib_inv]["inv"]
                rows["torch_bound"].append(fmt(rate(n, t_torch)))
        table = [
            ["fastest generator (float64 normals)", *rows["gen"]],
            ["fastest inverse transform", *rows["ifft"]],
            ["minimal-work bound: normals + one inverse", *rows["bound"]],
            *([[f"same with torch's {dtype} normals (other numbers)", *rows["torch_bound"]]]
              if rows["torch_bound"] else []),
            ["best round trip", *rows["rt"]],
            ["**sciffd `sample`**" + (" (pyFFTW path)" if have_pyfftw else ""),
             *[f"**{v}**" for v in rows["sample"]]],
            ["sciffd `sample`, scipy.fft only (`SCIFFD_PYFFTW=0`)", *rows["scipy"]],
            ["sciffd `sample_spectrum` (no transform)", *rows["spectrum"]],
            *([[f"sciffd `sample` at {opts.baseline} (before this work)", *rows["baseline"]]]
              if opts.baseline else []),
            ["ratio sample / bound", *rows["r_bound"]],
            ["ratio sample / best round trip", *rows["r_rt"]],
            ["ratio sample (scipy only) / bound with scipy's inverse",
             *rows["r_bound_scipy"]],
        ]
        lines += markdown_table(head, table) + [""]

    for dtype in dtypes:
        lines += [f"### Spectral operators, {dtype}", ""]
        scipy_key = f"scipy.fft, workers={opts.threads}"
        table = []
        for op, label in (("derivative", "`spectral.derivative(u, grid, axis=-1)`"),
                          ("laplacian", "`spectral.laplacian(u, grid)`")):
            table.append([label, *[fmt(rate(n, res[f"{n}/{dtype}"]["sciffd"][op]))
                                   for n in sizes]])
            ratios = []
            for n in sizes:
                r = res[f"{n}/{dtype}"]
                ratios.append(f"{r['libs'][scipy_key]['rt'] / r['sciffd'][op]:.2f}")
            table.append([f"speed of `{op}` / speed of the scipy.fft round trip", *ratios])
        lines += markdown_table(head, table) + [""]
    return "\n".join(lines)


def section_key(opts) -> str:
    """The section of the doc a run writes: one per thread count."""
    return f"bench_noise-{opts.threads}-thread" + ("s" if opts.threads != 1 else "")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"],
                        choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--doc", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--no-doc", action="store_true", help="print only")
    parser.add_argument("--baseline", metavar="COMMIT",
                        help="also time Matern.sample from sciffd/noise.py at COMMIT")
    parser.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.torch_worker:
        torch_worker(opts)
        return
    text = run(opts)
    print(text)
    if not opts.no_doc:
        replace_section(opts.doc, section_key(opts), text)
        print(f"updated {opts.doc}", file=sys.stderr)


if __name__ == "__main__":
    main()
