"""Array namespaces, devices and FFTs.

All numerical kernels of sciffd are written once against the array API
standard and receive their namespace ``xp`` from the arrays they are given
(``array_api_compat.array_namespace``). Three namespaces are supported:

``"numpy"``
    numpy arrays with ``scipy.fft`` (multi-threaded with ``workers``); the
    CPU default, chosen from measurements (it was 2x faster than
    ``numpy.fft`` and ``torch.fft`` on the reference machine).
``"torch"``
    torch tensors on any device; used where autograd is needed (models,
    training, guidance).
``"cupy"``
    cupy arrays on an NVIDIA GPU, with ``cupy.fft``.

The default backend is read from the environment variable
``SCIFFD_BACKEND`` and falls back to ``"numpy"``. Arrays move between torch
and cupy by DLPack without copies (:func:`to_backend`).
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

BACKENDS = ("numpy", "torch", "cupy")

__all__ = [
    "BACKENDS",
    "array_namespace",
    "backend_name",
    "default_backend",
    "fft_workers",
    "irfftn",
    "rfftn",
    "to_backend",
    "to_numpy",
]


def default_backend() -> str:
    """Return the backend named by ``SCIFFD_BACKEND``, or ``"numpy"``."""
    name = os.environ.get("SCIFFD_BACKEND", "numpy").strip().lower()
    if name not in BACKENDS:
        raise ValueError(
            f"environment variable SCIFFD_BACKEND={name!r} is not a backend; "
            f"expected one of {BACKENDS}"
        )
    return name


def check_backend(backend: str | None) -> str:
    """Validate a ``backend=`` argument and resolve ``None`` to the default."""
    if backend is None:
        return default_backend()
    if not isinstance(backend, str) or backend.lower() not in BACKENDS:
        raise ValueError(f"backend={backend!r} is not supported; expected one of {BACKENDS}")
    return backend.lower()


def array_namespace(*arrays: Any) -> ModuleType:
    """Return the array-API namespace shared by ``arrays``.

    Raises
    ------
    TypeError
        If the arrays come from different libraries (for example one numpy
        array and one torch tensor), or one of them is not an array.
    """
    try:
        return array_api_compat.array_namespace(*arrays)
    except TypeError as err:
        kinds = sorted({type(a).__module__ + "." + type(a).__name__ for a in arrays})
        raise TypeError(
            f"arrays of mixed or unsupported types {kinds}; convert them to one "
            "backend first with sciffd.backend.to_backend"
        ) from err


def backend_name(x: Any) -> str:
    """Return ``"numpy"``, ``"torch"`` or ``"cupy"`` for an array ``x``."""
    if array_api_compat.is_numpy_array(x):
        return "numpy"
    if array_api_compat.is_torch_array(x):
        return "torch"
    if array_api_compat.is_cupy_array(x):
        return "cupy"
    raise TypeError(f"expected a numpy, torch or cupy array, got {type(x).__name__}")


def to_numpy(x: Any) -> np.ndarray:
    """Return ``x`` as a numpy array (copying from a GPU when needed)."""
    if isinstance(x, np.ndarray):
        return x
    if array_api_compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    if array_api_compat.is_cupy_array(x):
        return x.get()
    return np.asarray(x)


def to_backend(x: Any, backend: str, device: Any = None) -> Any:
    """Move an array to ``backend`` (and ``device``), without a copy where possible.

    torch <-> cupy transfers on the same GPU go through DLPack and share
    memory; numpy <-> torch on the CPU share memory too.
    """
    backend = check_backend(backend)
    source = backend_name(x)
    if backend == "numpy":
        return to_numpy(x)
    if backend == "torch":
        import torch

        if source == "torch":
            return x if device is None else x.to(device)
        if source == "cupy":
            t = torch.from_dlpack(x)
        else:
            t = torch.from_numpy(np.ascontiguousarray(x))
        return t if device is None else t.to(device)
    import cupy

    if source == "cupy":
        return x
    if source == "torch" and x.is_cuda:
        return cupy.from_dlpack(x.detach())
    return cupy.asarray(to_numpy(x))


def fft_workers() -> int:
    """Number of threads given to ``scipy.fft`` (``SCIFFD_FFT_WORKERS`` or all cores)."""
    value = os.environ.get("SCIFFD_FFT_WORKERS")
    if value:
        return max(1, int(value))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def rfftn(x: Any, ndim: int) -> Any:
    """Real FFT over the last ``ndim`` axes with ``norm="forward"``.

    The coefficients are ``u_hat[k] = (1/N^d) sum_j u(x_j) exp(-2 pi i k.x_j/L)``,
    so that they approximate the Fourier-series coefficients and do not
    depend on the resolution.
    """
    axes = tuple(range(-ndim, 0))
    name = backend_name(x)
    if name == "numpy":
        import scipy.fft

        return scipy.fft.rfftn(x, axes=axes, norm="forward", workers=fft_workers())
    if name == "torch":
        import torch

        return torch.fft.rfftn(x, dim=axes, norm="forward")
    import cupy

    return cupy.fft.rfftn(x, axes=axes, norm="forward")


def irfftn(x_hat: Any, shape: tuple[int, ...]) -> Any:
    """Inverse of :func:`rfftn` onto a grid of ``shape`` (the last ``len(shape)`` axes)."""
    ndim = len(shape)
    axes = tuple(range(-ndim, 0))
    name = backend_name(x_hat)
    if name == "numpy":
        import scipy.fft

        return scipy.fft.irfftn(x_hat, s=shape, axes=axes, norm="forward", workers=fft_workers())
    if name == "torch":
        import torch

        return torch.fft.irfftn(x_hat, s=shape, dim=axes, norm="forward")
    import cupy

    return cupy.fft.irfftn(x_hat, s=shape, axes=axes, norm="forward")
