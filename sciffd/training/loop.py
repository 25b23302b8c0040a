"""The training loop: AdamW, EMA, gradient clipping, checkpoints and exact resume.

Step ``n`` draws its batch from ``(seed, n)`` alone (:func:`~sciffd.training.dsm.draw_batch`),
its learning rate is a function of ``n`` alone, and the network, EMA and
AdamW state are saved as tensors, so a run stopped after step ``n`` and
resumed gives the same weights as a run that never stopped.

Speed on a CPU
--------------
torch's CPU allocator pages large fresh tensors in at 4 KiB; starting the
process with ``THP_MEM_ALLOC_ENABLE=1`` in the environment (transparent
huge pages) made FFTs 1.7-2.6x and an FNO layer about 2x faster on the
reference machine. It must be set before torch allocates, so sciffd does
not set it: export it in the shell that runs the training. The loop uses
``SCIFFD_FFT_WORKERS`` threads (default: all cores available to the
process) and restores torch's thread count afterwards. On a machine that
other jobs share, one thread is often faster than two: torch's threads
wait for each other at every operation. With batch 16 on ``64^2`` and
the default network, the reference 2-core machine measured about 0.1 s
per step with 2 threads when quiet, but 0.8-4 s with 2 threads and
0.22-0.28 s with 1 thread at a load average of 6
(``benchmarks/bench_training.py``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__, backend
from ..grids import TorusGrid
from ..models.fno import FNO, FNODenoiser, default_noise, shell_variance
from ..models.mean import MeanField
from ..noise import GaussianMeasure, measure_to_config
from ..sde import VPProcess
from . import checkpoint as ckpt
from .data import training_samples
from .dsm import P_MEAN, P_STD, draw_batch, lr_at, network_loss
from .ema import EMA

__all__ = ["train"]

logger = logging.getLogger(__name__)

#: options of :class:`~sciffd.models.fno.FNO` a user may set through ``model_options``
MODEL_OPTIONS = ("width", "layers", "modes", "time_features", "time_width", "sigma_data")

# configuration entries that may change between a run and its resumption
_RESUMABLE = ("steps", "checkpoint_every", "warmup")


def _int_option(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
    return int(value)


def _float_option(value: Any, name: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}={value!r} must be a number")
    value = float(value)
    if math.isnan(value) or (positive and not value > 0) or value < 0:
        raise ValueError(f"{name}={value!r} must be {'positive' if positive else '>= 0'}")
    return value


def _network(model_options: Mapping | None, channels: int, ndim: int) -> tuple[FNO, float]:
    options = dict(model_options or {})
    unknown = sorted(set(options) - set(MODEL_OPTIONS))
    if unknown:
        raise ValueError(f"model_options has unknown keys {unknown}; the options are "
                         f"{list(MODEL_OPTIONS)}")
    sigma_data = _float_option(options.pop("sigma_data", 1.0), "sigma_data", positive=True)
    return FNO(channels, channels, ndim=ndim, **options), sigma_data


def _optimizer_tensors(opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    out = {}
    for index, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            out[f"optim.{index}.{key}"] = torch.as_tensor(value)
    return out


def _load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    template = opt.state_dict()
    opt.load_state_dict({"state": state, "param_groups": template["param_groups"]})


def _checkpoint(out: Path, model: FNODenoiser, ema: EMA, opt: torch.optim.Optimizer,
                step: int, seed: int, metrics: list[str]) -> None:
    """Write the resumable state after ``step`` completed steps, then the EMA weights."""
    net = model.network
    tensors = {f"model.{k}": v for k, v in net.state_dict().items()}
    tensors.update({f"ema.{k}": v for k, v in ema.shadow.items()})
    tensors.update(_optimizer_tensors(opt))
    tensors["meta.step"] = torch.tensor(step, dtype=torch.int64)
    ckpt.write_tensors(out / ckpt.CHECKPOINT_NAME, tensors)
    ckpt.write_json(out / ckpt.STATE_NAME, {"step": step, "seed": seed,
                                            "noise_stream": 1, "batch_stream": 2})
    ckpt.write_tensors(out / ckpt.WEIGHTS_NAME, ema.state_dict(net))
    ckpt.atomic_write(out / ckpt.METRICS_NAME, "".join(metrics).encode("utf-8"))


def _restore(out: Path, model: FNODenoiser, ema: EMA, opt: torch.optim.Optimizer,
             device: Any) -> tuple[int, list[str]]:
    tensors = ckpt.read_tensors(out / ckpt.CHECKPOINT_NAME, device)
    try:
        step = int(tensors["meta.step"])
        model.network.load_state_dict(
            {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
        for name in ema.shadow:
            ema.shadow[name] = tensors[f"ema.{name}"].clone()
        _load_optimizer(opt, tensors)
    except (KeyError, RuntimeError, ValueError) as err:
        raise ValueError(f"{out / ckpt.CHECKPOINT_NAME} does not fit this run: {err!r}") \
            from err
    state_path = out / ckpt.STATE_NAME
    if state_path.is_file():
        recorded = json.loads(state_path.read_text(encoding="utf-8")).get("step")
        if recorded != step:
            logger.warning("%s records step %s but the checkpoint holds step %d; "
                           "resuming from the checkpoint", state_path, recorded, step)
    metrics = []
    path = out / ckpt.METRICS_NAME
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
            if line.strip() and json.loads(line)["step"] <= step:
                metrics.append(line)
    return step, metrics


def _compare_configs(old: dict, new: dict, path: Path) -> None:
    differ = []
    for key in sorted(set(old) | set(new)):
        if key in ("sciffd_version", "training"):
            continue
        if old.get(key) != new.get(key):
            differ.append(key)
    for key in sorted(set(old.get("training", {})) | set(new["training"])):
        if key not in _RESUMABLE and old.get("training", {}).get(key) != new["training"].get(key):
            differ.append(f"training.{key}")
    if differ:
        raise ValueError(
            f"resume=True, but this run differs from the one in {path} in {differ}; "
            "resume with the same data and options, or train into a new directory"
        )


def _independent(data: Any, samples: int) -> int:
    """The number of independent training samples: the ``member`` entries, else all."""
    sizes = getattr(data, "sizes", None)
    if sizes is not None and "member" in sizes and 2 <= int(sizes["member"]) <= samples:
        return int(sizes["member"])
    return samples


def train(
    data: Any,
    out_dir: str | os.PathLike,
    *,
    grid: TorusGrid | None = None,
    variable: str = "vorticity",
    steps: int = 2000,
    batch_size: int = 16,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    ema_decay: float = 0.999,
    grad_clip: float | None = 1.0,
    seed: int = 0,
    resume: bool = False,
    progress: bool = True,
    checkpoint_every: int = 500,
    model_options: Mapping[str, Any] | None = None,
    noise: GaussianMeasure | None = None,
    process: VPProcess | None = None,
    warmup: int | None = None,
    stop_after: int | None = None,
    device: Any = None,
    gaussian_tail: bool = True,
    mean_field: bool = True,
    skip: str = "gaussian",
    balance: float = 0.0,
    output: str = "scalar",
) -> Path:
    """Train an FNO denoiser by denoising score matching; returns the model directory.

    Parameters
    ----------
    data : xarray.Dataset or numpy.ndarray
        Training fields: a dataset with ``variable`` on dims
        ``(..., [channel,] y, x)`` and coordinates, or an array
        ``(N, C, *S)`` together with ``grid``. Every leading dim
        (``member``, ``time``) is flattened into samples.
    out_dir : path-like
        The model directory to write (created if needed).
    grid : TorusGrid, optional
        The grid of an array ``data``.
    variable : str
        The dataset variable to learn.
    steps : int
        Total optimiser steps of the run.
    batch_size : int
        Samples per step (drawn with replacement).
    lr, weight_decay : float
        AdamW's peak learning rate and decoupled weight decay. The rate
        warms up linearly over ``warmup`` steps, then decays along a cosine
        to ``lr / 10`` at ``steps``.
    ema_decay : float
        Decay of the weight average saved for sampling (see
        :class:`~sciffd.training.ema.EMA`).
    grad_clip : float or None
        Largest gradient norm; ``None`` disables clipping (the norm is still
        logged).
    seed : int
        Seeds the initial weights and every batch.
    resume : bool
        Continue from the checkpoint in ``out_dir``. Without a checkpoint
        there, a new run starts. With ``resume=False`` a directory that
        already holds a run is refused. The data and every option but
        ``steps``, ``warmup`` and ``checkpoint_every`` must be those of the
        stored run; a larger ``steps`` extends it (the learning-rate
        schedule is then that of the new ``steps`` from the resumed step on).
    progress : bool
        Show a tqdm progress bar.
    checkpoint_every : int
        Steps between checkpoints (one is also written at the end, and on
        ``KeyboardInterrupt``).
    model_options : mapping, optional
        FNO options ``width`` (24), ``layers`` (4), ``modes`` (12),
        ``time_features`` (16), ``time_width`` (64), and the EDM
        ``sigma_data`` (1.0).
    noise : GaussianMeasure, optional
        The noise measure (default :func:`~sciffd.models.fno.default_noise`);
        it must have a configuration form and should have unit pointwise
        variance.
    process : VPProcess, optional
        The forward process (default ``VPProcess()``).
    warmup : int, optional
        Warm-up steps (default ``min(200, steps // 10)``).
    stop_after : int, optional
        Stop (with a checkpoint) once this many steps are done, as a job
        with a time limit would; ``resume=True`` continues the same run.
    device : torch device, optional
        Where to train (default CPU).
    gaussian_tail : bool
        Store the per-shell variance of the data so that the model's modes
        outside the network's spectral band are denoised as Gaussian with
        the data's spectrum (see :class:`~sciffd.models.fno.FNODenoiser`).
    mean_field : bool
        Keep the Fourier modes of the data's mean that are significantly
        non-zero (:meth:`~sciffd.models.mean.MeanField.from_samples`, with
        the number of ``member`` entries of a dataset as the number of
        independent samples) as a fixed mean field the network works about.
        A forced flow's mean has a fixed phase the network cannot make.
    skip : {"gaussian", "edm"}
        The denoiser's skip connection (:class:`~sciffd.models.fno.FNODenoiser`):
        ``"gaussian"`` (default) starts the network from the Gaussian model
        with the data's mean and shell spectrum and trains only the
        departure from it; ``"edm"`` is the scalar ``c_skip`` of Karras et al.
    balance : float
        ``gamma >= 0`` of :func:`~sciffd.training.dsm.network_loss`: weight
        the error of mode ``k`` by ``(q_1 / q_k)^gamma`` on the modes the
        network keeps (0 on the tail). The default 0 is the grid-mean L2
        loss; a positive value lets the weak shells of a steep spectrum be
        learned (it needs ``gaussian_tail`` or the Gaussian skip).
    output : {"scalar", "spectral"}
        How the network's output is scaled (:class:`~sciffd.models.fno.FNODenoiser`):
        EDM's scalar ``c_out`` or, mode by mode, the posterior standard
        deviation of the Gaussian with the data's shell spectrum (needs the
        shell spectrum, as ``skip="gaussian"`` does; not with ``balance``).

    Returns
    -------
    pathlib.Path
        ``out_dir``, holding ``config.json``, ``weights.safetensors``,
        ``checkpoint.safetensors``, ``state.json`` and ``metrics.jsonl``
        (see :mod:`sciffd.training.checkpoint`).

    Raises
    ------
    ValueError
        Bad data (shape, NaN, unknown variable), bad options, a resumed run
        that differs from the stored one.
    FileExistsError
        ``out_dir`` already holds a run and ``resume=False``.
    FloatingPointError
        The loss or the gradient norm became non-finite.

    Notes
    -----
    See :mod:`sciffd.training.dsm` for the loss and the distribution of the
    noise levels, and :mod:`sciffd.training.loop` for speed on a CPU
    (``THP_MEM_ALLOC_ENABLE=1``).
    """
    steps = _int_option(steps, "steps")
    batch_size = _int_option(batch_size, "batch_size")
    checkpoint_every = _int_option(checkpoint_every, "checkpoint_every")
    seed = _int_option(seed, "seed", minimum=0)
    lr = _float_option(lr, "lr", positive=True)
    balance = _float_option(balance, "balance")
    if balance and not gaussian_tail:
        raise ValueError(f"balance={balance!r} needs gaussian_tail=True (the weights come from "
                         "the data's shell spectrum and leave out the tail)")
    weight_decay = _float_option(weight_decay, "weight_decay")
    if grad_clip is not None:
        grad_clip = _float_option(grad_clip, "grad_clip", positive=True)
    warmup = min(200, steps // 10) if warmup is None else _int_option(warmup, "warmup", 0)
    if stop_after is not None:
        stop_after = _int_option(stop_after, "stop_after")
    if not isinstance(out_dir, (str, os.PathLike)):
        raise TypeError(f"out_dir={out_dir!r} must be a path")
    out = Path(out_dir)
    device = torch.device("cpu" if device is None else device)

    samples_np, grid, metadata = training_samples(data, grid, variable)
    channels = samples_np.shape[1]
    process = VPProcess() if process is None else process
    if not isinstance(process, VPProcess):
        raise TypeError(f"process must be a sciffd.sde.VPProcess, got {type(process).__name__}")
    noise = default_noise(grid) if noise is None else noise
    if not isinstance(noise, GaussianMeasure):
        raise TypeError(f"noise must be a sciffd.noise.GaussianMeasure, got "
                        f"{type(noise).__name__}")
    noise_config = measure_to_config(noise)

    axes = (0,) + tuple(range(2, samples_np.ndim))
    mean = samples_np.mean(axis=axes, dtype=np.float64)
    mu = None
    if mean_field:
        mu = MeanField.from_samples(samples_np, grid,
                                    independent=_independent(data, samples_np.shape[0]))
        anomaly = samples_np - mu.evaluate(grid)[None].astype(np.float32)
        std = anomaly.std(axis=axes, dtype=np.float64)
        del anomaly
    else:
        std = samples_np.std(axis=axes, dtype=np.float64)
    if not (std > 0).all():
        raise ValueError(f"data ({variable!r}) has a channel with zero variance "
                         f"(std per channel {std.tolist()}); nothing to learn")
    sigma_ref = float(np.exp(np.log(std).mean()))

    threads = torch.get_num_threads()
    torch.set_num_threads(backend.fft_workers())
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            network, sigma_data = _network(model_options, channels, grid.ndim)
        if skip not in ("gaussian", "edm"):
            raise ValueError(f"skip={skip!r} is not supported; expected 'gaussian' or 'edm'")
        if output == "spectral" and balance:
            raise ValueError(f"balance={balance!r} applies to output='scalar' only")
        table = None
        if gaussian_tail or skip == "gaussian" or output == "spectral":
            # per-shell variance about the sample mean (which holds the mean field)
            table = shell_variance(samples_np, grid)
        model = FNODenoiser(network.to(device), process, noise, sigma_data=sigma_data,
                            data_mean=mean, data_std=std, channels=channels,
                            lengths=grid.lengths, tail_variance=table, mean_field=mu,
                            skip=skip, tail=bool(gaussian_tail), output=output)
        config = {
            "format": ckpt.FORMAT,
            "description": f"FNO denoiser of {metadata['long_name']} on {grid.shape}",
            "sciffd_version": __version__,
            "network": network.options(),
            "process": process.to_config(),
            "noise": noise_config,
            "data": {"mean": mean.tolist(), "std": std.tolist(), "sigma_data": sigma_data,
                     "samples": int(samples_np.shape[0]),
                     "tail_variance": None if table is None else table.tolist(),
                     "mean_field": None if mu is None else mu.to_config()},
            "grid": {"shape": list(grid.shape), "lengths": list(grid.lengths)},
            "denoiser": {"skip": skip, "tail": bool(gaussian_tail), "output": output},
            "variable": metadata,
            "training": {"steps": steps, "batch_size": batch_size, "lr": lr,
                         "weight_decay": weight_decay, "ema_decay": ema_decay,
                         "grad_clip": grad_clip, "seed": seed, "warmup": warmup,
                         "checkpoint_every": checkpoint_every, "p_mean": P_MEAN,
                         "p_std": P_STD, "sigma_ref": sigma_ref,
                         "loss": "EDM-weighted grid-mean L2" if not balance else
                         f"EDM-weighted, modes weighted by (q_1 / q_k)^{balance:g}",
                         **({"balance": balance} if balance else {})},
        }
        ema = EMA(network, ema_decay)
        opt = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=weight_decay)
        out.mkdir(parents=True, exist_ok=True)

        start, metrics = 0, []
        has_run = (out / ckpt.CHECKPOINT_NAME).exists() or (out / ckpt.CONFIG_NAME).exists()
        if has_run and not resume:
            raise FileExistsError(
                f"{out} already holds a training run; pass resume=True to continue it "
                "or choose another out_dir"
            )
        if resume and (out / ckpt.CHECKPOINT_NAME).exists():
            _compare_configs(ckpt.read_config(out), config, out / ckpt.CONFIG_NAME)
            start, metrics = _restore(out, model, ema, opt, device)
            logger.info("resuming %s at step %d of %d", out, start, steps)
        ckpt.write_json(out / ckpt.CONFIG_NAME, config)

        samples = torch.as_tensor(samples_np, device=device)
        _run(model, ema, opt, samples, grid, out, metrics, start=start,
             end=steps if stop_after is None else min(steps, stop_after), steps=steps,
             batch_size=batch_size, lr=lr, warmup=warmup, grad_clip=grad_clip, seed=seed,
             sigma_ref=sigma_ref, checkpoint_every=checkpoint_every, progress=progress,
             balance=balance)
    finally:
        torch.set_num_threads(threads)
    return out


def _run(model: FNODenoiser, ema: EMA, opt: torch.optim.Optimizer, samples: torch.Tensor,
         grid: TorusGrid, out: Path, metrics: list[str], *, start: int, end: int, steps: int,
         batch_size: int, lr: float, warmup: int, grad_clip: float | None, seed: int,
         sigma_ref: float, checkpoint_every: int, progress: bool,
         balance: float = 0.0) -> None:
    """Steps ``start .. end - 1``, with checkpoints; ``step`` counts completed steps."""
    from tqdm.auto import tqdm

    network = model.network
    network.train()
    params = list(network.parameters())
    step = start
    bar = tqdm(total=steps, initial=start, disable=not progress, desc="training",
               unit="step", dynamic_ncols=True)
    t0 = time.perf_counter()
    consistent = True  # False while the weights are updated but step is not yet counted
    try:
        while step < end:
            tic = time.perf_counter()
            rate = lr_at(step, steps, lr, warmup)
            for group in opt.param_groups:
                group["lr"] = rate
            batch = draw_batch(samples, grid, model.process, model.noise, step=step,
                               batch_size=batch_size, seed=seed, sigma_ref=sigma_ref)
            opt.zero_grad(set_to_none=True)
            loss = network_loss(model, batch, balance)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(
                params, math.inf if grad_clip is None else grad_clip)
            loss_value, norm_value = float(loss.detach()), float(norm)
            if not (math.isfinite(loss_value) and math.isfinite(norm_value)):
                raise FloatingPointError(
                    f"training diverged at step {step}: loss={loss_value}, gradient "
                    f"norm={norm_value}; lower lr (now {lr}) or check the data scale"
                )
            consistent = False
            opt.step()
            ema.update(network, step)
            step += 1
            consistent = True
            seconds = time.perf_counter() - tic
            metrics.append(json.dumps({
                "step": step, "loss": loss_value, "lr": rate, "grad_norm": norm_value,
                "seconds": round(seconds, 6),
                "elapsed": round(time.perf_counter() - t0, 3)}) + "\n")
            bar.update(1)
            if step % 10 == 0 or step == end:
                bar.set_postfix(loss=f"{loss_value:.4f}", refresh=False)
            if step % checkpoint_every == 0 and step < end:
                _checkpoint(out, model, ema, opt, step, seed, metrics)
    except KeyboardInterrupt:
        if consistent:
            logger.warning("interrupted after step %d; writing a checkpoint to %s", step, out)
            _checkpoint(out, model, ema, opt, step, seed, metrics)
        else:
            logger.warning("interrupted inside step %d; the last checkpoint in %s stands",
                           step + 1, out)
        raise
    finally:
        bar.close()
        network.eval()
    _checkpoint(out, model, ema, opt, step, seed, metrics)
