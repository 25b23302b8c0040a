"""The recipe of the ``ns2d`` dataset: every parameter that makes it, in one place.

``ns2d`` is the forced 2D Navier-Stokes benchmark of the neural-operator
literature (Li et al. 2021, arXiv:2010.08895) on the unit torus:

    dw/dt + u . grad w = nu Laplacian w + f,      nu = 1e-3,
    f(x, y) = 0.1 (sin 2 pi (x + y) + cos 2 pi (x + y)),
    w(0) ~ N(0, 7^3 (-Laplacian + 49)^(-2.5))  with the mean mode removed,

solved with :class:`~sciffd.domains.fluids.navier_stokes.NavierStokes2D`.
The initial measure is ``Matern(alpha=2.5, tau=7, sigma=7**1.5)``, whose
eigenvalues ``sigma^2 (tau^2 + 4 pi^2 |m|^2)^(-alpha)`` are those of
``7^3 (-Laplacian + 49)^(-2.5)`` on ``[0, 1)^2``; its mean mode
(``lambda_0 = 7^3 49^(-2.5)``) is dropped because the vorticity of a
periodic velocity has zero mean, as in the benchmark's own sampler.

The same values are written in ``datasets/ns2d.toml``; a test checks that
the two agree. ``datasets/README.md`` explains the choices (resolution,
time step, snapshot times) with the measurements behind them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...grids import TorusGrid, torus
from ...noise import Matern, measure_from_config, measure_to_config
from .navier_stokes import BENCHMARK_FORCING, NavierStokes2D, SinusoidalForcing

__all__ = ["NS2DRecipe"]


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer")
    return int(value)


@dataclass(frozen=True)
class NS2DRecipe:
    """Parameters of the ``ns2d`` dataset (defaults: the shipped dataset).

    Parameters
    ----------
    viscosity : float
        ``nu``.
    forcing : SinusoidalForcing
        ``f(x, y)``, held fixed in time.
    initial : Matern
        The measure of ``w(0)``; its mean mode is removed from every draw.
    solver_resolution : int
        Points per axis of the solve; output is restricted from it
        spectrally.
    output_resolution : int
        Points per axis of the stored fields.
    time_step : float
        Fixed solver step ``dt``; every snapshot time is a multiple of it.
    snapshot_times : tuple of float
        The times stored, strictly increasing.
    members, seed : int
        Size and seed of the training set.
    test_members, test_seed : int
        Size and seed of the held-out set (a different seed, so no member
        is shared).
    """

    viscosity: float = 1e-3
    forcing: SinusoidalForcing = BENCHMARK_FORCING
    initial: Matern = field(default_factory=lambda: Matern(alpha=2.5, tau=7.0,
                                                           sigma=7.0**1.5))
    solver_resolution: int = 64
    output_resolution: int = 64
    time_step: float = 0.01
    snapshot_times: tuple[float, ...] = (40.0, 42.5, 45.0, 47.5, 50.0)
    members: int = 300
    seed: int = 0
    test_members: int = 52
    test_seed: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.forcing, SinusoidalForcing):
            raise TypeError(
                f"forcing={self.forcing!r} must be a SinusoidalForcing; for another "
                "forcing build a NavierStokes2D directly"
            )
        if not isinstance(self.initial, Matern) or self.initial.ndim != 2:
            raise TypeError(f"initial={self.initial!r} must be a 2D sciffd.noise.Matern")
        for name in ("solver_resolution", "output_resolution", "members", "test_members"):
            object.__setattr__(self, name, _positive_int(getattr(self, name), name))
        for name in ("seed", "test_seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name}={value!r} must be a non-negative integer")
        times = tuple(float(t) for t in self.snapshot_times)
        if not times or any(not math.isfinite(t) or t < 0 for t in times) \
                or any(b <= a for a, b in zip(times[:-1], times[1:], strict=True)):
            raise ValueError(
                f"snapshot_times={self.snapshot_times!r} must be finite, non-negative and "
                "strictly increasing"
            )
        object.__setattr__(self, "snapshot_times", times)
        # validates viscosity, time_step and that the times are whole steps
        solver = self.solver()
        for t in times:
            solver.step_count(t, "snapshot_times entry")

    @property
    def t_final(self) -> float:
        """The last snapshot time: how far each member is integrated."""
        return self.snapshot_times[-1]

    def solver(self, resolution: int | None = None) -> NavierStokes2D:
        """The solver on the unit torus at ``resolution`` (default ``solver_resolution``)."""
        n = self.solver_resolution if resolution is None else _positive_int(resolution,
                                                                              "resolution")
        return NavierStokes2D(torus(n), self.viscosity, self.forcing, self.time_step)

    def initial_condition(self, grid: TorusGrid, members: int | Sequence[int],
                          seed: int) -> np.ndarray:
        """``w(0)`` of the given members, shape ``(B, N, N)``, float64, zero mean.

        Member ``m`` is ``initial.sample(grid, [m], seed)`` less its mean, the
        same whether drawn alone or in a batch, and with the same low modes
        at every resolution.
        """
        w0 = self.initial.sample(grid, members, seed, dtype=np.float64)[:, 0]
        return w0 - w0.mean(axis=(-2, -1), keepdims=True)

    # -- text form ---------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The recipe as plain values, the layout of ``datasets/ns2d.toml``."""
        initial = measure_to_config(self.initial)
        initial["zero_mean"] = True
        f = self.forcing
        return {
            "name": "ns2d",
            "viscosity": self.viscosity,
            "time_step": self.time_step,
            "solver_resolution": self.solver_resolution,
            "output_resolution": self.output_resolution,
            "snapshot_times": list(self.snapshot_times),
            "members": self.members,
            "seed": self.seed,
            "test_members": self.test_members,
            "test_seed": self.test_seed,
            "forcing": {"kind": "sinusoidal", "amplitude": f.amplitude, "mode_x": f.mode_x,
                        "mode_y": f.mode_y, "expression": f.expression},
            "initial": initial,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NS2DRecipe:
        """Inverse of :meth:`to_dict` (for example of ``tomllib.load`` of the TOML file)."""
        d = dict(data)
        if d.pop("name", "ns2d") != "ns2d":
            raise ValueError(f"not an ns2d recipe: name={data.get('name')!r}")
        forcing = dict(d.pop("forcing"))
        if forcing.pop("kind", "sinusoidal") != "sinusoidal":
            raise ValueError(f"unknown forcing kind in {data['forcing']!r}; expected "
                             "'sinusoidal'")
        expression = forcing.pop("expression", None)
        forcing = SinusoidalForcing(**forcing)
        if expression is not None and expression != forcing.expression:
            raise ValueError(
                f"forcing expression {expression!r} disagrees with its parameters, which "
                f"give {forcing.expression!r}"
            )
        initial = dict(d.pop("initial"))
        if not initial.pop("zero_mean", True):
            raise ValueError("the initial measure must have zero_mean = true")
        d["snapshot_times"] = tuple(d.get("snapshot_times", ()))
        return cls(forcing=forcing, initial=measure_from_config(initial), **d)

    def attrs(self) -> dict[str, Any]:
        """netCDF global attributes describing the recipe (numbers and strings only)."""
        mu = self.initial
        return {
            "viscosity": self.viscosity,
            "forcing": self.forcing.expression,
            "initial_measure": (
                f"Matern(alpha={mu.alpha!r}, tau={mu.tau!r}, sigma={mu.sigma!r}) = "
                f"N(0, {mu.sigma**2:.6g} (-Laplacian + {mu.tau**2:.6g})^(-{mu.alpha:g})), "
                "mean mode removed"
            ),
            "initial_alpha": mu.alpha,
            "initial_tau": mu.tau,
            "initial_sigma": mu.sigma,
            "time_step": self.time_step,
            "solver_resolution": self.solver_resolution,
            "domain": "[0, 1)^2, periodic",
            "scheme": (
                "pseudo-spectral, 2/3 dealiasing; Heun on advection and forcing, "
                "Crank-Nicolson on viscosity"
            ),
        }
