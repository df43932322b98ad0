"""Converters between numpy / xarray and ImageJ 1.x ``ImagePlus`` or ImgLib2 ``Img``.

Conventions
-----------
* numpy axes are named by letters (:class:`fijidecon.calibration.Calibration` ``axes``):
  ``T`` time, ``Z`` depth, ``C`` channel, ``Y`` rows, ``X`` columns (``S`` = RGB samples).
  ImageJ 1.x hyperstacks are XYCZT (C fastest), i.e. numpy ``TZCYX``;
  :func:`from_imageplus` returns that order with the size-1 axes dropped.
* ImageJ 1.x pixel types: 8-bit (``uint8``), 16-bit (``uint16``), 32-bit (``float32``),
  RGB (``uint8`` with a trailing ``S`` axis of 3).  Without ``axes=`` (or a calibration
  whose axes fit), a ``uint8`` array of shape ``(Y, X, 3)`` or ``(Z, Y, X, 3)`` is taken as
  RGB, what ``from_imageplus`` returns for an RGB image; any other array whose last axis has
  length 3 or 4 is taken as X with an :class:`AmbiguousAxesWarning` naming ``axes=``.  Other dtypes are converted once, here,
  with a :class:`DtypeConversionWarning`: ``float64`` and other integer types →
  ``float32``; ``bool`` → ``uint8`` (True = 255, ImageJ's mask convention).
* Calibration goes both ways: ``X``/``Y``/``Z`` spacing ↔ ``pixelWidth``/``pixelHeight``/
  ``pixelDepth``, ``unit`` ↔ ``Calibration.getUnit()``/``setUnit`` (``T`` spacing ↔
  ``frameInterval``).
* ImgLib2 axes are numpy's reversed (as pyimagej): numpy ``(z, y, x)`` ↔ ImgLib2
  ``(x, y, z)``.  :func:`to_img` wraps the numpy memory in a direct ``java.nio`` buffer:
  no copy, writes through either side are seen by the other.  Java → numpy always copies.

Example
-------
>>> import numpy as np                                          # doctest: +SKIP
>>> from fijidecon.calibration import Calibration               # doctest: +SKIP
>>> from fijidecon.fiji import convert                          # doctest: +SKIP
>>> a = np.zeros((5, 64, 64), np.float32)                       # doctest: +SKIP
>>> cal = Calibration.make("ZYX", unit="micron", Z=0.2, Y=0.1, X=0.1)  # doctest: +SKIP
>>> imp = convert.to_imageplus(a, cal, title="stack")           # doctest: +SKIP
>>> b, cal2 = convert.from_imageplus(imp)                       # doctest: +SKIP
>>> img = convert.to_img(a)         # ImgLib2 view of a's memory   # doctest: +SKIP
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from fijidecon import _validate
from fijidecon.calibration import Calibration, dataarray_calibration
from fijidecon.errors import InputError, InputTypeError
from fijidecon.fiji import runtime

__all__ = [
    "DtypeConversionWarning",
    "AmbiguousAxesWarning",
    "to_imageplus",
    "from_imageplus",
    "to_imageplus_xarray",
    "from_imageplus_xarray",
    "to_img",
    "from_img",
    "is_imageplus",
]

#: numpy axes order of ImageJ 1.x hyperstacks (C fastest after X, Y).
IJ_ORDER = "TZCYX"


class DtypeConversionWarning(UserWarning):
    """A dtype was converted at the Java edge (e.g. float64 → float32)."""


class AmbiguousAxesWarning(UserWarning):
    """The array's axes were guessed from its shape and may be wrong: pass ``axes=``."""


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def _j(name: str):
    return runtime.jimport(name)


def _is_xarray(obj: Any) -> bool:
    return type(obj).__name__ == "DataArray" and hasattr(obj, "dims") and hasattr(obj, "coords")


def is_imageplus(obj: Any) -> bool:
    """True when *obj* is a Java ``ij.ImagePlus`` (or subclass)."""
    if not runtime.is_started():
        return False
    try:
        return isinstance(obj, _j("ij.ImagePlus"))
    except Exception:
        return False


