"""The exact score of a Gaussian mixture, as a model.

If the data are a mixture of ``K`` Gaussians,

    u_0 ~ sum_j w_j N(m_j, Q_j),

with every ``Q_j`` and the noise covariance ``C`` diagonal in the Fourier
basis (eigenvalues ``q_jk`` and ``c_k``), then given the component ``j``
the noised field ``u_t = a u_0 + s xi`` is ``N(a m_j, Sigma_j)`` with
``Sigma_j = a^2 Q_j + s^2 C`` (eigenvalues ``lambda_jk = a^2 q_jk + s^2
c_k``), and the denoiser is the posterior-weighted mix of the component
denoisers,

    D(u) = sum_j pi_j(u) D_j(u),
    D_j_hat[k] = m_j_hat[k] + a q_jk / lambda_jk (u_hat[k] - a m_j_hat[k]),
    pi_j(u) = w_j N(u; a m_j, Sigma_j) / sum_i w_i N(u; a m_i, Sigma_i).

The component densities are those of the truncation to the modes the grid
represents (as in :meth:`sciffd.noise.GaussianMeasure.log_density`),

    log N(u; a m_j, Sigma_j) = -1/2 sum_k h_k |u_hat[k] - a m_j_hat[k]|^2 / lambda_jk
                               - 1/2 sum_k n_k log(2 pi v_jk),

with ``h_k`` the Hermitian weight of a half-spectrum entry, ``n_k`` its
real degrees of freedom (2 for ``h_k = 2``, else 1) and ``v_jk`` the
variance of each (``lambda_jk / 2``, or ``lambda_jk`` for the mean mode).
The weights are a softmax of these log-densities, computed in float64
with the log-sum-exp shift, so they stay finite however far ``u`` lies
from every component: one term is always ``exp(0) = 1``.

As ``N`` grows the log-densities grow, but their differences converge when
the components are equivalent measures (Feldman-Hajek: means in the
Cameron-Martin space of ``Q_j``, and ``sum_k (q_ik / q_jk - 1)^2`` finite,
for example Matern measures with the same ``alpha`` and ``sigma`` and
different ``tau``); then the model is discretisation invariant like
:class:`~sciffd.models.GaussianScore`. With mutually singular components
the weights become exactly 0 or 1 at fine grids.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import backend
from ..grids import TorusGrid
from ..noise import GaussianMeasure, _check_seed, _member_ids
from ..sde import VPProcess
from ..spectral import as_array_like, check_field, forward, inverse
from .base import ScoreModel, check_noise, check_process

__all__ = ["GaussianMixtureScore"]


def _check_components(components: Any) -> tuple[GaussianMeasure, ...]:
    if isinstance(components, GaussianMeasure):
        raise TypeError(
            "components must be a sequence of GaussianMeasure; for one Gaussian pass "
            "[measure] (or use GaussianScore)"
        )
    try:
        found = tuple(components)
    except TypeError:
        raise TypeError(
            f"components must be a sequence of GaussianMeasure, got {type(components).__name__}"
        ) from None
    if not found:
        raise ValueError("components is empty; a mixture needs at least one component")
    for i, q in enumerate(found):
        if not isinstance(q, GaussianMeasure):
            raise TypeError(
                f"components[{i}] must be a GaussianMeasure, got {type(q).__name__}"
            )
    return found


def _check_weights(weights: Any, k: int) -> np.ndarray:
    if weights is None:
        return np.full(k, 1.0 / k)
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"weights={weights!r} must be a sequence of {k} numbers") from None
    if w.shape != (k,):
        raise ValueError(f"weights={weights!r} must hold one weight per component ({k})")
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError(f"weights={weights!r} must be finite and positive")
    if not math.isclose(float(w.sum()), 1.0, rel_tol=0, abs_tol=1e-9):
        raise ValueError(
            f"weights={weights!r} sum to {float(w.sum())!r}; they must sum to 1 "
            "(divide them by their sum)"
        )
    return w


def _check_means(means: Any, k: int) -> tuple[Callable | None, ...]:
    if means is None:
        return (None,) * k
    if callable(means):
        raise TypeError(f"means must be a sequence of {k} callables (or None), one per "
                        "component, not a single callable")
    found = tuple(means)
    if len(found) != k:
        raise ValueError(f"means has {len(found)} entries; expected one per component ({k})")
    for i, m in enumerate(found):
        if m is not None and not callable(m):
            raise TypeError(
                f"means[{i}] must be None or a callable mean(grid) -> array (C, *S), got "
                f"{type(m).__name__}"
            )
    return found


def _times(t: Any, batch: int) -> tuple[np.ndarray, bool]:
    """The times as float64 ``(B,)`` (or ``(1,)`` for a scalar) and whether scalar."""
    if isinstance(t, bool):
        raise TypeError(f"t={t!r} must be a float or an array of shape (B,)")
    if isinstance(t, (int, float, np.integer, np.floating)) or getattr(t, "ndim", None) == 0:
        return np.array([float(t)]), True
    tt = np.asarray(backend.to_numpy(t), dtype=np.float64).reshape(-1)
    if tuple(t.shape) not in ((1,), (batch,)):
        raise ValueError(
            f"t has shape {tuple(t.shape)}; expected a float or one time per sample, "
            f"shape ({batch},)"
        )
    return tt, tt.size == 1


class GaussianMixtureScore(ScoreModel):
    """Exact denoiser of mixture-of-Gaussians data under ``(process, noise)``.

    Parameters
    ----------
    components : sequence of GaussianMeasure
        The covariances ``Q_1 .. Q_K`` of the components.
    noise : GaussianMeasure
        The noise covariance ``C``.
    weights : sequence of float, optional
        ``w_1 .. w_K``, positive, summing to 1; default uniform.
    process : VPProcess, optional
        The forward process (default :class:`~sciffd.sde.VPProcess()`).
    means : sequence of callables or None, optional
        ``means[j](grid)`` returns the mean field ``m_j`` on a grid, shape
        ``(C, *S)``; ``None`` (for the whole argument or an entry) is zero.
    channels : int
        Number of channels; given the component, the channels are
        independent, each with covariance ``Q_j``.

    Examples
    --------
    >>> import numpy as np
    >>> from sciffd.grids import torus
    >>> from sciffd.noise import Matern
    >>> g = torus(16)
    >>> bump = lambda grid: np.cos(2 * np.pi * grid.mesh()[1])[None]
    >>> model = GaussianMixtureScore(
    ...     [Matern(3.0, 4.0), Matern(3.0, 6.0)], Matern(2.0, 1.0),
    ...     weights=[0.25, 0.75], means=[bump, None])
    >>> model.denoise(np.zeros((2, 1, 16, 16)), 0.5, g).shape
    (2, 1, 16, 16)
    >>> round(float(model.posterior_weights(np.zeros((1, 1, 16, 16)), 0.5, g).sum()), 12)
    1.0
    """

    def __init__(
        self,
        components: Sequence[GaussianMeasure],
        noise: GaussianMeasure,
        weights: Sequence[float] | None = None,
        process: VPProcess | None = None,
        means: Sequence[Callable[[TorusGrid], np.ndarray] | None] | None = None,
        channels: int = 1,
    ) -> None:
        self.components = _check_components(components)
        k = len(self.components)
        self.weights = _check_weights(weights, k)
        self.noise = check_noise(noise)
        self.process = check_process(VPProcess() if process is None else process)
        self.means = _check_means(means, k)
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels={channels!r} must be a positive integer")
        self.channels = channels
        self.backend = "numpy"

    @property
    def n_components(self) -> int:
        """The number of components ``K``."""
        return len(self.components)

    # -- spectral pieces (numpy, float64) -----------------------------------
    def mean_spectra(self, grid: TorusGrid) -> np.ndarray:
        """``m_j_hat`` of every component, shape ``(K, C, *K_s)`` (complex128)."""
        out = np.zeros((self.n_components, self.channels) + grid.spectral_shape,
                       dtype=np.complex128)
        for j, mean in enumerate(self.means):
            if mean is None:
                continue
            m = np.asarray(mean(grid), dtype=np.float64)
            if m.shape != (self.channels,) + grid.shape:
                raise ValueError(
                    f"means[{j}](grid) returned shape {m.shape}, expected "
                    f"{(self.channels,) + grid.shape}"
                )
            out[j] = np.fft.rfftn(m, axes=tuple(range(-grid.ndim, 0)), norm="forward")
        return out

    def marginal_eigenvalues(self, t: float, grid: TorusGrid) -> np.ndarray:
        """``lambda_jk = a^2 q_jk + s^2 c_k``, shape ``(K, *K_s)``; at ``t = 0`` the ``q_jk``."""
        a, s = float(self.process.a(t)), float(self.process.s(t))
        c = self.noise.eigenvalues(grid)
        return np.stack([a * a * q.eigenvalues(grid) + s * s * c for q in self.components])

    def gains(self, t: float, grid: TorusGrid) -> np.ndarray:
        """Per-mode factors ``a q_jk / lambda_jk`` of the component denoisers, ``(K, *K_s)``."""
        a = float(self.process.a(t))
        lam = self.marginal_eigenvalues(t, grid)
        q = np.stack([c.eigenvalues(grid) for c in self.components])
        out = np.zeros_like(lam)
        ok = lam > 0
        out[ok] = a * q[ok] / lam[ok]
        return out

    def _density_terms(self, t: float, grid: TorusGrid) -> tuple[np.ndarray, np.ndarray]:
        """Quadratic weights ``h_k / lambda_jk`` and constants ``log w_j - 1/2 sum n log 2 pi v``.

        Modes where some component has ``lambda_jk = 0`` are left out for every
        component (with positive noise this happens only on Nyquist modes, or at
        ``t = 0`` for a component without a mean mode).
        """
        lam = self.marginal_eigenvalues(t, grid)
        active = np.all(lam > 0, axis=0)
        h = grid.hermitian_weight
        n_dof = np.where(h == 2.0, 2.0, 1.0) * active
        var = lam / 2
        zero = (slice(None),) + (0,) * grid.ndim
        var[zero] = lam[zero]
        safe = np.where(active, lam, 1.0)
        quad = np.where(active, h / safe, 0.0)
        logs = np.log(2 * np.pi * np.where(active, var, 1.0))
        const = np.log(self.weights) - 0.5 * self.channels * (n_dof * logs).reshape(
            self.n_components, -1).sum(axis=1)
        return quad, const

    # -- the model ---------------------------------------------------------
    def component_log_densities(self, u: Any, t: Any, grid: TorusGrid) -> Any:
        """``log w_j + log N(u; a m_j, Sigma_j)`` for every field and component.

        Parameters
        ----------
        u : array, shape ``(B, C, *S)``
            Noised fields ``u_t`` (numpy, torch or cupy).
        t : float or array ``(B,)``
            Times; ``t = 0`` gives the data law itself (``lambda = q``).
        grid : TorusGrid

        Returns
        -------
        array, shape ``(B, K)``, float64, in the namespace of ``u``
        """
        check_field(u, grid)
        self._check_layout(u, grid)
        u_hat = forward(u, grid)
        return self._log_densities(u_hat, t, grid)

    def _log_densities(self, u_hat: Any, t: Any, grid: TorusGrid) -> Any:
        xp = backend.array_namespace(u_hat)
        tt, scalar = _times(t, u_hat.shape[0])
        if scalar:
            return self._log_densities_at(u_hat, float(tt[0]), grid)
        # one time per sample: each sample with the terms of its own time
        return xp.concat([self._log_densities_at(u_hat[b:b + 1], float(tt[b]), grid)
                          for b in range(u_hat.shape[0])], axis=0)

    def _log_densities_at(self, u_hat: Any, t: float, grid: TorusGrid) -> Any:
        xp = backend.array_namespace(u_hat)
        quad, const = self._density_terms(t, grid)
        a = float(self.process.a(t))
        means = self.mean_spectra(grid)
        space = tuple(range(-grid.ndim - 1, 0))
        columns = []
        for j in range(self.n_components):
            d = u_hat - as_array_like(a * means[j], u_hat)
            power = xp.astype(xp.real(d) ** 2 + xp.imag(d) ** 2, xp.float64)
            columns.append(const[j] - 0.5 * xp.sum(power * as_array_like(quad[j], power),
                                                   axis=space))
        return xp.stack(columns, axis=-1)

    def posterior_weights(self, u: Any, t: Any, grid: TorusGrid) -> Any:
        """``pi_j(u)``, the posterior probability of each component given ``u_t = u``.

        A softmax of :meth:`component_log_densities` with the log-sum-exp
        shift; shape ``(B, K)``, float64, rows summing to one.
        """
        logp = self.component_log_densities(u, t, grid)
        return _softmax(logp)

    def denoise(self, u: Any, t: Any, grid: TorusGrid) -> Any:
        """``E[u_0 | u_t = u] = sum_j pi_j(u) D_j(u)`` for ``u`` of shape ``(B, C, *S)``."""
        check_field(u, grid)
        self._check_layout(u, grid)
        u_hat = forward(u, grid)
        xp = backend.array_namespace(u_hat)
        batch = u_hat.shape[0]
        tt, scalar = _times(t, batch)
        pi = _softmax(self._log_densities(u_hat, t, grid))
        means = self.mean_spectra(grid)
        # per time: gain G_j and offset m_j (1 - a G_j), both (K, C, *K_s)
        times = tt[:1] if scalar else tt
        gains = np.stack([self.gains(float(ti), grid) for ti in times])
        a = np.asarray([float(self.process.a(float(ti))) for ti in times])
        gains = gains[:, :, None]
        offsets = means[None] * (1 - a.reshape(-1, 1, 1, *(1,) * grid.ndim) * gains)
        pi_r = xp.reshape(pi, (batch, self.n_components) + (1,) * (grid.ndim + 1))
        g = as_array_like(gains, u_hat.real)
        o = as_array_like(offsets, u_hat)
        pi_g = xp.astype(pi_r, g.dtype)
        pi_o = xp.astype(pi_r, o.dtype)
        gain = xp.sum(pi_g * g, axis=1)
        offset = xp.sum(pi_o * o, axis=1)
        return inverse(offset + gain * u_hat, grid)

    def _check_layout(self, u: Any, grid: TorusGrid) -> None:
        expected = (self.channels,) + grid.shape
        if len(u.shape) != grid.ndim + 2 or tuple(u.shape[1:]) != expected:
            raise ValueError(
                f"u has shape {tuple(u.shape)}; expected (B, {', '.join(map(str, expected))})"
            )

    # -- exact draws of the data -------------------------------------------------
    def sample_data(self, grid: TorusGrid, members: int | Sequence[int] = 1, seed: int = 0, *,
                    dtype: Any = np.float64) -> tuple[np.ndarray, np.ndarray]:
        """Exact draws ``u_0`` of the mixture, with their components.

        Member ``m`` of ``seed`` takes its component from
        ``numpy.random.default_rng(SeedSequence(seed, spawn_key=(m,)))`` and its
        field from ``components[j].sample(grid, [m], seed, stream=j + 1)``
        (nested noise), plus the mean: the same member is the same field at
        every resolution (up to the modes only the finer grid has) and in any
        batch.

        Parameters
        ----------
        grid : TorusGrid
        members : int or sequence of int
            A count ``M`` or the member ids.
        seed : int
        dtype : numpy dtype
            ``float64`` (default) or ``float32``.

        Returns
        -------
        u : numpy array, shape ``(M, C, *S)``
        labels : numpy int64 array, shape ``(M,)``
            The component ``j`` of each member.
        """
        ids = _member_ids(members)
        seed = _check_seed(seed)
        labels = np.array([
            np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(int(m),))).choice(
                self.n_components, p=self.weights) for m in ids], dtype=np.int64)
        out = np.empty((ids.size, self.channels) + grid.shape, dtype=dtype)
        for j, q in enumerate(self.components):
            chosen = ids[labels == j]
            if chosen.size == 0:
                continue
            fields = q.sample(grid, chosen, seed, channels=self.channels, stream=j + 1,
                              dtype=np.float64)
            if self.means[j] is not None:
                fields = fields + np.asarray(self.means[j](grid), dtype=np.float64)
            out[labels == j] = fields
        return out, labels

    def config(self) -> dict:
        return {"model": "GaussianMixtureScore",
                "components": [repr(q) for q in self.components],
                "weights": [float(w) for w in self.weights], "noise": repr(self.noise),
                **self.process.to_config()}


def _softmax(logp: Any) -> Any:
    xp = backend.array_namespace(logp)
    shifted = logp - xp.max(logp, axis=-1, keepdims=True)
    e = xp.exp(shifted)
    return e / xp.sum(e, axis=-1, keepdims=True)
