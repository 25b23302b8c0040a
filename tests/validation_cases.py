"""Shared pieces of the validation-suite tests: a tiny level and deliberately broken models.

The tiny level keeps every run of the suite to about a second on two
cores; its sizes change the statistical bounds (which follow the sizes),
not the properties checked.
"""

from __future__ import annotations

import math

import numpy as np

from sciffd.fields import to_dataset
from sciffd.grids import TorusGrid, torus
from sciffd.models import GaussianScore, ScoreModel
from sciffd.noise import Matern, WhiteNoise
from sciffd.pipeline import FieldModel
from sciffd.validation import QUICK, gaussian_problem

TINY = QUICK.replace(
    name="tiny", exact_resolution=16, exact_members=32, exact_seeds=1, heun_steps=16,
    em_steps=128, exact_resolutions=(16, 32, 64), resolution_pairs=2, subset_examples=1,
    model_members=32, model_steps=16, invariance_members=8, n_boot=30,
)

VARIABLE = {"name": "psi", "units": "1", "long_name": "stream function"}


class Wrapped(ScoreModel):
    """A score model built from another one, with another noise and/or a rescaled denoiser.

    ``noise`` replaces the process noise the samplers draw (start field and
    SDE increments) while the denoiser stays the base model's;
    ``rescale_from=N0`` multiplies the denoiser by ``N / N0`` on an
    ``N``-point grid (a model whose output depends on the resolution).
    """

    def __init__(self, base: ScoreModel, noise=None, rescale_from: int | None = None):
        self.base = base
        self.process = base.process
        self.noise = base.noise if noise is None else noise
        self.channels = base.channels
        self.backend = base.backend
        self.rescale_from = rescale_from

    def denoise(self, u, t, grid: TorusGrid):
        d = self.base.denoise(u, t, grid)
        if self.rescale_from is None:
            return d
        return d * (grid.shape[0] / self.rescale_from)


def truth() -> GaussianScore:
    """The exact Gaussian model of :func:`sciffd.validation.gaussian_problem`."""
    return gaussian_problem().truth


def wrong_start() -> ScoreModel:
    """The exact denoiser, sampled from noise of twice the standard deviation."""
    g = truth()
    return Wrapped(g, noise=Matern(g.noise.alpha, g.noise.tau, 2 * g.noise.sigma))


def scaled_covariance() -> GaussianScore:
    """The exact model of ``N(m, 1.5 Q)`` in place of ``N(m, Q)``."""
    g = truth()
    data = Matern(g.data.alpha, g.data.tau, g.data.sigma * math.sqrt(1.5))
    return GaussianScore(data, g.noise, g.process, mean=g.mean)


def resolution_dependent(base: int) -> ScoreModel:
    """The exact denoiser rescaled by ``N / base``: right at ``base``, wrong elsewhere."""
    return Wrapped(truth(), rescale_from=base)


def white_noise(base: int) -> ScoreModel:
    """The exact denoiser sampled with white process noise (pointwise variance of
    the Matern noise on the ``base`` grid): not trace class, diverging with ``N``."""
    g = truth()
    sigma = math.sqrt(g.noise.pointwise_variance(torus(base)) / base**2)
    return Wrapped(g, noise=WhiteNoise(sigma))


def field_model(model: ScoreModel, resolution: int) -> FieldModel:
    return FieldModel.from_score_model(model, variable=VARIABLE, grid=resolution,
                                       name="gauss")


def reference(resolution: int, members: int = 64, seed: int = 7):
    """Exact draws of the Gaussian data law as a Dataset (member, y, x)."""
    g = truth()
    grid = torus(resolution)
    u = g.data.sample(grid, members, seed=seed, dtype=np.float64)[:, 0] + g.mean(grid)[0]
    return to_dataset(u, grid, VARIABLE["name"], VARIABLE)


def ensemble_and_truth(members: int = 16, cases: int = 20, spread: float = 1.0,
                       resolution: int = 32):
    """An ensemble (member, time, y, x) and its truth (time, y, x), exchangeable when
    ``spread = 1``; members shrunk towards their mean by ``spread`` otherwise."""
    g = truth()
    grid = torus(resolution)
    mean = g.mean(grid)[0]
    x = g.data.sample(grid, members * cases, seed=1, dtype=np.float64)[:, 0]
    x = x.reshape((members, cases) + grid.shape) + mean
    x = x.mean(axis=0) + spread * (x - x.mean(axis=0))
    y = g.data.sample(grid, cases, seed=2, dtype=np.float64)[:, 0] + mean
    ens = to_dataset(x, grid, VARIABLE["name"], VARIABLE, leading_dims=("member", "time"))
    tru = to_dataset(y, grid, VARIABLE["name"], VARIABLE, leading_dims=("time",))
    return ens, tru
