"""Training of score models: denoising score matching in function space.

:func:`train` fits an :class:`~sciffd.models.fno.FNODenoiser` to fields
(an ``xarray.Dataset`` or an array) and writes a model directory;
:func:`load_model` reads it back. The loss and the noise-level
distribution are in :mod:`sciffd.training.dsm`, the directory layout in
:mod:`sciffd.training.checkpoint`.
"""

from __future__ import annotations

from .checkpoint import load_model
from .dsm import denoising_loss, draw_batch, edm_weight
from .ema import EMA
from .loop import train

__all__ = ["EMA", "denoising_loss", "draw_batch", "edm_weight", "load_model", "train"]
