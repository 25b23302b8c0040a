"""Fields as labelled arrays: numpy/torch arrays <-> :mod:`xarray` objects.

A field on the torus ``T^d`` is stored as an array of shape ``(..., *S)``
with its spatial axes last, ordered ``(z, y, x)``, and its grid
(:class:`~sciffd.grids.TorusGrid`). In xarray the same field is a
``DataArray`` with dims ``(..., "y", "x")`` (leading dims such as
``member``, ``time``, ``sample`` or ``channel``), a coordinate per spatial
dim with the points ``x_j = x_0 + j L / N`` and the attributes ``units``,
``axis`` and ``period`` (``= L``), and the variable attributes ``units``
and ``long_name`` (and a CF ``standard_name`` where one really exists).

Readers accept what real files contain: float32 or float64 values,
coordinates ascending or descending (descending ones are sorted), any
origin ``x_0`` (``0``, or ``-180`` for a longitude), and extra leading dims
named by the caller. They refuse, with a one-line ``ValueError`` naming the
variable and the problem, NaN or infinite values, a missing spatial
coordinate, non-uniform spacing, a spacing whose ``N dx`` does not match a
recorded period, an axis that cannot be periodic (latitude), unknown dims
and float types other than float32/float64.

The periodic length of an axis read from coordinates is ``L = N |dx|``:
coordinates hold the points ``x_0 .. x_0 + (N-1) dx`` and the last point is
not repeated.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import backend
from .grids import AXIS_NAMES, TorusGrid

__all__ = [
    "KNOWN_DIMS",
    "history_stamp",
    "member_coordinate",
    "check_dataarray",
    "from_dataarray",
    "grid_from",
    "grid_origin",
    "to_dataarray",
    "to_dataset",
]

#: leading (non-spatial) dims every reader accepts without being told
LEADING_DIMS = ("member", "time", "sample", "channel")
#: all dims sciffd knows by name: leading dims, then the spatial axes
KNOWN_DIMS = LEADING_DIMS + ("z", "y", "x")

_SPATIAL = ("z", "y", "x")
_AXIS_ATTR = {"x": "X", "y": "Y", "z": "Z"}
_EAST = {"degrees_east", "degree_east", "degree_e", "degrees_e", "degreee", "degreese"}
_NORTH = {"degrees_north", "degree_north", "degree_n", "degrees_n", "degreen", "degreesn"}
_RTOL_PERIOD = 1e-4


def _xr():
    import xarray

    return xarray


def _label(name: Any) -> str:
    return "variable" if name is None else f"variable {name!r}"


def _check_dims_arg(dims: Any, arg: str = "dims") -> tuple[str, ...] | None:
    if dims is None:
        return None
    if isinstance(dims, str):
        dims = (dims,)
    try:
        dims = tuple(dims)
    except TypeError:
        raise TypeError(f"{arg}={dims!r} must be a sequence of dim names") from None
    if not all(isinstance(d, str) for d in dims):
        raise TypeError(f"{arg}={dims!r} must contain dim names (str)")
    if len(set(dims)) != len(dims):
        raise ValueError(f"{arg}={dims!r} names a dim twice")
    return dims


def _spatial_dims(obj: Any, dims: tuple[str, ...] | None, label: str) -> tuple[str, ...]:
    """The spatial dims of ``obj``: ``dims`` if given, else those of z, y, x present."""
    if dims is None:
        found = tuple(d for d in _SPATIAL if d in obj.dims)
        if not found:
            raise ValueError(
                f"{label} has dims {tuple(obj.dims)} and none of the spatial dims "
                f"{_SPATIAL}; name them with dims=(...)"
            )
        dims = found
    if not 1 <= len(dims) <= 3:
        raise ValueError(f"{label}: dims={dims!r} must name 1, 2 or 3 spatial dims")
    for d in dims:
        if d not in obj.dims:
            raise ValueError(f"{label} has no dim {d!r}; its dims are {tuple(obj.dims)}")
    return dims


def _axis_length(obj: Any, dim: str, label: str) -> tuple[float, float]:
    """``(L, x_0)`` of a periodic axis from its coordinate, after checking it."""
    if dim not in obj.coords:
        raise ValueError(
            f"{label} is missing the coordinate {dim!r}; a periodic grid needs the "
            "point coordinates of every spatial dim"
        )
    coord = obj.coords[dim]
    if coord.ndim != 1:
        raise ValueError(f"{label}: coordinate {dim!r} must be 1-D, it has dims {coord.dims}")
    values = np.asarray(coord.values)
    if not np.issubdtype(values.dtype, np.number) or np.iscomplexobj(values):
        raise ValueError(
            f"{label}: coordinate {dim!r} has dtype {values.dtype}; expected real numbers"
        )
    n = values.size
    if n < 2:
        raise ValueError(f"{label}: coordinate {dim!r} has {n} point(s); need at least 2")
    x = values.astype(np.float64)
    if not np.isfinite(x).all():
        raise ValueError(f"{label}: coordinate {dim!r} has NaN or infinite values")

    # uniform spacing, to the rounding of the stored coordinate type
    dx = (x[-1] - x[0]) / (n - 1)
    if dx == 0:
        raise ValueError(f"{label}: coordinate {dim!r} has zero spacing")
    eps = np.finfo(values.dtype).eps if np.issubdtype(values.dtype, np.floating) else 0.0
    tol = 1e-6 * abs(dx) + 4 * eps * float(np.abs(x).max())
    gaps = np.diff(x)
    worst = int(np.argmax(np.abs(gaps - dx)))
    if abs(gaps[worst] - dx) > tol:
        raise ValueError(
            f"{label}: coordinate {dim!r} is not uniformly spaced (step {gaps[worst]:.6g} "
            f"between points {worst} and {worst + 1}, mean step {dx:.6g}); a periodic "
            "grid needs uniform spacing"
        )

    # periodicity
    length = n * abs(dx)
    units = str(coord.attrs.get("units", "")).strip().lower().replace(" ", "")
    if units in _NORTH:
        raise ValueError(
            f"{label}: coordinate {dim!r} is a latitude ({coord.attrs['units']}) and "
            "not periodic; a torus grid cannot be built on it"
        )
    period = coord.attrs.get("period")
    if period is None and units in _EAST:
        period = 360.0
    if period is not None:
        period = float(np.asarray(period).reshape(-1)[0])
        if not abs(length - period) <= _RTOL_PERIOD * period:
            raise ValueError(
                f"{label}: coordinate {dim!r} is not periodic with period {period:g}: "
                f"{n} points of step {abs(dx):.6g} span {length:.6g} (a grid must not "
                "repeat its first point at the end)"
            )
        length = period
    return length, float(x.min())


def grid_from(obj: Any, dims: Sequence[str] | None = None) -> TorusGrid:
    """The periodic grid of a ``DataArray`` or ``Dataset``, read from its coordinates.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        An object with a 1-D coordinate on each spatial dim.
    dims : sequence of str, optional
        The spatial dims, in array order (``("y", "x")`` in 2D); default:
        those of ``z``, ``y``, ``x`` that ``obj`` has.

    Returns
    -------
    TorusGrid
        ``shape`` is the number of points per dim and ``lengths`` the
        periods ``L = N |dx|`` (or the recorded ``period`` attribute, which
        must agree). The origin ``x_0`` may be anything; see
        :func:`grid_origin`.

    Raises
    ------
    ValueError
        If a coordinate is missing, not uniform, not periodic, or if a
        named dim does not exist.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.zeros((4, 8)), dims=("y", "x"),
    ...                   coords={"y": np.arange(4) * 0.5, "x": np.arange(8) * 0.25})
    >>> grid_from(da)
    TorusGrid(shape=(4, 8), lengths=(2.0, 2.0))
    """
    dims = _check_dims_arg(dims)
    label = _label(getattr(obj, "name", None))
    dims = _spatial_dims(obj, dims, label)
    lengths = tuple(_axis_length(obj, d, label)[0] for d in dims)
    shape = tuple(int(obj.sizes[d]) for d in dims)
    return TorusGrid(shape, lengths)


def grid_origin(obj: Any, dims: Sequence[str] | None = None) -> tuple[float, ...]:
    """The smallest coordinate ``x_0`` of each spatial dim of ``obj`` (see :func:`grid_from`)."""
    dims = _check_dims_arg(dims)
    label = _label(getattr(obj, "name", None))
    dims = _spatial_dims(obj, dims, label)
    return tuple(_axis_length(obj, d, label)[1] for d in dims)


def check_dataarray(
    da: Any,
    name: str | None = None,
    *,
    dims: Sequence[str] | None = None,
    extra_dims: Sequence[str] = (),
) -> None:
    """Refuse a ``DataArray`` that cannot be read as a field on a periodic grid.

    Parameters
    ----------
    da : xarray.DataArray
        The variable to check.
    name : str, optional
        Name used in messages (default ``da.name``).
    dims : sequence of str, optional
        Spatial dims, as in :func:`grid_from`.
    extra_dims : sequence of str
        Leading dims to accept besides ``member``, ``time``, ``sample`` and
        ``channel`` (for example ``("month", "level")``).

    Raises
    ------
    ValueError
        One line naming the variable and the problem: unknown dims, a
        missing or non-uniform coordinate, a non-periodic axis, a float
        type other than float32/float64, NaN or infinite values.
    TypeError
        If ``da`` is not a ``DataArray``.
    """
    xr = _xr()
    if not isinstance(da, xr.DataArray):
        raise TypeError(f"expected an xarray.DataArray, got {type(da).__name__}")
    label = _label(da.name if name is None else name)
    dims = _check_dims_arg(dims)
    extra = _check_dims_arg(extra_dims, "extra_dims") or ()
    spatial = _spatial_dims(da, dims, label)

    allowed = set(LEADING_DIMS) | set(extra) | set(spatial)
    unknown = [d for d in da.dims if d not in allowed]
    if unknown:
        raise ValueError(
            f"{label} has unknown dim(s) {tuple(unknown)}; expected leading dims among "
            f"{LEADING_DIMS} and spatial dims {spatial} (pass extra_dims={tuple(unknown)!r} "
            "to accept them)"
        )
    for d in spatial:
        _axis_length(da, d, label)

    if da.dtype not in (np.float32, np.float64):
        raise ValueError(f"{label} has dtype {da.dtype}; expected float32 or float64")
    values = np.asarray(da.values)
    finite = np.isfinite(values)
    if not finite.all():
        bad = values.size - int(finite.sum())
        kinds = "NaN" if np.isnan(values).any() else "infinite"
        if kinds == "NaN" and np.isinf(values).any():
            kinds = "NaN and infinite"
        raise ValueError(
            f"{label} has {bad} {kinds} value(s) out of {values.size}; fill or drop "
            "them before use"
        )


def from_dataarray(
    da: Any,
    dims: Sequence[str] | None = None,
    *,
    extra_dims: Sequence[str] = (),
) -> tuple[np.ndarray, TorusGrid]:
    """The values and the grid of a field stored as a ``DataArray``.

    Parameters
    ----------
    da : xarray.DataArray
        A field with dims ``(..., *spatial)`` in any order; checked by
        :func:`check_dataarray`.
    dims : sequence of str, optional
        Spatial dims in array order; default those of ``z``, ``y``, ``x``.
    extra_dims : sequence of str
        Leading dims to accept besides the known ones.

    Returns
    -------
    u : numpy.ndarray, shape ``(..., *S)``
        The values (float32 or float64, as stored), leading dims in the order
        of ``da``, spatial axes last. Every dim whose coordinate descends
        (a latitude from 90 to -90) is sorted ascending first.
    grid : TorusGrid
        The grid of the spatial axes.
    """
    check_dataarray(da, dims=dims, extra_dims=extra_dims)
    spatial = _spatial_dims(da, _check_dims_arg(dims), _label(da.name))
    grid = grid_from(da, spatial)

    for d in da.dims:
        if d in da.coords and da.coords[d].ndim == 1 and da.sizes[d] > 1:
            c = np.asarray(da.coords[d].values)
            if np.issubdtype(c.dtype, np.number) and (np.diff(c) < 0).all():
                da = da.isel({d: slice(None, None, -1)})
    leading = [d for d in da.dims if d not in spatial]
    da = da.transpose(*leading, *spatial)
    return np.asarray(da.values), grid


def _coord_attrs(dim: str, grid: TorusGrid, axis: int) -> dict:
    attrs = {"units": "1", "long_name": f"{dim} coordinate", "period": grid.lengths[axis]}
    if dim in _AXIS_ATTR:
        attrs["axis"] = _AXIS_ATTR[dim]
    return attrs


def _check_attrs(attrs: Any, name: str) -> dict:
    if not isinstance(attrs, Mapping):
        raise TypeError(
            f"attrs for {name!r} must be a mapping with 'units' and 'long_name', "
            f"got {type(attrs).__name__}"
        )
    missing = [k for k in ("units", "long_name") if k not in attrs]
    if missing:
        raise ValueError(
            f"attrs for {name!r} lack {missing}; every variable needs 'units' and "
            f"'long_name' (got keys {sorted(attrs)})"
        )
    return dict(attrs)


def to_dataarray(
    u: Any,
    grid: TorusGrid,
    name: str,
    attrs: Mapping[str, Any],
    leading_dims: Sequence[str] = ("member",),
    coords: Mapping[str, Any] | None = None,
) -> Any:
    """Label an array of fields as an ``xarray.DataArray``.

    Parameters
    ----------
    u : array, shape ``(*lead, *S)``
        Fields on ``grid`` (numpy, torch or cupy; copied to numpy).
    grid : TorusGrid
        Grid of the spatial axes ``S``.
    name : str
        Variable name, for example ``"vorticity"``.
    attrs : mapping
        Variable attributes; must hold ``units`` and ``long_name``.
    leading_dims : sequence of str
        Names of the leading axes, one per axis of ``lead``; default
        ``("member",)``.
    coords : mapping, optional
        Extra or replacement coordinates (array-like or ``DataArray``). A
        spatial coordinate given here moves the origin; its spacing must be
        the grid's. ``member`` and ``sample`` default to ``0 .. n-1``.

    Returns
    -------
    xarray.DataArray
        Dims ``(*leading_dims, *grid.dims)``; spatial coordinates
        ``x_0 + j L / N`` with ``units``, ``axis``, ``long_name`` and
        ``period``.

    Examples
    --------
    >>> import numpy as np
    >>> from sciffd.grids import torus
    >>> da = to_dataarray(np.zeros((3, 8, 8)), torus(8), "psi",
    ...                   {"units": "1", "long_name": "stream function"})
    >>> da.dims
    ('member', 'y', 'x')
    """
    xr = _xr()
    if not isinstance(grid, TorusGrid):
        raise TypeError(f"grid must be a sciffd.grids.TorusGrid, got {type(grid).__name__}")
    if not isinstance(name, str) or not name:
        raise TypeError(f"name={name!r} must be a non-empty string")
    attrs = _check_attrs(attrs, name)
    lead = _check_dims_arg(leading_dims, "leading_dims")
    values = backend.to_numpy(u)
    if values.ndim != len(lead) + grid.ndim or values.shape[len(lead):] != grid.shape:
        raise ValueError(
            f"u has shape {values.shape}; expected {len(lead)} leading axes {lead} "
            f"followed by the grid shape {grid.shape}"
        )
    spatial = AXIS_NAMES[grid.ndim]
    clash = set(lead) & set(spatial)
    if clash:
        raise ValueError(f"leading_dims={lead!r} must not contain spatial dims {sorted(clash)}")
    coords = {} if coords is None else dict(coords)

    out = {}
    for i, d in enumerate(lead):
        if d in ("member", "sample") and d not in coords:
            out[d] = (d, np.arange(values.shape[i]),
                      {"long_name": f"{d} index", "units": "1"})
    for axis, d in enumerate(spatial):
        default = _coord_attrs(d, grid, axis)
        given = coords.pop(d, None)
        if given is None:
            out[d] = (d, grid.coords(axis), default)
            continue
        extra_attrs = dict(getattr(given, "attrs", {}))
        x = np.asarray(getattr(given, "values", given), dtype=np.float64)
        if x.shape != (grid.shape[axis],):
            raise ValueError(
                f"coords[{d!r}] has shape {x.shape}; expected ({grid.shape[axis]},)"
            )
        if not np.allclose(x - x[0], grid.coords(axis), rtol=0,
                           atol=1e-9 * grid.lengths[axis]):
            raise ValueError(
                f"coords[{d!r}] must be x_0 + j L/N with the grid spacing "
                f"{grid.spacing[axis]:g}"
            )
        out[d] = (d, x, {**default, **extra_attrs})
    out.update(coords)
    return xr.DataArray(values, dims=lead + spatial, coords=out, name=name, attrs=attrs)


def to_dataset(
    u: Any,
    grid: TorusGrid,
    name: str,
    attrs: Mapping[str, Any],
    leading_dims: Sequence[str] = ("member",),
    coords: Mapping[str, Any] | None = None,
    global_attrs: Mapping[str, Any] | None = None,
) -> Any:
    """Like :func:`to_dataarray`, wrapped in an ``xarray.Dataset`` with ``global_attrs``."""
    da = to_dataarray(u, grid, name, attrs, leading_dims, coords)
    ds = da.to_dataset()
    if global_attrs is not None:
        if not isinstance(global_attrs, Mapping):
            raise TypeError(
                f"global_attrs must be a mapping, got {type(global_attrs).__name__}"
            )
        ds.attrs.update(global_attrs)
    return ds


def member_coordinate(ids: Any) -> tuple:
    """The ``member`` coordinate every sciffd file writes: CF ``realization``."""
    return ("member", np.asarray(ids), {"long_name": "ensemble member", "units": "1",
                                        "standard_name": "realization"})


def history_stamp() -> str:
    """The UTC time, to the second, that opens each ``history`` line (ISO 8601, ``Z``)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
