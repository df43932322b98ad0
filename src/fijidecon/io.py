"""TIFF files with calibration and axes, and provenance sidecars.

* :func:`read_image` reads ImageJ hyperstack TIFFs (axes in ImageJ order, a subset of
  TZCYX(S); ``spacing``, ``unit``), OME-TIFFs (any axis order of TCZYX(S); physical sizes,
  their units converted to one length unit), plain 2D/3D TIFFs (resolution tags), and
  ``.npy`` arrays (axes given by the caller, or the default for their number of axes).
* :func:`write_image` writes any axes: an ImageJ hyperstack TIFF (transposed to ImageJ's
  TZCYX(S) order) or, for a name ending in ``.ome.tif``/``.ome.tiff``, an OME-TIFF in the
  array's own axis order with its physical sizes and unit.  Writes are atomic (temporary
  file + rename) and never replace an existing file unless ``overwrite=True``.
* :func:`check_output` checks, before a computation, that an output can be written.
* OME-Zarr (``.zarr``/``.ome.zarr`` names) and dask arrays go through
  :mod:`fijidecon.lazy_io` (the ``big`` extra): read, written chunk by chunk or plane by plane.
* :func:`write_sidecar` writes the strict-JSON provenance record kept next to each output;
  :func:`write_image_and_sidecar` writes an image and its sidecar together (both or neither).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import logging
import math
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import tifffile

from . import _validate
from .calibration import Calibration, seconds_per, unit_factor
from .errors import InputError, InputTypeError, OutputExistsError

__all__ = ["read_image", "write_image", "write_image_and_sidecar", "check_output", "check_axes", "is_ome_path", "write_sidecar",
           "sidecar_path", "sha256_file", "atomic_write_bytes", "jsonable", "IMAGEJ_AXES"]

#: ImageJ hyperstack axis order (numpy order); a file holds a subset of it.
IMAGEJ_AXES = "TZCYXS"
#: Axis letters a file may carry (T time, C channel, Z, Y, X, S samples of an RGB pixel).
_LETTERS = "TCZYXS"
_MICRON_SPELLINGS = ("micron", "microns", "µm", "\u03bcm", "um", "\\u00B5m", "\\u00b5m", "micrometer",
                     "micrometre")


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _is_zarr(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a Zarr folder (``.zarr``, ``.ome.zarr``)."""
    return str(path).rstrip("/\\").lower().endswith(".zarr")


def is_ome_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an OME-TIFF (``.ome.tif`` or ``.ome.tiff``, any case)."""
    name = Path(path).name.lower()
    return name.endswith((".ome.tif", ".ome.tiff"))


def check_axes(axes: str, ndim: int | None = None, name: str = "axes") -> str:
    """Check axis letters and return them upper-cased.

    Parameters
    ----------
    axes : str
        One letter per array axis, numpy order, from ``T`` (time), ``C`` (channel),
        ``Z``, ``Y``, ``X`` and ``S`` (RGB samples, last); ``Y`` and ``X`` are required.
    ndim : int, optional
        The array's number of dimensions, which ``axes`` must match.
    name : str
        The parameter named in error messages.

    Raises
    ------
    ValueError
        Unknown or repeated letters, ``Y`` or ``X`` missing, or a length other than ``ndim``.
    """
    if not isinstance(axes, str):
        raise InputTypeError(f"{name}: expected a string of axis letters such as 'CZYX', got {type(axes).__name__}")
    up = axes.strip().upper()
    bad = sorted({a for a in up if a not in _LETTERS})
    if bad:
        raise InputError(f"{name}: unknown axis letter(s) {''.join(bad)!r} in {axes!r} (use T, C, Z, Y, X, S)")
    if len(set(up)) != len(up):
        raise InputError(f"{name}: repeated axis letter in {axes!r}")
    if "Y" not in up or "X" not in up:
        raise InputError(f"{name}: {axes!r} needs both Y and X")
    if ndim is not None and len(up) != ndim:
        raise InputError(f"{name}: {axes!r} has {len(up)} letters for an array with {ndim} dimensions")
    return up


def _length_unit(unit: str) -> str:
    """A unit spelling as this package writes it (``micron`` for µm/um/…), else unchanged."""
    u = str(unit).strip()
    return "micron" if u in _MICRON_SPELLINGS or u.lower() in _MICRON_SPELLINGS else u


def _resolution_spacing(page) -> tuple[float | None, float | None]:
    def one(tag):
        t = page.tags.get(tag)
        if t is None:
            return None
        num, den = t.value if isinstance(t.value, tuple) else (t.value, 1)
        if not num:
            return None
        # rationals hold ~7 significant digits: round the reciprocal to that
        return float(f"{den / num:.7g}")

    return one("XResolution"), one("YResolution")


def read_image(path: str | os.PathLike, axes: str | None = None) -> tuple[np.ndarray, Calibration]:
    """Read an image, its axes and its calibration.

    Parameters
    ----------
    path : path-like
        A TIFF (ImageJ hyperstack, OME-TIFF or plain), a ``.npy`` file, or an OME-Zarr
        folder (``.zarr``; read by :func:`fijidecon.lazy_io.read_lazy`, then loaded).
    axes : str, optional
        One letter per array axis (e.g. ``"CZYX"``): the axes of a ``.npy`` array, or an
        override of a TIFF's own axes.  Default: the file's axes; for ``.npy`` the
        default by number of dimensions (2 ``YX``, 3 ``ZYX``, 4 ``CZYX``, 5 ``TCZYX``).

    Returns
    -------
    array : numpy.ndarray
        The pixel data in the file's axis order: ImageJ hyperstacks in ImageJ order
        (a subset of T, Z, C, Y, X, e.g. (z, c, y, x)), OME-TIFFs in their own order
        (e.g. (c, z, y, x)), plain stacks (z, y, x).  The file's dtype.
    calibration : Calibration
        ``axes`` (one letter per array axis), voxel size per spatial axis and one length
        unit (OME sizes in different units are converted to the X unit; µm is written
        ``"micron"``).  Uncalibrated files give unit ``"pixel"`` and spacing 1.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a readable TIFF/``.npy``, an empty array, axes that do not fit the array,
        or axis letters this package does not know (give ``axes=``).

    Examples
    --------
    >>> arr, cal = read_image("stack.tif")  # doctest: +SKIP
    >>> cal.axes, cal.voxel_size("ZYX"), cal.unit      # doctest: +SKIP
    ('ZCYX', (0.2, 0.065, 0.065), 'micron')
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InputTypeError(f"path: expected a file path (str or pathlib.Path), got {type(path).__name__}")
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"image: no such file {str(p)!r}")
    if _is_zarr(p):  # OME-Zarr: read through fijidecon.lazy_io (the 'big' extra)
        from .lazy_io import read_lazy
        arr, cal = read_lazy(p, axes)
        return arr.compute(), cal
    if p.is_dir():
        raise IsADirectoryError(f"image: {str(p)!r} is a folder, not an image file")
    if p.suffix.lower() == ".npy":
        arr, cal = _read_npy(p, guess=axes is None)
    else:
        arr, cal = _read_tiff(p)
    if arr.size == 0:
        raise InputError(f"image: {str(p)!r} holds an empty array {arr.shape}")
    if axes is not None:
        if p.suffix.lower() != ".npy":  # a .npy keeps its axes of length 1; a TIFF does not
            arr, cal = singletons_back(arr, cal, axes)
        cal = given_axes(cal, axes, arr.ndim, p, own=p.suffix.lower() != ".npy")
    else:
        try:
            check_axes(cal.axes, arr.ndim)
        except ValueError:
            raise InputError(f"image: {str(p)!r} has axes {cal.axes!r} for shape {arr.shape}; "
                             "give its axes (axes=, --axes)") from None
    return arr, cal


