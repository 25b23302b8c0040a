"""Samplers of the reverse-time process, for any score model on any grid.

The forward VP process ``du = -1/2 beta(t) u dt + sqrt(beta(t)) C^(1/2) dW``
(see :mod:`sciffd.sde`) has, with the C-preconditioned score
``S(u, t) = C grad log p_t(u)`` of a :class:`~sciffd.models.ScoreModel`, the
reverse-time SDE

    du = [-1/2 beta(t) u - beta(t) S(u, t)] dt + sqrt(beta(t)) C^(1/2) dW_bar,

run from ``t = t_max`` down to ``t = t_min`` (``dt < 0``, ``W_bar`` a
Brownian motion in reverse time), and the probability-flow ODE

    du/dt = -1/2 beta(t) (u + S(u, t)),

whose solution has the same marginals ``p_t`` (Song et al. 2021,
arXiv:2011.13456). Both are well defined in function space because the
score enters only through its C-preconditioned form: the drift and the
noise ``C^(1/2) dW`` live in the same trace-class space.

:class:`EulerMaruyama` integrates the SDE, :class:`Heun` the ODE, on the
times of :func:`time_steps`; :func:`sample` draws an ensemble.

**Start field.** The samplers start from ``u_T = s(T) xi``,
``xi ~ N(0, C)``. The true marginal at ``T`` is
``N(a(T) m, a(T)^2 Q + s(T)^2 C)``: the start neglects ``a(T)^2 Q``, a
relative error ``a(T)^2 q_k / (a(T)^2 q_k + s(T)^2 c_k)`` per mode for
Gaussian data, below ``a(T)^2 q_k / c_k``. For the linear schedule
``a(1)^2 = exp(-10.05) = 4.3e-5``.

**Final denoising.** At ``t_min`` the field still carries the noise
``s(t_min) xi``, which dominates the high modes when ``C`` is rougher than
the data. With ``denoise_final=True`` (the default) the last state is
replaced by the denoiser ``D(u, t_min) = E[u_0 | u_{t_min} = u]``, which
removes it. For Gaussian data the output then has the per-mode variance
``q_k a^2 q_k / (a^2 q_k + s^2 c_k)`` at ``t = t_min`` (a posterior mean is
slightly less variable than the data), against ``a^2 q_k + s^2 c_k``
without it.

**Nested randomness.** Member ``m`` of seed ``s`` draws its start field from
``noise.sample(..., stream=0)`` and the noise of Euler-Maruyama step ``n``
(``n = 0, 1, ..``) from ``stream=n+1`` (:mod:`sciffd.noise`). Its whole path
therefore depends only on ``(seed, m)``: it is the same drawn alone, in a
batch or in any split into batches, and, because the noise is nested, its
low modes are the same at every resolution for a model that acts mode by
mode.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from . import backend
from .grids import TorusGrid
from .models.base import ScoreModel
from .noise import GaussianMeasure, _check_seed, _member_ids
from .sde import VPProcess
from .spectral import as_array_like, forward, inverse

__all__ = ["SPACINGS", "EulerMaruyama", "Heun", "gaussian_posterior_step", "sample",
           "sigma_range", "time_steps"]

logger = logging.getLogger(__name__)

#: the time spacings :func:`time_steps` accepts
SPACINGS = ("edm", "uniform")

#: members per batch when ``batch_size`` is not given
DEFAULT_BATCH_SIZE = 32


def _check_steps(steps: Any) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise TypeError(f"steps={steps!r} must be an integer number of time steps")
    if steps < 1:
        raise ValueError(f"steps={steps!r} must be at least 1")
    return int(steps)


def _check_spacing(spacing: Any, rho: Any) -> None:
    if spacing not in SPACINGS:
        raise ValueError(f"spacing={spacing!r} is not supported; expected one of {SPACINGS}")
    if isinstance(rho, bool) or not isinstance(rho, (int, float, np.integer, np.floating)):
        raise TypeError(f"rho={rho!r} must be a real number")
    if not (math.isfinite(rho) and rho > 0):
        raise ValueError(f"rho={rho!r} must be finite and positive (EDM uses 7)")


def time_steps(process: VPProcess, steps: int, spacing: str = "edm",
               rho: float = 7.0, t_end: float | None = None) -> np.ndarray:
    """The ``steps + 1`` times ``t_0 = t_max > t_1 > .. > t_steps = t_end`` (default ``t_min``).

    Parameters
    ----------
    process : VPProcess
        The forward process; gives ``t_max``, ``t_min`` and ``sigma(t)``.
    steps : int
        Number of steps (intervals), at least 1.
    spacing : {"edm", "uniform"}
        ``"edm"``: uniform in ``sigma^(1/rho)`` with ``sigma = s/a`` the
        EDM noise level (Karras et al. 2022, arXiv:2206.00364),

            sigma_n = (sigma_max^(1/rho) + n/steps (sigma_min^(1/rho)
                       - sigma_max^(1/rho)))^rho,

        mapped to times with ``process.time_of_sigma``; small steps near
        ``t_min``, where the score changes fastest. ``"uniform"``: uniform
        in ``t``.
    rho : float
        Exponent of the EDM spacing (ignored for ``"uniform"``).
    t_end : float, optional
        The last time, in ``(t_min, t_max)`` (default ``t_min``).

    Returns
    -------
    t : numpy array, shape ``(steps + 1,)``, float64, strictly decreasing

    Examples
    --------
    >>> t = time_steps(VPProcess(), 4, spacing="uniform")
    >>> [round(float(x), 6) for x in t]
    [1.0, 0.75025, 0.5005, 0.25075, 0.001]
    """
    if not isinstance(process, VPProcess):
        raise TypeError(f"process must be a sciffd.sde.VPProcess, got {type(process).__name__}")
    steps = _check_steps(steps)
    _check_spacing(spacing, rho)
    t_max, t_min = float(process.t_max), float(process.t_min)
    if t_end is not None:
        t_end = float(t_end)
        if not t_min <= t_end < t_max:
            raise ValueError(f"t_end={t_end!r} must lie in [t_min={t_min}, t_max={t_max})")
        t_min = t_end
    if spacing == "uniform":
        t = np.linspace(t_max, t_min, steps + 1)
    else:
        root_max = float(process.sigma(t_max)) ** (1.0 / rho)
        root_min = float(process.sigma(t_min)) ** (1.0 / rho)
        fraction = np.arange(steps + 1, dtype=np.float64) / steps
        sigma = (root_max + fraction * (root_min - root_max)) ** rho
        t = np.asarray(process.time_of_sigma(sigma), dtype=np.float64)
        t = np.clip(t, t_min, t_max)
    # the ends exactly, not through a round trip of time_of_sigma
    t[0], t[-1] = t_max, t_min
    return t


def _check_sampler_fields(sampler: Any) -> None:
    _check_steps(sampler.steps)
    _check_spacing(sampler.spacing, sampler.rho)
    if not isinstance(sampler.denoise_final, bool):
        raise TypeError(f"denoise_final={sampler.denoise_final!r} must be True or False")
    stop = sampler.sigma_stop
    if stop is not None:
        if isinstance(stop, bool) or not isinstance(stop, (int, float, np.floating)) \
                or not (math.isfinite(stop) and stop > 0):
            raise ValueError(f"sigma_stop={stop!r} must be None or a positive noise level "
                             "sigma = s(t) / a(t)")
        if not sampler.denoise_final:
            raise ValueError("sigma_stop ends with the Gaussian posterior step, which "
                             "denoises; it cannot be combined with denoise_final=False")


def sigma_range(process: VPProcess) -> tuple[float, float]:
    """``(sigma(t_min), sigma(t_max))``: the open range a ``sigma_stop`` must lie in."""
    return float(process.sigma(process.t_min)), float(process.sigma(process.t_max))


def _end_time(sampler: Any, process: VPProcess) -> float | None:
    """The time of ``sampler.sigma_stop`` (None: ``t_min``), checked against the process."""
    if sampler.sigma_stop is None:
        return None
    lo, hi = sigma_range(process)
    if not lo < sampler.sigma_stop < hi:
        raise ValueError(f"sigma_stop={sampler.sigma_stop!r} must lie between the process's "
                         f"sigma(t_min) = {lo:.4g} and sigma(t_max) = {hi:.4g}")
    return float(process.time_of_sigma(float(sampler.sigma_stop)))


@dataclass(frozen=True)
class EulerMaruyama:
    """Euler-Maruyama integration of the reverse-time SDE.

    From ``t_n`` to ``t_{n+1} = t_n - h`` (``h > 0``) the step is

        u_{n+1} = u_n + h [1/2 beta_n u_n + beta_n S(u_n, t_n)]
                  + sqrt(beta_n h) xi_n,        xi_n ~ N(0, C),

    with ``beta_n = beta(t_n)``: the Ito discretisation of
    ``du = [-1/2 beta u - beta S] dt + sqrt(beta) C^(1/2) dW_bar`` (weak
    order 1). ``xi_n`` is drawn with ``stream=n+1``.

    Parameters
    ----------
    steps : int
        Number of steps ``N`` (model evaluations: ``N``, plus one for the
        final denoising).
    spacing : {"edm", "uniform"}
        Time spacing, see :func:`time_steps`.
    rho : float
        Exponent of the EDM spacing.
    denoise_final : bool
        Return ``D(u_N, t_min)`` instead of ``u_N`` (see the module notes).
    sigma_stop : float, optional
        End the integration at the noise level ``sigma_stop`` (``t_N`` with
        ``sigma(t_N) = sigma_stop``) and take the Gaussian posterior step
        ``D(u_N) + N(0, V)`` there, ``V`` the posterior covariance of the
        model's Gaussian reference (:func:`gaussian_posterior_step`).
    """

    steps: int = 500
    spacing: str = "edm"
    rho: float = 7.0
    denoise_final: bool = True
    sigma_stop: float | None = None

    #: whether a step consumes a draw of ``N(0, C)``
    stochastic: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _check_sampler_fields(self)

    def times(self, process: VPProcess) -> np.ndarray:
        """The times of the steps, see :func:`time_steps`."""
        return time_steps(process, self.steps, self.spacing, self.rho,
                          _end_time(self, process))

    def step(self, model: ScoreModel, grid: TorusGrid, u: Any, t: float, t_next: float,
             noise: Any = None) -> Any:
        """One step from ``t`` to ``t_next < t``.

        Parameters
        ----------
        u : array, shape ``(B, C, *S)``
            The state ``u_n`` at time ``t``.
        noise : array, shape ``(B, C, *S)``
            A draw ``xi_n`` of ``N(0, C)``.

        Returns
        -------
        u_next : array, shape ``(B, C, *S)``
        """
        if noise is None:
            raise TypeError("EulerMaruyama.step needs noise, a draw of N(0, C) shaped like u")
        h = float(t) - float(t_next)
        beta = float(model.process.beta(float(t)))
        score = model.score(u, float(t), grid)
        return u + (h * beta) * (0.5 * u + score) + math.sqrt(beta * h) * noise


@dataclass(frozen=True)
class Heun:
    """Heun's method (explicit trapezoidal rule) for the probability-flow ODE.

    With ``F(u, t) = -1/2 beta(t) (u + S(u, t))`` and ``dt = t_{n+1} - t_n < 0``,

        d_1 = F(u_n, t_n),   u' = u_n + dt d_1,
        u_{n+1} = u_n + dt/2 (d_1 + F(u', t_{n+1})),

    a second-order method (Karras et al. 2022, arXiv:2206.00364). EDM takes
    a first-order last step because its last time is ``sigma = 0``, where
    ``F`` is not defined; here the last time is ``t_min > 0``, so every
    step, the last included, is a Heun step.

    Parameters
    ----------
    steps : int
        Number of steps ``N`` (model evaluations: ``2 N``, plus one for the
        final denoising).
    spacing : {"edm", "uniform"}
        Time spacing, see :func:`time_steps`.
    rho : float
        Exponent of the EDM spacing.
    denoise_final : bool
        Return ``D(u_N, t_min)`` instead of ``u_N`` (see the module notes).
    sigma_stop : float, optional
        End the integration at the noise level ``sigma_stop`` (``t_N`` with
        ``sigma(t_N) = sigma_stop``) and take the Gaussian posterior step
        ``D(u_N) + N(0, V)`` there, ``V`` the posterior covariance of the
        model's Gaussian reference (:func:`gaussian_posterior_step`).
    """

    steps: int = 64
    spacing: str = "edm"
    rho: float = 7.0
    denoise_final: bool = True
    sigma_stop: float | None = None

    stochastic: ClassVar[bool] = False

    def __post_init__(self) -> None:
        _check_sampler_fields(self)

    def times(self, process: VPProcess) -> np.ndarray:
        """The times of the steps, see :func:`time_steps`."""
        return time_steps(process, self.steps, self.spacing, self.rho,
                          _end_time(self, process))

    @staticmethod
    def velocity(model: ScoreModel, grid: TorusGrid, u: Any, t: float) -> Any:
        """``F(u, t) = -1/2 beta(t) (u + S(u, t))``."""
        beta = float(model.process.beta(float(t)))
        return (-0.5 * beta) * (u + model.score(u, float(t), grid))

    def step(self, model: ScoreModel, grid: TorusGrid, u: Any, t: float, t_next: float,
             noise: Any = None) -> Any:
        """One step from ``t`` to ``t_next < t`` (``noise`` is not used).

        Parameters
        ----------
        u : array, shape ``(B, C, *S)``
            The state ``u_n`` at time ``t``.

        Returns
        -------
        u_next : array, shape ``(B, C, *S)``
        """
        dt = float(t_next) - float(t)
        d1 = self.velocity(model, grid, u, t)
        d2 = self.velocity(model, grid, u + dt * d1, t_next)
        return u + (0.5 * dt) * (d1 + d2)


SAMPLERS = (EulerMaruyama, Heun)


def gaussian_posterior_step(model: ScoreModel, grid: TorusGrid, u: Any, t: float,
                            noise: Any) -> Any:
    """``D(u, t) + V^(1/2) C^(-1/2) xi``: a draw from the Gaussian approximation of
    ``p(u_0 | u_t = u)``.

    ``V`` is the posterior covariance ``q s^2 c / (a^2 q + s^2 c)`` (per mode) of the
    model's Gaussian reference, ``model.posterior_variance(t, grid)``, and ``xi`` a draw
    of the noise ``N(0, C)``. For Gaussian data the posterior is exactly ``N(D, V)``,
    so stopping the reverse process at any ``t`` and taking this step gives exact
    samples; for other data the step replaces the stretch ``(0, t)`` of the reverse
    process by its Gaussian approximation about the learned mean ``D``.
    """
    v = np.asarray(_posterior_of(model)(float(t), grid), dtype=np.float64)
    c = np.asarray(model.noise.eigenvalues(grid), dtype=np.float64)
    factor = np.where(c > 0, np.sqrt(np.maximum(v, 0.0) / np.where(c > 0, c, 1.0)), 0.0)
    noise_hat = forward(noise, grid)
    spread = inverse(noise_hat * as_array_like(factor, noise_hat), grid)
    return model.denoise(u, float(t), grid) + spread


def _posterior_of(model: ScoreModel) -> Callable:
    """The model's ``posterior_variance``, or a clear error when it has none."""
    posterior = getattr(model, "posterior_variance", None)
    if posterior is None:
        raise ValueError(f"sigma_stop needs a model with a Gaussian reference "
                         f"(posterior_variance); {type(model).__name__} has none")
    return posterior


def _check_model(model: Any) -> ScoreModel:
    if not isinstance(model, ScoreModel):
        raise TypeError(
            f"model must be a sciffd.models.ScoreModel (for example GaussianScore(...)), "
            f"got {type(model).__name__}"
        )
    if not isinstance(model.process, VPProcess):
        raise TypeError(
            f"model.process must be a sciffd.sde.VPProcess, got {type(model.process).__name__}"
        )
    if not isinstance(model.noise, GaussianMeasure):
        raise TypeError(
            f"model.noise must be a sciffd.noise.GaussianMeasure, "
            f"got {type(model.noise).__name__}"
        )
    channels = model.channels
    if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) \
            or channels < 1:
        raise ValueError(f"model.channels={channels!r} must be a positive integer")
    backend.check_backend(model.backend)
    return model


def _check_batch_size(batch_size: Any, members: int) -> int:
    if batch_size is None:
        return min(members, DEFAULT_BATCH_SIZE)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size={batch_size!r} must be a positive integer or None")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be a positive integer or None")
    return int(batch_size)


