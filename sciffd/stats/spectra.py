"""Isotropic spectra of fields on the torus.

For a field ``f`` with coefficients ``f_hat[m]`` (``norm="forward"``),
Parseval reads ``mean(f^2) = sum_m |f_hat[m]|^2``. The isotropic spectrum
groups that sum in shells of the wavenumber magnitude,

    P(n) = sum_{m : n - 1/2 <= |m| < n + 1/2} |f_hat[m]|^2,     n = 0, 1, 2, ..

with ``|m|`` measured in units of the fundamental ``2 pi / L`` (for
unequal lengths, ``|k| L_max / 2 pi``), so ``sum_n P(n) = mean(f^2)``
exactly: every mode of the grid, corners included, falls in one shell.

The kinetic-energy spectrum of a velocity ``u`` is ``E(n) = P_u(n) / 2``
summed over components, so ``sum_n E(n) = mean(|u|^2) / 2``; from a 2D
vorticity ``w`` it is ``E(n) = sum |w_hat[m]|^2 / (2 |k|^2)`` (``k`` angular)
and the enstrophy spectrum is ``Z(n) = P_w(n) / 2``.

Resolutions are compared on the shells both grids resolve without
aliasing, ``n <= N / 3`` (:func:`band_limit`), by the log-spectral error
``|log10(P / P_ref)|`` per shell or per band of shells
(:func:`log_spectral_error`).

Every function takes arrays with a :class:`~sciffd.grids.TorusGrid`, or an
``xarray.DataArray`` whose coordinates give the grid; the latter returns a
DataArray with a ``wavenumber`` dim (lazy on Dask-backed input).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backend import to_numpy
from ..grids import TorusGrid
from ..spectral import check_field, forward
from . import _labels

__all__ = [
    "band_limit",
    "energy_spectrum",
    "enstrophy_spectrum",
    "log_spectral_error",
    "power_spectrum",
    "shell_index",
]

_KINDS = ("vorticity", "velocity")
_SHELL_ATTRS = {"units": "1", "long_name": "isotropic wavenumber shell n = |k| L_max / (2 pi)"}


def shell_index(grid: TorusGrid) -> np.ndarray:
    """The shell ``n = round(|k| L_max / 2 pi)`` of every half-spectrum entry (int64).

    A mode exactly between two shells (``|k| L_max / 2 pi = n + 1/2``) goes
    to the upper one, ``n + 1``, whatever the rounding of ``|k|``.
    """
    l_max = max(grid.lengths)
    kappa2 = sum((m * (l_max / L)) ** 2 for m, L in zip(_mode_grids(grid), grid.lengths,
                                                          strict=True))
    kappa = np.sqrt(kappa2)
    # a relative 1e-12 nudge puts the exact half-integers on the documented side
    return np.floor(kappa * (1 + 1e-12) + 0.5).astype(np.int64)


def _mode_grids(grid: TorusGrid) -> list[np.ndarray]:
    """Integer wavenumbers per axis, broadcastable over the half spectrum (float64)."""
    out = []
    for i in range(grid.ndim):
        shape = [1] * grid.ndim
        shape[i] = -1
        out.append(grid.mode_indices(i).astype(np.float64).reshape(shape))
    return out


def n_shells(grid: TorusGrid) -> int:
    """Number of shells ``n = 0 .. n_max`` a spectrum on ``grid`` has."""
    return int(shell_index(grid).max()) + 1


def _shell_sum(power: np.ndarray, grid: TorusGrid) -> np.ndarray:
    """Sum ``power`` (..., *K) over shells, with Hermitian weights; returns (..., n_shells)."""
    shells = shell_index(grid).reshape(-1)
    weight = grid.hermitian_weight.reshape(-1)
    lead = power.shape[: power.ndim - grid.ndim]
    flat = power.reshape((-1, shells.size)) * weight
    n = int(shells.max()) + 1
    out = np.zeros((flat.shape[0], n))
    for i in range(flat.shape[0]):
        out[i] = np.bincount(shells, weights=flat[i], minlength=n)
    return out.reshape(lead + (n,))


def _spectrum_dataarray(values: Any, source: Any, grid: TorusGrid, dims: tuple[str, ...],
                        name: str, units: str, long_name: str) -> Any:
    """Label a spectrum computed by ``apply``: wavenumber coordinates and attributes."""
    n = values.sizes["wavenumber"]
    shells = np.arange(n)
    coord_units = _labels.coordinate_units(source, dims)
    values = values.assign_coords(
        wavenumber=("wavenumber", shells, _SHELL_ATTRS),
        angular_wavenumber=("wavenumber", 2 * np.pi * shells / max(grid.lengths), {
            "units": _labels.power_units(coord_units, -1),
            "long_name": "angular wavenumber of the shell, 2 pi n / L_max",
        }),
    )
    return _labels.labelled(values, source, name, units, long_name)


def power_spectrum(f: Any, grid: TorusGrid | None = None, *,
                   dims: Sequence[str] | None = None) -> Any:
    """Isotropic power spectrum ``P(n)`` of ``f`` (shape ``(..., *S)``), summing to ``mean(f^2)``.

    Parameters
    ----------
    f : array, shape ``(..., *S)``, or xarray.DataArray
        Fields on ``grid`` (numpy, torch or cupy), or a DataArray with
        spatial dims ``dims`` (default those of ``z``, ``y``, ``x`` present)
        and coordinates giving the grid.
    grid : TorusGrid
        Required for arrays; read from the coordinates of a DataArray.
    dims : sequence of str, optional
        Spatial dims of a DataArray, in array order.

    Returns
    -------
    P : numpy array, shape ``(..., n_shells)``, or xarray.DataArray
        Shells ``n = 0 .. n_max``. A DataArray keeps the leading dims and
        the provenance attributes, replaces the spatial dims by
        ``wavenumber`` (coordinates ``wavenumber`` = n and
        ``angular_wavenumber`` = 2 pi n / L_max) and has the units of
        ``f`` squared.

    Examples
    --------
    >>> import numpy as np
    >>> from sciffd.grids import torus
    >>> g = torus(16)
    >>> y, x = g.mesh()
    >>> P = power_spectrum(np.cos(2 * np.pi * 3 * x), g)
    >>> int(np.argmax(P)), round(float(P.sum()), 12)
    (3, 0.5)
    """
    if _labels.is_xarray(f):
        grid, dims = _labels.grid_and_dims(f, grid, dims, "f")
        out = _labels.apply(lambda a: power_spectrum(a, grid), f, core_dims=[dims],
                            output_dims=["wavenumber"],
                            output_sizes={"wavenumber": n_shells(grid)})
        return _spectrum_dataarray(
            out, f, grid, dims, "power_spectrum",
            _labels.power_units(_labels.variable_units(f), 2),
            f"isotropic power spectrum of {_labels.variable_long_name(f)}")
    _labels.check_dataarray_input(f, "f")
    grid = _labels.require_grid(grid)
    check_field(f, grid, "f")
    f_hat = to_numpy(forward(f, grid))
    return _shell_sum(np.abs(f_hat) ** 2, grid)


def enstrophy_spectrum(vorticity: Any, grid: TorusGrid | None = None, *,
                       dims: Sequence[str] | None = None) -> Any:
    """``Z(n) = P_w(n) / 2``; sums to the mean enstrophy ``mean(w^2) / 2``.

    Parameters
    ----------
    vorticity : array, shape ``(..., *S)``, or xarray.DataArray
        Vorticity ``w`` on ``grid`` (or labelled, as in :func:`power_spectrum`).
    grid : TorusGrid
        Required for arrays.
    dims : sequence of str, optional
        Spatial dims of a DataArray.

    Returns
    -------
    Z : numpy array, shape ``(..., n_shells)``, or xarray.DataArray
        With a ``wavenumber`` dim for DataArray input.
    """
    if _labels.is_xarray(vorticity):
        out = 0.5 * power_spectrum(vorticity, grid, dims=dims)
        return _labels.labelled(
            out, vorticity, "enstrophy_spectrum",
            _labels.power_units(_labels.variable_units(vorticity), 2),
            f"isotropic enstrophy spectrum of {_labels.variable_long_name(vorticity)}")
    return 0.5 * power_spectrum(vorticity, grid)


def _check_kind(kind: Any) -> str:
    if kind not in _KINDS:
        raise ValueError(f"kind={kind!r} is not supported; expected 'vorticity' or 'velocity'")
    return kind


def energy_spectrum(field: Any, grid: TorusGrid | None = None, kind: str = "vorticity", *,
                    dims: Sequence[str] | None = None,
                    component_dim: str = "channel") -> Any:
    """Kinetic-energy spectrum ``E(n)``, summing to the mean energy ``mean(|u|^2) / 2``.

    Parameters
    ----------
    field : array or xarray.DataArray
        ``kind="vorticity"``: a 2D vorticity, shape ``(..., Ny, Nx)``;
        ``kind="velocity"``: velocity components on axis -d-1, shape
        ``(..., d, *S)`` (for a DataArray, on the dim ``component_dim``).
    grid : TorusGrid
        Required for arrays; read from the coordinates of a DataArray.
    kind : {"vorticity", "velocity"}
    dims : sequence of str, optional
        Spatial dims of a DataArray.
    component_dim : str
        The dim of the velocity components in a DataArray (``kind="velocity"``).

    Returns
    -------
    E : numpy array, shape ``(..., n_shells)``, or xarray.DataArray
        From vorticity, ``E(n) = sum_shell |w_hat|^2 / (2 |k|^2)`` (the mean
        mode carries no energy); from velocity, ``sum_i P_{u_i}(n) / 2``.

    Examples
    --------
    >>> import numpy as np
    >>> from sciffd.grids import torus
    >>> g = torus(16)
    >>> y, x = g.mesh()
    >>> w = np.cos(2 * np.pi * x)  # velocity amplitude 1 / (2 pi)
    >>> bool(np.isclose(energy_spectrum(w, g).sum(), 0.25 / (2 * np.pi) ** 2))
    True
    """
    kind = _check_kind(kind)
    if _labels.is_xarray(field):
        return _energy_spectrum_dataarray(field, grid, kind, dims, component_dim)
    _labels.check_dataarray_input(field, "field")
    grid = _labels.require_grid(grid)
    if kind == "velocity":
        check_field(field, grid, "field")
        if len(field.shape) < grid.ndim + 1:
            raise ValueError(
                f"field has shape {tuple(field.shape)}; a velocity needs its components "
                f"on axis -{grid.ndim + 1}, shape (..., {grid.ndim}, *{grid.shape})"
            )
        return 0.5 * power_spectrum(field, grid).sum(axis=-2)
    if grid.ndim != 2:
        raise ValueError(
            f"an energy spectrum from vorticity needs a 2D grid, got {grid}; pass the "
            "velocity with kind='velocity'"
        )
    check_field(field, grid, "field")
    w_hat = to_numpy(forward(field, grid))
    k2 = grid.k_squared
    inv = np.zeros_like(k2)
    inv[k2 > 0] = 1.0 / k2[k2 > 0]
    return 0.5 * _shell_sum(np.abs(w_hat) ** 2 * inv, grid)


def _energy_spectrum_dataarray(field: Any, grid: Any, kind: str, dims: Any,
                               component_dim: str) -> Any:
    grid, dims = _labels.grid_and_dims(field, grid, dims, "field")
    name = _labels.variable_long_name(field)
    field_units = _labels.variable_units(field)
    if kind == "velocity":
        _labels.check_dim_name(component_dim, "component_dim")
        _labels.has_dim(field, component_dim, "field", "component_dim")
        core = [component_dim, *dims]
        units = _labels.power_units(field_units, 2)
    else:
        core = list(dims)
        # E = |w_hat|^2 / |k|^2: units of w squared times length squared
        units = _labels.product_units(
            _labels.power_units(field_units, 2),
            _labels.power_units(_labels.coordinate_units(field, dims), 2))
    out = _labels.apply(lambda a: energy_spectrum(a, grid, kind), field, core_dims=[core],
                        output_dims=["wavenumber"],
                        output_sizes={"wavenumber": n_shells(grid)})
    return _spectrum_dataarray(out, field, grid, dims, "energy_spectrum", units,
                               f"isotropic kinetic energy spectrum from {name}")


def band_limit(grid: Any) -> int:
    """The largest shell ``n <= min(N) / 3`` compared between resolutions.

    Parameters
    ----------
    grid : TorusGrid or xarray.DataArray
        A grid, or a field whose coordinates give it.

    Examples
    --------
    >>> from sciffd.grids import torus
    >>> band_limit(torus(64))
    21
    """
    if _labels.is_xarray(grid):
        grid, _ = _labels.grid_and_dims(grid, None, None, "grid")
    grid = _labels.require_grid(grid)
    return int(min(grid.shape) // 3)


def _mean_spectrum(spectrum: Any, name: str) -> np.ndarray:
    """A spectrum averaged over every leading axis (or every dim but ``wavenumber``)."""
    if _labels.is_xarray(spectrum):
        _labels.has_dim(spectrum, "wavenumber", name, "dim")
        other = [d for d in spectrum.dims if d != "wavenumber"]
        p = np.asarray(spectrum.mean(other).values, dtype=np.float64)
    else:
        p = np.asarray(to_numpy(spectrum), dtype=np.float64)
        if p.ndim == 0:
            raise ValueError(f"{name} must have a shell axis; got a scalar")
        p = p.reshape(-1, p.shape[-1]).mean(axis=0)
    return p


def _check_bands(bands: Any, n_min: int, n_max: int) -> np.ndarray:
    edges = np.asarray(bands)
    if edges.ndim != 1 or edges.size < 2 or not np.issubdtype(edges.dtype, np.integer):
        raise ValueError(f"bands={bands!r} must be a sequence of at least 2 integer shell edges")
    if np.any(np.diff(edges) <= 0) or edges[0] < n_min or edges[-1] > n_max + 1:
        raise ValueError(
            f"bands={bands!r} must increase strictly within [{n_min}, {n_max + 1}] "
            f"(band j covers edges[j] <= n < edges[j + 1])"
        )
    return edges.astype(np.int64)


def log_spectral_error(spectrum: Any, reference: Any, n_max: int | None = None,
                       n_min: int = 1, *, bands: Sequence[int] | None = None) -> Any:
    """``|log10(P / P_ref)|`` per shell for ``n_min <= n <= n_max``, or per band.

    Both spectra are averaged over their leading axes first (ensemble
    means; for DataArrays over every dim but ``wavenumber``).

    Parameters
    ----------
    spectrum, reference : array ``(..., n_shells)`` or xarray.DataArray
        Spectra, for example from :func:`power_spectrum`, possibly of
        different lengths (resolutions).
    n_max : int, optional
        Last shell compared; default the last shell both have. Use
        :func:`band_limit` of the coarser grid to compare resolutions.
    n_min : int
        First shell compared (default 1, skipping the mean).
    bands : sequence of int, optional
        Shell edges ``e_0 < e_1 < ..`` within ``[n_min, n_max + 1]``; band
        ``j`` is ``e_j <= n < e_{j+1}`` and its error is
        ``|log10(sum_band P / sum_band P_ref)|``.

    Returns
    -------
    error : numpy array, shape ``(n_max - n_min + 1,)`` or ``(len(bands) - 1,)``
        A DataArray over ``wavenumber`` (or ``band``) when ``spectrum`` is one.

    Examples
    --------
    >>> import numpy as np
    >>> p = np.array([1.0, 1.0, 0.1, 0.01])
    >>> log_spectral_error(10 * p, p, bands=[1, 2, 4])
    array([1., 1.])
    """
    p = _mean_spectrum(spectrum, "spectrum")
    r = _mean_spectrum(reference, "reference")
    n = min(p.size, r.size) - 1 if n_max is None else n_max
    if n >= min(p.size, r.size) or n < n_min:
        raise ValueError(
            f"n_max={n_max} must lie in [{n_min}, {min(p.size, r.size) - 1}] for spectra "
            f"of lengths {p.size} and {r.size}"
        )
    if bands is None:
        sl = slice(n_min, n + 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            error = np.abs(np.log10(p[sl] / r[sl]))
        coords = {"wavenumber": ("wavenumber", np.arange(n_min, n + 1), _SHELL_ATTRS)}
        dim = "wavenumber"
    else:
        edges = _check_bands(bands, n_min, n)
        pb = np.add.reduceat(p[: edges[-1]], edges[:-1])
        rb = np.add.reduceat(r[: edges[-1]], edges[:-1])
        with np.errstate(divide="ignore", invalid="ignore"):
            error = np.abs(np.log10(pb / rb))
        coords = {
            "band_start": ("band", edges[:-1], {"units": "1", "long_name": "first shell"}),
            "band_stop": ("band", edges[1:], {"units": "1",
                                              "long_name": "shell after the last"}),
        }
        dim = "band"
    if not _labels.is_xarray(spectrum):
        return error
    out = _labels.xr().DataArray(error, dims=(dim,), coords=coords)
    return _labels.labelled(out, spectrum, "log_spectral_error", "1",
                            "absolute log10 ratio of ensemble-mean spectra")
