"""Fourier transforms and spectral operators on the torus.

A field ``u`` sampled on a :class:`~sciffd.grids.TorusGrid` has the
coefficients

    u_hat[k] = (1/N^d) sum_j u(x_j) exp(-2 pi i k . x_j / L)

(numpy's ``norm="forward"``), which approximate its Fourier-series
coefficients and do not depend on ``N``; the inverse is the plain sum
``u(x_j) = sum_k u_hat[k] exp(2 pi i k . x_j / L)``. Transforms work on the
last ``d`` axes of arrays laid out ``(..., *S)``, on the real-FFT half
spectrum ``(..., N_1, .., N_d // 2 + 1)``.

Operators are multiplications in that basis: ``d/dx_i`` is ``i k_i``
(``k_i = 2 pi m_i / L_i``), the Laplacian ``-|k|^2``. Odd derivatives drop
the Nyquist mode of even axes, where ``i k`` has no real counterpart.

Resampling between resolutions keeps the modes both grids represent and
pads or truncates the rest; it is exact for fields whose spectrum lies in
the band of the coarser grid (which every field sciffd generates does).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from . import backend
from .grids import TorusGrid

__all__ = [
    "as_array_like",
    "check_field",
    "dealias",
    "dealias_mask",
    "derivative",
    "forward",
    "gradient",
    "inverse",
    "inverse_laplacian",
    "laplacian",
    "multiply",
    "resample",
    "resample_spectrum",
]


def _check_grid(grid: Any, name: str = "grid") -> None:
    if not isinstance(grid, TorusGrid):
        raise TypeError(f"{name} must be a sciffd.grids.TorusGrid, got {type(grid).__name__}")


def check_field(u: Any, grid: TorusGrid, name: str = "u") -> None:
    """Raise ``ValueError`` unless the trailing axes of ``u`` match ``grid.shape``."""
    _check_grid(grid)
    shape = tuple(getattr(u, "shape", ()))
    if shape[-grid.ndim:] != grid.shape or len(shape) < grid.ndim:
        raise ValueError(
            f"{name} has shape {shape}; its last {grid.ndim} axes must be the grid "
            f"shape {grid.shape}"
        )


def as_array_like(a: np.ndarray, like: Any) -> Any:
    """Convert a numpy array (a multiplier, a mask) to the namespace, device and
    precision of ``like``; complex stays complex, real stays real."""
    name = backend.backend_name(like)
    is_complex = np.iscomplexobj(a)
    like_complex = _is_complex(like)
    single = _is_single(like)
    if is_complex:
        dtype = np.complex64 if single else np.complex128
    elif a.dtype == bool:
        dtype = bool
    else:
        dtype = np.float32 if single else np.float64
    a = np.ascontiguousarray(a, dtype=dtype)
    if name == "numpy":
        return a
    if name == "torch":
        import torch

        return torch.from_numpy(a).to(like.device)
    del like_complex
    import cupy

    with cupy.cuda.Device(like.device):
        return cupy.asarray(a)


def _is_complex(x: Any) -> bool:
    dtype = x.dtype
    return "complex" in str(dtype)


def _is_single(x: Any) -> bool:
    dtype = str(x.dtype)
    return dtype.endswith(("float32", "complex64", "float16", "bfloat16"))


def forward(u: Any, grid: TorusGrid) -> Any:
    """Half-spectrum Fourier coefficients ``u_hat`` of ``u`` (shape ``(..., *S)``).

    Returns
    -------
    u_hat : complex array, shape ``(..., *grid.spectral_shape)``

    Examples
    --------
    >>> import numpy as np
    >>> from sciffd.grids import torus
    >>> g = torus(8, ndim=1)
    >>> x = g.coords(0)
    >>> float(np.round(forward(np.cos(2 * np.pi * 3 * x), g)[3].real, 12))
    0.5
    """
    check_field(u, grid)
    return backend.rfftn(u, grid.ndim)


def inverse(u_hat: Any, grid: TorusGrid) -> Any:
    """Grid values of the real field with half-spectrum coefficients ``u_hat``."""
    _check_grid(grid)
    shape = tuple(u_hat.shape)
    if shape[-grid.ndim:] != grid.spectral_shape:
        raise ValueError(
            f"u_hat has shape {shape}; its last {grid.ndim} axes must be the half "
            f"spectrum {grid.spectral_shape} of grid {grid.shape}"
        )
    return backend.irfftn(u_hat, grid.shape)


def multiply(u: Any, grid: TorusGrid, multiplier: np.ndarray) -> Any:
    """Apply a Fourier multiplier given on the half spectrum (numpy array)."""
    u_hat = forward(u, grid)
    return inverse(_times(u_hat, as_array_like(multiplier, u_hat)), grid)


def _times(u_hat: Any, m: Any) -> Any:
    """``u_hat * m``, in place for a numpy ``u_hat`` that a transform just made."""
    if isinstance(u_hat, np.ndarray) and isinstance(m, np.ndarray) \
            and np.broadcast_shapes(u_hat.shape, m.shape) == u_hat.shape:
        np.multiply(u_hat, m, out=u_hat)
        return u_hat
    return u_hat * m


@lru_cache(maxsize=32)
def _cached_multiplier(grid: TorusGrid, axis: int | None, order: int,
                       single: bool) -> np.ndarray:
    """Complex multipliers reused from call to call, in the precision of the fields.

    ``axis`` given: ``(i k_axis)^order`` as a broadcastable array (length 1
    along the other axes); ``axis=None``: the Laplacian ``-|k|^2``, full.
    Shared between calls: never handed to a caller, never written to.
    """
    if axis is None:
        m = -grid.k_squared
    else:
        m = (1j * grid.wavenumbers()[axis]) ** order
        n = grid.shape[axis]
        if order % 2 == 1 and n % 2 == 0:
            m.reshape(-1)[n // 2] = 0.0
    return np.ascontiguousarray(m, dtype=np.complex64 if single else np.complex128)


def _check_order(order: int) -> int:
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 0:
        raise ValueError(f"order={order!r} must be a non-negative integer")
    return int(order)


def _check_axis(axis: int, grid: TorusGrid) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis={axis!r} must be an integer")
    if not -grid.ndim <= axis < grid.ndim:
        raise ValueError(f"axis={axis} is out of range for a {grid.ndim}-dimensional grid")
    return int(axis) % grid.ndim


def derivative_multiplier(grid: TorusGrid, axis: int, order: int = 1) -> np.ndarray:
    """The multiplier ``(i k_axis)^order`` on the half spectrum.

    The Nyquist mode of an even axis is dropped for odd orders.
    """
    axis = _check_axis(axis, grid)
    order = _check_order(order)
    k = grid.wavenumbers()[axis]
    m = np.broadcast_to((1j * k) ** order, grid.spectral_shape).copy()
    n = grid.shape[axis]
    if order % 2 == 1 and n % 2 == 0:
        index = [slice(None)] * grid.ndim
        index[axis] = n // 2
        m[tuple(index)] = 0.0
    if order % 2 == 0:
        m = m.real.copy()
    return m


def derivative(u: Any, grid: TorusGrid, axis: int, order: int = 1) -> Any:
    """Spectral derivative ``d^order u / dx_axis^order``.

    Examples
    --------
    >>> import numpy as np
    >>> from sciffd.grids import torus
    >>> g = torus(16, lengths=2 * np.pi, ndim=1)
    >>> x = g.coords(0)
    >>> bool(np.allclose(derivative(np.sin(3 * x), g, axis=0), 3 * np.cos(3 * x)))
    True
    """
    check_field(u, grid)
    axis, order = _check_axis(axis, grid), _check_order(order)
    u_hat = forward(u, grid)
    m = _cached_multiplier(grid, axis, order, _is_single(u_hat))
    return inverse(_times(u_hat, as_array_like(m, u_hat)), grid)


def gradient(u: Any, grid: TorusGrid) -> list[Any]:
    """``[du/dx_1, .., du/dx_d]`` in axis order (``[du/dy, du/dx]`` in 2D)."""
    check_field(u, grid)
    u_hat = forward(u, grid)
    single = _is_single(u_hat)
    return [
        inverse(u_hat * as_array_like(_cached_multiplier(grid, i, 1, single), u_hat), grid)
        for i in range(grid.ndim)
    ]


def laplacian(u: Any, grid: TorusGrid) -> Any:
    """Spectral Laplacian ``sum_i d^2 u / dx_i^2``."""
    check_field(u, grid)
    u_hat = forward(u, grid)
    m = _cached_multiplier(grid, None, 2, _is_single(u_hat))
    return inverse(_times(u_hat, as_array_like(m, u_hat)), grid)


def inverse_laplacian(u: Any, grid: TorusGrid) -> Any:
    """The zero-mean solution ``v`` of ``Laplacian v = u - mean(u)``."""
    check_field(u, grid)
    k2 = grid.k_squared
    m = np.zeros_like(k2)
    nonzero = k2 > 0
    m[nonzero] = -1.0 / k2[nonzero]
    return multiply(u, grid, m)


def dealias_mask(grid: TorusGrid) -> np.ndarray:
    """Orszag's 2/3 rule: True where ``|m_i| < N_i / 3`` on every axis."""
    _check_grid(grid)
    mask = np.ones(grid.spectral_shape, dtype=bool)
    for i, n in enumerate(grid.shape):
        m = np.abs(grid.mode_indices(i))
        shape = [1] * grid.ndim
        shape[i] = m.size
        mask &= (3 * m < n).reshape(shape)
    return mask


