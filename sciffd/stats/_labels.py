"""Shared plumbing of the xarray forms of :mod:`sciffd.stats`.

Every statistic is written once on arrays whose core axes come last; its
xarray form names those axes by dim, moves them to the end with
:func:`xarray.apply_ufunc` (``dask="parallelized"``, so a Dask-backed
input stays lazy) and labels the result. xarray is imported inside the
functions only, so that ``import sciffd.stats`` stays light.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..grids import TorusGrid

_SPATIAL = ("z", "y", "x")


def xr():
    """The :mod:`xarray` module (imported on first use)."""
    import xarray

    return xarray


def is_xarray(obj: Any) -> bool:
    """True for an ``xarray.DataArray`` (without importing xarray)."""
    module = sys.modules.get("xarray")
    return module is not None and isinstance(obj, module.DataArray)


def check_dataarray_input(obj: Any, name: str) -> None:
    """Refuse an ``xarray.Dataset`` where a ``DataArray`` is expected."""
    module = sys.modules.get("xarray")
    if module is not None and isinstance(obj, module.Dataset):
        raise TypeError(
            f"{name} is an xarray.Dataset; pass one of its variables, for example "
            f"{name}['vorticity'], as a DataArray"
        )


def check_dim_name(dim: Any, name: str) -> str:
    """Validate an argument that names one dim."""
    if not isinstance(dim, str) or not dim:
        raise TypeError(f"{name}={dim!r} must be a dim name (a non-empty str)")
    return dim


def has_dim(da: Any, dim: str, name: str, arg: str) -> None:
    """Raise ``ValueError`` unless ``da`` has the dim ``dim`` (named by argument ``arg``)."""
    if dim not in da.dims:
        raise ValueError(
            f"{name} has no dim {dim!r} (given as {arg}); its dims are "
            f"{tuple(da.dims)}: name the right one with {arg}=..."
        )


def spatial_dims(da: Any, dims: Sequence[str] | None, name: str) -> tuple[str, ...]:
    """The spatial dims of ``da``: ``dims`` if given, else those of z, y, x present."""
    if dims is None:
        found = tuple(d for d in _SPATIAL if d in da.dims)
        if not found:
            raise ValueError(
                f"{name} has dims {tuple(da.dims)} and none of the spatial dims "
                f"{_SPATIAL}; name them with dims=(...)"
            )
        return found
    if isinstance(dims, str):
        dims = (dims,)
    dims = tuple(dims)
    if not 1 <= len(dims) <= 3 or not all(isinstance(d, str) for d in dims):
        raise ValueError(f"dims={dims!r} must name 1, 2 or 3 spatial dims (str)")
    for d in dims:
        has_dim(da, d, name, "dims")
    return dims


def grid_and_dims(da: Any, grid: Any, dims: Sequence[str] | None,
                  name: str) -> tuple[TorusGrid, tuple[str, ...]]:
    """The grid of ``da`` (read from its coordinates) and its spatial dims.

    A ``grid`` passed beside a DataArray must be the one its coordinates
    describe.
    """
    from ..fields import grid_from

    dims = spatial_dims(da, dims, name)
    found = grid_from(da, dims)
    if grid is not None and grid != found:
        raise ValueError(
            f"grid={grid!r} does not match the coordinates of {name}, which describe "
            f"{found!r}; pass grid=None to read it from the coordinates"
        )
    return found, dims


def require_grid(grid: Any, name: str = "grid") -> TorusGrid:
    """Validate the grid of an array input."""
    if grid is None:
        raise TypeError(
            f"{name} is required for array input; pass a sciffd.grids.TorusGrid, or "
            "pass an xarray.DataArray whose coordinates give the grid"
        )
    if not isinstance(grid, TorusGrid):
        raise TypeError(f"{name} must be a sciffd.grids.TorusGrid, got {type(grid).__name__}")
    return grid


def single_chunk(da: Any, dims: Sequence[str]) -> Any:
    """Rechunk a Dask-backed ``da`` so that each of ``dims`` is one chunk."""
    if da.chunks is None:
        return da
    return da.chunk({d: -1 for d in dims})


def apply(
    func: Callable[..., np.ndarray],
    *objects: Any,
    core_dims: Sequence[Sequence[str]],
    output_dims: Sequence[str] = (),
    output_sizes: Mapping[str, int] | None = None,
    output_dtype: Any = np.float64,
) -> Any:
    """``func`` over the core dims of DataArrays, lazily on Dask arrays.

    ``func`` receives numpy arrays whose core dims are their last axes, in
    the order given, and returns an array whose last axes are
    ``output_dims``.
    """
    objects = [single_chunk(o, c) for o, c in zip(objects, core_dims, strict=True)]
    kwargs = {}
    if output_sizes:
        kwargs["dask_gufunc_kwargs"] = {"output_sizes": dict(output_sizes)}
    return xr().apply_ufunc(
        func,
        *objects,
        input_core_dims=[list(c) for c in core_dims],
        output_core_dims=[list(output_dims)],
        dask="parallelized",
        output_dtypes=[output_dtype],
        keep_attrs=False,
        **kwargs,
    )


def power_units(units: Any, power: int) -> str:
    """The units string of ``units ** power`` (``"1"`` stays ``"1"``)."""
    u = "1" if units is None else str(units).strip()
    if u in ("", "1"):
        return "1"
    if power == 1:
        return u
    if u.isalpha():
        return f"{u}{power}"
    return f"({u})^{power}"


def product_units(*parts: str) -> str:
    """Join units strings by a space, dropping ``"1"``."""
    kept = [p for p in parts if p not in ("", "1")]
    return " ".join(kept) if kept else "1"


def labelled(out: Any, source: Any, name: str, units: str, long_name: str) -> Any:
    """Give ``out`` the attributes of ``source`` with new ``units`` and ``long_name``.

    The provenance attributes of ``source`` (model, seed, ...) are kept; a
    CF ``standard_name`` is dropped, since it named the input quantity.
    """
    attrs = {k: v for k, v in source.attrs.items() if k != "standard_name"}
    attrs.update(units=units, long_name=long_name)
    out.attrs = attrs
    out.name = name
    return out


def variable_units(da: Any) -> str:
    """The ``units`` attribute of a DataArray, ``"1"`` when absent."""
    return str(da.attrs.get("units", "1"))


def variable_long_name(da: Any) -> str:
    """The ``long_name`` of a DataArray, else its name, else ``"field"``."""
    return str(da.attrs.get("long_name", da.name if da.name is not None else "field"))


def coordinate_units(da: Any, dims: Sequence[str]) -> str:
    """The common ``units`` of the coordinates of ``dims`` (``"1"`` when absent)."""
    found = {str(da.coords[d].attrs.get("units", "1")) for d in dims if d in da.coords}
    if len(found) == 1:
        return found.pop()
    return "1"
