"""The score-model interface and the conversions between its three forms.

For the process ``u_t = a u_0 + s xi``, ``xi ~ N(0, C)``, a model is known
by any one of

- the denoiser ``D(u, t) = E[u_0 | u_t = u]``,
- the noise prediction ``eps(u, t) = E[xi | u_t = u] = (u - a D) / s``,
- the C-preconditioned score ``S(u, t) = C grad log p_t(u) = (a D - u) / s^2 = -eps / s``,

and the functions below convert between them. Every model of sciffd
implements :meth:`ScoreModel.denoise`; samplers use the other two through
these conversions.

Arrays are laid out ``(B, C, *S)``: batch, channels, spatial axes of the
grid. ``t`` is a float or an array of shape ``(B,)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from ..grids import TorusGrid
from ..noise import GaussianMeasure
from ..sde import VPProcess
from ..spectral import as_array_like

__all__ = [
    "ScoreModel",
    "denoiser_to_noise",
    "denoiser_to_score",
    "noise_to_denoiser",
    "score_to_denoiser",
]


def _per_sample(value: Any, u: Any) -> Any:
    """Broadcast a per-sample scale of shape ``(B,)`` against ``u`` of shape ``(B, ...)``."""
    if isinstance(value, (int, float)):
        return float(value)
    if getattr(value, "ndim", 0) == 0:
        # a numpy float64 scalar would promote float32 fields to float64
        return float(value)
    if isinstance(value, np.ndarray) or backend.backend_name(value) != backend.backend_name(u):
        # numpy scales, or scales of another library than the fields (numpy
        # times for torch fields): follow the fields' library and precision
        value = as_array_like(backend.to_numpy(value), u)
    return value.reshape(tuple(value.shape) + (1,) * (u.ndim - 1))


def denoiser_to_noise(denoised: Any, u: Any, t: Any, process: VPProcess) -> Any:
    """``eps = (u - a(t) D) / s(t)``."""
    a, s = _per_sample(process.a(t), u), _per_sample(process.s(t), u)
    return (u - a * denoised) / s


def noise_to_denoiser(eps: Any, u: Any, t: Any, process: VPProcess) -> Any:
    """``D = (u - s(t) eps) / a(t)``."""
    a, s = _per_sample(process.a(t), u), _per_sample(process.s(t), u)
    return (u - s * eps) / a


def denoiser_to_score(denoised: Any, u: Any, t: Any, process: VPProcess) -> Any:
    """Preconditioned score ``S = (a(t) D - u) / s(t)^2``."""
    a, s = _per_sample(process.a(t), u), _per_sample(process.s(t), u)
    return (a * denoised - u) / s**2


def score_to_denoiser(score: Any, u: Any, t: Any, process: VPProcess) -> Any:
    """``D = (u + s(t)^2 S) / a(t)``."""
    a, s = _per_sample(process.a(t), u), _per_sample(process.s(t), u)
    return (u + s**2 * score) / a


class ScoreModel:
    """Base class of the score models of sciffd.

    Attributes
    ----------
    process : VPProcess
        The forward process the model was built for.
    noise : GaussianMeasure
        The noise measure ``N(0, C)`` of the process.
    channels : int
        Number of channels ``C`` of the fields.
    backend : str
        Array library the model computes with (``"numpy"`` or ``"torch"``);
        samplers hand it arrays of that library.
    """

    process: VPProcess
    noise: GaussianMeasure
    channels: int = 1
    backend: str = "numpy"
    device: Any = None

    def denoise(self, u: Any, t: Any, grid: TorusGrid) -> Any:  # pragma: no cover
        """``E[u_0 | u_t = u]`` for fields ``u`` of shape ``(B, C, *S)`` on ``grid``."""
        raise NotImplementedError

    def predict_noise(self, u: Any, t: Any, grid: TorusGrid) -> Any:
        """``E[xi | u_t = u]``."""
        return denoiser_to_noise(self.denoise(u, t, grid), u, t, self.process)

    def score(self, u: Any, t: Any, grid: TorusGrid) -> Any:
        """C-preconditioned score ``C grad log p_t(u)``."""
        return denoiser_to_score(self.denoise(u, t, grid), u, t, self.process)

    def config(self) -> dict:
        """A JSON-ready description of the model (used in output attributes)."""
        return {"model": type(self).__name__}


def check_noise(noise: Any) -> GaussianMeasure:
    """Validate a ``noise=`` argument."""
    if not isinstance(noise, GaussianMeasure):
        raise TypeError(
            f"noise must be a sciffd.noise.GaussianMeasure (for example Matern(...)), "
            f"got {type(noise).__name__}"
        )
    return noise


def check_process(process: Any) -> VPProcess:
    """Validate a ``process=`` argument."""
    if not isinstance(process, VPProcess):
        raise TypeError(f"process must be a sciffd.sde.VPProcess, got {type(process).__name__}")
    return process
