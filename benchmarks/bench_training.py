"""Seconds per training step of the FNO denoiser: batch 16 on 64^2, side by side.

One step is what :func:`sciffd.training.train` does per iteration: draw the
batch (data, nested noise, noise levels), forward, backward, gradient
clipping, AdamW and the EMA update. Each configuration runs in its own
subprocess, with and without ``THP_MEM_ALLOC_ENABLE=1`` (torch reads it
before its first allocation), and the configurations of one run are
interleaved round by round so that a neighbour's load hits them alike.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_training.py
    .venv/bin/python benchmarks/bench_training.py --configs 24x12 32x12 --threads 2 --rounds 30

A configuration ``WxM`` is width ``W`` and ``M`` modes (4 layers). Prints a
markdown table: best and median seconds per step, the weights' size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, sys, time
import numpy as np, torch
from sciffd.grids import torus
from sciffd.models.fno import FNO, FNODenoiser, default_noise
from sciffd.sde import VPProcess
from sciffd.training.dsm import draw_batch, network_loss
from sciffd.training.ema import EMA

configs, threads, rounds, size, batch = json.loads(sys.argv[1])
torch.set_num_threads(threads)
g = torus(size)
noise = default_noise(g)
data = np.random.default_rng(0).standard_normal((256, 1, size, size)).astype(np.float32)
samples = torch.as_tensor(data)
runs = {}
for name in configs:
    width, modes = map(int, name.split("x"))
    torch.manual_seed(0)
    net = FNO(1, width=width, modes=modes)
    model = FNODenoiser(net, VPProcess(), noise)
    runs[name] = (model, torch.optim.AdamW(net.parameters(), lr=1e-3), EMA(net, 0.999))

def step(name, n):
    model, opt, ema = runs[name]
    b = draw_batch(samples, g, model.process, noise, step=n, batch_size=batch, seed=0)
    opt.zero_grad(set_to_none=True)
    loss = network_loss(model, b)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.network.parameters(), 1.0)
    opt.step()
    ema.update(model.network, n)

times = {name: [] for name in runs}
for n in range(rounds + 3):
    for name in runs:
        t0 = time.perf_counter()
        step(name, n)
        if n >= 3:
            times[name].append(time.perf_counter() - t0)
out = {name: {"best": min(v), "median": sorted(v)[len(v) // 2],
              "mb": runs[name][0].network.parameter_count() * 4 / 1e6}
       for name, v in times.items()}
print(json.dumps(out))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["24x12", "32x12", "32x8", "16x12"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args(argv)

    payload = json.dumps([args.configs, args.threads, args.rounds, args.size, args.batch])
    results = {}
    for thp in ("0", "1"):
        env = dict(os.environ, THP_MEM_ALLOC_ENABLE=thp)
        done = subprocess.run([sys.executable, "-c", CHILD, payload], env=env, check=True,
                              capture_output=True, text=True)
        results[thp] = json.loads(done.stdout.strip().splitlines()[-1])

    print(f"batch {args.batch}, {args.size}^2, 4 layers, {args.threads} thread(s), "
          f"{args.rounds} rounds; load average {os.getloadavg()[0]:.2f}")
    print("| width x modes | weights (MB) | s/step | s/step, THP | median, THP |")
    print("|---|---|---|---|---|")
    for name in args.configs:
        plain, thp = results["0"][name], results["1"][name]
        print(f"| {name} | {thp['mb']:.1f} | {plain['best']:.3f} | {thp['best']:.3f} | "
              f"{thp['median']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
