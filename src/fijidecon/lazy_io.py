"""Images bigger than memory, file to file: lazy reads, OME-Zarr, plane-by-plane TIFF.

* :func:`read_lazy` opens a TIFF (ImageJ hyperstack, OME-TIFF, plain), an OME-Zarr
  (NGFF 0.4 or 0.5) or a ``.npy`` file as a :class:`dask.array.Array` plus its
  :class:`~fijidecon.calibration.Calibration`, reading nothing but the metadata.
* :func:`write_ome_zarr` writes a numpy or dask array as an OME-Zarr (NGFF 0.4, one
  resolution level), chunk by chunk, so a lazy result is never held whole in memory.
* :func:`write_tiff_lazy` writes an ImageJ hyperstack (or OME-TIFF) plane by plane from a
  dask array.

Every write is atomic: the data go to a hidden sibling ``.<name>.partial-<pid>`` that is
renamed to ``<name>`` only when complete; an exception, Ctrl-C or SIGTERM removes it, and
partials left by killed processes are removed by the next write of the same name.  An
existing output is never replaced unless ``overwrite=True``.

This module needs the ``big`` extra (``pip install fijidecon[big]``: zarr, ome-zarr, dask).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import itertools
import math
import json
import os
import shutil
import signal
import time
import threading
import warnings
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import tifffile

from . import _validate, io as _io
from .calibration import Calibration, unit_factor
from .errors import InputError, InputTypeError, OutputExistsError

__all__ = ["read_lazy", "write_ome_zarr", "write_tiff_lazy", "write_big", "write_big_and_sidecar", "is_zarr_path",
           "is_lazy", "remove_stale_partials", "resumable_path", "NGFF_VERSION"]

#: The OME-Zarr (NGFF) version written.  0.4 (Zarr v2) is what napari-ome-zarr, Fiji's
#: n5-zarr/MoBIE and most other readers open today; :func:`read_lazy` also reads 0.5.
NGFF_VERSION = "0.4"
#: Default chunk (brick) edge along Z, Y, X when writing OME-Zarr.
BRICK = {"Z": 64, "Y": 256, "X": 256}
#: Length units as NGFF (UDUNITS-2) names, by size in nanometres.
_NGFF_LENGTH = {1e-3: "picometer", 0.1: "angstrom", 1.0: "nanometer", 1e3: "micrometer", 1e6: "millimeter",
                1e7: "centimeter", 1e9: "meter"}
#: NGFF length names as this package spells units.
_FROM_NGFF = {"picometer": "pm", "angstrom": "Å", "nanometer": "nm", "micrometer": "micron", "millimeter": "mm",
              "centimeter": "cm", "meter": "m"}
_NGFF_TIME_S = {"second": 1.0, "millisecond": 1e-3, "microsecond": 1e-6, "nanosecond": 1e-9, "minute": 60.0,
                "hour": 3600.0, "day": 86400.0}
_PARTIAL = ".partial-"
#: The hidden sibling a resumable write keeps when it does not finish (``.<name>.resumable``).
_RESUMABLE = ".resumable"
#: Group attribute of a resumable partial: the key of the run that writes it.
RESUME_ATTR = "fijidecon_resume_key"
#: Group attribute of a resumable partial: what the CLI needs to go on with the same bricks
#: (``key`` without the bricks, ``core``, ``halo``, ``budget``); see :func:`resume_info`.
RESUME_INFO_ATTR = "fijidecon_resume_info"


def _dask():
    try:
        import dask.array as da
    except ImportError:  # pragma: no cover - the extra is missing
        raise ImportError("big files need dask, zarr and ome-zarr: pip install 'fijidecon[big]'") from None
    return da


def is_zarr_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a Zarr store (``.zarr`` or ``.ome.zarr``, any case, trailing slash allowed)."""
    return _io._is_zarr(path)


def is_lazy(array: Any) -> bool:
    """Whether ``array`` is a dask (or other lazy, dask-collection) array."""
    return hasattr(array, "__dask_graph__")


# ---------------------------------------------------------------------------------------- reading


