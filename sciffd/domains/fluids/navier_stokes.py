"""2D incompressible Navier-Stokes on the torus, in vorticity form.

On ``T^2 = [0, L_y) x [0, L_x)`` the vorticity ``w = dv/dx - du/dy`` of a
velocity ``(u, v)`` obeys

    dw/dt + u dw/dx + v dw/dy = nu Laplacian w + f,

    u = d psi / dy,     v = -d psi / dx,     -Laplacian psi = w,

with ``psi`` the stream function. With this sign convention
``dv/dx - du/dy = -Laplacian psi = w`` and ``du/dx + dv/dy = 0`` identically.
A periodic velocity has vorticity of zero mean; the mean stays zero when
``f`` has zero mean, and ``psi`` is taken with zero mean.

Discretisation
--------------
Space is pseudo-spectral on the real-FFT half spectrum, with coefficients
``w_hat[m] = (1/N^2) sum_j w(x_j) exp(-i k.x_j)`` (``norm="forward"``,
``k = 2 pi m / L``). The advection term is computed alias-free by Orszag's
2/3 rule: ``u``, ``v``, ``dw/dx`` and ``dw/dy`` are formed from the modes
``|m_i| < N_i / 3``, multiplied on the grid, and the product is truncated to
the same band. One evaluation of the explicit part
``E(w) = -(u . grad w) + f`` costs four inverse transforms (done as one
batched call) and one forward transform.

Time is an IMEX Runge-Kutta scheme of second order: Heun's method on
``E`` and Crank-Nicolson on ``L = nu Laplacian`` (multiplier
``-nu |k|^2``). Per mode, with ``a = dt nu |k|^2 / 2``,
``R = (1 - a) / (1 + a)`` and ``D = dt / (1 + a)``,

    w*      = R w^n + D E(w^n),
    w^{n+1} = w* + (D / 2) (E(w*) - E(w^n)),

that is ``w^{n+1} = R w^n + (D / 2) (E(w^n) + E(w*))``. Expanding both
stages gives ``w^{n+1} = w + dt F + dt^2/2 (L + E') F + O(dt^3)`` with
``F = L w + E(w)``, the Taylor series of the exact flow to second order.
Without advection and forcing the step is exactly ``w^{n+1} = R w^n``.

Time step
---------
The step is fixed (``time_step``). Crank-Nicolson is unconditionally
stable, so only the explicit advection limits it, through the CFL number

    c = dt (max |u| / dx + max |v| / dy),      dx = L_x / N_x, dy = L_y / N_y.

The solver computes ``c`` from the velocity of every explicit evaluation
and raises ``ValueError`` as soon as ``c > max_cfl`` (default 1) or the
state stops being finite, naming the step that would satisfy the bound.
:func:`cfl_number` gives ``c`` for a field before a run.

References
----------
Z. Li et al., Fourier neural operator for parametric partial differential
equations, ICLR 2021, arXiv:2010.08895 (the forced benchmark).
S. A. Orszag, On the elimination of aliasing in finite-difference schemes
by filtering high-wavenumber components, J. Atmos. Sci. 28 (1971) 1074,
doi:10.1175/1520-0469(1971)028<1074:OTEOAI>2.0.CO;2.
U. M. Ascher, S. J. Ruuth, R. J. Spiteri, Implicit-explicit Runge-Kutta
methods for time-dependent partial differential equations, Appl. Numer.
Math. 25 (1997) 151, doi:10.1016/S0168-9274(97)00056-1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ... import backend
from ...grids import TorusGrid
from ...spectral import as_array_like, check_field, dealias_mask, derivative_multiplier

__all__ = [
    "BENCHMARK_FORCING",
    "NavierStokes2D",
    "SinusoidalForcing",
    "cfl_number",
    "stream_function",
    "velocity",
]


def _is_real(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer,
                                                              np.floating))


@dataclass(frozen=True)
class SinusoidalForcing:
    """``f(x, y) = amplitude (sin theta + cos theta)``, ``theta = 2 pi (m_x x + m_y y)``.

    Parameters
    ----------
    amplitude : float
        The amplitude (0.1 in the benchmark).
    mode_x, mode_y : int
        The integers ``m_x``, ``m_y``; ``f`` is periodic on ``[0, L_x) x
        [0, L_y)`` when ``m_x L_x`` and ``m_y L_y`` are integers.

    Examples
    --------
    >>> BENCHMARK_FORCING.expression
    '0.1 * (sin(2*pi*(x + y)) + cos(2*pi*(x + y)))'
    """

    amplitude: float = 0.1
    mode_x: int = 1
    mode_y: int = 1

    def __post_init__(self) -> None:
        if not _is_real(self.amplitude) or not math.isfinite(self.amplitude):
            raise ValueError(f"amplitude={self.amplitude!r} must be a finite real number")
        for name in ("mode_x", "mode_y"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{name}={value!r} must be an integer")

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        theta = 2 * np.pi * (self.mode_x * x + self.mode_y * y)
        return self.amplitude * (np.sin(theta) + np.cos(theta))

    @property
    def expression(self) -> str:
        """The formula as text, for dataset attributes."""
        terms = []
        for m, name in ((self.mode_x, "x"), (self.mode_y, "y")):
            if m:
                terms.append(name if m == 1 else f"{m}*{name}")
        arg = " + ".join(terms) or "0"
        return f"{self.amplitude!r} * (sin(2*pi*({arg})) + cos(2*pi*({arg})))"


#: the forcing of the neural-operator benchmark, ``0.1 (sin 2 pi (x + y) + cos 2 pi (x + y))``
BENCHMARK_FORCING = SinusoidalForcing(amplitude=0.1, mode_x=1, mode_y=1)


def _check_grid(grid: Any) -> TorusGrid:
    if not isinstance(grid, TorusGrid):
        raise TypeError(f"grid must be a sciffd.grids.TorusGrid, got {type(grid).__name__}")
    if grid.ndim != 2:
        raise ValueError(
            f"grid={grid!r} has {grid.ndim} dimension(s); the vorticity form needs a 2D grid"
        )
    return grid


def _streamfunction_multiplier(grid: TorusGrid) -> np.ndarray:
    """``1 / |k|^2`` on the half spectrum, 0 at ``k = 0``: ``psi_hat = w_hat / |k|^2``."""
    k2 = grid.k_squared
    out = np.zeros_like(k2)
    out[k2 > 0] = 1.0 / k2[k2 > 0]
    return out


def _velocity_multipliers(grid: TorusGrid) -> tuple[np.ndarray, np.ndarray]:
    """Multipliers taking ``w_hat`` to ``u_hat = i k_y psi_hat`` and ``v_hat = -i k_x psi_hat``."""
    inv_k2 = _streamfunction_multiplier(grid)
    d_dy = derivative_multiplier(grid, axis=0)
    d_dx = derivative_multiplier(grid, axis=1)
    return d_dy * inv_k2, -d_dx * inv_k2


def stream_function(w: Any, grid: TorusGrid) -> Any:
    """The zero-mean stream function ``psi`` with ``-Laplacian psi = w``.

    Parameters
    ----------
    w : array, shape ``(..., N_y, N_x)``
        Vorticity ``w`` on ``grid``; its mean is ignored.
    grid : TorusGrid
        A 2D grid.

    Returns
    -------
    psi : array, the shape, namespace and precision of ``w``
    """
    grid = _check_grid(grid)
    check_field(w, grid, "w")
    w_hat = backend.rfftn(w, 2)
    return backend.irfftn(w_hat * as_array_like(_streamfunction_multiplier(grid), w_hat),
                          grid.shape)


def velocity(w: Any, grid: TorusGrid) -> tuple[Any, Any]:
    """The velocity ``(u, v) = (d psi/dy, -d psi/dx)`` of the vorticity ``w``.

    Parameters
    ----------
    w : array, shape ``(..., N_y, N_x)``
        Vorticity ``w`` on ``grid``; its mean is ignored.
    grid : TorusGrid
        A 2D grid.

    Returns
    -------
    u, v : arrays, each the shape, namespace and precision of ``w``
        The ``x`` and ``y`` components. Both are divergence free, and
        ``dv/dx - du/dy`` returns ``w`` minus its mean (without the Nyquist
        modes of even axes, which odd derivatives drop).

    Examples
    --------
    >>> import numpy as np
    >>> from sciffd.grids import torus
    >>> g = torus(16)
    >>> y, x = g.mesh()
    >>> u, v = velocity(np.sin(2 * np.pi * x), g)
    >>> bool(np.allclose(v, -np.cos(2 * np.pi * x) / (2 * np.pi)))
    True
    """
    grid = _check_grid(grid)
    check_field(w, grid, "w")
    w_hat = backend.rfftn(w, 2)
    mu, mv = _velocity_multipliers(grid)
    u = backend.irfftn(w_hat * as_array_like(mu, w_hat), grid.shape)
    v = backend.irfftn(w_hat * as_array_like(mv, w_hat), grid.shape)
    return u, v


def cfl_number(w: Any, grid: TorusGrid, time_step: float) -> float:
    """``dt (max |u| / dx + max |v| / dy)`` of the vorticity ``w`` (over all leading axes)."""
    u, v = velocity(w, grid)
    u, v = backend.to_numpy(u), backend.to_numpy(v)
    dy, dx = grid.spacing
    return float(time_step * (np.abs(u).max() / dx + np.abs(v).max() / dy))


@dataclass(frozen=True)
class _Operators:
    """Half-spectrum multipliers of one solver, built once."""

    fields: np.ndarray  # (4, 1, *K) complex: w_hat -> u, v, dw/dx, dw/dy (2/3 band)
    minus_band: np.ndarray  # (*K,) float: -1 inside the 2/3 band, 0 outside
    forcing: np.ndarray | None  # (*K,) complex f_hat, or None
    ratio: np.ndarray  # (*K,) float: R = (1 - a) / (1 + a)
    gain: np.ndarray  # (*K,) float: D = dt / (1 + a)


@dataclass(frozen=True)
class NavierStokes2D:
    """Pseudo-spectral solver of forced 2D Navier-Stokes in vorticity form.

    See the module docstring for the equations, the sign convention and the
    scheme (Heun on advection and forcing, Crank-Nicolson on viscosity, 2/3
    dealiasing).

    Parameters
    ----------
    grid : TorusGrid
        A 2D grid ``(N_y, N_x)`` with periods ``(L_y, L_x)``.
    viscosity : float
        Kinematic viscosity ``nu > 0``.
    forcing : callable or None
        ``f(x, y)``, evaluated once on the grid's mesh (``y, x = grid.mesh()``)
        and held fixed in time; a :class:`SinusoidalForcing` such as
        :data:`BENCHMARK_FORCING`, any function of the mesh arrays, or None.
        Its mean is removed (a forcing with nonzero mean has no periodic
        solution of zero-mean vorticity).
    time_step : float
        The fixed step ``dt > 0``. It must keep the CFL number of the flow
        at most ``max_cfl`` (checked during :meth:`run`).
    max_cfl : float
        Largest CFL number accepted, default 1.

    Examples
    --------
    >>> from sciffd.grids import torus
    >>> from sciffd.noise import Matern
    >>> g = torus(32)
    >>> ns = NavierStokes2D(g, viscosity=1e-3, forcing=BENCHMARK_FORCING, time_step=0.01)
    >>> w0 = Matern(alpha=2.5, tau=7.0, sigma=7.0**1.5).sample(g, 2, seed=0)[:, 0]
    >>> w0 = w0 - w0.mean(axis=(-2, -1), keepdims=True)
    >>> ns.run(w0, t_final=1.0, snapshot_times=[0.5, 1.0]).shape
    (2, 2, 32, 32)
    """

    grid: TorusGrid
    viscosity: float
    forcing: Callable[[np.ndarray, np.ndarray], np.ndarray] | None
    time_step: float
    max_cfl: float = 1.0
    _ops: _Operators = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_grid(self.grid)
        for name in ("viscosity", "time_step", "max_cfl"):
            value = getattr(self, name)
            if not _is_real(value):
                raise TypeError(f"{name}={value!r} must be a real number")
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}={value!r} must be finite and positive")
            object.__setattr__(self, name, float(value))
        if self.forcing is not None and not callable(self.forcing):
            raise TypeError(
                f"forcing must be a callable f(x, y) or None, got {type(self.forcing).__name__}; "
                "for values given on the grid use `forcing=lambda x, y: values`"
            )
        object.__setattr__(self, "_ops", self._build_operators())

    def _build_operators(self) -> _Operators:
        grid, dt, nu = self.grid, self.time_step, self.viscosity
        band = dealias_mask(grid)
        mu, mv = _velocity_multipliers(grid)
        d_dy = derivative_multiplier(grid, axis=0)
        d_dx = derivative_multiplier(grid, axis=1)
        fields = np.stack([mu, mv, d_dx, d_dy]) * band
        a = 0.5 * dt * nu * grid.k_squared
        return _Operators(
            fields=fields[:, None].astype(np.complex128),
            minus_band=-band.astype(np.float64),
            forcing=self._forcing_spectrum(),
            ratio=(1 - a) / (1 + a),
            gain=dt / (1 + a),
        )

    def _forcing_spectrum(self) -> np.ndarray | None:
        if self.forcing is None:
            return None
        y, x = self.grid.mesh()
        values = np.asarray(self.forcing(x, y), dtype=np.float64)
        try:
            values = np.broadcast_to(values, self.grid.shape)
        except ValueError:
            raise ValueError(
                f"forcing returned shape {values.shape}, which does not broadcast to the grid "
                f"shape {self.grid.shape}"
            ) from None
        if not np.all(np.isfinite(values)):
            raise ValueError("forcing returned NaN or infinite values on the grid")
        f_hat = backend.rfftn(np.ascontiguousarray(values), 2)
        f_hat[0, 0] = 0.0
        return f_hat

    # -- time stepping -------------------------------------------------------
    def _explicit(self, w_hat: np.ndarray, out: np.ndarray, ws: _Workspace) -> float:
        """Write ``E(w) = -(u . grad w) + f`` into ``out``; return the CFL number."""
        ops = self._ops
        np.multiply(w_hat[None], ops.fields, out=ws.spectra)
        u, v, w_x, w_y = ws.inverse()
        dy, dx = self.grid.spacing
        cfl = self.time_step * (max(u.max(), -u.min()) / dx + max(v.max(), -v.min()) / dy)
        u *= w_x
        v *= w_y
        u += v
        ws.forward(u, out)
        out *= ops.minus_band
        if ops.forcing is not None:
            out += ops.forcing
        return float(cfl)

    def _check_cfl(self, cfl: float, step: int) -> None:
        if cfl <= self.max_cfl:
            return
        t = step * self.time_step
        if not math.isfinite(cfl):
            raise ValueError(
                f"the solution became NaN or infinite at t={t:g}; "
                f"time_step={self.time_step:g} is unstable for this flow"
            )
        suggested = self.time_step * 0.5 * self.max_cfl / cfl
        raise ValueError(
            f"time_step={self.time_step:g} is unstable for this flow: the CFL number "
            f"dt (max|u|/dx + max|v|/dy) reached {cfl:.4g} at t={t:g}, above "
            f"max_cfl={self.max_cfl:g}; use time_step <= {suggested:.3g} "
            f"(half the bound), e.g. dataclasses.replace(solver, time_step={suggested:.2g})"
        )

    def _integrate(self, w_hat: np.ndarray, n_steps: int, record: Sequence[int],
                   on_step: Callable[[], None] | None = None) -> list[np.ndarray]:
        """Advance ``w_hat`` in place by ``n_steps``; return copies at the ``record`` steps."""
        ops = self._ops
        ws = _Workspace(len(w_hat), self.grid.shape)
        e0 = np.empty_like(w_hat)
        e1 = np.empty_like(w_hat)
        half_gain = 0.5 * ops.gain
        wanted = list(record)
        out = []
        while wanted and wanted[0] == 0:
            out.append(w_hat.copy())
            wanted.pop(0)
        for step in range(n_steps):
            # w* = R w + D E(w)
            self._check_cfl(self._explicit(w_hat, e0, ws), step)
            w_hat *= ops.ratio
            np.multiply(ops.gain, e0, out=e1)
            w_hat += e1
            # w_new = w* + (D/2) (E(w*) - E(w))
            self._check_cfl(self._explicit(w_hat, e1, ws), step)
            e1 -= e0
            e1 *= half_gain
            w_hat += e1
            while wanted and wanted[0] == step + 1:
                out.append(w_hat.copy())
                wanted.pop(0)
            if on_step is not None:
                on_step()
        if not np.all(np.isfinite(w_hat)):
            self._check_cfl(math.inf, n_steps)
        return out

    def step_count(self, t: float, name: str = "t") -> int:
        """The number of steps to time ``t``; ``t`` must be a multiple of ``time_step``."""
        if not _is_real(t) or not math.isfinite(t) or t < 0:
            raise ValueError(f"{name}={t!r} must be a finite, non-negative time")
        n = round(t / self.time_step)
        if abs(n * self.time_step - t) > 1e-9 * max(1.0, abs(t)):
            raise ValueError(
                f"{name}={t!r} is not a multiple of time_step={self.time_step!r}; the solver "
                "takes fixed steps, so choose times that are whole numbers of steps"
            )
        return int(n)

    def _check_initial(self, w0: Any) -> np.ndarray:
        """Validate an initial vorticity ``(B, N_y, N_x)`` and return it as float64 numpy."""
        if _is_torch_or_cupy(w0):
            raise NotImplementedError(
                "NavierStokes2D runs on numpy arrays only; move the field with "
                "sciffd.backend.to_numpy(w0) first"
            )
        w0 = np.asarray(w0)
        if not (np.issubdtype(w0.dtype, np.floating) or np.issubdtype(w0.dtype, np.integer)):
            raise TypeError(f"w0 must be a real array, got dtype {w0.dtype}")
        if w0.ndim != 3 or w0.shape[1:] != self.grid.shape:
            raise ValueError(
                f"w0 has shape {w0.shape}; expected (B, {self.grid.shape[0]}, "
                f"{self.grid.shape[1]}): a batch of vorticity fields on the grid "
                "(use w0[None] for a single field)"
            )
        w0 = w0.astype(np.float64, copy=False)
        bad = ~np.isfinite(w0).all(axis=(1, 2))
        if bad.any():
            raise ValueError(
                f"w0 contains NaN or infinite values (batch members {np.flatnonzero(bad)[:8]})"
            )
        mean = w0.mean(axis=(1, 2))
        rms = np.sqrt((w0**2).mean(axis=(1, 2)))
        off = np.abs(mean) > 1e-6 * rms
        if off.any():
            b = int(np.flatnonzero(off)[0])
            raise ValueError(
                f"w0 has nonzero mean ({mean[b]:.3g} in batch member {b}, rms {rms[b]:.3g}); "
                "the vorticity of a periodic velocity has zero mean: subtract it with "
                "w0 - w0.mean(axis=(-2, -1), keepdims=True)"
            )
        return w0

    def run(self, w0: Any, t_final: float, snapshot_times: Sequence[float] | None = None,
            *, progress: Any = False) -> np.ndarray:
        """Integrate from ``w(0) = w0`` to ``t_final`` and return snapshots.

        Parameters
        ----------
        w0 : array, shape ``(B, N_y, N_x)``
            Initial vorticity of ``B`` independent flows, advanced together;
            finite, with zero mean per member.
        t_final : float
            End time, a multiple of ``time_step``.
        snapshot_times : sequence of float, optional
            Strictly increasing times in ``[0, t_final]``, each a multiple of
            ``time_step``; default ``[t_final]``.
        progress : bool or tqdm bar
            True shows a tqdm bar over the steps; an existing bar (any object
            with ``update``) is advanced by ``B`` per step instead.

        Returns
        -------
        w : numpy array, shape ``(B, T, N_y, N_x)``
            Vorticity at the ``T`` snapshot times, in the precision of ``w0``
            (float64 for integer input). The computation is in float64.

        Raises
        ------
        ValueError
            For a bad ``w0`` (shape, NaN, nonzero mean), bad times, or when
            the CFL number exceeds ``max_cfl`` during the run.
        """
        out_dtype = np.asarray(w0).dtype if not _is_torch_or_cupy(w0) else None
        w0 = self._check_initial(w0)
        n_steps = self.step_count(t_final, "t_final")
        record = self._snapshot_steps(snapshot_times, t_final, n_steps)
        own_bar = progress is True
        bar = progress if hasattr(progress, "update") else None
        if own_bar:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_steps, desc="Navier-Stokes 2D", unit="step")
        try:
            w_hat = backend.rfftn(w0, 2)
            snaps = self._integrate(w_hat, n_steps, record,
                                    None if bar is None else lambda: bar.update(len(w0)))
        finally:
            if own_bar:
                bar.close()
        w = backend.irfftn(np.stack(snaps, axis=1), self.grid.shape)
        if out_dtype is not None and np.issubdtype(out_dtype, np.floating):
            w = w.astype(out_dtype, copy=False)
        return w

    def _snapshot_steps(self, snapshot_times: Sequence[float] | None, t_final: float,
                        n_steps: int) -> list[int]:
        if snapshot_times is None:
            return [n_steps]
        times = np.atleast_1d(np.asarray(snapshot_times, dtype=np.float64))
        if times.ndim != 1 or times.size == 0:
            raise ValueError(
                f"snapshot_times={snapshot_times!r} must be a non-empty 1D sequence of times"
            )
        steps = [self.step_count(float(t), "snapshot_times entry") for t in times]
        if any(b <= a for a, b in zip(steps[:-1], steps[1:], strict=True)):
            raise ValueError(f"snapshot_times={times.tolist()} must be strictly increasing")
        if steps[-1] > n_steps:
            raise ValueError(
                f"snapshot_times={times.tolist()} go beyond t_final={t_final!r}; every "
                "snapshot time must lie in [0, t_final]"
            )
        return steps


class _Workspace:
    """Buffers of one run, so that a step allocates no large array.

    The transforms are ``backend.rfftn`` / ``backend.irfftn`` of the last two
    axes written as one-axis passes into these buffers. Fresh arrays of a
    megabyte or more are paged in anew on every step (the allocator returns
    them to the system), which made a step 2.4-3x slower on the reference
    machine (64^2, batch 8: 279 against 118 us per field and evaluation).
    With numpy >= 2 the passes are ``numpy.fft`` with ``out=``; older numpy
    falls back to ``scipy.fft`` and copies.
    """

    def __init__(self, batch: int, shape: tuple[int, int]) -> None:
        n_y, n_x = shape
        self.n_x = n_x
        self.spectra = np.empty((4, batch, n_y, n_x // 2 + 1), dtype=np.complex128)
        self.fields = np.empty((4, batch, n_y, n_x), dtype=np.float64)

    def inverse(self) -> np.ndarray:
        """Grid values of the four spectra in ``self.spectra`` (overwritten)."""
        if _FFT_OUT:
            np.fft.ifft(self.spectra, axis=-2, norm="forward", out=self.spectra)
            np.fft.irfft(self.spectra, n=self.n_x, axis=-1, norm="forward", out=self.fields)
        else:
            self.fields[...] = backend.irfftn(self.spectra, self.fields.shape[-2:])
        return self.fields

    def forward(self, f: np.ndarray, out: np.ndarray) -> None:
        """Half-spectrum coefficients of ``f`` (``norm="forward"``) into ``out``."""
        if _FFT_OUT:
            np.fft.rfft(f, axis=-1, norm="forward", out=out)
            np.fft.fft(out, axis=-2, norm="forward", out=out)
        else:
            out[...] = backend.rfftn(f, 2)


#: whether numpy.fft takes ``out=`` (numpy >= 2.0)
_FFT_OUT = np.lib.NumpyVersion(np.__version__) >= "2.0.0"


def _is_torch_or_cupy(x: Any) -> bool:
    module = type(x).__module__
    return module.startswith(("torch", "cupy"))
