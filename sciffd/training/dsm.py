"""Denoising score matching in function space, with EDM weighting.

For data ``u_0`` and noise ``xi ~ N(0, C)`` of unit pointwise variance the
rescaled noised field is ``x = u_t / a(t) = u_0 + sigma xi``,
``sigma = s(t) / a(t)``. A denoiser ``D`` is trained on

    L(D) = E_{sigma, u_0, xi} [ lambda(sigma') < (D(x, sigma) - u_0) / std,
                                                 (D(x, sigma) - u_0) / std > ],

where ``<., .>`` is the grid mean over points (and channels) -- never the
grid sum, so ``L`` does not grow with the resolution -- ``std`` the
per-channel data scale, ``sigma' = sigma / std`` and
``lambda = (sigma'^2 + sd^2) / (sigma' sd)^2`` the weighting of Karras et
al. (2022), which makes the loss of every noise level of order one. Its
minimiser is the conditional mean ``E[u_0 | x]``: the loss of the exact
denoiser is the Bayes risk, a lower bound for any model.

**Noise levels.** ``sigma`` is drawn per sample as
``ln(sigma / std_ref) ~ N(p_mean, p_std^2)`` with EDM's ``p_mean = -1.2``,
``p_std = 1.2`` (``std_ref`` the geometric mean of the channel scales), then
clipped to ``[sigma(t_min), sigma(t_max)]`` of the process and turned into
``t = time_of_sigma(sigma)``. Karras et al. (their Fig. 5a) found that the
loss can only be reduced at intermediate noise levels: very small ``sigma``
is copied through ``c_skip``, very large ``sigma`` leaves nothing but the
mean. Uniform ``t`` on the default VP process (linear schedule) would spend
half the samples at ``sigma > 3.4``, where for data of unit scale there is
little left to learn.

References
----------
P. Vincent, A connection between score matching and denoising
autoencoders, Neural Computation 23 (2011).
T. Karras, M. Aittala, T. Aila, S. Laine, arXiv:2206.00364.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..grids import TorusGrid
from ..noise import GaussianMeasure, member_generator
from ..sde import VPProcess

__all__ = ["P_MEAN", "P_STD", "Batch", "denoising_loss", "draw_batch", "edm_weight",
           "network_loss"]

#: EDM's log-normal noise-level distribution, in units of the data scale
P_MEAN = -1.2
P_STD = 1.2

# stream indices of the nested generator: training noise and batch draws
NOISE_STREAM = 1
BATCH_STREAM = 2


class Batch:
    """One training batch: data ``u0`` ``(B, C, *S)``, noise ``xi``, ``sigma`` and ``t`` (B,)."""

    def __init__(self, u0: torch.Tensor, xi: torch.Tensor, sigma: torch.Tensor,
                 t: torch.Tensor) -> None:
        self.u0, self.xi, self.sigma, self.t = u0, xi, sigma, t

    @property
    def x(self) -> torch.Tensor:
        """The rescaled noised field ``u_0 + sigma xi``."""
        return self.u0 + self.sigma.reshape((-1,) + (1,) * (self.u0.ndim - 1)) * self.xi


def draw_batch(
    samples: torch.Tensor,
    grid: TorusGrid,
    process: VPProcess,
    noise: GaussianMeasure,
    *,
    step: int,
    batch_size: int,
    seed: int,
    sigma_ref: float = 1.0,
    p_mean: float = P_MEAN,
    p_std: float = P_STD,
) -> Batch:
    """Draw the batch of training step ``step``, a function of ``(seed, step)`` only.

    Parameters
    ----------
    samples : torch.Tensor, shape ``(N, C, *S)``
        The training data (on the training device).
    grid : TorusGrid
        Their grid.
    process, noise
        The forward process and its noise measure.
    step : int
        The training step; batches of different steps are independent and
        the same step always gives the same batch (resume is exact).
    batch_size : int
        ``B``; samples are drawn with replacement.
    seed : int
        The run's seed.
    sigma_ref : float
        The data scale the noise levels are drawn relative to.
    p_mean, p_std : float
        Parameters of ``ln(sigma / sigma_ref)``.

    Returns
    -------
    Batch
    """
    rng = member_generator(seed, step, 0, BATCH_STREAM)
    index = rng.integers(0, samples.shape[0], size=batch_size)
    log_sigma = p_mean + p_std * rng.standard_normal(batch_size)
    sigma = np.clip(sigma_ref * np.exp(log_sigma), float(process.sigma(process.t_min)),
                    float(process.sigma(process.t_max)))
    t = np.clip(process.time_of_sigma(sigma), process.t_min, process.t_max)

    channels = samples.shape[1]
    members = step * batch_size + np.arange(batch_size)
    xi = noise.sample(grid, members, seed, channels=channels, stream=NOISE_STREAM,
                      dtype=np.float32)
    device, dtype = samples.device, samples.dtype
    u0 = samples[torch.as_tensor(index, device=device)]
    return Batch(u0, torch.as_tensor(xi, device=device),
                 torch.as_tensor(sigma, dtype=dtype, device=device),
                 torch.as_tensor(t, dtype=torch.float64, device=device))


def edm_weight(sigma: Any, data_std: Any, sigma_data: float = 1.0) -> Any:
    """``lambda = (sigma'^2 + sd^2) / (sigma' sd)^2`` with ``sigma' = sigma / std``.

    ``sigma`` has shape ``(B,)``, ``data_std`` ``(C,)``; the result ``(B, C)``.
    """
    sig = sigma[:, None] / data_std[None, :]
    return (sig**2 + sigma_data**2) / (sig * sigma_data) ** 2


def denoising_loss(denoised: Any, u0: Any, sigma: Any, data_std: Any,
                   sigma_data: float = 1.0) -> Any:
    """The EDM-weighted grid-mean loss of a denoiser's output, per sample.

    Parameters
    ----------
    denoised, u0 : array, shape ``(B, C, *S)``
        ``D(x, sigma)`` and the clean data (numpy or torch, physical units).
    sigma : array, shape ``(B,)``
        Noise levels of the rescaled fields.
    data_std : array, shape ``(C,)``
        Per-channel data scale.
    sigma_data : float
        ``sd`` of the standardised data.

    Returns
    -------
    array, shape ``(B,)``
        ``mean_{c, x} lambda_c ((D - u_0) / std_c)^2``.
    """
    B, C = u0.shape[:2]
    err = (denoised - u0).reshape(B, C, -1) / data_std.reshape(1, C, 1)
    per_channel = (err**2).mean(-1)
    return (edm_weight(sigma, data_std, sigma_data) * per_channel).mean(-1)


def network_loss(model: Any, batch: Batch, balance: float = 0.0) -> torch.Tensor:
    """The loss of :func:`denoising_loss` for an :class:`~sciffd.models.fno.FNODenoiser`,
    averaged over the batch, computed on the network's output.

    With ``D' = S(x') + c_out F`` (``S`` the skip connection,
    :meth:`~sciffd.models.fno.FNODenoiser.skip_term`) the weighted error is
    ``lambda (D' - u_0')^2 = (F - (u_0' - S(x')) / c_out)^2`` since
    ``lambda c_out^2 = 1``: the same number without subtracting two nearly
    equal fields at small ``sigma``.

    ``balance = gamma > 0`` (a model with a Gaussian tail) weights the
    error of mode ``k`` by ``(q_1 / q_k)^gamma`` (``q`` the shell spectrum,
    ``q_1`` its largest value; ``q_k`` is taken at least ``1e-4 q_1``, the
    tail's threshold, so the domain mean does not dominate) on the modes the
    network keeps, and by 0 on
    the tail, whose output is replaced at sampling; the weights are scaled
    so that the Gaussian anomalies of the data keep their grid-mean norm.
    ``gamma = 0`` is the grid-mean L2 loss.
    """
    ndim = batch.u0.ndim - 2
    _, c_out, c_in, c_noise = model.coefficients(batch.sigma, ndim)
    x = model.standardize(batch.x)
    residual = model.standardize(batch.u0) - model.skip_term(x, batch.sigma)
    out = model.network(c_in * x, c_noise)
    if getattr(model, "output", "scalar") == "spectral":
        if balance:
            raise ValueError("balance is defined for output='scalar' only")
        # lambda (O(F) - residual)^2: the residual is the small posterior error of
        # the Gaussian skip, not a difference of nearly equal fields
        std = torch.as_tensor(model.data_std, dtype=x.dtype, device=x.device)
        lam = edm_weight(batch.sigma, std, model.sigma_data)
        err = model.output_term(out, batch.sigma) - residual
        return (lam.reshape(lam.shape + (1,) * ndim) * err**2).mean()
    target = residual / c_out
    if not balance:
        return ((out - target) ** 2).mean()
    weight = _balance_weights(model, tuple(x.shape[2:]), float(balance), x.device)
    dims = tuple(range(-ndim, 0))
    err = torch.fft.rfftn(out - target, dim=dims, norm="forward")
    return (weight * (err.real**2 + err.imag**2)).sum(dim=dims).mean()


def _balance_weights(model: Any, shape: tuple[int, ...], gamma: float,
                     device: Any) -> torch.Tensor:
    """Per-mode loss weights (C, *K) of :func:`network_loss`, Hermitian multiplicity included."""
    from ..models.fno import TAIL_DYNAMIC_RANGE, _band_mask, _shells, _tail_eigenvalues

    if model.tail_variance is None or model.lengths is None:
        raise ValueError("a balanced loss needs a model with a shell spectrum (tail_variance)")
    grid = TorusGrid(shape, model.lengths)
    q = _tail_eigenvalues(model.tail_variance, grid)
    keep = _band_mask(grid, model.network.modes) & (_shells(grid) < model.tail_start)
    herm = grid.hermitian_weight * grid.nyquist_mask
    peak = q.max(axis=tuple(range(1, q.ndim)), keepdims=True)
    # the domain mean (shell 0) and other weak modes the network keeps count as the
    # weakest shell the tail rule leaves to it, not by their own tiny variance
    q_floor = np.maximum(q, TAIL_DYNAMIC_RANGE * peak)
    w = np.where(keep, (peak / q_floor) ** gamma, 0.0)
    norm = (herm * q).sum(axis=tuple(range(1, q.ndim)), keepdims=True) / \
        (herm * w * q).sum(axis=tuple(range(1, q.ndim)), keepdims=True)
    return torch.as_tensor(herm * w * norm, dtype=torch.float32, device=device)


def lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to ``lr / 10`` at ``steps``."""
    if warmup > 0 and step < warmup:
        return lr * (step + 1) / warmup
    span = max(steps - warmup, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
