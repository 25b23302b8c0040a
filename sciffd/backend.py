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

Batched inverse transforms on one thread (noise sampling) can use planned
FFTW objects from the optional, GPL-licensed pyFFTW when it is installed
(:func:`irfftn_plan`); sciffd never requires it, and ``SCIFFD_PYFFTW=0``
turns it off.
"""

from __future__ import annotations

import functools
import os
import threading
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
    "irfftn_plan",
    "uses_pyfftw",
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


# -- planned single-thread inverse transforms (noise sampling) -----------------
# below about 32^2 points a transform costs less than calling it from Python
_FFTW_MIN_POINTS = 1024
_PLANS_PER_THREAD = 16
_plans = threading.local()


def uses_pyfftw(shape: tuple[int, ...]) -> bool:
    """Whether :func:`irfftn_plan` plans fields of ``shape`` with pyFFTW.

    True when pyFFTW is importable, ``SCIFFD_PYFFTW`` is not ``0`` and a
    field has at least 32^2 points.
    """
    if int(np.prod(shape)) < _FFTW_MIN_POINTS \
            or os.environ.get("SCIFFD_PYFFTW", "1").strip() == "0":
        return False
    return _pyfftw_importable()


@functools.cache
def _pyfftw_importable() -> bool:
    try:
        import pyfftw  # noqa: F401
    except ImportError:
        return False
    return True


class InverseFFTPlan:
    """``irfftn`` (``norm="forward"``) of a batch ``(B, *K) -> (B, *S)`` on one thread.

    Fill :attr:`input` and call :meth:`execute`; the input is overwritten.
    With pyFFTW the result is the plan's own buffer, valid until the next
    call; copy it out.

    pyFFTW plans with ``FFTW_ESTIMATE``: the plan, and so every rounding,
    is the same in every process and thread on a machine, which keeps
    noise members identical across workers. ``FFTW_MEASURE`` transforms
    were up to 1.4x faster here but may choose differently in each process.
    """

    def __init__(self, batch: int, shape: tuple[int, ...], dtype: np.dtype,
                 fftw: bool) -> None:
        self.shape = tuple(shape)
        self.axes = tuple(range(1, len(shape) + 1))
        self.engine = "pyfftw" if fftw else "scipy"
        spectral = (batch,) + self.shape[:-1] + (self.shape[-1] // 2 + 1,)
        cdtype = np.result_type(dtype, np.complex64)
        if not fftw:
            self.input = np.empty(spectral, dtype=cdtype)
            return
        import pyfftw

        self.input = pyfftw.empty_aligned(spectral, dtype=cdtype)
        self._output = pyfftw.empty_aligned((batch,) + self.shape, dtype=dtype)
        self._fftw = pyfftw.FFTW(
            self.input, self._output, axes=self.axes, direction="FFTW_BACKWARD",
            flags=("FFTW_ESTIMATE", "FFTW_DESTROY_INPUT"), threads=1, normalise_idft=False,
        )

    def execute(self) -> np.ndarray:
        """Transform :attr:`input`; returns the grid values, shape ``(B, *S)``."""
        if self.engine == "scipy":
            import scipy.fft

            return scipy.fft.irfftn(self.input, s=self.shape, axes=self.axes, norm="forward",
                                    workers=1, overwrite_x=True)
        self._fftw.execute()
        return self._output


def irfftn_plan(batch: int, shape: tuple[int, ...], dtype: np.dtype) -> InverseFFTPlan:
    """The calling thread's :class:`InverseFFTPlan` for ``batch`` fields of ``shape``.

    Plans are made once per thread, batch, shape and dtype and kept (the
    16 most recently used per thread); pyFFTW (``FFTW_ESTIMATE``) is used
    where :func:`uses_pyfftw` says so, otherwise ``scipy.fft``.
    """
    dtype = np.dtype(dtype)
    fftw = uses_pyfftw(shape)
    key = (int(batch), tuple(shape), dtype.str, fftw)
    cache = getattr(_plans, "cache", None)
    if cache is None:
        cache = _plans.cache = {}
    plan = cache.pop(key, None)
    if plan is None:
        plan = InverseFFTPlan(int(batch), tuple(shape), dtype, fftw)
        if len(cache) >= _PLANS_PER_THREAD:
            del cache[next(iter(cache))]
    cache[key] = plan  # most recently used last
    return plan