def _ij_dtype(array: np.ndarray, rgb: bool) -> np.ndarray:
    """Return *array* in an ImageJ 1.x pixel type, converting once with a warning."""
    if array.dtype.byteorder == (">" if np.little_endian else "<"):  # big-endian data (e.g. from a file): swap, exact
        array = array.astype(array.dtype.newbyteorder("="))
    dt = array.dtype
    if rgb:
        if dt != np.uint8:
            raise InputTypeError(f"array: an RGB image (axis 'S') must be uint8, got {dt}")
        return array
    if dt in (np.uint8, np.uint16, np.float32):
        return array
    if dt == np.bool_:
        _validate.warn("array: bool converted to uint8 (True = 255) for ImageJ", DtypeConversionWarning)
        return array.astype(np.uint8) * np.uint8(255)
    if dt == np.int16:  # ImageJ's signed 16-bit: raw = value + 32768, with its calibration function
        return (array.astype(np.int32) + 32768).astype(np.uint16)
    if dt.kind == "f" or dt.kind in "iu":
        lost = ""
        if dt.kind in "iu" and dt.itemsize >= 4 and array.size:
            top = int(max(abs(int(array.min())), abs(int(array.max()))))
            if top > 2**24:
                lost = f"; integers above 2^24 = 16777216 are rounded (largest here {top})"
        _validate.warn(
            f"array: {dt} converted to float32 for ImageJ 1.x (it has 8-bit, 16-bit and 32-bit float images only)"
            f"{lost}",
            DtypeConversionWarning,
        )
        return array.astype(np.float32)
    raise InputTypeError(f"array: dtype {dt} cannot be converted to an ImageJ image (8/16/32-bit or RGB)")


def _resolve_axes(ndim: int, axes: str | None, calibration: Calibration | None) -> str:
    if axes is None:
        if calibration is not None and len(calibration.axes) == ndim:
            axes = calibration.axes
        elif ndim <= 5:
            axes = Calibration.default(ndim).axes
        else:
            raise InputError(f"array: at most 5 dimensions (TZCYX) are supported, got {ndim}")
    if not isinstance(axes, str):
        raise InputTypeError(f"axes: expected a string such as 'ZYX', got {type(axes).__name__}")
    axes = axes.upper()
    if len(axes) != ndim:
        raise InputError(f"axes: {axes!r} has {len(axes)} letters for an array of {ndim} dimensions")
    if len(set(axes)) != len(axes):
        raise InputError(f"axes: repeated letter in {axes!r}")
    bad = set(axes) - set(IJ_ORDER + "S")
    if bad:
        raise InputError(f"axes: unknown letter(s) {sorted(bad)} in {axes!r}; use T, Z, C, Y, X (and S for RGB)")
    if "Y" not in axes or "X" not in axes:
        raise InputError(f"axes: {axes!r} must contain Y and X")
    return axes


def _default_axes(array: np.ndarray) -> str | None:
    """Axes for an array given without ``axes=``: RGB for ``uint8`` ``(Y, X, 3)`` and
    ``(Z, Y, X, 3)``; ``None`` (the default by ``ndim``) otherwise, with an
    :class:`AmbiguousAxesWarning` when the last axis looks like colour samples (3 or 4)."""
    n = array.shape[-1]
    if not 3 <= array.ndim <= 5 or n not in (3, 4):
        return None
    if n == 3 and array.dtype == np.uint8 and array.ndim in (3, 4):
        return "ZYXS"[-array.ndim:]
    default = Calibration.default(array.ndim).axes
    if n == 4 and array.dtype == np.uint8:
        why = "RGBA samples? ImageJ has no alpha: pass array[..., :3] with axes='" + "ZYXS"[-array.ndim:] + "'"
    elif array.dtype == np.uint8:
        why = "RGB samples? pass axes='TZYXS' or 'CZYXS' if the last axis is colour"
    else:
        why = f"RGB samples? an RGB image must be uint8 with axes ending in 'S'; this is {array.dtype}"
    _validate.warn(
        f"array: shape {array.shape} taken as axes={default!r}, i.e. an image {n} pixels wide ({why}); "
        f"pass axes= to say which axis is which (this warning then goes away)",
        AmbiguousAxesWarning,
    )
    return None


