"""Nested noise: the generator of each member and where its draws land.

Member ``m`` of seed ``s`` (channel ``c``, stream ``t``) draws its normals
from ``Generator(SFC64(SeedSequence(s, spawn_key=(m, c, t))))``. A field
with ``N_i`` points on axis ``i`` needs the modes with ``|m_i| <= K_i =
(N_i - 1) // 2``; the generator draws

    z_0,  (z_1', z_1''),  (z_2', z_2''), ..   (float64, in this order)

for the mean mode and then, for each canonical mode of the shell order
(shells ``r = max_i |m_i| = 1, 2, .., max_i K_i``), its real and
imaginary parts. The half-spectrum coefficient of mode ``j`` is
``sqrt(lambda_j / 2) (z_j' + i z_j'')``, that of the mean
``sqrt(lambda_0) z_0``, and the modes of the plane ``m_x = 0`` with a
non-canonical index are the complex conjugates of their mirrors. Since the
order of the shells does not depend on ``N``, the draws of a coarse grid
are a prefix of those of a fine grid; the modes a grid does not represent
(outside its band on a non-square grid) are drawn and dropped.

This module holds the fast machinery behind
:meth:`sciffd.noise.GaussianMeasure.sample`:

- the seed words of many members at once, computed with vectorised uint32
  arithmetic that reproduces numpy's ``SeedSequence`` (checked against
  numpy at first use, and by the tests; a mismatch falls back to numpy's
  own ``SeedSequence``, member by member); SFC64 seeds itself from them;
- the gather map of the draws onto the half spectrum, cached per shape;
- a small persistent thread pool (numpy generators and FFTs release the
  GIL), with chunks of rows handed out one by one, so that a thread on a
  busy core simply takes fewer.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.random.bit_generator import ISeedSequence

from . import backend

logger = logging.getLogger(__name__)

__all__ = [
    "DrawLayout",
    "Drawer",
    "layout",
    "member_generator",
    "parallel",
    "seed_words",
    "shell_order",
    "threads_for",
    "vectorised_seeding_ok",
]


def member_generator(seed: int, member: int, channel: int = 0,
                     stream: int = 0) -> np.random.Generator:
    """The numpy generator of one member, channel and stream of ``seed``.

    This is the reference definition of the nested noise; the batched
    sampler reproduces its draws exactly.
    """
    ss = np.random.SeedSequence(int(seed), spawn_key=(int(member), int(channel), int(stream)))
    return np.random.Generator(np.random.SFC64(ss))


# -- seeding many members at once -------------------------------------------
# Constants of numpy's SeedSequence (O'Neill's seed_seq hash) and SFC64.
_MASK32 = 0xFFFFFFFF
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715
_POOL = 4


def _hash_int(value: int, const: int) -> tuple[int, int]:
    """One step of the running hash on Python integers: (hashed word, next constant)."""
    value ^= const
    const = (const * _MULT_A) & _MASK32
    value = (value * const) & _MASK32
    return value ^ (value >> 16), const


def _mix_int(x: int, y: int) -> int:
    r = (_MIX_L * x - _MIX_R * y) & _MASK32
    return r ^ (r >> 16)


def _constants(start: int, mult: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The constants before and after each of ``n`` hash steps, shape ``(n, 1)``."""
    k = [start]
    for _ in range(n):
        k.append((k[-1] * mult) & _MASK32)
    k = np.asarray(k, dtype=np.uint32)[:, None]
    return k[:-1], k[1:]


@lru_cache(maxsize=256)
def _seed_pool(seed: int) -> tuple[tuple[int, ...], int]:
    """The pool after hashing the seed (padded to the pool size), and the hash constant."""
    const = _INIT_A
    pool = []
    for i in range(_POOL):
        h, const = _hash_int((seed >> (32 * i)) & _MASK32, const)
        pool.append(h)
    for src in range(_POOL):
        for dst in range(_POOL):
            if src != dst:
                h, const = _hash_int(pool[src], const)
                pool[dst] = _mix_int(pool[dst], h)
    return tuple(pool), const


