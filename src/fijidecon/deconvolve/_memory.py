"""How much memory a deconvolution run needs, and how much there is.

:func:`estimate_memory` predicts the peak memory a run *adds* to the process (bytes),
from the allocation pattern of each method: the sum of the named buffers alive at the
method's peak (work-grid arrays, half spectra, per-thread blocks, copies of the input,
kept snapshots and results) plus a fixed overhead.  :func:`memory_model` returns the
same figure with its buffers, for tables and messages.

Sizes used below (per volume):

* ``N``  image voxels; ``D`` voxels of the data box (the image, mirror-padded for
  ``edges="reflect"``);
* ``W``  voxels of the work grid :func:`fijidecon.deconvolve._edges.geometry` makes
  (Iterative Deconvolve 3D: the power-of-two grid of compat mode, or the 5-smooth grid of
  improved mode);
* ``Wh`` voxels of its half spectrum (``W / 2`` plus one plane): complex64, 8 bytes each,
  about 4 bytes per work voxel;
* the kernel: the PSF cropped to at most ``2 n - 1`` voxels per axis (``n`` for periodic
  edges), as :func:`fijidecon.deconvolve._otf.prepare_psf` does; its support may be
  smaller, so the estimate is an upper bound there.

The model was checked against the peak resident set size of child processes
(``benchmarks/memory_model.py``, ``tests/test_memory.py``): within 25 % for every
method and option on volumes from 32x128x128 to 64x512x512.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from . import _edges, _fft, _par
from .._address_space import ARENA_BYTES, ARENA_MAX, address_space_limit, arenas_capped, cap_malloc_arenas  # noqa: F401
from ..errors import InputError

METHODS = ("richardson-lucy", "wiener", "convolve", "iterative-deconvolve-3d")
#: Bytes every run adds whatever its size: FFT plans and twiddle tables, thread stacks,
#: Python objects, glibc arenas of the worker threads.
OVERHEAD = 1 << 20
MiB = 1 << 20


@dataclass(frozen=True)
class MemoryModel:
    """The estimate of one run, buffer by buffer (see :func:`memory_model`).

    Attributes
    ----------
    method:
        The method.
    image_shape, work_shape:
        One volume's shape, and the FFT work grid it is processed on.
    buffers:
        ``(name, bytes)`` of every buffer alive at the run's peak.
    overhead:
        Fixed bytes added to the buffers (:data:`OVERHEAD`).
    """

    method: str
    image_shape: tuple[int, ...]
    work_shape: tuple[int, ...]
    buffers: tuple[tuple[str, int], ...]
    overhead: int = OVERHEAD

    @property
    def total(self) -> int:
        """Bytes: the buffers plus the overhead."""
        return int(sum(b for _, b in self.buffers) + self.overhead)

    @property
    def image_voxels(self) -> int:
        return int(np.prod(self.image_shape, dtype=np.int64))

    @property
    def work_voxels(self) -> int:
        return int(np.prod(self.work_shape, dtype=np.int64))

    def per_image_voxel(self) -> float:
        """Bytes per voxel of the image (the overhead left out)."""
        return (self.total - self.overhead) / self.image_voxels

    def per_work_voxel(self) -> float:
        """Bytes per voxel of the work grid (the overhead left out)."""
        return (self.total - self.overhead) / self.work_voxels

    def table(self) -> str:
        """The buffers as text lines, ``name  MiB``."""
        rows = [f"{name:<64s} {b / MiB:10.1f} MiB" for name, b in self.buffers]
        rows.append(f"{'fixed overhead':<64s} {self.overhead / MiB:10.1f} MiB")
        rows.append(f"{'total':<64s} {self.total / MiB:10.1f} MiB")
        return "\n".join(rows)


# -- options -------------------------------------------------------------------------------

def _signature_names(method: str) -> set[str]:
    from . import convolve, iterative_deconvolve_3d, richardson_lucy, wiener

    fn = {"richardson-lucy": richardson_lucy, "wiener": wiener, "convolve": convolve,
          "iterative-deconvolve-3d": iterative_deconvolve_3d}[method]
    return set(inspect.signature(fn).parameters) - {"image", "psf"}


#: Options the model understands besides the method's own keyword arguments.
EXTRA_OPTIONS = {"dtype", "axes", "threads"}


def _check_method(method: Any) -> str:
    if not isinstance(method, str) or method.strip().lower().replace("_", "-") not in METHODS:
        raise InputError(f"method: expected one of {', '.join(map(repr, METHODS))}, got {method!r}")
    return method.strip().lower().replace("_", "-")


def _check_shape(name: str, shape: Any, ndims: Sequence[int]) -> tuple[int, ...]:
    try:
        s = tuple(int(n) for n in shape)
        ok = all(int(n) == n for n in shape)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{name}: expected a tuple of whole numbers, got {shape!r}") from None
    if not ok or len(s) not in ndims or any(n < 1 for n in s):
        dims = "/".join(str(d) for d in ndims)
        raise InputError(f"{name}: expected {dims} positive whole numbers, got {shape!r}")
    return s


def _hyper_shape(image_shape: tuple[int, ...], axes: str | None) -> tuple[tuple[int, ...], int, bool]:
    """(one volume's shape, number of volumes, whether volumes are copied out of the input)."""
    from .. import _validate

    if axes is None:
        if len(image_shape) > 3:
            raise InputError(f"image_shape: {len(image_shape)} axes given; pass axes= (e.g. 'TCZYX') for a "
                             "hyperstack, or one volume's (Z, Y, X) or (Y, X) shape")
        return image_shape, 1, False
    axes = _validate.check_axes("axes", axes, len(image_shape))
    vol = tuple(n for n, a in zip(image_shape, axes) if a in "ZYX")
    n_vol = int(np.prod([n for n, a in zip(image_shape, axes) if a in "TC"], dtype=np.int64))
    canonical = [a for a in "TCZYX" if a in axes]
    moved = list(axes) != canonical  # volumes are non-contiguous views, copied one by one
    return vol, n_vol, moved


def _check_options(method: str, options: dict) -> None:
    allowed = _signature_names(method) | EXTRA_OPTIONS
    if method == "richardson-lucy":
        allowed |= {"iterations"}
    for k in options:
        if k not in allowed:
            raise InputError(f"{k}: not an option of {method} (expected one of {', '.join(sorted(allowed))})")
    if method == "richardson-lucy" and "acceleration" in options:  # the buffers depend on it
        from .._validate import check_choice
        from .richardson_lucy import ACCELERATIONS

        options["acceleration"] = check_choice("acceleration", options["acceleration"], ACCELERATIONS)


# -- sizes -----------------------------------------------------------------------------------

def _kernel(edges: str, image_shape: tuple[int, ...], psf_shape: tuple[int, ...]) -> tuple[int, ...]:
    limit = _edges.kernel_limit(edges, image_shape)
    return tuple(min(k, m) for k, m in zip(psf_shape, limit))


def _nbytes(shape: Sequence[int], itemsize: int) -> int:
    return int(np.prod(shape, dtype=np.int64)) * itemsize


def _half(shape: Sequence[int]) -> int:
    """Bytes of the complex64 half spectrum of a real array of ``shape``."""
    return _nbytes(_fft.rfft_shape(shape), 8)


def _threads(threads: int | None) -> int:
    return _fft.n_workers() if threads is None else max(1, int(threads))


def _plane_blocks(work: tuple[int, ...], threads: int, per_element: int) -> int:
    """Bytes of the per-thread blocks of planes of the fused loops (:mod:`._par`)."""
    plane = int(np.prod(work[1:], dtype=np.int64))
    per = max(1, _par.PLANE_BLOCK // max(1, plane))
    n_threads = min(threads, max(1, work[0] // per))
    return n_threads * min(per, work[0]) * plane * per_element


# -- the methods -------------------------------------------------------------------------------

def _psf_prep(psf: tuple[int, ...]) -> list:
    """The PSF preparation (:func:`._otf.prepare_psf`, before any work grid exists): a float64
    copy of the PSF, its support mask and the indices of the support (int64 per axis)."""
    return [("PSF preparation: float64 copy, support mask and indices", _nbytes(psf, 9 + 8 * len(psf)))]



def _rl_default(o: dict, name: str) -> Any:
    """``o[name]``, else :func:`richardson_lucy`'s own default (defined once, there)."""
    if name in o:
        return o[name]
    import inspect

    from .richardson_lucy import richardson_lucy
    return inspect.signature(richardson_lucy).parameters[name].default


def _rl(image: tuple[int, ...], kernel_in: tuple[int, ...], o: dict) -> tuple[tuple[int, ...], list]:
    edges = _edges.check_edges(o.get("edges", "non-circulant"))
    kernel = _kernel(edges, image, kernel_in)
    geo = _edges.geometry(edges, image, kernel)
    W, D = geo.work_shape, geo.data_shape
    w4, spec = _nbytes(W, 4), _half(W)
    accel = _rl_default(o, "acceleration") is not None
    reg = o.get("regularization")
    data = [("otf (half spectrum, complex64)", spec)]
    if o.get("back_projector") is not None and not (isinstance(o["back_projector"], str)
                                                      and o["back_projector"].lower() == "matched"):
        data.append(("back projector spectrum (half spectrum, complex64)", spec))
        if not geo.full_box:  # measured: the set-up's work-grid arrays do not fit in their holes
            data.append(("back projector construction temporaries, kept by the heap", spec))
    if any(a or b for a, b in geo.pad):
        data.append(("mirror-padded data (float32)", _nbytes(D, 4)))
    if float(o.get("read_noise") or 0) > 0:
        data.append(("data + read_noise^2 (float32)", _nbytes(D, 4)))
    base = list(data)
    setup = []
    if not geo.full_box:
        base.append(("1 / w, w = H^T 1 on the data box (float32)", w4))
        # w >= W_MIN and winv == 0 (bool): freed after the set-up, but during a run malloc's
        # thresholds are raised (_fft.reuse_memory: 1 GiB on glibc 2.36) and the heap keeps their pages
        base.append(("set-up masks w >= W_MIN, 1/w == 0 (bool, kept by the heap)", w4 // 4))
        if reg == "tv":
            base.append(("w for TV (float32)", w4))
        # w = H^T mask: the mask, its spectrum and w are alive together
        setup = data + [("set-up: data-box mask, its spectrum, w (float32, complex64)", 2 * w4 + spec)]
    run = base + [("spectrum S (complex64)", spec), ("estimate x (float32)", w4)]
    if accel:
        from .richardson_lucy import STATE_VOLUMES
        n_state = STATE_VOLUMES[_rl_default(o, "acceleration")]
        run.append(("x_k-1 and g_k-1 (acceleration; and x_k-1 - x_k-2, second order; float32)", (n_state - 1) * w4))
    # per block element: the inverse transform's real block, the forward transform's
    # complex block, the scratch of the update (and the deviance's temporary)
    per = 18 if o.get("track_deviance") or o.get("stop") == "discrepancy" else 14
    run.append(("per-thread blocks of planes", _plane_blocks(W, _threads(o.get("threads")), per)))
    phases = [p for p in (setup, run, _psf_prep(kernel_in)) if p]
    if isinstance(o.get("stop"), str) and o["stop"].strip().lower() == "auto":
        # the choice before the run: the photo-electrons, the two thinned halves, the held-out scorer
        # and the best iterate beside the thinned run (measured: 10.7-11.5 image volumes above an RL run)
        phases.append(run + [("stop='auto': thinned halves, held-out scorer, kept iterate (float32)",
                              AUTO_IMAGE_VOLUMES * _nbytes(image, 4))])
    if reg == "tv" and float(o.get("weight") if o.get("weight") is not None else 1) > 0:
        nd = sum(1 for n in W if n > 1)
        # norm, one gradient per axis, the divergence and one temporary (numpy elides the second)
        phases.append(run + [("TV: norm, gradients, divergence, a temporary (float32)", (nd + 3) * w4)])
    snaps = _snapshots(o)
    if snaps:
        phases = [p + [(f"{snaps} snapshots (float32)", snaps * _nbytes(image, 4))] for p in phases]
    return W, max(phases, key=_sum)


#: What ``stop="auto"``'s choice holds above a Richardson-Lucy run, in float32 volumes of the image
#: (tracemalloc peaks, 2026-12-01: 10.7-11.5 on 32x128x128, 16x300x200 and 48x192x192, with and without
#: acceleration).
AUTO_IMAGE_VOLUMES = 12


def _snapshots(o: dict) -> int:
    every = o.get("snapshot_every")
    if not every:
        return 0
    return int(o.get("iterations", 30)) // int(every)


def _convolve(image, kernel_in, o):
    edges = _edges.check_edges(o.get("edges", "reflect"), ("reflect", "periodic", "constant"))
    kernel = _kernel(edges, image, kernel_in)
    geo = _edges.geometry(edges, image, kernel)
    W = geo.work_shape
    w4, spec = _nbytes(W, 4), _half(W)
    data = [("padded data (float32)", w4)] if W != tuple(image) else []
    # rfftn(data), then the otf (its zero-padded kernel is transformed in place), then
    # irfftn's output; the padded data is freed only when the spectrum is made
    phases = [data + [("spectrum of the data (complex64)", spec), ("otf (complex64)", spec),
                      ("kernel on the work grid (float32)", w4)],
              data + [("spectrum of the data (complex64)", spec), ("result on the work grid (float32)", w4),
                      ("result cropped to the image (float32)", _nbytes(image, 4))], _psf_prep(kernel_in)]
    return W, max(phases, key=_sum)


def _wiener(image, kernel_in, o):
    edges = _edges.check_edges(o.get("edges", "reflect"), ("reflect", "periodic"))
    kernel = _kernel(edges, image, kernel_in)
    geo = _edges.geometry(edges, image, kernel)
    W = geo.work_shape
    w4, spec = _nbytes(W, 4), _half(W)
    rule = _wiener_rule(o.get("regularization"))
    base = [("spectrum G of the data (complex64)", spec), ("otf H (complex64)", spec),
            ("|H|^2 (float32)", spec // 2)]
    phases = [base + [("|H|^2 temporaries (float32)", spec)], _psf_prep(kernel_in)]
    solve = [("spectrum G conj(H) (complex64)", spec), ("|H|^2 (float32)", spec // 2),
             ("G / (|H|^2 + rho) (complex64)", spec), ("result on the work grid (float32)", w4)]
    if edges == "periodic":  # measured: the two freed halves of |H|^2's sum are too small for a spectrum
        solve.append(("|H|^2 temporaries, freed but kept by the heap (float32)", spec))
    phases.append(solve)
    if rule == "gcv":
        # |G|^2, |H|^2 and the half-spectrum weights in float64 (3 x 8 bytes per spectrum
        # voxel), and the score's float64 temporaries on at most 4 M samples of them
        nh = spec // 8
        sub = -(-nh // -(-nh // 4_000_000)) if nh > 4_000_000 else nh
        phases.append(base + [("GCV: |G|^2, |H|^2, weights (float64)", 3 * spec),
                              ("GCV: score temporaries (float64)", 3 * 8 * sub)])
    if rule == "snr":
        phases += _wiener_snr(image, geo, base, w4, spec)
    return W, max(phases, key=_sum)


#: Bytes per spectrum sample of the SNR rule (at most ``wiener.SNR_SAMPLES``): indices,
#: powers and |H|^2 in float64, their sorting and quantiles.
SNR_BYTES_PER_SAMPLE = 40


def _wiener_snr(image, geo, base, w4, spec) -> list:
    """The phases of the default (SNR) rule: the periodic component of the padded data on
    the work grid (its edge power), the same on the image grid, and the spectrum samples."""
    n4, nspec = _nbytes(image, 4), _half(image)
    phases = []
    sample = [("SNR rule: spectrum indices (int64)", spec)]
    nh = spec // 8
    if nh > (1 << 20):
        sample.append(("SNR rule: random choice of samples (int64)", spec))
    sample.append(("SNR rule: samples (float64, sorted)", min(nh, 1 << 20) * SNR_BYTES_PER_SAMPLE))
    if geo.data_shape != tuple(image):  # mirror padding: its periodic component on the work grid
        periodic = [("SNR rule: padded data, boundary image (float32)", 2 * w4),
                    ("SNR rule: boundary spectrum, its float64 denominator", 2 * spec),
                    ("SNR rule: periodic spectrum (complex64)", spec)]
        phases.append(base + periodic)
        phases.append(base + [("SNR rule: periodic spectrum (complex64)", spec)] + sample)
    else:
        phases.append(base + sample)
    on_image = [("SNR rule: |H|^2 on the image grid (float32)", nspec // 2),
                ("SNR rule: apodized image, boundary image (float32)", 2 * n4),
                ("SNR rule: image spectrum, boundary spectrum, denominator, periodic spectrum", 4 * nspec)]
    phases.append(base + on_image)
    return phases


def _wiener_rule(reg: Any) -> str:
    if reg is None:
        return "snr"
    if isinstance(reg, str):
        r = reg.strip().lower()
        if r in ("", "auto", "snr"):
            return "snr"
        if r in ("gcv", "imspector"):
            return r
        try:
            float(r)
        except ValueError:
            raise InputError(f"regularization: expected a number, None, 'auto', 'snr', 'imspector' or 'gcv', "
                             f"got {reg!r}") from None
    return "given"


def _id3d_shape(image, psf, o) -> tuple[int, ...]:
    from .. import _quirks
    from .iterative3d import _improved_len

    im3 = tuple(image) if len(image) == 3 else (1,) + tuple(image)
    ps3 = tuple(psf) if len(psf) == 3 else (1,) + tuple(psf)
    if o.get("compat", True):
        return tuple(_quirks.d1_fft_size(n, k, ax == 0) for ax, (n, k) in enumerate(zip(im3, ps3)))
    fz, fxy = float(o.get("lowpass_z", 1.0)), float(o.get("lowpass_xy", 1.0))
    return tuple(_improved_len(n, k, f) for n, k, f in zip(im3, ps3, (fz, fxy, fxy)))


def _id3d(image, psf, o):
    W = _id3d_shape(image, psf, o)
    w4, spec = _nbytes(W, 4), _half(W)
    n4 = _nbytes(image, 4)
    wiener = float(o.get("gamma", 0.0)) > 1e-4
    copy = [("float32 copy of the image", n4)]
    if o.get("compat", True):
        base = copy + [("padded data Y (float32)", w4), ("low-pass G (float32)", spec // 2),
                       ("A' G / aSum (complex64)", spec)]
        loop = base + [("spectrum of X (complex64)", spec), ("product buffer (complex64)", spec),
                       ("kept mask (bool)", w4 // 4), ("delta, G*X (float32)", 2 * w4)]
        setup = copy + [("padded data Y (float32)", w4), ("otf (complex64)", spec), ("low-pass G (float32)", spec // 2),
                        ("A' G / aSum temporaries (complex64)", 3 * spec)]
        phases = [loop, setup]
        if o.get("anti_ringing", True):
            phases.append(copy + [("padded data Y, padded PSF (float32)", 2 * w4), ("otf (complex64)", spec),
                                  ("anti-ringing: spectra and blurred copy", 3 * spec + w4)])
    else:
        base = copy + [("padded data Y (float32)", w4), ("low-pass G (float32)", spec // 2),
                       ("G (1 - A'/aSum) (complex64)", spec)]
        loop = base + [("estimate X, new estimate Z (float32)", 2 * w4), ("spectrum of X (complex64)", spec),
                       ("irfftn's copy of the spectrum (complex64)", spec),
                       ("previous estimate, kept by the view xc (float32)", w4)]
        setup = copy + [("padded data Y (float32)", w4), ("otf (complex64)", spec), ("low-pass G (float32)", spec // 2),
                        ("G (1 - A'/aSum) temporaries (complex64)", 2 * spec)]
        phases = [loop, setup]
    if wiener:
        phases.append(copy + [("padded data Y (float32)", w4), ("otf (complex64)", spec),
                              ("Wiener step: |A|^2, denominator, spectra, filtered data", 2 * spec + spec + w4)])
    return W, max(phases, key=_sum)


def _sum(buffers: list) -> int:
    return sum(b for _, b in buffers)


_MODELS = {"richardson-lucy": _rl, "wiener": _wiener, "convolve": _convolve, "iterative-deconvolve-3d": _id3d}


def memory_model(method: str, image_shape: Sequence[int], psf_shape: Sequence[int], **options: Any) -> MemoryModel:
    """The memory a run needs, buffer by buffer (see :func:`estimate_memory`).

    Returns
    -------
    MemoryModel
        ``.total`` (bytes), ``.buffers`` (name, bytes), ``.work_shape``, bytes per voxel.
    """
    method = _check_method(method)
    _check_options(method, options)
    axes = options.get("axes")
    full = _check_shape("image_shape", image_shape, (2, 3, 4, 5))
    vol, n_vol, moved = _hyper_shape(full, axes)
    psf = _check_shape("psf_shape", psf_shape, (2, 3) if method == "iterative-deconvolve-3d" else (len(vol),))
    try:
        options["dtype"] = np.dtype(options.get("dtype", np.float32))
    except TypeError:
        raise InputError(f"dtype: not a numpy dtype: {options['dtype']!r}") from None
    work, buffers = _MODELS[method](vol, psf, options)
    buffers = [(n, int(b)) for n, b in buffers if b]
    buffers = _whole_run(method, vol, work, buffers, n_vol, moved, options)
    return MemoryModel(method, vol, tuple(work), tuple((n, b) for n, b in buffers if b))


def _whole_run(method, vol, work, volume, n_vol, moved, o) -> list[tuple[str, int]]:
    """The buffers at the whole run's peak: one volume's working set (``volume``) plus
    what the run holds besides - the float32 copy of a non-float32 input, volumes copied
    out of a hyperstack whose T/C axes are not leading, the results of the volumes done
    (Richardson-Lucy's also keep their work grid, to resume from) - or, when that is
    more, the merge of all results into the output."""
    n4 = _nbytes(vol, 4)
    dtype = np.dtype(o.get("dtype", np.float32))
    held = []
    if n_vol == 1 and o.get("axes") is None:
        if method == "iterative-deconvolve-3d" or dtype == np.float32:  # ID3D converts the volume itself
            return volume
        return volume + [(f"float32 copy of the {dtype} input", n4)]
    if dtype != np.float32:
        held.append((f"float32 copy of the {dtype} input", n_vol * n4))
    if moved:
        held.append(("volumes copied out of the hyperstack (float32)", n_vol * n4))
    state = 0
    if method == "richardson-lucy":  # each result keeps its work grid to resume from
        from .richardson_lucy import STATE_VOLUMES
        state = _nbytes(work, 4) * STATE_VOLUMES[_rl_default(o, "acceleration")]
    last = held + volume + [("results of the volumes done (float32)", (n_vol - 1) * n4),
                            ("resume states of the volumes done (float32)", (n_vol - 1) * state)]
    merge = held + [("results of all volumes (float32)", n_vol * n4),
                    ("resume states of all volumes (float32)", n_vol * state),
                    ("merged output (float32)" + (", and its transpose" if moved else ""),
                     n_vol * n4 * (2 if moved else 1))]
    return max(last, merge, key=_sum)


def estimate_memory(method: str, image_shape: Sequence[int], psf_shape: Sequence[int], **options: Any) -> int:
    """Peak memory a deconvolution run adds to the process, in bytes.

    The sum of the buffers the method holds at its peak - work-grid arrays (float32,
    4 bytes per work voxel), half spectra (complex64, about 4 bytes per work voxel),
    per-thread blocks, copies of the input, snapshots - plus a fixed overhead
    (:data:`OVERHEAD`).  The caller's own input array is not counted.

    Parameters
    ----------
    method:
        ``"richardson-lucy"``, ``"wiener"``, ``"convolve"`` or ``"iterative-deconvolve-3d"``.
    image_shape:
        One volume, (Z, Y, X) or (Y, X) voxels; or, with ``axes=``, a whole hyperstack
        (volumes are processed one after the other: one volume's working set plus the
        float32 copy of the input, the results of the other volumes and the merged output).
    psf_shape:
        The PSF's shape, same axes as a volume (cropped as the method crops it: at most
        ``2 n - 1`` voxels per axis, ``n`` for periodic edges).
    **options:
        The method's own keyword arguments (those that change memory are used:
        ``edges``, ``acceleration``, ``regularization``, ``weight``, ``back_projector``,
        ``iterations`` with ``snapshot_every``, ``read_noise``, ``compat``, ``anti_ringing``, ``gamma``,
        ``lowpass_xy``/``lowpass_z``, ``stop="auto"`` (its choice: :data:`AUTO_IMAGE_VOLUMES`
        more); the others, e.g. ``track_deviance``, are accepted and
        cost nothing measurable), plus ``dtype`` (the input's dtype; a non-float32 input
        is converted: one more copy), ``axes`` (see ``image_shape``) and ``threads``
        (default: the FFT worker count).

    Returns
    -------
    int
        Bytes.

    Raises
    ------
    ValueError
        An unknown method (naming ``method``), an unknown option (naming it), a bad shape.

    Example
    -------
    >>> from fijidecon.deconvolve import estimate_memory
    >>> n = estimate_memory("richardson-lucy", (64, 256, 256), (31, 63, 63))
    >>> 16 < n / (96 * 320 * 320) < 19  # bytes per work voxel (non-circulant grid 96x320x320)
    True
    """
    return memory_model(method, image_shape, psf_shape, **options).total


# -- memory available --------------------------------------------------------------------------

def _cgroup_limit(root: str = "/sys/fs/cgroup") -> int | None:
    """The cgroup memory limit minus what the cgroup uses, or None (v2 ``memory.max``, v1 ``limit_in_bytes``)."""
    for lim, cur in (("memory.max", "memory.current"),
                     ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        lim, cur = os.path.join(root, lim), os.path.join(root, cur)
        try:
            with open(lim) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text == "max" or not text.isdigit() or int(text) >= 1 << 60:
            return None
        used = 0
        try:
            with open(cur) as f:
                used = int(f.read().strip())
        except (OSError, ValueError):
            pass
        return max(int(text) - used, 0)
    return None


#: Threads a run may start, per CPU core and besides (FFT workers, the fused loops' pool, Zarr's I/O pool,
#: Dask's pool, the progress bar, tqdm's monitor, the main thread: 14 counted in a lazy run to OME-Zarr on 2
#: cores): their stacks are reserved address space.
THREADS_PER_CORE, THREADS_EXTRA = 3, 8


def vm_size() -> int:
    """Bytes of address space this process maps now (``VmSize`` of ``/proc/self/status``; psutil's ``vms``
    elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return int(psutil.Process().memory_info().vms)
    except Exception:  # pragma: no cover - psutil is a dependency
        return 0


def thread_reserve(cores: int | None = None) -> int:
    """Bytes of address space the threads of a run reserve beyond what is mapped now: the stacks of
    ``THREADS_PER_CORE * cores + THREADS_EXTRA`` threads (``RLIMIT_STACK`` each, glibc's default stack
    size) and the malloc arenas they may add (:data:`ARENA_MAX` less the main one when
    :func:`cap_malloc_arenas` has capped them, else one per thread, at most glibc's 8 per core)."""
    import threading

    cores = int(cores or os.cpu_count() or 1)
    stack = threading.stack_size() or 0
    if not stack:
        try:
            import resource

            soft = resource.getrlimit(resource.RLIMIT_STACK)[0]
            stack = 32 * MiB if soft == resource.RLIM_INFINITY or soft <= 0 else int(soft)  # glibc: 32 MiB
        except (ImportError, ValueError, OSError):
            stack = 8 * MiB
    n_threads = THREADS_PER_CORE * cores + THREADS_EXTRA
    arenas = (ARENA_MAX - 1) if arenas_capped() else min(8 * cores, n_threads)
    return n_threads * min(stack, 64 * MiB) + arenas * ARENA_BYTES


@dataclass(frozen=True)
class AddressSpace:
    """The address-space limit of this process and what is taken of it (bytes).

    Attributes
    ----------
    limit:
        ``RLIMIT_AS`` (``ulimit -v``).
    mapped:
        What the process maps now (``VmSize``).
    reserve:
        What its threads will reserve (:func:`thread_reserve`).
    """

    limit: int
    mapped: int
    reserve: int

    @property
    def room(self) -> int:
        """Bytes left for the run: the limit less what is mapped and the threads' reserve (at least 0)."""
        return max(self.limit - self.mapped - self.reserve, 0)

    def needed_for(self, budget: int) -> int:
        """The ``ulimit -v`` (bytes, rounded up to MiB) whose default budget is ``budget``."""
        total = self.mapped + self.reserve + int(math.ceil(budget / DEFAULT_FRACTION))
        return -(-total // MiB) * MiB


def address_space() -> AddressSpace | None:
    """This process's :class:`AddressSpace` now, or None without an address-space limit (under one, the
    malloc arenas are capped first: :func:`fijidecon._address_space.cap_malloc_arenas`)."""
    limit = address_space_limit()
    if limit is None:
        return None
    cap_malloc_arenas()
    return AddressSpace(limit, vm_size(), thread_reserve())


def _rlimit_room() -> int | None:
    """Room left under the process's address-space limit (RLIMIT_AS), or None: the limit less the
    address space mapped now (``VmSize``) and the threads' reserve (:func:`thread_reserve`)."""
    a = address_space()
    return None if a is None else a.room


def available_memory() -> int:
    """Bytes this process can still allocate now.

    The smallest of: the system's available memory (``psutil.virtual_memory().available``),
    the room under the process's address-space limit (``RLIMIT_AS``, ``ulimit -v``: the limit less
    the address space mapped now and what the run's threads reserve, :func:`address_space`) and
    the room under its cgroup's memory limit (``memory.max``), when those are set.
    """
    import psutil

    room = [int(psutil.virtual_memory().available)]
    for r in (_rlimit_room(), _cgroup_limit()):
        if r is not None:
            room.append(r)
    return min(room)


#: Fraction of :func:`available_memory` a run may use by default.
DEFAULT_FRACTION = 0.7


def default_memory_limit() -> int:
    """The default budget of a run: :data:`DEFAULT_FRACTION` (0.7) of :func:`available_memory`."""
    return int(DEFAULT_FRACTION * available_memory())


_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_MEM_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*$")


def parse_memory(value: Any) -> int:
    """A memory size in bytes from a number of bytes or a text such as ``"1GB"``, ``"512MiB"``, ``"2.5G"``.

    Decimal units (``k``, ``M``, ``G``, ``T``, with or without ``B``) are powers of 1000,
    binary units (``KiB``, ``MiB``, ``GiB``, ``TiB``) powers of 1024; case is ignored.

    Raises
    ------
    ValueError
        Anything else, or a size that is not positive (naming ``memory_limit``).

    Example
    -------
    >>> parse_memory("512MiB"), parse_memory("2.5G"), parse_memory(1000)
    (536870912, 2500000000, 1000)
    """
    if isinstance(value, bool):
        raise InputError(f"memory_limit: expected a size such as '1GB', '512MiB' or a number of bytes, got {value!r}")
    if isinstance(value, (int, np.integer)):
        n = float(value)
    elif isinstance(value, (float, np.floating)):
        n = float(value)
    elif isinstance(value, str) and _MEM_RE.match(value) and _MEM_RE.match(value).group(2).lower() in _UNITS:
        m = _MEM_RE.match(value)
        n = float(m.group(1)) * _UNITS[m.group(2).lower()]
    else:
        raise InputError(f"memory_limit: expected a size such as '1GB', '512MiB' or a number of bytes, got {value!r}")
    if not (math.isfinite(n) and n >= 1):
        raise InputError(f"memory_limit: must be at least 1 byte, got {value!r}")
    return int(n)


# -- measuring ---------------------------------------------------------------------------------

_CHILD = r"""
import ctypes, json, os, resource, sys
import numpy as np
import fijidecon.deconvolve as dc

a = json.loads(sys.argv[1])
method, opts = a["method"], dict(a["options"])
dtype = np.dtype(opts.pop("dtype", "float32"))
opts.pop("threads", None)


def call(img, psf):
    o = dict(opts)
    if method == "richardson-lucy":
        return dc.richardson_lucy(img, psf, o.pop("iterations", 2), **o)
    if method == "wiener":
        return dc.wiener(img, psf, **o)
    if method == "convolve":
        return dc.convolve(img, psf, **o)
    o.setdefault("max_iterations", 2)
    o.setdefault("terminate", -1000.0)
    return dc.iterative_deconvolve_3d(img, psf, **o)


def make(shape, pshape):
    rng = np.random.default_rng(0)
    if dtype.kind == "f":
        img = rng.random(shape, dtype=np.float32)
        img += 1
        img = img.astype(dtype, copy=False)
    else:
        img = rng.integers(1, 200, size=shape, dtype=dtype)
    psf = np.ones(pshape, np.float32)
    for ax, n in enumerate(pshape):
        s = [1] * len(pshape)
        s[ax] = n
        psf = psf * np.exp(-((np.arange(n) - n // 2) / max(n / 6, 0.5)) ** 2).astype(np.float32).reshape(s)
    return img, psf


def statm():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


shape, pshape = tuple(a["shape"]), tuple(a["psf"])
# warm up on a small image: lazy imports and first-call caches are not part of the run
call(*make(tuple(min(n, 12) for n in shape[:-2]) + tuple(min(n, 24) for n in shape[-2:]),
           tuple(min(k, 5) for k in pshape)))
img, psf = make(shape, pshape)
try:
    ctypes.CDLL("libc.so.6").malloc_trim(0)
except OSError:
    pass
base = statm()
try:  # reset the high-water mark to now (ru_maxrss would keep the parent's size at fork across exec)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:
    pass
call(img, psf)
with open("/proc/self/status") as f:
    hwm = [ln for ln in f if ln.startswith("VmHWM:")]
peak = int(hwm[0].split()[1]) * 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"baseline": base, "peak": peak}))
"""


def measure_peak(method: str, image_shape: Sequence[int], psf_shape: Sequence[int], timeout: float = 600,
                 **options: Any) -> int:
    """Measured peak memory a run adds, in bytes: the run in a child process (Linux).

    The child imports fijidecon, warms the method up on a small image, makes the input
    (random float32 data, or ``dtype=``) and a Gaussian PSF of ``psf_shape``, reads its
    resident set size, resets its high-water mark (``/proc/self/clear_refs``), runs the
    method (2 iterations unless ``iterations=`` / ``max_iterations=`` say otherwise) and
    returns its peak resident set size (``VmHWM``) minus that baseline.  (Not
    ``ru_maxrss``: Linux keeps the parent's size at fork in it across ``exec``.)

    Raises
    ------
    RuntimeError
        The child failed (its last error line is in the message).
    """
    method = _check_method(method)
    _check_options(method, options)
    arg = json.dumps({"method": method, "shape": list(map(int, image_shape)), "psf": list(map(int, psf_shape)),
                      "options": {k: (str(np.dtype(v)) if k == "dtype" else v) for k, v in options.items()}})
    p = subprocess.run([sys.executable, "-c", _CHILD, arg], capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ))
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"measure_peak: the child process failed: {last}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    return int(r["peak"] - r["baseline"])
