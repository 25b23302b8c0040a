"""Sampling time per member of a trained model at 64^2 and 128^2, side by side.

For each resolution, in one run: one evaluation of the model's denoiser on
a batch, one Heun step and one Euler-Maruyama step (the noise draw
included), and a whole ensemble with the default sampler; reported as
seconds per member, per model evaluation, and as the 128^2 / 64^2 ratio.

Usage (from the repository root)::

    THP_MEM_ALLOC_ENABLE=1 .venv/bin/python benchmarks/bench_sampling.py --model ns2d
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import (  # noqa: E402
    best_time,
    command_line,
    git_commit,
    load_average,
    machine_lines,
    markdown_table,
    replace_section,
)

ROOT = Path(__file__).resolve().parents[1]


def _time_resolution(fm, n: int, opts) -> tuple[list[str], float]:
    """Timings at ``n^2``: one table row and the seconds per member of a whole run."""
    import torch

    from sciffd.sampling import EulerMaruyama, Heun, sample

    model = fm.model
    grid = fm.resolve_grid(n)
    batch = opts.batch
    u = model.noise.sample(grid, batch, seed=0, backend_name="torch")
    noise = model.noise.sample(grid, batch, seed=0, backend_name="torch", stream=3)
    heun, em = Heun(steps=opts.heun_steps), EulerMaruyama(steps=opts.em_steps)
    times = heun.times(model.process)
    t, t_next = float(times[10]), float(times[11])

    def evaluate():
        with torch.no_grad():
            model.denoise(u, t, grid)

    def heun_step():
        with torch.no_grad():
            heun.step(model, grid, u, t, t_next)

    def em_step():
        with torch.no_grad():
            em.step(model, grid, u, t, t_next, noise=noise)

    def draw():
        model.noise.sample(grid, batch, seed=0, backend_name="torch", stream=5)

    t_eval = best_time(evaluate, repeats=opts.repeats)
    t_heun = best_time(heun_step, repeats=opts.repeats)
    t_em = best_time(em_step, repeats=opts.repeats) + best_time(draw, repeats=opts.repeats)
    t0 = time.perf_counter()
    sample(model, grid, members=batch, seed=1, sampler=heun, progress=False)
    t_run = (time.perf_counter() - t0) / batch
    row = [f"{n}^2", f"{t_eval / batch * 1e3:.2f}", f"{t_heun / batch * 1e3:.2f}",
           f"{t_em / batch * 1e3:.2f}", f"{t_run:.2f}", f"{opts.em_steps * t_em / batch:.2f}"]
    return row, t_run


def run(opts) -> str:
    import torch

    import sciffd

    torch.set_num_threads(opts.threads)
    fm = sciffd.load(opts.model)
    rows, per_member = [], {}
    for n in opts.sizes:
        row, per_member[n] = _time_resolution(fm, n, opts)
        rows.append(row)
    ratio = ""
    if len(opts.sizes) == 2:
        a, b = opts.sizes
        ratio = (f"\nSampling time per member, {b}^2 / {a}^2 (Heun): "
                 f"{per_member[b] / per_member[a]:.2f} (the grid has "
                 f"{(b / a) ** 2:.0f}x the points).\n")
    lines = [
        f"### Sampling a trained model (`{opts.model}`), batch of {opts.batch} members, "
        f"{opts.threads} torch threads",
        "",
        f"Command: `{command_line()}`; commit {git_commit()}; load average at start "
        f"{load_average()}.",
        "",
        *machine_lines(["torch", "numpy", "scipy"]),
        "",
        *markdown_table(
            ["grid", "denoiser, ms/member", "Heun step, ms/member",
             "EM step + noise, ms/member", f"Heun({opts.heun_steps}) run, s/member",
             f"EM({opts.em_steps}) estimate, s/member"], rows),
        ratio,
        "A Heun step costs two denoiser evaluations (one on the last step); the run "
        "column is a whole ensemble drawn with `sciffd.sampling.sample`, noise, progress "
        "bookkeeping and the final denoising included.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ns2d")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--heun-steps", type=int, default=64)
    parser.add_argument("--em-steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--doc", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--no-doc", action="store_true")
    opts = parser.parse_args(argv)
    text = run(opts)
    print(text)
    if not opts.no_doc:
        replace_section(opts.doc, f"bench_sampling-{opts.model}", text)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
