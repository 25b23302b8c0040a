"""The ``sciffd`` command.

::

    sciffd data generate ns2d --members 64 --resolution 64 [--seed 0] --out ns2d.nc
    sciffd train --data ns2d.nc --out runs/ns2d [--steps N --batch-size B --resume --seed S]
    sciffd sample --model ns2d --members 16 --resolution 128 --seed 0
                  [--sampler em|heun] [--steps N] [--batch-size B] [--sigma-stop S|none]
                  [--quiet] --out ens.nc
    sciffd data observe data.nc --points 500 --noise 0.01 [--seed 0] [--variable V]
                  [--member 0] [--time -1] [--method spectral|bilinear] --out sensors.nc
    sciffd data observe data.nc --coarsen 4 --noise 0.01 [--seed 0] [--variable V]
                  [--member 0] [--time -1] [--coarse-method block_mean|spectral]
                  --out coarse.nc
    sciffd condition --model ns2d --obs sensors.nc|coarse.nc --members 32 [--resolution 128]
                  [--method mmps|dps|replacement] [--sampler heun|em] [--steps N]
                  [--seed 0] --out post.nc
    sciffd models
    sciffd validate --model ns2d [--reference data.nc] [--level quick|full] --report out/
    sciffd validate ens.nc --reference data.nc [--variable V] --report out/
    sciffd validate --exact gaussian|mixture|all [--level quick|full] --report out/

``sciffd validate`` exits with 0 when every check passes, 1 when any fails
and 2 on bad input.

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
import math
import os
import shlex
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


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{value} must be finite and positive")
    return value


def _sigma_stop(text: str) -> float | str | None:
    """``none`` (integrate to the end), ``default`` (the model's own) or a positive noise
    level."""
    key = text.strip().lower()
    if key == "none":
        return None
    if key == "default":
        return "default"
    try:
        return _positive_float(text)
    except argparse.ArgumentTypeError as err:
        raise argparse.ArgumentTypeError(f"{err}; expected a positive noise level, "
                                         "'none' or 'default'") from None


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
def _output_file(path: str, option: str = "--out", inputs: tuple = ()) -> Path:
    """``path`` as an output file; refuses a missing folder and any of ``inputs``."""
    if not str(path).strip():
        raise UsageError(f"{option} {path!r}: give a file name such as ens.nc")
    out = Path(path)
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"{option} {path}: the folder {str(folder)!r} does not exist")
    if out.is_dir():
        raise UsageError(f"{option} {path}: is a directory; give a file name such as ens.nc")
    for name, given in inputs:
        if given is not None and Path(given).exists() and out.exists() \
                and os.path.samefile(out, given):
            raise UsageError(f"{option} {path}: is the same file as {name} {given}; writing "
                             "it would destroy the input, choose another name")
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
    _record_command(ds, args)

    from .io import write_netcdf

    write_netcdf(ds, out)
    logger.info("wrote %s", out)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    data_path = _input_file(args.data, "--data")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out}: is a file; training writes a directory")

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


def _record_command(ds: object, args: argparse.Namespace) -> None:
    """Make the file's ``history`` the command line that wrote it (CF convention)."""
    from .fields import history_stamp

    ds.attrs["history"] = f"{history_stamp()}: {args.command_line} (sciffd {__version__})"


def _cmd_sample(args: argparse.Namespace) -> int:
    out = _output_file(args.out)

    from .io import write_netcdf
    from .pipeline import load

    model = load(args.model)
    if isinstance(args.sigma_stop, float):
        from .sampling import sigma_range

        lo, hi = sigma_range(model.model.process)
        if not lo < args.sigma_stop < hi:
            raise UsageError(f"--sigma-stop {args.sigma_stop:g}: must lie between {lo:.4g} "
                             f"and {hi:.4g}, the noise levels of the model's process")
    ds = model.sample(members=args.members, grid=args.resolution, seed=args.seed,
                      sampler=args.sampler, steps=args.steps, batch_size=args.batch_size,
                      progress=not args.quiet, sigma_stop=args.sigma_stop)
    _record_command(ds, args)
    write_netcdf(ds, out)
    logger.info("wrote %s", out)
    return 0


def _cmd_data_observe(args: argparse.Namespace) -> int:
    if args.points is not None and args.coarse_method is not None:
        raise UsageError("--coarse-method is the operator of --coarsen; point observations "
                         "take --method spectral|bilinear")
    if args.coarsen is not None and args.method is not None:
        raise UsageError("--method is the interpolation of --points; coarse observations "
                         "take --coarse-method block_mean|spectral")
    data_path = _input_file(args.data, "data file")
    out = _output_file(args.out, inputs=(("the data file", args.data),))

    import numpy as np

    from .fields import from_dataarray, grid_origin
    from .inverse import CoarseGrain, ObservationNoise, Observations, PointObservation
    from .io import read_netcdf, write_netcdf

    data = read_netcdf(data_path)
    if args.variable not in data.data_vars:
        raise UsageError(
            f"{args.data}: has no variable {args.variable!r} (its variables: "
            f"{sorted(map(str, data.data_vars))}); choose one with --variable"
        )
    da = data[args.variable]
    picked = {}
    for dim, option, index in (("member", "--member", args.member),
                               ("time", "--time", args.time)):
        if dim not in da.dims:
            if index is not None:
                raise UsageError(f"{option} {index}: variable {args.variable!r} has no "
                                 f"dim {dim!r} (its dims: {da.dims})")
            continue
        index = (0 if dim == "member" else -1) if index is None else index
        size = da.sizes[dim]
        if not -size <= index < size:
            raise UsageError(f"{option} {index}: out of range for the {size} entries of "
                             f"{dim!r} in {args.data}")
        picked[dim] = int(index) % size
    field = da.isel(picked)
    try:
        u, grid = from_dataarray(field)
    except ValueError as err:
        where = ", ".join(f"{d} {i}" for d, i in picked.items())
        raise UsageError(f"{args.data}{f' ({where})' if where else ''}: {err}") from err
    if u.shape != grid.shape:
        extra = [d for d in field.dims if d not in grid.dims]
        raise UsageError(f"variable {args.variable!r} has the dims {tuple(extra)} besides "
                         "member and time; an observation file observes one field")
    origin = grid_origin(field)
    if any(abs(x0) > 1e-9 * length for x0, length in zip(origin, grid.lengths, strict=True)):
        raise UsageError(f"{args.data}: the coordinates of {args.variable!r} start at "
                         f"{origin}; sciffd domains are [0, L), shift them to start at 0")
    c_units = {str(field[d].attrs.get("units", "1")) for d in grid.dims}
    if len(c_units) > 1:
        raise UsageError(f"{args.data}: the coordinates {grid.dims} have different units "
                         f"{sorted(c_units)}")

    units = str(field.attrs.get("units", "1"))
    long_name = str(field.attrs.get("long_name", args.variable))
    noise = ObservationNoise(std=args.noise)
    u = np.asarray(u, dtype=np.float64)[None, None]
    if args.points is not None:
        # points uniform in [0, L) on each axis
        rng = np.random.default_rng(args.seed)
        lengths = np.asarray(grid.lengths)
        points = np.minimum(rng.random((args.points, grid.ndim)) * lengths,
                            np.nextafter(lengths, 0))
        operator = PointObservation(points, args.method or "spectral", lengths=grid.lengths)
        title = f"{args.points} noisy point observations of {long_name}"
        layout = {"points": "uniform in [0, L) on each axis"}
    else:
        factor = args.coarsen
        if any(n % factor for n in grid.shape):
            raise UsageError(f"--coarsen {factor}: does not divide the grid shape "
                             f"{grid.shape} of {args.variable!r} in {args.data}")
        shape = tuple(n // factor for n in grid.shape)
        if min(shape) < 2:
            raise UsageError(f"--coarsen {factor}: leaves the coarse shape {shape} of the grid "
                             f"{grid.shape} of {args.variable!r} in {args.data}; a coarse grid "
                             "needs at least 2 nodes per axis")
        method = args.coarse_method or "block_mean"
        operator = CoarseGrain(shape=shape, method=method)
        what = (f"block means over {factor}^{grid.ndim} nodes" if method == "block_mean"
                else "the Fourier truncation")
        title = (f"noisy coarse-grid observations of {long_name}: {what} on the "
                 f"{'x'.join(map(str, shape))} grid")
        layout = {"coarsen_factor": np.int32(factor)}
    # the noise from its own nested stream (member 0 of the seed)
    clean = operator.apply(u, grid)[0]
    values = clean + noise.sample(clean.size, [0], args.seed)[0]

    obs = Observations(operator, values, noise, {
        "units": units, "long_name": f"observed {long_name}",
        "coordinate_units": c_units.pop(), "name": "values"})
    ds = obs.to_xarray(grid)
    source = {"source_file": str(data_path), "source_variable": args.variable}
    for dim, index in picked.items():
        source[f"source_{dim}_index"] = np.int32(index)
        value = np.asarray(field.coords[dim].values if dim in field.coords else index)
        # numbers as numbers; dates and labels as text (netCDF has no date attribute)
        source[f"source_{dim}"] = value.item() if value.dtype.kind in "iuf" else str(value)
    ds.attrs.update({
        "Conventions": "CF-1.8",
        "title": title,
        "source": f"sciffd {__version__}",
        "units": units,
        "noise_std": float(args.noise),
        "noise": "Gaussian, independent, absolute standard deviation noise_std in the "
                 "units of the values",
        **layout,
        **source,
        "seed": np.int32(args.seed),
        "sciffd_version": __version__,
    })
    _record_command(ds, args)
    write_netcdf(ds, out, float32=False)
    logger.info("wrote %s", out)
    return 0


def _cmd_condition(args: argparse.Namespace) -> int:
    out = _output_file(args.out, inputs=(("--obs", args.obs),))
    obs_path = _input_file(args.obs, "--obs")

    from .inverse.observations import _ResolutionError
    from .io import read_netcdf, write_netcdf
    from .pipeline import load

    file = read_netcdf(obs_path)
    coarse = "operator" in file.attrs or any("operator" in v.attrs
                                             for v in file.data_vars.values())
    if "obs" not in file.dims and not coarse:
        raise UsageError(f"--obs {args.obs}: is not an observation file (it has neither a "
                         "dim 'obs' nor an attribute 'operator'); write one with "
                         "`sciffd data observe`")
    model = load(args.model)
    grid = model.resolve_grid(args.resolution)
    try:
        observations = model._observations(file, grid)
    except _ResolutionError as err:
        given = "" if args.resolution is not None else " (the model's training grid)"
        raise UsageError(f"--resolution {'x'.join(map(str, grid.shape))}{given} does not "
                         f"fit --obs {args.obs}: {err}") from err
    except ValueError as err:
        raise UsageError(f"--obs {args.obs}: {err}") from err
    ds = model.condition(observations, members=args.members, grid=grid, seed=args.seed,
                         method=args.method, sampler=args.sampler, steps=args.steps,
                         batch_size=args.batch_size, progress=not args.quiet)
    ds.attrs["observations_file"] = str(obs_path)
    _record_command(ds, args)
    write_netcdf(ds, out)
    logger.info("wrote %s", out)
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    given = [name for name, value in (("ENSEMBLE", args.ensemble), ("--model", args.model),
                                      ("--exact", args.exact)) if value is not None]
    if len(given) != 1:
        raise UsageError("give exactly one of ENSEMBLE, --model or --exact"
                         + (f" (got {', '.join(given)})" if given else ""))
    if args.ensemble is not None and args.reference is None:
        raise UsageError(f"{args.ensemble}: an ensemble is validated against --reference FILE")
    if args.exact is not None and args.reference is not None:
        raise UsageError("--reference is not used with --exact (the answers are known)")
    if args.ensemble is not None:
        _input_file(args.ensemble, "ENSEMBLE")
    if args.reference is not None:
        _input_file(args.reference, "--reference")
    if args.report is not None:
        folder = Path(args.report)
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"--report {args.report}: is a file; give a folder")

    from . import validation

    command = " ".join(["sciffd validate"] + [
        f"{flag} {value}" for flag, value in (
            ("", args.ensemble), ("--model", args.model), ("--exact", args.exact),
            ("--reference", args.reference), ("--variable", args.variable),
            ("--level", args.level), ("--seed", args.seed), ("--report", args.report))
        if value is not None]).replace("  ", " ")
    if args.exact is not None:
        report = validation.validate_exact(args.exact, args.level, seed=args.seed)
        report.command = command
    elif args.model is not None:
        report = validation.validate_model(args.model, args.reference, args.level,
                                           variable=args.variable, seed=args.seed,
                                           progress=not args.quiet, command=command)
    else:
        report = validation.validate_ensemble(args.ensemble, args.reference, args.level,
                                              variable=args.variable, seed=args.seed,
                                              command=command)
    if args.report is not None:
        path = validation.write_report(report, args.report)
        logger.info("wrote %s", path)
    print(report.summary())
    return 0 if report.passed else 1


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
    obs = data_commands.add_parser(
        "observe", parents=[quiet], help="noisy point or coarse-grid observations of one field",
        description="Observe one field of a data file and add Gaussian noise; write an "
        "observation file for `sciffd condition`. With --points P: P uniformly random points "
        "in the domain (seeded), the field interpolated there. With --coarsen F: the field "
        "on the coarse grid of N/F nodes per axis (F must divide N), as block means of "
        "F^d nodes (--coarse-method block_mean, the default) or its Fourier truncation "
        "sampled on the coarse nodes (--coarse-method spectral); the file holds the coarse "
        "field on its grid, with the attributes operator, coarse_shape and noise_std.")
    obs.add_argument("data", help="data file (netCDF) with the field")
    kind = obs.add_mutually_exclusive_group(required=True)
    kind.add_argument("--points", type=_positive, default=None,
                      help="number of observation points")
    kind.add_argument("--coarsen", type=_positive, default=None, metavar="F",
                      help="coarsening factor: observe the field on N/F nodes per axis")
    obs.add_argument("--noise", type=_positive_float, required=True,
                     help="standard deviation of the Gaussian noise added to each value: "
                     "absolute, in the units of the variable (not relative to its size)")
    obs.add_argument("--seed", type=_non_negative, default=0,
                     help="seed of the points and of the noise")
    obs.add_argument("--variable", default="vorticity", help="variable to observe")
    obs.add_argument("--member", type=int, default=None,
                     help="member index (default 0, where the variable has a member dim)")
    obs.add_argument("--time", type=int, default=None,
                     help="time index (default -1, the last, where it has a time dim)")
    obs.add_argument("--method", choices=("spectral", "bilinear"), default=None,
                     help="interpolation to the points, with --points (default spectral: "
                     "exact for band-limited fields)")
    obs.add_argument("--coarse-method", choices=("block_mean", "spectral"), default=None,
                     help="coarse graining, with --coarsen (default block_mean: the mean of "
                     "each block of F^d nodes; spectral: the modes |m| < N/(2F), sampled on "
                     "the coarse nodes)")
    obs.add_argument("--out", required=True, help="output observation file (netCDF)")
    obs.set_defaults(run=_cmd_data_observe)

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
    sm.add_argument("--sigma-stop", type=_sigma_stop, default="default",
                    metavar="SIGMA|none|default",
                    help="end the reverse process at this noise level and draw the rest "
                    "from the Gaussian posterior; none: integrate to the end; default: the "
                    "model's own choice (0.2 for ns2d)")
    sm.add_argument("--out", required=True, help="output netCDF file")
    sm.set_defaults(run=_cmd_sample)

    # condition
    cd = commands.add_parser("condition", parents=[quiet],
                             help="sample a posterior ensemble given observations")
    cd.add_argument("--model", required=True,
                    help="built-in model name (see `sciffd models`) or training directory")
    cd.add_argument("--obs", required=True,
                    help="observation file (from `sciffd data observe`: points or a "
                    "coarse grid; block means need a resolution that is a multiple of the "
                    "coarse shape)")
    cd.add_argument("--members", type=_positive, default=16,
                    help="ensemble members (at least 2)")
    cd.add_argument("--resolution", type=_resolution, default=None,
                    help="points per axis (default: the model's training grid)")
    cd.add_argument("--method", choices=("mmps", "dps", "replacement"), default="mmps",
                    help="mmps: moment matching (default); dps: diffusion posterior "
                    "sampling; replacement: impose the data on observed nodes")
    cd.add_argument("--seed", type=_non_negative, default=0)
    cd.add_argument("--sampler", choices=("em", "heun"), default="heun",
                    help="em: reverse SDE (Euler-Maruyama); heun: probability-flow ODE")
    cd.add_argument("--steps", type=_positive, default=None,
                    help="sampler steps (default: the sampler's)")
    cd.add_argument("--batch-size", type=_positive, default=None)
    cd.add_argument("--out", required=True, help="output netCDF file")
    cd.set_defaults(run=_cmd_condition)

    # validate
    va = commands.add_parser(
        "validate", parents=[quiet], help="validate a model, an ensemble or the exact models",
        description="Run the validation suite and write metrics.json, figures and report.md "
        "to --report. Exit status: 0 all checks pass, 1 any fails, 2 bad input.")
    va.add_argument("ensemble", nargs="?", default=None,
                    help="an ensemble netCDF file (with a member dim) to validate")
    va.add_argument("--model", default=None,
                    help="built-in model name or model directory to validate")
    va.add_argument("--exact", choices=("gaussian", "mixture", "all"), default=None,
                    help="validate the exact models with the samplers")
    va.add_argument("--reference", default=None,
                    help="reference netCDF: a member-wise truth or reference fields (for a "
                    "model: default the held-out members of its dataset recipe)")
    va.add_argument("--variable", default=None, help="variable, when a file holds several")
    va.add_argument("--level", choices=("quick", "full"), default="quick",
                    help="quick: CI sizes (default); full: release sizes")
    va.add_argument("--seed", type=_non_negative, default=0)
    va.add_argument("--report", default=None, help="folder for the report (created)")
    va.set_defaults(run=_cmd_validate)

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
        words = list(sys.argv[1:] if argv is None else argv)
        args.command_line = f"{PROG} {shlex.join(words)}"
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
