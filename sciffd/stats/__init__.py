"""Physical statistics of fields and ensembles.

Spectra (:mod:`.spectra`) and pointwise distributions
(:mod:`.distributions`), each documented with its formula and
normalisation.
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
from .spectra import (
    band_limit,
    energy_spectrum,
    enstrophy_spectrum,
    log_spectral_error,
    power_spectrum,
    shell_index,
)

__all__ = [
    "band_limit",
    "energy_distance",
    "energy_spectrum",
    "enstrophy_spectrum",
    "flatness",
    "histogram_pdf",
    "ks_distance",
    "log_spectral_error",
    "power_spectrum",
    "shell_index",
    "skewness",
    "wasserstein1",
]
