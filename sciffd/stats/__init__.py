"""Physical statistics of fields and ensembles.

Spectra (:mod:`.spectra`), domain-mean invariants and divergence
(:mod:`.quantities`), pointwise distributions and distances
(:mod:`.distributions`), increments, structure functions and
correlations (:mod:`.structure`), ensemble scores (:mod:`.ensemble`),
noise floors (:mod:`.floor`) and discretisation-invariance checks
(:mod:`.invariance`), each documented with its formula and normalisation.
Every statistic takes arrays with a grid, or xarray DataArrays (dims by
name, lazy on Dask where the operation allows).
"""

from __future__ import annotations

from .distributions import (
    energy_distance,
    flatness,
    histogram_pdf,
    ks_distance,
    skewness,
    wasserstein1,
)
from .ensemble import (
    RankHistogram,
    crps_ensemble,
    energy_score,
    ensemble_rank,
    rank_histogram,
    spread_skill_ratio,
)
from .floor import FloorCheck, NoiseFloor, noise_floor, within_floor
from .quantities import divergence, energy, enstrophy, palinstrophy
from .spectra import (
    band_limit,
    energy_spectrum,
    enstrophy_spectrum,
    log_spectral_error,
    power_spectrum,
    shell_index,
)
from .structure import (
    increment_pdf,
    increments,
    integral_length_scale,
    structure_function,
    two_point_correlation,
)

__all__ = [
    "FloorCheck",
    "NoiseFloor",
    "RankHistogram",
    "band_limit",
    "crps_ensemble",
    "divergence",
    "energy",
    "energy_distance",
    "energy_score",
    "energy_spectrum",
    "ensemble_rank",
    "enstrophy",
    "enstrophy_spectrum",
    "flatness",
    "histogram_pdf",
    "increment_pdf",
    "increments",
    "integral_length_scale",
    "ks_distance",
    "log_spectral_error",
    "noise_floor",
    "palinstrophy",
    "power_spectrum",
    "rank_histogram",
    "shell_index",
    "skewness",
    "spread_skill_ratio",
    "structure_function",
    "two_point_correlation",
    "wasserstein1",
    "within_floor",
]
