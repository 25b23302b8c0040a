"""The exact posterior of a Gaussian prior under linear Gaussian observations.

With the prior ``u ~ N(m, Q)`` (``Q`` diagonal in Fourier with eigenvalues
``q_k``, channels independent) and ``y = H u + eta``, ``eta ~ N(0, R)``, the
posterior is Gaussian,

    mean = m + K (y - H m),    P = Q - K H Q,    K = Q H^T (H Q H^T + R)^(-1).

Two exact ways to compute it:

- **spectral**, when ``H`` is diagonal in Fourier (:class:`Blur`,
  :class:`CoarseGrain` ``"spectral"``: coefficients ``b_k u_hat[k]``
  sampled on an observation grid of ``n_o`` nodes) and ``R = sigma^2 I``:
  the noise coefficients are independent with ``E|eta_hat[k]|^2 = sigma^2 /
  n_o`` and the posterior is mode by mode,

      g_k = q_k b_k / (b_k^2 q_k + sigma^2 / n_o),
      mean_hat[k] = m_hat[k] + g_k (y_hat[k] - b_k m_hat[k]),
      p_k = q_k - g_k b_k q_k,

  with the constant pointwise variance ``sum_k p_k``;
- **dense**, for any operator on up to a few thousand grid values: the
  covariance of grid values ``Q_grid[i, j] = sum_m q_m cos(k_m . (x_i -
  x_j))`` (a circulant, one inverse FFT of ``q``), the matrix of ``H`` (``H``
  applied to the unit fields) and a Cholesky solve.

Posterior draws use pathwise conditioning (Matheron's rule): a prior draw
``u`` (nested noise, :meth:`GaussianMeasure.sample`) and a noise draw
``eta`` become the exact posterior draw ``u + K (y - H u - eta)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg

from ..grids import TorusGrid
from ..noise import GaussianMeasure
from ..spectral import forward, inverse, resample_spectrum
from .observations import Observations

__all__ = ["EXACT_METHODS", "GaussianPosterior", "exact_posterior", "grid_covariance"]

#: methods :func:`exact_posterior` accepts
EXACT_METHODS = ("auto", "spectral", "dense")


def grid_covariance(prior: GaussianMeasure, grid: TorusGrid) -> np.ndarray:
    """``Q_grid[i, j] = Cov(u(x_i), u(x_j))`` for ``u ~ N(0, Q)``, shape ``(n, n)``.

    ``c(x_j) = sum_m q_m exp(i k_m . x_j)`` is one inverse FFT of the
    eigenvalues, and ``Q_grid[i, j] = c(x_i - x_j)`` (points in C order).
    """
    c = np.fft.irfftn(prior.eigenvalues(grid), s=grid.shape, axes=tuple(range(grid.ndim)),
                      norm="forward")
    index = []
    d = grid.ndim
    for i, n in enumerate(grid.shape):
        j = np.arange(n)
        diff = (j[:, None] - j[None, :]) % n
        shape = [1] * (2 * d)
        shape[i] = shape[d + i] = n
        index.append(diff.reshape(shape))
    return c[tuple(index)].reshape(grid.size, grid.size)


@dataclass(frozen=True)
class GaussianPosterior:
    """The exact posterior ``N(mean, P)`` of fields on a grid.

    Unpacks as ``mean, variance, sample = exact_posterior(...)``.

    Attributes
    ----------
    mean : numpy array, shape ``(C, *S)``
        Posterior mean.
    variance : numpy array, shape ``(C, *S)``
        Pointwise posterior variance ``P_ii``.
    method : {"spectral", "dense"}
        How it was computed.
    covariance : numpy array, shape ``(C n, C n)``, or None
        The dense posterior covariance of grid values (dense method).
    spectral_variance : numpy array, shape ``(*K,)``, or None
        ``E|u_hat[k] - mean_hat[k]|^2`` per mode (spectral method).
    grid : TorusGrid
    """

    mean: np.ndarray
    variance: np.ndarray
    method: str
    grid: TorusGrid
    covariance: np.ndarray | None
    spectral_variance: np.ndarray | None
    _draw: Callable[[Any, int], np.ndarray]

    def sample(self, members: Any = 1, seed: int = 0) -> np.ndarray:
        """Exact posterior draws, shape ``(M, C, *S)`` (float64).

        Member ``m`` of ``seed`` is the same whatever else is drawn with it.
        """
        return self._draw(members, seed)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.mean, self.variance, self.sample))


def _mean_field(mean: Any, grid: TorusGrid, channels: int | None) -> np.ndarray:
    if mean is None:
        return np.zeros((channels or 1,) + grid.shape)
    m = mean(grid) if callable(mean) else mean
    m = np.array(m, dtype=np.float64)
    if m.shape == grid.shape:
        m = m[None]
    if m.ndim != grid.ndim + 1 or m.shape[1:] != grid.shape:
        raise ValueError(f"mean has shape {m.shape}; expected (C, *S) = (C, *{grid.shape})")
    if channels is not None and m.shape[0] != channels:
        raise ValueError(f"mean has {m.shape[0]} channels but channels={channels}")
    if not np.isfinite(m).all():
        raise ValueError("mean has NaN or infinite values")
    return m


def exact_posterior(
    prior: GaussianMeasure,
    mean: Any,
    observations: Observations,
    grid: TorusGrid,
    *,
    channels: int | None = None,
    method: str = "auto",
    max_points: int = 4096,
) -> GaussianPosterior:
    """The exact posterior of the prior ``N(mean, Q)`` given the observations.

    Parameters
    ----------
    prior : GaussianMeasure
        ``Q`` (the same for every channel; channels are independent).
    mean : None, array ``(C, *S)`` or callable
        The prior mean ``m``: zero, its grid values, or ``mean(grid)``.
    observations : Observations
        ``y``, ``H`` and ``R``.
    grid : TorusGrid
        Where the posterior is computed.
    channels : int, optional
        Number of channels ``C`` (default: from ``mean``, else 1).
    method : {"auto", "spectral", "dense"}
        ``"auto"``: spectral where ``H`` is diagonal in Fourier and ``R`` is
        ``sigma^2 I``, dense otherwise.
    max_points : int
        Largest ``C n`` the dense method accepts (its matrices are
        ``(C n)^2``).

    Returns
    -------
    GaussianPosterior
        ``mean (C, *S)``, ``variance (C, *S)`` and ``sample(members, seed)``;
        it unpacks as that triple.

    Examples
    --------
    >>> import numpy as np
    >>> from sciffd.grids import torus
    >>> from sciffd.noise import Matern
    >>> from sciffd.inverse import Observations, PointObservation
    >>> g = torus(8)
    >>> obs = Observations(PointObservation([[0.5, 0.5]], "spectral"), [1.0], 0.1)
    >>> mean, var, sample = exact_posterior(Matern(2.0, 3.0), None, obs, g)
    >>> mean.shape, sample(members=3, seed=1).shape
    ((1, 8, 8), (3, 1, 8, 8))
    """
    if not isinstance(prior, GaussianMeasure):
        raise TypeError(f"prior must be a sciffd.noise.GaussianMeasure, got "
                        f"{type(prior).__name__}")
    if not isinstance(observations, Observations):
        raise TypeError(f"observations must be a sciffd.inverse.Observations, got "
                        f"{type(observations).__name__}")
    if not isinstance(grid, TorusGrid):
        raise TypeError(f"grid must be a sciffd.grids.TorusGrid, got {type(grid).__name__}")
    if method not in EXACT_METHODS:
        raise ValueError(f"method={method!r} is not supported; expected one of {EXACT_METHODS}")
    m = _mean_field(mean, grid, channels)
    c = m.shape[0]
    observations.check(grid, c)

    diagonal = observations.operator.fourier_diagonal(grid)
    spectral_ok = diagonal is not None and observations.noise.is_scalar
    if method == "spectral" and not spectral_ok:
        raise ValueError(
            f"method='spectral' needs an operator diagonal in Fourier (Blur, CoarseGrain "
            f"'spectral') and a scalar noise std; got {observations.operator!r} with "
            f"{observations.noise!r}; use method='dense'"
        )
    if method == "spectral" or (method == "auto" and spectral_ok):
        return _spectral(prior, m, observations, grid, diagonal)
    if c * grid.size > max_points:
        raise ValueError(
            f"the dense exact posterior of {c} x {grid.size} grid values exceeds "
            f"max_points={max_points}; use a coarser grid or raise max_points"
        )
    return _dense(prior, m, observations, grid)


def _prior_draws(prior: GaussianMeasure, m: np.ndarray, grid: TorusGrid, members: Any,
                 seed: int) -> np.ndarray:
    u = prior.sample(grid, members, seed, channels=m.shape[0], dtype=np.float64,
                     backend_name="numpy")
    return u + m


def _spectral(prior, m, observations, grid, diagonal) -> GaussianPosterior:
    obs_grid, b = diagonal
    c = m.shape[0]
    q = prior.eigenvalues(grid)
    r = observations.noise.std**2 / obs_grid.size
    gain = q * b / (b * b * q + r)

    def to_model_spectrum(values: np.ndarray) -> np.ndarray:
        """Obs-grid values ``(B, C n_o)`` -> their coefficients on the model grid."""
        v = values.reshape((values.shape[0], c) + obs_grid.shape)
        v_hat = forward(v, obs_grid)
        return v_hat if obs_grid == grid else resample_spectrum(v_hat, obs_grid, grid)

    m_hat = forward(m, grid)
    y_hat = to_model_spectrum(observations.values[None])[0]
    mean = inverse(m_hat + gain * (y_hat - b * m_hat), grid)
    p = q - gain * b * q
    variance = np.full((c,) + grid.shape, float((p * grid.hermitian_weight).sum()))

    def draw(members: Any, seed: int) -> np.ndarray:
        u = _prior_draws(prior, m, grid, members, seed)
        eta = observations.noise.sample(observations.n_obs, members, seed)
        res = observations.values - observations.operator.apply(u, grid) - eta
        return u + inverse(gain * to_model_spectrum(res), grid)

    return GaussianPosterior(mean, variance, "spectral", grid, None, p, draw)


def _operator_matrix(observations: Observations, grid: TorusGrid, c: int) -> np.ndarray:
    """The matrix of ``H``, ``(n_obs, C n)``, from ``H`` applied to the unit fields."""
    total = c * grid.size
    rows = []
    for start in range(0, total, 512):
        stop = min(total, start + 512)
        unit = np.zeros((stop - start, total))
        unit[np.arange(stop - start), np.arange(start, stop)] = 1.0
        rows.append(observations.operator.apply(unit.reshape((-1, c) + grid.shape), grid))
    return np.concatenate(rows, axis=0).T


def _dense(prior, m, observations, grid) -> GaussianPosterior:
    c = m.shape[0]
    q_grid = grid_covariance(prior, grid)
    q_full = np.kron(np.eye(c), q_grid) if c > 1 else q_grid
    h = _operator_matrix(observations, grid, c)
    qht = q_full @ h.T
    s = h @ qht + observations.noise.matrix(observations.n_obs)
    factor = scipy.linalg.cho_factor(s, lower=True)
    kt = scipy.linalg.cho_solve(factor, qht.T)  # K^T, (n_obs, C n)
    m_flat = m.reshape(-1)
    mean = m_flat + (observations.values - h @ m_flat) @ kt
    p = q_full - qht @ kt
    p = 0.5 * (p + p.T)
    shape = (c,) + grid.shape

    def draw(members: Any, seed: int) -> np.ndarray:
        u = _prior_draws(prior, m, grid, members, seed)
        eta = observations.noise.sample(observations.n_obs, members, seed)
        res = observations.values - observations.operator.apply(u, grid) - eta
        return u + (res @ kt).reshape((-1,) + shape)

    return GaussianPosterior(mean.reshape(shape), np.diag(p).reshape(shape).copy(), "dense",
                             grid, p, None, draw)
