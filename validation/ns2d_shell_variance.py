"""Per-shell variance of a model's ns2d anomalies against the training data's.

Draws ``--members`` fields at 64^2 (Heun, ``--steps``, the model's own
``sigma_stop`` unless ``--sigma-stop`` says otherwise), removes the training
mean, and prints, for shells 1..11, the ratio of the model's per-mode
variance to the data's, with the model's mean of the forced mode (1, 1)
and the pointwise standard deviations. A ratio below 1 is a model short
of variance on that shell.

Usage::

    python validation/ns2d_shell_variance.py --model ns2d --train ns2d_train.nc
"""

from __future__ import annotations

import argparse

import numpy as np

import sciffd
from sciffd import io
from sciffd.fields import from_dataarray


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ns2d")
    parser.add_argument("--train", required=True)
    parser.add_argument("--members", type=int, default=48)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--sigma-stop", default="default",
                        help="the sampler's sigma_stop: a number, 'none' (integrate to t_min) "
                        "or 'default' (the model's own)")
    args = parser.parse_args(argv)
    key = args.sigma_stop.lower()
    stop = {"default": "default", "none": None}[key] if key in ("default", "none") \
        else float(args.sigma_stop)

    w, grid = from_dataarray(io.read_netcdf(args.train)["vorticity"])
    train = w.reshape((-1,) + grid.shape).astype(np.float64)
    mean = train.mean(axis=0)
    shells = np.floor(np.sqrt(grid.k_squared) / (2 * np.pi) + 0.5).astype(int)
    weight = grid.hermitian_weight

    def per_shell(x: np.ndarray) -> np.ndarray:
        p = (np.abs(np.fft.rfft2(x - mean, norm="forward")) ** 2).mean(axis=0)
        return np.array([(weight * p)[shells == n].sum() / weight[shells == n].sum()
                         for n in range(1, 12)])

    ds = sciffd.load(args.model).sample(members=args.members, grid=grid.shape[0],
                                        seed=args.seed, sampler="heun", steps=args.steps,
                                        batch_size=args.members, progress=False,
                                        sigma_stop=stop)
    model = ds["vorticity"].values.astype(np.float64)
    ratio = per_shell(model) / per_shell(train)
    c_model = np.fft.rfft2(model, norm="forward").mean(axis=0)[1, 1]
    c_data = np.fft.rfft2(mean, norm="forward")[1, 1]
    print(f"mode (1, 1) mean: model {c_model:.4f}, data {c_data:.4f}")
    print(f"pointwise std: model {model.std():.4f}, data {train.std():.4f}; about the data "
          f"mean: model {(model - mean).std():.4f}, data {(train - mean).std():.4f}")
    print("shell  " + " ".join(f"{n:6d}" for n in range(1, 12)))
    print("ratio  " + " ".join(f"{r:6.3f}" for r in ratio))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