def _no_grad(name: str):
    if name == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


def _cast(u: Any, dtype: np.dtype) -> Any:
    """``u`` in the sampling precision (a model may promote, e.g. by numpy scalars)."""
    if backend.backend_name(u) == "torch":
        import torch

        target = torch.float32 if dtype == np.float32 else torch.float64
        return u if u.dtype == target else u.to(target)
    return u if u.dtype == dtype else u.astype(dtype)


def sample(
    model: ScoreModel,
    grid: TorusGrid,
    members: int | Sequence[int] = 16,
    seed: int = 0,
    sampler: EulerMaruyama | Heun | None = None,
    *,
    batch_size: int | None = None,
    progress: bool = True,
    dtype: Any = np.float32,
    after_step: Callable[[Any, float, int, np.ndarray], Any] | None = None,
) -> Any:
    """Draw an ensemble from a score model by integrating the reverse process.

    Parameters
    ----------
    model : ScoreModel
        The model; its ``process``, ``noise``, ``channels``, ``backend`` and
        ``device`` define the process and where the arrays live.
    grid : TorusGrid
        The grid of shape ``S`` to sample on (any resolution).
    members : int or sequence of int
        A count ``M`` (members ``0 .. M-1``) or the member ids to draw.
    seed : int
        The ensemble seed; member ``m`` of ``seed`` is the same whatever
        else is drawn with it.
    sampler : EulerMaruyama or Heun, optional
        The integrator (default ``Heun()``, 64 steps of the ODE).
    batch_size : int, optional
        Members integrated together (default ``min(M, 32)``); the working
        memory is a few fields per member of a batch.
    progress : bool
        Show a tqdm progress bar over steps x batches.
    dtype : numpy dtype
        ``float32`` (default) or ``float64``.
    after_step : callable, optional
        A hook ``after_step(u, t_next, n, member_ids) -> u`` called after
        step ``n`` (from ``t_n`` to ``t_next = t_{n+1}``) with the state of
        a batch and the ids of its members; the state is replaced by what
        it returns (before the final denoising). :mod:`sciffd.inverse`
        uses it to impose observed values (replacement); default none.

    Returns
    -------
    u : array, shape ``(M, C, *S)``
        The samples, in the model's backend and on its device, in the
        order of ``members``.

    Raises
    ------
    TypeError
        If ``model``, ``grid`` or ``sampler`` has the wrong type.
    ValueError
        If ``members``, ``seed``, ``batch_size``, ``dtype`` or
        ``model.channels`` is out of range.

    Examples
    --------
    >>> from sciffd.grids import torus
    >>> from sciffd.models import GaussianScore
    >>> from sciffd.noise import Matern
    >>> model = GaussianScore(Matern(3.0, 5.0), Matern(2.0, 1.0))
    >>> u = sample(model, torus(16), members=2, sampler=Heun(steps=8), progress=False)
    >>> u.shape, u.dtype
    ((2, 1, 16, 16), dtype('float32'))
    """
    model = _check_model(model)
    if not isinstance(grid, TorusGrid):
        raise TypeError(f"grid must be a sciffd.grids.TorusGrid, got {type(grid).__name__}")
    ids = _member_ids(members)
    seed = _check_seed(seed)
    if sampler is None:
        sampler = Heun()
    if not isinstance(sampler, SAMPLERS):
        raise TypeError(
            f"sampler must be one of {[cls.__name__ for cls in SAMPLERS]} "
            f"(for example Heun(steps=64)), got {type(sampler).__name__}"
        )
    size = _check_batch_size(batch_size, len(ids))
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype={dtype} is not supported; expected float32 or float64")
    if after_step is not None and not callable(after_step):
        raise TypeError(f"after_step={after_step!r} must be None or a callable "
                        "after_step(u, t_next, n, member_ids) -> u")

    name = backend.check_backend(model.backend)
    times = sampler.times(model.process)
    if sampler.sigma_stop is not None:
        _posterior_of(model)  # refuse before integrating, not after
    batches = [ids[i:i + size] for i in range(0, len(ids), size)]
    logger.debug("sampling %d members in %d batches with %r on %r", len(ids),
                 len(batches), sampler, grid)

    def draw(batch: np.ndarray, stream: int) -> Any:
        return model.noise.sample(grid, batch, seed, channels=int(model.channels),
                                  stream=stream, dtype=dtype, backend_name=name,
                                  device=model.device)

    from tqdm.auto import tqdm

    outputs = []
    bar = tqdm(total=len(batches) * sampler.steps, disable=not progress,
               desc=f"{type(sampler).__name__} sampling", unit="step")
    with _no_grad(name), bar:
        for batch in batches:
            u = float(model.process.s(times[0])) * draw(batch, 0)
            for n in range(sampler.steps):
                xi = draw(batch, n + 1) if sampler.stochastic else None
                u = _cast(sampler.step(model, grid, u, times[n], times[n + 1], xi), dtype)
                if after_step is not None:
                    u = _cast(after_step(u, float(times[n + 1]), n, batch), dtype)
                bar.update(1)
            if sampler.sigma_stop is not None:
                xi = draw(batch, sampler.steps + 1)
                u = _cast(gaussian_posterior_step(model, grid, u, float(times[-1]), xi), dtype)
            elif sampler.denoise_final:
                u = _cast(model.denoise(u, float(times[-1]), grid), dtype)
            outputs.append(u)
    if len(outputs) == 1:
        return outputs[0]
    return backend.array_namespace(*outputs).concat(outputs, axis=0)