def _to_java_array(plane: np.ndarray):
    import jpype

    plane = np.ascontiguousarray(plane).ravel()
    if plane.dtype == np.uint8:
        return jpype.JArray(jpype.JByte)(plane.view(np.int8))
    if plane.dtype == np.uint16:
        return jpype.JArray(jpype.JShort)(plane.view(np.int16))
    if plane.dtype == np.float32:
        return jpype.JArray(jpype.JFloat)(plane)
    if plane.dtype == np.int32:
        return jpype.JArray(jpype.JInt)(plane)
    raise InputTypeError(f"internal: no Java array for {plane.dtype}")  # pragma: no cover


# ---------------------------------------------------------------------------------------
# ImagePlus
# ---------------------------------------------------------------------------------------
def to_imageplus(
    array,
    calibration: Calibration | None = None,
    title: str | None = None,
    axes: str | None = None,
):
    """Copy a numpy array (or xarray ``DataArray``) into a new ImageJ 1.x ``ImagePlus``.

    Parameters
    ----------
    array:
        2D to 5D array; ``uint8``, ``uint16`` and ``float32`` are kept (big-endian ones
        byte-swapped), ``int16`` becomes ImageJ's signed 16-bit image (raw value + 32768 with
        its calibration function, read back as ``int16``), ``float64`` and other numeric
        types become ``float32`` and ``bool`` becomes ``uint8`` (0/255), each with a
        :class:`DtypeConversionWarning` (which says when integers above 2^24 are rounded).  An ``xarray.DataArray`` is passed to
        :func:`to_imageplus_xarray`.  The input is never modified.
    calibration:
        Voxel size and unit (and axes if *axes* is not given).  ``None``: uncalibrated.
    title:
        Image title (default ``"image"``, or the DataArray's name).
    axes:
        One letter per dimension in numpy order, from ``T, Z, C, Y, X`` (``S`` = RGB
        samples, size 3, ``uint8``).  Default: ``calibration.axes`` when its length fits;
        else ``YXS``/``ZYXS`` (RGB) for a ``uint8`` array whose last axis has length 3
        (what :func:`from_imageplus` returns for RGB); else ``YX``/``ZYX``/``CZYX``/``TCZYX``.

    Returns
    -------
    ij.ImagePlus
        8-bit, 16-bit, 32-bit or RGB; a hyperstack when more than one of C, Z, T > 1.

    Warns
    -----
    AmbiguousAxesWarning
        When ``axes`` is guessed for an array whose last axis has length 3 or 4 but is not
        taken as RGB (not ``uint8``, length 4, or 5D): it becomes X, an image 3 or 4 pixels
        wide; the message names ``axes=``.
    DtypeConversionWarning
        When the dtype is converted (see *array*).

    Example
    -------
    >>> imp = to_imageplus(np.ones((3, 32, 32), np.uint16),
    ...                    Calibration.make("ZYX", "micron", Z=0.3, Y=0.1, X=0.1))  # doctest: +SKIP
    >>> imp.getNSlices(), imp.getBitDepth()                                       # doctest: +SKIP
    (3, 16)
    """
    if _is_xarray(array):
        if calibration is not None or axes is not None:
            raise InputError("calibration/axes: not accepted with an xarray.DataArray (its dims and coords say it)")
        return to_imageplus_xarray(array, title=title)
    if not isinstance(array, np.ndarray):
        lazy = " (a lazy array: call .compute() or numpy.asarray() on it first)" if hasattr(array, "compute") else ""
        raise InputTypeError(f"array: expected a numpy array or xarray.DataArray, got {type(array).__name__}{lazy}")
    if calibration is not None and not isinstance(calibration, Calibration):
        raise InputTypeError(f"calibration: expected a fijidecon Calibration, got {type(calibration).__name__}")
    if axes is None and calibration is not None and len(calibration.axes) != array.ndim:
        raise InputError(f"calibration: its axes {calibration.axes!r} name {len(calibration.axes)} axes for an array "
                         f"of {array.ndim} dimensions {array.shape}; give a calibration of the array's axes, or axes=")
    if title is None:
        title = "image"
    if not isinstance(title, str):
        raise InputTypeError(f"title: expected a str, got {type(title).__name__}")
    if array.ndim < 2:
        raise InputError(f"array: needs at least 2 dimensions (Y, X), got shape {array.shape}")
    if axes is None and not (calibration is not None and len(calibration.axes) == array.ndim):
        axes = _default_axes(array)
    ax = _resolve_axes(array.ndim, axes, calibration)
    rgb = "S" in ax
    if rgb and array.shape[ax.index("S")] != 3:
        raise InputError(f"array: the S (RGB) axis must have size 3, got {array.shape[ax.index('S')]}")
    if 0 in array.shape:
        raise InputError(f"array: empty shape {array.shape}")
    data = _ij_dtype(array, rgb)

    # reorder to (T, Z, C, Y, X[, S]) with size-1 axes inserted
    order = IJ_ORDER + ("S" if rgb else "")
    missing = [a for a in order if a not in ax]
    data = data.reshape(data.shape + (1,) * len(missing))
    full_axes = ax + "".join(missing)
    data = np.transpose(data, [full_axes.index(a) for a in order])
    nt, nz, nc, h, w = data.shape[:5]
    if rgb:
        d = data.astype(np.uint32)
        data = (np.uint32(0xFF) << np.uint32(24)) | (d[..., 0] << 16) | (d[..., 1] << 8) | d[..., 2]
        data = data.astype(np.uint32).view(np.int32)

    ImageStack = _j("ij.ImageStack")
    ImagePlus = _j("ij.ImagePlus")
    FloatProcessor = _j("ij.process.FloatProcessor")
    ShortProcessor = _j("ij.process.ShortProcessor")
    ByteProcessor = _j("ij.process.ByteProcessor")
    ColorProcessor = _j("ij.process.ColorProcessor")

    stack = ImageStack(int(w), int(h))
    for t in range(nt):
        for z in range(nz):
            for c in range(nc):
                plane = data[t, z, c]
                jarr = _to_java_array(plane)
                if rgb:
                    ip = ColorProcessor(int(w), int(h), jarr)
                elif plane.dtype == np.float32:
                    ip = FloatProcessor(int(w), int(h), jarr)
                elif plane.dtype == np.uint16:
                    ip = ShortProcessor(int(w), int(h), jarr, None)
                else:
                    ip = ByteProcessor(int(w), int(h), jarr, None)
                stack.addSlice("", ip)
    imp = ImagePlus(title, stack)
    imp.setDimensions(int(nc), int(nz), int(nt))
    if sum(n > 1 for n in (nc, nz, nt)) > 1 or nc > 1 or nt > 1:
        imp.setOpenAsHyperStack(True)
    if not rgb:
        imp.resetDisplayRange()
    _set_calibration(imp, calibration, ax)
    if array.dtype.newbyteorder("=") == np.int16:
        cal = imp.getCalibration()
        cal.setSigned16BitCalibration()
        imp.setCalibration(cal)
    return imp


