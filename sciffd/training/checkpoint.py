"""Model directories and training checkpoints: safetensors plus JSON, written atomically.

A training output directory holds

``config.json``
    Everything needed to rebuild the model: the network options, the
    process (:meth:`~sciffd.sde.VPProcess.to_config`), the noise
    (:func:`~sciffd.noise.measure_to_config`), the data mean and scale, the
    training grid, the variable's metadata, the training options and the
    sciffd version.
``weights.safetensors``
    The EMA weights of the network, used for sampling.
``checkpoint.safetensors`` and ``state.json``
    The resumable state: network, EMA and AdamW tensors, and the step and
    seed.
``metrics.jsonl``
    One JSON line per training step.

Every file is written to a temporary file in the same folder and moved into
place with ``os.replace``, so a crash leaves the previous version intact.
Loading reads safetensors with :func:`safetensors.torch.load_file` and JSON;
no pickled object is ever loaded.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from .._files import ordinary_permissions
from ..models.fno import FNO, FNODenoiser
from ..models.mean import MeanField
from ..noise import measure_from_config
from ..sde import VPProcess

__all__ = [
    "CHECKPOINT_NAME",
    "CONFIG_NAME",
    "FORMAT",
    "METRICS_NAME",
    "STATE_NAME",
    "WEIGHTS_NAME",
    "atomic_write",
    "load_model",
    "read_config",
    "read_tensors",
    "write_json",
    "write_tensors",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.safetensors"
CHECKPOINT_NAME = "checkpoint.safetensors"
STATE_NAME = "state.json"
METRICS_NAME = "metrics.jsonl"
#: the value of ``config["format"]`` of an FNO model directory
FORMAT = "sciffd-fno-1"


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        ordinary_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode("utf-8"))


def write_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor]) -> None:
    """Write tensors as safetensors, atomically (tensors are copied to the CPU)."""
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    atomic_write(path, safetensors_bytes(cpu))


def read_tensors(path: Path, device: Any = "cpu") -> dict[str, torch.Tensor]:
    """Read a safetensors file, with a clear error for a missing or corrupt one."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; the model directory is incomplete")
    try:
        return load_file(str(path), device=str(device) if device is not None else "cpu")
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(f"{path} is not a readable safetensors file ({err})") from err


def read_config(directory: str | os.PathLike) -> dict:
    """The ``config.json`` of a model directory, checked to be an FNO model's."""
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"directory={directory!r} must be a path")
    folder = Path(directory)
    if not folder.is_dir():
        raise FileNotFoundError(f"model directory {str(folder)!r} does not exist")
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{str(folder)!r} has no {CONFIG_NAME}, so it is not a model directory "
            "(expected the output directory of sciffd.training.train)"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err})") from err
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise ValueError(f"{path} is not an FNO model configuration: format={found!r}, "
                         f"expected {FORMAT!r}")
    missing = [k for k in ("network", "process", "noise", "data", "grid") if k not in config]
    if missing:
        raise ValueError(f"{path} lacks the entries {missing}")
    return config


def model_from_config(config: dict) -> FNODenoiser:
    """An :class:`FNODenoiser` with fresh weights, built from a configuration."""
    try:
        network = FNO(**config["network"])
        data = config["data"]
        return FNODenoiser(
            network,
            VPProcess.from_config(config["process"]),
            measure_from_config(config["noise"]),
            sigma_data=data["sigma_data"],
            data_mean=data["mean"],
            data_std=data["std"],
            channels=network.in_channels,
            lengths=config["grid"]["lengths"],
            tail_variance=data.get("tail_variance"),
            mean_field=None if data.get("mean_field") is None
            else MeanField.from_config(data["mean_field"]),
            skip=config.get("denoiser", {}).get("skip", "edm"),
            tail=config.get("denoiser", {}).get("tail", True),
            output=config.get("denoiser", {}).get("output", "scalar"),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"the model configuration cannot be used: {err!r}") from err


def load_model(directory: str | os.PathLike,
               device: Any = None) -> tuple[FNODenoiser, dict]:
    """Load a trained FNO model from its directory.

    Parameters
    ----------
    directory : path-like
        The output directory of :func:`sciffd.training.train` (it holds
        ``config.json`` and ``weights.safetensors``).
    device : torch device, optional
        Where to put the network (default CPU).

    Returns
    -------
    model : FNODenoiser
        The network with its EMA weights, in eval mode.
    config : dict
        The configuration read from ``config.json``.

    Raises
    ------
    FileNotFoundError
        If the directory, its ``config.json`` or its weights are missing.
    ValueError
        If a file is corrupt or the weights do not fit the configuration.
    """
    config = read_config(directory)
    model = model_from_config(config)
    state = read_tensors(Path(directory) / WEIGHTS_NAME)
    try:
        model.network.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(
            f"{Path(directory) / WEIGHTS_NAME} does not fit the network of {CONFIG_NAME}: {err}"
        ) from err
    if device is not None:
        model.to(device)
    model.network.eval()
    return model, config