def seed_words(seed: int, keys: np.ndarray) -> np.ndarray | None:
    """``SeedSequence(seed, spawn_key=tuple(k)).generate_state(3, np.uint64)`` for each ``k``.

    Parameters
    ----------
    seed : int
        Non-negative seed ``s``.
    keys : int array, shape ``(J, 3)``
        Spawn keys ``(m, c, t)``.

    Returns
    -------
    words : uint64 array, shape ``(J, 3)``, or None
        The three words SFC64 is seeded with; None when the seed or a key
        entry is too large for this path (``seed >= 2**128`` or a key entry
        ``>= 2**32``), whose entropy numpy lays out differently.
    """
    keys = np.asarray(keys, dtype=np.int64)
    if seed >= 2**128 or keys.size and (keys.min() < 0 or keys.max() > _MASK32):
        return None
    n, n_cols = keys.shape

    pool, const = _seed_pool(seed)

    # each key word is hashed into the four pool words, one constant each
    pools = np.empty((_POOL, n), dtype=np.uint32)
    pools[:] = np.asarray(pool, dtype=np.uint32)[:, None]
    before, after = _constants(const, _MULT_A, _POOL * n_cols)
    h = np.empty((_POOL, n), dtype=np.uint32)
    for col in range(n_cols):
        rows = slice(_POOL * col, _POOL * (col + 1))
        np.bitwise_xor(keys[:, col].astype(np.uint32), before[rows], out=h)
        h *= after[rows]
        h ^= h >> np.uint32(16)
        pools *= np.uint32(_MIX_L)
        h *= np.uint32(_MIX_R)
        pools -= h
        pools ^= pools >> np.uint32(16)

    # generate_state(3, uint64): six 32-bit words read cyclically from the pool
    before, after = _constants(_INIT_B, _MULT_B, 6)
    v = pools[[0, 1, 2, 3, 0, 1]] ^ before
    v *= after
    v ^= v >> np.uint32(16)
    v = v.astype(np.uint64)
    return (v[0::2] | (v[1::2] << np.uint64(32))).T.copy()


class _Words(ISeedSequence):
    """Seed words already computed by :func:`seed_words`; SFC64 seeds itself from them."""

    def __init__(self, words: np.ndarray) -> None:
        self.words = words

    def generate_state(self, n_words: int, dtype: Any = np.uint32) -> np.ndarray:
        if n_words != len(self.words) or np.dtype(dtype) != np.uint64:
            raise ValueError(f"expected a request for {len(self.words)} uint64 words")
        return self.words


@lru_cache(maxsize=1)
def vectorised_seeding_ok() -> bool:
    """Whether :func:`seed_words` agrees with numpy's ``SeedSequence`` here."""
    keys = np.array([[0, 0, 0], [5, 1, 2], [2**32 - 1, 7, 3]])
    for seed in (0, 12345, 2**70 + 3):
        words = seed_words(seed, keys)
        for key, w in zip(keys, words, strict=True):
            ss = np.random.SeedSequence(seed, spawn_key=tuple(int(k) for k in key))
            if not np.array_equal(ss.generate_state(3, np.uint64), w):
                logger.warning("vectorised SFC64 seeding disagrees with numpy %s; "
                               "falling back to numpy's SeedSequence", np.__version__)
                return False
    return True


