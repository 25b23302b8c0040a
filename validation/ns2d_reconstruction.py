"""Reconstruct held-out ns2d vorticity fields from sparse sensors and from a coarse field.

For each truth ``w`` (a held-out solver field) two inverse problems are
solved with the trained ns2d model as the prior and
:meth:`sciffd.pipeline.FieldModel.condition` (``--methods``: moment
matching with few conjugate-gradient iterations, and diffusion posterior
sampling; the report explains why few):

- **points**: ``y_p = w(x_p) + eta_p`` at ``P`` uniformly random points
  (spectral interpolation; by default ``P`` is 3% of the ``64^2`` nodes);
- **coarse**: ``y = B w + eta``, ``B`` the mean over blocks of ``f x f``
  nodes (``f = 4``: a ``16^2`` field);

with ``eta ~ N(0, sigma^2 I)``, ``sigma`` a fraction (3%) of the rms of the
training vorticity. Every posterior ensemble is scored against its truth:

- relative L2 error of the posterior mean, ``||mean - w|| / ||w||`` (grid
  means, so the same at any resolution);
- spread-skill ratio (:func:`sciffd.stats.spread_skill_ratio`, about 1 for
  a calibrated ensemble, below 1 when overconfident);
- CRPS (:func:`sciffd.stats.crps_ensemble`, fair), averaged over the grid,
  in the units of vorticity and relative to the rms of the truth;
- the observation misfit ``||H u - y|| / (sqrt(n) sigma)`` of the members
  and of the mean, next to that of the truth itself (about 1: the noise).

Two baselines, scored the same way (a deterministic field has CRPS equal to
its mean absolute error):

- **interpolation**: for points, the least-squares fit of the real Fourier
  modes ``|m| <= K`` to the observations, with the largest ``K`` whose
  number of unknowns is at most half the number of points (a twice
  overdetermined system); for the coarse field, spectral upsampling of the
  block means to ``64^2``;
- **prior mean**: the mean of the training set at each grid point.

Usage (the report in ``docs/models/ns2d_reconstruction.md``)::

    python validation/ns2d_reconstruction.py --model sciffd/builtin/ns2d \\
        --train ns2d_train.nc --test ns2d_test.nc --out docs/models

``--truths 2 --members 8`` is a quick smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

import sciffd
from sciffd import io, stats
from sciffd.fields import from_dataarray
from sciffd.grids import TorusGrid
from sciffd.inverse import CoarseGrain, ObservationNoise, Observations, PointObservation
from sciffd.spectral import resample

NAME = "ns2d_reconstruction"

#: diffusion times at which the Tweedie covariance of the model is examined
DIAGNOSTIC_TIMES = (0.9, 0.5, 0.2, 0.05, 0.01)

#: environment variables that change the speed, recorded with the command
RECORDED_ENV = ("THP_MEM_ALLOC_ENABLE", "OMP_NUM_THREADS", "SCIFFD_FFT_WORKERS")

#: relative change of the noise level in the repeatability check
SENSITIVITY = 1e-4


# -- data and observations --------------------------------------------------------
def _fields(path: str) -> tuple[np.ndarray, TorusGrid]:
    """Vorticity ``(member, time, y, x)`` of a file, float64, and its grid."""
    w, grid = from_dataarray(io.read_netcdf(path)["vorticity"])
    return w.astype(np.float64), grid


def _truth_ids(n_members: int, count: int) -> list[int]:
    """``count`` distinct members spread over the file (members are independent)."""
    if count > n_members:
        raise SystemExit(f"--truths {count}: the test file has only {n_members} members")
    return [int(i) for i in np.linspace(0, n_members - 1, count).round()]


def _noisy(clean: np.ndarray, std: float, seed: int) -> np.ndarray:
    return clean + ObservationNoise(std=std).sample(clean.size, [0], seed)[0]


def point_observations(truth: np.ndarray, grid: TorusGrid, n_points: int, std: float,
                       seed: int) -> Observations:
    """Spectral point values of ``truth`` ``(*S)`` at uniform random points, plus noise."""
    rng = np.random.default_rng(seed)
    points = rng.random((n_points, grid.ndim)) * np.asarray(grid.lengths)
    operator = PointObservation(points, "spectral", lengths=grid.lengths)
    clean = operator.apply(truth[None, None], grid)[0]
    return Observations(operator, _noisy(clean, std, seed), std)


def coarse_observations(truth: np.ndarray, grid: TorusGrid, factor: int, std: float,
                        seed: int) -> Observations:
    """Block means of ``truth`` over ``factor^d`` nodes, plus noise."""
    operator = CoarseGrain(factor, "block_mean")
    clean = operator.apply(truth[None, None], grid)[0]
    return Observations(operator, _noisy(clean, std, seed), std)


# -- baselines -------------------------------------------------------------------
def disk_modes(radius: int) -> np.ndarray:
    """Integer wavenumbers ``m`` with ``|m| <= radius``, one of each pair ``+-m``, ``(K, 2)``.

    ``m = 0`` comes first; the others have ``m_y > 0``, or ``m_y = 0`` and
    ``m_x > 0``.
    """
    r = np.arange(-radius, radius + 1)
    my, mx = np.meshgrid(r, r, indexing="ij")
    m = np.stack([my.ravel(), mx.ravel()], axis=1)
    inside = (m**2).sum(axis=1) <= radius**2
    upper = (m[:, 0] > 0) | ((m[:, 0] == 0) & (m[:, 1] >= 0))
    return m[inside & upper]


def fourier_radius(n_points: int) -> int:
    """The largest ``K`` whose ``|m| <= K`` real basis has at most ``P / 2`` functions."""
    k = 0
    while 2 * len(disk_modes(k + 1)) - 1 <= n_points // 2:
        k += 1
    return k


def _real_basis(m: np.ndarray, points: np.ndarray, lengths: tuple[float, ...]) -> np.ndarray:
    """``[1, cos(k_m . x), sin(k_m . x) for m != 0]`` at ``points``, ``(P, 2K - 1)``."""
    phase = 2 * np.pi * points @ (m / np.asarray(lengths)).T
    return np.concatenate([np.cos(phase), np.sin(phase[:, 1:])], axis=1)


def fourier_fit(obs: Observations, grid: TorusGrid) -> tuple[np.ndarray, int]:
    """Least-squares fit of the modes ``|m| <= K`` to point observations; field, ``K``."""
    points = obs.operator.coords
    radius = fourier_radius(len(points))
    m = disk_modes(radius)
    coef, *_ = np.linalg.lstsq(_real_basis(m, points, grid.lengths), obs.values, rcond=None)
    y, x = grid.mesh()
    nodes = np.stack([np.broadcast_to(y, grid.shape).ravel(),
                      np.broadcast_to(x, grid.shape).ravel()], axis=1)
    return (_real_basis(m, nodes, grid.lengths) @ coef).reshape(grid.shape), radius


def block_mean_transfer(coarse: TorusGrid, grid: TorusGrid) -> np.ndarray:
    """``T(k) = prod_i (1/f_i) sum_q exp(i k_i q h_i)`` on the coarse half spectrum.

    The block mean of the nodes ``J f .. J f + f - 1`` of ``exp(i k x)`` is
    ``T(k) exp(i k X_J)``: an attenuation and the shift to the block's
    centre ``X_J + (f - 1) h / 2``.
    """
    transfer = np.ones(coarse.spectral_shape, dtype=complex)
    for axis, (n, nc, length) in enumerate(zip(grid.shape, coarse.shape, grid.lengths,
                                                strict=True)):
        k = 2 * np.pi * coarse.mode_indices(axis) / length
        q = np.arange(n // nc) * (length / n)
        shape = [1] * grid.ndim
        shape[axis] = -1
        transfer = transfer * np.exp(1j * np.outer(k, q)).mean(axis=1).reshape(shape)
    return transfer


def spectral_upsampling(obs: Observations, grid: TorusGrid) -> np.ndarray:
    """The block means, deconvolved on the coarse band and resampled spectrally to ``grid``.

    Each retained coefficient is divided by the block-mean transfer
    function (which also moves the values from the block centres to the
    coarse nodes); the coarse Nyquist modes are dropped.
    """
    coarse = obs.operator.obs_grid(grid)
    axes = tuple(range(grid.ndim))
    c_hat = np.fft.rfftn(obs.values.reshape(coarse.shape), axes=axes, norm="forward")
    c_hat = c_hat / block_mean_transfer(coarse, grid) * coarse.nyquist_mask
    v = np.fft.irfftn(c_hat, s=coarse.shape, axes=axes, norm="forward")
    return resample(v, coarse, grid.shape)


# -- scores ----------------------------------------------------------------------
def _rms(u: np.ndarray) -> float:
    return float(np.sqrt(np.mean(u**2)))


def ensemble_scores(members: np.ndarray, truth: np.ndarray, obs: Observations,
                    grid: TorusGrid) -> dict:
    """Scores of an ensemble ``(M, *S)`` against ``truth`` ``(*S)``."""
    mean = members.mean(axis=0)
    crps = float(stats.crps_ensemble(members, truth).mean())
    misfit = obs.misfit(members[:, None], grid)
    return {
        "rel_l2": _rms(mean - truth) / _rms(truth),
        "spread_skill": float(stats.spread_skill_ratio(members, truth)),
        "crps": crps,
        "crps_rel": crps / _rms(truth),
        "misfit_members": float(misfit.mean()),
        "misfit_mean": float(obs.misfit(mean[None, None], grid)[0]),
    }


def field_scores(field: np.ndarray, truth: np.ndarray, obs: Observations,
                 grid: TorusGrid) -> dict:
    """Scores of a deterministic field (CRPS = mean absolute error)."""
    mae = float(np.abs(field - truth).mean())
    return {"rel_l2": _rms(field - truth) / _rms(truth), "crps": mae,
            "crps_rel": mae / _rms(truth),
            "misfit_mean": float(obs.misfit(field[None, None], grid)[0])}


# -- the Tweedie covariance of the learned denoiser ---------------------------------
def covariance_diagnostics(model, obs: Observations, truth: np.ndarray, grid: TorusGrid,
                           prior_obs_cov: np.ndarray, times: tuple[float, ...]) -> list[dict]:
    """The whitened ``A = W H Cov[u_0 | u_t] H^T W^T`` of moment matching, densely.

    ``u_t = a(t) w + s(t) xi`` for the truth ``w`` and one noise draw; the
    columns ``A e_j`` come from one batched vector-Jacobian product
    (:func:`sciffd.inverse.tweedie_covariance`). For an exact denoiser
    ``A`` is symmetric with eigenvalues in ``[0, lambda_max(W H Q H^T
    W^T)]`` (``Q`` the data covariance: conditioning never adds variance);
    the moment-matched system ``(I + A) z = e`` is solved by conjugate
    gradients, which needs ``I + A`` symmetric positive definite.
    """
    import torch

    from sciffd.inverse import tweedie_covariance

    op, noise, n = obs.operator, obs.noise, obs.n_obs
    bound = float(np.linalg.eigvalsh(prior_obs_cov / noise.std**2).max())
    xi = model.noise.sample(grid, [0], 0, dtype=np.float32, backend_name="torch")
    w = torch.as_tensor(truth[None, None], dtype=torch.float32)
    rows = []
    for t in times:
        a, s = float(model.process.a(t)), float(model.process.s(t))
        u = (a * w + s * xi).repeat(n, 1, 1, 1).requires_grad_(True)
        d = model.denoise(u, t, grid)
        cov = tweedie_covariance(model, d, u, t, grid)
        unit = torch.eye(n, dtype=torch.float32)
        columns = noise.whiten(op.apply(cov(op.adjoint(noise.whiten_transpose(unit), grid, 1),
                                            keep=False), grid))
        A = columns.detach().double().numpy().T
        sym = 0.5 * (A + A.T)
        eig = np.linalg.eigvalsh(sym)
        rows.append({"t": t, "sigma": s / a,
                     "asymmetry": float(np.linalg.norm(A - A.T) / np.linalg.norm(A)),
                     "eig_min": float(eig.min()), "eig_max": float(eig.max()),
                     "prior_bound": bound})
    return rows


# -- plots -----------------------------------------------------------------------
def plot_case(path: Path, truth: np.ndarray, obs: Observations, members: np.ndarray,
              baseline: np.ndarray, baseline_name: str, grid: TorusGrid) -> None:
    """Truth, observations, posterior mean, spread, one member, baseline; ``(M, *S)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mean = members.mean(axis=0)
    spread = members.std(axis=0, ddof=1)
    member = members[0]
    lim = float(np.abs(truth).max())
    extent = (0, grid.lengths[1], 0, grid.lengths[0])
    shown = dict(cmap="RdBu_r", vmin=-lim, vmax=lim, origin="lower", extent=extent)
    fig, axes = plt.subplots(1, 6, figsize=(18, 3.3), constrained_layout=True)
    axes[0].imshow(truth, **shown)
    axes[0].set_title("truth")
    if isinstance(obs.operator, PointObservation):
        p = obs.operator.coords
        axes[1].scatter(p[:, 1], p[:, 0], c=obs.values, cmap="RdBu_r", vmin=-lim, vmax=lim,
                        s=14, edgecolors="k", linewidths=0.3)
        axes[1].set_xlim(0, grid.lengths[1])
        axes[1].set_ylim(0, grid.lengths[0])
        axes[1].set_aspect("equal")
        axes[1].set_title(f"{obs.n_obs} observations")
    else:
        coarse = obs.operator.obs_grid(grid)
        axes[1].imshow(obs.values.reshape(coarse.shape), **shown)
        axes[1].set_title(f"observed {coarse.shape[0]}x{coarse.shape[1]} block means")
    axes[2].imshow(mean, **shown)
    axes[2].set_title("posterior mean")
    im = axes[3].imshow(spread, cmap="viridis", origin="lower", extent=extent, vmin=0)
    axes[3].set_title("posterior spread")
    fig.colorbar(im, ax=axes[3], shrink=0.8)
    axes[4].imshow(member, **shown)
    axes[4].set_title("one member")
    im = axes[5].imshow(baseline, **shown)
    axes[5].set_title(baseline_name)
    fig.colorbar(im, ax=axes[5], shrink=0.8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.savefig(path, dpi=80)
    plt.close(fig)


# -- report ----------------------------------------------------------------------
METHOD_LABELS = {"mmps": "moment matching (mmps)", "dps": "DPS"}


def _stat(values: list[float]) -> str:
    v = np.asarray(values)
    return f"{v.mean():.3f} ± {v.std(ddof=1) if v.size > 1 else 0.0:.3f}"


def _table(cases: list[dict], methods: list[str], members: int) -> list[str]:
    rows = [(f"posterior, {METHOD_LABELS[m]}", ("posterior", m)) for m in methods]
    rows += [("interpolation", ("interpolation", None)),
             ("prior mean (training mean)", ("prior_mean", None))]
    lines = ["| | rel. L2 error | CRPS / rms | CRPS | spread-skill | misfit of members "
             "| misfit of the field | diverged members |",
             "|---|---|---|---|---|---|---|---|"]
    for label, (key, method) in rows:
        cells = [label]
        for metric in ("rel_l2", "crps_rel", "crps", "spread_skill", "misfit_members",
                       "misfit_mean"):
            scores = [c[key] if method is None else c[key][method] for c in cases]
            values = [sc[metric] for sc in scores if metric in sc]
            cells.append(_stat(values) if values else "-")
        diverged = [sc.get("diverged") for sc in scores]
        cells.append("-" if None in diverged else f"{sum(diverged)} of {len(diverged) * members}")
        lines.append("| " + " | ".join(cells) + " |")
    truth = [c["misfit_truth"] for c in cases]
    lines.append(f"| truth | 0 | 0 | 0 | - | - | {_stat(truth)} | - |")
    return lines


def write_report(path: Path, results: dict) -> None:
    s = results["settings"]
    methods = s["methods"]
    used = "; ".join(f"`{m}` ({s['method_options'][m]})" for m in methods)
    lines = [
        "# ns2d: reconstruction from sparse sensors and from a coarse field",
        "",
        f"Posterior ensembles of the trained ns2d model (`{s['model']}`) conditioned on "
        f"observations of {s['truths']} held-out solver fields (`{s['test']}`, members "
        f"{s['truth_members']} at the last time), {s['members']} members each, drawn by "
        f"`FieldModel.condition` with the methods {used}, {s['sampler']}, on the "
        f"{s['resolution']} grid. Observation noise: Gaussian, standard deviation "
        f"{s['noise_std']:.4g} ({s['noise_rel']:g} of the rms {s['train_rms']:.4g} of the "
        "training vorticity, its mean included).",
        "",
        "- **points**: "
        f"{s['points']} uniformly random points ({s['points'] / s['grid_size']:.1%} of the "
        "nodes), spectral interpolation;",
        f"- **coarse**: means over {s['coarsen']}x{s['coarsen']} blocks of nodes "
        f"({s['coarse_shape']} observations).",
        "",
        "Scores (mean ± standard deviation over the truths): the relative L2 error of the "
        "posterior mean `||mean - w|| / ||w||`; the fair CRPS of the ensemble averaged "
        "over the grid (for a single field, its mean absolute error), also relative to the "
        "rms of the truth; the spread-skill ratio (1 for a calibrated ensemble, above 1 "
        "when it is overdispersed, below 1 when overconfident); the misfit "
        "`||H u - y|| / (sqrt(n) sigma)`, averaged over the members and for the field "
        "itself (the mean, or the baseline). The truth's own misfit is the noise alone, "
        "about 1; a posterior member consistent with the data has about 1 too. A member "
        "that is not finite or exceeds ten times the largest training value has diverged: "
        "it is counted and left out of the scores.",
        "",
        "Baselines: **interpolation** is, for points, the least-squares fit of the real "
        f"Fourier modes `|m| <= K` (K = {s['fourier_radius']}, "
        f"{s['fourier_unknowns']} unknowns for {s['points']} values: twice overdetermined) "
        "and, for the coarse field, spectral upsampling of the block means (divided on "
        "the coarse band by the transfer function of the block mean, which also moves "
        "them from the block centres to the nodes); **prior mean** is the pointwise mean "
        "of the training set.",
        "",
    ]
    lines += ["## Summary", ""]
    for problem, label in (("points", "point observations"), ("coarse", "coarse field")):
        cases = results[problem]
        base = np.mean([c["interpolation"]["rel_l2"] for c in cases])
        for m in methods:
            scored = [c["posterior"][m] for c in cases if "rel_l2" in c["posterior"][m]]
            if not scored:
                continue
            err = np.mean([sc["rel_l2"] for sc in scored])
            ssr = np.mean([sc["spread_skill"] for sc in scored])
            lost = sum(c["posterior"][m]["diverged"] for c in cases)
            lines.append(
                f"- {label}, {METHOD_LABELS[m]}: posterior-mean error {err:.3f} against "
                f"{base:.3f} for interpolation ({base / err:.1f} times smaller), "
                f"spread-skill {ssr:.2f}, {lost} of {len(cases) * s['members']} members "
                + ("diverged (scored on the rest)." if lost else "diverged."))
    lines.append("")
    for problem, title in (("points", "Sparse point observations"),
                           ("coarse", f"{s['coarsen']}x coarsened field")):
        lines += [f"## {title}", "", *_table(results[problem], methods, s["members"]), ""]
        shown = [m for m in methods if (path.parent / NAME / f"{problem}_{m}.png").is_file()]
        for m in shown:
            lines += [f"![{problem}, {m}]({NAME}/{problem}_{m}.png)", ""]
        if shown:
            lines += [f"Truth, observations, posterior mean, spread, member 0 (of the "
                      f"members that did not diverge) and the baseline for the first truth "
                      f"(member {s['truth_members'][0]}): "
                      f"{' and '.join(METHOD_LABELS[m] for m in shown)}.", ""]
    lines += [
        "## The Tweedie covariance of the learned denoiser",
        "",
        "Moment matching solves `(I + A) z = W (y - H D)` by conjugate gradients, with "
        "`A = W H Cov[u_0 | u_t] H^T W^T` and the Tweedie covariance `Cov = (s^2 / a) "
        "Sigma_C J^T` from vector-Jacobian products of the denoiser. For an exact denoiser "
        "`A` is symmetric, with eigenvalues between 0 and those of the prior, "
        "`W H Q H^T W^T` (`Q` the data covariance, estimated here from the training "
        "set). For this model, at the points of the first truth, `u_t = a w + s xi`:",
        "",
        "| t | sigma = s / a | asymmetry `||A - A^T|| / ||A||` | eigenvalues of "
        "`(A + A^T) / 2` | prior bound |",
        "|---|---|---|---|---|",
    ]
    for row in results["covariance"]:
        lines.append(f"| {row['t']:g} | {row['sigma']:.3g} | {row['asymmetry']:.2f} | "
                     f"{row['eig_min']:.3g} .. {row['eig_max']:.3g} | "
                     f"{row['prior_bound']:.3g} |")
    lines += [
        "",
        "Where the smallest eigenvalue is below -1, `I + A` is indefinite and conjugate "
        "gradients alone are not a valid solver. `MomentMatching` therefore stops the "
        "iterations of a member at the first search direction `p` with "
        "`<p, (I + A) p> < <p, p>` (negative curvature of the learned covariance), "
        "and returns the iterate of least residual it met, since `A` is not symmetric "
        "either and plain CG's residual can grow; otherwise it runs to its tolerance or "
        f"`cg_iterations={s['cg_iterations']}`. "
        "DPS uses `A` only through "
        "its line-search weight `1 / (1 + |rho|)`, which for an exact denoiser is "
        "`1 / (1 + rho)` with `rho >= 0`; with this model `rho` is often negative.",
        "",
    ]
    sens = results["sensitivity"]
    reference = sens["rel_l2_reference"]
    lines += [
        "Repeatability: the first coarse ensemble drawn again with the same seeds and the "
        f"noise level multiplied by {sens['factor']:g} (so the observed values change by "
        "a part in 10^4 of their noise) has a posterior-mean error of "
        f"{sens['rel_l2']:.3f} instead of "
        + ("-" if reference is None else f"{reference:.3f}")
        + f"; the rms change of a member is {sens['member_change_rel']:.1e} of the truth's "
        f"rms for the median member and {sens['member_change_max']:.1e} for the largest, "
        f"and {sens['members_moved']} of {sens['members']} members moved by more than "
        "1%. A sampler that depends smoothly on the data moves every member by an amount "
        "of the order of that change"
        + (": every member did here." if sens["members_moved"] == 0 else
           ", as the median member does; the members that move by more show how the "
           "truncated solves of an indefinite system can amplify a small perturbation."),
        "",
    ]
    t = results["timing"]
    per = ", ".join(f"{METHOD_LABELS[m]} {t['condition_s'][m]:.0f} s" for m in methods)
    lines += [
        "## How it was made",
        "",
        f"Total wall time {t['total_s']:.0f} s on this 2-core machine, shared with other "
        f"jobs (conditioning {2 * s['truths']} ensembles of {s['members']} members per "
        f"method: {per}), sciffd {sciffd.__version__}. Per-truth figures are in "
        f"[`{NAME}/results.json`]({NAME}/results.json). Reproduce with",
        "",
        "```",
        s["command"],
        "```",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


# -- main ------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ns2d", help="model name or directory")
    parser.add_argument("--train", required=True, help="training set (for the prior mean)")
    parser.add_argument("--test", required=True, help="held-out set (the truths)")
    parser.add_argument("--out", required=True, help="folder of the report")
    parser.add_argument("--truths", type=int, default=8)
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--points-fraction", type=float, default=0.03,
                        help="point observations as a fraction of the grid nodes")
    parser.add_argument("--coarsen", type=int, default=4)
    parser.add_argument("--noise-rel", type=float, default=0.03,
                        help="noise std as a fraction of the training rms")
    parser.add_argument("--methods", default="mmps,dps",
                        help="comma-separated conditional samplers (dps, mmps)")
    parser.add_argument("--sampler", default="heun", choices=("heun", "em"))
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--cg-iterations", type=int, default=32,
                        help="conjugate-gradient iterations per denoiser call (mmps)")
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHOD_LABELS))
    if unknown or not methods:
        parser.error(f"--methods {args.methods}: expected some of {sorted(METHOD_LABELS)}")
    start = time.perf_counter()

    model = sciffd.load(args.model)
    name = model.variable["name"]
    test, grid = _fields(args.test)
    train, train_grid = _fields(args.train)
    if train_grid != grid or model.grid != grid:
        raise SystemExit(f"the model {model.grid}, training {train_grid} and test {grid} "
                         "grids differ")
    prior_mean = train.mean(axis=(0, 1))
    train_rms = _rms(train)
    train_max = float(np.abs(train).max())
    ids = _truth_ids(test.shape[0], args.truths)
    n_points = int(round(args.points_fraction * grid.size))
    std = args.noise_rel * train_rms
    first_points = point_observations(test[ids[0], -1], grid, n_points, std, seed=0)
    samples = train.reshape((-1, 1) + grid.shape)
    prior_obs_cov = np.cov(first_points.operator.apply(samples, grid), rowvar=False)
    del train, samples
    options = {"mmps": {"cg_iterations": args.cg_iterations}, "dps": {}}

    out = Path(args.out)
    figdir = out / NAME
    figdir.mkdir(parents=True, exist_ok=True)
    for old in figdir.glob("*.png"):
        old.unlink()
    results: dict = {"points": [], "coarse": []}
    condition_s = dict.fromkeys(methods, 0.0)
    recorded: dict = {}
    radius = fourier_radius(n_points)
    for i, member in enumerate(ids):
        truth = test[member, -1]
        problems = {
            "points": point_observations(truth, grid, n_points, std, seed=i),
            "coarse": coarse_observations(truth, grid, args.coarsen, std, seed=i),
        }
        for problem, obs in problems.items():
            if problem == "points":
                baseline, _ = fourier_fit(obs, grid)
            else:
                baseline = spectral_upsampling(obs, grid)
            case = {
                "truth_member": member,
                "misfit_truth": float(obs.misfit(truth[None, None], grid)[0]),
                "posterior": {}, "seconds": {},
                "interpolation": field_scores(baseline, truth, obs, grid),
                "prior_mean": field_scores(prior_mean, truth, obs, grid),
            }
            for method in methods:
                t0 = time.perf_counter()
                ds = model.condition(obs, members=args.members, seed=i, method=method,
                                     sampler=args.sampler, steps=args.steps,
                                     batch_size=args.batch_size, progress=False,
                                     **options[method])
                seconds = time.perf_counter() - t0
                condition_s[method] += seconds
                members = ds[name].values.astype(np.float64)
                # a member that left the range of the data by far has diverged
                kept = np.isfinite(members).all(axis=(1, 2))
                kept[kept] = np.abs(members[kept]).max(axis=(1, 2)) <= 10 * train_max
                scores = {}
                if kept.sum() >= 2:
                    scores = ensemble_scores(members[kept], truth, obs, grid)
                scores["diverged"] = int((~kept).sum())
                if i == 0 and problem == "coarse" and method == methods[0]:
                    reference_members = members
                case["posterior"][method] = scores
                case["seconds"][method] = seconds
                recorded[method] = {k: ds.attrs[k] for k in ("method_options",
                                                             "sampler_config", "resolution")}
                print(f"truth {member:3d} {problem:6s} {method:4s} {seconds:6.1f} s  rel L2 "
                      f"{scores.get('rel_l2', np.nan):.3f} (baseline "
                      f"{case['interpolation']['rel_l2']:.3f})  spread-skill "
                      f"{scores.get('spread_skill', np.nan):.2f}  misfit "
                      f"{scores.get('misfit_members', np.nan):.2f}  diverged "
                      f"{scores['diverged']}", flush=True)
                if i == 0 and kept.sum() >= 2:
                    label = "interpolation" if problem == "points" else "spectral upsampling"
                    plot_case(figdir / f"{problem}_{method}.png", truth, obs,
                              members[kept], baseline, label, grid)
            results[problem].append(case)

    # the same ensemble once more, with the noise level changed by one part in 10^4
    truth = test[ids[0], -1]
    obs = coarse_observations(truth, grid, args.coarsen, std * (1 + SENSITIVITY), seed=0)
    ds = model.condition(obs, members=args.members, seed=0, method=methods[0],
                         sampler=args.sampler, steps=args.steps, batch_size=args.batch_size,
                         progress=False, **options[methods[0]])
    members = ds[name].values.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        change = np.sqrt(((members - reference_members) ** 2).mean(axis=(1, 2)))
    results["sensitivity"] = {
        "method": methods[0], "factor": 1 + SENSITIVITY,
        "rel_l2": _rms(members.mean(axis=0) - truth) / _rms(truth),
        "rel_l2_reference": results["coarse"][0]["posterior"][methods[0]].get("rel_l2"),
        "member_change_rel": float(np.median(change) / _rms(truth)),
        "member_change_max": float(np.max(change) / _rms(truth)),
        "members_moved": int((change > 0.01 * _rms(truth)).sum()),
        "members": int(change.size),
    }
    t0 = time.perf_counter()
    results["covariance"] = covariance_diagnostics(model.model, first_points,
                                                   test[ids[0], -1], grid, prior_obs_cov,
                                                   DIAGNOSTIC_TIMES)
    print(f"covariance diagnostics in {time.perf_counter() - t0:.0f} s", flush=True)
    coarse = CoarseGrain(args.coarsen, "block_mean").obs_grid(grid).shape
    first = recorded[methods[0]]
    results["settings"] = {
        "model": str(model.path or args.model), "test": args.test, "train": args.train,
        "truths": len(ids), "truth_members": ids, "members": args.members,
        "methods": methods,
        "method_options": {m: recorded[m]["method_options"] for m in methods},
        "sampler": first["sampler_config"], "resolution": first["resolution"],
        "noise_std": std, "noise_rel": args.noise_rel, "train_rms": train_rms,
        "points": n_points, "grid_size": grid.size, "coarsen": args.coarsen,
        "cg_iterations": args.cg_iterations,
        "coarse_shape": "x".join(map(str, coarse)), "fourier_radius": radius,
        "fourier_unknowns": 2 * len(disk_modes(radius)) - 1,
        "command": " ".join([*(f"{k}={os.environ[k]}" for k in RECORDED_ENV
                               if k in os.environ), "python",
                             *(shlex.quote(a) for a in [sys.argv[0], *(
                                 argv if argv is not None else sys.argv[1:])])]),
    }
    results["timing"] = {"total_s": time.perf_counter() - start, "condition_s": condition_s}
    (figdir / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    write_report(out / f"{NAME}.md", results)
    print(f"wrote {out / f'{NAME}.md'} in {results['timing']['total_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
