"""TIFF files with calibration, and provenance sidecars.

* :func:`read_image` reads ImageJ hyperstack TIFFs (spacing, unit, axes), OME-TIFFs
  (physical sizes and their units) and plain TIFFs (resolution tags), plus ``.npy``.
* :func:`write_image` writes an ImageJ hyperstack TIFF that ImageJ/Fiji open with the
  right voxel size and unit, atomically (temporary file + rename) and never over an
  existing file unless ``overwrite=True``.
* :func:`write_sidecar` writes the JSON provenance record kept next to each output.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import tifffile

from .calibration import Calibration

__all__ = ["read_image", "write_image", "write_sidecar", "sidecar_path", "sha256_file", "atomic_write_bytes"]

_OME_UNITS = {"µm": "micron", "um": "micron", "nm": "nm", "mm": "mm", "m": "m", "pm": "pm", "cm": "cm", "Å": "Å"}


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, Calibration]:
    """Read an image and its calibration.

    Parameters
    ----------
    path : path-like
        A TIFF (ImageJ hyperstack, OME-TIFF or plain) or a ``.npy`` file.

    Returns
    -------
    array : numpy.ndarray
        The pixel data in numpy axis order (e.g. (z, y, x) or (t, z, c, y, x)).
    calibration : Calibration
        Axis letters, voxel size per spatial axis and length unit.  Uncalibrated files
        give unit ``"pixel"`` and spacing 1.

    Examples
    --------
    >>> arr, cal = read_image("stack.tif")  # doctest: +SKIP
    >>> cal.voxel_size("ZYX"), cal.unit      # doctest: +SKIP
    ((0.2, 0.065, 0.065), 'micron')
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"image: no such file {str(p)!r}")
    if p.suffix.lower() == ".npy":
        arr = np.load(p, allow_pickle=False)
        return arr, Calibration.default(arr.ndim)
    try:
        tif = tifffile.TiffFile(p)
    except Exception as exc:  # tifffile raises several types for non-TIFF input
        raise ValueError(f"image: {str(p)!r} is not a readable TIFF ({exc})") from None
    with tif:
        series = tif.series[0]
        arr = series.asarray()
        axes = series.axes.upper().replace("Q", "Z").replace("I", "Z")
        spacing: dict[str, float] = {}
        unit = "pixel"
        if tif.is_ome and tif.ome_metadata:
            spacing, unit = _ome_calibration(tif.ome_metadata)
        else:
            dx, dy = _resolution_spacing(tif.pages[0])
            ij = tif.imagej_metadata or {}
            if dx:
                spacing["X"] = dx
            if dy:
                spacing["Y"] = dy
            if ij.get("spacing"):
                spacing["Z"] = float(ij["spacing"])
            unit = str(ij.get("unit", "pixel" if not spacing else "pixel"))
            if unit in ("\\u00B5m", "\u00b5m", "um"):
                unit = "micron"
            if not ij and "X" in spacing:  # plain TIFF: resolution unit tag
                ru = tif.pages[0].tags.get("ResolutionUnit")
                if ru is not None and int(ru.value) == 3:  # centimeter
                    spacing = {k: v * 1e4 for k, v in spacing.items()}
                    unit = "micron"
                else:
                    spacing, unit = {}, "pixel"
        if len(axes) != arr.ndim:
            axes = Calibration.default(arr.ndim).axes
        if unit == "pixel" and all(abs(v - 1.0) < 1e-12 for v in spacing.values()):
            spacing = {}
        cal = Calibration.make(axes.replace("S", "S"), unit=unit, **{k: v for k, v in spacing.items() if v > 0})
    return arr, cal


def _ome_calibration(xml: str) -> tuple[dict[str, float], str]:
    root = ET.fromstring(xml)
    pixels = None
    for el in root.iter():
        if el.tag.endswith("Pixels"):
            pixels = el
            break
    spacing: dict[str, float] = {}
    unit = "pixel"
    if pixels is None:
        return spacing, unit
    units = set()
    for ax in "XYZ":
        v = pixels.get(f"PhysicalSize{ax}")
        if v is not None:
            spacing[ax] = float(v)
            units.add(pixels.get(f"PhysicalSize{ax}Unit", "µm"))
    if units:
        # convert everything to the X unit
        factors = {"pm": 1e-6, "Å": 1e-4, "nm": 1e-3, "µm": 1.0, "um": 1.0, "mm": 1e3, "cm": 1e4, "m": 1e6}
        ux = pixels.get("PhysicalSizeXUnit", "µm")
        for ax in list(spacing):
            ua = pixels.get(f"PhysicalSize{ax}Unit", "µm")
            if ua != ux and ua in factors and ux in factors:
                spacing[ax] *= factors[ua] / factors[ux]
        unit = _OME_UNITS.get(ux, ux)
    return spacing, unit


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    p = Path(path)
    _check_target(p, overwrite)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        _finish(tmp, p, overwrite)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return p


