"""Exponential moving average of a network's weights.

After optimiser step ``n`` (counted from 0) the average is updated as

    theta_ema <- beta_n theta_ema + (1 - beta_n) theta,
    beta_n = min(decay, (1 + n) / (10 + n)),

so that early in a run, when ``decay`` would still weigh the random
initialisation heavily, the average follows the weights more closely. The
average is a deterministic function of the sequence of weights, so a
resumed run reproduces it exactly.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["EMA"]


class EMA:
    """The moving average ``theta_ema`` of the parameters of ``network``.

    Parameters
    ----------
    network : torch.nn.Module
        The network whose parameters are averaged; the average starts at its
        current weights.
    decay : float
        The largest decay ``beta``, in ``[0, 1)`` (for example 0.999: an
        averaging window of about 1000 steps).
    """

    def __init__(self, network: nn.Module, decay: float) -> None:
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) \
                or not 0 <= decay < 1:
            raise ValueError(f"ema_decay={decay!r} must be a number in [0, 1)")
        self.decay = float(decay)
        self.shadow = {name: p.detach().clone() for name, p in network.named_parameters()}

    def beta(self, step: int) -> float:
        """The decay used after optimiser step ``step``."""
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, network: nn.Module, step: int) -> None:
        """Fold in the weights of ``network`` after optimiser step ``step``."""
        weight = 1.0 - self.beta(step)
        for name, p in network.named_parameters():
            self.shadow[name].lerp_(p.detach(), weight)

    def state_dict(self, network: nn.Module) -> dict[str, torch.Tensor]:
        """The network's state dict with the averaged parameters in place of its own."""
        state = {k: v.detach().clone() for k, v in network.state_dict().items()}
        for name, value in self.shadow.items():
            state[name] = value.detach().clone()
        return state
