"""Slow, obviously-correct references for the tests of the spectral core.

Nothing here calls an FFT: transforms are explicit sums over all points
and all modes, covariances are dense matrices of grid values. They are
meant for small grids (a few hundred points at most).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def full_modes(shape: tuple[int, ...]) -> np.ndarray:
    """Every integer wavenumber ``m`` of a grid, signed, shape ``(prod(N), d)``.

    Axis ``i`` runs over ``0, 1, .., -1`` (the ``fftfreq`` order), so the
    rows enumerate the full spectrum in C order.
    """
    axes = [np.fft.fftfreq(n, 1.0 / n).round().astype(np.int64) for n in shape]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(shape))


def point_indices(shape: tuple[int, ...]) -> np.ndarray:
    """Integer point indices ``j`` of a grid, shape ``(prod(N), d)``, C order."""
    axes = [np.arange(n) for n in shape]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(shape))


def direct_dft(u: np.ndarray) -> np.ndarray:
    """``u_hat[m] = (1/N^d) sum_j u_j exp(-2 pi i sum_i m_i j_i / N_i)``, full spectrum.

    ``u`` has shape ``S``; the result has shape ``S`` with modes in
    ``fftfreq`` order on every axis. A dense ``prod(N) x prod(N)`` sum.
    """
    shape = u.shape
    n = np.asarray(shape, dtype=np.float64)
    phase = 2 * np.pi * (full_modes(shape) / n) @ point_indices(shape).T
    return (np.exp(-1j * phase) @ u.reshape(-1)).reshape(shape) / u.size


def nyquist_free(m: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """True for the modes ``m`` (rows) that are not Nyquist on any even axis."""
    ok = np.ones(len(m), dtype=bool)
    for i, n in enumerate(shape):
        if n % 2 == 0:
            ok &= np.abs(m[:, i]) != n // 2
    return ok


def dense_covariance(spectrum, shape, lengths) -> np.ndarray:
    """``Cov(u(x_i), u(x_j)) = sum_m lambda_m cos(k_m . (x_i - x_j))`` on grid points.

    ``spectrum(k2)`` gives ``lambda`` at squared angular wavenumbers; the
    sum runs over every mode of the grid except the Nyquist modes of even
    axes (which the generated fields leave out). Shape ``(P, P)``,
    ``P = prod(shape)``, points in C order.
    """
    lengths = np.asarray(lengths, dtype=np.float64)
    n = np.asarray(shape, dtype=np.float64)
    m = full_modes(shape)
    m = m[nyquist_free(m, shape)]
    k = 2 * np.pi * m / lengths
    lam = np.asarray(spectrum((k**2).sum(axis=1)), dtype=np.float64)
    x = point_indices(shape) * (lengths / n)
    e = np.exp(1j * x @ k.T)
    return ((e * lam) @ e.conj().T).real


@dataclass
class TrigPolynomial:
    """``u(x) = sum_n a_n cos(k_n . x) + b_n sin(k_n . x)``, ``k_n = 2 pi m_n / L``.

    Derivatives are closed-form: ``d^p/dx_i^p cos(theta) = k_i^p cos(theta + p pi/2)``
    and the same for ``sin``.
    """

    modes: np.ndarray  # (n, d) integers
    a: np.ndarray  # (n,)
    b: np.ndarray  # (n,)
    lengths: tuple[float, ...]

    @classmethod
    def random(cls, rng, shape, lengths, band=None, terms=6):
        """Random terms with ``|m_i| <= band_i`` (default ``(N_i - 1) // 2``, no Nyquist)."""
        band = [(n - 1) // 2 for n in shape] if band is None else list(band)
        modes = np.stack([rng.integers(-b, b + 1, size=terms) for b in band], axis=1)
        return cls(modes, rng.standard_normal(terms), rng.standard_normal(terms),
                   tuple(float(L) for L in lengths))

    def _theta(self, shape):
        lengths = np.asarray(self.lengths)
        x = point_indices(shape) * (lengths / np.asarray(shape))
        k = 2 * np.pi * self.modes / lengths
        return x @ k.T, k

    def values(self, shape, derivative=None):
        """Values on the grid of ``shape``; ``derivative = [(axis, order), ..]`` applied."""
        theta, k = self._theta(shape)
        factor = np.ones(len(self.a))
        shift = 0.0
        for axis, order in derivative or []:
            factor = factor * k[:, axis] ** order
            shift = shift + order * np.pi / 2
        out = (self.a * factor) * np.cos(theta + shift) + (self.b * factor) * np.sin(
            theta + shift
        )
        return out.sum(axis=1).reshape(shape)

    def k_squared(self):
        k = 2 * np.pi * self.modes / np.asarray(self.lengths)
        return (k**2).sum(axis=1)
