"""The CLI's runs of the deconvolution commands within a memory budget, file to file.

:func:`run` is what ``fijidecon deconvolve convolve|wiener|richardson-lucy|iterative3d``
call.  Before reading any pixels it compares the run's memory estimate
(:func:`fijidecon.deconvolve.estimate_memory` of the whole input, plus the input itself)
with the budget (``--memory-limit``; ``auto`` = :func:`fijidecon.deconvolve.default_memory_limit`):

* it fits, and nothing asks for Dask: the input is read into memory and the command runs as
  before (the core still bricks a volume it finds over the budget, with a bar of bricks);
* it does not fit, the output is an OME-Zarr (``.zarr``), or ``--workers``/``--scheduler``
  is given (Convolve, Wiener, Richardson-Lucy): the input is opened lazily
  (:func:`fijidecon.lazy_io.read_lazy`), the core returns a lazy Dask array (one task per
  brick and (T, C) volume) and :func:`fijidecon.io.write_image_and_sidecar` writes it brick by
  brick (OME-Zarr) or slab by slab (TIFF), atomically.

Where the bricks are computed:

* default: Dask's threaded scheduler with one thread (each brick already uses every core
  for its FFTs); the budget is what the run adds to the process (Python and its imports
  not counted, as in ``estimate_memory``): the slabs of whole planes that file I/O holds
  are taken off it and the bricks are planned in what is left (:func:`plan_bricks`; the
  core is given ``bricks=`` and its default ``halo=``);
* ``--workers N``: a :class:`distributed.LocalCluster` of N worker processes, one thread
  each, each brick's FFTs on ``cores / N`` threads; the budget is shared by the N workers;
* ``--scheduler ADDRESS``: a :class:`distributed.Client` on an existing cluster;
  ``--memory-limit`` is then each worker's budget (default: 70 % of the smallest worker's
  Dask memory limit), shared by its threads.

Under ``ulimit -v`` (:func:`measure_address_space`): the malloc arenas are capped, what a lazy run
imports is imported before the budget is measured, a limit that leaves nothing is refused
(:func:`refuse_no_address_space`), and so is a lazy plan whose budget and Dask graph do not fit the
address space left (:func:`check_graph_room`), each naming the ``ulimit -v`` that runs it.

Progress: a tqdm bar of bricks done with the ETA on stderr (``-q``: none), fed by an
identity task after every brick (in-process counter; on a distributed cluster the
workers' ``log_event`` on a topic the client subscribes to).  Ctrl-C stops the scheduler,
removes the partial output and exits with status 130 (see :func:`fijidecon.cli.main`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import click
import numpy as np

from . import __version__, _validate
from .commands import Command

#: Commands whose core function takes a Dask array.
LAZY_COMMANDS = ("convolve", "wiener", "richardson-lucy")
#: Options of the core functions that change their memory (passed to ``estimate_memory``).
_MEMORY_OPTIONS = ("edges", "acceleration", "regularization", "weight", "iterations", "snapshot_every", "stop",
                   "read_noise", "compat", "anti_ringing", "gamma", "lowpass_xy", "lowpass_z")
#: Fraction of a distributed worker's own Dask memory limit a run uses by default.
WORKER_FRACTION = 0.7


# ------------------------------------------------------------------------------------------ budget

def budget(memory_limit: Any) -> int:
    """``--memory-limit`` in bytes (``None``/auto: the default budget of this process)."""
    from .deconvolve import available_memory, default_memory_limit, parse_memory

    if memory_limit is None:
        return int(default_memory_limit())
    given = int(parse_memory(memory_limit))
    room = available_memory()
    if given > room:  # a budget the machine cannot give: planned runs would be killed, not refused
        _validate.warn(f"--memory-limit: {_size(given, 'down')} is more than this process can allocate now "
                       f"({_size(room, 'down')}); the run is planned for it and may run out of memory; leave "
                       "--memory-limit out for a safe budget", RuntimeWarning)
    return given


#: What a lazy run imports (counted before the budget is measured under ``ulimit -v``: their mappings
#: took 110-120 MiB of address space the budget had given the run).
_LAZY_MODULES = ("dask.array", "dask.system", "zarr", "numcodecs", "ome_zarr.format", "ome_zarr.io",
                 "ome_zarr.reader", "ome_zarr.writer", "tqdm", "distributed")


def measure_address_space() -> Any:
    """Under an address-space limit (``ulimit -v``): cap the malloc arenas, import what a lazy run
    imports (when the 'big' extra is installed), then measure the address space left
    (:func:`fijidecon.deconvolve._memory.address_space`); None without a limit."""
    import importlib

    from .deconvolve import _memory

    if _memory.address_space_limit() is None:
        return None
    _memory.cap_malloc_arenas()
    if have_big():
        for name in _LAZY_MODULES:
            try:
                importlib.import_module(name)
            except ImportError as exc:  # not installed (distributed), or no address space left to map it
                if "failed to map" in str(exc) or "memory" in str(exc).lower():
                    space = _memory.address_space()
                    return _memory.AddressSpace(space.limit, max(space.mapped, space.limit), space.reserve)
            except MemoryError:
                space = _memory.address_space()
                return _memory.AddressSpace(space.limit, max(space.mapped, space.limit), space.reserve)
    return _memory.address_space()


#: Address space a lazy run's Dask graph takes per brick, beside the budget (measured under MALLOC_ARENA_MAX=2:
#: 64x256x256 RL to TIFF, 1024 bricks of 16x16x16 at 34MiB, VmPeak 522 MiB above the start; 512 bricks at 37MiB,
#: 332 MiB: 0.26-0.32 MiB a brick once the budget and the threads' reserve are taken off).
GRAPH_BYTES_PER_BRICK = 2**20 * 2 // 5


def _n_bricks(vol, core) -> int:
    return int(np.prod([-(-v // c) for v, c in zip(vol, core)], dtype=np.int64))


def least_ulimit(space: Any, method: str, vol: tuple[int, ...], kernel: tuple[int, ...], opts: dict[str, Any],
                 start: int, concurrency: int, tiff_out: bool, n_volumes: int, local: bool = True) -> int | None:
    """The smallest ``ulimit -v`` (bytes) whose default budget runs a lazy plan with its Dask graph
    (:data:`GRAPH_BYTES_PER_BRICK` per brick) in the address space: of budgets from ``start``, 1.1x apart
    until one brick per volume, the one with the least budget + graph; None when none has a plan."""
    from .deconvolve import _bricks

    halo = _bricks.default_halo(kernel, method)

    def need_at(b: int) -> int | None:  # the default budget must reach b, and the room hold what the plan takes
        plan = _best_plan(method, vol, kernel, halo, opts, b, concurrency, tiff_out)
        return None if plan is None else space.needed_for(max(b, _graph_cost(vol, plan[1], b, n_volumes, local)))

    best, b = None, max(int(start), 2**20)
    for _ in range(200):
        need = need_at(b)
        if need is not None and (best is None or need < best[0]):
            best = (need, b)
        if need is not None and tuple(_best_plan(method, vol, kernel, halo, opts, b, concurrency, tiff_out)[1]) \
                == tuple(vol):
            break
        b = int(b * 1.1)
    if best is None:
        return None
    # budgets 1.1x apart: the least may lie between the best and the one before it (1 % steps)
    fine = [need_at(int(best[1] / 1.1 * (1 + k / 100))) for k in range(1, 10)]
    return min([best[0]] + [n for n in fine if n is not None])


def _graph_cost(vol, core, budget: int, n_volumes: int, local: bool) -> int:
    """Address space a lazy plan takes in this process: its budget (``local``: the bricks are computed
    here) and its Dask graph."""
    return (int(budget) if local else 0) + _n_bricks(vol, core) * max(int(n_volumes), 1) * GRAPH_BYTES_PER_BRICK


def check_graph_room(space: Any, method: str, vol: tuple[int, ...], kernel: tuple[int, ...],
                     core: tuple[int, ...] | None, opts: dict[str, Any], limit: int, concurrency: int,
                     tiff_out: bool, n_volumes: int, local: bool = True) -> None:
    """Under ``ulimit -v`` (``space``; nothing without one): refuse, before computing, a lazy run whose
    plan (``core``; None: no plan fits the budget) and Dask graph do not fit the address space left,
    naming the ``ulimit -v`` that runs it (:func:`least_ulimit`)."""
    if space is None or (core is not None and _graph_cost(vol, core, limit, n_volumes, local) <= space.room):
        return
    need = least_ulimit(space, method, vol, kernel, opts, 2**20, concurrency, tiff_out, n_volumes, local)
    remedy = f"; raise ulimit -v to at least {_kib(need)} (KiB)" if need else ""
    if core is None:
        raise click.UsageError(
            f"--memory-limit: {_size(limit, 'down')} (under ulimit -v {_kib(space.limit)}: the process maps "
            f"{_size(space.mapped)}, its threads reserve {_size(space.reserve)}) is too small for {method} on "
            f"{'x'.join(map(str, vol))} volumes: even the smallest bricks do not fit{remedy}")
    n = _n_bricks(vol, core) * max(n_volumes, 1)
    said = f"a budget of {_size(limit, 'down')} and " if local else ""
    raise click.UsageError(
        f"--memory-limit: under ulimit -v {_kib(space.limit)} the run's {n} bricks of {'x'.join(map(str, core))} "
        f"need {said}about {_size(n * GRAPH_BYTES_PER_BRICK)} for their Dask graph, more than the "
        f"{_size(space.room)} of address space left (the process maps {_size(space.mapped)}, its threads reserve "
        f"{_size(space.reserve)}){remedy}")


def _bricks_halo(kernel, method) -> tuple[int, ...]:
    from .deconvolve import _bricks

    return _bricks.default_halo(kernel, method)


#: Address space a local cluster's client takes in this process (its threads, event loop and connections;
#: measured: 402 -> 524 MiB mapped once ``--workers 2`` had started), counted before the cluster starts.
CLIENT_BYTES = 128 * 2**20


def _with_client(space: Any, workers: int | None) -> Any:
    """``space`` with the local cluster's client counted (:data:`CLIENT_BYTES`), for ``--workers``."""
    if space is None or not workers:
        return space
    return type(space)(space.limit, space.mapped + CLIENT_BYTES, space.reserve)


