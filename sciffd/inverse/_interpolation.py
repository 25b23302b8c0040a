"""Interpolation kernels of the observation operators (see :mod:`.operators`).

:class:`TrigInterpolation` evaluates the Fourier series of grid fields at
fixed points, factor by factor over the axes, and gathers point values
back onto the half spectrum (its adjoint); :class:`Bilinear` holds the
periodic multilinear weights of the ``2^d`` surrounding nodes. Both keep
their arrays converted to each namespace, precision and device they meet.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from ..grids import TorusGrid
from ..spectral import as_array_like

__all__ = ["Bilinear", "TrigInterpolation", "cached_like", "index_like", "scatter_add", "zeros"]


def zeros(like: Any, shape: tuple[int, ...]) -> Any:
    """Zeros of ``shape`` in the namespace, precision and device of ``like``."""
    if backend.backend_name(like) == "torch":
        import torch

        return torch.zeros(shape, dtype=like.dtype, device=like.device)
    xp = backend.array_namespace(like)
    return xp.zeros(shape, dtype=like.dtype)


def cached_like(cache: dict, key: str, array: np.ndarray, like: Any) -> Any:
    """``as_array_like(array, like)``, kept per namespace, precision and device."""
    full = (key, backend.backend_name(like), str(like.dtype), str(getattr(like, "device", "")))
    out = cache.get(full)
    if out is None:
        out = cache[full] = as_array_like(array, like)
    return out


class TrigInterpolation:
    """Evaluation of the Fourier series of grid fields at fixed points."""

    def __init__(self, points: np.ndarray, grid: TorusGrid) -> None:
        self.grid = grid
        self.factors = []
        for i in range(grid.ndim):
            m = grid.mode_indices(i)
            k = 2 * np.pi * m / grid.lengths[i]
            e = np.exp(1j * np.outer(points[:, i], k))
            n = grid.shape[i]
            if n % 2 == 0:
                nyquist = np.flatnonzero(np.abs(m) == n // 2)
                e[:, nyquist] = np.cos(np.outer(points[:, i], k[nyquist]))
            self.factors.append(e)  # (P, K_i)
        self.weight = grid.hermitian_weight[(0,) * (grid.ndim - 1)]  # (K_d,)
        self._arrays: dict = {}

    def evaluate(self, u_hat: Any) -> Any:
        """``Re sum_k w_k u_hat[k] E_k(x_p)``: ``(B, C, *K) -> (B, C, P)`` (real)."""
        last = cached_like(self._arrays, "wlast", (self.factors[-1] * self.weight).T, u_hat)
        t = u_hat @ last  # (B, C, K_1 .. K_{d-1}, P)
        for i in reversed(range(self.grid.ndim - 1)):
            t = (t * cached_like(self._arrays, f"t{i}", self.factors[i].T, u_hat)).sum(-2)
        return t.real

    def gather(self, y: Any) -> Any:
        """``G_k = sum_p y_p E_k(x_p)``: ``(B, C, P) -> (B, C, *K)`` (complex)."""
        if backend.backend_name(y) == "torch":
            import torch

            g = y.to(torch.complex64 if y.dtype == torch.float32 else torch.complex128)
        else:
            g = y.astype(np.complex64 if y.dtype == np.float32 else np.complex128)
        for i in range(self.grid.ndim - 1):
            g = g[..., None, :] * cached_like(self._arrays, f"t{i}", self.factors[i].T, g)
        return g @ cached_like(self._arrays, "last", self.factors[-1], g)


class Bilinear:
    """Periodic multilinear interpolation weights of fixed points on a grid."""

    def __init__(self, points: np.ndarray, grid: TorusGrid) -> None:
        d = grid.ndim
        corners = np.array(list(np.ndindex((2,) * d)))  # (2^d, d)
        lower, frac = [], []
        for i in range(d):
            s = points[:, i] / grid.spacing[i]
            j = np.floor(s)
            lower.append(j.astype(np.int64) % grid.shape[i])
            frac.append(s - j)
        lower = np.stack(lower, axis=1)  # (P, d)
        frac = np.stack(frac, axis=1)
        index = (lower[:, None, :] + corners[None]) % np.asarray(grid.shape)
        self.index = np.ravel_multi_index(tuple(np.moveaxis(index, -1, 0)), grid.shape)
        self.weight = np.prod(np.where(corners[None] == 1, frac[:, None, :],
                                       1 - frac[:, None, :]), axis=-1)  # (P, 2^d)
        self._arrays: dict = {}

    def evaluate(self, u: Any) -> Any:
        """``(B, C, *S) -> (B, C, P)``."""
        flat = u.reshape(tuple(u.shape[:2]) + (-1,))
        values = flat[..., index_like(self.index, u)]  # (B, C, P, 2^d)
        return (values * cached_like(self._arrays, "w", self.weight, u)).sum(-1)

    def spread(self, y: Any, grid: TorusGrid) -> Any:
        """Adjoint: ``(B, C, P) -> (B, C, *S)``."""
        src = y[..., None] * cached_like(self._arrays, "w", self.weight, y)
        out = scatter_add(y, grid.size, self.index.reshape(-1),
                           src.reshape(tuple(y.shape[:2]) + (-1,)))
        return out.reshape(tuple(y.shape[:2]) + grid.shape)


def index_like(index: np.ndarray, like: Any) -> Any:
    if backend.backend_name(like) == "torch":
        import torch

        return torch.from_numpy(index).to(like.device)
    if backend.backend_name(like) == "cupy":
        import cupy

        return cupy.asarray(index)
    return index


def scatter_add(like: Any, size: int, index: np.ndarray, src: Any) -> Any:
    """Zeros of shape ``(B, C, size)`` with ``src[..., j]`` added at ``index[j]``."""
    out = zeros(src, tuple(src.shape[:2]) + (size,))
    if backend.backend_name(like) == "torch":
        return out.index_add(-1, index_like(index, like), src)
    if backend.backend_name(like) == "cupy":
        import cupyx

        cupyx.scatter_add(out, (slice(None), slice(None), index_like(index, like)), src)
        return out
    np.add.at(out, (slice(None), slice(None), index), src)
    return out
