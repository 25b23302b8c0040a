"""Shared fixtures of the sciffd test suite.

- ``xp``: the array namespace of every installed backend (numpy always;
  torch when importable; cupy only when importable with a GPU, skipped
  otherwise). Kernels under test receive arrays made with ``xp.asarray``
  from float64 numpy arrays, so numerical tests run in float64.
- ``seed`` and ``rng``: a fixed seed (``--seed`` or ``SCIFFD_TEST_SEED``
  override it; a test may also parametrise ``seed``) and a numpy
  generator built from it.
- hypothesis profiles: ``ci`` (the default: few examples, no deadline) and
  ``full`` (many examples); choose with ``HYPOTHESIS_PROFILE=full`` or
  ``pytest --hypothesis-profile=full``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

DEFAULT_SEED = 20240531

settings.register_profile(
    "ci",
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "full",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--seed",
        action="store",
        type=int,
        default=None,
        help=f"seed of the rng fixture (default SCIFFD_TEST_SEED or {DEFAULT_SEED})",
    )


def _cupy_with_gpu():
    """The cupy module if it imports and sees a GPU, else None."""
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
    except Exception:  # no cupy, no driver, no device: all mean "skip"
        return None
    return cupy


def _namespace(name: str):
    if name == "numpy":
        import array_api_compat.numpy as xp

        return xp
    if name == "torch":
        pytest.importorskip("torch")
        import array_api_compat.torch as xp

        return xp
    if _cupy_with_gpu() is None:
        pytest.skip("cupy with a GPU is not available")
    import array_api_compat.cupy as xp

    return xp


@pytest.fixture(params=["numpy", "torch", "cupy"])
def xp(request: pytest.FixtureRequest):
    """The array-API namespace of one installed backend."""
    return _namespace(request.param)


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    """The test seed: ``--seed``, else ``SCIFFD_TEST_SEED``, else a fixed default."""
    value = request.config.getoption("--seed")
    if value is None:
        value = int(os.environ.get("SCIFFD_TEST_SEED", DEFAULT_SEED))
    return int(value)


@pytest.fixture
def rng(seed: int) -> np.random.Generator:
    """A numpy generator seeded with :func:`seed`."""
    return np.random.default_rng(seed)