def _kib(n: int) -> str:
    return f"{-(-int(n) // 1024)}"


def refuse_no_address_space(space: Any, ulimit: int) -> None:
    """``ulimit -v`` leaves nothing for the run: one line (before any computation) naming the limit,
    what the process maps, and the ``ulimit -v`` (``ulimit`` bytes) whose default budget runs it."""
    if space is None or space.room > 0:
        return
    raise click.UsageError(
        f"--memory-limit: nothing is left for the run under ulimit -v {_kib(space.limit)} (the process already "
        f"maps {_size(space.mapped)}, and its threads reserve {_size(space.reserve)} more); raise ulimit -v to at "
        f"least {_kib(ulimit)} (KiB) to run it, or run without the limit")


#: A budget a refusal names (``give --memory-limit 35MiB or more``, ``memory_limit of at least 290 MiB``).
_NAMED_BUDGET = re.compile(r"(?:--memory-limit|memory_limit)(?: of at least)? (\d[\d,]*(?:\.\d+)?) ?(KiB|MiB|GiB)")


def with_address_space_remedy(exc: BaseException, space: Any) -> BaseException:
    """A too-small-budget refusal under ``ulimit -v`` (the default budget, cut by the limit): its
    message also says the ``ulimit -v`` that gives the budget it names."""
    m = _NAMED_BUDGET.search(str(exc))
    if space is None or m is None:
        return exc
    named = float(m.group(1).replace(",", "")) * {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[m.group(2)]
    return type(exc)(f"{exc}; under ulimit -v {_kib(space.limit)} (the process maps {_size(space.mapped)}) that "
                     f"budget needs ulimit -v {_kib(space.needed_for(int(named)))} (KiB) or more")


def whole_need(cmd: Command, kwargs: dict[str, Any], shape: tuple[int, ...], dtype: Any, axes: str,
               psf_shape: tuple[int, ...]) -> int:
    """Bytes an in-memory run of the whole input needs: the method's estimate (with the
    float32 copy, other volumes' results and the merged output of a hyperstack) plus the
    input array itself."""
    from .deconvolve import estimate_memory

    opts = {k: kwargs[k] for k in _MEMORY_OPTIONS if k in kwargs}
    vol = "".join(a for a in axes if a in "ZYX")
    if len(axes) == len(shape) and axes != vol:
        opts["axes"] = axes
    one_plane = len(vol) == 3 and len(axes) == len(shape) and "Z" in axes and shape[axes.index("Z")] == 1
    if (cmd.id == "iterative-deconvolve-3d" or one_plane) and len(psf_shape) == 2 and len(vol) == 3:
        psf_shape = (1, *psf_shape)  # a one-plane PSF of a stack (slice by slice, as the plugin takes it), or of
        # a one-plane (1, Y, X) image, as every method takes it
    if len(psf_shape) != len(vol):  # the core's message (and hints), before the estimate names its own argument
        from .deconvolve import _hyper

        n_c = shape[axes.index("C")] if "C" in axes and len(axes) == len(shape) else 1
        _hyper.channel_psfs(np.zeros(psf_shape, np.float32), n_c, len(vol), "C" in axes)
        raise ValueError(_hyper.dimensionality_message(tuple(psf_shape), len(vol)))
    psf_shape = tuple(psf_shape)[-len(vol):]
    est = estimate_memory(cmd.id, tuple(shape), psf_shape, dtype=np.dtype(dtype), **opts)
    return int(est + int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize)


def whole_budget(need: int, shape: tuple[int, ...], dtype: Any) -> int:
    """The ``--memory-limit`` that runs an input whole in memory, core included: :func:`whole_need`
    plus what the core holds beside it (its float32 result, and a float32 copy of another dtype),
    rounded up to MiB with 5 % for the PSF's prepared size (it may grow when resampled)."""
    n4 = 4 * int(np.prod(shape, dtype=np.int64))
    total = (int(need) + n4 + (0 if np.dtype(dtype) == np.float32 else n4)) * 1.05
    return -(-int(total) // 2**20) * 2**20


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


#: Smallest brick core per axis the CLI plans (as the core's ``MIN_CORE``).
MIN_CORE = 16
#: Copies of the output slab a TIFF output holds (measured with tracemalloc at the peak of a 64-brick run,
#: 48x400x400 in bricks of 48x50x50: the bricks' results, 52 MiB for a 29 MiB slab, and the slab assembled
#: from them for the planes' writer); counted once, the run took 1.7x its budget.
OUT_SLAB_COPIES = 2
#: What a lazy run holds beside its slabs and bricks, whatever their size (Dask's scheduler and graph, the
#: FFT threads' buffers, the writer's compression buffers, the heap's fragments): RL, 128x384x384 TIFF to
#: OME-Zarr in 512 bricks, added 46 MiB over the slabs and bricks planned at 90 MiB, 42 MiB at 114 MiB (80 bricks).
LAZY_FIXED = 48 * 2**20
#: Z cores tried per volume (``ceil(Z / n)`` for n = 1 ... this, then halvings): even Z bricks, down to the halo.
Z_SPLITS = 32


def kernel_shape(psf: Any, image_cal: Any, vol_axes: str, recenter: bool) -> tuple[int, ...]:
    """The largest prepared PSF (the kernel the core uses: support cropped, resampled to the
    image's voxel size when both are calibrated) over the channel PSFs."""
    logger = logging.getLogger("fijidecon")
    level = logger.level
    logger.setLevel(logging.WARNING)  # the run prepares the same PSFs and says what it did, once
    try:
        shapes = _kernel_shapes(psf if isinstance(psf, list) else [psf], image_cal, vol_axes, recenter)
    finally:
        logger.setLevel(level)
    return tuple(int(max(s[i] for s in shapes)) for i in range(len(shapes[0])))


def _kernel_shapes(items: list, image_cal: Any, vol_axes: str, recenter: bool) -> list[tuple[int, ...]]:
    """Each PSF's prepared kernel shape (see :func:`kernel_shape`)."""
    from .commands.run import split_psf
    from .deconvolve import _otf

    pairs = []
    for item in items:
        parts = split_psf(item)
        pairs += parts if isinstance(parts, list) else [parts]
    shapes = []
    for i, (arr, cal) in enumerate(pairs):
        vs = pvs = None
        if image_cal.has_length_unit() and cal.has_length_unit() and len(cal.axes) == len(vol_axes):
            vs, pvs = image_cal.voxel_size(vol_axes), cal.voxel_size(vol_axes, unit=image_cal.unit)
        name = f"psf[{i}]" if len(pairs) > 1 else "psf"
        shapes.append(_otf.prepare_psf(arr, recenter=recenter, voxel_size=vs, psf_voxel_size=pvs,
                                       name=name, flat_ok=True).kernel.shape)  # sizes only: the run checks the rest
    return shapes


def brick_need(method: str, outer: tuple[int, ...], kernel: tuple[int, ...], opts: dict[str, Any]) -> int:
    """Bytes one brick of ``outer`` voxels adds: the method's estimate plus its float32 input,
    its result and the kept core (Dask holds them around the call)."""
    from .deconvolve import estimate_memory

    return int(estimate_memory(method, outer, kernel, **opts)) + 3 * 4 * int(np.prod(outer, dtype=np.int64))


def plan_bricks(method: str, vol: tuple[int, ...], kernel: tuple[int, ...], opts: dict[str, Any], limit: int,
                concurrency: int, tiff_out: bool, whole: int | None = None, held: int = 0,
                in_chunks: tuple[int, ...] | None = None) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    """Brick cores for a lazy run of (Z, Y, X) volumes ``vol`` within ``limit`` bytes.

    Files are read (TIFF, ``.npy``) and written (TIFF) in whole planes, so Dask holds every
    plane of the Z range the bricks being computed need (see :func:`_slabs`).  For each Z core (even
    splits of Z, not thinner than the Z halo), the largest Y, X cores (the axis largest relative to its
    halo halved first) whose :func:`brick_need` fits what the slabs leave for the ``concurrency`` bricks
    computed at once; of these plans, the one with the least FFT work (:func:`_work`).

    ``whole``: the budget that runs the input whole in memory (:func:`whole_budget`), when
    that is possible (a TIFF output): the refusal names the smaller of it and the smallest
    budget with a plan.  ``in_chunks``: the input's chunks when it is chunked within its planes
    (an OME-Zarr store, :func:`_input_chunks`): its input is counted as :func:`_band` where that is less.

    Returns
    -------
    (core, halo, brick_budget)
        Brick core and halo (Z, Y, X order, as ``vol``), and the bytes left for one brick.

    Raises
    ------
    MemoryError
        Not even bricks of one plane by ``MIN_CORE`` voxels fit (naming ``memory_limit``).  ``held``: what
        a scheduler's workers hold already (``limit`` is their budget less it): the message names the
        budget given and asks for one that runs with it.
    """
    from .deconvolve import _bricks

    halo = _bricks.default_halo(kernel, method)
    best = _best_plan(method, vol, kernel, halo, opts, limit, concurrency, tiff_out, in_chunks)
    if best is None:
        need = _smallest_limit(method, vol, kernel, halo, opts, limit, concurrency, tiff_out, in_chunks)
        need = min(need, whole) if whole else need
        said = (f"{_size(limit, 'down')}" if not held else
                f"{_size(limit + held, 'down')} per worker, less the {_size(held)} the scheduler's workers hold now,")
        need += held
        raise MemoryError(f"memory_limit: {said} is too small for {method} on {'x'.join(map(str, vol))} "
                          f"volumes from and to files: even the smallest bricks ({MIN_CORE} voxels, or as thick as "
                          f"their halo of {'x'.join(map(str, halo))} set by the PSF's size) with their "
                          f"{'input chunks' if in_chunks else 'slabs of whole planes'} do not fit; give --memory-limit "
                          f"{_validate.budget_option(need)} or more (this runs it, with a 5 % margin for the prepared "
                          "PSF), or crop the PSF to where it is above the noise (a smaller halo)")
    return best[1], halo, best[2]


def _best_plan(method, vol, kernel, halo, opts, limit, concurrency, tiff_out, in_chunks=None) -> tuple | None:
    """(work, core, room) of the plan with the least FFT work within ``limit``, or ``None``."""
    best = None
    for cz in _z_cores(vol, halo) if len(vol) == 3 else [None]:
        fit = _fit_lateral(method, vol, cz, kernel, halo, opts, limit, concurrency, tiff_out, in_chunks)
        if fit is not None and (best is None or _work(vol, fit[0], halo, kernel) < best[0]):
            best = (_work(vol, fit[0], halo, kernel), fit[0], fit[1])
    return best


def _z_cores(vol, halo) -> list[int]:
    """The Z cores tried: ``ceil(Z / n)`` (bricks of even thickness) while not thinner than the Z halo
    (Dask's ``map_overlap`` would merge thinner ones, and read more halo)."""
    from .deconvolve._bricks import thinnest_core

    floor = thinnest_core(vol[0], halo[0])
    splits = list(range(1, Z_SPLITS + 1)) + [2 ** k for k in range(Z_SPLITS.bit_length(), 40)]
    cores = sorted({-(-vol[0] // n) for n in splits if -(-vol[0] // n) >= floor}, reverse=True)
    return cores or [floor]


def _slabs(vol, core, halo, tiff_out, in_chunks=None) -> int:
    """Bytes of whole planes a lazy run from and to files holds beside its bricks (an input chunked within
    its planes, ``in_chunks``: the less of that and its :func:`_band`).

    The *input slab* (float32, the outer Z range of a row of bricks) and the bricks' overlapped inputs
    built from it before their tasks run (the slab once per lateral brick, each with its halo: twice
    the slab when the bricks span the planes, 8.8 times for bricks of 40x19x32 + halo 21x13x13, measured
    4.1 GB for a 1.1 GiB budget before they were counted); for a TIFF output the *output slab* (the row's
    core Z range, :data:`OUT_SLAB_COPIES` times).  A 2D image is one plane, read (and written) whole."""
    from .deconvolve._bricks import Plan

    plan = Plan(tuple(vol), tuple(core), tuple(halo), True)
    if len(vol) == 2:
        lateral, planes_in, planes_out = plan, 1, 1
    else:
        lateral = Plan(tuple(vol[1:]), tuple(core[1:]), tuple(halo[1:]), True)
        planes_out = max(plan.sizes(0))
        planes_in = min(vol[0], planes_out + 2 * halo[0])
    plane = 4 * int(np.prod(vol[-2:], dtype=np.int64))
    out_slab = OUT_SLAB_COPIES * planes_out * plane if tiff_out else 0
    overlapped = sum(float(np.prod([b.stop - b.start for b in br.outer])) for br in lateral.bricks())
    in_copies = 1.0 + overlapped / float(np.prod(vol[-2:]))
    slab = int(in_copies * planes_in * plane)
    if in_chunks is not None and len(vol) == 3:  # chunked within its planes: the band, when it is less
        slab = min(slab, _band(vol, core, halo, in_chunks, planes_in))
    return slab + out_slab


def _band(vol, core, halo, chunks, planes_in) -> int:
    """Bytes of float32 input an input chunked within its planes (OME-Zarr) holds: a band of two rows of
    bricks with their halo, the whole width, over the Z range of a row of bricks, each extent widened to
    whole chunks plus one (a range starts inside a chunk), and one chunk row more when the bricks are
    thinner than the chunks (a chunk is held until every brick that reads it is done).  Measured with
    forced plans (convolve to OME-Zarr, 9x15x15 PSF; increment over this band + the brick + the fixed
    costs): a 16x4096x4096 store of 16x256x256 chunks, cores 16x128x256 to 16x1024x1024: 0.70-1.02 (as
    whole planes it asked for 2244MiB); 64x2048x2048 of 64x256x256 chunks, cores 64x128x128 to
    64x512x512: 0.64-1.26 before the last term, 0.99 with it for the thinnest."""
    def whole_chunks(n: int, c: int, total: int, extra: int) -> int:
        return min(total, (-(-n // max(c, 1)) + 1 + extra) * max(c, 1))

    planes = whole_chunks(planes_in, chunks[0], vol[0], 0)
    rows = whole_chunks(2 * core[1] + 2 * halo[1], chunks[1], vol[1], int(core[1] < chunks[1]))
    return 4 * planes * rows * int(vol[2]) + _n_bricks(vol, core) * GRAPH_BYTES_PER_BRICK


def _room(vol, core, halo, limit, concurrency, tiff_out, in_chunks=None) -> int:
    """Bytes left for one brick of ``core`` once the slabs of whole planes (:func:`_slabs`) are held,
    ``concurrency`` bricks at once, and :data:`LAZY_FIXED`."""
    return (int(limit) - LAZY_FIXED - _slabs(vol, core, halo, tiff_out, in_chunks)) // max(int(concurrency), 1)


def room_for(method, vol, kernel, core, halo, opts, limit, concurrency, tiff_out, in_chunks=None) -> int | None:
    """The bytes left for one brick of a given plan (``core``, ``halo``) within ``limit``, or
    ``None`` when its bricks do not fit (a ``--resume`` run goes on with the bricks it began with)."""
    from .deconvolve._bricks import Plan

    room = _room(vol, core, halo, limit, concurrency, tiff_out, in_chunks)
    outer = Plan(tuple(vol), tuple(core), tuple(halo), True).outer
    return room if room > 0 and brick_need(method, outer, kernel, opts) <= room else None


def _smallest_limit(method, vol, kernel, halo, opts, limit, concurrency, tiff_out, in_chunks=None) -> int:
    """The smallest budget (to 1 MiB) with a plan, for the refusal's remedy."""
    return _least_budget(lambda b: _best_plan(method, vol, kernel, halo, opts, b, concurrency, tiff_out,
                                              in_chunks) is not None, limit)


def _least_budget(fits: Any, limit: int) -> int:
    """The smallest budget (rounded up to 1 MiB) above ``limit`` for which ``fits(budget)`` holds
    (doubling, then bisecting; ``fits`` grows with the budget)."""
    lo, hi = int(limit), max(int(limit), 2**20) * 2
    while not fits(hi) and hi < 2**50:
        lo, hi = hi, hi * 2
    while hi - lo > 2**20:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fits(mid) else (mid, hi)
    return -(-hi // 2**20) * 2**20


def _warn_costly(method: str, vol: tuple[int, ...], core: tuple[int, ...], halo: tuple[int, ...],
                 whole: int | None) -> None:
    """:func:`fijidecon.deconvolve._bricks.warn_costly` for the CLI's lazy plan (the whole run may
    be both faster and smaller: RedLionfish's 160³ with its 61x32x32 PSF at 200MB, 16 bricks, 5.5x the time);
    ``whole``: the budget that runs the volume whole (one brick, or in memory), as this run would."""
    from .deconvolve import _bricks

    advice = f"--memory-limit {_validate.budget_option(whole)}" if whole else None
    _bricks.warn_costly(_bricks.Plan(vol, core, halo, True), method, advice, "--memory-limit")


def _costly(vol, core, halo) -> bool:
    """Whether the core's costly-bricks warning (``_bricks.COSTLY_PLAN``) will be given for this plan."""
    from .deconvolve import _bricks

    plan = _bricks.Plan(vol, core, halo, True)
    return plan.n * float(np.prod(plan.outer)) / float(np.prod(vol)) >= _bricks.COSTLY_PLAN


def _one_brick_limit(method, vol, kernel, halo, opts, limit, concurrency, tiff_out, in_chunks=None) -> int:
    """The smallest budget (to 1 MiB) whose plan is one brick per volume, with the same concurrency
    and output kind (the costly-bricks warning's remedy; with --workers or an OME-Zarr output a
    budget that would run an in-memory run whole may still split it)."""
    def whole(b: int) -> bool:
        best = _best_plan(method, vol, kernel, halo, opts, b, concurrency, tiff_out, in_chunks)
        return best is not None and tuple(best[1]) == tuple(vol)

    return _least_budget(whole, limit)


def _work(vol, core, halo, kernel) -> float:
    """FFT work of a plan, in work voxels: bricks x (outer + kernel) per axis."""
    n = np.prod([-(-v // c) for v, c in zip(vol, core)])
    return float(n * np.prod([min(v, c + 2 * h) + k - 1 for v, c, h, k in zip(vol, core, halo, kernel)]))


def _fit_lateral(method, vol, cz, kernel, halo, opts, limit, concurrency, tiff_out, in_chunks=None) -> tuple | None:
    """(core, room): the largest Y, X cores with Z core ``cz`` (None: 2D) whose brick fits the room its
    slabs leave (:func:`_room`), halving the axis largest relative to its halo; ``None`` if none fits."""
    from .deconvolve._bricks import Plan, thinnest_core

    lat = list(vol[-2:])
    hl = halo[-2:]
    while True:
        core = ((cz,) if cz is not None else ()) + tuple(lat)
        room = _room(vol, core, halo, limit, concurrency, tiff_out, in_chunks)
        if room > 0 and brick_need(method, Plan(tuple(vol), core, tuple(halo), True).outer, kernel, opts) <= room:
            return core, room
        floor = [thinnest_core(n, h) for n, h in zip(vol[-2:], hl)]  # Dask: no core thinner than its halo
        can = [i for i in (0, 1) if lat[i] > floor[i]]
        if not can:
            return None
        i = max(can, key=lambda k: lat[k] / max(hl[k], 1))
        lat[i] = max(floor[i], -(-lat[i] // 2))


_size = _validate.format_bytes


def _lazy_why(need: int, limit: int, image: Any) -> str:
    """Why a run over its budget goes lazy, with the budgets that would keep it in memory (in bricks there)
    and run it in one piece (a fresh user read the estimate, ``need``, as the latter)."""
    whole = whole_budget(need, tuple(image.shape), image.dtype)
    # in MiB as the two options are ('budget 1.1 GiB' read as more than '1132MiB keeps it in memory')
    return (f"budget {int(limit) // 2**20}MiB; --memory-limit {_validate.budget_option(need)} keeps it in memory, "
            f"{_validate.budget_option(whole)} runs it in one piece")


# --------------------------------------------------------------------------------------- schedulers

class Scheduler:
    """Where the bricks run: ``client`` (distributed) or ``None`` (threads), how many run at
    once, the bytes the worker processes already hold, and a topic for progress events."""

    def __init__(self, client: Any = None, concurrency: int = 1, held: int = 0, per_worker: int | None = None,
                 description: str = "threads") -> None:
        self.client = client
        self.concurrency = concurrency
        self.held = held
        self.per_worker = per_worker
        self.description = description
        self.topic = f"fijidecon-bricks-{uuid.uuid4().hex[:12]}"


#: ``--workers`` above this many per CPU core is refused (each process holds a brick and its FFTs).
MAX_WORKERS_PER_CORE = 2


@contextlib.contextmanager
def scheduler(workers: int | None, address: str | None) -> Iterator[Scheduler]:
    """The Dask scheduler of a run, set as the default for the block (see the module docs).

    Raises
    ------
    click.ClickException
        ``--scheduler``: no scheduler at that address (one line, after 10 s at most).
    """
    import dask

    if address:
        with _client(address) as client:
            info = client.scheduler_info()["workers"].values()
            if not info:
                raise click.ClickException(f"scheduler: {address} has no workers")
            limits = [w.get("memory_limit") or 0 for w in info]
            threads = max(int(w.get("nthreads", 1)) for w in info)
            per = int(WORKER_FRACTION * min(limits)) if min(limits) > 0 else None
            held = max(int(w.get("metrics", {}).get("memory", 0)) for w in info)
            yield Scheduler(client, threads, held, per, f"{len(info)} workers at {address}")
        return
    if workers:
        from distributed import Client, LocalCluster

        fft = str(max(1, (os.cpu_count() or 1) // workers))
        old = os.environ.get("FIJIDECON_FFT_WORKERS")
        os.environ["FIJIDECON_FFT_WORKERS"] = fft  # the worker processes inherit it
        try:
            # silence_logs: the workers' own log lines (a heartbeat missed under load, with its traceback) are
            # not the user's errors; a task that fails still reaches this process as an exception
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                   silence_logs=logging.CRITICAL)
        except KeyboardInterrupt:  # Ctrl-C while the workers start: end them, quietly
            _end_children_now()
            raise
        finally:
            if old is None:
                os.environ.pop("FIJIDECON_FFT_WORKERS", None)
            else:
                os.environ["FIJIDECON_FFT_WORKERS"] = old
        with cluster, Client(cluster) as client, _no_all_exit_logs():
            held = sum(client.run(_rss).values())
            try:
                yield Scheduler(client, workers, held, None,
                                f"local cluster of {workers} worker process{'es' if workers > 1 else ''}")
            except (KeyboardInterrupt, SystemExit):
                _end_workers_now(cluster)
                raise
        return
    with dask.config.set(scheduler="threads", num_workers=1):
        yield Scheduler(None, 1, 0, None, "Dask threads, one brick at a time")


@contextlib.contextmanager
def _no_all_exit_logs() -> Iterator[None]:
    """Drop asyncio's 'Task exception was never retrieved ... AllExit' record: the client's
    gather cancelled by Ctrl-C, not an error of the run (the CLI says 'Interrupted.')."""
    def keep(record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return type(exc).__name__ != "AllExit" and "AllExit" not in str(getattr(record, "msg", ""))

    logger = logging.getLogger("asyncio")
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


#: Set when an interrupted run ended its local cluster's workers (:func:`_end_workers_now`).
WORKERS_ENDED = False


def _end_workers_now(cluster: Any) -> None:
    """An interrupted run (Ctrl-C, SIGTERM): end the local cluster's worker processes at once and
    quiet the logging of the teardown.  Their own shutdown printed about 80 lines of tracebacks of
    the interrupt (the Nanny's SIGINT, the client's AllExit) before the CLI's one line."""
    import signal as _signal

    global WORKERS_ENDED
    WORKERS_ENDED = True  # the CLI then leaves without distributed's atexit teardown (see cli.main)
    logging.disable(logging.CRITICAL)  # the process is ending: the CLI says 'Interrupted.' itself
    for nanny in list(getattr(cluster, "workers", {}).values()):
        pid = getattr(getattr(nanny, "process", None), "pid", None)
        if pid:
            with contextlib.suppress(OSError):
                os.kill(pid, _signal.SIGKILL)


def _end_children_now() -> None:
    """Ctrl-C while a local cluster starts: kill this process's children (the workers being
    started) and leave without the cluster's teardown (see :func:`_end_workers_now`)."""
    import signal as _signal

    import psutil

    global WORKERS_ENDED
    WORKERS_ENDED = True
    logging.disable(logging.CRITICAL)
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error, OSError):
            child.send_signal(_signal.SIGKILL)


@contextlib.contextmanager
def _client(address: str) -> Iterator[Any]:
    import copy

    import dask
    from distributed import Client

    from distributed import client as _dc

    saved = copy.deepcopy(dask.config.config)
    before = _dc._get_global_client()
    try:
        client = Client(address, timeout="10s")
    except Exception as exc:  # OSError, TimeoutError, ValueError for a malformed address
        # a Client that failed to connect has already made itself Dask's default scheduler: undo it
        failed = _dc._get_global_client()
        if failed is not None and failed is not before:
            with contextlib.suppress(Exception):
                failed.close(timeout=1)
            _dc._set_global_client(before)
        dask.config.config.clear()
        dask.config.config.update(saved)
        msg = " ".join(str(exc).split()) or type(exc).__name__
        raise click.ClickException(f"scheduler: cannot connect to {address!r}: {msg}") from None
    with client:
        yield client


# ----------------------------------------------------------------------------------------- progress

_COUNT = {"done": 0}
_COUNT_LOCK = threading.Lock()


def _tick(block: np.ndarray, topic: str | None = None) -> np.ndarray:
    """Identity task after each brick: counts it (in this process, or as an event of a
    distributed worker)."""
    if topic is None:
        with _COUNT_LOCK:
            _COUNT["done"] += 1
    else:
        from distributed import get_worker

        get_worker().log_event(topic, 1)
    return block


def with_ticks(image: Any, sched: Scheduler) -> Any:
    """``image`` (lazy) with a counting identity after every brick."""
    import functools

    topic = sched.topic if sched.client is not None else None
    return image.map_blocks(functools.partial(_tick, topic=topic), dtype=image.dtype,
                            name=f"fijidecon-brick-done-{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def brick_bar(total: int, sched: Scheduler, quiet: bool, label: str) -> Iterator[Callable[[int], None]]:
    """A tqdm bar of bricks done (with the ETA) on stderr while the block computes; yields a
    function that sets the bar's total (a resumed run)."""
    with _COUNT_LOCK:
        _COUNT["done"] = 0
    events = {"done": 0}
    if sched.client is not None:
        def on_event(event: Any) -> None:
            events["done"] += 1

        sched.client.subscribe_topic(sched.topic, on_event)
    if quiet:
        yield lambda n: None
        return
    from tqdm import tqdm

    stop = threading.Event()
    bar = tqdm(total=total, desc=label, unit="brick", file=click.get_text_stream("stderr"), **_bar_timing(),
               dynamic_ncols=True)

    def set_total(n: int) -> None:  # a resumed run computes only some bricks
        nonlocal total
        total = bar.total = max(int(n), 0)
        bar.refresh()

    def watch() -> None:
        while not stop.wait(0.25):
            done = events["done"] if sched.client is not None else _COUNT["done"]
            if done > bar.n:
                bar.update(min(done, total) - bar.n)

    t = threading.Thread(target=watch, name="fijidecon-progress", daemon=True)
    t.start()
    ok = False
    try:
        yield set_total
        ok = True
    finally:
        stop.set()
        t.join()
        if ok:
            bar.update(total - bar.n)
        bar.close()
        if sched.client is not None:
            with contextlib.suppress(Exception):
                sched.client.unsubscribe_topic(sched.topic)


#: Seconds between progress-bar updates: on a terminal, and in a log file (stderr not a terminal).
BAR_INTERVAL = {"terminal": 0.5, "log": 30.0}


def _bar_timing() -> dict[str, float]:
    """tqdm's intervals: a batch log gets a bar line every 30 s, not every 0.5 s (an overnight run wrote
    megabytes of bar).  ``maxinterval`` too: tqdm's monitor thread otherwise redraws every 10 s (a log
    showed lines 11-20 s apart)."""
    import sys

    interval = BAR_INTERVAL["terminal" if sys.stderr.isatty() else "log"]
    return {"mininterval": interval, "maxinterval": max(10.0, interval)}


class _BrickBar:
    """A ``callback`` for in-memory bricked runs: a tqdm bar of :class:`BrickFigures` (and
    the iteration bar of :func:`fijidecon.cli._run` for other figures, on a terminal)."""

    def __init__(self, label: str, iteration_cb: Any) -> None:
        self.label = label
        self.iteration_cb = iteration_cb
        self.bar = None

    def __call__(self, first: Any, second: Any = None) -> None:
        from .deconvolve import BrickFigures

        if isinstance(first, BrickFigures):
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=first.bricks, desc=self.label, unit="brick", **_bar_timing(),
                                file=click.get_text_stream("stderr"), dynamic_ncols=True)
            self.bar.update(first.brick - self.bar.n)
        elif self.iteration_cb is not None:
            self.iteration_cb(first, second)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------------------------------------- run

#: glibc's M_MMAP_THRESHOLD (mallopt) and the size the CLI fixes it at: arrays above it are mapped
#: and returned to the system when freed.
_M_MMAP_THRESHOLD, MMAP_THRESHOLD = -3, 1 << 20


def fixed_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold at :data:`MMAP_THRESHOLD` (1 MiB) for this process.

    glibc raises the threshold (up to 32 MiB) each time a large block is freed, after which
    arrays of a brick come from the heap and its freed space is not given back: a run in
    bricks then grew beyond its budget (RedLionfish's 160^3 volume, 16 bricks under
    ``--memory-limit 200MB``: 259 MiB peak increment to OME-Zarr, 295 MiB to TIFF; fixed:
    about 220 and 258; the whole-volume run's time unchanged).  False where there is no glibc.
    """
    try:
        import ctypes
        import ctypes.util

        name = ctypes.util.find_library("c")
        return bool(name) and ctypes.CDLL(name).mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    except (OSError, AttributeError):
        return False


def run(cmd: Command, kw: dict[str, Any]) -> None:
    """``fijidecon deconvolve …`` for a command with ``memory_limit`` (see the module docs)."""
    from . import cli, io

    fixed_mmap_threshold()
    out = Path(kw.pop("output_path"))
    overwrite, quiet = kw.pop("overwrite"), kw.pop("quiet")
    axes = kw.pop("axes", None)
    voxel = kw.pop("voxel_size", None)
    psf_voxel = kw.pop("psf_voxel_size", None)
    workers, address = kw.pop("workers", None), kw.pop("scheduler", None)
    resume = bool(kw.pop("resume", False))
    if resume and not io._is_zarr(out):
        raise click.UsageError(f"--resume: only an OME-Zarr output (.zarr) can be resumed (it is written chunk by "
                               f"chunk), not {out.name!r}; give e.g. -o {out.stem}.ome.zarr")
    if workers and address:
        raise click.UsageError("--workers, --scheduler: give one of them (a local cluster, or an existing one)")
    cores = os.cpu_count() or 1
    if workers and workers > MAX_WORKERS_PER_CORE * cores:
        raise click.UsageError(f"--workers: {workers} worker processes for {cores} CPU core(s); at most "
                               f"{MAX_WORKERS_PER_CORE * cores} here (each holds its bricks in memory; more machines: "
                               "--scheduler)")
    values = {p.name: (cli._choice_value(p, kw[p.name]) if p.kind == "choice" else kw[p.name])
              for p in cmd.params if p.kind != "image" and p.api}
    auto_note = cli._auto_maximum(values)
    kwargs = cmd.api_kwargs(values)  # every value checked (memory_limit too) before any pixel is read
    snaps = cli._snapshot_paths(out, values)
    image_path, psf_paths = kw["image"], tuple(kw["psf"]) if isinstance(kw["psf"], tuple) else (kw["psf"],)
    cli.refuse_inputs_as_output(out, {"image": image_path, "psf": psf_paths}, snaps.values())
    io.check_output(out, overwrite=overwrite, sidecar=True)  # refuse before reading or computing anything
    for path in snaps.values():
        io.check_output(path, overwrite=overwrite)
    read_warnings: list[str] = [w for w in [cli._stale_snapshots(out, snaps), _unused_partial(out, resume)] if w]
    space = measure_address_space()  # under ulimit -v: what a lazy run imports is mapped first, then measured
    with cli.held_warnings(read_warnings):
        limit = budget(kwargs.get("memory_limit"))
    with cli.held_warnings(read_warnings):
        cli.refuse_psf_is_image({"image": image_path, "psf": psf_paths})
        lazy_img, cal = _open_lazy(image_path, axes)
    records = [cli.input_record("image", image_path, lazy_img, cal)]
    cal, voxel_warning = cli.with_voxel_size(cal, tuple(lazy_img.shape), voxel, image_path)
    cli.drop_spacing_warnings(read_warnings, voxel)
    with cli.held_warnings(read_warnings):
        psf = cli._read_psfs(psf_paths, cal, tuple(lazy_img.shape), records, psf_voxel)
        cli.refuse_psf_same_content(records)
    io.check_output(out, cal.axes, overwrite=overwrite, sidecar=True, shape=tuple(lazy_img.shape))
    psf_shape = np.shape((psf[0] if isinstance(psf, list) else psf)[0])
    need = whole_need(cmd, kwargs, tuple(lazy_img.shape), lazy_img.dtype, cal.axes, psf_shape)
    # without the 'big' extra a run over the budget is bricked in memory by the core (input and output held)
    lazy = cmd.id in LAZY_COMMANDS and bool(workers or address or io._is_zarr(out) or (need > limit and have_big()))
    if space is not None and space.room == 0:
        refuse_no_address_space(space, _least_ulimit_of_run(_with_client(space, workers), cmd, kwargs, lazy_img,
                                                            cal, psf, need, lazy, workers, not io._is_zarr(out)))
    info = {"memory_limit_bytes": limit, "estimate_whole_bytes": need}
    with cli._collect_notes(quiet) as notes:
        for w in read_warnings:
            notes.warn(w)
        if voxel_warning:
            notes.warn(voxel_warning)
        if auto_note:
            logging.getLogger("fijidecon").info(auto_note)
        if lazy and snaps:
            notes.warn("--snapshot-every: snapshots are not written in a lazy run (bricks on disk, Dask or OME-Zarr); "
                       "only the final result is")
            kwargs["snapshot_every"] = values["snapshot_every"] = 0  # off (0): the run goes on without them
            snaps = {}
        try:
            if lazy:
                why = ("--workers" if workers else "--scheduler" if address else "OME-Zarr output" if io._is_zarr(out)
                       else _lazy_why(need, limit, lazy_img))
                _refuse_lazy_without_big(why, cluster=bool(workers or address))
                _run_lazy(cmd, values, kwargs, lazy_img, cal, psf, records, out, overwrite, quiet, notes,
                          workers, address, limit, info, why, resume, space)
            else:
                _run_in_memory(cmd, values, kwargs, image_path, axes, psf, records, out, overwrite, quiet, notes,
                               info, need > limit, cal, snaps, lazy_img if isinstance(lazy_img, np.ndarray) else None)
        except MemoryError as exc:  # a budget refusal under ulimit -v's default budget: how to get that budget
            if space is None or kwargs.get("memory_limit") is not None or not str(exc).startswith("memory_limit:"):
                raise
            raise with_address_space_remedy(exc, space) from None


def _least_ulimit_of_run(space, cmd, kwargs, lazy_img, cal, psf, need, lazy, workers, tiff_out) -> int:
    """The smallest ``ulimit -v`` (bytes) that runs this input (the refusal under ``ulimit -v`` names it): a
    lazy run's plan with the least budget + Dask graph when it can be lazy (:func:`least_ulimit`), else the
    whole run in memory."""
    whole = space.needed_for(whole_budget(need, tuple(lazy_img.shape), lazy_img.dtype))
    if not (cmd.id in LAZY_COMMANDS and (lazy or have_big())):
        return whole
    vol_axes = "".join(a for a in cal.axes if a in "ZYX")
    vol = tuple(int(lazy_img.shape[cal.axes.index(a)]) for a in vol_axes)
    kernel = kernel_shape(psf, cal, vol_axes, bool(kwargs.get("recenter", True)))
    opts = {k: kwargs[k] for k in _MEMORY_OPTIONS if k in kwargs}
    n_volumes = int(np.prod(lazy_img.shape, dtype=np.int64)) // max(int(np.prod(vol, dtype=np.int64)), 1)
    lazy_need = least_ulimit(space, cmd.id, vol, kernel, opts, 2**20, workers or 1, tiff_out, n_volumes,
                             local=not workers) or whole
    return min(lazy_need, whole) if tiff_out and not workers and not lazy else lazy_need


def have_big() -> bool:
    """Whether the 'big' extra's array libraries (dask, zarr, ome-zarr, tqdm) are installed
    (``--workers``/``--scheduler`` also need dask.distributed: :func:`_refuse_lazy_without_big`)."""
    return _have("dask", "zarr", "ome_zarr", "tqdm")


def _have(*modules: str) -> bool:
    """Whether every module can be imported (found, and not set to None in ``sys.modules``)."""
    import importlib.util

    try:
        return all(importlib.util.find_spec(m) is not None for m in modules)
    except (ImportError, ValueError):  # a module set to None in sys.modules
        return False


_NEED_BIG = "pip install 'fijidecon[big]'"


def _open_lazy(path: str, axes: str | None) -> tuple[Any, Any]:
    """The image lazily (metadata only), or, without the 'big' extra, read whole (a numpy array)."""
    if have_big():
        from .lazy_io import read_lazy

        return read_lazy(path, axes=axes)
    from . import io

    if io._is_zarr(path) or Path(path).is_dir():
        raise click.ClickException(f"image: reading an OME-Zarr needs the 'big' extra: {_NEED_BIG}")
    return io.read_image(path, axes=axes)


def _refuse_lazy_without_big(why: str, cluster: bool = False) -> None:
    """Without the 'big' extra (or, for ``--workers``/``--scheduler``, without dask.distributed) a
    lazy run is refused in one line naming the extra."""
    if not have_big() or (cluster and not _have("distributed")):
        raise click.ClickException(f"this run must be lazy ({why}), which needs the 'big' extra (dask, zarr"
                                   f"{', distributed' if cluster else ''}): {_NEED_BIG}")


def _run_in_memory(cmd, values, kwargs, image_path, axes, psf, records, out, overwrite, quiet, notes, info,
                   over_budget, cal, snaps, arr: np.ndarray | None = None) -> None:
    """``arr``: the image already read whole (no 'big' extra), else it is read now."""
    import sys

    from . import cli, io

    if arr is None:
        again: list[str] = []
        with cli.held_warnings(again):
            arr, _ = io.read_image(image_path, axes=axes)  # cal: the file's, with --voxel-size applied
        for w in again:  # what opening the file lazily could not see (said once; Z spacing: decided there)
            if io.SPACING_TAKEN_AS_1 not in w:
                notes.warn(w)
    iteration_cb = _iteration_bar(cmd, kwargs) if (not quiet and sys.stderr.isatty()) else None
    bar = _BrickBar(cmd.title, iteration_cb) if (not quiet and over_budget) else None
    callback = bar if bar is not None else iteration_cb
    t0 = time.perf_counter()
    try:
        result, image, ocal = cli.run_command(cmd, values, {"image": (arr, cal), "psf": psf}, callback=callback,
                                          voxel_size_from_calibration=True)
    finally:
        if bar is not None:
            bar.close()
        if iteration_cb is not None:
            iteration_cb.close()
    del arr
    written: list[Path] = []
    try:  # the snapshots first, so that Ctrl-C still stops them; a run that fails leaves none of its files
        cli._write_snapshots(result, snaps, ocal, overwrite, quiet, written)
        line = _finish(cmd, kwargs, records, out, image, ocal, result, notes, t0, overwrite, info, snapshots=written)
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    if not quiet:
        click.echo(line, err=True)


def _iteration_bar(cmd: Command, kwargs: dict[str, Any]) -> Any:
    """The click bar of iterations of :func:`fijidecon.cli._run` (a terminal only)."""
    import sys

    total = cmd.extras.get("progress")
    if not total or (kwargs.get(total) or 0) <= 0:
        return None

    class Bar:
        bar = None

        def __call__(self, first: Any, second: Any = None) -> None:
            if isinstance(first, (int, np.integer)):
                it, figure = int(first), float(second)
            else:
                it, figure = int(first.iteration), float(getattr(first, "relative_change", float("nan")))
            if self.bar is None:
                self.bar = click.progressbar(length=int(kwargs[total]), label=cmd.title, file=sys.stderr)
                self.bar.__enter__()
            self.bar.label = f"{cmd.title} (change {figure:.4g})"
            self.bar.update(it - self.bar.pos)

        def close(self) -> None:
            if self.bar is not None:
                self.bar.__exit__(None, None, None)

    return Bar()


def _input_chunks(image: Any, axes: str, vol_axes: str) -> tuple[int, ...] | None:
    """The input's largest dask chunk along each volume axis when it is chunked within its planes (an
    OME-Zarr store: each brick reads the chunks it touches, :func:`_band`), else ``None`` (TIFF, ``.npy``
    and stores of whole planes are read in slabs of whole planes, :func:`_slabs`)."""
    chunks = getattr(image, "chunks", None)
    if chunks is None or len(vol_axes) != 3:
        return None
    got = tuple(max(chunks[axes.index(a)]) for a in vol_axes)
    planes = tuple(int(image.shape[axes.index(a)]) for a in vol_axes[1:])
    return None if got[1:] == planes else got


def _run_lazy(cmd, values, kwargs, lazy_img, cal, psf, records, out, overwrite, quiet, notes, workers, address,
              limit, info, why, resume: bool = False, space: Any = None) -> None:
    from . import cli, io

    t0 = time.perf_counter()
    explicit = kwargs.get("memory_limit") is not None
    vol_axes = "".join(a for a in cal.axes if a in "ZYX")
    vol = tuple(int(lazy_img.shape[cal.axes.index(a)]) for a in vol_axes)
    kernel = kernel_shape(psf, cal, vol_axes, bool(kwargs.get("recenter", True)))
    opts = {k: kwargs[k] for k in _MEMORY_OPTIONS if k in kwargs}
    tiff_out = not io._is_zarr(out)
    in_chunks = _input_chunks(lazy_img, cal.axes, vol_axes)
    n_volumes = int(np.prod(lazy_img.shape, dtype=np.int64)) // max(int(np.prod(vol, dtype=np.int64)), 1)
    space = None if explicit else space  # a budget given is planned as given (with a warning when over the room)
    if space is not None and not resume and not address:  # ulimit -v: a budget no brick fits names the limit to set
        # (with --workers before the cluster starts, counting its client: 7-9 s saved)
        first = _best_plan(cmd.id, vol, kernel, _bricks_halo(kernel, cmd.id), opts, limit, workers or 1, tiff_out,
                           in_chunks)
        if first is None or workers:
            check_graph_room(_with_client(space, workers), cmd.id, vol, kernel, first[1] if first else None, opts,
                             limit, workers or 1, tiff_out, n_volumes, local=not workers)
    if workers and not resume:  # a local cluster: a budget no brick fits is refused before starting it (7-9 s)
        plan_bricks(cmd.id, vol, kernel, opts, limit, workers, tiff_out, None, in_chunks=in_chunks)
    with scheduler(workers, address) as sched:
        # the budget: what the run adds to this process (Python and its imports not counted), shared by
        # the worker processes of --workers; with --scheduler, each worker's (less what it holds now)
        if address:
            per_worker = limit if explicit else (sched.per_worker or limit)
            budget_now = per_worker - sched.held
            # the sidecar's budget is the workers' (it said this machine's default, 17 GB, for 4 GB workers)
            info.update(memory_limit_bytes=int(per_worker), memory_limit_of="each worker")
        else:
            budget_now = limit
        whole = whole_budget(info["estimate_whole_bytes"], tuple(lazy_img.shape), lazy_img.dtype)
        key = resume_key(cmd, values, records) if resume else None  # once: a folder input is walked for it
        plan_args = (vol, kernel, opts, budget_now, sched.concurrency, tiff_out, sched.held if address else 0,
                     in_chunks)
        prior = _prior_plan(cmd, values, records, out, key, plan_args) if resume else None
        core, halo, room = prior or plan_bricks(cmd.id, vol, kernel, opts, budget_now, sched.concurrency, tiff_out,
                                                whole if tiff_out and not (workers or address) else None,
                                                held=sched.held if address else 0, in_chunks=in_chunks)
        info.update(brick_core=list(core), halo=list(halo), brick_budget_bytes=room, scheduler=sched.description)
        if space is not None and (workers or address):  # the client's threads and connections are mapped now
            from .deconvolve import _memory

            space = _memory.address_space()
        check_graph_room(space, cmd.id, vol, kernel, core, opts, budget_now, sched.concurrency, tiff_out, n_volumes,
                         local=not (workers or address))
        if _costly(vol, core, halo):  # the budget that runs it as one brick (or in memory), as this run would
            one = _one_brick_limit(cmd.id, vol, kernel, halo, opts, budget_now, sched.concurrency, tiff_out,
                                   in_chunks)
            _warn_costly(cmd.id, vol, core, halo, min(one, whole) if tiff_out and not (workers or address) else one)
        lazy_note = (f"lazy run ({why}) on {sched.description}: bricks of {'x'.join(map(str, core))} voxels + halo "
                     f"{'x'.join(map(str, halo))}, a budget of {_size(room)} per brick")
        notes.notes.append(lazy_note)  # the sidecar's notes too
        if not quiet:
            click.echo(f"Note: {lazy_note}", err=True)
        result, image, ocal = cli.run_command(cmd, dict(values, memory_limit=room),
                                          {"image": (lazy_img, cal),
                                           "psf": psf},
                                          voxel_size_from_calibration=True, extra={"bricks": core, "halo": halo})
        for n in getattr(result, "notes", []) or []:
            if "brick" in str(n) and str(n) not in notes.notes:
                notes.notes.append(str(n))
                if not quiet:
                    click.echo(f"Note: {n}", err=True)
        t1 = time.perf_counter()
        ticked = with_ticks(image, sched)
        with brick_bar(int(ticked.npartitions), sched, quiet, cmd.title) as set_total:
            resumable = {} if not resume else {
                "resume": with_bricks(key, core, halo), "report": {},
                "on_start": lambda rep: set_total(rep["bricks_to_compute"]) if rep["kept"] else None,
                "resume_info": {"key": key, "core": list(core), "halo": list(halo), "budget": int(budget_now),
                                **_made_from(cmd, values, records)}}
            line = _finish(cmd, kwargs, records, out, ticked, ocal, result, notes, t0, overwrite, info,
                           setup_seconds=t1 - t0, resumable=resumable)
    if not quiet:
        click.echo(line, err=True)


def _unused_partial(out: Path, resume: bool) -> str | None:
    """A run without ``--resume`` whose output has an earlier run's resumable partial: said (it starts
    from the beginning, and removes that partial once it has written its output)."""
    from . import io, lazy_io

    old = lazy_io.resumable_path(out)
    if resume or not io._is_zarr(out) or not old.exists():
        return None
    return (f"--resume: not given, so this run starts from the beginning; the partial output an earlier run kept "
            f"({old.name}) is removed once this one is written (stop now and run the same command with --resume to "
            "go on from it)")


def _made_from(cmd: Command, values: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """What a resumable partial keeps of the run that made it, to say what differs on a refused
    ``--resume``: the version, the command, its values (not the budget) and each input's path and checksum."""
    from . import io

    return {"version": __version__, "command": cmd.id,
            "values": io.jsonable({k: v for k, v in values.items() if k != "memory_limit"}),
            "inputs": [{k: r.get(k) for k in ("parameter", "path", "sha256")} for r in records]}


def _what_differs(then: dict[str, Any], now: dict[str, Any]) -> str:
    """The first difference between two :func:`_made_from` records, in words ("" when none is known)."""
    if then.get("version") != now["version"]:
        return f"fijidecon {then.get('version')} then, {now['version']} now"
    if then.get("command") != now["command"]:
        return f"command {then.get('command')} then, {now['command']} now"
    old = then.get("values") or {}
    for k, v in now["values"].items():
        if k in old and old[k] != v:
            return f"--{k.replace('_', '-')} {old[k]} then, {v} now"
    for a, b in zip(then.get("inputs") or [], now["inputs"]):
        if a != b:
            why = "another file" if a.get("path") != b.get("path") else "its content changed"
            return f"{b.get('parameter')} {b.get('path')}: {why}"
    return ""


def _prior_plan(cmd: Command, values: dict[str, Any], records: list[dict[str, Any]], out: Path, key: str,
                plan_args: tuple) -> tuple[tuple[int, ...], tuple[int, ...], int] | None:
    """``--resume``: the bricks (core, halo, room) the output's partial was begun with, so that a
    rerun under another budget (the default is 70 % of the memory free *now*) or ``--workers``
    goes on with the same bricks; ``None`` when there is no partial.  ``key``: this run's
    :func:`resume_key`; ``plan_args``: (vol, kernel,
    opts, budget, concurrency, tiff_out).  Refuses, before computing, a partial made by another
    command, inputs or parameters (it would be discarded), one that cannot be read, and bricks
    that no longer fit the budget."""
    from . import lazy_io

    try:
        info = lazy_io.resume_info(out)
    except OSError as exc:
        raise click.ClickException(str(exc)) from None
    if info is None:
        return None
    name = lazy_io.resumable_path(out).name
    if info.get("key") != key:
        what = _what_differs(info, _made_from(cmd, values, records))
        raise click.ClickException(f"--resume: the partial output {name} was made with other inputs or parameters (or "
                                   f"another version of fijidecon){': ' + what if what else ''}; run the command "
                                   "that made it to go on, or run without --resume to start again (the partial is "
                                   "then replaced)")
    vol, kernel, opts, budget, concurrency, tiff_out, *rest = plan_args
    held = int(rest[0]) if rest else 0  # what a scheduler's workers hold already (budget: theirs less it)
    in_chunks = rest[1] if len(rest) > 1 else None
    core, halo = tuple(info["core"]), tuple(info["halo"])
    room = room_for(cmd.id, vol, kernel, core, halo, opts, budget, concurrency, tiff_out, in_chunks)
    if room is None:
        began = int(info.get("budget", 0))
        # the budget those bricks need with this run's workers (each holds a brick) and what the workers hold
        need = _least_budget(lambda b: room_for(cmd.id, vol, kernel, core, halo, opts, b, concurrency, tiff_out,
                                                in_chunks)
                             is not None, budget) + held
        who = (f" with this run's {concurrency} workers computing bricks at once" if concurrency > 1 else "") + (
            f" and the {_size(held)} its scheduler's workers hold" if held else "")
        raise click.ClickException(f"--resume: the partial output {name} was computed in bricks of "
                                   f"{'x'.join(map(str, core))} + halo {'x'.join(map(str, halo))}, which do not fit "
                                   f"a budget of {_size(budget + held, 'down')} (it began with "
                                   f"{_size(began, 'down')}); give "
                                   f"--memory-limit {_validate.budget_option(need)} or more to go on{who}")
    return core, halo, room


def resume_key(cmd: Command, values: dict[str, Any], records: list[dict[str, Any]]) -> str:
    """What a resumable output was made from, as a SHA-256: the package version, the command,
    its parameters (not the memory budget) and the inputs (checksums; a folder by its files'
    sizes and times).  The partial's own key adds the bricks (:func:`with_bricks`)."""
    import hashlib

    from . import io

    inputs = [{k: r.get(k) for k in ("parameter", "path", "sha256", "shape", "dtype", "calibration", "channel")}
              | ({"files": _folder_stamp(r["path"])} if r.get("sha256") is None else {}) for r in records]
    payload = {"version": __version__, "command": cmd.id, "inputs": inputs,
               "values": {k: v for k, v in values.items() if k != "memory_limit"}}
    text = json.dumps(io.jsonable(payload), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def with_bricks(key: str, core: tuple[int, ...], halo: tuple[int, ...]) -> str:
    """A :func:`resume_key` and the bricks (core, halo) as one SHA-256: the key a partial is
    written with (its chunks depend on the bricks too)."""
    import hashlib

    return hashlib.sha256(json.dumps([key, list(core), list(halo)]).encode()).hexdigest()


def _folder_stamp(path: str) -> list[int]:
    """A folder input (OME-Zarr) as [files, bytes, newest modification time in ns]."""
    n = size = newest = 0
    for root, _, files in os.walk(path):
        for f in files:
            st = os.stat(os.path.join(root, f))
            n, size, newest = n + 1, size + st.st_size, max(newest, st.st_mtime_ns)
    return [n, size, newest]


def _finish(cmd, kwargs, records, out, image, ocal, result, notes, t0, overwrite, info,
            setup_seconds: float | None = None, resumable: dict[str, Any] | None = None,
            snapshots: list[Path] | None = None) -> str:
    """Write the image and its sidecar (both or neither); returns the one-line summary.
    ``snapshots``: the snapshot files this run wrote, listed in the sidecar's ``output``."""
    from . import cli, io

    t1 = time.perf_counter()
    record = cli._record(cmd, kwargs, records, out, image, ocal, result, notes, None, t1 - t0)
    record["memory"] = info
    if snapshots:
        record["output"]["snapshots"] = [p.name for p in snapshots]
    lazy = hasattr(image, "__dask_graph__")

    def with_write_time(seconds: float) -> dict[str, Any]:
        if lazy:  # the bricks are computed while writing
            record["timings_s"] = {"setup": setup_seconds, "compute_and_write": seconds}
        else:
            record["timings_s"]["write"] = seconds
        if resumable:
            record["resume"] = dict(resumable["report"])
        return record

    description = {"fijidecon": __version__, "command": cmd.title}
    if resumable:
        from .lazy_io import write_big_and_sidecar

        write_big_and_sidecar(out, image, ocal, with_write_time, overwrite=overwrite, description=description,
                              **resumable)
    else:
        io.write_image_and_sidecar(out, image, ocal, with_write_time, overwrite=overwrite, description=description)
    cli.output_in_place()
    extra = cli._iterations_text(record["result"]) + cli._wiener_text(result)
    shape, axes = io.stored_layout(out, tuple(image.shape), ocal.axes)  # as in the file (NGFF, ImageJ or own order)
    return f"wrote {out} {shape} {axes} {image.dtype}{extra} in {time.perf_counter() - t0:.2f} s"
