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
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import to_numpy
from ..grids import TorusGrid
from ..spectral import check_field, forward

__all__ = [
    "band_limit",
    "energy_spectrum",
    "enstrophy_spectrum",
    "log_spectral_error",
    "power_spectrum",
    "shell_index",
]


def shell_index(grid: TorusGrid) -> np.ndarray:
    """The shell ``n = round(|k| L_max / 2 pi)`` of every half-spectrum entry (int64)."""
    kappa = np.sqrt(grid.k_squared) * max(grid.lengths) / (2 * np.pi)
    return np.floor(kappa + 0.5).astype(np.int64)


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


def power_spectrum(f: Any, grid: TorusGrid) -> np.ndarray:
    """Isotropic power spectrum ``P(n)`` of ``f`` (shape ``(..., *S)``), summing to ``mean(f^2)``.

    Returns
    -------
    P : numpy array, shape ``(..., n_shells)``

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
    check_field(f, grid)
    f_hat = to_numpy(forward(f, grid))
    return _shell_sum(np.abs(f_hat) ** 2, grid)


def enstrophy_spectrum(vorticity: Any, grid: TorusGrid) -> np.ndarray:
    """``Z(n) = P_w(n) / 2``; sums to the mean enstrophy ``mean(w^2) / 2``."""
    return 0.5 * power_spectrum(vorticity, grid)


def energy_spectrum(field: Any, grid: TorusGrid, kind: str = "vorticity") -> np.ndarray:
    """Kinetic-energy spectrum ``E(n)``, summing to the mean energy ``mean(|u|^2) / 2``.

    Parameters
    ----------
    field : array
        ``kind="vorticity"``: a 2D vorticity, shape ``(..., Ny, Nx)``;
        ``kind="velocity"``: velocity components on axis -d-1, shape
        ``(..., d, *S)``.
    kind : {"vorticity", "velocity"}
    """
    if kind == "velocity":
        check_field(field, grid)
        return 0.5 * power_spectrum(field, grid).sum(axis=-2)
    if kind != "vorticity":
        raise ValueError(f"kind={kind!r} is not supported; expected 'vorticity' or 'velocity'")
    if grid.ndim != 2:
        raise ValueError("an energy spectrum from vorticity needs a 2D grid; pass velocity")
    check_field(field, grid)
    w_hat = to_numpy(forward(field, grid))
    k2 = grid.k_squared
    inv = np.zeros_like(k2)
    inv[k2 > 0] = 1.0 / k2[k2 > 0]
    return 0.5 * _shell_sum(np.abs(w_hat) ** 2 * inv, grid)


def band_limit(grid: TorusGrid) -> int:
    """The largest shell ``n <= min(N) / 3`` compared between resolutions."""
    return int(min(grid.shape) // 3)


def log_spectral_error(spectrum: np.ndarray, reference: np.ndarray, n_max: int | None = None,
                       n_min: int = 1) -> np.ndarray:
    """``|log10(P / P_ref)|`` per shell for ``n_min <= n <= n_max``.

    Both spectra are averaged over their leading axes first (ensemble means).
    """
    p = np.asarray(spectrum, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    p = p.reshape(-1, p.shape[-1]).mean(axis=0)
    r = r.reshape(-1, r.shape[-1]).mean(axis=0)
    n = min(p.size, r.size) - 1 if n_max is None else n_max
    if n >= min(p.size, r.size) or n < n_min:
        raise ValueError(
            f"n_max={n_max} must lie in [{n_min}, {min(p.size, r.size) - 1}] for spectra "
            f"of lengths {p.size} and {r.size}"
        )
    sl = slice(n_min, n + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(np.log10(p[sl] / r[sl]))