# -- layout of the draws ------------------------------------------------------
@lru_cache(maxsize=64)
def shell_order(ndim: int, K: int) -> np.ndarray:
    """Canonical nonzero modes with ``max|m_i| <= K``, in shell order, shape ``(M, d)``.

    A mode is canonical when its last nonzero index, read from the last
    axis (x) backwards, is positive: exactly one of ``m`` and ``-m``.
    Within a shell the modes are sorted lexicographically, so the order of
    shell ``r`` does not depend on ``K``.
    """
    r = np.arange(-K, K + 1)
    m = np.stack(np.meshgrid(*([r] * ndim), indexing="ij"), axis=-1).reshape(-1, ndim)
    canonical = np.zeros(len(m), dtype=bool)
    decided = np.zeros(len(m), dtype=bool)
    for axis in range(ndim - 1, -1, -1):
        v = m[:, axis]
        canonical |= ~decided & (v > 0)
        decided |= v != 0
    m = m[canonical]
    shell = np.abs(m).max(axis=1)
    order = np.lexsort(tuple(m[:, i] for i in range(ndim - 1, -1, -1)) + (shell,))
    return m[order]


@dataclass(frozen=True)
class DrawLayout:
    """Where the draws of one field land in the half spectrum of ``shape``.

    Attributes
    ----------
    shape, spectral_shape : tuple of int
        Grid shape ``S`` and half-spectrum shape ``K``.
    n_modes : int
        Canonical modes drawn, ``M``; a field draws ``1 + 2 M`` normals.
    kept : int array, shape ``(P,)``
        Which drawn modes the grid represents.
    dst : int array, shape ``(P,)``
        Their flat half-spectrum indices.
    gather : intp array, shape ``(prod(K),)``
        For each half-spectrum entry, the drawn mode it takes (index ``M``,
        a zero slot, for the mean, the mirrors, the Nyquist and the
        unrepresented entries).
    mirror_src, mirror_dst : int arrays, shape ``(Q,)``
        Entries of the plane ``m_x = 0`` filled by Hermitian symmetry,
        ``u_hat[mirror_dst] = conj(u_hat[mirror_src])``.
    """

    shape: tuple[int, ...]
    spectral_shape: tuple[int, ...]
    n_modes: int
    kept: np.ndarray
    dst: np.ndarray
    gather: np.ndarray
    mirror_src: np.ndarray
    mirror_dst: np.ndarray

    @property
    def n_draws(self) -> int:
        """Normals drawn per field, ``1 + 2 M``."""
        return 1 + 2 * self.n_modes

    @property
    def size(self) -> int:
        """Entries of the half spectrum, ``prod(K)``."""
        return int(np.prod(self.spectral_shape))