def _frame_interval_s(interval: float, unit: str, imp: Any) -> float:
    """ImageJ's frame interval in its time unit, in seconds (the ``T`` spacing's unit)."""
    from ..calibration import seconds_per

    f = seconds_per(unit)
    if f is None:
        _validate.warn(f"imp: '{imp.getTitle()}' has a frame interval in {unit!r}, not a time unit; taken as seconds",
                       RuntimeWarning)
        f = 1.0
    return interval * f


def _set_calibration(imp, calibration: Calibration | None, axes: str) -> None:
    if calibration is None:
        return
    cal = imp.getCalibration()
    cal.pixelWidth = float(calibration.get("X"))
    cal.pixelHeight = float(calibration.get("Y"))
    cal.pixelDepth = float(calibration.get("Z"))
    if "T" in dict(calibration.spacing):
        cal.frameInterval = float(calibration.get("T"))
        cal.setTimeUnit("sec")
    unit = calibration.unit
    cal.setUnit(None if unit in ("", "pixel", "pixels") else str(unit))
    imp.setCalibration(cal)


def from_imageplus(imp, squeeze: bool = True, axes: str | None = None) -> tuple[np.ndarray, Calibration]:
    """Copy an ImageJ 1.x ``ImagePlus`` into a numpy array and its :class:`Calibration`.

    Parameters
    ----------
    imp:
        An ``ij.ImagePlus`` (8-bit, 16-bit, 32-bit or RGB; stack or hyperstack).
    squeeze:
        Drop the C, Z, T axes of size 1 (Y and X are always kept).
    axes:
        The axis order to return, e.g. ``"CZYX"`` for what :func:`to_imageplus` was given
        (a round trip then keeps the order: ImageJ stores ``TZCYX``, so a CZYX array came
        back ZCYX).  Axes of size 1 are added or dropped as ``axes`` says; one of size > 1
        missing from it is an error.

    Returns
    -------
    array : numpy.ndarray
        ``uint8``, ``uint16`` (``int16`` for ImageJ's signed 16-bit images), ``float32`` (or
        ``uint8`` with a trailing ``S`` axis for RGB), axes in ImageJ order ``TZCYX`` unless
        ``axes`` is given; a copy (Java → numpy always copies).
    calibration : Calibration
        ``axes`` names the returned axes; ``spacing`` has ``X``, ``Y``, ``Z`` (and ``T``
        in seconds, from ImageJ's frame interval and time unit, when a frame interval is
        set); ``unit`` is ImageJ's unit (``"pixel"`` when uncalibrated).

    Example
    -------
    >>> arr, cal = from_imageplus(imp)      # doctest: +SKIP
    >>> cal.axes, cal.dz                    # doctest: +SKIP
    ('ZYX', 0.3)
    """
    if not is_imageplus(imp):
        raise InputTypeError(f"imp: expected an ij.ImagePlus, got {type(imp).__name__}")
    nc, nz, nt = int(imp.getNChannels()), int(imp.getNSlices()), int(imp.getNFrames())
    w, h = int(imp.getWidth()), int(imp.getHeight())
    bitdepth = int(imp.getBitDepth())
    stack = imp.getStack()
    n = int(stack.getSize())
    if n != nc * nz * nt:  # inconsistent dimensions: treat as a plain Z stack
        nc, nz, nt = 1, n, 1
    if bitdepth == 8:
        dtype = np.uint8
    elif bitdepth == 16:
        dtype = np.uint16
    elif bitdepth == 32:
        dtype = np.float32
    elif bitdepth == 24:
        dtype = np.uint8
    else:  # pragma: no cover - ImageJ has no other bit depths
        raise InputTypeError(f"imp: unsupported bit depth {bitdepth}")
    rgb = bitdepth == 24
    shape = (nt, nz, nc, h, w) + ((3,) if rgb else ())
    out = np.empty(shape, dtype=dtype)
    i = 0
    for t in range(nt):
        for z in range(nz):
            for c in range(nc):
                i += 1
                pix = np.array(stack.getPixels(i)).reshape(h, w)
                if rgb:
                    v = pix.view(np.uint32) if pix.dtype.itemsize == 4 else pix.astype(np.uint32)
                    out[t, z, c, :, :, 0] = (v >> 16) & 0xFF
                    out[t, z, c, :, :, 1] = (v >> 8) & 0xFF
                    out[t, z, c, :, :, 2] = v & 0xFF
                else:
                    out[t, z, c] = pix.view(dtype)
    if bitdepth == 16 and bool(imp.getCalibration().isSigned16Bit()):  # raw = value + 32768
        out = (out.astype(np.int32) - 32768).astype(np.int16)
    have = IJ_ORDER + ("S" if rgb else "")
    if squeeze or axes is not None:
        keep = [k for k, a in enumerate(have) if a in "YXS" or out.shape[k] > 1]
        out = out.reshape([out.shape[k] for k in keep])
        have = "".join(have[k] for k in keep)
    if axes is not None:
        out, have = _reorder(out, have, axes)
    cal = imp.getCalibration()
    spacing = {"X": float(cal.pixelWidth), "Y": float(cal.pixelHeight)}
    if "Z" in have or float(cal.pixelDepth) != 1.0:
        spacing["Z"] = float(cal.pixelDepth)
    if float(cal.frameInterval) > 0:
        spacing["T"] = _frame_interval_s(float(cal.frameInterval), str(cal.getTimeUnit()), imp)
    unit = str(cal.getUnit())
    return out, Calibration.make(have, unit=unit, **spacing)


