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
  are made once per shape and reused on every iteration.  The plane-wise transforms
  of the fused RL loop (:func:`rfft_planes`, :func:`irfft_planes`, :func:`fft_axis0`)
  run FFTW plans directly instead (see the comment above :func:`_fftw_run`).  Results
  agree with the default pocketfft backend within float32 round-off.

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
import functools
import os
import sys
import threading
from typing import Iterator, Sequence

import numpy as np
import scipy.fft as sfft

from ..errors import InputError

#: Number of threads for scipy.fft (-1 = all cores).
WORKERS = int(os.environ.get("FIJIDECON_FFT_WORKERS", "-1"))

_BACKEND: object | None = None  # None = scipy's own pocketfft
_BACKEND_NAME = "scipy"


@functools.lru_cache(maxsize=None)
def _cpu_count() -> int:
    """``os.cpu_count()``, read once (it costs about 12 us, and every FFT call asked for it)."""
    return os.cpu_count() or 1


def n_workers() -> int:
    """The number of threads :data:`WORKERS` stands for (resolves ``-1``)."""
    if WORKERS > 0:
        return WORKERS
    return max(1, _cpu_count() + 1 + WORKERS) if WORKERS < 0 else 1


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
    last, then the real inverse FFT of the last axis (:func:`fft_axis0` then
    :func:`irfft_planes`; bit-identical to scipy's ``irfftn`` on power-of-two
    grids such as compat mode's, within float32 round-off otherwise).
    """
    if (overwrite_x and _BACKEND is None and f.ndim >= 2 and np.iscomplexobj(f)
            and tuple(f.shape) == rfft_shape(shape)):
        fft_axis0(f, inverse=True)
        return irfft_planes(f, int(shape[-1]), workers=n_workers())
    with _ctx():
        return sfft.irfftn(f, s=tuple(shape), workers=n_workers(), overwrite_x=overwrite_x)


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
    With the pyFFTW backend the transform runs a cached FFTW plan (see :func:`_fftw_plan`).

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
    axes = tuple(range(1, nd))
    if _BACKEND is not None:
        full = (out.shape[0],) + tuple(out.shape[1:-1]) + (int(n_last),)
        if a.shape != full or not a.flags.c_contiguous:  # zero-pad the box into a per-thread buffer
            pad = _thread_buffer("pad", full, np.float32)
            pad[tuple(slice(0, m) for m in a.shape)] = a
            for k in range(1, nd):
                if a.shape[k] < full[k]:
                    pad[(slice(None),) * k + (slice(a.shape[k], None),)] = 0
            a = pad
        _fftw_run("r2c", a, out, axes, workers)
        return
    t = sfft.rfft(a, n=int(n_last), axis=-1, workers=workers)
    inner = tuple(slice(0, m) for m in a.shape[1:-1])
    out[(slice(None),) + inner] = t
    for k in range(1, nd - 1):
        if a.shape[k] < out.shape[k]:
            out[(slice(None),) * k + (slice(a.shape[k], None),)] = 0
    _c2c_inplace(out, axes[:-1], False, workers)


def irfft_planes(f: np.ndarray, n_last: int, rows: Sequence[int] | None = None, workers: int = 1) -> np.ndarray:
    """Inverse of :func:`rfft_planes` for a block of planes (``f`` is destroyed).

    Returns a new real array: the planes cropped to ``rows`` (the lengths of axes
    1..nd-2 that are needed; pocketfft transforms later axes only over them), the last
    axis whole (``n_last``).  ``f`` must be C-contiguous.

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
    crop = (slice(None),) + tuple(slice(0, int(r)) for r in (rows or f.shape[1:-1]))
    if _BACKEND is not None:
        import pyfftw

        shape = f.shape[:-1] + (int(n_last),)
        out = pyfftw.empty_aligned(shape, np.float32)
        _fftw_run("c2r", f, out, tuple(range(1, nd)), workers)
        out *= np.float32(1.0 / np.prod(shape[1:]))
        return out[crop]
    a = f
    for k in range(1, nd - 1):
        _c2c_inplace(a, (k,), True, workers)
        a = a[crop[:k + 1]]
    return sfft.irfft(a, n=int(n_last), axis=-1, workers=workers, overwrite_x=True)


def fft_axis0(f: np.ndarray, inverse: bool = False, workers: int | None = None) -> None:
    """In-place complex FFT of ``f`` along axis 0 (the other half of :func:`rfft_planes`)."""
    if f.shape[0] <= 1:
        return
    w = n_workers() if workers is None else workers
    if _BACKEND is not None and f.flags.c_contiguous:
        # planned on f itself, every call (~0.1 ms): FFTW_ESTIMATE never writes to the
        # arrays, and a cached plan would keep a work-grid-sized array of its own
        import pyfftw

        pyfftw.FFTW(f, f, axes=(0,), direction="FFTW_BACKWARD" if inverse else "FFTW_FORWARD",
                    flags=("FFTW_ESTIMATE",), threads=w).execute()
        if inverse:
            f *= np.float32(1.0 / f.shape[0])
    else:
        _c2c_inplace(f, (0,), inverse, w)


# -- pyFFTW plans for the plane-wise transforms ------------------------------------
# The fused Richardson-Lucy loop makes a few hundred small transforms per iteration.
# Through pyFFTW's scipy_fft interface each costs a plan-cache lookup, a copy of the
# input or output and, for c2c, an out-of-place transform (the axis-0 FFT of a
# 128x256x129 spectrum: 7.6 ms that way, 3.0 ms as an in-place plan).  So with the
# pyFFTW backend these functions execute FFTW plans directly: made once per thread,
# array layout and alignment (FFTW planning may write to its arrays, so it plans on
# private arrays of the same layout), run on the caller's arrays with FFTW's new-array
# execute, and pointed back at the private arrays so that no plan keeps a caller's
# array alive (the private arrays are one block each).  The whole-array axis-0 FFT is
# planned anew on every call instead (FFTW_ESTIMATE, ~0.1 ms), so no plan holds a
# spectrum-sized array.  FFTW does not normalise; the inverses are scaled here.
_TLS = threading.local()
_MAX_PLANS = 16
_ALL_PLANS: list[dict] = []  # every thread's plan cache, so that release_plans() reaches them
_PLANS_LOCK = threading.Lock()


def release_plans() -> None:
    """Drop the cached plane-block FFTW plans of all threads, and their private arrays
    (two blocks each).  Called when a run ends (:func:`reuse_memory`); call it only
    while no transform runs."""
    with _PLANS_LOCK:
        for plans in _ALL_PLANS:
            plans.clear()


def _thread_buffer(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    bufs = getattr(_TLS, "bufs", None)
    if bufs is None:
        bufs = _TLS.bufs = {}
    b = bufs.get(name)
    if b is None or b.shape != shape or b.dtype != dtype:
        b = bufs[name] = np.empty(shape, dtype)
    return b


def _fftw_run(kind: str, inp: np.ndarray, out: np.ndarray, axes: tuple[int, ...], workers: int) -> None:
    """Execute the ``kind`` ("r2c", "c2r") transform of a block of planes ``inp`` into
    ``out`` over ``axes`` with a cached plan (C-contiguous arrays; unnormalised)."""
    try:
        plan, pi, po = _fftw_plan(kind, inp, out, axes, workers, unaligned=False)
        plan.update_arrays(inp, out)
    except ValueError:  # the arrays are less aligned than the plan's (FFTW_UNALIGNED is slower)
        plan, pi, po = _fftw_plan(kind, inp, out, axes, workers, unaligned=True)
        plan.update_arrays(inp, out)
    try:
        plan.execute()
    finally:
        plan.update_arrays(pi, po)


def _fftw_plan(kind, inp, out, axes, workers, unaligned):
    import pyfftw

    effort = pyfftw.config.PLANNER_EFFORT
    key = (kind, inp.shape, inp.dtype.str, out.shape, out.dtype.str, axes, workers, unaligned, effort)
    plans = getattr(_TLS, "plans", None)
    if plans is None:
        plans = _TLS.plans = {}
        with _PLANS_LOCK:
            _ALL_PLANS.append(plans)
    entry = plans.get(key)
    if entry is None:
        if len(plans) >= _MAX_PLANS:
            plans.clear()
        pi = pyfftw.empty_aligned(inp.shape, inp.dtype)
        po = pyfftw.empty_aligned(out.shape, out.dtype)
        flags = [effort] + (["FFTW_UNALIGNED"] if unaligned else []) + (["FFTW_DESTROY_INPUT"] if kind == "c2r" else [])
        direction = "FFTW_BACKWARD" if kind == "c2r" else "FFTW_FORWARD"
        plan = pyfftw.FFTW(pi, po, axes=axes, direction=direction, flags=tuple(flags), threads=workers)
        entry = plans[key] = (plan, pi, po)
    return entry


def backend_name() -> str:
    """``"scipy"`` (pocketfft, the default) or ``"pyfftw"``."""
    return _BACKEND_NAME


def _passive_openmp() -> None:
    """Before pyFFTW is first imported: ``OMP_WAIT_POLICY=PASSIVE`` unless set.

    pyFFTW's FFTW runs its threads with OpenMP, whose threads by default spin for a
    while after each transform and so take the cores from fijidecon's own threads
    (measured: RL 95-106 ms per iteration instead of 78-82).  libgomp reads the variable
    once, when it loads; a value the user set is kept."""
    if "pyfftw" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def pyfftw_available() -> bool:
    _passive_openmp()
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

    Notes
    -----
    Sets ``OMP_WAIT_POLICY=PASSIVE`` (unless already set) before pyFFTW is first
    imported: FFTW's OpenMP threads would otherwise spin between transforms and slow
    down fijidecon's element-wise threads.  If ``pyfftw`` was imported earlier, set
    ``OMP_WAIT_POLICY=PASSIVE`` in the environment yourself.

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
    _passive_openmp()
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
        raise InputError(f"backend: expected 'scipy' or 'pyfftw', got {name!r}")
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
    defaults come back, and the cached pyFFTW plane-block plans are released
    (:func:`release_plans`), when the last one exits.
    """
    global _MALLOC_DEPTH
    lib = _libc() if os.environ.get("FIJIDECON_MALLOC_TUNE", "1") != "0" else None
    with _MALLOC_LOCK:
        _MALLOC_DEPTH += 1
        if _MALLOC_DEPTH == 1 and lib is not None:
            big = 1 << 30
            lib.mallopt(_M_TRIM_THRESHOLD, big)
            if not lib.mallopt(_M_MMAP_THRESHOLD, big):
                lib.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
    try:
        yield lib is not None
    finally:
        with _MALLOC_LOCK:
            _MALLOC_DEPTH -= 1
            if _MALLOC_DEPTH == 0:
                release_plans()  # the run is over: free the plane-block plans' arrays
                if lib is not None:
                    lib.mallopt(_M_MMAP_THRESHOLD, _GLIBC_DEFAULT)
                    lib.mallopt(_M_TRIM_THRESHOLD, _GLIBC_DEFAULT)
                    lib.malloc_trim(0)


if os.environ.get("FIJIDECON_FFT_BACKEND", "").lower() == "pyfftw" and pyfftw_available():
    use_pyfftw(True)
