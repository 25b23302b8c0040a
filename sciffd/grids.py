"""Periodic grids on the torus ``T^d = [0, L_1) x ... x [0, L_d)``, d = 1, 2, 3.

A grid of shape ``(N_1, ..., N_d)`` has the points ``x_j = j L / N``,
``j = 0 .. N-1`` on each axis. Axes are ordered as arrays are laid out:
``(x,)`` in 1D, ``(y, x)`` in 2D and ``(z, y, x)`` in 3D, so ``shape[-1]``
and ``lengths[-1]`` belong to ``x``.

The inner product is the domain mean, ``<u, v> = (1/|D|) int_D u v dx``,
discretised by the grid mean: every quadrature weight is ``1 / prod(N)``.

Wavenumbers follow the real-FFT layout: all axes but the last carry the
full set of integer indices ``k = 0, 1, .., -1`` (``numpy.fft.fftfreq``
order), the last carries ``k = 0 .. N//2`` (``rfftfreq`` order). The
angular wavenumber of index ``k`` on an axis of length ``L`` is
``2 pi k / L``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["AXIS_NAMES", "TorusGrid", "torus"]

#: dimension names of the spatial axes for each number of dimensions
AXIS_NAMES = {1: ("x",), 2: ("y", "x"), 3: ("z", "y", "x")}


def _as_tuple(value, ndim: int, name: str, kind: type) -> tuple:
    if isinstance(value, (int, float, np.integer, np.floating)):
        values = (value,) * ndim
    else:
        try:
            values = tuple(value)
        except TypeError:
            raise TypeError(
                f"{name}={value!r} must be a number or a sequence of {ndim} numbers"
            ) from None
    if len(values) != ndim:
        raise ValueError(f"{name}={value!r} must have {ndim} entries, one per axis")
    return values


@dataclass(frozen=True, eq=True)
class TorusGrid:
    """A uniform periodic grid on the torus.

    Parameters
    ----------
    shape : tuple of int
        Points per axis ``(N_1, .., N_d)``, each at least 2; odd, even and
        unequal values are all allowed.
    lengths : tuple of float
        Period per axis ``(L_1, .., L_d)``; default 1 on every axis.

    Examples
    --------
    >>> g = TorusGrid((32, 64), (1.0, 2.0))
    >>> g.ndim, g.spacing
    (2, (0.03125, 0.03125))
    >>> g.with_shape((64, 128)).shape
    (64, 128)
    """

    shape: tuple[int, ...]
    lengths: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        shape = self.shape
        if isinstance(shape, (int, np.integer)):
            shape = (int(shape),)
        try:
            shape = tuple(shape)
        except TypeError:
            raise TypeError(f"shape={self.shape!r} must be a tuple of integers") from None
        if not 1 <= len(shape) <= 3:
            raise ValueError(f"shape={self.shape!r} must have 1, 2 or 3 axes")
        for n in shape:
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
                raise TypeError(f"shape={self.shape!r} must contain integers, got {n!r}")
            if n < 2:
                raise ValueError(
                    f"shape={self.shape!r}: every axis needs at least 2 points, got {n}"
                )
        shape = tuple(int(n) for n in shape)
        lengths = (1.0,) * len(shape) if self.lengths is None else self.lengths
        lengths = _as_tuple(lengths, len(shape), "lengths", float)
        for L in lengths:
            if isinstance(L, bool) or not isinstance(L, (int, float, np.integer, np.floating)):
                raise TypeError(f"lengths={self.lengths!r} must contain numbers, got {L!r}")
            if not (math.isfinite(L) and L > 0):
                raise ValueError(f"lengths={self.lengths!r} must be finite and positive")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "lengths", tuple(float(L) for L in lengths))

    # -- geometry ---------------------------------------------------------
    @property
    def ndim(self) -> int:
        """Number of spatial dimensions ``d``."""
        return len(self.shape)

    @property
    def dims(self) -> tuple[str, ...]:
        """Names of the spatial axes, e.g. ``("y", "x")``."""
        return AXIS_NAMES[self.ndim]

    @property
    def size(self) -> int:
        """Number of grid points ``prod(N)``."""
        return math.prod(self.shape)

    @property
    def spacing(self) -> tuple[float, ...]:
        """Grid spacing ``L / N`` per axis."""
        return tuple(L / n for L, n in zip(self.lengths, self.shape, strict=True))

    @property
    def volume(self) -> float:
        """Domain volume ``|D| = prod(L)``."""
        return math.prod(self.lengths)

    @property
    def weight(self) -> float:
        """Quadrature weight of every point for the domain mean, ``1 / prod(N)``."""
        return 1.0 / self.size

    def coords(self, axis: int) -> np.ndarray:
        """Point coordinates ``j L / N`` along ``axis`` (float64)."""
        n, L = self.shape[axis], self.lengths[axis]
        return np.arange(n, dtype=np.float64) * (L / n)

    def mesh(self) -> tuple[np.ndarray, ...]:
        """Coordinate arrays of shape ``self.shape``, one per axis (``indexing="ij"``)."""
        return tuple(np.meshgrid(*[self.coords(i) for i in range(self.ndim)], indexing="ij"))

    def with_shape(self, shape: int | Sequence[int]) -> TorusGrid:
        """The same domain with another resolution."""
        if isinstance(shape, (int, np.integer)):
            shape = (int(shape),) * self.ndim
        return TorusGrid(tuple(shape), self.lengths)

    def refine(self, factor: int) -> TorusGrid:
        """The same domain with ``factor`` times as many points per axis."""
        if not isinstance(factor, (int, np.integer)) or factor < 1:
            raise ValueError(f"factor={factor!r} must be a positive integer")
        return self.with_shape(tuple(n * factor for n in self.shape))

    # -- spectral layout --------------------------------------------------
    @property
    def spectral_shape(self) -> tuple[int, ...]:
        """Shape of the real-FFT half spectrum, ``(N_1, .., N_d // 2 + 1)``."""
        return self.shape[:-1] + (self.shape[-1] // 2 + 1,)

    def mode_indices(self, axis: int) -> np.ndarray:
        """Integer wavenumbers ``k`` along ``axis`` in half-spectrum order (int64)."""
        n = self.shape[axis]
        if axis in (-1, self.ndim - 1):
            return np.arange(n // 2 + 1, dtype=np.int64)
        return np.fft.fftfreq(n, 1.0 / n).round().astype(np.int64)

    def wavenumbers(self) -> tuple[np.ndarray, ...]:
        """Angular wavenumbers ``2 pi k / L``, one broadcastable array per axis (float64)."""
        out = []
        for i in range(self.ndim):
            k = 2 * np.pi * self.mode_indices(i) / self.lengths[i]
            shape = [1] * self.ndim
            shape[i] = k.size
            out.append(k.reshape(shape))
        return tuple(out)

    @cached_property
    def k_squared(self) -> np.ndarray:
        """``|k|^2 = sum_i (2 pi k_i / L_i)^2`` on the half spectrum (float64)."""
        return sum(k**2 for k in self.wavenumbers())

    @cached_property
    def nyquist_mask(self) -> np.ndarray:
        """Boolean half-spectrum mask, False on the Nyquist modes of even axes."""
        mask = np.ones(self.spectral_shape, dtype=bool)
        for i, n in enumerate(self.shape):
            if n % 2 == 0:
                index = [slice(None)] * self.ndim
                index[i] = n // 2
                mask[tuple(index)] = False
        return mask

    @cached_property
    def hermitian_weight(self) -> np.ndarray:
        """How many full-spectrum modes each half-spectrum entry stands for (1 or 2).

        Sums over the full spectrum, such as Parseval's
        ``mean(u^2) = sum_k |u_hat[k]|^2``, become sums over the half
        spectrum weighted by this array.
        """
        n = self.shape[-1]
        w = np.full(self.spectral_shape[-1], 2.0)
        w[0] = 1.0
        if n % 2 == 0:
            w[-1] = 1.0
        return np.broadcast_to(w, self.spectral_shape).copy()

    def __repr__(self) -> str:
        return f"TorusGrid(shape={self.shape}, lengths={self.lengths})"


def torus(resolution: int | Sequence[int], lengths: float | Sequence[float] = 1.0,
          ndim: int | None = None) -> TorusGrid:
    """Build a :class:`TorusGrid`.

    Parameters
    ----------
    resolution : int or sequence of int
        Points per axis; an integer means the same on every axis.
    lengths : float or sequence of float
        Period per axis; default 1.
    ndim : int, optional
        Number of dimensions when ``resolution`` is an integer (default 2).

    Examples
    --------
    >>> torus(64).shape
    (64, 64)
    >>> torus(16, ndim=1).shape
    (16,)
    """
    if isinstance(resolution, bool):
        raise TypeError(f"resolution={resolution!r} must be an integer or a tuple of integers")
    if isinstance(resolution, (int, np.integer)):
        d = 2 if ndim is None else ndim
        if d not in (1, 2, 3):
            raise ValueError(f"ndim={ndim!r} must be 1, 2 or 3")
        if resolution < 2:
            raise ValueError(f"resolution={resolution!r} must be at least 2 points per axis")
        shape = (int(resolution),) * d
    else:
        shape = resolution
    # TorusGrid validates both and broadcasts a scalar length (numpy ones too)
    return TorusGrid(shape, lengths)
