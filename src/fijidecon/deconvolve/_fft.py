"""The FFT core shared by every algorithm: real FFTs, fast sizes, worker count.

Everything goes through :func:`rfftn` / :func:`irfftn` here so that a backend
(pyFFTW through ``scipy.fft``'s backend mechanism) can be switched in one place.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import scipy.fft as sfft

#: Number of threads for scipy.fft (-1 = all cores).
WORKERS = int(os.environ.get("FIJIDECON_FFT_WORKERS", "-1"))


def fast_len(n: int) -> int:
    """Smallest 5-smooth length >= n (``scipy.fft.next_fast_len`` for real transforms)."""
    return int(sfft.next_fast_len(int(n), real=True))


def fast_shape(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(fast_len(n) if n > 1 else 1 for n in shape)


def rfftn(a: np.ndarray) -> np.ndarray:
    """Forward real FFT over all axes (float32 in, complex64 out)."""
    return sfft.rfftn(a, workers=WORKERS)


def irfftn(f: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Inverse of :func:`rfftn` for a real array of ``shape``."""
    return sfft.irfftn(f, s=tuple(shape), workers=WORKERS)
