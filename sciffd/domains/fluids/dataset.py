"""Generation of the ``ns2d`` dataset as CF-labelled xarray objects and netCDF files.

Each member ``m`` of seed ``s`` starts from its own draw of the recipe's
initial measure (:meth:`NS2DRecipe.initial_condition`), is integrated on
the solver grid, and is restricted spectrally to the output grid at the
snapshot times. Members are independent given ``(s, m)``: any subset of
member ids, generated in any batches or chunks, reproduces the same fields.

The solve runs at ``max(recipe.solver_resolution, resolution)`` points per
axis, so every output resolution is a restriction of one solution of at
least the recipe's accuracy, and a member at 32^2 is the coarse view of the
same member at 64^2.

xarray and netCDF4 are imported inside the functions.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ... import __version__
from ..._files import ordinary_permissions
from ...fields import history_stamp, member_coordinate, to_dataset
from ...grids import torus
from ...spectral import resample
from .recipes import NS2DRecipe

__all__ = ["generate_ns2d", "iter_ns2d", "write_ns2d"]

logger = logging.getLogger(__name__)

#: members advanced together in one solver batch
BATCH = 8


def _member_ids(members: Any) -> np.ndarray:
    """Member ids from a count or a sequence of non-negative integers."""
    if isinstance(members, (int, np.integer)) and not isinstance(members, bool):
        if members < 1:
            raise ValueError(f"members={members!r} must be a positive count of members")
        return np.arange(int(members), dtype=np.int64)
    ids = np.asarray(members) if isinstance(members, (Sequence, np.ndarray)) else None
    if ids is None or ids.ndim != 1 or ids.size == 0 \
            or not np.issubdtype(ids.dtype, np.integer) or (ids < 0).any():
        raise ValueError(
            f"members={members!r} must be a positive count or a non-empty sequence of "
            "non-negative integer member ids"
        )
    return ids.astype(np.int64)


def _check_resolution(resolution: Any) -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) \
            or resolution < 3:
        raise ValueError(f"resolution={resolution!r} must be an integer of at least 3 (the "
                         "vorticity has zero mean, and 2 points per axis hold no other mode)")
    return int(resolution)


def _check_recipe(recipe: Any) -> NS2DRecipe:
    if recipe is None:
        return NS2DRecipe()
    if not isinstance(recipe, NS2DRecipe):
        raise TypeError(f"recipe must be an NS2DRecipe or None, got {type(recipe).__name__}")
    return recipe


def _progress_bar(total: int, progress: bool) -> Any:
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="ns2d", unit="member-step", unit_scale=True)


def _solve(ids: np.ndarray, resolution: int, seed: int, recipe: NS2DRecipe,
           bar: Any) -> np.ndarray:
    """Vorticity of members ``ids`` at the snapshot times, ``(M, T, n, n)`` float32."""
    n_solve = max(recipe.solver_resolution, resolution)
    solver = recipe.solver(n_solve)
    out_grid = torus(resolution)
    out = np.empty((len(ids), len(recipe.snapshot_times), resolution, resolution),
                   dtype=np.float32)
    for start in range(0, len(ids), BATCH):
        batch = ids[start:start + BATCH]
        w0 = recipe.initial_condition(solver.grid, batch, seed)
        w = solver.run(w0, recipe.t_final, recipe.snapshot_times,
                       progress=bar if bar is not None else False)
        out[start:start + len(batch)] = resample(w, solver.grid, out_grid)
    return out


def _dataset(values: np.ndarray, ids: np.ndarray, resolution: int, seed: int,
             recipe: NS2DRecipe, total_members: int, call: str) -> Any:
    """Label solver output as the ``ns2d`` Dataset."""
    times = np.asarray(recipe.snapshot_times, dtype=np.float64)
    coords = {
        "member": member_coordinate(ids),
        "time": ("time", times, {"long_name": "non-dimensional time", "units": "1",
                                 "axis": "T"}),
    }
    stamp = history_stamp()
    global_attrs = {
        "Conventions": "CF-1.8",
        "title": "Forced 2D incompressible Navier-Stokes vorticity on the unit torus (ns2d)",
        "source": f"sciffd {__version__} ns2d solver",
        "references": "Li et al., Fourier neural operator, arXiv:2010.08895",
        "history": f"{stamp}: {call}",
        **recipe.attrs(),
        "solver_resolution": max(recipe.solver_resolution, resolution),
        "output_resolution": resolution,
        "seed": seed,
        "members": total_members,
    }
    return to_dataset(
        values, torus(resolution), "vorticity", {"units": "1", "long_name": "vorticity"},
        leading_dims=("member", "time"), coords=coords, global_attrs=global_attrs,
    )


def _call(function: str, members: Any, resolution: int, seed: int) -> str:
    shown = members if isinstance(members, (int, np.integer)) else list(members)
    if not isinstance(shown, int) and len(shown) > 8:
        shown = f"[{shown[0]}, ..., {shown[-1]}] ({len(shown)} ids)"
    return (f"sciffd.domains.fluids.{function}(members={shown}, resolution={resolution}, "
            f"seed={seed})")


def generate_ns2d(members: int | Sequence[int], resolution: int = 64, seed: int = 0,
                  recipe: NS2DRecipe | None = None, progress: bool = True) -> Any:
    """Generate members of the ``ns2d`` dataset in memory.

    Parameters
    ----------
    members : int or sequence of int
        A count ``M`` (members ``0 .. M-1``) or the member ids to generate.
    resolution : int
        Points per axis of the output grid (default 64).
    seed : int
        Seed of the initial fields.
    recipe : NS2DRecipe, optional
        The parameters; default ``NS2DRecipe()``, the shipped dataset.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    xarray.Dataset
        Variable ``vorticity`` (float32, dims ``member, time, y, x``) with
        CF attributes, coordinates ``member``, ``time``, ``y``, ``x``, and the
        recipe in the global attributes. Memory grows with the number of
        members; for large sets use :func:`write_ns2d`.

    Examples
    --------
    >>> ds = generate_ns2d(2, resolution=16, progress=False,
    ...                    recipe=NS2DRecipe(solver_resolution=16, time_step=0.01,
    ...                                      snapshot_times=(0.05, 0.1)))
    >>> ds.vorticity.dims, ds.vorticity.shape
    (('member', 'time', 'y', 'x'), (2, 2, 16, 16))
    """
    recipe = _check_recipe(recipe)
    ids = _member_ids(members)
    resolution = _check_resolution(resolution)
    n_steps = recipe.solver().step_count(recipe.t_final)
    bar = _progress_bar(len(ids) * n_steps, progress)
    try:
        values = _solve(ids, resolution, seed, recipe, bar)
    finally:
        if bar is not None:
            bar.close()
    return _dataset(values, ids, resolution, seed, recipe, len(ids),
                    _call("generate_ns2d", members, resolution, seed))


def iter_ns2d(members: int | Sequence[int], resolution: int = 64, seed: int = 0,
              recipe: NS2DRecipe | None = None, chunk_size: int = 64,
              progress: bool = True) -> Iterator[Any]:
    """Generate members in chunks of ``chunk_size``, yielding one Dataset per chunk.

    Memory is bounded by the chunk, not by ``members``; the chunks together
    hold the same fields as :func:`generate_ns2d` of all members.
    """
    recipe = _check_recipe(recipe)
    ids = _member_ids(members)
    resolution = _check_resolution(resolution)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) \
            or chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size!r} must be a positive integer")
    n_steps = recipe.solver().step_count(recipe.t_final)
    call = _call("iter_ns2d", members, resolution, seed)
    bar = _progress_bar(len(ids) * n_steps, progress)
    try:
        for start in range(0, len(ids), chunk_size):
            chunk = ids[start:start + chunk_size]
            values = _solve(chunk, resolution, seed, recipe, bar)
            yield _dataset(values, chunk, resolution, seed, recipe, len(ids), call)
    finally:
        if bar is not None:
            bar.close()


def write_ns2d(path: str | os.PathLike, members: int | Sequence[int], resolution: int = 64,
               seed: int = 0, recipe: NS2DRecipe | None = None, chunk_size: int = 64,
               progress: bool = True) -> Path:
    """Generate members chunk by chunk straight into a netCDF-4 file, atomically.

    Each chunk of ``chunk_size`` members is solved and appended along the
    (unlimited) ``member`` dimension of a temporary file in the folder of
    ``path``, which is renamed onto ``path`` when complete; on any error
    it is removed, so a crash never leaves a half-written file. Memory is
    bounded by the chunk.

    Returns
    -------
    pathlib.Path
        The path written. ``xarray.open_dataset(path)`` gives the same
        Dataset as :func:`generate_ns2d` (``vorticity`` zlib-compressed).
    """
    import netCDF4

    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"output folder {str(folder)!r} does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"output path {str(path)!r} is a directory, not a file")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        chunks = iter_ns2d(members, resolution, seed, recipe, chunk_size, progress)
        first = next(chunks)
        first.attrs["history"] = first.attrs["history"].replace("iter_ns2d", "write_ns2d")
        encoding = {"vorticity": {"zlib": True, "complevel": 4,
                                  "chunksizes": (1, 1, resolution, resolution)}}
        encoding.update({c: {"_FillValue": None} for c in ("time", "y", "x")})
        first.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding,
                        unlimited_dims=["member"])
        count = first.sizes["member"]
        for ds in chunks:
            n = ds.sizes["member"]
            with netCDF4.Dataset(tmp, "a") as nc:
                nc["member"][count:count + n] = ds["member"].values
                nc["vorticity"][count:count + n] = ds["vorticity"].values
            count += n
        ordinary_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except FileNotFoundError:
            pass
        raise
    logger.info("wrote %s", path)
    return path
