"""Element-wise work split over threads and cache-sized chunks.

numpy ufuncs release the GIL, so a few threads each walking their share of a big
array in chunks of ~64 k elements run the element-wise parts of an iteration on all
cores, and the several passes a step needs stay in cache.  The blocks are the same
whatever the number of threads, and their partial sums are added in block order, so
results are bit-identical with 1 or N threads (``FIJIDECON_FFT_WORKERS``).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np

from . import _fft

CHUNK = 1 << 16
#: Elements per block of planes in the fused FFT loops (1 MiB of float32): big enough
#: that the Python-level calls per block are few, small enough to stay in cache.
PLANE_BLOCK = 1 << 18
_POOL: ThreadPoolExecutor | None = None
_POOL_N = 0


def _pool(n: int) -> ThreadPoolExecutor:
    global _POOL, _POOL_N
    if _POOL is None or _POOL_N != n:
        _POOL = ThreadPoolExecutor(max_workers=n, thread_name_prefix="fijidecon")
        _POOL_N = n
    return _POOL


_LOCAL = threading.local()


def scratch(n: int, dtype=np.float32) -> np.ndarray:
    """A per-thread work buffer of ``n`` elements (reused between calls: contents undefined).

    Saves a temporary per chunk in the element-wise loops; valid until the same
    thread asks for a scratch buffer of the same dtype again.
    """
    key = np.dtype(dtype).str
    bufs = getattr(_LOCAL, "bufs", None)
    if bufs is None:
        bufs = _LOCAL.bufs = {}
    b = bufs.get(key)
    if b is None or b.size < n:
        b = bufs[key] = np.empty(max(int(n), CHUNK), dtype)
    return b[:n]


def threads(n_units: int, unit_size: int = 1, block: int = CHUNK) -> int:
    """How many threads :func:`run` uses for this work (1 = ``fn`` runs in the caller's
    thread, which may then use all cores itself, e.g. as FFT workers)."""
    per = max(1, block // max(1, unit_size))
    return min(_fft.n_workers(), max(1, n_units // per))


def run(n_units: int, fn: Callable[[int, int], Sequence[float] | None], unit_size: int = 1,
        block: int = CHUNK) -> np.ndarray:
    """Call ``fn(a, b)`` on consecutive unit ranges covering ``[0, n_units)``.

    Each call touches about ``block`` elements (default :data:`CHUNK`; ``unit_size`` is
    the number of elements per unit), at least one unit.  ``fn`` may return a tuple of partial sums; their totals
    (float64) are returned.
    """
    per = max(1, block // max(1, unit_size))
    nthreads = threads(n_units, unit_size, block)
    starts = list(range(0, n_units, per))  # the same blocks whatever the number of threads
    results: list = [None] * len(starts)

    def work(lo: int, hi: int) -> None:  # blocks lo..hi-1
        for k in range(lo, hi):
            r = fn(starts[k], min(n_units, starts[k] + per))
            results[k] = None if r is None else np.asarray(r, dtype=np.float64)

    if nthreads == 1:
        work(0, len(starts))
    else:
        bounds = np.linspace(0, len(starts), nthreads + 1).astype(int)
        futs = [_pool(nthreads).submit(work, int(bounds[i]), int(bounds[i + 1])) for i in range(nthreads)]
        for f in futs:
            f.result()
    out = None
    for r in results:  # block order: bit-identical sums for 1 or N threads
        if r is not None:
            out = r if out is None else out + r
    return np.zeros(0) if out is None else out
