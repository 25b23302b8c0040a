"""Score models: the exact Gaussian score and neural operators.

Every model implements :meth:`ScoreModel.denoise`, ``E[u_0 | u_t]``; the
noise prediction and the C-preconditioned score follow from it (see
:mod:`sciffd.models.base`).
"""

from __future__ import annotations

from .base import (
    ScoreModel,
    denoiser_to_noise,
    denoiser_to_score,
    noise_to_denoiser,
    score_to_denoiser,
)
from .gaussian import GaussianScore
from .mixture import GaussianMixtureScore

__all__ = [
    "GaussianMixtureScore",
    "GaussianScore",
    "ScoreModel",
    "denoiser_to_noise",
    "denoiser_to_score",
    "noise_to_denoiser",
    "score_to_denoiser",
]