def stored_layout(path: str | os.PathLike, shape: tuple[int, ...], axes: str) -> tuple[tuple[int, ...], str]:
    """The shape and axes an image of ``shape``/``axes`` has in the file ``path`` (what
    :func:`write_image` stores, so that messages and sidecars describe the file): an OME-Zarr
    stores (T, C, Z, Y, X) order (NGFF), an OME-TIFF the given order, any other TIFF ImageJ's
    TZCYX(S) order.  A TIFF does not keep T, C or Z axes of length 1 (a (1, 31, 31) ZYX PSF reads
    back as (31, 31) YX): they are left out here too."""
    p = Path(path)
    if _is_zarr(p):
        from .lazy_io import _ngff_order

        letters, order = _ngff_order(axes)
    else:
        order = (list(range(len(axes))) if is_ome_path(p) else
                 [axes.index(ax) for ax in IMAGEJ_AXES if ax in axes])
        order = [i for i in order if not (axes[i] in "TCZ" and int(shape[i]) == 1)]
        letters = "".join(axes[i] for i in order)
    return tuple(int(shape[i]) for i in order), letters


def singletons_back(arr: Any, cal: Calibration, axes: str) -> tuple[Any, Calibration]:
    """``axes`` naming T, C or Z axes the file does not keep (a TIFF stores no axis of length 1: a
    one-plane Z stack reads back as YX, its Z spacing in the calibration): the array (numpy or dask)
    with those axes of length 1 put back, so ``read_image(path, axes="ZYX")`` gives (1, Y, X).  Otherwise unchanged."""
    want = str(axes).upper()
    if len(want) <= arr.ndim or len(set(want)) != len(want):
        return arr, cal
    kept = "".join(a for a in want if a in cal.axes)
    if kept != cal.axes or any(a not in "TCZ" for a in want if a not in cal.axes):
        return arr, cal
    out = arr
    for i, a in enumerate(want):
        if a not in cal.axes:
            out = out[(slice(None),) * i + (None,)]  # numpy or dask
    return out, cal.with_axes(want)


def given_axes(cal: Calibration, axes: str, ndim: int, path: Path, own: bool = True) -> Calibration:
    """``cal`` with the ``axes`` the user gave; a warning when they only reorder the file's own
    (``own``: the file states its axes), which relabels the stored array (a ZCYX hyperstack
    of 40 planes and 2 channels read as CZYX gives 40 channels of 2 planes)."""
    axes = check_axes(axes, ndim)
    spatial = "".join(a for a in axes if a in "ZYX")
    in_order = spatial == "".join(a for a in "ZYX" if a in axes)  # else refused later, by itself
    if own and in_order and axes != cal.axes and sorted(axes) == sorted(cal.axes):
        _validate.warn(f"axes: {axes!r} given for {path.name}, whose own axes are {cal.axes!r}: the stored array is "
                       "read with these labels (relabelled, not transposed); leave out axes= (CLI --axes) to use the "
                       "file's", RuntimeWarning)
    return cal.with_axes(axes)


def check_npy_header(p: Path) -> None:
    """``InputError`` for a ``.npy`` name without NumPy's header (numpy calls a text file 'pickled data')."""
    with open(p, "rb") as fh:
        if fh.read(6) != b"\x93NUMPY":
            raise InputError(f"image: {str(p)!r} is not a .npy file (no NumPy header)")