def _reorder(out: np.ndarray, have: str, axes: Any) -> tuple[np.ndarray, str]:
    """``out`` (axes ``have``, size-1 axes dropped) in the order ``axes``, size-1 axes added."""
    if not isinstance(axes, str):
        raise InputTypeError(f"axes: expected a string such as 'CZYX', got {type(axes).__name__}")
    want = axes.upper()
    if len(set(want)) != len(want) or set(want) - set(IJ_ORDER + "S"):
        raise InputError(f"axes: {axes!r} must name each of T, Z, C, Y, X (and S for RGB) at most once")
    lost = [a for a in have if a not in want]
    if lost:
        raise InputError(f"axes: {axes!r} leaves out {', '.join(lost)}, of size "
                         f"{', '.join(str(out.shape[have.index(a)]) for a in lost)} in this image ({have})")
    extra = [a for a in want if a not in have]
    out = out.reshape(out.shape + (1,) * len(extra))
    have += "".join(extra)
    return np.ascontiguousarray(np.transpose(out, [have.index(a) for a in want])), want


# ---------------------------------------------------------------------------------------
# xarray
# ---------------------------------------------------------------------------------------
#: dimension names understood on the way in (pyimagej's names included).
_DIM_ALIASES = {
    "t": "T", "time": "T",
    "z": "Z", "pln": "Z", "plane": "Z",
    "c": "C", "ch": "C", "channel": "C",
    "y": "Y", "row": "Y",
    "x": "X", "col": "X",
    "s": "S", "rgb": "S",
}


