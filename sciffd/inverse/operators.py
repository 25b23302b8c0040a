"""Linear observation operators on fields of the torus.

An observation of a field ``u`` is ``y = H u + eta``: ``H`` a linear map
from fields to ``n_obs`` numbers, ``eta`` Gaussian noise
(:class:`~sciffd.inverse.ObservationNoise`). ``H`` is defined on the
function, so the same observations condition a field at any resolution:

- :class:`PointObservation`: ``(H u)_p = u(x_p)`` at physical points;
- :class:`MaskObservation`: the values at the grid nodes of a region;
- :class:`CoarseGrain`: block means, or the field truncated to a coarse
  grid's band and sampled there;
- :class:`Blur`: a convolution (a Fourier multiplier ``b(|k|^2)``);
- :class:`LinearOperator`: any linear torch function, adjoint by autograd.

Every operator maps fields ``(B, C, *S)`` (numpy or torch, autograd on
torch) to observations ``(B, n_obs)``. Operators that act at each location
observe every channel and order the observations channel first:
observation ``c * P + p`` is channel ``c`` at location ``p``, so
``n_obs = C P``. :meth:`ObservationOperator.adjoint` is the Euclidean
adjoint on grid values, ``<H u, y> = sum_j u_j (H^T y)_j``, the
transpose of the matrix of ``H`` (the gradient of ``<H u, y>`` that
autograd returns); it is closed form for every operator here.

Trigonometric interpolation (``method="spectral"``) evaluates the Fourier
series of the grid field,

    u(x) = Re sum_k w_k u_hat[k] E_k(x),   E_k(x) = prod_i e_i(k_i, x_i),

over the half spectrum with the Hermitian weights ``w_k``
(:attr:`~sciffd.grids.TorusGrid.hermitian_weight`), ``e_i = exp(i k_i x_i)``
except on the Nyquist index of an even axis, where ``e_i = cos(k_i x_i)``
(the real interpolant that splits the Nyquist mode evenly between ``+k``
and ``-k``). It reproduces the grid values at the nodes and is exact for
band-limited fields.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import backend
from ..grids import TorusGrid
from ..spectral import as_array_like, forward, inverse, resample, resample_spectrum
from ._interpolation import Bilinear, TrigInterpolation, index_like, scatter_add

__all__ = [
    "METHODS_COARSE",
    "METHODS_POINT",
    "Blur",
    "CoarseGrain",
    "LinearOperator",
    "MaskObservation",
    "ObservationOperator",
    "PointObservation",
    "operator_from_config",
]

#: interpolation methods of :class:`PointObservation`
METHODS_POINT = ("spectral", "bilinear")
#: methods of :class:`CoarseGrain`
METHODS_COARSE = ("block_mean", "spectral")


# -- checks --------------------------------------------------------------------
def _check_grid(grid: Any, name: str = "grid") -> TorusGrid:
    if not isinstance(grid, TorusGrid):
        raise TypeError(f"{name} must be a sciffd.grids.TorusGrid, got {type(grid).__name__}")
    return grid


def check_fields(u: Any, grid: TorusGrid, name: str = "u") -> None:
    """Raise ``ValueError`` unless ``u`` has shape ``(B, C, *grid.shape)``."""
    _check_grid(grid)
    shape = tuple(getattr(u, "shape", ()))
    if len(shape) != grid.ndim + 2 or shape[2:] != grid.shape:
        raise ValueError(
            f"{name} has shape {shape}; expected fields (B, C, *S) with S the grid "
            f"shape {grid.shape}"
        )


def _check_observations(y: Any, n_obs: int, name: str = "y") -> None:
    shape = tuple(getattr(y, "shape", ()))
    if len(shape) != 2 or shape[1] != n_obs:
        raise ValueError(f"{name} has shape {shape}; expected (B, n_obs) with n_obs={n_obs}")


def _check_channels(channels: Any) -> int:
    if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) \
            or channels < 1:
        raise ValueError(f"channels={channels!r} must be a positive integer")
    return int(channels)


def _channels_of(y: Any, per_channel: int, n_obs_name: str = "y") -> int:
    n = int(y.shape[-1])
    if per_channel == 0 or n % per_channel:
        raise ValueError(
            f"{n_obs_name} has {n} observations, not a multiple of the {per_channel} "
            "locations of the operator (one block per channel)"
        )
    return n // per_channel


# -- base ----------------------------------------------------------------------
class ObservationOperator:
    """Base class of the linear observation operators ``H``.

    Subclasses implement :meth:`apply`, :meth:`adjoint`, :meth:`n_obs`
    and :meth:`to_config`; :meth:`fourier_diagonal` and :meth:`nodes`
    describe structure that exact posteriors and replacement use.
    """

    def apply(self, u: Any, grid: TorusGrid) -> Any:  # pragma: no cover - abstract
        """``H u`` for fields ``u`` of shape ``(B, C, *S)``; returns ``(B, n_obs)``."""
        raise NotImplementedError

    def adjoint(self, y: Any, grid: TorusGrid, channels: int = 1) -> Any:  # pragma: no cover
        """``H^T y`` for ``y`` of shape ``(B, n_obs)``; returns ``(B, C, *S)``."""
        raise NotImplementedError

    def n_obs(self, grid: TorusGrid | None = None, channels: int = 1) -> int:  # pragma: no cover
        """Number of observations of a field with ``channels`` channels on ``grid``."""
        raise NotImplementedError

    def to_config(self) -> dict:  # pragma: no cover - abstract
        """A JSON-ready description (``operator_from_config`` inverts it)."""
        raise NotImplementedError

    def fourier_diagonal(self, grid: TorusGrid) -> tuple[TorusGrid, np.ndarray] | None:
        """``(obs_grid, b)`` when ``H`` is diagonal in Fourier on ``grid``, else None.

        Then ``H u`` is the field with coefficients ``b_k u_hat[k]`` (``b``
        on the half spectrum of ``grid``, zero outside the band shared
        with ``obs_grid``) sampled on the nodes of ``obs_grid``.
        """
        return None

    def nodes(self, grid: TorusGrid) -> np.ndarray | None:
        """Flat indices into ``grid.shape`` of the observed nodes, when ``H``
        selects node values of ``grid``; None otherwise."""
        return None


def _check_points(coords: Any, name: str = "coords") -> np.ndarray:
    try:
        points = np.array(coords, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of point coordinates, shape (n, d)") from None
    if points.ndim == 1 and points.size:
        points = points[:, None]
    if points.ndim != 2 or points.shape[0] == 0 or not 1 <= points.shape[1] <= 3:
        raise ValueError(
            f"{name} has shape {np.shape(coords)}; expected (n, d) with n >= 1 points and "
            "d = 1, 2 or 3 coordinates in axis order ((y, x) in 2D)"
        )
    bad = np.flatnonzero(~np.isfinite(points).all(axis=1))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{name}[{i}] = {tuple(float(v) for v in points[i])} is not finite "
            f"({bad.size} points with NaN or infinite coordinates); remove or fix them"
        )
    return points


def _domain_text(lengths: Sequence[float]) -> str:
    return " x ".join(f"[0, {L:g})" for L in lengths)


def check_points_in_domain(points: np.ndarray, lengths: Sequence[float],
                           name: str = "coords") -> None:
    """Refuse points outside ``[0, L_1) x .. x [0, L_d)``, naming the first one."""
    lengths = tuple(float(L) for L in lengths)
    if points.shape[1] != len(lengths):
        raise ValueError(
            f"{name} has {points.shape[1]} coordinates per point but the domain "
            f"{_domain_text(lengths)} has {len(lengths)} axes"
        )
    outside = np.flatnonzero(((points < 0) | (points >= np.asarray(lengths))).any(axis=1))
    if outside.size:
        i = int(outside[0])
        raise ValueError(
            f"{name}[{i}] = {tuple(float(v) for v in points[i])} lies outside the domain "
            f"{_domain_text(lengths)} ({outside.size} points outside); coordinates are in "
            "the domain's units, from 0 to the period L (wrap them with x % L if they are "
            "periodic images)"
        )


# -- point observations ---------------------------------------------------------
class PointObservation(ObservationOperator):
    """Values ``u(x_p)`` at physical points ``x_p``.

    Parameters
    ----------
    coords : array, shape ``(P, d)``
        Point coordinates in the domain's units, in axis order (``(y, x)``
        in 2D), each in ``[0, L_i)``.
    method : {"spectral", "bilinear"}
        ``"spectral"``: exact trigonometric interpolation of the grid field
        (evaluates its Fourier series at the points, see the module notes);
        exact for band-limited fields, so the observation does not depend
        on the resolution, at a cost of ``O(P K)`` per field (``K`` modes).
        ``"bilinear"``: periodic (multi)linear interpolation between the
        ``2^d`` surrounding nodes, ``O(P)`` per field, but second order in
        the spacing: it smooths between nodes and changes with the
        resolution. Chosen explicitly; there is no default.
    lengths : float or sequence of float, optional
        The domain's periods; when given, points outside are refused now
        rather than at the first :meth:`apply`.

    Examples
    --------
    >>> import numpy as np
    >>> from sciffd.grids import torus
    >>> g = torus(16)
    >>> y, x = g.mesh()
    >>> u = np.sin(2 * np.pi * x)[None, None]
    >>> H = PointObservation([[0.3, 0.125]], method="spectral")
    >>> bool(np.allclose(H.apply(u, g), np.sin(2 * np.pi * 0.125)))
    True
    """

    def __init__(self, coords: Any, method: str, *,
                 lengths: float | Sequence[float] | None = None) -> None:
        if method not in METHODS_POINT:
            raise ValueError(
                f"method={method!r} is not supported; expected one of {METHODS_POINT} "
                "(spectral: exact for band-limited fields; bilinear: cheaper, "
                "resolution dependent)"
            )
        self.coords = _check_points(coords)
        self.method = method
        if lengths is not None:
            if isinstance(lengths, (int, float, np.integer, np.floating)):
                lengths = (float(lengths),) * self.coords.shape[1]
            check_points_in_domain(self.coords, lengths)
        self._cache: dict[TorusGrid, Any] = {}

    @property
    def n_points(self) -> int:
        """Number of points ``P``."""
        return int(self.coords.shape[0])

    def n_obs(self, grid: TorusGrid | None = None, channels: int = 1) -> int:
        return _check_channels(channels) * self.n_points

    def _kernel(self, grid: TorusGrid) -> Any:
        kernel = self._cache.get(grid)
        if kernel is None:
            check_points_in_domain(self.coords, grid.lengths)
            kind = TrigInterpolation if self.method == "spectral" else Bilinear
            kernel = self._cache[grid] = kind(self.coords, grid)
        return kernel

    def apply(self, u: Any, grid: TorusGrid) -> Any:
        check_fields(u, grid)
        kernel = self._kernel(grid)
        if self.method == "spectral":
            out = kernel.evaluate(forward(u, grid))
        else:
            out = kernel.evaluate(u)
        return out.reshape((u.shape[0], -1))

    def adjoint(self, y: Any, grid: TorusGrid, channels: int | None = None) -> Any:
        _check_grid(grid)
        c = _channels_of(y, self.n_points)
        if channels is not None and _check_channels(channels) != c:
            raise ValueError(f"y has {c} channel blocks but channels={channels}")
        y3 = y.reshape((y.shape[0], c, self.n_points))
        kernel = self._kernel(grid)
        if self.method == "bilinear":
            return kernel.spread(y3, grid)
        g = kernel.gather(y3)
        return backend.irfftn(g.conj(), grid.shape) / grid.size

    def nodes(self, grid: TorusGrid) -> np.ndarray | None:
        """Flat node indices when every point is a node of ``grid`` (to 1e-9 spacing)."""
        _check_grid(grid)
        if self.coords.shape[1] != grid.ndim:
            return None
        s = self.coords / np.asarray(grid.spacing)
        j = np.rint(s)
        if np.abs(s - j).max() > 1e-9:
            return None
        j = j.astype(np.int64) % np.asarray(grid.shape)
        return np.ravel_multi_index(tuple(j.T), grid.shape)

    def to_config(self) -> dict:
        return {"kind": "point", "coords": self.coords.tolist(), "method": self.method}

    def __repr__(self) -> str:
        return f"PointObservation({self.n_points} points, method={self.method!r})"


# -- masks -----------------------------------------------------------------------
class MaskObservation(ObservationOperator):
    """The values of the field at the grid nodes of a region.

    Parameters
    ----------
    region : boolean array of shape ``grid.shape``, or callable
        The observed region: a mask on the reference ``grid``, or a
        function ``region(*coords) -> bool array`` of the coordinate
        arrays (``grid.mesh()`` order, domain units).
    grid : TorusGrid, optional
        The grid the observations were taken on (required for an array).
        The observed points are then its nodes inside the region: fixed
        physical points, observed on a model grid that contains them
        (the same grid or an integer refinement) by selecting nodes, and
        on any other grid by exact trigonometric interpolation. Without
        ``grid`` the region is evaluated on the nodes of whatever grid
        the operator is applied on, and ``n_obs`` depends on that grid.

    Examples
    --------
    >>> import numpy as np
    >>> from sciffd.grids import torus
    >>> H = MaskObservation(lambda y, x: x < 0.5)
    >>> H.n_obs(torus(8)), H.n_obs(torus(16))
    (32, 128)
    """

    def __init__(self, region: Any, grid: TorusGrid | None = None) -> None:
        if grid is not None:
            _check_grid(grid)
        if callable(region):
            self.region = region
        else:
            mask = np.asarray(region)
            if mask.dtype != bool:
                raise TypeError(
                    f"region must be a boolean array or a callable of the coordinates, "
                    f"got an array of dtype {mask.dtype}"
                )
            if grid is None:
                raise ValueError(
                    "a region given as an array needs grid=, the reference grid it is "
                    "defined on"
                )
            if mask.shape != grid.shape:
                raise ValueError(
                    f"region has shape {mask.shape}; it must be a mask of the reference "
                    f"grid shape {grid.shape}"
                )
            self.region = mask.copy()
        self.grid = grid
        if grid is not None:
            mask = self.mask(grid)
            if not mask.any():
                raise ValueError("the region contains no node of the reference grid")
            self._ref_index = np.flatnonzero(mask.reshape(-1))
            nodes = np.stack([m.reshape(-1) for m in grid.mesh()], axis=1)
            self.points = nodes[self._ref_index]
            self._interpolation = PointObservation(self.points, "spectral")

    def mask(self, grid: TorusGrid) -> np.ndarray:
        """The region on ``grid``: ``region(*grid.mesh())`` (or the array on its grid)."""
        _check_grid(grid)
        if not callable(self.region):
            if grid != self.grid:
                raise ValueError(
                    f"the region array is defined on {self.grid}, not on {grid}; use "
                    "nodes(grid) for the observed nodes of another grid"
                )
            return self.region
        mask = np.asarray(self.region(*grid.mesh()))
        if mask.shape != grid.shape or mask.dtype != bool:
            raise ValueError(
                f"region(*grid.mesh()) returned {mask.dtype} of shape {mask.shape}; "
                f"expected a boolean array of shape {grid.shape}"
            )
        return mask

    def _locations(self, grid: TorusGrid) -> int:
        if self.grid is not None:
            return int(self._ref_index.size)
        return int(self.mask(grid).sum())

    def n_obs(self, grid: TorusGrid | None = None, channels: int = 1) -> int:
        if grid is None and self.grid is None:
            raise ValueError(
                "this mask is evaluated on the grid it is applied on; pass grid= to n_obs"
            )
        return _check_channels(channels) * self._locations(grid or self.grid)

    def nodes(self, grid: TorusGrid) -> np.ndarray | None:
        _check_grid(grid)
        if self.grid is None:
            return np.flatnonzero(self.mask(grid).reshape(-1))
        if grid.lengths != self.grid.lengths or grid.ndim != self.grid.ndim or any(
                n % r for n, r in zip(grid.shape, self.grid.shape, strict=True)):
            return None
        factor = np.asarray(grid.shape) // np.asarray(self.grid.shape)
        j = np.stack(np.unravel_index(self._ref_index, self.grid.shape), axis=1) * factor
        return np.ravel_multi_index(tuple(j.T), grid.shape)

    def apply(self, u: Any, grid: TorusGrid) -> Any:
        check_fields(u, grid)
        index = self.nodes(grid)
        if index is None:
            return self._interpolation.apply(u, grid)
        flat = u.reshape(tuple(u.shape[:2]) + (-1,))
        return flat[..., index_like(index, u)].reshape((u.shape[0], -1))

    def adjoint(self, y: Any, grid: TorusGrid, channels: int | None = None) -> Any:
        _check_grid(grid)
        index = self.nodes(grid)
        if index is None:
            return self._interpolation.adjoint(y, grid, channels)
        c = _channels_of(y, index.size)
        if channels is not None and _check_channels(channels) != c:
            raise ValueError(f"y has {c} channel blocks but channels={channels}")
        out = scatter_add(y, grid.size, index, y.reshape((y.shape[0], c, index.size)))
        return out.reshape((y.shape[0], c) + grid.shape)

    def to_config(self) -> dict:
        if callable(self.region) and self.grid is None:
            raise TypeError(
                "a MaskObservation with a callable region and no grid has no configuration "
                "form; give the region as a boolean array on a grid"
            )
        return {"kind": "mask", "region": self.mask(self.grid).tolist(),
                "grid": {"shape": list(self.grid.shape), "lengths": list(self.grid.lengths)}}

    def __repr__(self) -> str:
        where = "any grid" if self.grid is None else repr(self.grid)
        return f"MaskObservation(region on {where})"


# -- Fourier-diagonal operators ---------------------------------------------------
def _check_shape(shape: Any, name: str = "shape") -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (int(shape),)
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"{name}={shape!r} must be a tuple of integers") from None
    if not 1 <= len(shape) <= 3 or any(
            isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1
            for n in shape):
        raise ValueError(f"{name}={shape!r} must be 1 to 3 positive integers")
    return tuple(int(n) for n in shape)


def _band_multiplier(grid: TorusGrid, obs: TorusGrid) -> np.ndarray:
    """1 on the modes of ``grid`` that sampling on ``obs`` keeps (all when equal).

    Resampling keeps the modes ``|m_i| < N_i / 2`` of both grids, so the
    Nyquist modes of either are dropped when the grids differ.
    """
    if obs == grid:
        return np.ones(grid.spectral_shape)
    ones = np.ones((1,) + obs.spectral_shape)
    return resample_spectrum(ones, obs, grid)[0].real.copy()


class _FourierDiagonal(ObservationOperator):
    """``H u``: coefficients ``b_k u_hat[k]`` sampled on the nodes of an observation grid."""

    def obs_grid(self, grid: TorusGrid) -> TorusGrid:  # pragma: no cover - abstract
        raise NotImplementedError

    def multiplier(self, grid: TorusGrid) -> np.ndarray:  # pragma: no cover - abstract
        """``b_k`` on the half spectrum of ``grid``."""
        raise NotImplementedError

    def n_obs(self, grid: TorusGrid | None = None, channels: int = 1) -> int:
        if grid is None:
            raise ValueError(f"{type(self).__name__}.n_obs needs the grid it observes")
        return _check_channels(channels) * self.obs_grid(grid).size

    def apply(self, u: Any, grid: TorusGrid) -> Any:
        check_fields(u, grid)
        obs = self.obs_grid(grid)
        b = self.multiplier(grid)
        if obs == grid:
            out = inverse(forward(u, grid) * as_array_like(b, u), grid)
        else:
            u_hat = forward(u, grid) * as_array_like(b, u)
            out = inverse(resample_spectrum(u_hat, grid, obs), obs)
        return out.reshape((u.shape[0], -1))

    def adjoint(self, y: Any, grid: TorusGrid, channels: int | None = None) -> Any:
        _check_grid(grid)
        obs = self.obs_grid(grid)
        c = _channels_of(y, obs.size)
        if channels is not None and _check_channels(channels) != c:
            raise ValueError(f"y has {c} channel blocks but channels={channels}")
        y_f = y.reshape((y.shape[0], c) + obs.shape)
        b = self.multiplier(grid)
        if obs != grid:
            # the transpose of sampling the band on obs is (n_obs / n) times
            # resampling from obs, the band being the same both ways
            y_f = resample(y_f, obs, grid) * (obs.size / grid.size)
        return inverse(forward(y_f, grid) * as_array_like(b, y_f), grid)

    def fourier_diagonal(self, grid: TorusGrid) -> tuple[TorusGrid, np.ndarray] | None:
        obs = self.obs_grid(grid)
        return obs, self.multiplier(grid) * _band_multiplier(grid, obs)


class CoarseGrain(_FourierDiagonal):
    """The field seen on a coarse grid.

    Parameters
    ----------
    factor : int, optional
        Coarsening factor: the coarse grid has ``N_i / factor`` points per
        axis of the grid the operator is applied on (which it must divide).
    method : {"block_mean", "spectral"}
        ``"block_mean"``: the mean of the ``factor^d`` nodes
        ``j f .. j f + f - 1`` of each block (a discrete cell average over
        ``[X_J, X_J + f h)``; it aliases the modes beyond the coarse band
        and depends on the resolution). ``"spectral"``: the field
        truncated to the modes ``|m_i| < Nc_i / 2`` and sampled on the
        coarse nodes, i.e. :func:`~sciffd.spectral.resample`: full
        observation of the retained modes, diagonal in Fourier and the
        same at every resolution.
    shape : int or tuple of int, optional
        The coarse grid's shape itself (instead of ``factor``); the
        observations then belong to a fixed coarse grid and condition a
        field at any resolution that is a multiple of it (``block_mean``)
        or at any resolution (``spectral``).
    """

    def __init__(self, factor: int | None = None, method: str = "block_mean", *,
                 shape: int | Sequence[int] | None = None) -> None:
        if method not in METHODS_COARSE:
            raise ValueError(f"method={method!r} is not supported; expected one of "
                             f"{METHODS_COARSE}")
        if (factor is None) == (shape is None):
            raise TypeError("give exactly one of factor= (an integer) or shape= (the coarse "
                            f"grid shape); got factor={factor!r}, shape={shape!r}")
        if factor is not None and (isinstance(factor, bool) or not isinstance(
                factor, (int, np.integer)) or factor < 1):
            raise ValueError(f"factor={factor!r} must be a positive integer")
        self.factor = None if factor is None else int(factor)
        # an integer shape means that many points on every axis of the grid
        self._per_axis = isinstance(shape, (int, np.integer)) and not isinstance(shape, bool)
        self.shape = None if shape is None else _check_shape(shape)
        self.method = method

    def obs_grid(self, grid: TorusGrid) -> TorusGrid:
        _check_grid(grid)
        if self.shape is not None:
            shape = self.shape * grid.ndim if self._per_axis else self.shape
            shape = shape if len(shape) == grid.ndim else None
            if shape is None:
                raise ValueError(f"shape={self.shape} does not have the {grid.ndim} axes of "
                                 f"{grid}")
        else:
            shape = tuple(n // self.factor for n in grid.shape)
            if any(n % self.factor for n in grid.shape) or min(shape) < 1:
                raise ValueError(f"factor={self.factor} does not divide the grid shape "
                                 f"{grid.shape}")
        if self.method == "block_mean" and any(
                n % c for n, c in zip(grid.shape, shape, strict=True)):
            raise ValueError(
                f"block means need a grid shape that is a multiple of the coarse shape "
                f"{shape}, got {grid.shape}; use method='spectral' for other resolutions"
            )
        return grid.with_shape(shape)

    def multiplier(self, grid: TorusGrid) -> np.ndarray:
        return np.ones(grid.spectral_shape)

    def apply(self, u: Any, grid: TorusGrid) -> Any:
        if self.method == "spectral":
            return super().apply(u, grid)
        check_fields(u, grid)
        obs = self.obs_grid(grid)
        split = [u.shape[0], u.shape[1]]
        for n, c in zip(grid.shape, obs.shape, strict=True):
            split += [c, n // c]
        blocks = u.reshape(tuple(split))
        axes = tuple(range(3, len(split), 2))
        if backend.backend_name(u) == "torch":
            return blocks.mean(dim=axes).reshape((u.shape[0], -1))
        return blocks.mean(axis=axes).reshape((u.shape[0], -1))

    def adjoint(self, y: Any, grid: TorusGrid, channels: int | None = None) -> Any:
        if self.method == "spectral":
            return super().adjoint(y, grid, channels)
        _check_grid(grid)
        obs = self.obs_grid(grid)
        c = _channels_of(y, obs.size)
        if channels is not None and _check_channels(channels) != c:
            raise ValueError(f"y has {c} channel blocks but channels={channels}")
        shape = [y.shape[0], c]
        expand = [y.shape[0], c]
        for n, k in zip(grid.shape, obs.shape, strict=True):
            shape += [k, 1]
            expand += [k, n // k]
        blocks = y.reshape(tuple(shape)) / (grid.size / obs.size)
        if backend.backend_name(y) == "torch":
            out = blocks.expand(tuple(expand))
        else:
            out = np.broadcast_to(blocks, tuple(expand))
        return out.reshape((y.shape[0], c) + grid.shape)

    def fourier_diagonal(self, grid: TorusGrid) -> tuple[TorusGrid, np.ndarray] | None:
        return super().fourier_diagonal(grid) if self.method == "spectral" else None

    def to_config(self) -> dict:
        return {"kind": "coarse", "factor": self.factor,
                "shape": None if self.shape is None else list(self.shape),
                "method": self.method}

    def __repr__(self) -> str:
        size = f"factor={self.factor}" if self.shape is None else f"shape={self.shape}"
        return f"CoarseGrain({size}, method={self.method!r})"


class Blur(_FourierDiagonal):
    """A convolution, ``(H u)^[k] = b(|k|^2) u_hat[k]``, seen on the grid or a coarse one.

    Parameters
    ----------
    width : float, optional
        Standard deviation ``w`` of a Gaussian kernel in the domain's
        units: ``b = exp(-w^2 |k|^2 / 2)``.
    spectrum : callable, optional
        The kernel's spectrum ``b(k2)`` as a function of the squared
        angular wavenumber (real, so the kernel is even); instead of
        ``width``.
    shape : int or tuple of int, optional
        Observe the blurred field on a grid of this shape (its band,
        sampled on its nodes, as :class:`CoarseGrain` ``"spectral"``);
        default the grid the operator is applied on.
    """

    def __init__(self, width: float | None = None,
                 spectrum: Callable[[np.ndarray], np.ndarray] | None = None, *,
                 shape: int | Sequence[int] | None = None) -> None:
        if (width is None) == (spectrum is None):
            raise TypeError("give exactly one of width= (Gaussian kernel) or spectrum= "
                            f"(a function of |k|^2); got width={width!r}, "
                            f"spectrum={spectrum!r}")
        if width is not None:
            if isinstance(width, bool) or not isinstance(width, (int, float, np.integer,
                                                                np.floating)):
                raise TypeError(f"width={width!r} must be a real number")
            if not (math.isfinite(width) and width > 0):
                raise ValueError(f"width={width!r} must be finite and positive (domain units)")
            self.width = float(width)
        else:
            if not callable(spectrum):
                raise TypeError(f"spectrum={spectrum!r} must be callable on an array of |k|^2")
            self.width = None
        self.spectrum = spectrum
        self.shape = None if shape is None else _check_shape(shape)

    def obs_grid(self, grid: TorusGrid) -> TorusGrid:
        _check_grid(grid)
        if self.shape is None:
            return grid
        if len(self.shape) != grid.ndim:
            raise ValueError(f"shape={self.shape} does not have the {grid.ndim} axes of {grid}")
        return grid.with_shape(self.shape)

    def multiplier(self, grid: TorusGrid) -> np.ndarray:
        k2 = grid.k_squared
        if self.width is not None:
            return np.exp(-0.5 * self.width**2 * k2)
        b = np.asarray(self.spectrum(k2), dtype=np.float64)
        b = np.broadcast_to(b, grid.spectral_shape)
        if not np.isfinite(b).all():
            raise ValueError("spectrum(k2) returned non-finite values")
        return b.copy()

    def to_config(self) -> dict:
        if self.width is None:
            raise TypeError("a Blur with a spectrum function has no configuration form; "
                            "use width= for a Gaussian kernel")
        return {"kind": "blur", "width": self.width,
                "shape": None if self.shape is None else list(self.shape)}

    def __repr__(self) -> str:
        kernel = f"width={self.width:g}" if self.width is not None else "spectrum=<function>"
        return f"Blur({kernel}, shape={self.shape})"


# -- any linear map ----------------------------------------------------------------
class LinearOperator(ObservationOperator):
    """A user's linear map, ``function(u) -> (B, n_obs)``, adjoint by autograd.

    Parameters
    ----------
    function : callable
        ``function(u)`` (or ``function(u, grid)`` with ``takes_grid=True``)
        for torch fields ``(B, C, *S)``, built from differentiable torch
        operations; it must be linear (not checked beyond its output shape).
    n_obs : int
        Number of observations it returns.
    takes_grid : bool
        Whether ``function`` also receives the grid.

    Notes
    -----
    The adjoint is the vector-Jacobian product
    ``H^T y = d<H u, y>/du``, the same at any ``u`` for a linear map (it is
    taken at ``u = 0``). numpy fields are moved to torch and back.
    """

    def __init__(self, function: Callable[..., Any], n_obs: int, *,
                 takes_grid: bool = False) -> None:
        if not callable(function):
            raise TypeError(f"function={function!r} must be a callable of torch fields")
        if isinstance(n_obs, bool) or not isinstance(n_obs, (int, np.integer)) or n_obs < 1:
            raise ValueError(f"n_obs={n_obs!r} must be a positive integer")
        self.function = function
        self._n_obs = int(n_obs)
        self.takes_grid = bool(takes_grid)

    def n_obs(self, grid: TorusGrid | None = None, channels: int = 1) -> int:
        return self._n_obs

    def _call(self, u: Any, grid: TorusGrid) -> Any:
        out = self.function(u, grid) if self.takes_grid else self.function(u)
        _check_observations(out, self._n_obs, "function(u)")
        return out

    def apply(self, u: Any, grid: TorusGrid) -> Any:
        check_fields(u, grid)
        if backend.backend_name(u) == "torch":
            return self._call(u, grid)
        import torch

        out = self._call(torch.from_numpy(np.ascontiguousarray(u)), grid)
        return out.detach().cpu().numpy()

    def adjoint(self, y: Any, grid: TorusGrid, channels: int = 1) -> Any:
        import torch

        _check_grid(grid)
        _check_observations(y, self._n_obs)
        name = backend.backend_name(y)
        yt = y if name == "torch" else torch.from_numpy(np.ascontiguousarray(y))
        shape = (yt.shape[0], _check_channels(channels)) + grid.shape
        with torch.enable_grad():
            u = torch.zeros(shape, dtype=yt.dtype, device=yt.device, requires_grad=True)
            out = self._call(u, grid)
            (g,) = torch.autograd.grad(out, u, grad_outputs=yt.detach().to(out.dtype),
                                       create_graph=yt.requires_grad)
        return g if name == "torch" else g.cpu().numpy()

    def to_config(self) -> dict:
        raise TypeError("a LinearOperator holds a function and has no configuration form")

    def __repr__(self) -> str:
        return f"LinearOperator({getattr(self.function, '__name__', 'function')}, " \
               f"n_obs={self._n_obs})"


def operator_from_config(config: dict) -> ObservationOperator:
    """Inverse of ``to_config`` for the built-in operators."""
    if not isinstance(config, dict) or "kind" not in config:
        raise ValueError(f"not an observation operator configuration: {config!r}")
    kind = config["kind"]
    if kind == "point":
        return PointObservation(config["coords"], config["method"])
    if kind == "mask":
        g = config["grid"]
        return MaskObservation(np.asarray(config["region"], dtype=bool),
                               TorusGrid(tuple(g["shape"]), tuple(g["lengths"])))
    if kind == "coarse":
        return CoarseGrain(config.get("factor"), config["method"], shape=config.get("shape"))
    if kind == "blur":
        return Blur(config["width"], shape=config.get("shape"))
    raise ValueError(f"unknown operator kind {kind!r}; expected 'point', 'mask', 'coarse' "
                     "or 'blur'")
