"""Conditional sampling: posterior ensembles from a score model and observations.

For the process ``u_t = a u_0 + s xi``, ``xi ~ N(0, C)``, Tweedie's formula
holds for the posterior too, because ``u_t`` depends on ``y`` only
through ``u_0``: the C-preconditioned score of ``p_t(u | y)`` is
``(a E[u_0 | u_t = u, y] - u) / s^2``. A sampler of :mod:`sciffd.sampling`
run with the *guided denoiser* ``D_y(u, t) ~ E[u_0 | u_t = u, y]`` in
place of the model's ``D(u, t) = E[u_0 | u_t = u]`` therefore samples the
posterior, exactly when ``D_y`` is exact. The methods differ in how they
approximate ``D_y``. Below, vectors are grid values, ``Sigma_C = n C`` is
the covariance matrix of the grid values of ``xi`` (``n`` grid points,
``C`` the operator of :meth:`GaussianMeasure.apply`), ``J = dD/du`` and
``W = L^(-1)`` with ``R = L L^T``.

**Tweedie covariance.** Differentiating ``a D = u + s^2 Sigma_C grad log
p_t(u)`` gives ``Cov[u_0 | u_t = u] = (s^2 / a) J Sigma_C``; it is
symmetric, so ``Cov w = (s^2 / a) Sigma_C J^T w``: a vector-Jacobian
product of the denoiser followed by the spectral multiplier ``n c_k``.

**Moment matching** (``"mmps"``; Rozet et al. 2024, arXiv:2405.13712):
``u_0 | u_t ~ N(D, Cov)`` gives ``y | u_t ~ N(H D, H Cov H^T + R)``, and

    D_y = D + Cov H^T v,    (H Cov H^T + R) v = y - H D,

solved by conjugate gradients on the whitened, symmetric positive definite
system ``(I + W H Cov H^T W^T) z = W (y - H D)``, ``v = W^T z``, each
iteration one vector-Jacobian product. For a Gaussian prior ``D`` is
linear, ``Cov`` is exact and ``D_y`` is the exact posterior mean of
``u_0`` given ``(u_t, y)``: the conditional sampler is then exact up to the
time discretisation and the solver tolerance. A learned denoiser's
Jacobian is neither symmetric nor positive semi-definite everywhere, so
``I + A`` may not be positive definite; the solver then stops, member by
member, at the first search direction ``p`` with ``<p, (I + A) p> <
<p, p>``, and returns the iterate of least residual met so far (see
:func:`conjugate_gradient`), instead of iterations that grow without bound.

**Diffusion posterior sampling** (``"dps"``; Chung et al. 2022,
arXiv:2209.14687) replaces ``p(y | u_t)`` by ``p(y | u_0 = D(u_t))``,

    D_y = D + zeta (s^2 / a) Sigma_C grad_u log N(y; H D(u), R)
        = D + zeta Cov H^T R^(-1) (y - H D),

i.e. moment matching with ``(H Cov H^T + R)^(-1)`` replaced by
``zeta R^(-1)``. With ``zeta = 1`` the correction ``delta = Cov H^T R^(-1)
r`` (``r = y - H D``) overshoots wherever ``H Cov H^T`` exceeds ``R``
(early times, precise data) and the explicit steps blow up. The default
weight is the exact line search along ``delta`` of the moment-matched
system: with ``A = W H Cov H^T W^T`` and ``e = W r``,

    zeta = 1 / (1 + rho),    rho = <e, A e> / <e, e> = <e, W H delta> / <e, e>,

the step that minimises the ``(I + A)``-norm error of ``(I + A) z = e``
along ``z = zeta e`` (one steepest-descent step). ``rho`` is the predictive
variance ``H Cov H^T`` in units of the noise ``R``, averaged over the
observations in the direction of the residual, so ``zeta`` is normalised
by the number and the noise of the observations; it costs one more
application of ``H`` and no extra vector-Jacobian product, tends to the
plain ``zeta = 1`` as ``t -> 0`` (``Cov -> 0``), and is exact for one
observation. A learned denoiser's covariance need not be positive
semi-definite, and ``rho`` can then be negative, even far below -1, where a
full step (or the pole at ``rho = -1``) throws the member out of the data's
range; the weight used is therefore ``1 / (1 + |rho|)``, the same for an
exact denoiser (``rho >= 0``) and a step shortened by the size of the
predictive covariance whatever its sign. ``weight=`` sets a constant ``zeta`` instead (Chung et al.
use ``zeta' / ||y - H D||`` on unpreconditioned pixels).

**Replacement** (``"replacement"``; Song et al. 2021, arXiv:2011.13456,
appendix I) imposes, after every step, the observed values noised by the
forward marginal on the observed nodes: ``u_t[j] = a(t) y_j + s(t)
xi[j]``, with ``xi`` the member's own start noise (stream 0 of the nested
noise, so the imposed values agree with the start field ``u_T = s(T) xi``
and an ODE sampler stays deterministic given ``(seed, member)``). It needs
an operator that selects grid nodes (a mask, or points on nodes) and
ignores the observation noise.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import backend
from ..grids import TorusGrid
from ..models.base import ScoreModel, _per_sample
from ..spectral import as_array_like
from .observations import Observations

__all__ = [
    "METHODS",
    "DPS",
    "EnsembleSummary",
    "GuidedModel",
    "MomentMatching",
    "Replacement",
    "condition",
    "conjugate_gradient",
    "summarize",
    "tweedie_covariance",
]

logger = logging.getLogger(__name__)

#: the conditional samplers :func:`condition` accepts by name
METHODS = ("mmps", "dps", "replacement")


# -- building blocks ---------------------------------------------------------------
def conjugate_gradient(apply: Callable[[Any], Any], b: Any, iterations: int,
                       tol: float, floor: float | None = None) -> Any:
    """Solve ``A x = b`` for a batch of symmetric positive definite systems.

    Parameters
    ----------
    apply : callable
        ``A`` applied to a batch ``(B, n)``.
    b : array, shape ``(B, n)``
        Right-hand sides (numpy or torch).
    iterations : int
        Largest number of iterations.
    tol : float
        Stop when every ``||b - A x|| <= tol ||b||``.
    floor : float, optional
        A lower bound on the Rayleigh quotient ``<p, A p> / <p, p>`` that the
        exact ``A`` obeys (1 for ``I + A'`` with ``A'`` positive
        semi-definite). A system whose search direction falls below it is
        not the positive definite system it should be; its iterations stop
        there (the truncation of Steihaug's trust-region CG). With a floor
        the solver also returns, per system, the iterate of least residual
        ``||b - A x||`` met so far, never more than ``||b||`` (``x = 0``): an
        operator that is not symmetric, as a learned Tweedie covariance is
        not, makes CG's residual grow as easily as shrink. Without a floor,
        CG on an indefinite or non-symmetric matrix may grow without bound.

    Returns
    -------
    x : array, shape ``(B, n)``
    """
    x = b * 0
    r = b
    p = r
    rs = (r * r).sum(-1)
    target = (tol * tol) * rs
    alive = rs > target
    best, best_rs = x, rs
    for i in range(iterations):
        active = alive & (rs > target)
        if not bool(active.any()):
            logger.debug("conjugate gradients converged in %d iterations", i)
            break
        ap = apply(p)
        curvature = (p * ap).sum(-1)
        if floor is not None:
            # below the bound by more than float32 rounding of the dot product
            pp, aa = (p * p).sum(-1), (ap * ap).sum(-1)
            bad = active & (curvature - floor * pp < -1e-3 * (pp * aa) ** 0.5)
            if bool(bad.any()):
                logger.debug("conjugate gradients: %d system(s) left the positive definite "
                             "cone at iteration %d", int(bad.sum()), i)
            alive = alive & ~bad
            active = active & ~bad
        safe = curvature + (curvature == 0)
        alpha = (rs / safe) * active
        x = x + alpha[:, None] * p
        r = r - alpha[:, None] * ap
        rs_new = (r * r).sum(-1)
        if floor is not None:
            better = rs_new < best_rs
            best = best + better[:, None] * (x - best)
            best_rs = best_rs + better * (rs_new - best_rs)
        beta = rs_new / (rs + (rs == 0))
        p = r + beta[:, None] * p
        rs = rs_new
    return x if floor is None else best


def _scales(model: ScoreModel, t: Any, u: Any) -> Any:
    """``s(t)^2 / a(t)`` per sample, broadcastable against ``u``."""
    a = _per_sample(model.process.a(t), u)
    s = _per_sample(model.process.s(t), u)
    return s * s / a


def tweedie_covariance(model: ScoreModel, denoised: Any, u: Any, t: Any,
                       grid: TorusGrid) -> Callable[..., Any]:
    """``w -> Cov[u_0 | u_t = u] w = (s^2 / a) Sigma_C J^T w``.

    Parameters
    ----------
    model : ScoreModel
        Gives the process and the noise measure ``C``.
    denoised : torch tensor, shape ``(B, C, *S)``
        ``D(u, t)``, computed from ``u`` with autograd.
    u : torch tensor, shape ``(B, C, *S)``
        The input of the denoiser (``requires_grad``).

    Returns
    -------
    callable
        ``cov(w, keep=True)`` for covectors ``w`` of shape ``(B, C, *S)``;
        ``keep=False`` frees the graph.
    """
    import torch

    factor = _scales(model, t, u) * grid.size

    def cov(w: Any, keep: bool = True) -> Any:
        (g,) = torch.autograd.grad(denoised, u, grad_outputs=w, retain_graph=keep)
        return factor * model.noise.apply(g, grid)

    return cov


@dataclass(frozen=True)
class MomentMatching:
    """Moment-matched guidance with the Tweedie covariance (see the module notes).

    Parameters
    ----------
    cg_iterations : int
        Largest number of conjugate-gradient iterations per denoiser call
        (each one vector-Jacobian product).
    cg_tol : float
        Relative residual at which they stop.
    """

    cg_iterations: int = 32
    cg_tol: float = 1e-4

    def __post_init__(self) -> None:
        if isinstance(self.cg_iterations, bool) or not isinstance(
                self.cg_iterations, (int, np.integer)) or self.cg_iterations < 1:
            raise ValueError(f"cg_iterations={self.cg_iterations!r} must be a positive integer")
        if isinstance(self.cg_tol, bool) or not isinstance(
                self.cg_tol, (int, float, np.floating)) or not 0 < self.cg_tol < 1:
            raise ValueError(f"cg_tol={self.cg_tol!r} must be a number in (0, 1)")

    def denoise(self, model: ScoreModel, observations: Observations, u: Any, t: Any,
                grid: TorusGrid) -> Any:
        """``D_y(u, t)`` for torch fields ``u`` ``(B, C, *S)``."""
        import torch

        op, noise = observations.operator, observations.noise
        channels = int(u.shape[1])
        with torch.enable_grad():
            x = u.detach().requires_grad_(True)
            d = model.denoise(x, t, grid)
            cov = tweedie_covariance(model, d, x, t, grid)

            def back(z: Any) -> Any:
                return op.adjoint(noise.whiten_transpose(z), grid, channels)

            def normal(z: Any) -> Any:
                return z + noise.whiten(op.apply(cov(back(z)), grid))

            r = noise.whiten(observations.residual(d.detach(), grid))
            z = conjugate_gradient(normal, r, int(self.cg_iterations), float(self.cg_tol),
                                     floor=1.0)
            correction = cov(back(z), keep=False)
        return d.detach() + correction


@dataclass(frozen=True)
class DPS:
    """Diffusion posterior sampling through the denoised estimate (module notes).

    Parameters
    ----------
    weight : float, optional
        A constant ``zeta``; default the line-search weight
        ``1 / (1 + |rho|)`` per member (module notes).
    """

    weight: float | None = None

    def __post_init__(self) -> None:
        w = self.weight
        if w is not None and (isinstance(w, bool) or not isinstance(
                w, (int, float, np.floating)) or not (math.isfinite(w) and w >= 0)):
            raise ValueError(f"weight={w!r} must be None or a finite non-negative number")

    def denoise(self, model: ScoreModel, observations: Observations, u: Any, t: Any,
                grid: TorusGrid) -> Any:
        """``D_y(u, t)`` for torch fields ``u`` ``(B, C, *S)``."""
        import torch

        noise = observations.noise
        with torch.enable_grad():
            x = u.detach().requires_grad_(True)
            d = model.denoise(x, t, grid)
            e = noise.whiten(observations.residual(d, grid))
            (g,) = torch.autograd.grad(-0.5 * (e * e).sum(), x)
        # delta = (s^2 / a) Sigma_C grad log N(y; H D, R) = Cov H^T R^(-1) r
        delta = (_scales(model, t, x) * grid.size) * model.noise.apply(g, grid)
        e = e.detach()
        if self.weight is None:
            ee = (e * e).sum(-1)
            rho = (e * noise.whiten(observations.operator.apply(delta, grid))).sum(-1)
            rho = torch.abs(rho / (ee + (ee == 0)))
            zeta = 1.0 / (1.0 + rho)
        else:
            zeta = torch.full(e.shape[:1], float(self.weight), dtype=e.dtype, device=e.device)
        zeta = zeta.reshape((-1,) + (1,) * (u.ndim - 1))
        return d.detach() + zeta * delta


@dataclass(frozen=True)
class Replacement:
    """Impose the noised observations on the observed nodes after every step."""

    def after_step(self, model: ScoreModel, observations: Observations, grid: TorusGrid,
                   seed: int, dtype: Any) -> Callable[[Any, float, int, np.ndarray], Any]:
        """The hook for :func:`sciffd.sampling.sample` (``after_step=``)."""
        index = observations.operator.nodes(grid)
        if index is None:
            raise NotImplementedError(
                f"replacement imposes values on grid nodes; {observations.operator!r} does "
                f"not select nodes of {grid} (it works for masks and points on nodes); use "
                "method='mmps' or 'dps'"
            )
        channels = int(model.channels)
        flat = (np.arange(channels)[:, None] * grid.size + index[None]).reshape(-1)
        name = backend.check_backend(model.backend)
        cache: dict[tuple, Any] = {}

        def hook(u: Any, t: float, n: int, ids: np.ndarray) -> Any:
            key = tuple(int(i) for i in ids)
            if key not in cache:
                cache.clear()
                xi = model.noise.sample(grid, ids, seed, channels=channels, stream=0,
                                        dtype=dtype, backend_name=name, device=model.device)
                cache[key] = xi.reshape((len(ids), -1))
            xi = cache[key]
            idx = flat if name == "numpy" else _long_index(flat, xi)
            y = as_array_like(observations.values, xi)
            out = u.reshape((u.shape[0], -1))
            out = out.clone() if name == "torch" else out.copy()
            out[:, idx] = float(model.process.a(t)) * y + float(model.process.s(t)) \
                * xi[:, idx]
            return out.reshape(u.shape)

        return hook


def _long_index(index: np.ndarray, like: Any) -> Any:
    import torch

    return torch.from_numpy(np.asarray(index, dtype=np.int64)).to(like.device)


GUIDANCE = (MomentMatching, DPS, Replacement)


class GuidedModel(ScoreModel):
    """A score model whose denoiser is the guided ``D_y`` of a guidance rule.

    It computes in torch (autograd); a numpy model (such as the exact
    :class:`~sciffd.models.GaussianScore`) is handed torch tensors, which
    its array-API code accepts.

    Parameters
    ----------
    model : ScoreModel
        The prior model.
    observations : Observations
        ``y``, ``H``, ``R``.
    guidance : MomentMatching or DPS
        The rule.
    """

    def __init__(self, model: ScoreModel, observations: Observations,
                 guidance: MomentMatching | DPS) -> None:
        self.model = model
        self.observations = observations
        self.guidance = guidance
        self.process = model.process
        self.noise = model.noise
        self.channels = model.channels
        self.backend = "torch"
        self.device = model.device if model.backend == "torch" else None

    def denoise(self, u: Any, t: Any, grid: TorusGrid) -> Any:
        return self.guidance.denoise(self.model, self.observations, u, t, grid)

    def config(self) -> dict:
        return {**self.model.config(), "guidance": repr(self.guidance)}


def _guidance(method: Any, options: dict) -> Any:
    if isinstance(method, GUIDANCE):
        if options:
            raise TypeError(f"options {sorted(options)} are given twice: set them on "
                            f"{method!r} itself")
        return method
    classes = {"mmps": MomentMatching, "dps": DPS, "replacement": Replacement}
    if method not in classes:
        raise ValueError(
            f"method={method!r} is not supported; expected one of {METHODS} or a "
            "MomentMatching, DPS or Replacement object"
        )
    cls = classes[method]
    allowed = sorted(f for f in cls.__dataclass_fields__)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(f"method={method!r} takes the options {allowed}, not {unknown}")
    return cls(**options)


def condition(
    model: ScoreModel,
    observations: Observations,
    grid: TorusGrid,
    members: int | Sequence[int] = 16,
    seed: int = 0,
    method: str | MomentMatching | DPS | Replacement = "mmps",
    sampler: Any = None,
    *,
    batch_size: int | None = None,
    progress: bool = True,
    dtype: Any = np.float32,
    **options: Any,
) -> Any:
    """Draw a posterior ensemble of fields given observations.

    Parameters
    ----------
    model : ScoreModel
        The prior, any score model (numpy models are run on torch tensors
        for the guided methods).
    observations : Observations
        ``y = H u + eta``.
    grid : TorusGrid
        The grid to sample on (any resolution the operator applies to).
    members : int or sequence of int
        A count ``M`` or member ids; member ``m`` of ``seed`` is the same
        however the ensemble is split into batches (for ``"mmps"`` to
        within the conjugate-gradient tolerance: each member stops on its
        own residual, and rounding can move that stop by an iteration).
    seed : int
        Ensemble seed.
    method : {"mmps", "dps", "replacement"} or a guidance object
        Moment-matched guidance (the default; exact for Gaussian priors),
        diffusion posterior sampling, or replacement (see the module
        notes).
    sampler : EulerMaruyama or Heun, optional
        The integrator (default ``Heun()``).
    batch_size, progress, dtype
        As for :func:`sciffd.sampling.sample`.
    **options
        Of the method: ``cg_iterations``, ``cg_tol`` (``"mmps"``),
        ``weight`` (``"dps"``).

    Returns
    -------
    u : array, shape ``(M, C, *S)``
        The posterior ensemble, in the model's backend.

    Examples
    --------
    >>> import numpy as np
    >>> from sciffd.grids import torus
    >>> from sciffd.models import GaussianScore
    >>> from sciffd.noise import Matern
    >>> from sciffd.sampling import Heun
    >>> from sciffd.inverse import Observations, PointObservation
    >>> model = GaussianScore(Matern(2.5, 3.0), Matern(2.5, 3.0))
    >>> obs = Observations(PointObservation([[0.5, 0.5]], "spectral"), [1.0], 0.05)
    >>> u = condition(model, obs, torus(16), members=4, sampler=Heun(steps=8),
    ...               progress=False)
    >>> u.shape
    (4, 1, 16, 16)
    """
    from ..sampling import _check_model, sample

    model = _check_model(model)
    if not isinstance(observations, Observations):
        raise TypeError(f"observations must be a sciffd.inverse.Observations, got "
                        f"{type(observations).__name__}")
    if not isinstance(grid, TorusGrid):
        raise TypeError(f"grid must be a sciffd.grids.TorusGrid, got {type(grid).__name__}")
    observations.check(grid, int(model.channels))
    guidance = _guidance(method, options)
    logger.debug("conditioning %r on %r with %r", model, observations, guidance)
    if isinstance(guidance, Replacement):
        hook = guidance.after_step(model, observations, grid, seed, np.dtype(dtype))
        return sample(model, grid, members, seed, sampler, batch_size=batch_size,
                      progress=progress, dtype=dtype, after_step=hook)
    guided = GuidedModel(model, observations, guidance)
    u = sample(guided, grid, members, seed, sampler, batch_size=batch_size,
               progress=progress, dtype=dtype)
    return backend.to_numpy(u) if model.backend == "numpy" else u


@dataclass(frozen=True)
class EnsembleSummary:
    """Mean, spread and data misfit of a posterior ensemble.

    Attributes
    ----------
    mean : numpy array, shape ``(C, *S)``
        Ensemble mean.
    spread : numpy array, shape ``(C, *S)``
        Ensemble standard deviation (``ddof=1``).
    misfit : numpy array, shape ``(M,)``
        ``||W (H u_m - y)|| / sqrt(n_obs)`` per member, which is
        ``||H u_m - y|| / (sqrt(n_obs) sigma)`` for a scalar noise; about 1
        (a little less: the posterior is closer to ``y`` than the truth is)
        for members consistent with the data.
    mean_misfit : float
        The misfit of the ensemble mean.
    """

    mean: np.ndarray
    spread: np.ndarray
    misfit: np.ndarray
    mean_misfit: float


def summarize(ensemble: Any, observations: Observations, grid: TorusGrid) -> EnsembleSummary:
    """Summarise a posterior ensemble ``(M, C, *S)`` against its observations."""
    if not isinstance(observations, Observations):
        raise TypeError(f"observations must be a sciffd.inverse.Observations, got "
                        f"{type(observations).__name__}")
    u = np.asarray(backend.to_numpy(ensemble), dtype=np.float64)
    if u.ndim != grid.ndim + 2 or u.shape[2:] != grid.shape or u.shape[0] < 2:
        raise ValueError(f"ensemble has shape {u.shape}; expected (M, C, *{grid.shape}) with "
                         "M >= 2 members")
    mean = u.mean(axis=0)
    return EnsembleSummary(mean=mean, spread=u.std(axis=0, ddof=1),
                           misfit=observations.misfit(u, grid),
                           mean_misfit=float(observations.misfit(mean[None], grid)[0]))
