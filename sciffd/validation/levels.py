"""Validation levels: how large the ensembles are and how long the samplers run.

``quick`` is sized for continuous integration (a few minutes on two cores,
small ensembles, few sampler steps); ``full`` for releases. A level only
changes sizes: the properties checked and their tolerances are the same,
and the statistical bounds follow the sizes (smaller ensembles, wider
chi-square intervals and noise floors).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["FULL", "LEVELS", "QUICK", "Level", "get_level"]


def _positive(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer")


@dataclass(frozen=True)
class Level:
    """The sizes of one validation level.

    Parameters
    ----------
    name : str
        ``"quick"``, ``"full"`` or a custom name.
    exact_resolution : int
        Points per axis of the exact-model checks.
    exact_members : int
        Ensemble size of the exact-model checks (per seed).
    exact_seeds : int
        Seeds drawn (by hypothesis) for the per-mode variance property.
    heun_steps, em_steps : int
        Steps of the Heun (probability-flow ODE) and Euler-Maruyama
        (reverse SDE) samplers in the exact-model checks.
    exact_resolutions : tuple of int
        The resolutions of the exact models' invariance checks, coarse to fine.
    resolution_pairs : int
        Pairs of resolutions drawn (by hypothesis) for the low-mode property.
    model_members : int
        Ensemble size of a trained model at its own resolution.
    model_steps : int
        Heun steps for a trained model.
    refinements : tuple of int
        Factors of the model's grid for the invariance checks (``(1, 2, 4)``:
        64, 128, 256 for a model trained at 64^2).
    invariance_members : int
        Members sampled at every resolution of the invariance checks.
    subset_examples : int
        Member subsets drawn (by hypothesis) for the batch-independence property.
    reference_members : int
        Members of a dataset recipe generated as the reference when none
        is given (each with all its snapshots).
    n_boot : int
        Bootstrap replicates of every noise floor.
    alpha : float
        False-alarm probability of each statistical check.
    batch_size : int
        Members integrated together.
    """

    name: str
    exact_resolution: int = 32
    exact_members: int = 128
    exact_seeds: int = 2
    heun_steps: int = 32
    em_steps: int = 128
    exact_resolutions: tuple[int, ...] = (32, 64, 128)
    resolution_pairs: int = 3
    model_members: int = 40
    model_steps: int = 12
    refinements: tuple[int, ...] = (1, 2, 4)
    invariance_members: int = 8
    subset_examples: int = 2
    reference_members: int = 16
    n_boot: int = 100
    alpha: float = 1e-3
    batch_size: int = 16

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name={self.name!r} must be a non-empty string")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in ("int",):
                _positive(value, f.name)
        for name in ("exact_resolutions", "refinements"):
            values = tuple(getattr(self, name))
            if len(values) < 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                                      for v in values) or list(values) != sorted(set(values)):
                raise ValueError(f"{name}={values!r} must be at least two increasing "
                                 "positive integers")
            object.__setattr__(self, name, values)
        if self.exact_resolution < 8:
            raise ValueError(f"exact_resolution={self.exact_resolution} must be at least 8")
        for name in ("exact_members", "invariance_members"):
            if getattr(self, name) < 4:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 4 (the "
                                 "noise floors split the ensemble in halves)")
        if not (isinstance(self.alpha, float) and 0 < self.alpha < 0.5):
            raise ValueError(f"alpha={self.alpha!r} must be a float in (0, 0.5)")

    def replace(self, **changes: Any) -> Level:
        """A copy with some sizes changed (validated again)."""
        return dataclasses.replace(self, **changes)


#: continuous integration: a few minutes on two cores
QUICK = Level("quick")

#: releases: larger ensembles, more steps, the whole held-out set
FULL = Level(
    "full", exact_resolution=64, exact_members=256, exact_seeds=4, heun_steps=64,
    em_steps=512, exact_resolutions=(64, 128, 256), resolution_pairs=6, model_members=130,
    model_steps=32, invariance_members=32, subset_examples=4, reference_members=52,
    n_boot=400,
)

LEVELS = {"quick": QUICK, "full": FULL}


def get_level(level: str | Level) -> Level:
    """A :class:`Level` from its name (``"quick"``, ``"full"``) or itself."""
    if isinstance(level, Level):
        return level
    if isinstance(level, str) and level in LEVELS:
        return LEVELS[level]
    raise ValueError(f"level={level!r} is not known; expected one of {sorted(LEVELS)} or a "
                     "sciffd.validation.Level")
