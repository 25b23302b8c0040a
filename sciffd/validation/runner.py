"""The three runs of the suite: exact models, a model against its data, an ensemble file.

- :func:`validate_exact`: the exact Gaussian and mixture models with the
  Heun and Euler-Maruyama samplers, where every answer is known
  (:mod:`.exact`), and their discretisation invariance (:mod:`.invariance`);
- :func:`validate_model`: a trained (or any) model against reference
  fields of its dataset (:mod:`.distribution`), and its discretisation
  invariance at its grid refined ``level.refinements`` times;
- :func:`validate_ensemble`: an ensemble netCDF against a reference
  netCDF: ensemble scores when the reference is a member-wise truth, else
  the distributional checks.

Each returns a :class:`~sciffd.validation.Report`; write it with
:func:`~sciffd.validation.write_report`.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend
from ..grids import TorusGrid, torus
from ..models import GaussianMixtureScore, ScoreModel
from ..sampling import Heun, sample
from ..spectral import resample
from ..stats.spectra import band_limit, shell_index
from . import plots
from .checks import jsonable
from .distribution import ReferenceFields, distribution_checks, score_checks, split_halves
from .exact import exact_checks, exact_problem
from .invariance import (
    CONVERGENCE_ALLOWANCE,
    invariance_checks,
    resolution_pair_check,
    subset_check,
)
from .levels import Level, get_level
from .properties import MemberSubsets, ResolutionPairs, Seeds, as_list, draw_examples, engine
from .report import Figure, Report

__all__ = ["reference_fields", "validate_ensemble", "validate_exact", "validate_model"]

logger = logging.getLogger(__name__)

#: members drawn in small batches must equal the batch's, to this relative L2 error
SUBSET_TOLERANCE = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-4}

#: the low modes of the exact Gaussian model at two resolutions (it acts mode by mode)
EXACT_LOW_MODE_TOLERANCE = (
    1e-9, "the exact Gaussian model and the samplers act mode by mode, so a member's low "
          "modes are the same numbers at every resolution up to float64 rounding")

#: datasets whose held-out members can be generated as a model's reference
RECIPES = ("ns2d",)


def _stamp(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def _mean_power(model: Any, grid: TorusGrid) -> np.ndarray:
    """``E P(n)`` of the data law of an exact model (variance plus mean power per shell)."""
    shells = shell_index(grid).reshape(-1)
    h = grid.hermitian_weight.reshape(-1)
    n = int(shells.max()) + 1
    if isinstance(model, GaussianMixtureScore):
        means = model.mean_spectra(grid)[:, 0]
        power = sum(w * (q.eigenvalues(grid) + np.abs(m) ** 2)
                    for w, q, m in zip(model.weights, model.components, means, strict=True))
    else:
        m = np.zeros(grid.spectral_shape) if model.mean is None else np.fft.rfftn(
            np.asarray(model.mean(grid), dtype=np.float64)[0], norm="forward")
        power = model.data.eigenvalues(grid) + np.abs(m) ** 2
    return np.bincount(shells, weights=power.reshape(-1) * h, minlength=n)


def _draw_function(model: ScoreModel, steps: int, batch_size: int, dtype: Any,
                   progress: bool, sigma_stop: float | None = None):
    sampler = Heun(steps=steps, sigma_stop=sigma_stop)

    def draw(grid: TorusGrid, members: Any, seed: int) -> np.ndarray:
        u = sample(model, grid, members, seed, sampler, batch_size=batch_size,
                   progress=progress, dtype=dtype)
        return np.asarray(backend.to_numpy(u), dtype=np.float64)

    return draw


def _invariance_figures(prefix: str, run: Any, title: str, n_max: int,
                        truth: np.ndarray | None = None) -> list[Figure]:
    shapes = [g.shape for g in run.grids]
    spectra = {f"{'x'.join(map(str, s))}": None if p is None else p[:min(s) // 2]
               for s, p in zip(shapes, run.metrics["spectra"], strict=True)}
    if truth is not None:
        spectra["exact law"] = truth[:min(shapes[-1]) // 2]
    figures = [Figure(f"{prefix}_resolutions_spectra.png",
                      f"{title}: ensemble-mean spectra at every resolution (same members)",
                      lambda p: plots.spectra_figure(p, spectra, title, n_max=n_max))]
    if "variance" in run.metrics:
        series = {"pointwise variance": run.metrics["variance"],
                  "mean square / 2": run.metrics["mean_square"]}
        figures.append(Figure(f"{prefix}_convergence.png",
                              f"{title}: pointwise variance and mean square against N",
                              lambda p: plots.convergence_figure(
                                  p, shapes, series, title, CONVERGENCE_ALLOWANCE)))
    return figures


# -- exact models ------------------------------------------------------------------
def validate_exact(kind: str = "all", level: str | Level = "quick", *,
                   model: ScoreModel | None = None, seed: int = 0,
                   progress: bool = False) -> Report:
    """Validate the exact models (or a model in their place) where every answer is known.

    Parameters
    ----------
    kind : {"all", "gaussian", "mixture"}
        The data law(s): Gaussian (:func:`~.exact.gaussian_problem`), a
        mixture of three Gaussians (:func:`~.exact.mixture_problem`), or both.
    level : {"quick", "full"} or Level
    model : ScoreModel, optional
        A model to test in place of the exact one (one ``kind`` only); the
        answers stay those of the exact data law. A broken model fails.
    seed : int
        Seed of the examples drawn (ensemble seeds, resolution pairs, member
        subsets) and of the bootstraps.
    progress : bool
        Show the samplers' progress bars.

    Returns
    -------
    Report
    """
    level = get_level(level)
    kinds = ("gaussian", "mixture") if kind == "all" else (kind,)
    for k in kinds:
        exact_problem(k)
    if model is not None and len(kinds) != 1:
        raise ValueError("model= replaces the exact model of one problem; give kind="
                         "'gaussian' or kind='mixture'")
    start = time.perf_counter()
    report = Report(title=f"Validation of the exact models ({', '.join(kinds)})",
                    target="exact " + " and ".join(kinds) + " models"
                    + ("" if model is None else f" (model under test: {type(model).__name__})"),
                    level=level)
    report.notes.append(f"examples (seeds, resolution pairs, member subsets) drawn with "
                        f"{engine()}")
    for k in kinds:
        problem = exact_problem(k)
        tested = problem.truth if model is None else model
        seeds = draw_examples(Seeds(), level.exact_seeds, seed)
        run = exact_checks(problem, level, seeds, model=tested, progress=progress)
        report.checks.extend(run.checks)
        report.notes.append(f"{k}: {problem.description}")
        report.metrics[k] = {"seeds": seeds, **run.metrics}

        # batches of 64 members bound the memory of the finest grids
        draw = _draw_function(tested, level.heun_steps, min(64, level.exact_members),
                              np.float64, progress)
        grids = [torus(n) for n in level.exact_resolutions]
        low_tol = EXACT_LOW_MODE_TOLERANCE if k == "gaussian" else None
        inv = invariance_checks(draw, grids, level.exact_members, seed,
                                group=f"exact {k}: Heun({level.heun_steps} steps)",
                                prefix=f"{k}.invariance", alpha=level.alpha,
                                n_boot=level.n_boot, low_mode_tolerance=low_tol)
        report.checks.extend(inv.checks)
        report.metrics[k]["invariance"] = inv.metrics

        base = level.exact_resolution
        values = tuple(sorted({int(base * f) for f in (0.75, 1, 1.25, 1.5, 2, 3)}))
        pairs = draw_examples(ResolutionPairs(values), level.resolution_pairs, seed)
        report.checks.append(resolution_pair_check(
            draw, torus(base), pairs, min(32, level.exact_members), seed,
            group=f"exact {k}: properties", prefix=f"{k}", low_mode_tolerance=low_tol))
        subsets = draw_examples(MemberSubsets(level.exact_members), level.subset_examples,
                                seed)
        report.checks.append(subset_check(
            draw, grids[0], inv.samples[0], subsets, seed,
            tolerance=SUBSET_TOLERANCE[np.dtype(np.float64)],
            reason="nested noise: a member's path depends only on (seed, member), and "
                   "an exact model acts on each field alone (float64 rounding)",
            group=f"exact {k}: properties", prefix=k))
        report.metrics[k]["resolution_pairs"] = as_list(pairs)
        report.metrics[k]["member_subsets"] = as_list(subsets)
        report.figures.extend(_exact_figures(k, problem, run, inv))
    report.seconds = time.perf_counter() - start
    return report


def _exact_figures(kind: str, problem: Any, run: Any, inv: Any) -> list[Figure]:
    figures = []
    for sname in ("heun", "em"):
        tests = run.plots[sname]["tests"]
        title = f"{kind}, {'Heun' if sname == 'heun' else 'Euler-Maruyama'}"
        figures.append(Figure(
            f"{kind}_{sname}_mode_variance.png",
            f"{title}: per-band variance over the exact law, with chi-square intervals",
            lambda p, t=tests, tt=title: plots.band_ratio_figure(p, t, tt)))
    if kind == "mixture":
        counts, weights = run.plots["heun"]["counts"], run.plots["heun"]["weights"]
        figures.append(Figure("mixture_weights.png",
                              "mixture (Heun): component frequencies against the weights",
                              lambda p: plots.weights_figure(p, counts, weights,
                                                             "mixture weights")))
    grid = run.plots["grid"]
    rows = {"exact draws": run.plots["truth_sample"], "Heun": run.plots["heun"]["sample"],
            "Euler-Maruyama": run.plots["em"]["sample"]}
    figures.append(Figure(f"{kind}_fields.png", f"{kind}: exact draws and sampled fields",
                          lambda p: plots.fields_figure(p, rows, f"{kind} fields")))
    truth = _mean_power(problem.truth, inv.grids[-1])
    figures += _invariance_figures(f"{kind}", inv, f"{kind}", band_limit(grid), truth)
    return figures


# -- references ------------------------------------------------------------------------
def _open(obj: Any, variable: str | None, what: str) -> Any:
    """A DataArray from a path, a Dataset or a DataArray."""
    import xarray as xr

    from ..io import read_netcdf

    if isinstance(obj, (str, os.PathLike)):
        obj = read_netcdf(obj)
    if isinstance(obj, xr.DataArray):
        return obj
    if not isinstance(obj, xr.Dataset):
        raise TypeError(f"{what} must be a netCDF path, an xarray.Dataset or a DataArray, got "
                        f"{type(obj).__name__}")
    names = [str(v) for v in obj.data_vars]
    if variable is not None:
        if variable not in names:
            raise ValueError(f"{what} has no variable {variable!r}; its variables: {names}")
        return obj[variable]
    if len(names) != 1:
        raise ValueError(f"{what} has the variables {names}; choose one with variable=... "
                         "(--variable)")
    return obj[names[0]]


def reference_fields(da: Any, *, group_dim: str = "member") -> ReferenceFields:
    """Fields ``(F, C, *S)`` of a DataArray, grouped by its ``group_dim`` (solver member).

    Every leading dim other than ``channel`` is flattened into the field
    axis; fields of one ``group_dim`` index form one group. Without that
    dim every field is its own group.
    """
    from ..fields import from_dataarray, grid_from

    grid = grid_from(da)
    spatial = grid.dims
    lead = [d for d in da.dims if d not in spatial]
    order = [d for d in lead if d != "channel"] + (["channel"] if "channel" in lead else [])
    da = da.transpose(*order, *spatial)
    values, grid = from_dataarray(da)
    values = np.asarray(values, dtype=np.float64)
    n_lead = len(order) - (1 if "channel" in lead else 0)
    c = da.sizes["channel"] if "channel" in lead else 1
    sizes = [da.sizes[d] for d in order[:n_lead]]
    fields = values.reshape((int(np.prod(sizes)) if sizes else 1, c) + grid.shape)
    if group_dim in order[:n_lead]:
        axis = order.index(group_dim)
        index = np.indices(sizes)[axis].reshape(-1) if sizes else np.zeros(1, int)
        groups = np.asarray(da[group_dim].values)[index] if group_dim in da.coords else index
    else:
        groups = np.arange(fields.shape[0])
    return ReferenceFields(fields, np.asarray(groups), grid)


def _generated_reference(name: str, grid: TorusGrid, level: Level, progress: bool) -> Any:
    from ..domains.fluids import NS2DRecipe, generate_ns2d

    recipe = NS2DRecipe()
    if grid.lengths != (1.0, 1.0) or grid.shape[0] != grid.shape[1]:
        raise ValueError(f"the {name} reference is generated on the unit torus at N x N; "
                         f"the model's grid is {grid}")
    ds = generate_ns2d(level.reference_members, resolution=grid.shape[0],
                       seed=recipe.test_seed, progress=progress)
    note = (f"reference: the first {level.reference_members} held-out members of the "
            f"{name} recipe (seed {recipe.test_seed}, {len(recipe.snapshot_times)} snapshots "
            "each), generated by the solver for this run")
    return ds["vorticity"], note


def _match_grids(sample: np.ndarray, grid: TorusGrid, ref: ReferenceFields
                 ) -> tuple[np.ndarray, ReferenceFields, str | None]:
    """Bring the sample and the reference to the coarser of their two grids."""
    if grid == ref.grid:
        return sample, ref, None
    if grid.lengths != ref.grid.lengths or grid.ndim != ref.grid.ndim:
        raise ValueError(f"the sample's grid {grid} and the reference's {ref.grid} are not "
                         "resolutions of one domain")
    if all(a <= b for a, b in zip(grid.shape, ref.grid.shape, strict=True)):
        fields = resample(ref.fields, ref.grid, grid)
        return sample, ReferenceFields(fields, ref.groups, grid), (
            f"the reference ({ref.grid.shape}) was restricted spectrally to the sample's grid "
            f"{grid.shape}")
    if all(a >= b for a, b in zip(grid.shape, ref.grid.shape, strict=True)):
        return resample(sample, grid, ref.grid), ref, (
            f"the sample ({grid.shape}) was restricted spectrally to the reference's grid "
            f"{ref.grid.shape}")
    raise ValueError(f"the grids {grid.shape} and {ref.grid.shape} are not nested")


def _one_per_group(ref: ReferenceFields, count: int = 4) -> np.ndarray:
    """The first field of each of the first ``count`` groups (independent fields to show)."""
    _, first = np.unique(ref.groups, return_index=True)
    return ref.fields[np.sort(first)[:count], 0]


def _distribution_figures(prefix: str, metrics: dict, sample: np.ndarray,
                          a: np.ndarray, label: str, units: str,
                          shown: np.ndarray) -> list[Figure]:
    n_max = metrics["n_max"]
    ref = np.asarray(metrics["spectrum_reference"], dtype=float)
    floor = np.asarray(metrics["shell_floor_high"], dtype=float)
    lo = ref[1:n_max + 1] / 10 ** floor
    hi = ref[1:n_max + 1] * 10 ** floor
    cut = min(metrics["shape"]) // 2
    spectra = {label: None if metrics["spectrum_sample"] is None
               else metrics["spectrum_sample"][:cut], "reference half A": ref[:cut],
               "reference half B": metrics["spectrum_reference_b"][:cut]}
    n = metrics["fields"]
    values = {label: sample[:n], "reference half A": a[:n]}
    rows = {label: sample[:4, 0], "reference": shown}
    return [
        Figure(f"{prefix}_spectra.png", f"{label}: ensemble-mean power spectra; grey: "
               "reference A times/over 10^floor (upper end of the per-shell floor interval)",
               lambda p: plots.spectra_figure(p, spectra, f"{label} against the reference",
                                              band=(lo, hi), band_label="floor band",
                                              n_max=n_max)),
        Figure(f"{prefix}_pdf.png", f"{label}: pointwise PDFs of the pooled values",
               lambda p: plots.pdf_figure(p, values, "pointwise PDF", units)),
        Figure(f"{prefix}_fields.png", f"{label} and reference fields side by side",
               lambda p: plots.fields_figure(p, rows, f"{label} (top), reference (bottom)")),
    ]


def _weights_digest(fm: Any) -> tuple[str, str] | None:
    """The weights file of a loaded model directory and its sha256 (None without one)."""
    import hashlib

    if fm.path is None:
        return None
    path = Path(fm.path) / "weights.safetensors"
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return path.name, digest.hexdigest()


# -- a model against its data ----------------------------------------------------------
def validate_model(model: Any, reference: Any = None, level: str | Level = "quick", *,
                   variable: str | None = None, seed: int = 0, progress: bool = False,
                   command: str | None = None) -> Report:
    """Validate a model against reference fields of its dataset, and across resolutions.

    Parameters
    ----------
    model : FieldModel, str or path-like
        A model, a built-in model name or a model directory (:func:`sciffd.load`).
    reference : path-like, xarray.Dataset or DataArray, optional
        Reference fields (dims ``member``, optionally ``time``, and the grid).
        Default: for a model of a known dataset recipe (``ns2d``),
        ``level.reference_members`` held-out members generated by the solver.
    level : {"quick", "full"} or Level
    variable : str, optional
        The reference variable (default the model's variable).
    seed : int
        Ensemble seed of the model samples, and seed of the drawn examples.
    progress : bool
    command : str, optional
        Recorded in the report.

    Returns
    -------
    Report
    """
    from ..pipeline import FieldModel, load

    level = get_level(level)
    start = time.perf_counter()
    fm = model if isinstance(model, FieldModel) else load(model)
    name = fm.name
    notes = []
    if reference is None:
        dataset = fm.config.get("dataset", name)
        if dataset not in RECIPES:
            raise ValueError(
                f"no reference for the model {name!r}: it names no dataset recipe sciffd can "
                f"generate ({', '.join(RECIPES)}); pass reference= (--reference FILE)")
        da, note = _generated_reference(dataset, fm.grid, level, progress)
        notes.append(note)
    else:
        da = _open(reference, variable or fm.variable["name"], "reference")
        shown = reference if isinstance(reference, (str, os.PathLike)) else "given"
        notes.append(f"reference: {shown} (variable {da.name!r})")
    ref = reference_fields(da)
    t_ref = time.perf_counter() - start
    weights = _weights_digest(fm)
    if weights is not None:
        notes.append(f"model weights: {weights[0]}, sha256 {weights[1]}")

    dtype = np.float32
    batch = level.batch_size
    stop = fm.default_sigma_stop
    draw = _draw_function(fm.model, level.model_steps, batch, dtype, progress, stop)
    heun = f"Heun({level.model_steps} steps" + ("" if stop is None else
                                                 f", sigma_stop {stop:g}") + ")"
    t0 = time.perf_counter()
    x = draw(fm.grid, level.model_members, seed)
    t_sample = time.perf_counter() - t0
    x_cmp, ref_cmp, note = _match_grids(x, fm.grid, ref)
    if note:
        notes.append(note)
    group = f"model {name} against its data ({fm.grid.shape[0]}^2)"
    checks, dist_metrics = distribution_checks(x_cmp, ref_cmp, group=group,
                                               prefix=f"{_stamp(name)}.data",
                                               n_boot=level.n_boot, seed=seed)
    grids = [fm.grid.refine(f) for f in level.refinements]
    t0 = time.perf_counter()
    inv = invariance_checks(draw, grids, min(level.invariance_members, level.model_members),
                            seed, group=f"model {name}: {heun}",
                            prefix=f"{_stamp(name)}.invariance", alpha=level.alpha,
                            n_boot=level.n_boot, coarse=x)
    t_inv = time.perf_counter() - t0
    checks += inv.checks
    subsets = draw_examples(MemberSubsets(min(level.invariance_members, level.model_members)),
                            level.subset_examples, seed)
    checks.append(subset_check(
        draw, fm.grid, x, subsets, seed, tolerance=SUBSET_TOLERANCE[np.dtype(dtype)],
        reason="nested noise: a member's path depends only on (seed, member); float32 "
               "arithmetic in another batch shape differs by rounding only",
        group=f"model {name}: properties", prefix=_stamp(name)))

    report = Report(title=f"Validation of the model {name}",
                    target=f"model {name} ({type(fm.model).__name__}, trained grid "
                           f"{fm.grid.shape}) sampled with {heun}",
                    level=level, checks=checks, notes=notes, command=command)
    a, _ = split_halves(ref_cmp)
    units = str(fm.variable.get("units", "1"))
    report.figures += _distribution_figures(_stamp(name), dist_metrics, x_cmp, a,
                                            f"model {name}", units, _one_per_group(ref_cmp))
    report.figures += _invariance_figures(f"{_stamp(name)}_invariance", inv, f"model {name}",
                                          band_limit(fm.grid))
    report.metrics = jsonable({
        "data": {k: v for k, v in dist_metrics.items()},
        "invariance": inv.metrics, "member_subsets": as_list(subsets),
        "seconds": {"reference": t_ref, "sampling": t_sample, "invariance": t_inv},
        "sample": {"members": level.model_members, "steps": level.model_steps,
                   "seed": seed},
        "model": {"name": name, "path": None if fm.path is None else str(fm.path),
                  "weights_sha256": None if weights is None else weights[1]},
    })
    report.notes.append(f"examples (member subsets) drawn with {engine()}")
    report.seconds = time.perf_counter() - start
    return report


# -- an ensemble file ---------------------------------------------------------------------
def _is_truth(ens: Any, ref: Any) -> bool:
    """Whether ``ref`` is one field per case of ``ens``: its dims without ``member``."""
    expected = tuple(d for d in ens.dims if d != "member")
    return "member" not in ref.dims and tuple(ref.dims) == expected and all(
        ref.sizes[d] == ens.sizes[d] for d in expected if d not in ("y", "x", "z"))


def validate_ensemble(ensemble: Any, reference: Any, level: str | Level = "quick", *,
                      variable: str | None = None, seed: int = 0,
                      command: str | None = None) -> Report:
    """Validate an ensemble against a reference: scores against a truth, else distributions.

    Parameters
    ----------
    ensemble : path-like, xarray.Dataset or DataArray
        Fields with a ``member`` dim (for example the output of ``sciffd sample``).
    reference : path-like, xarray.Dataset or DataArray
        Either a member-wise truth (the ensemble's dims without ``member``,
        same sizes): then the spread-skill ratio and the rank histogram are
        checked and CRPS and the energy score reported; or reference fields
        (with a ``member`` dim, or more fields): then the distributional
        checks, with floors from two halves of the reference.
    level : {"quick", "full"} or Level
        Only ``n_boot`` and ``alpha`` matter here.
    variable : str, optional
        The variable, when a file holds several.
    seed : int
    command : str, optional

    Returns
    -------
    Report
    """
    from ..fields import grid_from

    level = get_level(level)
    start = time.perf_counter()
    ens = _open(ensemble, variable, "ensemble")
    ref_da = _open(reference, variable or str(ens.name), "reference")
    if "member" not in ens.dims:
        raise ValueError(f"the ensemble variable {ens.name!r} has no 'member' dim; its dims "
                         f"are {tuple(ens.dims)}")
    name = Path(ensemble).name if isinstance(ensemble, (str, os.PathLike)) else "ensemble"
    ref_name = Path(reference).name if isinstance(reference, (str, os.PathLike)) \
        else "reference"
    grid = grid_from(ens)
    notes, figures = [], []
    units = str(ens.attrs.get("units", "1"))
    prefix = _stamp(Path(name).stem)
    if _is_truth(ens, ref_da):
        truth_grid = grid_from(ref_da)
        if truth_grid != grid:
            raise ValueError(f"the ensemble's grid {grid} and the truth's {truth_grid} differ; "
                             "a member-wise truth must be on the ensemble's grid")
        spatial = grid.dims
        lead = [d for d in ens.dims if d not in spatial and d != "member"]
        x = np.asarray(ens.transpose("member", *lead, *spatial).values, dtype=np.float64)
        y = np.asarray(ref_da.transpose(*lead, *spatial).values, dtype=np.float64)
        checks, metrics = score_checks(x, y, grid, alpha=level.alpha,
                                       group=f"{name} against the truth {ref_name}",
                                       prefix=f"{prefix}.scores", seed=seed)
        counts = metrics["rank_counts"]
        figures.append(Figure(f"{prefix}_rank_histogram.png",
                              "rank of the truth among the members (lattice points)",
                              lambda p: plots.rank_histogram_figure(p, counts,
                                                                    "rank histogram")))
        rows = {"members": x.reshape((x.shape[0], -1) + grid.shape)[:4, 0],
                "truth": y.reshape((-1,) + grid.shape)[:1]}
        notes.append(f"{ref_name} is a member-wise truth (dims {tuple(ref_da.dims)}): "
                     "ensemble scores")
    else:
        sample = reference_fields(ens, group_dim="member")
        ref = reference_fields(ref_da)
        fields, ref, note = _match_grids(sample.fields, sample.grid, ref)
        if note:
            notes.append(note)
        checks, metrics = distribution_checks(fields, ref, group=f"{name} against {ref_name}",
                                              prefix=f"{prefix}.data", n_boot=level.n_boot,
                                              seed=seed)
        a, _ = split_halves(ref)
        figures += _distribution_figures(prefix, metrics, fields, a, name, units,
                                         _one_per_group(ref))
        rows = None
        notes.append(f"{ref_name} holds reference fields: distributional checks, floors from "
                     "two halves of it")
    if rows is not None:
        figures.append(Figure(f"{prefix}_fields.png", "members and truth side by side",
                              lambda p: plots.fields_figure(p, rows, name)))
    report = Report(title=f"Validation of the ensemble {name}",
                    target=f"ensemble {name} (variable {ens.name!r}) against {ref_name}",
                    level=level, checks=checks, metrics=jsonable(metrics), figures=figures,
                    notes=notes, command=command)
    report.seconds = time.perf_counter() - start
    return report
