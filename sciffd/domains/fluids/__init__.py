"""Fluids: 2D incompressible Navier-Stokes on the torus and the ``ns2d`` dataset.

- :mod:`~sciffd.domains.fluids.navier_stokes`: the pseudo-spectral solver
  (:class:`NavierStokes2D`), :func:`velocity`, :func:`stream_function`;
- :mod:`~sciffd.domains.fluids.recipes`: the parameters of ``ns2d``
  (:class:`NS2DRecipe`, mirrored in ``datasets/ns2d.toml``);
- :mod:`~sciffd.domains.fluids.dataset`: :func:`generate_ns2d` and the
  chunked writer :func:`write_ns2d` (xarray and netCDF4 are imported inside
  them).
"""

from __future__ import annotations

from .dataset import generate_ns2d, iter_ns2d, write_ns2d
from .navier_stokes import (
    BENCHMARK_FORCING,
    NavierStokes2D,
    SinusoidalForcing,
    cfl_number,
    stream_function,
    velocity,
)
from .recipes import NS2DRecipe

__all__ = [
    "BENCHMARK_FORCING",
    "NS2DRecipe",
    "NavierStokes2D",
    "SinusoidalForcing",
    "cfl_number",
    "generate_ns2d",
    "iter_ns2d",
    "stream_function",
    "velocity",
    "write_ns2d",
]
