"""Training data: an ``xarray.Dataset`` or an array, as samples ``(N, C, *S)`` on a grid.

Every leading dim (``member``, ``time``, ``sample``) of a variable becomes a
sample; a ``channel`` dim, where there is one, becomes the channel axis
``C``. The values are checked (finite, float) and returned as float32 with
the variable's metadata ``{"name", "units", "long_name"}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..grids import TorusGrid

__all__ = ["training_samples"]


def _from_xarray(da: Any) -> tuple[np.ndarray, TorusGrid]:
    """Values ``(..., C, *S)`` and grid of a ``DataArray`` (the one swap point for readers).

    The reading itself is :func:`sciffd.fields.from_dataarray`, which checks
    coordinates, periodicity and finiteness; a ``channel`` dim is moved to
    just before the spatial dims first.
    """
    from ..fields import from_dataarray

    if "channel" in da.dims:
        spatial = [d for d in ("z", "y", "x") if d in da.dims]
        lead = [d for d in da.dims if d not in spatial and d != "channel"]
        return from_dataarray(da.transpose(*lead, "channel", *spatial))
    values, grid = from_dataarray(da)
    return np.expand_dims(values, axis=values.ndim - grid.ndim), grid


def _metadata(name: str, attrs: dict) -> dict:
    out = {"name": str(name), "units": str(attrs.get("units", "1")),
           "long_name": str(attrs.get("long_name", name))}
    if "standard_name" in attrs:
        out["standard_name"] = str(attrs["standard_name"])
    return out


def training_samples(
    data: Any, grid: TorusGrid | None = None, variable: str = "vorticity"
) -> tuple[np.ndarray, TorusGrid, dict]:
    """Turn training data into samples, a grid and the variable's metadata.

    Parameters
    ----------
    data : xarray.Dataset, xarray.DataArray or numpy.ndarray
        A dataset holding ``variable`` with dims ``(..., [channel,] *spatial)``
        and coordinates on the spatial dims, or an array ``(..., C, *S)``
        (at least one leading axis) together with ``grid``.
    grid : TorusGrid, optional
        Required for an array; for xarray data it is read from the
        coordinates and, if given, must agree with them.
    variable : str
        The variable of a dataset to train on; for an array, the name put
        into the metadata.

    Returns
    -------
    samples : numpy.ndarray, float32, shape ``(N, C, *S)``
    grid : TorusGrid
    metadata : dict
        ``{"name", "units", "long_name"}`` from the variable's attributes
        (``units = "1"`` and ``long_name = name`` where they are missing,
        and always for an array), and ``standard_name`` where it has one.

    Raises
    ------
    ValueError
        Unknown variable, wrong shape, a grid that disagrees, no samples,
        NaN or infinite values.
    TypeError
        Data of another type, or a missing ``grid`` for an array.
    """
    if not isinstance(variable, str) or not variable:
        raise TypeError(f"variable={variable!r} must be a non-empty string")
    if grid is not None and not isinstance(grid, TorusGrid):
        raise TypeError(f"grid must be a sciffd.grids.TorusGrid, got {type(grid).__name__}")
    kind = type(data).__module__.split(".")[0]
    if kind == "xarray":
        import xarray as xr

        if isinstance(data, xr.Dataset):
            if variable not in data.data_vars:
                raise ValueError(
                    f"variable={variable!r} is not in the dataset; its variables are "
                    f"{sorted(map(str, data.data_vars))}"
                )
            da = data[variable]
        elif isinstance(data, xr.DataArray):
            da = data
            variable = str(da.name) if da.name is not None else variable
        else:
            raise TypeError(f"data must be an xarray.Dataset or DataArray, got {type(data)}")
        values, data_grid = _from_xarray(da)
        if grid is not None and grid != data_grid:
            raise ValueError(f"grid={grid} disagrees with the coordinates of the data, "
                             f"which give {data_grid}; leave grid=None for xarray data")
        grid = data_grid
        metadata = _metadata(variable, dict(da.attrs))
    elif isinstance(data, np.ndarray):
        if grid is None:
            raise TypeError("data is an array, so grid= (a TorusGrid) is required")
        values = data
        if values.ndim < grid.ndim + 2 or tuple(values.shape[-grid.ndim:]) != grid.shape:
            raise ValueError(
                f"data has shape {values.shape}; expected (N, C, *{grid.shape}) "
                f"(samples, channels, then the grid shape)"
            )
        if not np.issubdtype(values.dtype, np.floating):
            raise ValueError(f"data has dtype {values.dtype}; expected floating-point values")
        metadata = _metadata(variable, {})
    else:
        raise TypeError(
            f"data must be an xarray.Dataset or a numpy array (N, C, *S), got "
            f"{type(data).__name__}"
        )

    channels = values.shape[-grid.ndim - 1]
    samples = np.asarray(values).reshape((-1, channels) + grid.shape)
    if samples.shape[0] == 0:
        raise ValueError(f"data has shape {values.shape}: no samples to train on")
    finite = np.isfinite(samples)
    if not finite.all():
        bad = samples.size - int(finite.sum())
        raise ValueError(f"data ({variable!r}) has {bad} NaN or infinite value(s) out of "
                         f"{samples.size}; fill or drop them before training")
    return np.ascontiguousarray(samples, dtype=np.float32), grid, metadata
