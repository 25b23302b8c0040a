"""The exact score of Gaussian data, as a model.

If the data are ``u_0 ~ N(m, Q)`` and the noise is ``xi ~ N(0, C)``, with
``Q`` and ``C`` both diagonal in the Fourier basis (eigenvalues ``q_k`` and
``c_k``), the noised field ``u_t = a u_0 + s xi`` is Gaussian,
``N(a m, a^2 Q + s^2 C)``, and its denoiser is, mode by mode,

    D_hat[k] = m_hat[k] + a q_k / (a^2 q_k + s^2 c_k) (u_hat[k] - a m_hat[k]).

This is the truth against which samplers and conditional samplers are
tested, at any resolution, from one model object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import backend
from ..grids import TorusGrid
from ..noise import GaussianMeasure
from ..sde import VPProcess
from ..spectral import as_array_like, check_field, forward, inverse
from .base import ScoreModel, _per_sample, check_noise, check_process

__all__ = ["GaussianScore"]


class GaussianScore(ScoreModel):
    """Exact denoiser of ``N(m, Q)`` data under the process ``(process, noise)``.

    Parameters
    ----------
    data : GaussianMeasure
        The data covariance ``Q``.
    noise : GaussianMeasure
        The noise covariance ``C``.
    process : VPProcess, optional
        The forward process (default :class:`~sciffd.sde.VPProcess()`).
    mean : callable, optional
        ``mean(grid)`` returns the mean field ``m`` on a grid, shape
        ``(C, *S)``; default zero.
    channels : int
        Number of independent channels (each with covariance ``Q``).

    Examples
    --------
    >>> import numpy as np
    >>> from sciffd.grids import torus
    >>> from sciffd.noise import Matern
    >>> model = GaussianScore(Matern(3.0, 4.0), Matern(2.0, 1.0))
    >>> u = np.zeros((2, 1, 16, 16))
    >>> model.denoise(u, 0.5, torus(16)).shape
    (2, 1, 16, 16)
    """

    def __init__(
        self,
        data: GaussianMeasure,
        noise: GaussianMeasure,
        process: VPProcess | None = None,
        mean: Callable[[TorusGrid], np.ndarray] | None = None,
        channels: int = 1,
    ) -> None:
        if not isinstance(data, GaussianMeasure):
            raise TypeError(f"data must be a GaussianMeasure, got {type(data).__name__}")
        self.data = data
        self.noise = check_noise(noise)
        self.process = check_process(VPProcess() if process is None else process)
        if mean is not None and not callable(mean):
            raise TypeError("mean must be None or a callable mean(grid) -> array (C, *S)")
        self.mean = mean
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels={channels!r} must be a positive integer")
        self.channels = channels
        self.backend = "numpy"

    def _mean_hat(self, grid: TorusGrid, like: Any) -> Any:
        m = np.asarray(self.mean(grid), dtype=np.float64)
        if m.shape != (self.channels,) + grid.shape:
            raise ValueError(
                f"mean(grid) returned shape {m.shape}, expected {(self.channels,) + grid.shape}"
            )
        return as_array_like(np.fft.rfftn(m, axes=tuple(range(-grid.ndim, 0)), norm="forward"),
                             like)

    def _over_marginal(self, t: float, grid: TorusGrid, numerator) -> np.ndarray:
        """``numerator(a, s, q, c) / (a^2 q + s^2 c)`` per mode, 0 where the marginal is 0."""
        a, s = float(self.process.a(t)), float(self.process.s(t))
        q, c = self.data.eigenvalues(grid), self.noise.eigenvalues(grid)
        den = a * a * q + s * s * c
        out = np.zeros_like(q)
        ok = den > 0
        out[ok] = numerator(a, s, q, c)[ok] / den[ok]
        return out

    def gain(self, t: float, grid: TorusGrid) -> np.ndarray:
        """The per-mode factor ``a q / (a^2 q + s^2 c)`` on the half spectrum."""
        return self._over_marginal(t, grid, lambda a, s, q, c: a * q)

    def denoise(self, u: Any, t: Any, grid: TorusGrid) -> Any:
        check_field(u, grid)
        u_hat = forward(u, grid)
        if isinstance(t, (int, float, np.floating)) or getattr(t, "ndim", 0) == 0:
            gain = as_array_like(self.gain(float(t), grid), u)
        else:
            tt = backend.to_numpy(t).reshape(-1)
            if tuple(t.shape) not in ((1,), (u.shape[0],)):
                raise ValueError(
                    f"t has shape {tuple(t.shape)}; expected a float or one time per "
                    f"sample, shape ({u.shape[0]},)"
                )
            g = np.stack([self.gain(float(ti), grid) for ti in tt])
            gain = as_array_like(g, u).reshape((len(tt),) + (1,) * (u.ndim - 1 - grid.ndim)
                                               + grid.spectral_shape)
        if self.mean is None:
            return inverse(u_hat * gain, grid)
        m_hat = self._mean_hat(grid, u_hat)
        a = _per_sample(self.process.a(t), u_hat)
        return inverse(m_hat + gain * (u_hat - a * m_hat), grid)

    def posterior_variance(self, t: float, grid: TorusGrid) -> np.ndarray:
        """Per-mode variance ``q s^2 c / (a^2 q + s^2 c)`` of ``u_0`` given ``u_t`` (exact)."""
        return self._over_marginal(t, grid, lambda a, s, q, c: q * s * s * c)

    def marginal_eigenvalues(self, t: float, grid: TorusGrid) -> np.ndarray:
        """Eigenvalues ``a^2 q + s^2 c`` of the covariance of ``u_t``."""
        a, s = float(self.process.a(t)), float(self.process.s(t))
        return a * a * self.data.eigenvalues(grid) + s * s * self.noise.eigenvalues(grid)

    def config(self) -> dict:
        return {"model": "GaussianScore", "data": repr(self.data), "noise": repr(self.noise),
                **self.process.to_config()}
