"""Gaussian measures ``N(0, C)`` on function space, diagonal in the Fourier basis.

On the torus ``T^d`` the covariance ``C`` acts on ``e_k(x) = exp(i k . x)``
(``k = 2 pi m / L``, ``m`` in ``Z^d``) by ``C e_k = lambda(k) e_k``. A sample
is the random Fourier series

    u(x) = sum_m sqrt(lambda_m) z_m e_m(x),     z_{-m} = conj(z_m),

with ``z_0`` a real standard normal and, for the other modes, ``z_m`` a
complex standard normal (``E|z_m|^2 = 1``). With the grid-mean inner product
the pointwise variance of ``u`` is ``sum_m lambda_m``, which is finite
exactly when ``C`` is trace class. For the Matern-type spectrum

    lambda(k) = sigma^2 (tau^2 + |k|^2)^(-alpha)

that means ``alpha > d/2``; :class:`Matern` refuses any other ``alpha``.
:class:`WhiteNoise` (``lambda = sigma^2``, not trace class) is offered
only as the explicit choice of pixel-space diffusion, for comparison.

**Nested noise.** Member ``m`` of seed ``s`` (and channel ``c``, stream
``t``) draws float64 normals from its own generator,
``Generator(SFC64(SeedSequence(s, spawn_key=(m, c, t))))``
(:func:`member_generator`), in a fixed order of the modes: shell by shell
in ``r = max_i |m_i|``, each shell in a fixed order. A grid with ``N``
points per axis needs the shells ``r <= (N-1)//2``, a prefix of the same
sequence, so a member has the same low modes at every resolution, and the
same values whether drawn alone, in a batch, or on another worker. float32
fields hold the same coefficients rounded once. Nyquist modes of even axes
are zero. The layout and the batched, threaded drawing are in
``sciffd._nested``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from . import _nested, backend
from ._nested import member_generator
from .grids import TorusGrid
from .spectral import as_array_like, check_field, forward, inverse

__all__ = [
    "GaussianMeasure",
    "Matern",
    "SpectralGaussian",
    "WhiteNoise",
    "fit_matern",
    "measure_from_config",
    "measure_to_config",
    "member_generator",
]


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer")
    return int(seed)


def _member_ids(members: Any) -> np.ndarray:
    if isinstance(members, bool):
        raise TypeError(f"members={members!r} must be a count or a sequence of member ids")
    if isinstance(members, (int, np.integer)):
        if members < 1:
            raise ValueError(f"members={members!r} must be at least 1")
        return np.arange(int(members), dtype=np.int64)
    try:
        ids = np.asarray(list(members))
    except TypeError:
        raise TypeError(
            f"members={members!r} must be a count or a sequence of member ids"
        ) from None
    if ids.ndim != 1 or ids.size == 0 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"members={members!r} must be a non-empty sequence of integer ids")
    if (ids < 0).any():
        raise ValueError(f"members={members!r}: member ids must be non-negative")
    return ids.astype(np.int64)


class GaussianMeasure:
    """Base class of the measures ``N(0, C)`` diagonal in the Fourier basis.

    Subclasses define :meth:`spectrum`, the eigenvalue ``lambda(k)`` as a
    function of ``|k|^2`` (angular wavenumbers). Everything else (sampling,
    ``C``, ``C^(1/2)``, ``C^(-1)``, Cameron-Martin norm, log-density of a
    truncation) is a multiplication on the half spectrum.
    """

    trace_class: bool = True
    # whether equal measures have equal spectra, so that sampling may cache them
    _pure_spectrum: bool = False

    def spectrum(self, k2: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """Eigenvalues ``lambda`` at squared angular wavenumbers ``k2``."""
        raise NotImplementedError

    # -- eigenvalues on a grid ---------------------------------------------
    def eigenvalues(self, grid: TorusGrid) -> np.ndarray:
        """``lambda_m`` on the half spectrum of ``grid`` (float64), 0 at Nyquist modes."""
        if not isinstance(grid, TorusGrid):
            raise TypeError(f"grid must be a sciffd.grids.TorusGrid, got {type(grid).__name__}")
        ndim = getattr(self, "ndim", None)
        if ndim is not None and ndim != grid.ndim:
            # trace class is checked for the measure's own dimension only
            raise ValueError(
                f"{self!r} is defined on a {ndim}-dimensional torus, not on the "
                f"{grid.ndim}-dimensional grid {grid.shape}; build it with ndim={grid.ndim}"
            )
        lam = np.asarray(self.spectrum(grid.k_squared), dtype=np.float64)
        lam = np.broadcast_to(lam, grid.spectral_shape).copy()
        lam[~grid.nyquist_mask] = 0.0
        bad = ~np.isfinite(lam) | (lam < 0)
        if bad.any():
            k2 = float(np.broadcast_to(grid.k_squared, lam.shape)[bad][0])
            raise ValueError(
                f"{self!r} has the eigenvalue {lam[bad][0]} at |k|^2 = {k2} on grid "
                f"{grid.shape}; eigenvalues must be finite and non-negative (return 0 "
                "for a mode the measure leaves out, such as k = 0 of a pure power law)"
            )
        return lam

    def pointwise_variance(self, grid: TorusGrid) -> float:
        """``E u(x)^2 = sum_m lambda_m`` over the modes the grid represents."""
        return float((self.eigenvalues(grid) * grid.hermitian_weight).sum())

    # -- operators ---------------------------------------------------------
    def apply(self, u: Any, grid: TorusGrid) -> Any:
        """``C u``."""
        return self._multiply(u, grid, self.eigenvalues(grid))

    def sqrt(self, u: Any, grid: TorusGrid) -> Any:
        """``C^(1/2) u``."""
        return self._multiply(u, grid, np.sqrt(self.eigenvalues(grid)))

    def inverse(self, u: Any, grid: TorusGrid) -> Any:
        """``C^(-1) u`` on the represented modes (pseudo-inverse: zero where ``lambda = 0``)."""
        return self._multiply(u, grid, _pinv(self.eigenvalues(grid)))

    def inverse_sqrt(self, u: Any, grid: TorusGrid) -> Any:
        """``C^(-1/2) u`` (pseudo-inverse)."""
        return self._multiply(u, grid, np.sqrt(_pinv(self.eigenvalues(grid))))

    def cameron_martin_norm(self, u: Any, grid: TorusGrid) -> Any:
        """``||u||_C = <u, C^(-1) u>^(1/2)`` per field, over the leading axes."""
        check_field(u, grid)
        u_hat = forward(u, grid)
        w = as_array_like(grid.hermitian_weight * _pinv(self.eigenvalues(grid)), u.real)
        xp = backend.array_namespace(u_hat)
        power = xp.real(u_hat) ** 2 + xp.imag(u_hat) ** 2
        axes = tuple(range(-grid.ndim, 0))
        return xp.sqrt(xp.sum(power * w, axis=axes))

    def log_density(self, u: Any, grid: TorusGrid) -> Any:
        """Exact log-density of the truncation of ``N(0, C)`` to the grid's modes.

        The density is taken with respect to Lebesgue measure on the real
        coordinates of the represented Fourier coefficients: ``Re`` and
        ``Im u_hat[m]`` for each pair ``+-m`` (variance ``lambda_m / 2``
        each) and ``u_hat[0]`` (variance ``lambda_0``). Modes with
        ``lambda = 0`` are left out.
        """
        lam = self.eigenvalues(grid)
        active = lam > 0
        # two real dofs (Re, Im) per interior entry; one per entry of the m_x = 0
        # plane, whose entries come in conjugate pairs; one at m = 0
        n_dof = np.where(grid.hermitian_weight == 2.0, 2.0, 1.0) * active
        var = lam / 2
        var.flat[0] = lam.flat[0]
        const = -0.5 * float((n_dof * np.log(2 * np.pi * np.where(active, var, 1.0))).sum())
        return const - 0.5 * self.cameron_martin_norm(u, grid) ** 2

    def _multiply(self, u: Any, grid: TorusGrid, multiplier: np.ndarray) -> Any:
        check_field(u, grid)
        u_hat = forward(u, grid)
        return inverse(u_hat * as_array_like(multiplier, u), grid)

    # -- sampling ------------------------------------------------------------
    def sample(
        self,
        grid: TorusGrid,
        members: int | Sequence[int] = 1,
        seed: int = 0,
        *,
        channels: int = 1,
        stream: int = 0,
        dtype: Any = np.float32,
        backend_name: str | None = None,
        device: Any = None,
    ) -> Any:
        """Draw fields of ``N(0, C)`` on ``grid``.

        Parameters
        ----------
        grid : TorusGrid
            The grid of shape ``S``.
        members : int or sequence of int
            A count ``M`` (members ``0 .. M-1``) or the member ids to draw.
        seed : int
            The ensemble seed ``s``.
        channels : int
            Independent channels ``C`` per member.
        stream : int
            Independent stream index ``t``, for example the step of a sampler.
        dtype : numpy dtype
            ``float32`` (default) or ``float64``; the draws are the same
            normals in both, rounded at the end.
        backend_name : {"numpy", "torch", "cupy"}, optional
            Array library of the result (default: ``SCIFFD_BACKEND``).
        device : optional
            Device of the result for torch and cupy.

        Returns
        -------
        u : array, shape ``(M, C, *S)``

        Notes
        -----
        On numpy the members are drawn on ``sciffd.backend.fft_workers()``
        threads; each thread draws a cache-sized chunk of fields straight
        into their half spectra and transforms them (with planned pyFFTW
        objects when pyFFTW is installed, see
        :func:`sciffd.backend.uses_pyfftw`; else ``scipy.fft``). The values
        depend neither on the number of threads nor on the batch. Drawing
        the normals is most of the cost; ``docs/benchmarks.md`` has figures.

        Examples
        --------
        >>> from sciffd.grids import torus
        >>> u = Matern(alpha=2.0, tau=3.0).sample(torus(32), members=4, seed=1)
        >>> u.shape
        (4, 1, 32, 32)
        """
        name = backend.check_backend(backend_name)
        if name == "numpy":
            return self._sample_numpy(self._draw_plan(grid, members, seed, channels,
                                                      stream, dtype))
        u_hat = self.sample_spectrum(grid, members, seed, channels=channels, stream=stream,
                                     dtype=dtype)
        return inverse(backend.to_backend(u_hat, name, device), grid)

    def sample_spectrum(
        self,
        grid: TorusGrid,
        members: int | Sequence[int] = 1,
        seed: int = 0,
        *,
        channels: int = 1,
        stream: int = 0,
        dtype: Any = np.float32,
    ) -> np.ndarray:
        """Half-spectrum coefficients of :meth:`sample` (numpy, shape ``(M, C, *K)``).

        ``K = grid.spectral_shape``; complex64 for ``float32``, complex128
        for ``float64`` (the same float64 values, rounded).
        """
        draw = self._draw_plan(grid, members, seed, channels, stream, dtype)
        lay, n_jobs = draw.layout, len(draw.keys)
        out = np.empty((n_jobs, lay.size), dtype=draw.cdtype)
        rows = max(1, min(16, -(-n_jobs // draw.threads)))

        def make_worker() -> Callable[[int], None]:
            drawer = draw.drawer()

            def work(task: int) -> None:
                for job in range(task * rows, min((task + 1) * rows, n_jobs)):
                    drawer.fill(job, out[job])

            return work

        _nested.parallel(-(-n_jobs // rows), make_worker, draw.threads)
        return out.reshape(draw.lead + lay.spectral_shape)

    def _sample_numpy(self, draw: _DrawPlan) -> np.ndarray:
        """Draw and transform in cache-sized chunks of rows, one chunk per task.

        With pyFFTW every field goes through the same single-field plan, and
        scipy.fft transforms a field alike in any batch, so a member's values
        do not depend on the batch it is drawn in.
        """
        lay, n_jobs = draw.layout, len(draw.keys)
        out = np.empty((n_jobs,) + lay.shape, dtype=draw.dtype)
        fftw = backend.uses_pyfftw(lay.shape)
        # a chunk's spectrum stays in cache between the draws and the transform
        fit = max(1, _CHUNK_BYTES // (lay.size * np.dtype(draw.cdtype).itemsize))
        rows = max(1, min(fit, -(-n_jobs // draw.threads)))

        def make_worker() -> Callable[[int], None]:
            drawer = draw.drawer()
            plans = {}

            def work(task: int) -> None:
                start, stop = task * rows, min((task + 1) * rows, n_jobs)
                batch = 1 if fftw else stop - start
                if batch not in plans:
                    plans[batch] = backend.irfftn_plan(batch, lay.shape, draw.dtype)
                plan = plans[batch]
                spectra = plan.input.reshape(batch, lay.size)
                for first in range(start, stop, batch):
                    for i in range(batch):
                        drawer.fill(first + i, spectra[i])
                    out[first:first + batch] = plan.execute()

            return work

        _nested.parallel(-(-n_jobs // rows), make_worker, draw.threads)
        return out.reshape(draw.lead + lay.shape)

    def _draw_plan(self, grid: TorusGrid, members: Any, seed: Any, channels: Any,
                   stream: Any, dtype: Any) -> _DrawPlan:
        """Validate the arguments of :meth:`sample` and gather what drawing needs."""
        if not isinstance(grid, TorusGrid):
            raise TypeError(f"grid must be a sciffd.grids.TorusGrid, got {type(grid).__name__}")
        ids = _member_ids(members)
        seed = _check_seed(seed)
        if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) \
                or channels < 1:
            raise ValueError(f"channels={channels!r} must be a positive integer")
        if isinstance(stream, bool) or not isinstance(stream, (int, np.integer)) or stream < 0:
            raise ValueError(f"stream={stream!r} must be a non-negative integer")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype={dtype} is not supported; expected float32 or float64")
        channels, stream = int(channels), int(stream)

        lay = _nested.layout(grid.shape)
        scale_pairs, scale_mean = _cached_scales(self, grid) if self._pure_spectrum \
            else _scales(self, grid)
        keys = np.stack([np.repeat(ids, channels), np.tile(np.arange(channels), len(ids)),
                         np.full(len(ids) * channels, stream)], axis=1)
        # numpy's own seeding is cheaper for a few jobs than the vectorised one
        words = _nested.seed_words(seed, keys) \
            if len(keys) >= 4 and _nested.vectorised_seeding_ok() else None
        return _DrawPlan(
            layout=lay, dtype=dtype,
            cdtype=np.complex64 if dtype == np.float32 else np.complex128,
            scale_pairs=scale_pairs, scale_mean=scale_mean,
            seed=seed, keys=keys, words=words, lead=(len(ids), channels),
            threads=_nested.threads_for(len(keys) * lay.n_draws),
        )


# the spectrum of a chunk of fields drawn and transformed together on one thread
_CHUNK_BYTES = 256 * 1024


def _scales(measure: GaussianMeasure, grid: TorusGrid) -> tuple[np.ndarray, float]:
    """``sqrt(lambda_j / 2)`` twice per drawn mode (0 for dropped ones), ``sqrt(lambda_0)``."""
    lay = _nested.layout(grid.shape)
    lam = measure.eigenvalues(grid).reshape(-1)
    scale_pairs = np.zeros((lay.n_modes, 2))
    scale_pairs[lay.kept] = np.sqrt(lam[lay.dst] / 2)[:, None]
    scale_pairs = scale_pairs.reshape(-1)
    scale_pairs.setflags(write=False)
    return scale_pairs, math.sqrt(lam[0])


@lru_cache(maxsize=8)
def _cached_scales(measure: GaussianMeasure, grid: TorusGrid) -> tuple[np.ndarray, float]:
    """:func:`_scales` of a measure whose spectrum is fixed by its (frozen) fields."""
    return _scales(measure, grid)


@dataclass(frozen=True)
class _DrawPlan:
    """Everything the threads of one call of ``sample`` share (see ``_nested``)."""

    layout: _nested.DrawLayout
    dtype: np.dtype
    cdtype: type
    scale_pairs: np.ndarray
    scale_mean: float
    seed: int
    keys: np.ndarray
    words: np.ndarray | None
    lead: tuple[int, int]
    threads: int

    def drawer(self) -> _nested.Drawer:
        return _nested.Drawer(self.layout, self.scale_pairs, self.scale_mean,
                              self.cdtype == np.complex64, self.seed, self.keys,
                              self.words)


def _pinv(lam: np.ndarray) -> np.ndarray:
    out = np.zeros_like(lam)
    positive = lam > 0
    out[positive] = 1.0 / lam[positive]
    return out


def _check_number(value: Any, name: str, *, positive: bool = False,
                  nonnegative: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}={value!r} must be a real number")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}={value!r} must be finite")
    if positive and value <= 0:
        raise ValueError(f"{name}={value!r} must be positive")
    if nonnegative and value < 0:
        raise ValueError(f"{name}={value!r} must be non-negative")
    return value


@dataclass(frozen=True)
class Matern(GaussianMeasure):
    """Matern-type measure, ``lambda(k) = sigma^2 (tau^2 + |k|^2)^(-alpha)``.

    Parameters
    ----------
    alpha : float
        Smoothness exponent; must exceed ``ndim / 2`` for ``C`` to be trace class.
    tau : float
        Inverse length scale (angular wavenumber units); ``tau >= 0``.
        With ``tau = 0`` the mean mode has ``lambda_0 = 0``.
    sigma : float
        Amplitude.
    ndim : int
        Dimension ``d`` of the torus the measure lives on (1, 2 or 3).

    Examples
    --------
    The initial vorticity of the 2D Navier-Stokes benchmark,
    ``N(0, 7^3 (-Laplacian + 49)^(-2.5))``:

    >>> mu = Matern(alpha=2.5, tau=7.0, sigma=7.0**1.5)
    >>> Matern(alpha=1.0, tau=1.0)
    Traceback (most recent call last):
    ...
    ValueError: Matern(alpha=1.0) on a 2-dimensional torus is not trace class: ...
    """

    alpha: float
    tau: float = 1.0
    sigma: float = 1.0
    ndim: int = 2
    _pure_spectrum = True

    def __post_init__(self) -> None:
        _check_number(self.alpha, "alpha", positive=True)
        _check_number(self.tau, "tau", nonnegative=True)
        _check_number(self.sigma, "sigma", positive=True)
        if self.ndim not in (1, 2, 3):
            raise ValueError(f"ndim={self.ndim!r} must be 1, 2 or 3")
        if not self.alpha > self.ndim / 2:
            raise ValueError(
                f"Matern(alpha={self.alpha}) on a {self.ndim}-dimensional torus is not "
                f"trace class: the eigenvalues decay like |k|^(-2 alpha) and their sum "
                f"diverges unless alpha > d/2 = {self.ndim / 2}; choose a larger alpha, or "
                "WhiteNoise() if pixel-space white noise is what you mean"
            )

    def spectrum(self, k2: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            lam = self.sigma**2 * np.power(self.tau**2 + np.asarray(k2, dtype=np.float64),
                                           -self.alpha)
        return np.where(np.isfinite(lam), lam, 0.0)

    @classmethod
    def unit_variance(cls, alpha: float, tau: float, ndim: int = 2,
                      lengths: float | Sequence[float] = 1.0) -> Matern:
        """The Matern measure scaled so its continuum pointwise variance is 1.

        The variance ``sum_m lambda_m`` is summed over ``|m_i| <= 512`` (1D,
        2D) or ``<= 64`` (3D), plus the integral of the tail beyond.
        """
        mu = cls(alpha=alpha, tau=tau, sigma=1.0, ndim=ndim)
        lengths = (float(lengths),) * ndim if isinstance(lengths, (int, float)) \
            else tuple(lengths)
        n = 1025 if ndim < 3 else 129
        total = mu.pointwise_variance(TorusGrid((n,) * ndim, lengths))
        # tail: int_{|k| > k_c} lambda(k) dk / (2 pi)^d * |D|, radial in d dims
        kc = 2 * np.pi * (n // 2) / max(lengths)
        surface = {1: 2.0, 2: 2 * np.pi, 3: 4 * np.pi}[ndim]
        volume = math.prod(lengths)
        tail = surface * volume / (2 * np.pi) ** ndim * kc ** (ndim - 2 * alpha) \
            / (2 * alpha - ndim)
        return cls(alpha=alpha, tau=tau, sigma=1.0 / math.sqrt(total + tail), ndim=ndim)


@dataclass(frozen=True)
class SpectralGaussian(GaussianMeasure):
    """A measure with a user spectrum ``lambda = spectrum(k2)``, ``k2 = |k|^2``.

    The spectrum must be non-negative and decay faster than ``|k|^(-d)``
    for ``C`` to be trace class; the constructor checks the tail exponent
    between ``|k| = 2 pi 10^3`` and ``2 pi 10^4`` and refuses a slower one.
    """

    function: Callable[[np.ndarray], np.ndarray]
    ndim: int = 2

    def __post_init__(self) -> None:
        if not callable(self.function):
            raise TypeError(f"function={self.function!r} must be callable on an array of |k|^2")
        if self.ndim not in (1, 2, 3):
            raise ValueError(f"ndim={self.ndim!r} must be 1, 2 or 3")
        k = 2 * np.pi * np.array([1e3, 1e4])
        lam = np.asarray(self.function(k**2), dtype=np.float64)
        if lam.shape != (2,) or not np.all(np.isfinite(lam)) or np.any(lam < 0):
            raise ValueError(
                "function must return finite non-negative eigenvalues of the same shape as "
                f"its argument; at |k|^2 = {k**2} it returned {lam!r}"
            )
        if lam[0] > 0:
            slope = math.log(max(lam[1], 1e-300) / lam[0]) / math.log(10.0)
            if slope >= -self.ndim:
                raise ValueError(
                    f"the spectrum decays like |k|^{slope:.2f}, which is not trace class on a "
                    f"{self.ndim}-dimensional torus: it must decay faster than |k|^-{self.ndim}"
                )

    def spectrum(self, k2: np.ndarray) -> np.ndarray:
        return np.asarray(self.function(np.asarray(k2, dtype=np.float64)), dtype=np.float64)


@dataclass(frozen=True)
class WhiteNoise(GaussianMeasure):
    """Spatial white noise, ``lambda = sigma^2`` for every mode.

    Warning
    -------
    White noise is not trace class: its pointwise variance on a grid is
    ``sigma^2 (prod(N) - #Nyquist)``, growing with the resolution. It is
    offered for comparison with pixel-space diffusion, where it is the
    usual choice, and fails the discretisation-invariance checks.
    """

    sigma: float = 1.0
    trace_class = False
    _pure_spectrum = True

    def __post_init__(self) -> None:
        _check_number(self.sigma, "sigma", positive=True)

    def spectrum(self, k2: np.ndarray) -> np.ndarray:
        return np.full(np.shape(k2), self.sigma**2)


def measure_to_config(measure: GaussianMeasure) -> dict:
    """A JSON-ready description of a built-in measure (Matern or WhiteNoise).

    A :class:`SpectralGaussian` holds an arbitrary function and cannot be
    described by a configuration; it raises ``TypeError``.
    """
    if isinstance(measure, Matern):
        return {"kind": "matern", "alpha": measure.alpha, "tau": measure.tau,
                "sigma": measure.sigma, "ndim": measure.ndim}
    if isinstance(measure, WhiteNoise):
        return {"kind": "white", "sigma": measure.sigma}
    raise TypeError(
        f"{type(measure).__name__} has no configuration form; use Matern or WhiteNoise "
        "for a measure that is saved with a model"
    )


def measure_from_config(config: dict) -> GaussianMeasure:
    """Inverse of :func:`measure_to_config`."""
    if not isinstance(config, dict) or "kind" not in config:
        raise ValueError(f"not a noise configuration: {config!r}")
    cfg = dict(config)
    kind = cfg.pop("kind")
    if kind == "matern":
        return Matern(**cfg)
    if kind == "white":
        return WhiteNoise(**cfg)
    raise ValueError(f"unknown noise kind {kind!r}; expected 'matern' or 'white'")


def fit_matern(fields: Any, grid: TorusGrid, *, n_max: int | None = None,
               unit_variance: bool = True) -> Matern:
    """The Matern measure whose spectrum best fits the per-mode variance of ``fields``.

    The anomalies of ``fields`` (shape ``(N, *S)`` or ``(N, C, *S)``, the
    sample mean removed) give a per-mode variance, averaged in shells
    ``n = round(|m|)``; ``(alpha, tau, sigma)`` minimise the squared error of
    ``log lambda`` against its log on the shells ``1 <= n <= n_max``
    (default ``min(N)/3``, the band a grid resolves after dealiasing). With
    ``unit_variance`` the amplitude is then reset so the continuum pointwise
    variance is 1 (see :meth:`Matern.unit_variance`), the scaling EDM
    preconditioning assumes.

    A noise measure whose spectrum decays like the data's leaves, at the
    end of sampling, a residual noise that is small at every wavenumber
    relative to the data; a rougher noise leaves a residual that dominates
    the high modes of smooth data.
    """
    import scipy.optimize

    if not isinstance(grid, TorusGrid):
        raise TypeError(f"grid must be a sciffd.grids.TorusGrid, got {type(grid).__name__}")
    u = np.asarray(backend.to_numpy(fields), dtype=np.float64)
    if u.ndim < grid.ndim + 1 or u.shape[-grid.ndim:] != grid.shape:
        raise ValueError(
            f"fields has shape {u.shape}; expected (N, ..., *{grid.shape}) with N >= 2"
        )
    u = u.reshape((-1,) + grid.shape)
    if u.shape[0] < 2 or not np.all(np.isfinite(u)):
        raise ValueError("fields must hold at least 2 finite fields")
    power = (np.abs(forward(u - u.mean(axis=0), grid)) ** 2).mean(axis=0)
    kappa = np.sqrt(grid.k_squared) * max(grid.lengths) / (2 * np.pi)
    shells = np.floor(kappa + 0.5).astype(np.int64).reshape(-1)
    weight = grid.hermitian_weight.reshape(-1)
    total = np.bincount(shells, weights=power.reshape(-1) * weight)
    count = np.bincount(shells, weights=weight)
    top = int(min(grid.shape) // 3) if n_max is None else int(n_max)
    n = np.arange(1, top + 1)
    n = n[(count[n] > 0) & (total[n] > 0)]
    if n.size < 3:
        raise ValueError("fields have fewer than 3 shells with variance; cannot fit a spectrum")
    target = np.log(total[n] / count[n])
    # the model's shell means over the same modes (a shell mixes |m| in [n - 1/2, n + 1/2))
    in_band = (shells >= 1) & (shells <= n[-1])
    mode_k2 = grid.k_squared.reshape(-1)[in_band]
    mode_shell = shells[in_band]
    mode_weight = weight[in_band]
    k2 = (2 * np.pi * n / max(grid.lengths)) ** 2

    def residual(p: np.ndarray) -> np.ndarray:
        log_sigma2, alpha, log_tau = p
        log_lam = log_sigma2 - alpha * np.log(np.exp(2 * log_tau) + mode_k2)
        # shell means in log space, shifted by the largest term to avoid overflow
        shift = np.max(log_lam)
        sums = np.bincount(mode_shell, weights=mode_weight * np.exp(log_lam - shift),
                           minlength=n[-1] + 1)
        return np.log(sums[n] / count[n]) + shift - target

    # the cost has several local minima (steep spectra trade alpha against tau):
    # start from a small grid of (alpha, tau) and keep the best fit
    best = None
    bounds = ([-np.inf, grid.ndim / 2 + 0.05, -10.0], [np.inf, 60.0, 10.0])
    for alpha0 in (2.0, 5.0, 10.0, 20.0):
        for tau0 in (0.5 * np.sqrt(k2[0]), 2 * np.sqrt(k2[-1])):
            start = np.array([target[0] + alpha0 * np.log(tau0**2 + k2[0]), alpha0,
                              np.log(tau0)])
            fit = scipy.optimize.least_squares(residual, start, bounds=bounds)
            if best is None or fit.cost < best.cost:
                best = fit
    log_sigma2, alpha, log_tau = best.x
    if unit_variance:
        return Matern.unit_variance(float(alpha), float(np.exp(log_tau)), grid.ndim,
                                    grid.lengths)
    return Matern(alpha=float(alpha), tau=float(np.exp(log_tau)),
                  sigma=float(np.exp(0.5 * log_sigma2)), ndim=grid.ndim)
