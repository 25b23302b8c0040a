"""Increments, structure functions and two-point correlations on the torus.

The increment of a field ``u`` over a separation ``r`` along the unit
vector ``e`` of a grid axis is

    delta_r u(x) = u(x + r e) - u(x),

taken periodically (a roll of the grid by ``j = r / dx`` points), so every
grid point contributes. From it:

- the structure function of order ``p``,
  ``S_p(r) = < (delta_r u_par)^p >`` (or ``< |delta_r u_par|^p >``), where
  ``u_par`` is the component of a velocity along ``e`` (longitudinal) or
  the field itself for a scalar;
- the two-point correlation ``R(r) = < u'(x) u'(x + r e) >`` of the
  fluctuation ``u' = u - <u>``, computed by Wiener-Khinchin as
  ``R(r) = sum_k |u_hat[k]|^2 exp(i k . r)`` (one inverse FFT of the power);
- the integral length scale ``L_int = int_0^{L/2} R(r) / R(0) dr``
  (trapezoid rule on ``r_j = j dx``, ``j = 0 .. floor(N/2)``).

``< . >`` is the grid mean over the domain; results are per field (the
leading axes are kept). Separations are physical, ``r_j = j dx`` along
each axis, ``j = 0 .. floor(min(N)/2)``; with ``average_axes=True`` the
statistic is averaged over the axes (an isotropic estimate), which needs
the same spacing on every axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backend import irfftn, to_numpy
from ..grids import TorusGrid
from ..spectral import check_field, forward
from . import _labels

__all__ = [
    "increment_pdf",
    "increments",
    "integral_length_scale",
    "structure_function",
    "two_point_correlation",
]

_ORDERS = ("xyz", "axes")


def _spatial_axis(axis: Any, grid: TorusGrid) -> int:
    """A spatial axis index ``0 .. d-1`` (negative counts from the last)."""
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis={axis!r} must be an integer spatial axis")
    if not -grid.ndim <= axis < grid.ndim:
        raise ValueError(
            f"axis={axis} is out of range for a {grid.ndim}-dimensional grid; expected "
            f"-{grid.ndim} .. {grid.ndim - 1}"
        )
    return int(axis) % grid.ndim


def _shift(separation: Any, grid: TorusGrid, axis: int) -> int:
    """The number of grid points ``j = r / dx`` of a physical separation."""
    if isinstance(separation, bool) or not isinstance(separation, (int, float, np.integer,
                                                                   np.floating)):
        raise TypeError(f"separation={separation!r} must be a number (a physical distance)")
    dx = grid.spacing[axis]
    j = float(separation) / dx
    if not np.isfinite(j) or abs(j - round(j)) > 1e-6:
        raise ValueError(
            f"separation={separation!r} is not a multiple of the grid spacing "
            f"dx={dx:g} along axis {axis}; use r = j * dx"
        )
    return int(round(j))


def _increment(u: np.ndarray, j: int, array_axis: int) -> np.ndarray:
    return np.roll(u, -j, axis=array_axis) - u


def _axis_from_dim(da: Any, dim: Any, dims: tuple[str, ...]) -> int:
    _labels.check_dim_name(dim, "dim")
    if dim not in dims:
        raise ValueError(f"dim={dim!r} is not one of the spatial dims {dims}")
    return dims.index(dim)


def increments(u: Any, grid: TorusGrid | None = None, *, separation: float,
               axis: int = -1, dim: str | None = None,
               dims: Sequence[str] | None = None) -> Any:
    """Periodic increments ``delta_r u(x) = u(x + r e_axis) - u(x)``.

    Parameters
    ----------
    u : array, shape ``(..., *S)``, or xarray.DataArray
        Fields on ``grid``.
    grid : TorusGrid
        Required for arrays; read from the coordinates of a DataArray.
    separation : float
        The physical separation ``r``; a multiple ``j dx`` of the spacing.
    axis : int
        Spatial axis of ``e`` for arrays (``-1`` is ``x``).
    dim : str, optional
        Spatial dim of ``e`` for a DataArray (default its last spatial dim).
    dims : sequence of str, optional
        Spatial dims of a DataArray.

    Returns
    -------
    delta : numpy array, shape of ``u`` (float64), or xarray.DataArray
        Lazy on Dask.

    Examples
    --------
    >>> import numpy as np
    >>> from sciffd.grids import torus
    >>> g = torus(4, ndim=1)
    >>> increments(np.array([0.0, 1.0, 2.0, 3.0]), g, separation=0.25, axis=0)
    array([ 1.,  1.,  1., -3.])
    """
    if _labels.is_xarray(u):
        grid, dims = _labels.grid_and_dims(u, grid, dims, "u")
        a = _axis_from_dim(u, dims[-1] if dim is None else dim, dims)
        j = _shift(separation, grid, a)
        out = _labels.apply(lambda v: _increment(v, j, -1), u, core_dims=[[dims[a]]],
                            output_dims=[dims[a]])
        out = out.transpose(*u.dims)
        return _labels.labelled(out, u, "increment", _labels.variable_units(u),
                                f"increment over r = {separation:g} along {dims[a]} of "
                                f"{_labels.variable_long_name(u)}")
    _labels.check_dataarray_input(u, "u")
    grid = _labels.require_grid(grid)
    check_field(u, grid, "u")
    a = _spatial_axis(axis, grid)
    j = _shift(separation, grid, a)
    values = np.asarray(to_numpy(u), dtype=np.float64)
    return _increment(values, j, a - grid.ndim)


def increment_pdf(u: Any, grid: TorusGrid | None = None, *, separations: Sequence[float],
                  axis: int = -1, dim: str | None = None, bins: int = 64,
                  range_: tuple[float, float] | None = None, standardize: bool = False,
                  dims: Sequence[str] | None = None) -> Any:
    """Density histograms of increments ``delta_r u`` at several separations.

    All values of all fields are pooled per separation, and all
    separations share the same bins.

    Parameters
    ----------
    u : array, shape ``(..., *S)``, or xarray.DataArray
        Fields on ``grid``.
    grid : TorusGrid
        Required for arrays.
    separations : sequence of float
        Physical separations ``r``, each a multiple of the spacing.
    axis, dim, dims
        The direction ``e``, as in :func:`increments`.
    bins : int
        Number of bins.
    range_ : (float, float), optional
        Bin range; default symmetric, ``[-m, m]`` with ``m`` the largest
        ``|delta_r u|`` over all separations.
    standardize : bool
        Divide each separation's increments by their standard deviation
        (compare shapes; a Gaussian field gives ``N(0, 1)`` at every ``r``).

    Returns
    -------
    centres : numpy array, shape ``(bins,)``
    pdf : numpy array, shape ``(len(separations), bins)``
        For a DataArray, one DataArray over ``("separation", "bin")`` with
        coordinates ``r`` and ``value`` (computed, not lazy).
    """
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins={bins!r} must be a positive integer")
    try:
        rs = [float(r) for r in separations]
    except TypeError:
        raise TypeError(f"separations={separations!r} must be a sequence of numbers") from None
    if not rs:
        raise ValueError("separations is empty; give at least one separation")
    labelled = _labels.is_xarray(u)
    deltas = []
    for r in rs:
        d = increments(u, grid, separation=r, axis=axis, dim=dim, dims=dims)
        d = np.asarray(d.values if labelled else d).reshape(-1)
        if standardize:
            sd = d.std()
            if sd == 0:
                raise ValueError(f"the increments at separation={r:g} are all zero; they "
                                 "cannot be standardized")
            d = d / sd
        deltas.append(d)
    if range_ is None:
        m = max(float(np.abs(d).max()) for d in deltas)
        range_ = (-m, m) if m > 0 else (-1.0, 1.0)
    edges = np.histogram_bin_edges(deltas[0], bins=bins, range=range_)
    pdf = np.stack([np.histogram(d, bins=edges, density=True)[0] for d in deltas])
    centres = 0.5 * (edges[1:] + edges[:-1])
    if not labelled:
        return centres, pdf
    _, sdims = _labels.grid_and_dims(u, grid, dims, "u")
    units = "1" if standardize else _labels.variable_units(u)
    out = _labels.xr().DataArray(pdf, dims=("separation", "bin"), coords={
        "r": ("separation", np.asarray(rs), {
            "units": _labels.coordinate_units(u, sdims), "long_name": "separation"}),
        "value": ("bin", centres, {"units": units, "long_name": "increment (bin centre)"}),
    })
    return _labels.labelled(out, u, "increment_pdf", _labels.power_units(units, -1),
                            f"probability density of increments of "
                            f"{_labels.variable_long_name(u)}")


def _separations(grid: TorusGrid, average_axes: bool,
                 max_separation: float | None) -> tuple[int, np.ndarray]:
    """``(n_r, r)``: ``r`` is ``(n_r,)`` when averaged, else ``(d, n_r)``."""
    if average_axes and not np.allclose(grid.spacing, grid.spacing[0], rtol=1e-12, atol=0):
        raise ValueError(
            f"average_axes=True needs the same spacing on every axis, but {grid} has "
            f"spacings {grid.spacing}; pass average_axes=False for one curve per axis"
        )
    n_r = min(grid.shape) // 2 + 1
    if max_separation is not None:
        if not isinstance(max_separation, (int, float, np.integer, np.floating)) or not (
                max_separation >= 0):
            raise ValueError(f"max_separation={max_separation!r} must be a number >= 0")
        n_r = min(n_r, int(np.floor(max_separation / max(grid.spacing) + 1e-9)) + 1)
    j = np.arange(n_r)
    r = np.stack([j * dx for dx in grid.spacing])
    return n_r, (r[0] if average_axes else r)


def _check_order(order: Any, absolute: bool) -> float:
    if isinstance(order, bool) or not isinstance(order, (int, float, np.integer, np.floating)):
        raise TypeError(f"order={order!r} must be a number")
    if absolute:
        if not order > 0:
            raise ValueError(f"order={order!r} must be positive")
        return float(order)
    if order < 1 or float(order) != int(order):
        raise ValueError(
            f"order={order!r} must be a positive integer for signed increments; pass "
            "absolute=True for <|delta u|^p> with a non-integer p"
        )
    return float(int(order))


def _autocorrelation(u: np.ndarray, grid: TorusGrid, subtract_mean: bool) -> np.ndarray:
    """``C(r) = <u(x) u(x + r)>`` on the grid of separation vectors, ``(..., *S)``."""
    u_hat = np.asarray(to_numpy(forward(u, grid)))
    if subtract_mean:
        u_hat = u_hat.copy()
        u_hat[(...,) + (0,) * grid.ndim] = 0
    return irfftn(np.abs(u_hat) ** 2, grid.shape)


def _along_axes(c: np.ndarray, grid: TorusGrid, n_r: int) -> np.ndarray:
    """Values of a separation-grid array along each axis, ``(..., d, n_r)``."""
    out = []
    for a in range(grid.ndim):
        index = [0] * grid.ndim
        index[a] = slice(0, n_r)
        out.append(c[(...,) + tuple(index)])
    return np.stack(out, axis=-2)


def structure_function(u: Any, grid: TorusGrid | None = None, *, order: float = 2,
                       absolute: bool = False, kind: str = "scalar",
                       component_order: str = "xyz", average_axes: bool = True,
                       max_separation: float | None = None,
                       dims: Sequence[str] | None = None,
                       component_dim: str = "channel") -> Any:
    """Structure function ``S_p(r) = < (delta_r u_par)^p >`` per field.

    Parameters
    ----------
    u : array or xarray.DataArray
        ``kind="scalar"``: fields ``(..., *S)``; ``kind="velocity"``:
        velocities ``(..., d, *S)`` (for a DataArray, components on the dim
        ``component_dim``), of which the longitudinal component along each
        axis is used.
    grid : TorusGrid
        Required for arrays.
    order : int or float
        ``p``: a positive integer, or any positive number with
        ``absolute=True``.
    absolute : bool
        Use ``|delta_r u_par|^p``.
    kind : {"scalar", "velocity"}
    component_order : {"xyz", "axes"}
        Order of the velocity components (see :mod:`.quantities`).
    average_axes : bool
        Average over the axes (same spacing needed); else one curve per axis.
    max_separation : float, optional
        Largest ``r`` kept; default ``floor(min(N)/2) dx``.
    dims : sequence of str, optional
        Spatial dims of a DataArray.
    component_dim : str
        Dim of the velocity components of a DataArray.

    Returns
    -------
    r : numpy array, shape ``(n_r,)`` (or ``(d, n_r)`` per axis)
        Separations ``j dx``.
    S : numpy array, shape ``(..., n_r)`` (or ``(..., d, n_r)``)
        For a DataArray, one DataArray over ``(..., "separation")`` (or
        ``(..., "direction", "separation")``) with the coordinate ``r``; lazy on
        Dask.

    Notes
    -----
    ``p = 2`` is computed by Wiener-Khinchin, ``S_2(r) = 2 (C(0) - C(r))``
    with ``C`` the autocorrelation; other orders by rolling the grid.

    Examples
    --------
    >>> import numpy as np
    >>> from sciffd.grids import torus
    >>> g = torus(32, ndim=1)
    >>> u = np.sin(2 * np.pi * g.coords(0))
    >>> r, S2 = structure_function(u, g)
    >>> bool(np.allclose(S2, 1 - np.cos(2 * np.pi * r)))
    True
    """
    if kind not in ("scalar", "velocity"):
        raise ValueError(f"kind={kind!r} is not supported; expected 'scalar' or 'velocity'")
    if component_order not in _ORDERS:
        raise ValueError(
            f"component_order={component_order!r} is not supported; expected one of {_ORDERS}"
        )
    p = _check_order(order, absolute)
    if _labels.is_xarray(u):
        return _structure_dataarray(u, grid, p, absolute, kind, component_order,
                                    average_axes, max_separation, dims, component_dim)
    _labels.check_dataarray_input(u, "u")
    grid = _labels.require_grid(grid)
    check_field(u, grid, "u")
    values = np.asarray(to_numpy(u), dtype=np.float64)
    d = grid.ndim
    if kind == "velocity" and (values.ndim < d + 1 or values.shape[-d - 1] != d):
        raise ValueError(
            f"u has shape {values.shape}; a velocity needs its {d} components on axis "
            f"-{d + 1}, shape (..., {d}, *{grid.shape})"
        )
    n_r, r = _separations(grid, average_axes, max_separation)
    curves = []
    for a in range(d):
        if kind == "velocity":
            c = d - 1 - a if component_order == "xyz" else a
            field = values[..., c, *([slice(None)] * d)]
        else:
            field = values
        curves.append(_structure_along(field, grid, a, p, absolute, n_r))
    S = np.stack(curves, axis=-2)
    return r, (S.mean(axis=-2) if average_axes else S)


def _structure_along(u: np.ndarray, grid: TorusGrid, a: int, p: float, absolute: bool,
                     n_r: int) -> np.ndarray:
    """``S_p(j dx_a)`` for ``j < n_r`` of scalar fields ``(..., *S)``, shape ``(..., n_r)``."""
    space = tuple(range(-grid.ndim, 0))
    if p == 2:
        c = _autocorrelation(u, grid, subtract_mean=False)
        index = [0] * grid.ndim
        index[a] = slice(0, n_r)
        along = c[(...,) + tuple(index)]
        return 2 * (along[..., :1] - along)
    out = np.zeros(u.shape[: u.ndim - grid.ndim] + (n_r,))
    for j in range(1, n_r):
        delta = _increment(u, j, a - grid.ndim)
        if absolute:
            delta = np.abs(delta)
        out[..., j] = (delta**p).mean(axis=space)
    return out


def _separation_coords(r: np.ndarray, average_axes: bool, dims: tuple[str, ...],
                       units: str) -> dict:
    attrs = {"units": units, "long_name": "separation"}
    if average_axes:
        return {"r": ("separation", r, attrs)}
    return {"direction": ("direction", list(dims),
                          {"long_name": "dim along which r is taken"}),
            "r": (("direction", "separation"), r, attrs)}


def _structure_dataarray(u, grid, p, absolute, kind, component_order, average_axes,
                         max_separation, dims, component_dim):
    grid, dims = _labels.grid_and_dims(u, grid, dims, "u")
    core = list(dims)
    if kind == "velocity":
        _labels.check_dim_name(component_dim, "component_dim")
        _labels.has_dim(u, component_dim, "u", "component_dim")
        core = [component_dim, *dims]
    n_r, r = _separations(grid, average_axes, max_separation)

    def kernel(a: np.ndarray) -> np.ndarray:
        return structure_function(a, grid, order=p, absolute=absolute, kind=kind,
                                  component_order=component_order,
                                  average_axes=average_axes,
                                  max_separation=max_separation)[1]

    out_dims = ["separation"] if average_axes else ["direction", "separation"]
    sizes = {"separation": n_r, "direction": grid.ndim}
    out = _labels.apply(kernel, u, core_dims=[core], output_dims=out_dims,
                        output_sizes={k: sizes[k] for k in out_dims})
    out = out.assign_coords(_separation_coords(r, average_axes, dims,
                                               _labels.coordinate_units(u, dims)))
    bars = "|" if absolute else ""
    p_text = f"{int(p)}" if p == int(p) else f"{p:g}"
    kind_text = "longitudinal " if kind == "velocity" else ""
    return _labels.labelled(
        out, u, "structure_function",
        _labels.power_units(_labels.variable_units(u), int(p)) if p == int(p) else
        f"({_labels.variable_units(u)})^{p:g}",
        f"{kind_text}structure function <{bars}delta u{bars}^{p_text}> of "
        f"{_labels.variable_long_name(u)}")


def two_point_correlation(u: Any, grid: TorusGrid | None = None, *,
                          subtract_mean: bool = True, average_axes: bool = True,
                          dims: Sequence[str] | None = None) -> Any:
    """Two-point correlation ``R(r) = < u'(x) u'(x + r e) >`` per field, by FFT.

    Parameters
    ----------
    u : array, shape ``(..., *S)``, or xarray.DataArray
        Scalar fields on ``grid``.
    grid : TorusGrid
        Required for arrays.
    subtract_mean : bool
        Correlate the fluctuation ``u' = u - <u>`` (default) or ``u`` itself.
    average_axes : bool
        Average over the axes (same spacing needed); else one curve per axis.
    dims : sequence of str, optional
        Spatial dims of a DataArray.

    Returns
    -------
    r : numpy array, shape ``(n_r,)`` (or ``(d, n_r)``)
    R : numpy array, shape ``(..., n_r)`` (or ``(..., d, n_r)``)
        ``R(0)`` is the variance ``<u'^2>``. A DataArray input returns one
        DataArray over ``(..., "separation")`` with coordinate ``r`` (lazy
        on Dask).

    Examples
    --------
    >>> import numpy as np
    >>> from sciffd.grids import torus
    >>> g = torus(16, ndim=1)
    >>> r, R = two_point_correlation(np.cos(2 * np.pi * g.coords(0)), g)
    >>> bool(np.allclose(R, np.cos(2 * np.pi * r) / 2))
    True
    """
    if _labels.is_xarray(u):
        grid, dims = _labels.grid_and_dims(u, grid, dims, "u")
        n_r, r = _separations(grid, average_axes, None)
        out_dims = ["separation"] if average_axes else ["direction", "separation"]
        sizes = {"separation": n_r, "direction": grid.ndim}
        out = _labels.apply(
            lambda a: two_point_correlation(a, grid, subtract_mean=subtract_mean,
                                            average_axes=average_axes)[1],
            u, core_dims=[dims], output_dims=out_dims,
            output_sizes={k: sizes[k] for k in out_dims})
        out = out.assign_coords(_separation_coords(r, average_axes, dims,
                                                   _labels.coordinate_units(u, dims)))
        return _labels.labelled(out, u, "two_point_correlation",
                                _labels.power_units(_labels.variable_units(u), 2),
                                f"two-point correlation of {_labels.variable_long_name(u)}")
    _labels.check_dataarray_input(u, "u")
    grid = _labels.require_grid(grid)
    check_field(u, grid, "u")
    n_r, r = _separations(grid, average_axes, None)
    c = _autocorrelation(np.asarray(to_numpy(u), dtype=np.float64), grid, subtract_mean)
    R = _along_axes(c, grid, n_r)
    return r, (R.mean(axis=-2) if average_axes else R)


def integral_length_scale(u: Any, grid: TorusGrid | None = None, *,
                          average_axes: bool = True,
                          dims: Sequence[str] | None = None) -> Any:
    """Integral length scale ``L_int = int_0^{L/2} R(r) / R(0) dr`` per field.

    Parameters
    ----------
    u : array, shape ``(..., *S)``, or xarray.DataArray
        Scalar fields on ``grid``.
    grid : TorusGrid
        Required for arrays.
    average_axes : bool
        Integrate the axis-averaged ``R`` (same spacing needed); else one
        scale per axis, each up to half its own period.
    dims : sequence of str, optional
        Spatial dims of a DataArray.

    Returns
    -------
    L_int : numpy array, shape ``(...)`` (or ``(..., d)``), or xarray.DataArray
        In the units of the coordinates. The trapezoid rule runs over
        ``r_j = j dx``, ``j = 0 .. floor(N/2)`` (to ``L/2`` for even ``N``).
        A constant field (``R(0) = 0``) gives NaN.

    Warnings
    --------
    ``R`` of one field is a noisy estimate; for an ensemble, the scale of
    the member-mean ``R`` (from :func:`two_point_correlation`) is less
    biased than the mean of per-member scales.
    """
    if _labels.is_xarray(u):
        grid, dims = _labels.grid_and_dims(u, grid, dims, "u")
        out_dims = [] if average_axes else ["direction"]
        out = _labels.apply(
            lambda a: integral_length_scale(a, grid, average_axes=average_axes), u,
            core_dims=[dims], output_dims=out_dims,
            output_sizes=None if average_axes else {"direction": grid.ndim})
        if not average_axes:
            out = out.assign_coords(direction=("direction", list(dims), {
                "long_name": "dim along which the scale is taken"}))
        return _labels.labelled(out, u, "integral_length_scale",
                                _labels.coordinate_units(u, dims),
                                f"integral length scale of {_labels.variable_long_name(u)}")
    _labels.check_dataarray_input(u, "u")
    grid = _labels.require_grid(grid)
    check_field(u, grid, "u")
    c = _autocorrelation(np.asarray(to_numpy(u), dtype=np.float64), grid, True)
    scales = []
    for a in range(grid.ndim):
        n_r = grid.shape[a] // 2 + 1
        index = [0] * grid.ndim
        index[a] = slice(0, n_r)
        scales.append(c[(...,) + tuple(index)])
    if average_axes:
        _separations(grid, True, None)
        n_r = min(s.shape[-1] for s in scales)
        R = np.mean([s[..., :n_r] for s in scales], axis=0)
        return _trapezoid_scale(R, grid.spacing[0])
    return np.stack([_trapezoid_scale(s, dx) for s, dx in zip(scales, grid.spacing,
                                                              strict=True)], axis=-1)


def _trapezoid_scale(R: np.ndarray, dx: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = R / R[..., :1]
    return np.trapezoid(rho, dx=dx, axis=-1)