def to_imageplus_xarray(da, title: str | None = None):
    """Copy an ``xarray.DataArray`` into an ``ImagePlus``, calibration from its coords.

    Dimension names ``t, z, c, y, x`` (or pyimagej's ``t, pln, ch, row, col``); the
    spacing of each spatial axis is the step of its coordinate; the unit comes from
    ``da.attrs["unit"]`` or the ``x`` coordinate's ``attrs["units"]`` (default ``"pixel"``).

    Example
    -------
    >>> da = xr.DataArray(a, dims=("z", "y", "x"),
    ...                   coords={"z": np.arange(5) * 0.2, "y": np.arange(64) * 0.1,
    ...                           "x": np.arange(64) * 0.1}, attrs={"unit": "micron"})  # doctest: +SKIP
    >>> imp = to_imageplus_xarray(da)     # doctest: +SKIP
    """
    if not _is_xarray(da):
        raise InputTypeError(f"da: expected an xarray.DataArray, got {type(da).__name__}")
    axes = ""
    for d in da.dims:
        key = str(d).lower()
        if key not in _DIM_ALIASES:
            raise InputError(f"da: unknown dimension name {d!r}; use t, z, c, y, x (or t, pln, ch, row, col)")
        axes += _DIM_ALIASES[key]
    cal = dataarray_calibration(da, axes)
    name = str(da.name) if da.name is not None and not re.fullmatch(r"[\w-]+-[0-9a-f]{32}", str(da.name)) else None
    return to_imageplus(np.asarray(da.values), cal, title=title if title is not None else (name or "image"), axes=axes)