class _FileArray:
    """A picklable, lazily opened array source for :func:`dask.array.from_array`.

    Holds only the path and how to read it, so a task graph that reads a file can be sent
    to other processes (``dask.distributed`` workers) without the pixels.  ``kind``:

    * ``"raw"``: C-order pixels at byte ``offset`` (uncompressed contiguous TIFFs, ``.npy``):
      a chunk of whole consecutive planes is one positional read, so only the pixels asked
      for enter memory (a memory map would also count every page touched in the RSS);
      other selections go through a read-only memory map.
    * ``"tiff-zarr"``: compressed or scattered TIFFs, through tifffile's Zarr store
      (``imread(..., aszarr=True)`` opened with zarr), decoded chunk by chunk.
    """

    def __init__(self, path: str, kind: str, shape: tuple[int, ...], file_dtype: np.dtype, n_lead: int,
                 offset: int = 0):
        self.path, self.kind, self.offset, self.n_lead = path, kind, int(offset), n_lead
        self.file_dtype = np.dtype(file_dtype)
        self.shape, self.dtype, self.ndim = tuple(shape), self.file_dtype.newbyteorder("="), len(shape)
        self._array: Any = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_array", "_lock")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._array, self._lock = None, threading.Lock()

    def _open(self) -> Any:
        with self._lock:
            if self._array is None:
                if self.kind == "raw":
                    self._array = np.memmap(self.path, self.file_dtype, "r", self.offset, self.shape)
                else:
                    import zarr

                    store = tifffile.imread(self.path, aszarr=True, series=0, level=0)
                    self._array = zarr.open_array(store, mode="r")
            return self._array

    def _planes(self, key) -> tuple[int, int] | None:
        """(first plane, number of planes) when ``key`` selects whole consecutive planes."""
        if not isinstance(key, tuple) or len(key) != self.ndim or not all(isinstance(k, slice) for k in key):
            return None
        idx = [k.indices(n) for k, n in zip(key, self.shape)]
        if any(i != (0, n, 1) for i, n in zip(idx[self.n_lead:], self.shape[self.n_lead:])):
            return None
        if self.n_lead == 0:
            return 0, 1
        if any(b - a != 1 for a, b, _ in idx[:self.n_lead - 1]) or idx[self.n_lead - 1][2] != 1:
            return None
        first = int(np.ravel_multi_index([i[0] for i in idx[:self.n_lead]], self.shape[:self.n_lead]))
        return first, max(0, idx[self.n_lead - 1][1] - idx[self.n_lead - 1][0])

    def __getitem__(self, key) -> np.ndarray:
        planes = self._planes(key) if self.kind == "raw" else None
        if planes is None:
            return np.array(self._open()[key], dtype=self.dtype)
        first, n = planes
        plane = int(np.prod(self.shape[self.n_lead:])) * self.file_dtype.itemsize
        out_shape = tuple(len(range(*k.indices(d))) for k, d in zip(key, self.shape))
        with open(self.path, "rb") as f:
            f.seek(self.offset + first * plane)
            data = np.fromfile(f, self.file_dtype, count=n * plane // self.file_dtype.itemsize)
        if data.size * self.file_dtype.itemsize != n * plane:
            raise InputError(f"image: {self.path!r} is truncated (short read)")
        return data.reshape(out_shape).astype(self.dtype, copy=False)


def read_lazy(path: str | os.PathLike, axes: str | None = None, *, level: int = 0,
              plane_chunks: int = 1) -> tuple[Any, Calibration]:
    """Open an image lazily: a dask array and its calibration, reading only metadata now.

    Parameters
    ----------
    path : path-like
        A TIFF (ImageJ hyperstack, OME-TIFF or plain; uncompressed contiguous files are
        read plane by plane at their offsets, others through tifffile's Zarr store), an OME-Zarr folder
        (``.zarr``; NGFF 0.4 or 0.5, or a bioformats2raw layout: its first image) or a
        ``.npy`` file (read plane by plane at its offset).
    axes : str, optional
        One letter per array axis (``"CZYX"`` …): the axes of a ``.npy`` array, or an
        override of the file's own axes.  Default: the file's axes (as
        :func:`fijidecon.io.read_image`; OME-Zarr: from the NGFF axes' types and names).
    level : int
        Resolution level of a multiscale OME-Zarr (0 = full resolution).
    plane_chunks : int
        TIFF and ``.npy``: planes (Y, X slices) per dask chunk.

    Returns
    -------
    array : dask.array.Array
        The pixels in the file's axis order and dtype (TIFF: as :func:`fijidecon.io.read_image`;
        OME-Zarr: its own order, a subset of T, C, Z, Y, X), chunked by plane (TIFF, ``.npy``)
        or by the store's chunks (OME-Zarr).
    calibration : Calibration
        Axes letters in the array's order, voxel size per spatial axis in one length unit
        (NGFF ``micrometer`` is ``"micron"``, ``nanometer`` ``"nm"``), the T spacing in
        seconds for OME-Zarr; ``"pixel"`` when the file has no length unit.

    Raises
    ------
    FileNotFoundError
        No such file or folder.
    ValueError
        Unreadable or damaged file, no image in a Zarr store, axes that do not fit, or
        axes this package does not know (give ``axes=``).
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"image: no such file {str(p)!r}")
    if is_zarr_path(p) or p.is_dir():
        arr, cal = _read_ome_zarr(p, level)
    elif p.suffix.lower() == ".npy":
        arr, cal = _read_npy_lazy(p, axes is None, plane_chunks)
    else:
        arr, cal = _read_tiff_lazy(p, plane_chunks)
    if arr.size == 0:
        raise InputError(f"image: {str(p)!r} holds an empty array {arr.shape}")
    if axes is not None:
        if p.suffix.lower() != ".npy" and not (is_zarr_path(p) or p.is_dir()):  # a TIFF keeps no axis of length 1
            arr, cal = _io.singletons_back(arr, cal, axes)
        return arr, _io.given_axes(cal, axes, arr.ndim, p, own=p.suffix.lower() != ".npy")
    try:
        _io.check_axes(cal.axes, arr.ndim)
    except ValueError:
        raise InputError(f"image: {str(p)!r} has axes {cal.axes!r} for shape {arr.shape}; "
                         "give its axes (axes=, --axes)") from None
    return arr, cal


def _plane_chunks(shape: tuple[int, ...], n_inner: int, planes: int) -> tuple[int, ...]:
    """Chunks of whole planes: ``planes`` along the last leading axis, 1 along the others."""
    lead = len(shape) - n_inner
    return tuple([1] * max(lead - 1, 0) + ([max(1, planes)] if lead else []) + list(shape[lead:]))


def _from_source(src: _FileArray, chunks: tuple[int, ...]) -> Any:
    da = _dask()
    name = f"read-{src.kind}-{abs(hash((src.path, os.path.getmtime(src.path), src.shape)))}"
    return da.from_array(src, chunks=chunks, name=name, lock=False, asarray=True,
                         meta=np.empty((0,) * src.ndim, src.dtype))


def _read_npy_lazy(p: Path, guess: bool, planes: int) -> tuple[Any, Calibration]:
    _io.check_npy_header(p)
    try:
        mm = np.load(p, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # damaged header, pickled objects …
        raise InputError(f"image: {str(p)!r} is not a readable .npy file ({_io._short(exc)})") from None
    if mm.dtype.kind not in "biuf" or not 2 <= mm.ndim <= 5:
        raise InputError(f"image: {str(p)!r} does not hold a numeric array of 2 to 5 dimensions")
    default = Calibration.default(mm.ndim)
    cal = default.with_axes(_io._npy_axes(mm, p)) if guess else default
    n_inner = 3 if cal.axes.endswith("S") else 2
    src = _FileArray(str(p), "raw" if mm.flags.c_contiguous else "tiff-zarr", mm.shape, mm.dtype,
                     mm.ndim - n_inner, mm.offset)
    if not mm.flags.c_contiguous:  # Fortran-order .npy: memory map
        return _dask().from_array(mm, chunks=_plane_chunks(mm.shape, n_inner, planes)), cal
    return _from_source(src, _plane_chunks(mm.shape, n_inner, planes)), cal


def _read_tiff_lazy(p: Path, planes: int) -> tuple[Any, Calibration]:
    import logging

    collect = _io._Collect()  # tifffile logs damage (pages it cannot reach): an error below, never stderr
    logging.getLogger("tifffile").addHandler(collect)
    try:
        parts = _read_tiff_lazy_parts(p)
    finally:
        logging.getLogger("tifffile").removeHandler(collect)
    lost = _io._pages_lost(collect.messages)
    if lost:
        raise InputError(f"image: {str(p)!r} is truncated or damaged: pages are missing or do not match its header "
                         f"({lost})")
    return _lazy_tiff_array(p, planes, *parts)


def _read_tiff_lazy_parts(p: Path):
    try:
        tif = tifffile.TiffFile(p)
    except Exception as exc:  # tifffile raises several types for non-TIFF input
        raise InputError(f"image: {str(p)!r} is not a readable TIFF ({_io._short(exc)})") from None
    with tif:
        try:
            series = tif.series[0]
            shape, dtype, axes = tuple(series.shape), series.dtype, _io._file_axes(series.axes)
            if tif.is_ome and tif.ome_metadata:
                spacing, unit = _io._ome_calibration(tif.ome_metadata, p.name)
            else:
                spacing, unit = _io._imagej_or_plain_calibration(tif)
            images = int((tif.imagej_metadata or {}).get("images", 0) or 0)
            _io._check_imagej_count(tif, images, p)
            _io._warn_other_series(tif, p.name)
            contiguous = series.dataoffset is not None and tif.pages[0].compression == 1
            dataoffset = series.dataoffset or 0
            dtype = np.dtype(dtype).newbyteorder(tif.byteorder)
            filesize = tif.filehandle.size
            end = (series.dataoffset or 0) + int(np.prod(shape)) * np.dtype(dtype).itemsize
        except Exception as exc:  # damaged files
            if str(exc).startswith("image: "):
                raise
            raise InputError(f"image: {str(p)!r} is not a readable TIFF ({_io._short(exc)})") from None
    return shape, dtype, axes, spacing, unit, images, contiguous, dataoffset, filesize, end


def _lazy_tiff_array(p: Path, planes: int, shape, dtype, axes, spacing, unit, images, contiguous, dataoffset,
                     filesize, end) -> tuple[Any, Calibration]:
    if axes is None or len(axes) != len(shape):
        axes = Calibration.default(len(shape)).axes if len(shape) <= 5 else ""
    planes_in = int(np.prod([n for a, n in zip(axes, shape) if a not in "YXS"] or [1]))
    if (images and images > planes_in) or (contiguous and end > filesize):
        raise InputError(f"image: {str(p)!r} is truncated or damaged: it should hold {max(images, planes_in)} "
                         f"images of {shape[-2:]} {dtype}, the file is too short")
    if unit == "pixel" and all(abs(v - 1.0) < 1e-12 for v in spacing.values()):
        spacing = {}
    cal = Calibration(axes=axes, spacing=tuple(sorted((k, float(v)) for k, v in spacing.items() if v > 0)),
                      unit=unit)
    n_inner = 3 if axes.endswith("S") else 2
    src = _FileArray(str(p), "raw" if contiguous else "tiff-zarr", shape, dtype, len(shape) - n_inner, dataoffset)
    return _from_source(src, _plane_chunks(shape, n_inner, planes)), cal


def _read_ome_zarr(p: Path, level: int) -> tuple[Any, Calibration]:
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Multiscales, Reader

    fmt = FormatV04() if (p / ".zattrs").exists() or (p / ".zgroup").exists() else FormatV05()
    try:
        loc = parse_url(str(p), mode="r", fmt=fmt)
        nodes = list(Reader(loc)()) if loc is not None else []
    except Exception as exc:  # invalid NGFF metadata, damaged store
        raise InputError(f"image: {str(p)!r} is not a readable OME-Zarr ({_io._short(exc)})") from None
    node = next((n for n in nodes if n.load(Multiscales) is not None and n.data), None)
    if node is None:
        for meta in (p / ".zattrs", p / ".zgroup", p / "zarr.json"):  # metadata that is there but unreadable
            try:
                if meta.is_file():
                    json.loads(meta.read_text())
            except (ValueError, OSError) as exc:
                raise InputError(f"image: {str(p)!r} is damaged: its {meta.name} is not readable JSON "
                                 f"({_io._short(exc)})") from None
        raise InputError(f"image: {str(p)!r} holds no OME-Zarr image (no 'multiscales' metadata)")
    if not 0 <= level < len(node.data):
        raise InputError(f"level: {str(p)!r} has resolution levels 0 to {len(node.data) - 1}, got {level}")
    transforms = (node.metadata.get("coordinateTransformations") or [None] * len(node.data))[level] or []
    return _checked_level(p, node.data[level], level), _ngff_calibration(p, node.metadata.get("axes") or [], transforms)


#: Group attribute of the OME-Zarr stores :func:`write_ome_zarr` writes: every chunk is stored
#: (empty ones too), so a missing chunk is lost data, not the fill value.
ALL_CHUNKS_ATTR = "fijidecon_all_chunks_written"


def _checked_level(p: Path, arr: Any, level: int) -> Any:
    """One level of an OME-Zarr: refused when a store we wrote misses chunks; read through
    :class:`_ZarrChunks` (a damaged chunk is a one-line error naming the store)."""
    import zarr

    try:
        group = zarr.open_group(str(p), mode="r")
        attrs = dict(group.attrs)
        path = (attrs.get("multiscales") or attrs["ome"]["multiscales"])[0]["datasets"][level]["path"]
        zarr_array = group[path]
    except Exception:  # an NGFF layout ome_zarr reads but plain zarr does not: its own dask array
        return arr
    if attrs.get(ALL_CHUNKS_ATTR):
        have, total = int(zarr_array.nchunks_initialized), int(zarr_array.nchunks)
        if have < total:
            raise InputError(f"image: {str(p)!r} is damaged: {total - have} of its {total} chunks are missing (it "
                             "was written with every chunk; a copy was cut short or files were removed)")
    src = _ZarrChunks(str(p), path, tuple(zarr_array.shape), zarr_array.dtype)
    return _dask().from_array(src, chunks=arr.chunks, name=f"read-zarr-{abs(hash((str(p), path, src.shape)))}",
                              lock=False, asarray=True, meta=np.empty((0,) * len(src.shape), src.dtype))


class _ZarrChunks:
    """A picklable OME-Zarr array source: a chunk that cannot be read or decoded is a
    ``ValueError`` naming the store and the region (was: "internal error (RuntimeError:
    error during blosc decompression: -1)")."""

    def __init__(self, store: str, path: str, shape: tuple[int, ...], dtype: Any):
        self.store, self.path, self.shape, self.dtype = store, path, shape, np.dtype(dtype)
        self.ndim, self._array = len(shape), None

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_array"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._array = None

    def __getitem__(self, key) -> np.ndarray:
        import zarr

        try:
            if self._array is None:
                self._array = zarr.open_group(self.store, mode="r")[self.path]
            return np.asarray(self._array[key])
        except Exception as exc:
            where = ", ".join(f"{k.start}:{k.stop}" if isinstance(k, slice) else str(k) for k in key) \
                if isinstance(key, tuple) else str(key)
            raise InputError(f"image: {self.store!r} is damaged: its chunk(s) at [{where}] of {self.path!r} cannot "
                             f"be read ({_io._short(exc)})") from None


def _ngff_letter(axis: Mapping[str, Any]) -> str:
    name, kind = str(axis.get("name", "")).upper(), str(axis.get("type", "")).lower()
    if kind == "time" or (not kind and name == "T"):
        return "T"
    if kind == "channel" or (not kind and name == "C"):
        return "C"
    if kind in ("space", "") and name in ("Z", "Y", "X"):
        return name
    return "?"


def _ngff_calibration(p: Path, axes: list, transforms: list) -> Calibration:
    """Axes letters, voxel size and unit from NGFF ``axes`` and one dataset's transformations."""
    axes = [a if isinstance(a, Mapping) else {"name": a} for a in axes]
    letters = "".join(_ngff_letter(a) for a in axes)
    scale = [1.0] * len(axes)
    for t in transforms:  # translations do not change the voxel size
        if t.get("type") == "scale":
            scale = [s * float(v) for s, v in zip(scale, t["scale"])]
    spacing: dict[str, float] = {}
    units: dict[str, str] = {}
    for letter, a, s in zip(letters, axes, scale):
        u = a.get("unit")
        if letter in "ZYX" and letter != "?" and not (s > 0 and math.isfinite(s)):
            _io.warn_spacing_taken_as_1(p.name, f"its NGFF scale {s!r} for {letter} is not a valid size", letter)
        elif letter in "ZYX" and letter != "?":
            spacing[letter] = s
            if u:
                units[letter] = _FROM_NGFF.get(u, u)
        elif letter == "T" and (s != 1.0 or u):
            spacing["T"] = s * _NGFF_TIME_S.get(str(u or "second"), 1.0)
    unit = "pixel"
    if units:
        unit = units.get("X", next(iter(units.values())))
        for ax, u in units.items():
            if u != unit:
                try:
                    spacing[ax] *= unit_factor(u, unit)
                except ValueError:
                    raise InputError(f"image: {str(p)!r}: axis {ax} unit {u!r} cannot be converted to "
                                     f"{unit!r}") from None
        unit = _io._length_unit(unit)
    if unit == "pixel" and all(abs(v - 1.0) < 1e-12 for k, v in spacing.items() if k != "T"):
        spacing = {k: v for k, v in spacing.items() if k == "T"}
    return Calibration(axes=letters, spacing=tuple(sorted((k, float(v)) for k, v in spacing.items() if v > 0)),
                       unit=unit)


# ---------------------------------------------------------------------------------- atomic output


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


#: Temporary outputs this process is writing now (never removed as stale).
_ACTIVE: set[str] = set()


def remove_stale_partials(path: str | os.PathLike) -> list[Path]:
    """Remove partial outputs of ``path`` left by killed or failed writes.

    A partial is a sibling named ``.<name>.partial-<pid>``; it is stale when that process
    no longer runs, or when it is this process's and no write of it is in progress.

    Returns
    -------
    list of pathlib.Path
        The partials removed.
    """
    p = Path(path)
    removed = []
    if not p.parent.is_dir():
        return removed
    for q in p.parent.glob(f".{p.name}{_PARTIAL}*"):
        pid_text = q.name.rsplit(_PARTIAL, 1)[-1].split(".")[0]
        if not pid_text.isdigit() or str(q) in _ACTIVE:
            continue
        pid = int(pid_text)
        if pid == os.getpid() or not _pid_alive(pid):
            _remove(q)
            removed.append(q)
    return removed


def _remove(q: Path) -> None:
    if q.is_dir() and not q.is_symlink():
        shutil.rmtree(q, ignore_errors=True)
    else:
        q.unlink(missing_ok=True)


#: What a folder must hold at its top to be a Zarr store that ``overwrite`` may replace.
_ZARR_MARKERS = ("zarr.json", ".zgroup", ".zattrs", ".zarray")


def _check_target(p: Path, overwrite: bool) -> None:
    lock = Path(f"{resumable_path(p)}.lock")
    if _held(lock):  # a --resume run is writing this output now (any write of the name would race it)
        raise FileExistsError(_busy(p, lock))
    if p.exists() and not overwrite:
        raise OutputExistsError(_io._exists(p))
    if p.is_dir() and not any((p / m).exists() for m in _ZARR_MARKERS):  # replaced whole: never a plain folder
        raise FileExistsError(f"output: {str(p)!r} is a folder that is not a Zarr store; it is not replaced, even "
                              "with overwrite (remove it yourself, or choose another name)")
    parent = p.parent
    if not parent.is_dir():
        raise FileNotFoundError(f"output: folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"output: folder {str(parent)!r} is not writable")


class _Terminated(SystemExit):
    """SIGTERM during a write: unwinds like Ctrl-C so the partial output is removed."""


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """While writing in the main thread with SIGTERM's default action, make SIGTERM raise
    (exit status 143) instead of killing the process on the spot, so ``finally`` blocks run."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def handler(signum, frame):  # noqa: ARG001
        raise _Terminated(128 + signal.SIGTERM)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def _atomic_output(p: Path, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary sibling of ``p`` to write; rename it to ``p`` when the block ends
    normally, remove it on any exception (Ctrl-C and SIGTERM included)."""
    _check_target(p, overwrite)
    remove_stale_partials(p)
    tmp = p.with_name(f".{p.name}{_PARTIAL}{os.getpid()}")
    _remove(tmp)
    _ACTIVE.add(str(tmp))
    try:
        with _sigterm_unwinds():
            try:
                yield tmp
            except OSError as exc:  # a full disk, a folder made read-only meanwhile: one line naming the output
                if str(exc).startswith("output:"):
                    raise
                raise _io._write_failed(p, exc) from None
            _put_in_place(tmp, p, overwrite)
    finally:
        _ACTIVE.discard(str(tmp))
        if os.path.lexists(tmp):
            _remove(tmp)  # a task still running elsewhere may write a chunk later: removed again at exit
            _FAILED.add(str(tmp))


#: Partial outputs of writes that failed in this process: a brick still being computed when the write failed
#: (another thread, out of memory) may write its chunk after the removal; they are removed again at exit.
_FAILED: set[str] = set()


@atexit.register
def remove_failed_partials(settle: float = 0.0) -> None:
    """Remove the partial outputs of this process's failed writes that reappeared (see :data:`_FAILED`);
    ``settle``: seconds to wait, then remove what Dask's threads wrote meanwhile (a process about to end by
    its signal, which skips ``atexit``: Ctrl-C left a partial OME-Zarr in 2 of 5 tries)."""
    for attempt in range(2 if settle and _FAILED else 1):
        if attempt:
            time.sleep(settle)
        for name in list(_FAILED):
            if name not in _ACTIVE and os.path.lexists(name):
                _remove(Path(name))


def resumable_path(path: str | os.PathLike) -> Path:
    """The hidden sibling a resumable OME-Zarr write of ``path`` keeps until it is complete:
    ``.<name>.resumable`` (see :func:`write_ome_zarr`'s ``resume``)."""
    p = Path(path)
    return p.with_name(f".{p.name}{_RESUMABLE}")


def _held(lock: Path) -> bool:
    """Whether another process holds the ``flock`` of ``lock`` now."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        return False
    if not lock.exists():
        return False
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


@contextlib.contextmanager
def _writer_lock(tmp: Path, p: Path) -> Iterator[None]:
    """One writer at a time of a resumable partial: an exclusive ``flock`` on ``<tmp>.lock``
    (released by the system if the process is killed)."""
    import importlib.util

    if importlib.util.find_spec("fcntl") is None:  # pragma: no cover - Windows: no lock
        yield
        return
    lock = Path(f"{tmp}.lock")
    fd = _lock_file(lock, p)
    try:
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)  # before the close: a waiting run then finds another inode and retries
    finally:
        os.close(fd)


def _lock_file(lock: Path, p: Path, tries: int = 5) -> int:
    """An open descriptor of ``lock`` holding its exclusive ``flock``.  The lock file is removed
    when its writer ends, so a descriptor whose inode is no longer the file at ``lock`` (opened just
    before that removal) is dropped and the file opened again; a lock busy for a moment only (another
    run's :func:`_held` probe) is tried again ``tries`` times, 50 ms apart."""
    import fcntl
    import time

    for attempt in range(tries):
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if attempt == tries - 1:
                raise FileExistsError(_busy(p, lock)) from None
            time.sleep(0.05)
            continue
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
    raise FileExistsError(_busy(p, lock))


def _busy(p: Path, lock: Path) -> str:
    return (f"output: another run is writing {str(p)!r} now (it holds {str(lock)!r}); wait for it to end, or choose "
            "another output name")


@contextlib.contextmanager
def _resumable_output(p: Path, overwrite: bool) -> Iterator[Path]:
    """As :func:`_atomic_output`, but the temporary sibling is :func:`resumable_path` and is
    kept when the write does not finish (an error, Ctrl-C, SIGTERM, a kill), for a later
    write with the same resume key to go on from."""
    _check_target(p, overwrite)
    remove_stale_partials(p)
    tmp = resumable_path(p)
    with _writer_lock(tmp, p), _sigterm_unwinds():
        try:
            yield tmp
        except OSError as exc:
            KEPT.append(tmp)
            if str(exc).startswith("output:"):
                raise
            failed = _io._write_failed(p, exc)
            fix = "free some space" if failed.errno == errno.ENOSPC else "fix the cause"
            kept = OSError(str(failed).replace("; nothing was written", f"; the chunks written so far are kept in "
                                               f"{tmp.name}: {fix} and run it again with --resume"))
            kept.errno = failed.errno
            raise kept from None
        except BaseException:
            KEPT.append(tmp)
            raise
        _put_in_place(tmp, p, overwrite)


#: Resumable partial outputs this process kept after a write that did not finish (the CLI names them).
KEPT: list[Path] = []


def _put_in_place(tmp: Path, p: Path, overwrite: bool) -> None:
    if os.path.lexists(p):
        if not overwrite:
            raise OutputExistsError(_io._exists(p))
        old = p.with_name(f".{p.name}.old-{os.getpid()}")
        os.replace(p, old)  # keep the old output until the new one is in place
        try:
            os.replace(tmp, p)
        except BaseException:
            os.replace(old, p)
            raise
        _remove(old)
    else:
        os.rename(tmp, p)


# -------------------------------------------------------------------------------------- OME-Zarr


def _ngff_unit(unit: str) -> str | None:
    """The NGFF (UDUNITS-2) name of a length unit (``micron`` → ``micrometer``), or None."""
    try:
        nm = unit_factor(unit, "nm")
    except ValueError:
        return None
    return next((name for f, name in _NGFF_LENGTH.items() if math.isclose(f, nm, rel_tol=1e-9)), None)


def _check_array(array: Any, name: str = "array") -> None:
    shape = getattr(array, "shape", None)
    dtype = getattr(array, "dtype", None)
    if shape is None or dtype is None:
        raise InputTypeError(f"{name}: expected a numpy or dask array, got {type(array).__name__}")
    if int(np.prod(shape)) == 0:
        raise InputError(f"{name}: empty (shape {tuple(shape)}); nothing to write")
    if np.dtype(dtype).kind not in "biuf":
        raise InputTypeError(f"{name}: dtype {dtype} cannot be written (numeric data only)")


def _ngff_order(axes: str) -> tuple[str, list[int]]:
    """NGFF axis letters (T, C, Z, Y, X order; S, the RGB samples, become C) and the transpose to them."""
    if "S" in axes and "C" in axes:
        raise InputError(f"calibration axes: {axes!r} has both C and S; OME-Zarr has one channel axis")
    as_c = axes.replace("S", "C")
    order = [as_c.index(a) for a in "TCZYX" if a in as_c]
    return "".join(as_c[i] for i in order), order


def _default_chunks(arr: Any, letters: str) -> tuple[int, ...]:
    """One (T, C) volume per chunk, bricks of at most :data:`BRICK` in Z, Y, X, each brick
    inside one chunk of a dask input where possible (so writing never merges input chunks)."""
    out = []
    for i, a in enumerate(letters):
        if a in "TC":
            out.append(1)
            continue
        n, brick = arr.shape[i], BRICK[a]
        sizes = [c for c in arr.chunks[i][:-1]] or [arr.chunks[i][0]]
        step = math.gcd(*sizes) if len(sizes) > 1 else sizes[0]
        fit = max(k for k in range(1, min(brick, step) + 1) if step % k == 0)
        out.append(fit if fit * 4 >= min(brick, step) else min(brick, n))
    return tuple(out)


def _chunked(array: Any, order: list[int], letters: str, chunks) -> tuple[Any, tuple[int, ...]]:
    """``array`` in NGFF order as a dask array whose chunks are the store's chunks."""
    da = _dask()
    is_dask = isinstance(array, da.Array)
    arr = (array if is_dask else np.asarray(array)).transpose(order)
    if chunks is not None:
        store_chunks = tuple(int(c) for c in chunks)
    elif is_dask:
        store_chunks = _default_chunks(arr, letters)
    else:
        store_chunks = tuple(1 if a in "TC" else min(BRICK[a], n) for a, n in zip(letters, arr.shape))
    return (arr.rechunk(store_chunks) if is_dask else da.from_array(arr, chunks=store_chunks)), store_chunks


def write_ome_zarr(path: str | os.PathLike, array: Any, calibration: Calibration | None = None, *,
                   chunks: tuple[int, ...] | None = None, overwrite: bool = False, name: str | None = None,
                   description: Mapping[str, Any] | None = None, resume: str | None = None,
                   report: dict | None = None, on_start: Any = None,
                   resume_info: Mapping[str, Any] | None = None) -> Path:
    """Write an array as an OME-Zarr image (NGFF 0.4, one resolution level), chunk by chunk.

    Parameters
    ----------
    path : path-like
        The output folder, ending in ``.zarr`` (e.g. ``result.ome.zarr``).  Its parent must exist.
    array : numpy.ndarray or dask.array.Array
        Numeric data (dtype kept), axes as in ``calibration.axes`` (any order of T, C, Z, Y,
        X, S).  A dask array is computed chunk by chunk by the current dask scheduler
        (threads, processes or a ``dask.distributed`` client), each chunk written as soon as
        it is computed: memory stays near (worker threads) × (one input chunk).
    calibration : Calibration, optional
        Axes, voxel size and unit.  Default: axes by number of dimensions, uncalibrated.
        Stored as NGFF axes (``t`` time in seconds, ``c`` channel, ``z``/``y``/``x`` space
        with the unit's NGFF name: ``micron`` → ``micrometer``, ``nm`` → ``nanometer``) and a
        ``scale`` transformation.  The array is stored in NGFF order (T, C, Z, Y, X); an RGB
        sample axis S becomes C.
    chunks : tuple of int, optional
        Zarr chunk shape in the *stored* (T, C, Z, Y, X) order.  Default: one (T, C) volume
        per chunk and bricks of at most 64×256×256 in Z, Y, X, split from the dask chunks.
    overwrite : bool
        Replace an existing output (only once the new one is complete).
    name : str, optional
        The image name in the metadata (default: the file name without ``.zarr``).
    description : mapping, optional
        Extra properties, stored as the group attribute ``"fijidecon"`` (beside the NGFF
        ``"multiscales"``).
    resume : str, optional
        Make the write resumable, ``resume`` being the key of what is written (e.g. a hash of
        the inputs and parameters; the CLI's ``--resume`` makes one).  The partial output is
        then ``.<name>.resumable`` (:func:`resumable_path`) and is *kept* when the write does
        not finish (an error, Ctrl-C, SIGTERM, the process killed).  A later write with the
        same key, shape, dtype and chunks keeps the chunks it finds complete (each one is
        decoded; a chunk cut short by a kill is computed again) and computes only the others;
        a partial with another key is discarded (a note says so).  One writer at a time: a
        second one is refused while the first runs.
    report : dict, optional
        Filled before any chunk is computed: ``chunks`` (the store's), ``kept`` (found
        complete in a resumable partial), ``bricks_to_compute`` (blocks of ``array`` needed
        for the others) and ``discarded`` (why an earlier partial was not used, or None).
    on_start : callable, optional
        Called with ``report`` just before the chunks are computed.
    resume_info : mapping, optional
        With ``resume``: JSON-able values kept in the partial beside its key until the write
        completes, read back by :func:`resume_info` (the CLI keeps the bricks it used there).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        Not a ``.zarr`` name, empty array, axes that do not fit, both C and S axes.
    TypeError
        Not a numeric numpy/dask array.
    FileExistsError, FileNotFoundError, PermissionError
        Existing output (without ``overwrite``), missing or read-only folder; checked before
        any computation, and nothing is written then.

    Notes
    -----
    Atomic: written to ``.<name>.partial-<pid>`` (``.<name>.resumable`` with ``resume``) next
    to ``path`` and renamed at the end.  A failed, interrupted (Ctrl-C) or terminated
    (SIGTERM) write leaves no ``path``.  A write without ``resume`` that completes removes a
    resumable partial an earlier run left for the same name (with a note).
    """
    import zarr
    from numcodecs import Blosc
    from ome_zarr.format import FormatV04

    with warnings.catch_warnings():  # ome-zarr >= 0.14 warns at import about its own default Scaler (unused here)
        warnings.filterwarnings("ignore", message="Call to deprecated class Scaler", category=DeprecationWarning)
        from ome_zarr.writer import write_multiscales_metadata

    p = Path(path)
    if not is_zarr_path(p):
        raise InputError(f"output: {str(p)!r} is not a .zarr name (e.g. result.ome.zarr)")
    _check_array(array)
    cal = calibration or Calibration.default(len(array.shape))
    axes = _io.check_axes(cal.axes, len(array.shape), name="calibration axes")
    letters, order = _ngff_order(axes)
    _check_target(p, overwrite)
    if chunks is not None and len(chunks) != len(letters):
        raise InputError(f"chunks: {tuple(chunks)} has {len(chunks)} values for the {len(letters)} axes {letters}")
    da = _dask()
    source_chunks = _source_chunks(array, order)
    arr, store_chunks = _chunked(array, order, letters, chunks)
    axes_meta, datasets = _ngff_metadata(letters, cal)

    def make(where: Path) -> tuple[Any, Any]:
        group = zarr.open_group(str(where), mode="w-", zarr_format=2)
        return group, group.create_array("s0", shape=arr.shape, dtype=arr.dtype, chunks=store_chunks, fill_value=0,
                                         compressors=Blosc(cname="zstd", clevel=3, shuffle=Blosc.SHUFFLE),
                                         chunk_key_encoding={"name": "v2", "separator": "/"},
                                         config={"write_empty_chunks": True})  # a missing chunk is then lost data

    info = report if report is not None else {}
    with (_atomic_output(p, overwrite) if resume is None else _resumable_output(p, overwrite)) as tmp:
        if resume is None:
            (group, target), kept, info["discarded"] = make(tmp), set(), None
        else:
            group, target, kept, info["discarded"] = _resumable_target(tmp, str(resume), make, arr, store_chunks,
                                                                       resume_info)
        pending = [i for i in np.ndindex(*arr.numblocks) if i not in kept]
        info.update(chunks=int(np.prod(arr.numblocks)), kept=len(kept),
                    bricks_to_compute=_bricks_touched(source_chunks, arr.chunks, pending, not kept))
        _say_resumed(p, info, resume is not None)
        if on_start is not None:
            on_start(info)
        with _GuardedTarget(target) as guarded:
            for row in _brick_rows(source_chunks, arr.chunks, letters, pending):
                da.store([arr.blocks[i] for i in row], [guarded] * len(row), lock=False, compute=True,
                         regions=[_block_region(arr.chunks, i) for i in row])
        # metadata last: the (hidden) partial is never a readable OME-Zarr
        if description:
            group.attrs["fijidecon"] = {str(k): str(v) for k, v in description.items()}
        group.attrs[ALL_CHUNKS_ATTR] = True
        write_multiscales_metadata(group, datasets=datasets, fmt=FormatV04(), axes=axes_meta,
                                   name=name or p.name.rsplit(".zarr", 1)[0].removesuffix(".ome"))
        if resume is not None:  # last: a partial killed before this still has its key (and all its chunks)
            for attr in (RESUME_ATTR, RESUME_INFO_ATTR):
                group.attrs.pop(attr, None)
    if resume is None:
        _drop_old_resumable(p)
    return p


def _source_chunks(array: Any, order: list[int]) -> tuple[tuple[int, ...], ...] | None:
    """A dask array's chunks (its bricks) in NGFF order; None for numpy."""
    chunks = getattr(array, "chunks", None)
    if not isinstance(chunks, tuple) or not all(isinstance(c, tuple) for c in chunks):
        return None
    return tuple(chunks[i] for i in order)


def _block_region(chunks: tuple[tuple[int, ...], ...], index: tuple[int, ...]) -> tuple[slice, ...]:
    """The slices of block ``index`` of an array with dask ``chunks``."""
    out = []
    for sizes, i in zip(chunks, index):
        start = int(sum(sizes[:i]))
        out.append(slice(start, start + int(sizes[i])))
    return tuple(out)


def _brick_rows(source, store, letters: str, pending: list) -> list[list[tuple[int, ...]]]:
    """The ``pending`` store blocks in groups computed one after another: those of one row of bricks (one
    dask chunk along Z of the source, per T, C), so that Dask holds one row's input planes at a time, as
    the planner counts (one ``store`` of every block held 2.5x a 90 MiB budget); a store block across two
    rows joins them.  Without Z (or without dask chunks): one group."""
    if source is None or "Z" not in letters or not pending:
        return [list(pending)] if pending else []
    z = letters.index("Z")
    lead = [i for i, a in enumerate(letters) if a in "TC"]
    edges = np.cumsum((0,) + tuple(source[z]))
    groups: dict[tuple, list] = {}
    for index in sorted(pending, key=lambda i: (tuple(i[k] for k in lead), i[z])):
        r = _block_region(store, index)[z]
        span = (int(np.searchsorted(edges, r.start, side="right")) - 1,
                int(np.searchsorted(edges, r.stop, side="left")) - 1)
        key = tuple(index[k] for k in lead)
        rows = groups.setdefault(key, [])
        if rows and span[0] <= rows[-1][0][1]:  # shares a row of bricks with the group before
            rows[-1][0] = (rows[-1][0][0], max(span[1], rows[-1][0][1]))
            rows[-1][1].append(index)
        else:
            rows.append([span, [index]])
    return [blocks for rows in groups.values() for _, blocks in rows]


def _bricks_touched(source, store, pending, everything: bool) -> int:
    """How many blocks of the source (dask chunks, NGFF order) the ``pending`` store blocks need."""
    if source is None:
        return 0
    if everything:
        return int(np.prod([len(c) for c in source]))
    edges = [np.cumsum((0,) + tuple(c)) for c in source]
    touched: set[tuple[int, ...]] = set()
    for index in pending:
        ranges = []
        for e, r in zip(edges, _block_region(store, index)):
            first = int(np.searchsorted(e, r.start, side="right")) - 1
            last = int(np.searchsorted(e, r.stop, side="left")) - 1
            ranges.append(range(first, last + 1))
        touched.update(itertools.product(*ranges))
    return len(touched)


def _resumable_target(tmp: Path, key: str, make: Any, arr: Any, store_chunks: tuple[int, ...],
                      resume_info: Mapping[str, Any] | None = None):
    """The group and ``s0`` array of a resumable partial, the block indices already complete,
    and why an earlier partial was discarded (None when kept or none)."""
    import zarr

    why = None
    if tmp.exists():
        try:
            group = zarr.open_group(str(tmp), mode="r+", zarr_format=2)
            target = group["s0"]
            same = (group.attrs.get(RESUME_ATTR) == key, tuple(target.shape) == tuple(arr.shape),
                    np.dtype(target.dtype) == np.dtype(arr.dtype), tuple(target.chunks) == tuple(store_chunks))
            if all(same):
                return group, target, _complete_blocks(tmp, target, arr.numblocks), None
            why = ("it was made with other inputs, parameters or bricks" if not same[0]
                   else "its shape, data type or chunks differ")
        except Exception as exc:  # noqa: BLE001 - a damaged partial is started again, never trusted
            aside = tmp.with_name(f"{tmp.name}.unreadable-{os.getpid()}")
            os.replace(tmp, aside)  # not removed: the error may pass (a disk, a permission)
            return (*_new_resumable(tmp, key, make, resume_info),
                    f"it cannot be read ({type(exc).__name__}: {exc}); it is kept as {aside.name}")
        _remove(tmp)
    return (*_new_resumable(tmp, key, make, resume_info), why)


def _new_resumable(tmp: Path, key: str, make: Any, resume_info: Mapping[str, Any] | None) -> tuple:
    group, target = make(tmp)
    group.attrs[RESUME_ATTR] = key  # before any chunk: a partial without its key is never kept
    if resume_info is not None:
        group.attrs[RESUME_INFO_ATTR] = dict(resume_info)
    return group, target, set()


def resume_info(path: str | os.PathLike) -> dict | None:
    """What a resumable partial of the output ``path`` keeps (its ``resume_info``, ``{}`` when
    none was given), or ``None`` when there is no partial.

    Raises
    ------
    OSError
        The partial exists but cannot be read (one line naming it).
    """
    import zarr

    tmp = resumable_path(path)
    if not os.path.lexists(tmp):
        return None
    try:
        group = zarr.open_group(str(tmp), mode="r", zarr_format=2)
        return dict(group.attrs.get(RESUME_INFO_ATTR) or {})
    except Exception as exc:  # noqa: BLE001 - any reading error is the same for the user
        raise OSError(f"output: the partial output {str(tmp)!r} cannot be read ({type(exc).__name__}: {exc}); "
                      "remove it, or run without --resume to start again") from None


def _complete_blocks(tmp: Path, target: Any, grid: tuple[int, ...]) -> set[tuple[int, ...]]:
    """Blocks whose chunk file is there and decodes; a chunk cut short (a killed write) is removed."""
    done = set()
    for index in np.ndindex(*grid):
        f = tmp / "s0" / "/".join(map(str, index))
        if not f.is_file():
            continue
        try:
            target.get_block_selection(index)
        except Exception:  # noqa: BLE001 - any decoding error: computed again
            f.unlink(missing_ok=True)
            continue
        done.add(index)
    return done


def _say_resumed(p: Path, info: dict, resumable: bool) -> None:
    import logging

    log = logging.getLogger("fijidecon")
    if info.get("discarded"):
        log.info(f"output: the partial output an earlier run left for {p.name} was discarded ({info['discarded']}); "
                 "started again")
    if resumable and info["kept"]:
        log.info(f"output: resumed {p.name}: {info['kept']} of {info['chunks']} chunks kept from the earlier run, "
                 f"{info['chunks'] - info['kept']} to compute ({info['bricks_to_compute']} bricks)")


def _drop_old_resumable(p: Path) -> None:
    """After a complete write without ``resume``: the resumable partial of an earlier run is of no use now."""
    old = resumable_path(p)
    if not old.exists():
        return
    try:
        with _writer_lock(old, p):
            _remove(old)
    except FileExistsError:  # a resumable run of the same name is writing it now: left alone
        return
    import logging

    logging.getLogger("fijidecon").info(f"output: removed the resumable partial output an earlier run left "
                                        f"({old.name}): {p.name} is complete now")


_NGFF_TYPE = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}


def _ngff_metadata(letters: str, cal: Calibration) -> tuple[list[dict], list[dict]]:
    """NGFF ``axes`` (name, type, unit) and the one dataset's ``scale`` for axes ``letters``."""
    spacing = dict(cal.spacing)
    unit = _ngff_unit(cal.unit)
    axes, scale = [], []
    for a in letters:
        d = a.lower()
        ax: dict[str, str] = {"name": d, "type": _NGFF_TYPE[d]}
        if d in "zyx" and unit:
            ax["unit"] = unit
        if d == "t" and "T" in spacing:
            ax["unit"] = "second"
        axes.append(ax)
        scale.append(float(spacing.get(a, 1.0)) if d in "tzyx" else 1.0)
    return axes, [{"path": "s0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}]


class _GuardedTarget:
    """A ``da.store`` target that stops writing once its ``with`` block is left by an error.

    Dask tasks already running in threads when an error or Ctrl-C reaches the caller would
    otherwise write their chunk into the temporary output after it has been removed; here
    they are dropped, and leaving the block waits (briefly) for writes in progress.
    """

    def __init__(self, target: Any):
        self.target, self.shape, self.dtype, self.ndim = target, target.shape, target.dtype, target.ndim
        self._cond, self._busy, self._stopped = threading.Condition(), 0, False

    def __getstate__(self) -> dict:  # on dask.distributed workers the guard is not shared
        return {"target": self.target}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["target"])

    def __setitem__(self, key, value) -> None:
        with self._cond:
            if self._stopped:
                return
            self._busy += 1
        try:
            self.target[key] = value
        finally:
            with self._cond:
                self._busy -= 1
                self._cond.notify_all()

    def __enter__(self) -> "_GuardedTarget":
        return self

    def __exit__(self, *exc) -> None:
        with self._cond:
            self._stopped = True
            self._cond.wait_for(lambda: self._busy == 0, timeout=60)


# ---------------------------------------------------------------------------------- plane-by-plane TIFF


def _tiff_dtype(arr: Any) -> Any:
    if arr.dtype in (np.uint8, np.uint16, np.float32):
        return arr
    _validate.warn(f"write_tiff_lazy: {arr.dtype} data converted to float32")
    return arr.astype(np.float32)


def _planes(arr: Any, n_lead: int) -> Iterator[np.ndarray]:
    """The planes of ``arr`` (leading axes first, C order), each slab of dask chunks computed once.

    A slab is one dask chunk along the first leading axis whose chunks hold more than one
    plane, single indices before it and whole axes after it: memory is one such slab.
    """
    da = _dask()
    lead = arr.shape[:n_lead]
    if not isinstance(arr, da.Array):
        for idx in np.ndindex(*lead):
            yield np.ascontiguousarray(arr[idx])
        return
    split = next((i for i in range(n_lead) if max(arr.chunks[i]) > 1), n_lead - 1 if n_lead else None)
    if split is None:  # a single plane
        yield np.ascontiguousarray(arr.compute())
        return
    bounds = np.cumsum((0,) + arr.chunks[split])
    for outer in np.ndindex(*lead[:split]):
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            slab = np.asarray(arr[outer + (slice(int(lo), int(hi)),)].compute())
            for idx in np.ndindex(*slab.shape[:n_lead - split]):
                yield np.ascontiguousarray(slab[idx])
            del slab


def write_tiff_lazy(path: str | os.PathLike, array: Any, calibration: Calibration | None = None, *,
                    overwrite: bool = False, bigtiff: bool | None = None,
                    description: Mapping[str, Any] | None = None) -> Path:
    """Write an ImageJ hyperstack (or OME-TIFF) plane by plane, from a numpy or dask array.

    Parameters
    ----------
    path : path-like
        Output ``.tif``/``.tiff`` (ImageJ hyperstack, axes transposed to ImageJ's TZCYX(S)
        order, ``spacing``/``unit``/``finterval`` and resolution tags) or ``.ome.tif``
        (OME-TIFF in the array's own order, physical sizes).  Its folder must exist.
    array : numpy.ndarray or dask.array.Array
        uint8, uint16 or float32 (other numeric types are converted to float32 with a
        warning), axes as in ``calibration.axes``.  Dask input is computed one slab of
        chunks at a time (see Notes) and written plane by plane.
    calibration : Calibration, optional
        Axes, voxel size and unit (default: by number of dimensions, uncalibrated).
    overwrite : bool
        Replace an existing file (only once the new one is complete).
    bigtiff : bool, optional
        Write BigTIFF.  Default: OME-TIFF switches to BigTIFF above 4 GB; an ImageJ
        hyperstack stays a classic TIFF that, above 4 GB, holds one IFD and contiguous
        pixels (as ImageJ writes and reads such files; other readers see one plane).
        ``True`` writes a BigTIFF ImageJ hyperstack (Bio-Formats and tifffile read it, ImageJ's
        own TIFF reader does not).
    description : mapping, optional
        Extra ImageJ ``Info`` properties (ImageJ) or OME ``Description``.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError, TypeError, FileExistsError, FileNotFoundError, PermissionError
        As :func:`fijidecon.io.write_image`; checked before any computation.

    Notes
    -----
    Memory: one slab — one dask chunk along the outermost axis (in the file's order) whose
    chunks hold more than one plane, with every inner axis whole (e.g. for Z chunks of 16
    planes and 3 channels, 16×3 planes).  Atomic as :func:`write_ome_zarr`.
    """
    p = Path(path)
    if p.suffix.lower() not in (".tif", ".tiff"):
        raise InputError(f"output: {str(p)!r} is not a .tif/.tiff (or .ome.tif) name")
    _check_array(array)
    arr = _tiff_dtype(array)
    cal = calibration or Calibration.default(len(arr.shape))
    axes = _io.check_axes(cal.axes, len(arr.shape), name="calibration axes")
    _check_target(p, overwrite)
    ome = _io.is_ome_path(p)
    if ome:
        meta = _io.ome_metadata(axes, cal, description)
    else:
        order = [axes.index(ax) for ax in _io.IMAGEJ_AXES if ax in axes]
        arr = arr.transpose(order)
        axes = "".join(axes[i] for i in order)
        meta = _io.imagej_metadata(axes, cal, description)
    n_lead = len(axes) - (3 if axes.endswith("S") else 2)
    kw: dict[str, Any] = {"ome": True, "photometric": "rgb" if axes.endswith("S") else "minisblack"} if ome else \
        {"imagej": True, "resolution": (1.0 / cal.dx, 1.0 / cal.dy)}
    if bigtiff is None:
        bigtiff = ome and int(np.prod(arr.shape)) * arr.dtype.itemsize > 2**32 - 2**25
    with _atomic_output(p, overwrite) as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(truncating ImageJ file|nonconformant BigTIFF ImageJ)")
        tifffile.imwrite(tmp, _planes(arr, n_lead), shape=tuple(arr.shape), dtype=arr.dtype, metadata=meta,
                         bigtiff=bool(bigtiff), **kw)
    return p


# ---------------------------------------------------------------------------- one entry for fijidecon.io


def write_big(path: str | os.PathLike, array: Any, calibration: Calibration | None = None, *,
              overwrite: bool = False, description: Mapping[str, Any] | None = None, **resumable: Any) -> Path:
    """Write ``array`` by the output's name: ``.zarr`` → :func:`write_ome_zarr`, else
    :func:`write_tiff_lazy` (what :func:`fijidecon.io.write_image` calls for a ``.zarr`` name
    or a dask array).  ``resume``, ``report``, ``on_start``: see :func:`write_ome_zarr`
    (OME-Zarr only: ``ValueError`` for a TIFF name)."""
    if is_zarr_path(path):
        return write_ome_zarr(path, array, calibration, overwrite=overwrite, description=description, **resumable)
    if resumable.get("resume") is not None:
        raise InputError(f"resume: only an OME-Zarr output (.zarr) can be resumed, not {Path(path).name!r}")
    return write_tiff_lazy(path, array, calibration, overwrite=overwrite, description=description)


def write_big_and_sidecar(path: str | os.PathLike, array: Any, calibration: Calibration | None, record: Any, *,
                          overwrite: bool = False, description: Mapping[str, Any] | None = None,
                          **resumable: Any) -> Path:
    """:func:`write_big`, then the JSON sidecar (:func:`fijidecon.io.write_sidecar`); if the
    sidecar cannot be written the new image is removed again (both or neither).  ``record``
    is the sidecar record, or a callable that gets the seconds the image took to write."""
    import time

    p = Path(path)
    _check_target(_io.sidecar_path(p), overwrite)
    t0 = time.perf_counter()
    write_big(p, array, calibration, overwrite=overwrite, description=description, **resumable)
    try:
        rec = record(time.perf_counter() - t0) if callable(record) else record
        _io.write_sidecar(p, rec, overwrite=overwrite)
    except BaseException:
        if resumable.get("resume") is not None:
            _back_to_resumable(p, str(resumable["resume"]), resumable.get("resume_info"))
        else:
            _remove(p)
        raise
    return p


def _back_to_resumable(p: Path, key: str, info: Mapping[str, Any] | None) -> None:
    """A complete resumable output whose sidecar could not be written is put back as the partial
    (with its key), so that the same command with ``--resume`` finishes it from its chunks."""
    import zarr

    tmp = resumable_path(p)
    try:
        if os.path.lexists(tmp):
            _remove(p)
            return
        os.replace(p, tmp)
        group = zarr.open_group(str(tmp), mode="r+", zarr_format=2)
        group.attrs[RESUME_ATTR] = key
        if info is not None:
            group.attrs[RESUME_INFO_ATTR] = dict(info)
        KEPT.append(tmp)
    except OSError:  # pragma: no cover - the folder went away meanwhile
        _remove(p)