def dealias(u_hat: Any, grid: TorusGrid) -> Any:
    """Zero the coefficients outside the 2/3 band (see :func:`dealias_mask`)."""
    return u_hat * as_array_like(dealias_mask(grid), u_hat)


def _band_slices(n_from: int, n_to: int, last: bool) -> tuple[list, list]:
    """Index pairs copying the modes shared by two axis lengths (Nyquist excluded)."""
    if last:
        keep = min((n_from - 1) // 2, (n_to - 1) // 2) + 1
        return [slice(0, keep)], [slice(0, keep)]
    kmax = min((n_from - 1) // 2, (n_to - 1) // 2)
    src = [slice(0, kmax + 1), slice(n_from - kmax, n_from)] if kmax > 0 else [slice(0, 1)]
    dst = [slice(0, kmax + 1), slice(n_to - kmax, n_to)] if kmax > 0 else [slice(0, 1)]
    return src, dst


def resample_spectrum(u_hat: Any, grid: TorusGrid, target: TorusGrid) -> Any:
    """Move half-spectrum coefficients from ``grid`` to ``target`` (same domain).

    The modes with ``|m_i| < N_i/2`` on both grids are kept; all others
    (including the Nyquist modes of either grid) are zero.
    """
    _check_grid(grid)
    _check_grid(target, "target")
    if target.lengths != grid.lengths or target.ndim != grid.ndim:
        raise ValueError(
            f"cannot resample from {grid} to {target}: the domains differ; "
            "resampling changes the resolution, not the domain"
        )
    xp = backend.array_namespace(u_hat)
    lead = tuple(u_hat.shape[: -grid.ndim])
    out = xp.zeros(lead + target.spectral_shape, dtype=u_hat.dtype)
    if backend.backend_name(u_hat) == "torch":
        out = out.to(u_hat.device)
    pieces = [
        _band_slices(nf, nt, i == grid.ndim - 1)
        for i, (nf, nt) in enumerate(zip(grid.shape, target.shape, strict=True))
    ]
    _copy_blocks(u_hat, out, pieces, len(lead))
    return out


def _copy_blocks(src: Any, dst: Any, pieces: list, nlead: int, axis: int = 0,
                 s_index: tuple = (), d_index: tuple = ()) -> None:
    if axis == len(pieces):
        lead = (slice(None),) * nlead
        dst[lead + d_index] = src[lead + s_index]
        return
    for s, d in zip(*pieces[axis], strict=True):
        _copy_blocks(src, dst, pieces, nlead, axis + 1, s_index + (s,), d_index + (d,))


def resample(u: Any, grid: TorusGrid, shape: int | Sequence[int] | TorusGrid) -> Any:
    """Fourier resampling of ``u`` from ``grid`` to another resolution of the same domain.

    Exact (to rounding) for band-limited fields: refining then restricting
    returns the input, and restricting a field whose modes all lie in the
    coarse band returns its values on the coarse points.

    Examples
    --------
    >>> import numpy as np
    >>> from sciffd.grids import torus
    >>> g = torus(8, ndim=1)
    >>> u = np.sin(2 * np.pi * g.coords(0))
    >>> fine = resample(u, g, 32)
    >>> bool(np.allclose(fine, np.sin(2 * np.pi * torus(32, ndim=1).coords(0))))
    True
    """
    check_field(u, grid)
    target = shape if isinstance(shape, TorusGrid) else grid.with_shape(shape)
    if target.shape == grid.shape:
        return u
    return inverse(resample_spectrum(forward(u, grid), grid, target), target)
