"""Domain-mean quadratic invariants and the divergence of a velocity.

With the grid mean as the inner product (``<f> = (1/|D|) int_D f dx``),
for a 2D vorticity ``w`` and its velocity ``u``:

    E = <|u|^2> / 2 = sum_{k != 0} |w_hat[k]|^2 / (2 |k|^2)     (energy)
    Z = <w^2> / 2   = sum_k |w_hat[k]|^2 / 2                    (enstrophy)
    P = <|grad w|^2> / 2 = sum_k |k|^2 |w_hat[k]|^2 / 2         (palinstrophy)

each an exact identity of Parseval on the grid (``k`` angular,
``norm="forward"`` coefficients). First derivatives drop the Nyquist mode
of an even axis, as :func:`sciffd.spectral.derivative` does, so ``P`` is
the mean of the squared spectral gradient. The divergence of a velocity
is the spectral ``sum_i d u_i / d x_i``.

Velocity components are ordered ``(u_x, u_y[, u_z])`` by default
(``component_order="xyz"``, the order of :mod:`sciffd.domains.fluids`), so
component ``c`` lies along array axis ``-1 - c``; ``"axes"`` orders them
as the array axes, ``(u_y, u_x)`` in 2D. The results do not grow with the
resolution: they are means, not sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backend import to_numpy
from ..grids import TorusGrid
from ..spectral import as_array_like, check_field, derivative_multiplier, forward, inverse
from . import _labels
from .spectra import _shell_sum, energy_spectrum

__all__ = ["divergence", "energy", "enstrophy", "palinstrophy"]

_ORDERS = ("xyz", "axes")


def _check_velocity(velocity: Any, grid: TorusGrid, component_order: str) -> None:
    if component_order not in _ORDERS:
        raise ValueError(
            f"component_order={component_order!r} is not supported; expected one of {_ORDERS}"
        )
    check_field(velocity, grid, "velocity")
    shape = tuple(velocity.shape)
    if len(shape) < grid.ndim + 1 or shape[-grid.ndim - 1] != grid.ndim:
        raise ValueError(
            f"velocity has shape {shape}; expected its {grid.ndim} components on axis "
            f"-{grid.ndim + 1}, shape (..., {grid.ndim}, *{grid.shape})"
        )


def _reduce(func, field: Any, grid: Any, dims: Any, extra_core: Sequence[str],
            name: str, units: str, long_name: str) -> Any:
    """Apply a reduction over the spatial (and ``extra_core``) dims of a DataArray."""
    grid, dims = _labels.grid_and_dims(field, grid, dims, "field")
    out = _labels.apply(lambda a: func(a, grid), field, core_dims=[[*extra_core, *dims]])
    return _labels.labelled(out, field, name, units, long_name)


def energy(field: Any, grid: TorusGrid | None = None, kind: str = "vorticity", *,
           dims: Sequence[str] | None = None, component_dim: str = "channel") -> Any:
    """Mean kinetic energy ``E = <|u|^2> / 2`` per field.

    Parameters
    ----------
    field : array or xarray.DataArray
        ``kind="vorticity"``: a 2D vorticity ``w``, shape ``(..., Ny, Nx)``;
        ``kind="velocity"``: a velocity, shape ``(..., d, *S)`` (for a
        DataArray, components on the dim ``component_dim``).
    grid : TorusGrid
        Required for arrays; read from the coordinates of a DataArray.
    kind : {"vorticity", "velocity"}
    dims : sequence of str, optional
        Spatial dims of a DataArray.
    component_dim : str
        Dim of the velocity components of a DataArray.

    Returns
    -------
    E : numpy array, shape ``(...)``, or xarray.DataArray (lazy on Dask)
        From vorticity ``sum_{k != 0} |w_hat|^2 / (2 |k|^2)``; the mean of
        ``w`` carries no energy.

    Examples
    --------
    >>> import numpy as np
    >>> from sciffd.grids import torus
    >>> g = torus(16)
    >>> y, x = g.mesh()
    >>> u = np.stack([np.cos(2 * np.pi * y), np.zeros_like(y)])
    >>> float(energy(u, g, kind="velocity"))
    0.25
    """
    if kind not in ("vorticity", "velocity"):
        raise ValueError(f"kind={kind!r} is not supported; expected 'vorticity' or 'velocity'")
    if _labels.is_xarray(field):
        units_in = _labels.variable_units(field)
        long_name = f"mean kinetic energy from {_labels.variable_long_name(field)}"
        if kind == "velocity":
            _labels.check_dim_name(component_dim, "component_dim")
            _labels.has_dim(field, component_dim, "field", "component_dim")
            return _reduce(lambda a, g: energy(a, g, "velocity"), field, grid, dims,
                           [component_dim], "energy", _labels.power_units(units_in, 2),
                           long_name)
        _, spatial = _labels.grid_and_dims(field, grid, dims, "field")
        units = _labels.product_units(
            _labels.power_units(units_in, 2),
            _labels.power_units(_labels.coordinate_units(field, spatial), 2))
        return _reduce(lambda a, g: energy(a, g, "vorticity"), field, grid, dims, [],
                       "energy", units, long_name)
    _labels.check_dataarray_input(field, "field")
    grid = _labels.require_grid(grid)
    if kind == "velocity":
        check_field(field, grid, "field")
        u = np.asarray(to_numpy(field), dtype=np.float64)
        if u.ndim < grid.ndim + 1:
            raise ValueError(
                f"field has shape {u.shape}; a velocity needs its components on axis "
                f"-{grid.ndim + 1}"
            )
        axes = tuple(range(-grid.ndim - 1, 0))
        return 0.5 * (u**2).sum(axis=-grid.ndim - 1).mean(axis=axes[1:])
    return energy_spectrum(field, grid, "vorticity").sum(axis=-1)


def enstrophy(vorticity: Any, grid: TorusGrid | None = None, *,
              dims: Sequence[str] | None = None) -> Any:
    """Mean enstrophy ``Z = <w^2> / 2`` per field.

    Parameters
    ----------
    vorticity : array, shape ``(..., *S)``, or xarray.DataArray
        The vorticity ``w`` (any dimension; the 2D scalar vorticity in
        fluids).
    grid : TorusGrid
        Required for arrays.
    dims : sequence of str, optional
        Spatial dims of a DataArray.

    Returns
    -------
    Z : numpy array, shape ``(...)``, or xarray.DataArray (lazy on Dask)
    """
    if _labels.is_xarray(vorticity):
        return _reduce(lambda a, g: enstrophy(a, g), vorticity, grid, dims, [], "enstrophy",
                       _labels.power_units(_labels.variable_units(vorticity), 2),
                       f"mean enstrophy of {_labels.variable_long_name(vorticity)}")
    _labels.check_dataarray_input(vorticity, "vorticity")
    grid = _labels.require_grid(grid)
    check_field(vorticity, grid, "vorticity")
    w = np.asarray(to_numpy(vorticity), dtype=np.float64)
    return 0.5 * (w**2).mean(axis=tuple(range(-grid.ndim, 0)))


def palinstrophy(vorticity: Any, grid: TorusGrid | None = None, *,
                 dims: Sequence[str] | None = None) -> Any:
    """Mean palinstrophy ``P = <|grad w|^2> / 2`` per field, spectrally.

    Parameters
    ----------
    vorticity : array, shape ``(..., *S)``, or xarray.DataArray
        The vorticity ``w``.
    grid : TorusGrid
        Required for arrays.
    dims : sequence of str, optional
        Spatial dims of a DataArray.

    Returns
    -------
    P : numpy array, shape ``(...)``, or xarray.DataArray (lazy on Dask)
        ``sum_k |k|^2 |w_hat[k]|^2 / 2`` without the Nyquist mode of each
        even axis in that axis's derivative.

    Examples
    --------
    >>> import numpy as np
    >>> from sciffd.grids import torus
    >>> g = torus(16)
    >>> y, x = g.mesh()
    >>> bool(np.isclose(palinstrophy(np.sin(2 * np.pi * x), g), np.pi**2))
    True
    """
    if _labels.is_xarray(vorticity):
        _, spatial = _labels.grid_and_dims(vorticity, grid, dims, "vorticity")
        units = _labels.product_units(
            _labels.power_units(_labels.variable_units(vorticity), 2),
            _labels.power_units(_labels.coordinate_units(vorticity, spatial), -2))
        return _reduce(lambda a, g: palinstrophy(a, g), vorticity, grid, dims, [],
                       "palinstrophy", units,
                       f"mean palinstrophy of {_labels.variable_long_name(vorticity)}")
    _labels.check_dataarray_input(vorticity, "vorticity")
    grid = _labels.require_grid(grid)
    check_field(vorticity, grid, "vorticity")
    w_hat = to_numpy(forward(vorticity, grid))
    gain = sum(np.abs(derivative_multiplier(grid, i)) ** 2 for i in range(grid.ndim))
    return 0.5 * _shell_sum(np.abs(w_hat) ** 2 * gain, grid).sum(axis=-1)


def divergence(velocity: Any, grid: TorusGrid | None = None, *,
               component_order: str = "xyz", dims: Sequence[str] | None = None,
               component_dim: str = "channel") -> Any:
    """Spectral divergence ``sum_i d u_i / d x_i`` of a velocity.

    Parameters
    ----------
    velocity : array, shape ``(..., d, *S)``, or xarray.DataArray
        Velocity components on axis ``-d-1`` (numpy, torch or cupy), or a
        DataArray with the components on the dim ``component_dim``.
    grid : TorusGrid
        Required for arrays.
    component_order : {"xyz", "axes"}
        ``"xyz"``: components ``(u_x, u_y, u_z)``; ``"axes"``: in array-axis
        order (``(u_y, u_x)`` in 2D).
    dims : sequence of str, optional
        Spatial dims of a DataArray.
    component_dim : str
        Dim of the velocity components of a DataArray.

    Returns
    -------
    div : array, shape ``(..., *S)``, the namespace and precision of ``velocity``
        (or a DataArray, lazy on Dask).

    Examples
    --------
    >>> import numpy as np
    >>> from sciffd.grids import torus
    >>> g = torus(16)
    >>> y, x = g.mesh()
    >>> u = np.stack([np.sin(2 * np.pi * x), np.zeros_like(x)])  # (u_x, u_y)
    >>> bool(np.allclose(divergence(u, g), 2 * np.pi * np.cos(2 * np.pi * x)))
    True
    """
    if _labels.is_xarray(velocity):
        _labels.check_dim_name(component_dim, "component_dim")
        _labels.has_dim(velocity, component_dim, "velocity", "component_dim")
        grid, dims = _labels.grid_and_dims(velocity, grid, dims, "velocity")
        out = _labels.apply(
            lambda a: divergence(a, grid, component_order=component_order), velocity,
            core_dims=[[component_dim, *dims]], output_dims=list(dims),
            output_dtype=velocity.dtype)
        units = _labels.product_units(
            _labels.variable_units(velocity),
            _labels.power_units(_labels.coordinate_units(velocity, dims), -1))
        return _labels.labelled(out, velocity, "divergence", units,
                                f"divergence of {_labels.variable_long_name(velocity)}")
    _labels.check_dataarray_input(velocity, "velocity")
    grid = _labels.require_grid(grid)
    _check_velocity(velocity, grid, component_order)
    u_hat = forward(velocity, grid)
    d = grid.ndim
    total = None
    for c in range(d):
        axis = d - 1 - c if component_order == "xyz" else c
        term = u_hat[..., c, *([slice(None)] * d)] * as_array_like(
            derivative_multiplier(grid, axis), u_hat)
        total = term if total is None else total + term
    return inverse(total, grid)
