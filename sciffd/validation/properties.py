"""Inputs of the properties that range over seeds, member subsets and resolutions.

A property such as "the low modes of a member agree between any two
resolutions" is checked on examples drawn by hypothesis (a fixed
``hypothesis.seed``, no example database, no shrinking, so a run is
reproducible and writes nothing). Hypothesis explores the edges of a
domain (the smallest and largest resolution, a subset of one member)
that uniform draws rarely reach. Where hypothesis is not installed (it
comes with the ``test`` extra), or the suite runs inside a hypothesis test
(which cannot nest another), the examples are drawn with numpy from the
same domain, and the report says so.

The domains are small descriptions, so that both engines draw from them:
:class:`Seeds`, :class:`MemberSubsets`, :class:`ResolutionPairs`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["MemberSubsets", "ResolutionPairs", "Seeds", "draw_examples", "engine"]


@dataclass(frozen=True)
class Seeds:
    """Ensemble seeds in ``[low, high]``."""

    low: int = 0
    high: int = 2**31 - 1

    def strategy(self) -> Any:
        from hypothesis import strategies as st

        return st.integers(self.low, self.high)

    def draw(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.low, self.high + 1))


@dataclass(frozen=True)
class MemberSubsets:
    """Non-empty subsets of the member ids ``0 .. members - 1``, at most ``max_size`` long."""

    members: int
    max_size: int = 3

    def strategy(self) -> Any:
        from hypothesis import strategies as st

        return st.lists(st.integers(0, self.members - 1), min_size=1,
                        max_size=min(self.max_size, self.members), unique=True)

    def draw(self, rng: np.random.Generator) -> list[int]:
        size = int(rng.integers(1, min(self.max_size, self.members) + 1))
        return sorted(int(i) for i in rng.choice(self.members, size, replace=False))


@dataclass(frozen=True)
class ResolutionPairs:
    """Pairs ``(N_1, N_2)``, ``N_1 < N_2``, of resolutions from ``values``."""

    values: tuple[int, ...]

    def strategy(self) -> Any:
        from hypothesis import strategies as st

        return st.lists(st.sampled_from(self.values), min_size=2, max_size=2,
                        unique=True).map(lambda p: tuple(sorted(p)))

    def draw(self, rng: np.random.Generator) -> tuple[int, int]:
        a, b = rng.choice(self.values, 2, replace=False)
        return (int(min(a, b)), int(max(a, b)))


def engine() -> str:
    """``"hypothesis"`` when it is importable, else ``"numpy"``.

    Inside a running hypothesis test (which cannot nest another) it is
    ``"numpy"`` too.
    """
    try:
        from hypothesis.control import currently_in_test_context
    except ImportError:
        return "numpy"
    return "numpy" if currently_in_test_context() else "hypothesis"


def draw_examples(domain: Seeds | MemberSubsets | ResolutionPairs, count: int,
                  seed: int = 0) -> list[Any]:
    """``count`` distinct examples of ``domain`` (fewer if it has fewer).

    Parameters
    ----------
    domain : Seeds, MemberSubsets or ResolutionPairs
    count : int
    seed : int
        Seed of the draws (``hypothesis.seed`` or ``numpy.random.default_rng``).

    Returns
    -------
    list
        Examples in the order they were drawn.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count={count!r} must be a positive integer")
    found: list[Any] = []

    def keep(example: Any) -> None:
        key = tuple(example) if isinstance(example, (list, tuple)) else example
        if key not in [tuple(e) if isinstance(e, (list, tuple)) else e for e in found]:
            found.append(example)

    if engine() == "hypothesis":
        _hypothesis_examples(domain.strategy(), count, seed, keep)
    # top up (or, without hypothesis, fill) with numpy draws of the same domain
    rng = np.random.default_rng(seed)
    for _ in range(50 * count):
        if len(found) >= count:
            break
        keep(domain.draw(rng))
    return found[:count]


def _hypothesis_examples(strategy: Any, count: int, seed: int,
                         keep: Callable[[Any], None]) -> None:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    @hypothesis_seed(seed)
    @settings(max_examples=count, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck), derandomize=False)
    @given(strategy)
    def collect(example: Any) -> None:
        keep(example)

    collect()


def as_list(values: Sequence[Any]) -> list[Any]:
    """Examples as JSON-ready lists."""
    return [list(v) if isinstance(v, (list, tuple)) else v for v in values]
