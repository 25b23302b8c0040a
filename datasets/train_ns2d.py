"""Train the built-in ``ns2d`` model from the ``ns2d`` training set.

The noise measure is the Matern spectrum fitted to the training data
(:func:`sciffd.noise.fit_matern`, unit pointwise variance): the ``nu = 1e-3``
vorticity spectrum falls by about 16 decades between the forcing shell and
the 2/3 cutoff of 64^2, and a rougher noise would leave a residual at the
end of sampling that dominates the high modes of such smooth fields.

Usage (the shipped model: 4,000 steps, then resumed to 12,000; about 0.2 s
per step on one core)::

    SCIFFD_FFT_WORKERS=1 python -m sciffd data generate ns2d --members 300 \\
        --resolution 64 --seed 0 --out ns2d_train.nc
    THP_MEM_ALLOC_ENABLE=1 python datasets/train_ns2d.py ns2d_train.nc runs/ns2d
    THP_MEM_ALLOC_ENABLE=1 python datasets/train_ns2d.py ns2d_train.nc runs/ns2d \\
        --resume --steps 12000

Pass ``--resume`` to continue an interrupted run from its last checkpoint.
"""

from __future__ import annotations

import argparse

from sciffd import io
from sciffd.fields import from_dataarray
from sciffd.noise import fit_matern
from sciffd.training import train

#: the options of the shipped model
STEPS = 4000
BATCH_SIZE = 16
SEED = 0
OUTPUT = "scalar"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="train the built-in ns2d model")
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--output", choices=("scalar", "spectral"), default=OUTPUT,
                        help="the denoiser's output scaling (default: %(default)s)")
    args = parser.parse_args(argv)

    ds = io.read_netcdf(args.data)
    fields, grid = from_dataarray(ds["vorticity"])
    noise = fit_matern(fields.reshape((-1,) + grid.shape), grid)
    train(ds, args.out, variable="vorticity", steps=args.steps, batch_size=BATCH_SIZE,
          seed=SEED, noise=noise, resume=args.resume, progress=False, output=args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
