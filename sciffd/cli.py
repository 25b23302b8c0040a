"""The ``sciffd`` command.

::

    sciffd data generate ns2d --members 64 --resolution 64 [--seed 0] --out ns2d.nc
    sciffd train --data ns2d.nc --out runs/ns2d [--steps N --batch-size B --resume --seed S]
    sciffd sample --model ns2d --members 16 --resolution 128 --seed 0
                  [--sampler em|heun] [--steps N] [--batch-size B] [--quiet] --out ens.nc
    sciffd models

Bad input (a resolution below 2, an unknown model or dataset, a data file
with NaN or non-uniform coordinates, a missing file, an output folder that
does not exist, ...) is reported as one line ``sciffd: error: ...`` on
stderr with exit status 2, before any output is written; files are written
atomically (:func:`sciffd.io.write_netcdf`), so a failure leaves none
behind. Long work shows tqdm progress bars on stderr; ``--quiet`` silences
them.

Everything heavy is imported inside the commands, so ``sciffd --version``
and the argument errors answer at once.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__

__all__ = ["main"]

logger = logging.getLogger(__name__)

#: the datasets ``sciffd data generate`` knows: name -> (module, function)
DATASETS = {"ns2d": ("sciffd.domains.fluids.dataset", "generate_ns2d")}

PROG = "sciffd"


class UsageError(Exception):
    """Bad input found by the command itself; reported as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line ``sciffd: error: ...``."""

    def error(self, message: str) -> None:  # noqa: D102 - argparse hook
        raise UsageError(message)


# -- argument types ---------------------------------------------------------
def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be non-negative")
    return value


def _resolution(text: str) -> tuple[int, ...] | int:
    """``"128"`` or ``"64x128"`` (points per axis, each at least 2)."""
    parts = text.lower().split("x")
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a resolution; expected an integer such as 128 or sizes "
            "such as 64x128"
        ) from None
    for n in sizes:
        if n < 2:
            raise argparse.ArgumentTypeError(
                f"{text!r}: the resolution must be at least 2 points per axis"
            )
    return sizes[0] if len(sizes) == 1 else tuple(sizes)


# -- checks on paths ----------------------------------------------------------
def _output_file(path: str, option: str = "--out") -> Path:
    out = Path(path)
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"{option} {path}: the folder {str(folder)!r} does not exist")
    if out.is_dir():
        raise UsageError(f"{option} {path}: is a directory; give a file name such as ens.nc")
    return out


def _input_file(path: str, option: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{option} {path}: no such file")
    if p.is_dir():
        raise UsageError(f"{option} {path}: is a directory, not a file")
    return p


# -- commands -----------------------------------------------------------------
def _cmd_data_generate(args: argparse.Namespace) -> int:
    out = _output_file(args.out)
    import importlib

    module_name, function = DATASETS[args.dataset]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise UsageError(
            f"the dataset {args.dataset!r} needs {module_name}, which this installation "
            f"lacks ({err})"
        ) from err
    generate = getattr(module, function)
    ds = generate(args.members, resolution=args.resolution, seed=args.seed,
                  progress=not args.quiet)

    from .io import write_netcdf

    write_netcdf(ds, out)
    logger.info("wrote %s", out)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    data_path = _input_file(args.data, "--data")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out}: is a file; training writes a directory")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"--out {args.out}: the folder {str(parent)!r} does not exist")

    from .fields import check_dataarray
    from .io import read_netcdf

    data = read_netcdf(data_path)
    if args.variable not in data.data_vars:
        raise UsageError(
            f"--data {args.data}: has no variable {args.variable!r} (its variables: "
            f"{sorted(map(str, data.data_vars))}); choose one with --variable"
        )
    check_dataarray(data[args.variable])

    try:
        from .training import train
    except ModuleNotFoundError as err:
        raise UsageError(f"training needs sciffd.training, which this installation lacks "
                         f"({err})") from err
    options = {}
    if args.steps is not None:
        options["steps"] = args.steps
    if args.batch_size is not None:
        options["batch_size"] = args.batch_size
    train(data, out, variable=args.variable, resume=args.resume, seed=args.seed,
          progress=not args.quiet, **options)
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    out = _output_file(args.out)

    from .io import write_netcdf
    from .pipeline import load

    model = load(args.model)
    ds = model.sample(members=args.members, grid=args.resolution, seed=args.seed,
                      sampler=args.sampler, steps=args.steps, batch_size=args.batch_size,
                      progress=not args.quiet)
    write_netcdf(ds, out)
    logger.info("wrote %s", out)
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from .models.registry import builtin_models

    models = builtin_models()
    if not models:
        print("no built-in models are installed; train one with `sciffd train`")
        return 0
    width = max(len(name) for name in models)
    for name, description in models.items():
        print(f"{name:<{width}}  {description}".rstrip())
    return 0


# -- parser -------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sciffd`` command."""
    parser = _Parser(prog=PROG, description="Score-based diffusion models in function "
                     "space, for physics.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.required = True

    quiet = _Parser(add_help=False)
    quiet.add_argument("--quiet", "-q", action="store_true",
                       help="no progress bars")

    # data generate
    data = commands.add_parser("data", help="dataset recipes")
    data_commands = data.add_subparsers(dest="data_command", metavar="action")
    data_commands.required = True
    gen = data_commands.add_parser("generate", parents=[quiet],
                                   help="generate a dataset and write it to netCDF")
    gen.add_argument("dataset", choices=sorted(DATASETS), help="dataset recipe")
    gen.add_argument("--members", type=_positive, default=64, help="number of members")
    gen.add_argument("--resolution", type=_resolution, default=64,
                     help="points per axis (default 64)")
    gen.add_argument("--seed", type=_non_negative, default=0)
    gen.add_argument("--out", required=True, help="output netCDF file")
    gen.set_defaults(run=_cmd_data_generate)

    # train
    tr = commands.add_parser("train", parents=[quiet], help="train a model on a dataset")
    tr.add_argument("--data", required=True, help="training data (netCDF)")
    tr.add_argument("--variable", default="vorticity", help="variable to learn")
    tr.add_argument("--out", required=True, help="output (checkpoint) directory")
    tr.add_argument("--steps", type=_positive, default=None, help="training steps")
    tr.add_argument("--batch-size", type=_positive, default=None)
    tr.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    tr.add_argument("--seed", type=_non_negative, default=0)
    tr.set_defaults(run=_cmd_train)

    # sample
    sm = commands.add_parser("sample", parents=[quiet], help="sample an ensemble")
    sm.add_argument("--model", required=True,
                    help="built-in model name (see `sciffd models`) or training directory")
    sm.add_argument("--members", type=_positive, default=16)
    sm.add_argument("--resolution", type=_resolution, default=None,
                    help="points per axis (default: the model's training grid)")
    sm.add_argument("--seed", type=_non_negative, default=0)
    sm.add_argument("--sampler", choices=("em", "heun"), default="heun",
                    help="em: reverse SDE (Euler-Maruyama); heun: probability-flow ODE")
    sm.add_argument("--steps", type=_positive, default=None,
                    help="sampler steps (default: the sampler's)")
    sm.add_argument("--batch-size", type=_positive, default=None)
    sm.add_argument("--out", required=True, help="output netCDF file")
    sm.set_defaults(run=_cmd_sample)

    # models
    md = commands.add_parser("models", help="list the built-in models")
    md.set_defaults(run=_cmd_models)
    return parser


def _one_line(err: BaseException) -> str:
    """The message of ``err`` on one line (its type name if it has none)."""
    return " ".join(str(err).split()) or type(err).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sciffd`` command; returns the exit status (0, or 2 on bad input)."""
    logging.basicConfig(level=logging.WARNING, format=f"{PROG}: %(message)s")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.run(args)
    except (UsageError, ValueError, TypeError, OSError, NotImplementedError) as err:
        print(f"{PROG}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except SystemExit as done:  # --help and --version
        return done.code if isinstance(done.code, int) else 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