def from_imageplus_xarray(imp, squeeze: bool = True):
    """Copy an ``ImagePlus`` into an ``xarray.DataArray`` with calibrated coordinates.

    Dimensions are lower-case ``t, z, c, y, x`` (``s`` for RGB); spatial coordinates are
    ``index * spacing``; ``attrs`` holds ``unit``, ``spacing`` and ``title``, and each
    spatial coordinate has ``attrs["units"]``.

    Example
    -------
    >>> da = from_imageplus_xarray(imp)     # doctest: +SKIP
    >>> float(da.z[1] - da.z[0])            # doctest: +SKIP
    0.3
    """
    import xarray as xr

    arr, cal = from_imageplus(imp, squeeze=squeeze)
    dims = tuple(a.lower() for a in cal.axes)
    coords = {}
    for a, n in zip(cal.axes, arr.shape):
        if a in "XYZT":
            coords[a.lower()] = xr.Variable(a.lower(), np.arange(n) * cal.get(a), attrs={"units": cal.unit if a != "T" else "frame interval"})
        elif a == "C":
            coords["c"] = np.arange(n)
    return xr.DataArray(
        arr,
        dims=dims,
        coords=coords,
        name=str(imp.getTitle()),
        attrs={"unit": cal.unit, "spacing": dict(cal.spacing), "title": str(imp.getTitle())},
    )


# ---------------------------------------------------------------------------------------
# ImgLib2
# ---------------------------------------------------------------------------------------
#: numpy dtype -> (buffer access class, ArrayImgs factory)
_IMG_TYPES = {
    np.dtype(np.uint8): ("ByteBufferAccess", "unsignedBytes"),
    np.dtype(np.int8): ("ByteBufferAccess", "bytes"),
    np.dtype(np.uint16): ("ShortBufferAccess", "unsignedShorts"),
    np.dtype(np.int16): ("ShortBufferAccess", "shorts"),
    np.dtype(np.uint32): ("IntBufferAccess", "unsignedInts"),
    np.dtype(np.int32): ("IntBufferAccess", "ints"),
    np.dtype(np.int64): ("LongBufferAccess", "longs"),
    np.dtype(np.uint64): ("LongBufferAccess", "unsignedLongs"),
    np.dtype(np.float32): ("FloatBufferAccess", "floats"),
    np.dtype(np.float64): ("DoubleBufferAccess", "doubles"),
}

#: ImgLib2 type class simple name -> numpy dtype
_TYPE_TO_DTYPE = {
    "UnsignedByteType": np.uint8,
    "ByteType": np.int8,
    "UnsignedShortType": np.uint16,
    "ShortType": np.int16,
    "UnsignedIntType": np.uint32,
    "IntType": np.int32,
    "LongType": np.int64,
    "UnsignedLongType": np.uint64,
    "FloatType": np.float32,
    "DoubleType": np.float64,
}