def _read_npy(p: Path, guess: bool = True) -> tuple[np.ndarray, Calibration]:
    check_npy_header(p)
    try:
        arr = np.load(p, allow_pickle=False)
    except Exception as exc:  # EOFError, ValueError, OSError … for damaged files
        raise InputError(f"image: {str(p)!r} is not a readable .npy file ({type(exc).__name__}: {exc})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        raise InputError(f"image: {str(p)!r} does not hold a numeric array")
    if arr.ndim < 2 or arr.ndim > 5:
        raise InputError(f"image: {str(p)!r} has {arr.ndim} dimensions; expected 2 to 5")
    default = Calibration.default(arr.ndim)
    return arr, default.with_axes(_npy_axes(arr, p)) if guess else default


def _npy_axes(arr: np.ndarray, p: Path) -> str:
    """Default axes of a ``.npy`` array: by ``ndim``, except RGB for ``uint8`` ``(Y, X, 3)`` and
    ``(Z, Y, X, 3)`` (as :func:`fijidecon.fiji.convert.to_imageplus`); any other last axis of 3 or 4
    values is taken as X with a warning that names ``axes=``."""
    default = Calibration.default(arr.ndim).axes
    n = arr.shape[-1]
    _validate.warn_default_czyx(arr.shape, f"image: {p.name}", "its axes (axes=, --axes) as ")
    if arr.ndim < 3 or n not in (3, 4):
        return default
    if n == 3 and arr.dtype == np.uint8 and arr.ndim in (3, 4):
        return "ZYXS"[-arr.ndim:]
    _validate.warn(f"image: {p.name} {arr.shape} {arr.dtype} taken as axes {default!r}, i.e. {n} pixels wide "
                   f"(colour samples?); give its axes (axes=, --axes) to say which axis is which")
    return default


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:  # without tifffile's object names ("<tifffile.TiffTag 283 @142>")
        self.messages.append(" ".join(re.sub(r"<tifffile\.[^>]*>", "", record.getMessage()).split()))


def _read_tiff(p: Path) -> tuple[np.ndarray, Calibration]:
    log = logging.getLogger("tifffile")
    collect = _Collect()
    log.addHandler(collect)  # tifffile logs damage; it becomes an error or one warning below
    try:
        arr, axes, spacing, unit, images = _read_tiff_parts(p)
    finally:
        log.removeHandler(collect)
    planes = int(np.prod([n for a, n in zip(axes or "", arr.shape) if a not in "YXS"] or [1]))
    if images and images > planes:
        raise InputError(f"image: {str(p)!r} is truncated or damaged: its ImageJ header says {images} images, "
                         f"{planes} could be read")
    lost = _pages_lost(collect.messages)
    if lost:
        raise InputError(f"image: {str(p)!r} is truncated or damaged: pages are missing or do not match its header "
                         f"({lost})")
    for msg in dict.fromkeys(collect.messages):
        _validate.warn(f"image: {p.name}: {msg}")
    if axes is None or len(axes) != arr.ndim:
        axes = Calibration.default(arr.ndim).axes if arr.ndim <= 5 else axes
    if unit == "pixel" and all(abs(v - 1.0) < 1e-12 for v in spacing.values()):
        spacing = {}
    cal = Calibration(axes=axes or "", spacing=tuple(sorted((k, float(v)) for k, v in spacing.items() if v > 0)),
                      unit=unit)
    return arr, cal


#: tifffile's log messages that mean pages of the file could not be reached (cut short, or
#: a broken chain of IFDs): what it reads then is only part of the image.
_LOST_PAGES = ("invalid page offset", "invalid IFD", "corrupted file", "truncated",
               "series is missing", "series expected")  # the last two: an OME header that the pages do not match


def _pages_lost(messages: list[str]) -> str | None:
    """The first tifffile message saying that pages are missing (without tifffile's object
    names such as ``<tifffile.TiffPages @8>``), or None."""
    return next((m for m in messages if any(k.lower() in m.lower() for k in _LOST_PAGES)), None)


def _read_tiff_parts(p: Path):
    """Pixels, axes, spacing, unit and the ImageJ header's image count of a TIFF."""
    try:
        tif = tifffile.TiffFile(p)
    except Exception as exc:  # tifffile raises several types for non-TIFF input
        raise InputError(f"image: {str(p)!r} is not a readable TIFF ({_short(exc)})") from None
    with tif:
        try:
            series = tif.series[0]
            arr = series.asarray()
            axes = _file_axes(series.axes)
            if tif.is_ome and tif.ome_metadata:
                spacing, unit = _ome_calibration(tif.ome_metadata, p.name)
            else:
                spacing, unit = _imagej_or_plain_calibration(tif)
            images = int((tif.imagej_metadata or {}).get("images", 0) or 0)
            _check_imagej_count(tif, images, p)
            _warn_other_series(tif, p.name)
        except Exception as exc:  # damaged files: IndexError, struct.error, short reads …
            if str(exc).startswith("image: "):
                raise
            raise InputError(f"image: {str(p)!r} is not a readable TIFF ({_short(exc)})") from None
    return arr, axes, spacing, unit, images


def _check_imagej_count(tif: Any, images: int, p: Path) -> None:
    """An ImageJ header counting fewer images than the file's pages: readers take the header's
    count and drop the rest, silently; refused as damaged (more images than pages is checked
    once the pixels are read)."""
    if images and len(tif.pages) > images:
        raise InputError(f"image: {str(p)!r} is truncated or damaged: its ImageJ header says {images} images, the "
                         f"file holds {len(tif.pages)} pages")


def _warn_other_series(tif: Any, name: str) -> None:
    """A TIFF holding several series (a thumbnail, positions, pages of other shapes): the first is
    read; say which, and what else the file holds."""
    if len(tif.series) > 1:
        shapes = ", ".join("x".join(map(str, s.shape)) for s in tif.series[1:4])
        more = " …" if len(tif.series) > 4 else ""
        first = "x".join(map(str, tif.series[0].shape))
        _validate.warn(f"image: {name} holds {len(tif.series)} series of images; the first ({first}) is read, not "
                       f"the others ({shapes}{more}); save the one to deconvolve on its own", RuntimeWarning)


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _file_axes(series_axes: str) -> str | None:
    """tifffile's axis letters as this package's: I/Q (image sequence, unknown) are Z
    when there is no Z; other letters tifffile uses (E, H, R, …) are not supported."""
    axes = series_axes.upper()
    for other in "IQ":
        if other in axes and "Z" not in axes:
            axes = axes.replace(other, "Z", 1)
    return axes if all(a in _LETTERS for a in axes) and len(set(axes)) == len(axes) else None


def _imagej_or_plain_calibration(tif) -> tuple[dict[str, float], str]:
    spacing: dict[str, float] = {}
    dx, dy = _resolution_spacing(tif.pages[0])
    ij = tif.imagej_metadata or {}
    if dx:
        spacing["X"] = dx
    if dy:
        spacing["Y"] = dy
    if ij and ij.get("unit") not in (None, "pixel", "") and not (dx and dy):  # a unit, but a resolution of 0
        axis = "/".join(a for a, d in (("X", dx), ("Y", dy)) if not d)
        warn_spacing_taken_as_1(Path(tif.filehandle.name).name, f"its {axis} resolution tag is 0 or missing", axis)
    if ij.get("spacing") is not None:
        z = _float_or_nan(ij["spacing"])
        if z > 0 and math.isfinite(z):
            spacing["Z"] = z
        else:
            warn_spacing_taken_as_1(Path(tif.filehandle.name).name,
                                    f"its ImageJ spacing {ij['spacing']!r} is not a valid Z spacing")
    if ij.get("finterval"):  # frame interval in ImageJ's time unit (tunit, default sec): seconds, as from_imageplus
        spacing["T"] = float(ij["finterval"]) * (seconds_per(ij.get("tunit")) or 1.0)
    unit = _length_unit(re.sub(r"\\u([0-9A-Fa-f]{4})", lambda m: chr(int(m.group(1), 16)),  # ImageJ's escapes
                               str(ij.get("unit", "pixel"))))
    if not ij and "X" in spacing:  # plain TIFF: resolution unit tag
        ru = tif.pages[0].tags.get("ResolutionUnit")
        if ru is not None and int(ru.value) == 3:  # centimeter
            spacing = {k: v * 1e4 for k, v in spacing.items()}
            unit = "micron"
            if len(tif.pages) > 1:
                warn_spacing_taken_as_1(Path(tif.filehandle.name).name, "resolution tags give X and Y only")
        else:
            spacing, unit = {}, "pixel"
    return spacing, unit


def _ome_calibration(xml: str, name: str = "image") -> tuple[dict[str, float], str]:
    root = ET.fromstring(xml)
    pixels = next((el for el in root.iter() if el.tag.endswith("Pixels")), None)
    spacing: dict[str, float] = {}
    if pixels is None:
        return spacing, "pixel"
    units: dict[str, str] = {}
    invalid: dict[str, str] = {}
    for ax in "XYZ":
        v = pixels.get(f"PhysicalSize{ax}")
        size = _float_or_nan(v)
        if v is not None and size > 0 and math.isfinite(size):
            spacing[ax] = float(v)
            units[ax] = pixels.get(f"PhysicalSize{ax}Unit", "µm")  # the OME schema's default unit
        elif v is not None:
            invalid[ax] = v
    t = pixels.get("TimeIncrement")
    if t is not None and float(t) > 0:  # frame interval, in seconds
        spacing["T"] = float(t) * (seconds_per(pixels.get("TimeIncrementUnit", "s")) or 1.0)
    if not units:
        return spacing, "pixel"
    for ax, v in invalid.items():  # some sizes given: the others are 1 unit, said
        what = "Z spacing" if ax == "Z" else "size"
        warn_spacing_taken_as_1(name, f"its OME PhysicalSize{ax} {v!r} is not a valid {what}", ax)
    for ax in "XY":
        if pixels.get(f"PhysicalSize{ax}") is None:
            warn_spacing_taken_as_1(name, f"OME metadata without PhysicalSize{ax}", ax)
    if pixels.get("PhysicalSizeZ") is None and int(pixels.get("SizeZ", "1") or 1) > 1:
        warn_spacing_taken_as_1(name, "OME metadata without PhysicalSizeZ")
    target = units.get("X", next(iter(units.values())))
    for ax, u in units.items():
        if u != target:
            try:
                spacing[ax] *= unit_factor(u, target)
            except ValueError:
                raise InputError(f"image: {name}: OME PhysicalSize{ax}Unit {u!r} cannot be converted to {target!r}"
                                 ) from None
    return spacing, _length_unit(target)


#: What the warning of a file with some voxel sizes but not all valid says (:func:`warn_spacing_taken_as_1`).
SPACING_TAKEN_AS_1 = "is taken as 1 unit of its"


def _float_or_nan(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def warn_spacing_taken_as_1(name: str, why: str, axis: str = "Z") -> None:
    """The file states some voxel sizes but no valid one for ``axis``: that axis is 1 unit (as
    ImageJ reads it), which resamples a calibrated PSF to a size nobody gave, so say so."""
    what = "the Z spacing" if axis == "Z" else f"the {axis} pixel size"
    of = "pixel size" if axis == "Z" else "length unit"
    _validate.warn(f"image: {name}: {why}: {what} {SPACING_TAKEN_AS_1} {of}; give the voxel size "
                   "with --voxel-size 'Z,Y,X UNIT' on the CLI (voxel_size= in the API, Image > Properties in ImageJ)",
                   RuntimeWarning)


_PARTIAL = ".partial-"  # temporary files: .<name>.partial-<pid>.<random>.part[.tif]


def _temp_sibling(p: Path, suffix: str) -> tuple[int, str]:
    """``mkstemp`` next to ``p``, named ``.<name>.partial-<pid>.<random><suffix>``, after removing
    the temporary files of ``p`` that killed processes left (their pid no longer runs)."""
    _remove_stale_temps(p)
    return tempfile.mkstemp(prefix=f".{p.name}{_PARTIAL}{os.getpid()}.", suffix=suffix, dir=p.parent)


def _remove_stale_temps(p: Path) -> list[Path]:
    """Remove ``.<name>.partial-<pid>.*`` files next to ``p`` whose process is gone (SIGKILL,
    power loss); files of live processes (another run writing now) are left alone."""
    removed = []
    try:
        candidates = list(p.parent.glob(f".{p.name}{_PARTIAL}*"))
    except OSError:
        return removed
    for q in candidates:
        pid = q.name[len(p.name) + 1 + len(_PARTIAL):].split(".")[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _pid_alive(int(pid)) or not q.is_file():
            continue
        try:
            q.unlink()
            removed.append(q)
        except OSError:
            pass
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by another user
        return True
    return True


def _write_failed(p: Path, exc: OSError) -> OSError:
    """An error writing ``p`` as one line naming it (a full disk said so)."""
    why = exc.strerror or " ".join(str(exc).split()) or type(exc).__name__
    try:
        free = shutil.disk_usage(p.parent).free
    except OSError:
        free = None
    if exc.errno == errno.ENOSPC or (free is not None and free < (1 << 20)):
        why = f"{why}; the disk is full ({free:,} bytes free in {str(p.parent)!r})" if free is not None else why
    msg = f"output: cannot write {str(p)!r}: {why}; nothing was written"
    out = OSError(msg)  # one line ("[Errno 28] " would come first with OSError(errno, msg))
    out.errno = exc.errno
    return out


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    p = Path(path)
    _check_target(p, overwrite)
    fd, tmp = _temp_sibling(p, ".part")
    try:
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        except OSError as exc:
            raise _write_failed(p, exc) from None
        _finish(tmp, p, overwrite)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return p


def _exists(p: Path) -> str:
    return f"output: {str(p)!r} exists (use overwrite=True or --overwrite to replace it)"


def _check_target(p: Path, overwrite: bool) -> None:
    if p.is_dir():
        raise IsADirectoryError(f"output: {str(p)!r} is a folder")
    if p.exists() and not overwrite:
        raise OutputExistsError(_exists(p))
    parent = p.parent
    if not parent.exists():
        raise FileNotFoundError(f"output: folder {str(parent)!r} does not exist")
    if not parent.is_dir():
        raise NotADirectoryError(f"output: {str(parent)!r} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"output: folder {str(parent)!r} is not writable")


def check_output(path: str | os.PathLike, axes: str | None = None, *, overwrite: bool = False,
                 sidecar: bool = False, shape: tuple[int, ...] | None = None, copies: int = 1) -> Path:
    """Check, before computing, that :func:`write_image` can write ``path``.

    Parameters
    ----------
    path : path-like
        The output file: a ``.tif``/``.tiff`` name (ImageJ hyperstack), ``.ome.tif``/
        ``.ome.tiff`` (OME-TIFF) or ``.zarr``/``.ome.zarr`` (OME-Zarr folder).
    axes : str, optional
        The result's axes (e.g. ``"CZYX"``); checked to be writable.
    overwrite : bool
        Whether an existing file may be replaced.
    sidecar : bool
        Also check the JSON sidecar ``<path>.json`` (see :func:`sidecar_path`).
    shape : tuple of int, optional
        The result's shape (with ``axes``): checked to be writable to a TIFF, and its float32
        bytes (times ``copies``: the result and its snapshots) to fit the folder's free space.
    copies : int
        How many files of that size the run writes.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileExistsError
        The output (or its sidecar) exists and ``overwrite`` is false.
    FileNotFoundError, NotADirectoryError, PermissionError, IsADirectoryError
        The folder is missing, not a folder or not writable; the path is a folder.
    ValueError
        Not a TIFF name, or axes that cannot be written.
    OSError
        With ``shape``: a float32 TIFF of that shape does not fit on the disk (an OME-Zarr,
        compressed, is not checked).
    """
    p = Path(path)
    _check_name_length(p)
    if _is_zarr(p):  # an OME-Zarr folder (fijidecon.lazy_io)
        from .lazy_io import _check_target as _check_folder_target
        _check_folder_target(p, overwrite)
    elif p.suffix.lower() not in (".tif", ".tiff"):
        raise InputError(f"output: {str(p)!r} is not a .tif/.tiff (or .ome.tif, .ome.zarr) name")
    else:
        _check_target(p, overwrite)
    if sidecar:
        _check_target(sidecar_path(p), overwrite)
    if axes is not None:
        check_axes(axes, name="output axes")
        if shape is not None and not _is_zarr(p):
            _check_tiff_shape(tuple(shape), axes)
    if shape is not None:
        _check_free_space(p, int(np.prod(shape, dtype=np.float64)) * 4, copies)
    return p


def _check_free_space(p: Path, nbytes: int, copies: int = 1) -> None:
    """A float32 result of ``nbytes`` (``copies`` files of it: the result and its snapshots) that cannot
    fit on the output's disk is refused before computing (a TIFF is written uncompressed; an OME-Zarr
    compresses: not checked)."""
    import shutil

    try:
        free = shutil.disk_usage(p.parent).free
    except OSError:  # not measurable (e.g. a special file system): the write itself will tell
        return
    if nbytes * copies <= free or _is_zarr(p):  # an OME-Zarr's compressed size is not known before writing
        return
    what = "the float32 result" if copies == 1 else f"the float32 result and {copies - 1} snapshot(s)"
    size = _validate.format_bytes
    raise OSError(f"output: {str(p)!r} needs about {size(nbytes * copies)} ({what}) and its folder has "
                  f"{size(free, 'down')} free; free some space or write elsewhere (nothing was computed)")


def _check_resolution(cal: Calibration) -> None:
    """An ImageJ TIFF stores X and Y pixel sizes as resolution tags, 1/size as a ratio of 32-bit
    integers: a size whose inverse does not fit would be stored as another number."""
    for ax, size in (("X", cal.dx), ("Y", cal.dy)):
        if not 1.0 / (2**32 - 1) <= 1.0 / size <= 2**32 - 1:
            raise InputError(f"calibration: the {ax} pixel size {size:g} {cal.unit} cannot be stored in a TIFF's "
                             "resolution tags (1/size must lie within 2.3e-10 and 4.3e9); write an .ome.tif, or "
                             "give the size in another unit")


def _check_tiff_shape(shape: tuple[int, ...], axes: str) -> None:
    """tifffile reads a stack of planes 1 pixel wide back in another shape: refused."""
    if len(shape) >= 3 and "X" in axes and shape[axes.index("X")] == 1:
        raise InputError(f"array: a stack of planes 1 pixel wide (shape {tuple(shape)}, axes {axes}) does not read "
                         "back the same from a TIFF; transpose it so that X is longer than 1, or save it with numpy")


def _check_name_length(p: Path) -> None:
    """The output's temporary siblings (``.<name>.json.partial-<pid>.<random>.part.tif``) must fit
    the folder's file system, or the run would fail at the end, after the computation."""
    try:
        limit = os.pathconf(p.parent if str(p.parent) else ".", "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    longest = len(os.fsencode(f".{p.name}.json{_PARTIAL}{os.getpid()}.12345678.part.tif"))
    if longest > limit:
        extra = longest - len(os.fsencode(p.name))
        raise InputError(f"output: the name {p.name[:40]!r}… is {len(os.fsencode(p.name))} bytes long; this folder's "
                         f"file system takes {limit}, and the run's temporary files add {extra}: choose a shorter name")


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _finish(tmp: str, p: Path, overwrite: bool) -> None:
    os.chmod(tmp, _umask_mode())  # mkstemp makes 0600 files; give the usual mode
    if overwrite:
        os.replace(tmp, p)
    else:
        # link fails if the target appeared meanwhile: never clobber
        try:
            os.link(tmp, p)
        except FileExistsError:
            raise OutputExistsError(_exists(p)) from None
        except OSError:  # file systems without hard links
            if p.exists():
                raise OutputExistsError(_exists(p)) from None
            os.replace(tmp, p)
            return
        os.unlink(tmp)


def _writable_array(array: Any) -> np.ndarray:
    a = np.asarray(array)
    if a.size == 0:
        raise InputError(f"array: empty (shape {a.shape}); nothing to write")
    if a.ndim < 2 or a.ndim > 6:
        raise InputError(f"array: expected 2 to 6 dimensions, got {a.ndim}")
    if a.dtype not in (np.uint8, np.uint16, np.float32):
        if a.dtype not in (np.float64, np.float16, np.int16, np.int32, np.uint32, np.int8, np.int64, np.uint64,
                           np.bool_):
            raise InputTypeError(f"array: dtype {a.dtype} cannot be written as a TIFF for ImageJ")
        _validate.warn(f"write_image: {a.dtype} data converted to float32")
        a = a.astype(np.float32)
    return a


def _ome_unit(unit: str) -> str | None:
    """The OME spelling of a length unit (``micron`` → ``µm``), or None for pixels/unknown."""
    try:
        unit_factor(unit, "nm")
    except ValueError:
        return None
    return "µm" if _length_unit(unit) == "micron" else unit


def write_image(
    path: str | os.PathLike,
    array: np.ndarray,
    calibration: Calibration | None = None,
    *,
    overwrite: bool = False,
    description: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``array`` with its axes and calibration as an ImageJ hyperstack or OME-TIFF.

    Parameters
    ----------
    path : path-like
        Output file.  A name ending in ``.ome.tif``/``.ome.tiff`` gives an OME-TIFF in the
        array's own axis order (``PhysicalSize{X,Y,Z}`` and their unit); any other name an
        ImageJ hyperstack TIFF (the array is transposed to ImageJ's TZCYX(S) order;
        ``spacing``, ``unit`` and resolution tags).  Its folder must exist.  A ``.zarr``
        name writes an OME-Zarr (:func:`fijidecon.lazy_io.write_ome_zarr`); a dask
        ``array`` is written plane by plane (:func:`fijidecon.lazy_io.write_tiff_lazy`).
    array : numpy.ndarray or xarray.DataArray
        Non-empty uint8, uint16 or float32 data (float64 and other numeric types are
        converted to float32 with a warning; ImageJ has no float64 images), axes as in
        ``calibration.axes`` (any order of T, C, Z, Y, X, S); a DataArray's dims give the
        axes when no calibration is given.
    calibration : Calibration, optional
        Axes, voxel size and unit.  Default: the axes by number of dimensions (2 ``YX``,
        3 ``ZYX``, 4 ``CZYX``, 5 ``TCZYX``), uncalibrated.
    overwrite : bool
        Replace an existing file.  Otherwise an existing file raises
        ``FileExistsError`` and is left untouched.
    description : mapping, optional
        Extra ImageJ ``Info`` properties (ImageJ hyperstacks) or OME ``Description``.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        Empty array, wrong number of dimensions, axes that do not fit the array.
    TypeError
        A dtype that cannot be written (complex, object …).
    FileExistsError, FileNotFoundError, PermissionError
        See :func:`check_output`; nothing is written then.

    Examples
    --------
    >>> cal = Calibration.make("CZYX", unit="micron", Z=0.2, Y=0.065, X=0.065)   # doctest: +SKIP
    >>> write_image("out.tif", result_czyx, cal)       # ImageJ hyperstack, stored as ZCYX  # doctest: +SKIP
    >>> write_image("out.ome.tif", result_czyx, cal)   # OME-TIFF, stored as CZYX           # doctest: +SKIP
    """
    p = Path(path)
    array, calibration = _from_dataarray(array, calibration)
    if _is_zarr(p) or hasattr(array, "__dask_graph__"):  # OME-Zarr or a dask array: fijidecon.lazy_io
        from .lazy_io import write_big
        return write_big(p, array, calibration, overwrite=overwrite, description=description)
    tmp = _image_part(p, array, calibration, overwrite, description)
    try:
        _finish(tmp, p, overwrite)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return p


def _from_dataarray(array: Any, calibration: Calibration | None) -> tuple[Any, Calibration | None]:
    """An ``xarray.DataArray``: its data and, without a calibration, its dims as the axes (``z``,
    ``y``, ``x``, ``c``/``ch``, ``t``: as the deconvolution functions read them) and its coords'
    steps and unit attribute as the voxel size (:func:`~fijidecon.calibration.dataarray_calibration`);
    a calibration whose axes contradict the dims is refused."""
    from .deconvolve import _hyper

    if not _hyper._is_xarray(array):
        return array, calibration
    axes = _hyper._dims_to_axes(array.dims, "array")
    if calibration is not None and calibration.axes != axes:
        raise InputError(f"calibration: axes {calibration.axes!r} contradict the DataArray's dims "
                         f"{tuple(array.dims)} ({axes})")
    from .calibration import dataarray_calibration

    return array.data, calibration or dataarray_calibration(array, axes)


def _image_part(p: Path, array: Any, calibration: Calibration | None, overwrite: bool, description) -> str:
    """Write the image to a temporary file next to ``p``; return its path (removed on error)."""
    if not is_ome_path(p) and p.suffix.lower() not in (".tif", ".tiff"):  # never TIFF bytes under another name
        raise InputError(f"output: {str(p)!r} is not a .tif/.tiff (or .ome.tif, .ome.zarr) name")
    a = _writable_array(array)
    cal = calibration or Calibration.default(a.ndim)
    axes = check_axes(cal.axes, a.ndim, name="calibration axes")
    _check_tiff_shape(a.shape, axes)
    if not is_ome_path(p):
        _check_resolution(cal)
    _check_target(p, overwrite)
    fd, tmp = _temp_sibling(p, ".part.tif")
    os.close(fd)
    try:
        if is_ome_path(p):
            _write_ome(tmp, a, axes, cal, description)
        else:
            _write_imagej(tmp, a, axes, cal, description)
    except OSError as exc:
        err = _write_failed(p, exc)  # (the free space with the partial file still there)
        os.unlink(tmp)
        raise err from None
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def write_image_and_sidecar(path: str | os.PathLike, array: np.ndarray, calibration: Calibration | None,
                            record: Mapping[str, Any] | Any, *, overwrite: bool = False,
                            description: Mapping[str, Any] | None = None) -> Path:
    """Write an image and its sidecar together: both or neither.

    Both files are first written to temporary files in the output folder (a full disk or
    an interruption leaves no output that looks complete); then the sidecar and the image
    are renamed into place, with Ctrl-C and SIGTERM held for those few renames; if the
    image cannot be put in place the previous sidecar (or none) is put back, so an image
    and its sidecar are replaced together or not at all.  Temporary files are named
    ``.<name>.partial-<pid>.*``; those of killed processes are removed by the next write of
    the same name.  ``record`` is the sidecar record, or a callable that gets the seconds
    the image took to write and returns it.  Arguments as for :func:`write_image` and
    :func:`write_sidecar`.

    Raises
    ------
    OSError
        The disk is full or the folder cannot be written: one line naming the file; nothing
        is left behind (see also :func:`check_output`).
    """
    p = Path(path)
    if _is_zarr(p) or hasattr(array, "__dask_graph__"):  # OME-Zarr or a dask array: fijidecon.lazy_io
        from .lazy_io import write_big_and_sidecar
        return write_big_and_sidecar(p, array, calibration, record, overwrite=overwrite, description=description)
    side = sidecar_path(p)
    _check_target(side, overwrite)
    t0 = time.perf_counter()
    tmp_image = _image_part(p, array, calibration, overwrite, description)
    tmp_side = None
    try:
        rec = record(time.perf_counter() - t0) if callable(record) else record
        data = json.dumps(jsonable(rec), indent=2, sort_keys=False, allow_nan=False).encode() + b"\n"
        fd, tmp_side = _temp_sibling(side, ".part")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        except OSError as exc:
            raise _write_failed(side, exc) from None
        with _signals_deferred():
            _put_pair_in_place(tmp_image, p, tmp_side, side, overwrite)
    finally:
        for t in (tmp_image, tmp_side):
            if t and os.path.exists(t):
                os.unlink(t)
    return p


def _put_pair_in_place(tmp_image: str, p: Path, tmp_side: str, side: Path, overwrite: bool) -> None:
    """Rename the sidecar, then the image, into place; if the image cannot be, the sidecar
    that was there before (or none) is put back: both replaced, or neither."""
    backup = None
    if overwrite and side.exists():
        fd, backup = _temp_sibling(side, ".old")
        os.close(fd)
        os.replace(side, backup)  # the old sidecar, kept until the new image is in place
    try:
        _finish(tmp_side, side, overwrite)
        try:
            _finish(tmp_image, p, overwrite)
        except BaseException:
            side.unlink(missing_ok=True)  # no new sidecar next to the old image (or none)
            raise
    except BaseException:
        if backup is not None:
            os.replace(backup, side)
        raise
    if backup is not None:
        os.unlink(backup)


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) and SIGTERM while the block runs (a few renames), then act on
    them: the block is never cut in the middle.  Only in the main thread (elsewhere Python
    delivers no signals anyway)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        old[sig] = signal.getsignal(sig)
        signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        for sig in caught:
            handler = old[sig]
            if callable(handler):
                handler(sig, None)
            elif handler == signal.SIG_DFL:
                if sig == signal.SIGINT:
                    raise KeyboardInterrupt
                os.kill(os.getpid(), sig)


def _write_imagej(tmp: str, a: np.ndarray, axes: str, cal: Calibration, description) -> None:
    order = [axes.index(ax) for ax in IMAGEJ_AXES if ax in axes]
    a = np.transpose(a, order)
    meta = imagej_metadata("".join(axes[i] for i in order), cal, description)
    tifffile.imwrite(tmp, a, imagej=True, resolution=(1.0 / cal.dx, 1.0 / cal.dy), metadata=meta)


def imagej_metadata(axes: str, cal: Calibration, description: Mapping[str, Any] | None) -> dict[str, Any]:
    """tifffile's ImageJ metadata for ``axes`` (in ImageJ order) and a calibration."""
    meta: dict[str, Any] = {"axes": axes}
    if "Z" in axes or "Z" in dict(cal.spacing):
        meta["spacing"] = cal.dz
    if cal.unit and cal.unit != "pixel":  # µm as 'micron'; other non-ASCII letters as ImageJ's \\uXXXX escapes
        meta["unit"] = "".join(c if ord(c) < 128 else f"\\u{ord(c):04X}" for c in _length_unit(cal.unit))
    if "T" in dict(cal.spacing):
        meta["finterval"] = cal.get("T")
    if description:
        meta["Info"] = "\n".join(f"{k} = {v}" for k, v in description.items())
    return meta


def ome_metadata(axes: str, cal: Calibration, description: Mapping[str, Any] | None) -> dict[str, Any]:
    """tifffile's OME metadata (axes, physical sizes with units, time increment) for a calibration."""
    meta: dict[str, Any] = {"axes": axes}
    unit = _ome_unit(cal.unit)
    if unit is not None:
        for ax in "XYZ":
            if ax in axes or ax in dict(cal.spacing):
                meta[f"PhysicalSize{ax}"] = cal.get(ax)
                meta[f"PhysicalSize{ax}Unit"] = unit
    if "T" in dict(cal.spacing):
        meta["TimeIncrement"], meta["TimeIncrementUnit"] = cal.get("T"), "s"
    if description:
        meta["Description"] = "; ".join(f"{k} = {v}" for k, v in description.items())
    return meta


def _write_ome(tmp: str, a: np.ndarray, axes: str, cal: Calibration, description) -> None:
    meta = ome_metadata(axes, cal, description)
    tifffile.imwrite(tmp, a, ome=True, photometric="rgb" if axes.endswith("S") else "minisblack", metadata=meta)


def sidecar_path(output: str | os.PathLike) -> Path:
    """The JSON provenance file kept next to ``output`` (``out.tif`` → ``out.tif.json``)."""
    p = Path(output)
    return p.with_name(p.name + ".json")


def write_sidecar(output: str | os.PathLike, record: Mapping[str, Any], *, overwrite: bool = False) -> Path:
    """Write ``record`` as pretty, strict JSON next to ``output`` (atomically).

    NaN and ±inf become ``null`` (strict JSON parsers reject ``NaN``); numpy scalars and
    arrays, dataclasses, tuples and paths are converted (see :func:`jsonable`).
    """
    data = json.dumps(jsonable(record), indent=2, sort_keys=False, allow_nan=False).encode() + b"\n"
    return atomic_write_bytes(sidecar_path(output), data, overwrite=overwrite)


def jsonable(o: Any) -> Any:
    """``o`` as plain JSON values: dicts (string keys), lists, str, int, finite float,
    bool, None.  NaN/inf become None; numpy values, dataclasses and paths are converted;
    anything else becomes its ``str``."""
    if o is None or isinstance(o, (bool, str, int)) and not isinstance(o, np.generic):
        return o
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return jsonable(float(o))
    if isinstance(o, np.ndarray):
        return jsonable(o.tolist())
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return jsonable(dataclasses.asdict(o))
    if isinstance(o, Mapping):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in o]
    if isinstance(o, Path):
        return str(o)
    return str(o)