@lru_cache(maxsize=64)
def layout(shape: tuple[int, ...]) -> DrawLayout:
    """The :class:`DrawLayout` of a grid of ``shape`` (cached)."""
    ndim = len(shape)
    Ks = np.asarray([(n - 1) // 2 for n in shape])
    modes = shell_order(ndim, int(Ks.max()))
    kept = np.nonzero(np.all(np.abs(modes) <= Ks, axis=1))[0]
    m = modes[kept]
    spectral_shape = shape[:-1] + (shape[-1] // 2 + 1,)
    # the last axis holds m_x >= 0 only; the others wrap negative indices
    index = tuple(m[:, i] % shape[i] for i in range(ndim - 1)) + (m[:, -1],)
    dst = np.ravel_multi_index(index, spectral_shape)

    on_plane = m[:, -1] == 0
    mirror_src = dst[on_plane]
    neg = -m[on_plane]
    mirror_dst = np.ravel_multi_index(
        tuple(neg[:, i] % shape[i] for i in range(ndim - 1)) + (neg[:, -1],), spectral_shape
    ) if ndim > 1 else np.zeros(0, dtype=np.int64)

    size = int(np.prod(spectral_shape))
    gather = np.full(size, len(modes), dtype=np.intp)
    gather[dst] = kept
    for a in (kept, dst, gather, mirror_src, mirror_dst):
        a.setflags(write=False)
    return DrawLayout(tuple(shape), spectral_shape, len(modes), kept, dst, gather,
                      mirror_src, mirror_dst)


# -- drawing rows -------------------------------------------------------------
class Drawer:
    """Fills half-spectrum rows with the draws of given jobs; one per thread.

    Parameters
    ----------
    lay : DrawLayout
    scale_pairs : float64 array, shape ``(2 M,)``
        ``sqrt(lambda_j / 2)`` twice per drawn mode (0 for dropped ones).
    scale_mean : float
        ``sqrt(lambda_0)``.
    single : bool
        Whether the rows are complex64 (else complex128).
    seed, keys, words
        The seed, the spawn keys ``(J, 3)`` of the jobs and their seed words
        ``(J, 3)`` from :func:`seed_words` (None: seed each job with numpy's
        ``SeedSequence``).
    """

    def __init__(self, lay: DrawLayout, scale_pairs: np.ndarray, scale_mean: float,
                 single: bool, seed: int, keys: np.ndarray, words: np.ndarray | None):
        self.lay = lay
        self.scale_pairs = scale_pairs
        self.scale_mean = scale_mean
        self.seed, self.keys, self.words = seed, keys, words
        M = lay.n_modes
        # z_0 at offset 1 so the pairs start on a 16-byte boundary; two zeros close it
        self._buf = np.zeros(2 * M + 4, dtype=np.float64)
        self._z = self._buf[1:2 + 2 * M]
        self._pairs = self._buf[2:2 + 2 * M]
        if single:
            self._scaled = np.zeros(2 * M + 2, dtype=np.float32)
            self._source = self._scaled.view(np.complex64)
        else:
            self._scaled = self._buf[2:]
            self._source = self._scaled.view(np.complex128)
        self._scaled_pairs = self._scaled[:2 * M]
        self._gather = lay.gather
        self._mirror_src, self._mirror_dst = lay.mirror_src, lay.mirror_dst

    def _generator(self, job: int) -> np.random.Generator:
        if self.words is None:
            return member_generator(self.seed, *self.keys[job])
        return np.random.Generator(np.random.SFC64(_Words(self.words[job])))

    def fill(self, job: int, row: np.ndarray) -> None:
        """Write the half spectrum of ``job`` into ``row`` (flat, ``prod(K)``)."""
        z = self._z
        self._generator(job).standard_normal(out=z)
        # scale in draw order (float64), rounding once into the output precision
        np.multiply(self._pairs, self.scale_pairs, out=self._scaled_pairs)
        self._source.take(self._gather, out=row, mode="wrap")
        row[0] = z[0] * self.scale_mean
        if self._mirror_dst.size:
            row[self._mirror_dst] = np.conj(row[self._mirror_src])


# -- threads ------------------------------------------------------------------
_THREAD_PREFIX = "sciffd-noise"
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def _forget_pool() -> None:
    # a forked child inherits the executor object but none of its threads
    global _pool, _pool_size
    _pool, _pool_size = None, 0


os.register_at_fork(after_in_child=_forget_pool)


def _executor(n: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < n:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(n, thread_name_prefix=_THREAD_PREFIX)
            _pool_size = n
        return _pool


_CPUS = os.cpu_count() or 1


def threads_for(work: int) -> int:
    """Threads worth using for ``work`` normals: ``fft_workers()``, 1 for small work."""
    if work < 100_000:
        return 1
    return max(1, min(backend.fft_workers(), _CPUS))


def parallel(n_tasks: int, make_worker: Callable[[], Callable[[int], None]],
             threads: int) -> None:
    """Run tasks ``0 .. n_tasks-1`` on ``threads`` threads, the caller included.

    Each thread builds its own worker with ``make_worker()`` (its generator
    and buffers) and takes the next task until none is left.
    """
    threads = max(1, min(threads, n_tasks))
    if threading.current_thread().name.startswith(_THREAD_PREFIX):
        threads = 1  # called from one of the pool's own threads: never wait on the pool
    counter = itertools.count()

    def loop() -> None:
        work = make_worker()
        for task in counter:
            if task >= n_tasks:
                return
            work(task)

    if threads == 1:
        loop()
        return
    pool = _executor(threads - 1)
    futures = [pool.submit(loop) for _ in range(threads - 1)]
    try:
        loop()
    finally:
        for f in futures:
            f.result()