def to_img(array: np.ndarray, copy: bool | None = None):
    """Wrap a numpy array as an ImgLib2 ``ArrayImg`` that uses the *same memory*.

    numpy axes are reversed (numpy ``(z, y, x)`` → ImgLib2 ``(x, y, z)``), as in pyimagej.
    The array must be C-contiguous, aligned and writable for a zero-copy view; writes
    through the ``Img`` are seen in the array and vice versa.  The numpy memory stays
    alive as long as the Java buffer does (JPype ties the direct buffer to the array's
    memoryview, and the ImgLib2 access keeps that buffer).

    Parameters
    ----------
    array:
        numpy array of ``uint8, int8, uint16, int16, uint32, int32, int64, uint64,
        float32, float64``; ``bool`` is not supported.
    copy:
        ``None`` (default): zero-copy when the memory allows it, else a C-contiguous copy;
        ``False``: raise ``ValueError`` instead of copying; ``True``: always copy.

    Returns
    -------
    net.imglib2.img.array.ArrayImg
        backed by a ``java.nio`` direct buffer over the numpy memory.

    Example
    -------
    >>> a = np.zeros((4, 5, 6), np.float32)          # doctest: +SKIP
    >>> img = to_img(a)                               # doctest: +SKIP
    >>> list(img.dimensionsAsLongArray())             # doctest: +SKIP
    [6, 5, 4]
    >>> ra = img.randomAccess(); ra.setPosition([1, 2, 3]); ra.get().set(7.0)  # doctest: +SKIP
    >>> float(a[3, 2, 1])                             # doctest: +SKIP
    7.0
    """
    if not isinstance(array, np.ndarray):
        raise InputTypeError(f"array: expected a numpy array, got {type(array).__name__}")
    if array.dtype.newbyteorder("=") not in _IMG_TYPES or not array.dtype.isnative:
        raise InputTypeError(
            f"array: dtype {array.dtype} has no ImgLib2 equivalent here; use one of "
            + ", ".join(str(d) for d in _IMG_TYPES)
        )
    if array.ndim == 0:
        raise InputError("array: needs at least one dimension")
    if copy not in (None, True, False):
        raise InputTypeError(f"copy: expected None, True or False, got {copy!r}")
    shareable = array.flags.c_contiguous and array.flags.aligned and array.flags.writeable and array.size > 0
    if copy is False and not shareable:
        raise InputError(
            "array: cannot be shared without a copy (needs C-contiguous, aligned, writable, non-empty); "
            "pass copy=None to allow a copy"
        )
    if copy or not shareable:
        array = np.array(array, order="C", copy=True)
    import jpype
    import jpype.nio

    runtime.ensure_started()
    access_name, factory = _IMG_TYPES[array.dtype]
    ByteOrder = _j("java.nio.ByteOrder")
    Access = _j(f"net.imglib2.img.basictypeaccess.nio.{access_name}")
    ArrayImgs = _j("net.imglib2.img.array.ArrayImgs")
    bb = jpype.nio.convertToDirectBuffer(array.reshape(-1).view(np.uint8))
    bb = bb.order(ByteOrder.nativeOrder())
    if access_name == "ByteBufferAccess":
        access = Access(bb, True)
    else:
        access = Access.fromByteBuffer(bb, True)
    dims = jpype.JArray(jpype.JLong)([int(n) for n in array.shape[::-1]])
    return getattr(ArrayImgs, factory)(access, dims)


def from_img(img) -> np.ndarray:
    """Copy an ImgLib2 ``RandomAccessibleInterval`` (``Img``, view …) into a numpy array.

    Axes are reversed (ImgLib2 ``(x, y, z)`` → numpy ``(z, y, x)``); the interval's
    origin becomes index 0.  Real types map to their numpy equivalents (``FloatType`` →
    ``float32``, ``UnsignedShortType`` → ``uint16`` …).  Always a copy.

    Example
    -------
    >>> a = from_img(img)          # doctest: +SKIP
    """
    RAI = _j("net.imglib2.RandomAccessibleInterval")
    if not isinstance(img, RAI):
        raise InputTypeError(f"img: expected an ImgLib2 RandomAccessibleInterval, got {type(img).__name__}")
    Util = _j("net.imglib2.util.Util")
    Views = _j("net.imglib2.view.Views")
    ImgUtil = _j("net.imglib2.util.ImgUtil")
    t = Util.getTypeFromInterval(img)
    tname = str(t.getClass().getSimpleName())
    if tname not in _TYPE_TO_DTYPE:
        raise InputTypeError(f"img: pixel type {tname} is not supported (use one of {', '.join(_TYPE_TO_DTYPE)})")
    nd = int(img.numDimensions())
    shape = tuple(int(img.dimension(d)) for d in range(nd))[::-1]
    out = np.empty(shape, dtype=_TYPE_TO_DTYPE[tname])
    if out.size == 0:
        return out
    ImgUtil.copy(Views.zeroMin(img), to_img(out, copy=False))
    return out