def _check_target(p: Path, overwrite: bool) -> None:
    if p.exists() and not overwrite:
        raise FileExistsError(f"output: {str(p)!r} exists (use overwrite to replace it)")
    if not p.parent.exists():
        raise FileNotFoundError(f"output: folder {str(p.parent)!r} does not exist")


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
            raise FileExistsError(f"output: {str(p)!r} exists (use overwrite to replace it)") from None
        except OSError:  # file systems without hard links
            if p.exists():
                raise FileExistsError(f"output: {str(p)!r} exists (use overwrite to replace it)") from None
            os.replace(tmp, p)
            return
        os.unlink(tmp)


def write_image(
    path: str | os.PathLike,
    array: np.ndarray,
    calibration: Calibration | None = None,
    *,
    overwrite: bool = False,
    description: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``array`` as an ImageJ hyperstack TIFF with its calibration.

    Parameters
    ----------
    path : path-like
        Output file (``.tif``/``.tiff``).  Its folder must exist.
    array : numpy.ndarray
        uint8, uint16 or float32 data (float64 and other types are converted to
        float32 with a warning; ImageJ has no float64 images).  Axis order as in
        ``calibration.axes`` (default (z, y, x) for 3D).
    calibration : Calibration, optional
        Voxel size and unit written as ImageJ ``spacing``/``unit`` and resolution tags.
    overwrite : bool
        Replace an existing file.  Otherwise an existing file raises
        ``FileExistsError`` and is left untouched.
    description : mapping, optional
        Extra ImageJ ``Info`` properties.

    Returns
    -------
    pathlib.Path
    """
    p = Path(path)
    a = np.asarray(array)
    if a.ndim < 2 or a.ndim > 6:
        raise ValueError(f"array: expected 2 to 6 dimensions, got {a.ndim}")
    if a.dtype not in (np.uint8, np.uint16, np.float32):
        if a.dtype not in (np.float64, np.int16, np.int32, np.uint32, np.int8, np.bool_):
            raise TypeError(f"array: dtype {a.dtype} cannot be written as a TIFF for ImageJ")
        warnings.warn(f"write_image: {a.dtype} data converted to float32", stacklevel=2)
        a = a.astype(np.float32)
    cal = calibration or Calibration.default(a.ndim)
    axes = cal.axes if len(cal.axes) == a.ndim else Calibration.default(a.ndim).axes
    _check_target(p, overwrite)
    meta: dict[str, Any] = {"axes": axes}
    if "Z" in axes:
        meta["spacing"] = cal.dz
    if cal.unit and cal.unit != "pixel":
        meta["unit"] = cal.unit
    if description:
        meta["Info"] = "\n".join(f"{k} = {v}" for k, v in description.items())
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part.tif", dir=p.parent)
    os.close(fd)
    try:
        tifffile.imwrite(tmp, a, imagej=True, resolution=(1.0 / cal.dx, 1.0 / cal.dy), metadata=meta)
        _finish(tmp, p, overwrite)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return p


def sidecar_path(output: str | os.PathLike) -> Path:
    """The JSON provenance file kept next to ``output`` (``out.tif`` → ``out.tif.json``)."""
    p = Path(output)
    return p.with_name(p.name + ".json")


def write_sidecar(output: str | os.PathLike, record: Mapping[str, Any], *, overwrite: bool = False) -> Path:
    """Write ``record`` as pretty JSON next to ``output`` (atomically)."""
    data = json.dumps(record, indent=2, sort_keys=False, default=_json_default).encode() + b"\n"
    return atomic_write_bytes(sidecar_path(output), data, overwrite=overwrite)


def _json_default(o):
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)
