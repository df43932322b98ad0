"""Bricked deconvolution: volumes bigger than a memory budget, and Dask arrays.

A volume is cut into *bricks* along Z, Y and X.  Each brick is read with a *halo*
(extra voxels on every side, derived from the PSF support), deconvolved on its own with
the method's edge model - non-circulant edges for Richardson-Lucy, so the brick's
border is treated as "data unknown beyond", not as a wall - and only its core is kept.
Cores tile the volume without overlap, so bricks can be computed in any order, in
parallel, and written straight into chunked files.

Everything a whole-volume run decides from the whole data is decided once per volume
and passed to every brick (:class:`Decisions`): the data's mean (Richardson-Lucy's scale
and start level), the number of iterations when a stopping rule is on and the Wiener
regularization - the last two on the central brick (the *pilot*), whose result is kept.

Two drivers share the plan and the per-brick function:

* :func:`run_numpy` - an in-memory volume, bricks one after the other (the working set is
  one brick), the output assembled in a float32 array;
* :func:`lazy` - a ``dask.array.Array`` (any axes, any chunks): ``map_overlap`` with the
  halo as depth, one task per brick and per (T, C) volume, on whatever scheduler computes
  it (threads, processes, ``dask.distributed``).

The halo trades accuracy for work: ``benchmarks/scale.py`` prints the difference to the
whole-volume run for several halos.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .. import _validate
from ..errors import InputError, InputTypeError, ResourceError

#: Default halo, in units of the prepared PSF's full width per axis.  1.5: on real data (dapi_001
#: with a 15x31x31 PSF, bricks of 20x48x48, ``benchmarks/scale.py --halo``) one width left 0.4-1.1 %
#: rel L2 and up to 6 % of the maximum (momentum, 60 iterations) against the whole volume; 1.5 widths
#: 0.14-0.15 % and at most 0.53 %; plain RL up to 0.61 % / 2.5 % -> 0.075 % / 0.31 %.
HALO_WIDTHS = 1.5
#: Bricks are never smaller than this core size per axis (or the volume).
MIN_CORE = 16


class CancelledError(RuntimeError):
    """A bricked run was cancelled by its callback (nothing is returned or written)."""


@dataclass(frozen=True)
class BrickFigures:
    """What a bricked run reports after each brick (the ``callback`` argument).

    Attributes
    ----------
    brick, bricks:
        Bricks done so far (all volumes), and in all.
    seconds:
        Wall time since the start.
    eta_seconds:
        Estimated time left (``seconds`` per brick so far times the bricks left).
    """

    brick: int
    bricks: int
    seconds: float

    @property
    def eta_seconds(self) -> float:
        return self.seconds / self.brick * (self.bricks - self.brick) if self.brick else math.inf

    # the fields the CLI progress bars read from iteration figures
    @property
    def iteration(self) -> int:
        return self.brick


@dataclass(frozen=True)
class Brick:
    """One brick: its ``core`` (what it contributes) and ``outer`` region (core + halo,
    clipped to the volume), both as slices of the volume; ``inner`` is the core within
    ``outer``."""

    index: tuple[int, ...]
    core: tuple[slice, ...]
    outer: tuple[slice, ...]

    @property
    def inner(self) -> tuple[slice, ...]:
        return tuple(slice(c.start - o.start, c.stop - o.start) for c, o in zip(self.core, self.outer))

    @property
    def outer_shape(self) -> tuple[int, ...]:
        return tuple(o.stop - o.start for o in self.outer)

    def place(self, shape: Sequence[int]) -> tuple[tuple[int, int, int], ...]:
        """Per axis ``(start, stop, n)`` of the outer region in a volume of ``shape`` (see ``Place``)."""
        return tuple((o.start, o.stop, int(n)) for o, n in zip(self.outer, shape))


@dataclass(frozen=True)
class Plan:
    """Bricks of a volume of ``shape``: cores of ``core`` voxels (the last ones smaller),
    read with ``halo`` voxels on each side.  ``merge_thin`` (Dask runs): along each axis a last
    core thinner than the halo is merged into the one before (Dask's ``map_overlap`` needs
    every chunk at least as thick as its overlap, and would otherwise merge chunks itself)."""

    shape: tuple[int, ...]
    core: tuple[int, ...]
    halo: tuple[int, ...]
    merge_thin: bool = False

    def sizes(self, axis: int) -> list[int]:
        """The core sizes of the bricks along ``axis``."""
        n, c, h = self.shape[axis], self.core[axis], self.halo[axis]
        out = [c] * (n // c) + ([n % c] if n % c else [])
        if self.merge_thin and len(out) > 1 and out[-1] < h:
            out[-2:] = [out[-2] + out[-1]]
        return out

    @property
    def counts(self) -> tuple[int, ...]:
        return tuple(len(self.sizes(i)) for i in range(len(self.shape)))

    @property
    def n(self) -> int:
        return int(np.prod(self.counts))

    @property
    def outer(self) -> tuple[int, ...]:
        """The largest outer (core + 2 halo) shape of a brick."""
        return tuple(min(n, max(self.sizes(i)) + 2 * h) for i, (n, h) in enumerate(zip(self.shape, self.halo)))

    def bricks(self) -> list[Brick]:
        starts = [np.concatenate([[0], np.cumsum(self.sizes(i))]).astype(int) for i in range(len(self.shape))]
        out = []
        for idx in np.ndindex(*self.counts):
            core, outer = [], []
            for i, n, h, st in zip(idx, self.shape, self.halo, starts):
                a, b = int(st[i]), int(st[i + 1])
                core.append(slice(a, b))
                outer.append(slice(max(a - h, 0), min(b + h, n)))
            out.append(Brick(tuple(int(i) for i in idx), tuple(core), tuple(outer)))
        return out

    def pilot(self) -> Brick:
        """The central brick (global decisions are taken on it)."""
        mid = tuple(k // 2 for k in self.counts)
        return next(b for b in self.bricks() if b.index == mid)

    def describe(self) -> str:
        if self.n == 1:
            return f"not split: one brick per volume ({'x'.join(map(str, self.shape))} voxels)"
        return (f"{self.n} brick(s) of {'x'.join(map(str, self.core))} voxels "
                f"({'x'.join(map(str, self.counts))}) with a halo of {'x'.join(map(str, self.halo))}")


#: Methods whose bricks are exact with one PSF width of halo (a convolution needs half of it).
EXACT_WITH_ONE_WIDTH = ("convolve",)


def default_halo(kernel_shape: Sequence[int], method: str = "") -> tuple[int, ...]:
    """The halo for a prepared PSF: :data:`HALO_WIDTHS` times its full width per axis (one width for
    ``convolve``, exact with it; 0 for size 1)."""
    widths = 1.0 if method in EXACT_WITH_ONE_WIDTH else HALO_WIDTHS
    return tuple(int(math.ceil(widths * k)) if k > 1 else 0 for k in kernel_shape)


def check_halo(halo: Any, ndim: int) -> tuple[int, ...] | None:
    from .. import _validate

    if halo is None:
        return None
    if isinstance(halo, (int, np.integer)) and not isinstance(halo, bool):
        halo = (int(halo),) * ndim
    if isinstance(halo, (str, bytes)) or not isinstance(halo, Sequence) or len(halo) != ndim:
        raise InputTypeError(f"halo: expected {ndim} whole numbers >= 0 (or one for every axis), got "
                             f"{_validate.got(halo)}")
    return tuple(_validate.check_int(f"halo[{i}]", h, 0) for i, h in enumerate(halo))


def thinnest_core(n: int, halo: int) -> int:
    """The thinnest core planned along an axis of ``n`` voxels: ``MIN_CORE``, and in Dask runs
    (``halo`` given) as thick as the halo (``map_overlap`` merges thinner chunks itself)."""
    return min(int(n), max(MIN_CORE, int(halo)))


class NoBrickFits(MemoryError):
    """Even the smallest brick (``core`` voxels, ``halo`` each side: ``outer`` within the volume) does
    not fit; ``wide``: the axes the halo spans (bricks there save nothing)."""

    def __init__(self, core: tuple[int, ...], halo: tuple[int, ...], outer: tuple[int, ...],
                 wide: tuple[int, ...]) -> None:
        super().__init__(f"even the smallest brick does not fit the memory budget: a core of {_x(core)} voxels with "
                         f"a halo of {_x(halo)}")
        self.core, self.halo, self.outer, self.wide = core, halo, outer, wide


def _x(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))


def make_plan(shape: Sequence[int], halo: Sequence[int], fits: Callable[[tuple[int, ...]], bool],
              core: Sequence[int] | None = None, core_at_least_halo: bool = False) -> Plan:
    """The plan that fits (``fits(outer_shape)``) with the least work, or the given ``core``.

    Candidate cores are the volume halved 0, 1, 2, … times along each axis (down to
    ``MIN_CORE``, or the halo: see ``core_at_least_halo``); of those whose brick fits, the one
    computing the fewest voxels in all (bricks x outer shape: a halo is computed once per
    brick), then the fewest bricks.  Halving the largest axis first until a brick fits made
    thin cores with wide halos: RedLionfish's 160³ with its 61x32x32 PSF under 150 MB ran
    512 bricks, 77x the whole volume's time.  ``core_at_least_halo`` (Dask runs): no core
    thinner than its halo along a split axis (Dask's ``map_overlap`` would merge such chunks
    into bigger bricks than planned).

    Raises
    ------
    MemoryError
        When even the smallest bricks (``MIN_CORE`` voxels per axis) do not fit.
    """
    shape = tuple(int(n) for n in shape)
    if core is not None:
        return Plan(shape, tuple(max(1, min(int(c), n)) for c, n in zip(core, shape)), tuple(halo), core_at_least_halo)
    floor = [thinnest_core(n, h if core_at_least_halo else 0) for n, h in zip(shape, halo)]
    best = None
    for cur in itertools.product(*(_halvings(n, f) for n, f in zip(shape, floor))):
        plan = Plan(shape, cur, tuple(halo), core_at_least_halo)
        cost = (plan.n * int(np.prod(plan.outer, dtype=np.int64)), plan.n)
        if (best is None or cost < best[0]) and fits(plan.outer):
            best = (cost, plan)
    if best is None:
        small = Plan(shape, tuple(floor), tuple(halo), core_at_least_halo)
        raise NoBrickFits(tuple(floor), tuple(halo), small.outer,
                          tuple(i for i, (h, n) in enumerate(zip(halo, shape)) if 2 * h >= n))
    return best[1]


def _halvings(n: int, floor: int) -> list[int]:
    """``n``, then ``n`` halved (rounded up) while not below ``floor``."""
    out = [n]
    while out[-1] > floor and max(floor, math.ceil(out[-1] / 2)) < out[-1]:
        out.append(max(floor, math.ceil(out[-1] / 2)))
    return out


@dataclass
class Decisions:
    """Values decided once per volume and given to every brick (see the module docstring)."""

    mean: float = 0.0
    iterations: int | None = None
    regularization: float | None = None
    extra: dict = field(default_factory=dict)


#: A brick's place in its volume: per axis ``(start, stop, n)`` of its outer region in a volume of ``n``
#: voxels (``None``: a whole volume).  Methods that pad a brick to its own grid give the sides at the
#: volume's border the whole run's margin (see ``_edges.geometry``).
Place = tuple[tuple[int, int, int], ...]

#: fn(outer data (float32, contiguous), decisions, place) -> result of the outer shape (float32)
BrickFn = Callable[[np.ndarray, Decisions, "Place | None"], np.ndarray]


def run_numpy(volume: np.ndarray, plan: Plan, fn: BrickFn, decisions: Decisions, *,
              done: list[int] | None = None, total: int | None = None, t0: float | None = None,
              callback: Callable[[BrickFigures, None], Any] | None = None,
              pilot_result: tuple[Brick, np.ndarray] | None = None) -> np.ndarray:
    """Every brick of an in-memory volume in turn; returns the assembled float32 volume.

    ``done``/``total``/``t0`` count bricks across volumes for the callback, called as
    ``callback(BrickFigures, None)`` (the methods' two-argument form); returning ``True`` raises
    :class:`CancelledError`."""
    out = np.empty(volume.shape, np.float32)
    done = [0] if done is None else done
    total = plan.n if total is None else total
    t0 = time.perf_counter() if t0 is None else t0
    for b in plan.bricks():
        if pilot_result is not None and b.index == pilot_result[0].index:
            res = pilot_result[1]
        else:
            res = fn(np.ascontiguousarray(volume[b.outer], dtype=np.float32), decisions, b.place(volume.shape))
        out[b.core] = res[b.inner]
        done[0] += 1
        if callback is not None and callback(BrickFigures(done[0], total, time.perf_counter() - t0), None) is True:
            raise CancelledError(f"cancelled after {done[0]} of {total} bricks")
    return out


def is_dask(obj: Any) -> bool:
    return type(obj).__module__.startswith("dask.") and type(obj).__name__ == "Array"


class _LocalOnly:
    """A value the tasks of a local (threaded) Dask scheduler can use.  Pickled - for a process or
    distributed scheduler - it arrives empty, and the task computes what it would have reused
    (a brick's result is never shipped with every task of the graph)."""

    def __init__(self, value: Any):
        self.value = value

    def __reduce__(self) -> tuple:
        return (_LocalOnly, (None,))


def _split_planes(vol: Any, plan: Plan) -> Any:
    """A volume chunked in whole planes (a TIFF or ``.npy`` read lazily) with its planes split into the
    bricks' Y, X cores, so that Dask builds each brick from views of the planes it needs (rechunking whole
    planes straight to bricks copies the input slab once more, measured: twice the slab).  Done here, not
    before the run's one pass over the data: that pass over 8192 such pieces (128x384x384 in bricks of
    16x48x48) held 206 MiB of graph for a 75 MB file and took 10 s, over its 128 planes 19 MiB and 0.6 s."""
    if vol.ndim != 3 or max(vol.chunks[0]) > 1 or vol.numblocks[1:] != (1, 1):
        return vol  # 2D, or chunked in Z or laterally already (OME-Zarr): the rechunk is cheap
    return vol.rechunk((1,) + tuple(max(plan.sizes(i)) for i in (1, 2)))


def lazy(dvol: Any, plan: Plan, fn: BrickFn, decisions: Decisions,
         pilot_result: tuple[Brick, np.ndarray] | None = None) -> Any:
    """A lazy ``dask.array.Array``: ``fn`` on every brick of a dask volume (``map_overlap``
    with the halo as depth, no padding beyond the volume's border, cores kept).
    ``pilot_result``: the central brick, computed already to take the decisions, and its
    result, used once for that brick instead of computing it again (threaded scheduler)."""
    import dask.array as da

    vol = _split_planes(dvol.astype(np.float32), plan).rechunk(tuple(tuple(plan.sizes(i)) for i in
                                                                      range(len(plan.shape))))
    held = _LocalOnly(pilot_result)
    bricks = {b.index: b for b in plan.bricks()}

    def one(block: np.ndarray, block_id: tuple[int, ...] | None = None) -> np.ndarray:
        known = held.value
        if known is not None and block_id is not None and tuple(block_id) == known[0].index \
                and known[1].shape == block.shape:
            held.value = None  # once: its memory goes with it
            return known[1]
        b = bricks.get(tuple(block_id)) if block_id is not None else None
        place = b.place(plan.shape) if b is not None and b.outer_shape == block.shape else None
        return fn(np.ascontiguousarray(block, dtype=np.float32), decisions, place)

    # no overlap along an axis the bricks do not split: the brick already spans it (and Dask refuses a depth
    # beyond the array, as with a PSF deeper than a thin stack)
    depth = {i: (h if len(plan.sizes(i)) > 1 else 0) for i, h in enumerate(plan.halo)}
    return da.map_overlap(one, vol, depth=depth, boundary="none", trim=True,
                          dtype=np.float32, meta=np.empty((0,) * vol.ndim, np.float32))


# -- memory budget ----------------------------------------------------------------------------------

def budget(memory_limit: Any) -> int | None:
    """The memory budget in bytes: ``None`` -> the default (a safe fraction of the memory
    available now), ``False`` -> no limit (``None``), a number of bytes or a text such as
    ``"1GB"``."""
    from . import _memory

    if memory_limit is False:
        return None
    if memory_limit is None:
        return int(_memory.default_memory_limit())
    return int(_memory.parse_memory(memory_limit))


def estimate(method: str, shape: Sequence[int], kernel_shape: Sequence[int], **options: Any) -> int:
    """Bytes one volume (or brick) of ``shape`` needs (see :func:`fijidecon.deconvolve.estimate_memory`)."""
    from . import _memory

    return int(_memory.estimate_memory(method, tuple(shape), tuple(kernel_shape), **options))


def plan_volume(method: str, shape: Sequence[int], kernel_shape: Sequence[int], options: dict, limit: int | None,
                resident: int, core: Sequence[int] | None, halo: Sequence[int] | None,
                lazy: bool = False) -> Plan | None:
    """The brick plan of one volume, or ``None`` when the whole volume fits (and no ``core``
    was asked for).  ``resident``: bytes already held for the run (input, output).
    ``lazy``: a Dask run (cores at least as thick as the halo along split axes).

    Raises
    ------
    MemoryError
        With the estimate, the budget and the remedy, when even one brick does not fit.
    """
    h = tuple(halo) if halo is not None else default_halo(kernel_shape, method)
    if core is None:
        need = estimate(method, shape, kernel_shape, **options)
        if limit is None or need + resident <= limit:
            return None
    room = None if limit is None else limit - resident

    def fits(outer: tuple[int, ...]) -> bool:
        return room is None or estimate(method, outer, kernel_shape, **options) <= room

    if lazy and core is not None:
        check_core_vs_halo(tuple(int(n) for n in shape), core, h)
    try:
        plan = make_plan(shape, h, fits, core, core_at_least_halo=lazy)
    except NoBrickFits as e:
        raise ResourceError(_too_small(method, shape, kernel_shape, options, limit or 0, resident, e)) from None
    if core is None or not lazy:  # lazy runs with bricks= are the CLI's own plans: it says so itself
        need = need if core is None else estimate(method, shape, kernel_shape, **options)
        _warn_costly(plan, method, need + resident, "memory_limit" if core is None else "bricks")
    return plan


#: A plan computing this many times the volume's voxels (halos computed once per brick) warns.
COSTLY_PLAN = 4.0


def _warn_costly(plan: Plan, method: str, whole_need: int, who: str = "memory_limit") -> None:
    """``who``: ``"bricks"`` when ``bricks=`` made the plan (then a budget alone does not run it whole)."""
    budget = f"memory_limit {_validate.budget_option(whole_need)}"
    warn_costly(plan, method, budget if who != "bricks" else f"{budget} without bricks=", who)


def warn_costly(plan: Plan, method: str, whole_budget: str | None, who: str) -> None:
    """A warning when the halos make the bricks compute :data:`COSTLY_PLAN` times the volume's
    voxels or more (a PSF about as wide as the volume: bricks save little memory at a high price);
    ``whole_budget`` (e.g. ``"memory_limit 323MiB"``) is said to run it whole."""
    ratio = plan.n * float(np.prod(plan.outer)) / float(np.prod(plan.shape))
    if ratio >= COSTLY_PLAN:
        whole = f"{whole_budget} runs it whole, or " if whole_budget else ""
        _validate.warn(f"{who}: {method} in {plan.n} bricks computes {ratio:.0f}x the volume's voxels (each "
                       f"brick with a halo of {'x'.join(map(str, plan.halo))}, from the PSF's size), so it takes about "
                       f"that much longer; {whole}crop the PSF to where it is above the noise", RuntimeWarning)


def check_core_vs_halo(shape: tuple[int, ...], core: Sequence[int], halo: Sequence[int]) -> None:
    """Dask runs: a one-line error when a brick core is thinner than its halo along a split axis."""
    for i, (n, c, h) in enumerate(zip(shape, core, halo)):
        if int(c) < n and int(c) < h:
            raise InputError(f"bricks: a Dask run needs bricks at least as thick as the halo along each split axis, "
                             f"but axis {i} has {int(c)} < halo {h} (Dask would merge them into bigger bricks than "
                             f"planned); use bricks of {h} or more there, or a smaller halo")


def _too_small(method: str, shape: Sequence[int], kernel_shape: Sequence[int], options: dict, limit: int,
               resident: int, e: NoBrickFits) -> str:
    """The one-line refusal of a ``memory_limit`` no brick fits: what the smallest brick needs, the
    smallest budget that runs (that brick, or the whole volume if less), and what else helps."""
    whole = estimate(method, shape, kernel_shape, **options)
    smallest = estimate(method, e.outer, kernel_shape, **options)
    crop = "a PSF cropped closer" + ("" if method == "iterative-deconvolve-3d" else " (a higher psf_threshold)")
    letters = "ZYX"[-len(shape):]  # the volume's axes ('axis 0, 2' read as numpy's to a fresh user)
    wide = (f"; the halo spans the volume along {', '.join(letters[i] for i in e.wide)}, so bricks save little there: "
            f"{crop} makes it thinner" if e.wide else "")
    lazy = ("" if method == "iterative-deconvolve-3d" else  # it has no Dask path
            "; or, from a file, use the CLI with an OME-Zarr output (it holds only the bricks)")
    mib = _validate.format_bytes
    return (f"memory_limit: {mib(limit, 'down')} is too small for {method} on {_x(shape)}: the input and output "
            f"hold {mib(resident)}, and even the smallest brick (a {_x(e.core)} core with a {_x(e.halo)} halo from "
            f"the PSF's size: {_x(e.outer)} within the volume) needs {mib(smallest)} more (the whole volume "
            f"{mib(whole)}); give memory_limit of at least {mib(resident + min(smallest, whole), 'up')}{wide}{lazy}")


def check_core(core: Any, ndim: int) -> tuple[int, ...] | None:
    """``bricks=``: the core size of a brick per axis, or ``None`` (automatic)."""
    from .. import _validate

    if core is None:
        return None
    if isinstance(core, (str, bytes)) or not isinstance(core, Sequence) or len(core) != ndim:
        raise InputTypeError(f"bricks: expected the brick size as {ndim} whole numbers (Z, Y, X order), got "
                        f"{_validate.got(core)}")
    return tuple(_validate.check_int(f"bricks[{i}]", c, 1) for i, c in enumerate(core))


def resident_bytes(input_bytes: int, n: int) -> int:
    """What an in-memory run holds for all of it beside the method's own memory: the input
    (``input_bytes``), its float32 output and, for another dtype, its float32 copy (``n`` voxels)."""
    return int(input_bytes) + 4 * n + (0 if int(input_bytes) == 4 * n else 4 * n)


def plan_volumes(method: str, layout: Any, vols: Sequence[Any], preps: Sequence[Any], options: dict,
                 memory_limit: Any, core: Any, halo: Any, input_bytes: int) -> list[Plan | None]:
    """One plan (or ``None``: whole) per volume; the input, its float32 copy and the output
    count as held for the whole run."""
    ndim = len(layout.vol_axes)
    core, halo = check_core(core, ndim), check_halo(halo, ndim)
    limit = budget(memory_limit)
    resident = resident_bytes(input_bytes, int(np.prod(layout.shape)))
    plans: dict[int, Plan | None] = {}
    out = []
    for v, p in zip(vols, preps):
        if v.c not in plans:
            plans[v.c] = plan_volume(method, v.data.shape, p.kernel.shape, options, limit, resident, core, halo)
        out.append(plans[v.c])
    if any(p is not None for p in out):
        refuse_periodic(options.get("edges", ""))
    return out


def refuse_with_bricks(**given: Any) -> None:
    """One-line errors for options a bricked run cannot honour."""
    for name, value in given.items():
        if value:
            raise InputError(f"{name}: not available when the volume is processed in bricks (it does not fit the "
                             "memory budget, or bricks=/a Dask array was given); raise memory_limit or drop it")


@dataclass
class LazyVolumes:
    """A Dask hyperstack seen as (T, C) volumes, to build one lazy result."""

    axes: str
    vol_axes: str
    canon: Any  # dask array (T, C) + volume
    psfs: list
    tops: tuple = ()  # each (T, C) volume's maximum
    lows: tuple = ()  # each channel's level at t=0 (:func:`_background.low_level`: whatever the bricks)

    @property
    def n_t(self) -> int:
        return int(self.canon.shape[0])

    @property
    def n_c(self) -> int:
        return int(self.canon.shape[1])

    def volume(self, t: int, c: int) -> Any:
        return self.canon[t, c]

    def merge(self, results: Sequence[Any]) -> Any:
        """Per-volume lazy results (t-major) back into the input's axes."""
        import dask.array as da

        rows = [da.stack(results[t * self.n_c:(t + 1) * self.n_c]) for t in range(self.n_t)]
        canon = da.stack(rows)
        present = [a for a in "TC" if a in self.axes]
        idx = tuple(slice(None) if a in present else 0 for a in "TC")
        canon = canon[idx]
        order = [(present + list(self.vol_axes)).index(a) for a in self.axes]
        return canon.transpose(order)


def lazy_volumes(image: Any, psf: Any, axes: str | None, *, allow_negative: bool = True,
                 offset: float = 0.0, lows: bool = False) -> tuple[LazyVolumes, list]:
    """Check a Dask hyperstack (one pass over the data: finite, minimum) and pair its volumes
    with their channel's PSF; returns the volumes and each volume's mean (t-major) of
    ``max(data + offset, 0)``.  ``lows``: also each channel's level at t=0 in the same pass
    (``LazyVolumes.lows``, Richardson-Lucy's offset warning)."""
    import dask
    import dask.array as da

    from . import _background, _hyper

    from .. import _validate

    if image.dtype.kind not in "uifb":
        raise InputTypeError(f"image: expected a real numeric array, got dtype {image.dtype}")
    if axes is None:
        axes = _hyper.DEFAULT_AXES.get(image.ndim)
        if axes is None:
            raise InputError(f"image: expected a 2D (Y, X) to 5D (T, C, Z, Y, X) array, got shape {image.shape}; "
                             "name its axes with axes=")
    axes = _hyper.spatial_in_order(_validate.check_axes("axes", axes, image.ndim))
    vol_axes = "".join(a for a in axes if a in "ZYX")
    order = [axes.index(a) for a in "TC" if a in axes] + [axes.index(a) for a in vol_axes]
    lead = tuple(image.shape[axes.index(a)] if a in axes else 1 for a in "TC")
    canon = image.transpose(order).reshape(lead + tuple(image.shape[axes.index(a)] for a in vol_axes))
    canon = canon.rechunk({0: 1, 1: 1})
    spatial = tuple(range(2, canon.ndim))
    level = canon.astype(np.float64)
    if offset:
        level = da.maximum(level + offset, 0)
    lattice = _background.low_lattice(canon.shape[2:])
    finite, lo, hi, means, samples = dask.compute(da.isfinite(canon).all(), canon.min(), canon.max(axis=spatial),
                                                  level.mean(axis=spatial),
                                                  [canon[0, c][lattice] for c in range(canon.shape[1])] if lows
                                                  else [])
    if not finite:
        raise InputError(_validate.not_finite("image", canon))
    if not allow_negative and float(lo) < 0:
        raise InputError(f"image: Richardson-Lucy needs non-negative data, but the minimum is {float(lo):g}")
    psfs = _hyper.channel_psfs(psf, int(canon.shape[1]), len(vol_axes), "C" in axes)
    levels = tuple(float(np.percentile(s, 1)) for s in samples)
    return LazyVolumes(axes, vol_axes, canon, psfs, tuple(float(h) for h in np.ravel(hi)), levels), \
        [float(m) for m in np.ravel(means)]


def lazy_run(lv: LazyVolumes, means: Sequence[float], preps: Sequence[Any], plans: Sequence[Plan],
             make_fn: Callable[[Any], BrickFn],
             decide: Callable[[Any, Plan, Any, float], tuple[Decisions, tuple[Brick, np.ndarray] | None]]) -> Any:
    """The lazy result: every (T, C) volume through :func:`lazy` with its own decisions.  ``decide``
    returns them with the central brick's result when it computed that brick (else ``None``)."""
    out = []
    for i in range(lv.n_t * lv.n_c):
        c = i % lv.n_c
        vol = lv.volume(i // lv.n_c, c)
        dec, pilot_result = decide(vol, plans[c], preps[c], means[i])
        out.append(lazy(vol, plans[c], make_fn(preps[c]), dec, pilot_result))
    return lv.merge(out)


def concurrency() -> int:
    """How many bricks the local Dask scheduler computes at once (``num_workers`` or the CPU count)."""
    try:
        import dask
        import dask.system

        return max(1, int(dask.config.get("num_workers", None) or dask.system.CPU_COUNT))
    except ImportError:  # pragma: no cover - dask arrays imply dask
        return 1


def refuse_periodic(edges: str) -> None:
    if edges == "periodic":
        raise InputError("edges: periodic edges wrap the whole volume around and cannot be computed in bricks; "
                         "use 'reflect' or 'non-circulant'/'constant', or raise memory_limit")


def lazy_plans(method: str, vol_shape: tuple[int, ...], preps: Sequence[Any], options: dict, memory_limit: Any,
               core: Any, halo: Any) -> list[Plan]:
    """One plan per channel for a lazy run (a single brick per volume when it fits).

    ``memory_limit`` is per task (brick); by default the default budget divided by the
    number of bricks the local scheduler computes at once (:func:`concurrency`)."""
    ndim = len(vol_shape)
    core, halo = check_core(core, ndim), check_halo(halo, ndim)
    limit = budget(memory_limit)
    if limit is not None and memory_limit is None:  # the default budget is shared by the tasks run at once
        limit //= concurrency()
    plans = []
    for p in preps:
        plan = plan_volume(method, vol_shape, p.kernel.shape, options, limit, 0, core, halo, lazy=True)
        plans.append(plan or Plan(vol_shape, vol_shape, halo or default_halo(p.kernel.shape, method)))
    if any(p.n > 1 for p in plans):
        refuse_periodic(options.get("edges", ""))
    return plans


def lazy_preps(lv: LazyVolumes, edges: str, threshold: float, recenter: Any, voxel_size: Any,
               psf_voxel_size: Any, flat_ok: bool = False) -> list[Any]:
    """Each channel's prepared PSF for a lazy run (see :func:`fijidecon.deconvolve._otf.prepare_psf`)."""
    from .. import _validate
    from . import _edges, _hyper, _otf

    recenter = _validate.check_bool("recenter", recenter)
    vol_shape = tuple(lv.canon.shape[2:])
    max_shape = _edges.kernel_limit(edges, vol_shape)
    preps = _hyper.per_channel(lv.psfs, psf_voxel_size, lambda p, name, pvs: _otf.prepare_psf(
        p, threshold=threshold, recenter=recenter, name=name, max_shape=max_shape, voxel_size=voxel_size,
        psf_voxel_size=pvs, flat_ok=flat_ok))
    _hyper.warn_swapped(preps, vol_shape)
    return preps
