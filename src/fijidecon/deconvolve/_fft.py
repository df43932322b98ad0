"""The FFT core shared by every algorithm: real FFTs, fast sizes, worker count, backend.

Everything goes through :func:`rfftn` / :func:`irfftn` here so that a backend
(pyFFTW through ``scipy.fft``'s backend mechanism) can be switched in one place.

* Transforms are real-to-complex (``scipy.fft.rfftn``): float32 in, complex64 out,
  so a spectrum costs 4 bytes per real voxel (half the last axis is stored).
* Sizes come from ``scipy.fft.next_fast_len(n, real=True)`` (:func:`fast_len`).
* ``workers`` is :data:`WORKERS` (``-1`` = all cores; environment variable
  ``FIJIDECON_FFT_WORKERS`` overrides it at import).
* The optional pyFFTW backend (``pip install fijidecon[fast]``) is switched on with
  :func:`use_pyfftw` or the environment variable ``FIJIDECON_FFT_BACKEND=pyfftw``.
  It is used through ``scipy.fft.set_backend`` *inside fijidecon only* (the user's
  global scipy backend is not touched), with pyFFTW's plan cache enabled, so plans
  are made once per shape and reused on every iteration.  Results agree with the
  default pocketfft backend within float32 round-off.

Example
-------
>>> import numpy as np
>>> from fijidecon.deconvolve import _fft
>>> a = np.ones((6, 10), np.float32)
>>> f = _fft.rfftn(a)
>>> f.shape, f.dtype
((6, 6), dtype('complex64'))
>>> np.allclose(_fft.irfftn(f, a.shape), a)
True
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys
import threading
from typing import Iterator, Sequence

import numpy as np
import scipy.fft as sfft

#: Number of threads for scipy.fft (-1 = all cores).
WORKERS = int(os.environ.get("FIJIDECON_FFT_WORKERS", "-1"))

_BACKEND: object | None = None  # None = scipy's own pocketfft
_BACKEND_NAME = "scipy"


def n_workers() -> int:
    """The number of threads :data:`WORKERS` stands for (resolves ``-1``)."""
    if WORKERS > 0:
        return WORKERS
    n = os.cpu_count() or 1
    return max(1, n + 1 + WORKERS) if WORKERS < 0 else 1


def fast_len(n: int) -> int:
    """Smallest 5-smooth length >= n (``scipy.fft.next_fast_len`` for real transforms)."""
    return int(sfft.next_fast_len(int(n), real=True))


def fast_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """:func:`fast_len` on every axis (axes of length 1 stay 1)."""
    return tuple(fast_len(n) if n > 1 else 1 for n in shape)


def rfft_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """Shape of the half spectrum of a real array of ``shape``."""
    s = tuple(int(n) for n in shape)
    return s[:-1] + (s[-1] // 2 + 1,)


def _ctx():
    if _BACKEND is None:
        return contextlib.nullcontext()
    return sfft.set_backend(_BACKEND)


def rfftn(a: np.ndarray, overwrite_x: bool = False) -> np.ndarray:
    """Forward real FFT over all axes (float32 in, complex64 out)."""
    with _ctx():
        return sfft.rfftn(a, workers=n_workers(), overwrite_x=overwrite_x)


def irfftn(f: np.ndarray, shape: Sequence[int], overwrite_x: bool = False) -> np.ndarray:
    """Inverse of :func:`rfftn` for a real array of ``shape`` (complex64 in, float32 out).

    ``overwrite_x=True`` lets the transform destroy ``f`` (saves one spectrum-sized
    temporary; the caller must not use ``f`` afterwards).  With scipy's pocketfft,
    whose ``irfftn`` ignores ``overwrite_x`` and copies the whole spectrum, this is
    done axis by axis instead: complex inverse FFTs in place over all axes but the
    last, then the real inverse FFT of the last axis (:func:`irfftn_box`).
    """
    if (overwrite_x and _BACKEND is None and f.ndim >= 2 and np.iscomplexobj(f)
            and tuple(f.shape) == rfft_shape(shape)):
        return irfftn_box(f, shape, shape)
    with _ctx():
        return sfft.irfftn(f, s=tuple(shape), workers=n_workers(), overwrite_x=overwrite_x)


def irfftn_box(f: np.ndarray, shape: Sequence[int], box: Sequence[int]) -> np.ndarray:
    """``irfftn(f, shape)[:box[0], ..., :box[-2], :]`` without computing the rest (pruned).

    The inverse transform is done one axis at a time (complex, in place, over all
    axes but the last; then real over the last axis), and after each axis only the
    part of the array the box needs is carried on, so the later (and the real, last)
    axes are transformed only over the box.  Same numbers as :func:`irfftn` within
    float32 round-off.  ``f`` is destroyed.  (With the pyFFTW backend: the full
    transform, cropped - a view.)  The last axis is returned whole (length
    ``shape[-1]``); crop it with ``[..., :box[-1]]``.  ``f`` must have the half-spectrum
    shape of ``shape`` (no zero-padding or cropping of the spectrum here).

    Example
    -------
    >>> import numpy as np
    >>> from fijidecon.deconvolve import _fft
    >>> a = np.random.default_rng(0).random((8, 12), dtype=np.float32)
    >>> b = _fft.irfftn_box(_fft.rfftn(a), a.shape, (5, 7))
    >>> b.shape, bool(np.allclose(b[:, :7], a[:5, :7], atol=1e-5))
    ((5, 12), True)
    """
    shape = tuple(int(n) for n in shape)
    box = tuple(int(n) for n in box)
    nd = len(shape)
    if f.shape != rfft_shape(shape) or len(box) != nd:
        raise ValueError(f"irfftn_box: spectrum {f.shape} / box {box} do not fit shape {shape}")
    if _BACKEND is not None:  # pyFFTW's multi-axis transform beats axis-by-axis calls
        full = irfftn(f, shape, overwrite_x=True)
        return full[tuple(slice(0, n) for n in box[:-1])]
    a = f
    with _ctx():
        for ax in range(nd - 1):
            a = sfft.ifft(a, axis=ax, workers=n_workers(), overwrite_x=True)
            a = a[(slice(None),) * ax + (slice(0, box[ax]),)]
        return sfft.irfft(a, n=shape[-1], axis=nd - 1, workers=n_workers())


def _c2c_inplace(a: np.ndarray, axes: Sequence[int], inverse: bool, workers: int) -> None:
    """Complex FFT of ``a`` over ``axes``, written back into ``a`` (in place when the
    backend allows it, as pocketfft does for contiguous complex input)."""
    if not axes:
        return
    with _ctx():
        fn = sfft.ifftn if inverse else sfft.fftn
        r = fn(a, axes=tuple(axes), workers=workers, overwrite_x=True)
    if not np.shares_memory(r, a):
        a[...] = r


def rfft_planes(a: np.ndarray, out: np.ndarray, n_last: int, workers: int = 1) -> None:
    """Write the FFT over axes 1.. of a block of real planes into ``out`` (no FFT along axis 0).

    This is the plane-wise half of :func:`rfftn`: ``rfftn(x)`` equals
    ``fft(P, axis=0)`` of ``P`` filled block by block with ``rfft_planes(x[a:b], P[a:b], ...)``.
    ``a`` may be smaller than the work plane (the data box at the origin): it is
    zero-padded along the last axis to ``n_last`` and along the other axes to
    ``out``'s shape.  ``out`` (complex64, half spectrum) must be C-contiguous.

    Example
    -------
    >>> import numpy as np, scipy.fft
    >>> from fijidecon.deconvolve import _fft
    >>> x = np.random.default_rng(0).random((4, 6, 8), dtype=np.float32)
    >>> P = np.empty((4, 6, 5), np.complex64)
    >>> _fft.rfft_planes(x, P, 8)
    >>> bool(np.allclose(scipy.fft.fft(P, axis=0), _fft.rfftn(x), atol=1e-4))
    True
    """
    nd = a.ndim
    with _ctx():
        t = sfft.rfft(a, n=int(n_last), axis=-1, workers=workers)
    inner = tuple(slice(0, m) for m in a.shape[1:-1])
    out[(slice(None),) + inner] = t
    for k in range(1, nd - 1):
        if a.shape[k] < out.shape[k]:
            out[(slice(None),) * k + (slice(a.shape[k], None),)] = 0
    _c2c_inplace(out, range(1, nd - 1), False, workers)


def irfft_planes(f: np.ndarray, n_last: int, rows: Sequence[int] | None = None, workers: int = 1) -> np.ndarray:
    """Inverse of :func:`rfft_planes` for a block of planes (``f`` is destroyed).

    Returns the real planes, cropped to ``rows`` (the lengths of axes 1..nd-2 that are
    needed, pruned: later axes are transformed only over them); the last axis is whole
    (``n_last``).

    Example
    -------
    >>> import numpy as np
    >>> from fijidecon.deconvolve import _fft
    >>> x = np.random.default_rng(0).random((4, 6, 8), dtype=np.float32)
    >>> P = np.empty((4, 6, 5), np.complex64)
    >>> _fft.rfft_planes(x, P, 8)
    >>> bool(np.allclose(_fft.irfft_planes(P, 8, rows=(3,)), x[:, :3], atol=1e-5))
    True
    """
    nd = f.ndim
    a = f
    for k in range(1, nd - 1):
        _c2c_inplace(a, (k,), True, workers)
        if rows is not None and rows[k - 1] < a.shape[k]:
            a = a[(slice(None),) * k + (slice(0, int(rows[k - 1])),)]
    with _ctx():
        return sfft.irfft(a, n=int(n_last), axis=-1, workers=workers, overwrite_x=True)


def fft_axis0(f: np.ndarray, inverse: bool = False, workers: int | None = None) -> None:
    """In-place complex FFT of ``f`` along axis 0 (the other half of :func:`rfft_planes`)."""
    if f.shape[0] > 1:
        _c2c_inplace(f, (0,), inverse, n_workers() if workers is None else workers)


def backend_name() -> str:
    """``"scipy"`` (pocketfft, the default) or ``"pyfftw"``."""
    return _BACKEND_NAME


def pyfftw_available() -> bool:
    try:
        import pyfftw.interfaces.scipy_fft  # noqa: F401
    except ImportError:
        return False
    return True


def use_pyfftw(enable: bool = True, *, planner_effort: str = "FFTW_ESTIMATE", keepalive_s: float = 300.0) -> str:
    """Switch fijidecon's FFTs to pyFFTW (``enable=True``) or back to scipy's pocketfft.

    Parameters
    ----------
    enable:
        ``True`` selects pyFFTW, ``False`` restores the default.
    planner_effort:
        FFTW planner flag used for new plans (``"FFTW_ESTIMATE"`` plans instantly,
        ``"FFTW_MEASURE"`` plans slowly and may run faster).
    keepalive_s:
        How long pyFFTW's plan cache keeps an unused plan.

    Returns
    -------
    str
        The backend now in use.

    Raises
    ------
    ImportError
        If ``enable`` and pyFFTW is not installed (``pip install fijidecon[fast]``).

    Example
    -------
    >>> from fijidecon.deconvolve import _fft
    >>> _fft.use_pyfftw(False)
    'scipy'
    """
    global _BACKEND, _BACKEND_NAME
    if not enable:
        _BACKEND, _BACKEND_NAME = None, "scipy"
        return _BACKEND_NAME
    try:
        import pyfftw
        import pyfftw.interfaces.cache
        import pyfftw.interfaces.scipy_fft as pf
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("use_pyfftw: pyFFTW is not installed; pip install 'fijidecon[fast]'") from exc
    pyfftw.interfaces.cache.enable()
    pyfftw.interfaces.cache.set_keepalive_time(float(keepalive_s))
    pyfftw.config.PLANNER_EFFORT = planner_effort
    pyfftw.config.NUM_THREADS = n_workers()
    _BACKEND, _BACKEND_NAME = pf, "pyfftw"
    return _BACKEND_NAME


@contextlib.contextmanager
def backend(name: str) -> Iterator[str]:
    """Context manager selecting ``"scipy"`` or ``"pyfftw"`` for the enclosed code."""
    if name not in ("scipy", "pyfftw"):
        raise ValueError(f"backend: expected 'scipy' or 'pyfftw', got {name!r}")
    old = _BACKEND_NAME
    use_pyfftw(name == "pyfftw")
    try:
        yield name
    finally:
        use_pyfftw(old == "pyfftw")


# -- memory reuse ---------------------------------------------------------------------
# scipy.fft has no ``out=``: every transform returns a new array.  glibc serves blocks
# above its mmap threshold (at most 32 MiB) with fresh mmap pages, so each transform of a
# large grid page-faults its whole output anew, which on virtual machines can cost more
# than the FFT itself.  During a run we raise the thresholds so that freed blocks stay in
# the heap and are reused; on exit glibc's defaults are restored and the free memory is
# returned to the system (malloc_trim).  Linux/glibc only; FIJIDECON_MALLOC_TUNE=0 disables.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_GLIBC_DEFAULT = 128 * 1024
_MALLOC_LOCK = threading.Lock()
_MALLOC_DEPTH = 0
_LIBC: object = None


def _libc():
    global _LIBC
    if _LIBC is None:
        _LIBC = False
        if sys.platform.startswith("linux"):
            try:
                lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                lib.mallopt, lib.malloc_trim  # noqa: B018 - glibc only
                _LIBC = lib
            except (OSError, AttributeError):
                _LIBC = False
    return _LIBC or None


@contextlib.contextmanager
def reuse_memory() -> Iterator[bool]:
    """Let large temporaries reuse freed memory instead of fresh pages (glibc; see above).

    Yields whether the tuning is active.  Nested and concurrent uses are counted; the
    defaults come back when the last one exits.
    """
    global _MALLOC_DEPTH
    lib = _libc() if os.environ.get("FIJIDECON_MALLOC_TUNE", "1") != "0" else None
    if lib is None:
        yield False
        return
    with _MALLOC_LOCK:
        _MALLOC_DEPTH += 1
        if _MALLOC_DEPTH == 1:
            big = 1 << 30
            lib.mallopt(_M_TRIM_THRESHOLD, big)
            if not lib.mallopt(_M_MMAP_THRESHOLD, big):
                lib.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
    try:
        yield True
    finally:
        with _MALLOC_LOCK:
            _MALLOC_DEPTH -= 1
            if _MALLOC_DEPTH == 0:
                lib.mallopt(_M_MMAP_THRESHOLD, _GLIBC_DEFAULT)
                lib.mallopt(_M_TRIM_THRESHOLD, _GLIBC_DEFAULT)
                lib.malloc_trim(0)


if os.environ.get("FIJIDECON_FFT_BACKEND", "").lower() == "pyfftw" and pyfftw_available():
    use_pyfftw(True)
