"""A deterministic mean field made of a few Fourier modes, evaluable on any grid.

Forced flows are not statistically homogeneous: the ``ns2d`` forcing
``0.1 (sin 2pi(x+y) + cos 2pi(x+y))`` pins the phase of the mode
``(1, 1)``, so the ensemble mean is a fixed field that carries about half
of the vorticity variance. A score network built from translation-equivariant
layers and driven by stationary noise can only produce a random phase; the
mean must enter the model as data. :class:`MeanField` holds it as the
Fourier coefficients ``c_m`` of the modes that are significantly non-zero
in the training set,

    mu(x) = sum_m c_m exp(i k_m . x),      k_m = 2 pi m / L,

stored once for each pair ``(m, -m)`` (``c_{-m} = conj(c_m)``). On a grid
of any resolution the field is exact for the modes that grid resolves
(``|m_i| < N_i / 2``) and drops the others, which is the Fourier
restriction of ``mu`` (see :mod:`sciffd.spectral`).

Which modes are kept is decided by a test, not by a threshold on the
amplitude: for ``n`` independent samples the sample mean of a mode whose
true mean is zero is ``CN(0, q_m / n)`` (``q_m = E|u_hat_m - c_m|^2``), so
``z_m = n |c_m|^2 / q_m`` is standard exponential. A mode is kept when
``z_m > log(M / level)``, ``M`` the number of modes tested: with
probability at least ``1 - level`` no mode of zero mean is kept
(Bonferroni). Keeping every mode would instead imprint the sampling error
of the mean, a fixed pattern of variance ``q / n`` per mode, on every sample
the model draws.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..grids import TorusGrid

__all__ = ["MeanField"]


def _canonical(m: np.ndarray) -> bool:
    """``m`` is the representative of the pair ``(m, -m)``: its last non-zero entry is positive."""
    nz = np.flatnonzero(m)
    return nz.size > 0 and m[nz[-1]] > 0


class MeanField:
    """A real field ``mu(x) = sum_m c_m exp(i k_m . x)`` with finitely many modes.

    Parameters
    ----------
    modes : array of int, shape ``(M, d)``
        Integer wavevectors ``m`` (``k = 2 pi m / L``), one of each pair
        ``(m, -m)``; ``m = 0`` is not allowed (the domain mean is kept
        elsewhere, as a per-channel scalar).
    coefficients : array of complex, shape ``(C, M)``
        ``c_m`` per channel, in the design's normalisation (the coefficient
        of ``exp(i k . x)``, so a mode contributes ``2 Re(c_m exp(i k . x))``).
    lengths : sequence of float
        The domain ``[0, L_1) x ... x [0, L_d)``.

    Examples
    --------
    >>> from sciffd.grids import torus
    >>> mu = MeanField([[1, 1]], [[0.5 - 0.5j]], lengths=(1.0, 1.0))
    >>> g = torus(8)
    >>> y, x = g.mesh()
    >>> phase = 2 * np.pi * (x + y)
    >>> bool(np.allclose(mu.evaluate(g)[0], np.cos(phase) + np.sin(phase)))
    True
    """

    def __init__(self, modes: Any, coefficients: Any, lengths: Any) -> None:
        try:
            lengths = tuple(float(L) for L in lengths)
        except (TypeError, ValueError):
            raise TypeError(f"lengths={lengths!r} must be a sequence of positive floats") from None
        if not lengths or not all(math.isfinite(L) and L > 0 for L in lengths):
            raise ValueError(f"lengths={lengths!r} must be positive and finite")
        d = len(lengths)
        m = np.asarray(modes)
        if m.size == 0:
            m = np.zeros((0, d), dtype=np.int64)
        if m.ndim != 2 or m.shape[1] != d or not np.issubdtype(m.dtype, np.integer):
            raise ValueError(f"modes must be an integer array of shape (M, {d}), got "
                             f"{m.dtype} with shape {m.shape}")
        m = m.astype(np.int64)
        for row in m:
            if not _canonical(row):
                raise ValueError(
                    f"mode {row.tolist()} must be non-zero with its last non-zero entry "
                    "positive (one mode of each pair (m, -m))"
                )
        if len({tuple(r) for r in m.tolist()}) != len(m):
            raise ValueError("modes holds the same wavevector twice")
        c = np.asarray(coefficients, dtype=np.complex128)
        if c.ndim == 1:
            c = c[None, :]
        if c.ndim != 2 or c.shape[1] != len(m) or c.shape[0] < 1:
            raise ValueError(f"coefficients has shape {c.shape}; expected (C, {len(m)})")
        if not np.all(np.isfinite(c)):
            raise ValueError("coefficients must be finite")
        self.modes = m
        self.coefficients = c
        self.lengths = lengths

    @property
    def channels(self) -> int:
        return self.coefficients.shape[0]

    @property
    def ndim(self) -> int:
        return len(self.lengths)

    def __repr__(self) -> str:
        return (f"MeanField({len(self.modes)} mode(s), channels={self.channels}, "
                f"lengths={self.lengths})")

    def _check_grid(self, grid: TorusGrid) -> None:
        if not isinstance(grid, TorusGrid):
            raise TypeError(f"grid must be a sciffd.grids.TorusGrid, got {type(grid).__name__}")
        if grid.ndim != self.ndim or not np.allclose(grid.lengths, self.lengths, rtol=1e-9):
            raise ValueError(f"grid {grid} is not a grid of the mean field's domain, lengths "
                             f"{self.lengths}")

    def spectrum(self, grid: TorusGrid) -> np.ndarray:
        """The half spectrum of ``mu`` on ``grid`` (shape ``(C, *grid.spectral_shape)``).

        Modes the grid cannot hold (``|m_i| >= N_i / 2``, Nyquist included)
        are dropped.
        """
        self._check_grid(grid)
        out = np.zeros((self.channels,) + grid.spectral_shape, dtype=np.complex128)
        n = np.asarray(grid.shape)
        for j, m in enumerate(self.modes):
            if np.any(2 * np.abs(m) >= n):
                continue
            out[(slice(None),) + tuple(m % n)] = self.coefficients[:, j]
            if m[-1] == 0:
                out[(slice(None),) + tuple(-m % n)] = np.conj(self.coefficients[:, j])
        return out

    def evaluate(self, grid: TorusGrid) -> np.ndarray:
        """``mu`` at the points of ``grid``, shape ``(C, *grid.shape)`` (float64)."""
        spec = self.spectrum(grid)
        axes = tuple(range(1, grid.ndim + 1))
        return np.fft.irfftn(spec, s=grid.shape, axes=axes, norm="forward")

    @classmethod
    def from_samples(cls, fields: Any, grid: TorusGrid, *, independent: int | None = None,
                     level: float = 1e-3) -> MeanField:
        """The significant Fourier modes of the sample mean of ``fields``.

        Parameters
        ----------
        fields : array, shape ``(N, C, *grid.shape)``
        grid : TorusGrid
        independent : int, optional
            The number of independent samples among the ``N`` (default
            ``N``). Snapshots of one trajectory are correlated: pass the
            number of trajectories, which makes the test conservative.
        level : float
            The family-wise probability of keeping a mode whose true mean is
            zero (see the module docstring).
        """
        if not isinstance(grid, TorusGrid):
            raise TypeError(f"grid must be a sciffd.grids.TorusGrid, got {type(grid).__name__}")
        u = np.asarray(fields, dtype=np.float64)
        if u.ndim != grid.ndim + 2 or u.shape[2:] != grid.shape or u.shape[0] < 2:
            raise ValueError(f"fields has shape {u.shape}; expected (N >= 2, C, *{grid.shape})")
        if not np.all(np.isfinite(u)):
            raise ValueError("fields must be finite")
        n_ind = u.shape[0] if independent is None else independent
        if isinstance(n_ind, bool) or not isinstance(n_ind, (int, np.integer)) \
                or not 2 <= n_ind <= u.shape[0]:
            raise ValueError(f"independent={independent!r} must be an integer in "
                             f"[2, {u.shape[0]}] (the number of independent fields)")
        if not (isinstance(level, (int, float)) and 0 < level < 1):
            raise ValueError(f"level={level!r} must lie in (0, 1)")
        axes = tuple(range(2, u.ndim))
        mean_hat = np.fft.rfftn(u.mean(axis=0), axes=tuple(a - 1 for a in axes),
                                norm="forward")
        power = np.zeros(mean_hat.shape)
        for start in range(0, u.shape[0], 256):
            chunk = np.fft.rfftn(u[start:start + 256], axes=axes, norm="forward") - mean_hat
            power += (np.abs(chunk) ** 2).sum(axis=0)
        power /= u.shape[0] - 1
        # the canonical, non-Nyquist, non-zero wavevectors of the half spectrum
        idx = np.meshgrid(*[grid.mode_indices(i) for i in range(grid.ndim)], indexing="ij")
        wave = np.stack([i.reshape(-1) for i in idx], axis=1)
        keep = np.all(2 * np.abs(wave) < np.asarray(grid.shape), axis=1)
        keep &= np.array([_canonical(w) for w in wave])
        tested = int(keep.sum())
        threshold = math.log(max(tested, 1) / level)
        flat_mean = mean_hat.reshape(u.shape[1], -1)
        flat_q = power.reshape(u.shape[1], -1)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(flat_q > 0, n_ind * np.abs(flat_mean) ** 2 / flat_q, 0.0)
        chosen = keep & (z > threshold).any(axis=0)
        return cls(wave[chosen], flat_mean[:, chosen], grid.lengths)

    def to_config(self) -> dict:
        """A JSON-ready description (see :meth:`from_config`)."""
        return {"modes": self.modes.tolist(), "real": self.coefficients.real.tolist(),
                "imag": self.coefficients.imag.tolist(), "lengths": list(self.lengths)}

    @classmethod
    def from_config(cls, config: Any) -> MeanField:
        """The mean field described by :meth:`to_config`'s dictionary."""
        if not isinstance(config, dict):
            raise TypeError(f"a mean-field configuration must be a dict, got "
                            f"{type(config).__name__}")
        try:
            c = np.asarray(config["real"], dtype=np.float64) \
                + 1j * np.asarray(config["imag"], dtype=np.float64)
            modes = np.asarray(config["modes"], dtype=np.int64).reshape(
                -1, len(config["lengths"]))
            return cls(modes, c.reshape(c.shape[0] if c.ndim > 1 else 1, -1),
                       config["lengths"])
        except KeyError as err:
            raise ValueError(f"the mean-field configuration lacks {err}") from None
