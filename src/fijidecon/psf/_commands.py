"""Flat-argument entry points of the modern PSF commands (ImageJ menus, macros, CLI).

The ImageJ dialogs, macro options and CLI options carry one scalar per field, while the
core functions take shapes and per-axis tuples.  These thin wrappers translate (stack
size ``width × height × depth``, lateral/axial spacings, ``0 = automatic`` sentinels)
and call :func:`~fijidecon.psf.gaussian`, :func:`~fijidecon.psf.lorentzian`,
:func:`~fijidecon.psf.widefield` and :func:`~fijidecon.psf.psf_from_beads`.  A stack
depth of 1 gives a 2-D PSF.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _validate
from ..errors import InputError, InputTypeError
from .beads import BeadPSF, psf_from_beads
from .idealized import gaussian, lorentzian
from .widefield import widefield

__all__ = ["gaussian_psf", "lorentzian_psf", "widefield_psf", "beads_psf"]


def _int(name: str, value: Any, minimum: int) -> int:
    return _validate.check_int(name, value, minimum)


def _positive(name: str, value: Any) -> float:
    """A length of one dialog field / option, checked under its own name (the core's per-axis tuples
    would name ``fwhm[1]`` or ``voxel_size[1]``, which no dialog, macro key or option has)."""
    v = _validate.check_float(name, value)
    if not v > 0:
        raise InputError(f"{name}: expected a finite number > 0, got {value!r}")
    return v


def _spacing(name: str, value: Any, calibration: Any, axis: str) -> float:
    """A spacing; 0 means 'from the image calibration' (which must then be known)."""
    v = _validate.check_float(name, value, 0.0)
    if v > 0:
        return _validate.check_storable_spacing(name, v)
    if calibration is not None and calibration.is_calibrated():
        return float(calibration.get(axis))
    raise InputError(f"{name}: 0 means 'from the image calibration', but the image has none; give the spacing "
                     f"(CLI --{name.replace('_', '-')}, or --voxel-size 'Z,Y,X UNIT' for the image)")


def _spacing_given(name: str, value: Any) -> float:
    """A spacing of one option (> 0, and storable: :func:`fijidecon._validate.check_storable_spacing`)."""
    return _validate.check_storable_spacing(name, _positive(name, value))


def _fwhm(name: str, value: Any) -> float:
    """A FWHM (> 0) in the spacings' range (1e308 gave a flat PSF, said only by a warning)."""
    return _validate.check_storable_spacing(name, _positive(name, value), what="FWHM")


#: The size options standing for a core function's ``shape`` (2-D, 3-D).
_SIZES = {2: "width, height", 3: "width, height, depth"}


def _stack(width, height, depth):
    w, h, d = _int("width", width, 1), _int("height", height, 1), _int("depth", depth, 1)
    return (h, w) if d == 1 else (d, h, w)


def _idealized(func, width, height, depth, fwhm_xy, fwhm_z, pixel_spacing, slice_spacing, centre, normalize,
               oversample):
    shape = _stack(width, height, depth)
    fwhm_xy, pixel_spacing = _fwhm("fwhm_xy", fwhm_xy), _spacing_given("pixel_spacing", pixel_spacing)
    if len(shape) == 2:
        fwhm, vox = (fwhm_xy, fwhm_xy), (pixel_spacing, pixel_spacing)
    else:
        fwhm_z, slice_spacing = _fwhm("fwhm_z", fwhm_z), _spacing_given("slice_spacing", slice_spacing)
        fwhm, vox = (fwhm_z, fwhm_xy, fwhm_xy), (slice_spacing, pixel_spacing, pixel_spacing)
    names = {"fwhm": "fwhm_z, fwhm_xy" if len(shape) == 3 else "fwhm_xy", "shape": _SIZES[len(shape)],
             "voxel_size": "slice_spacing, pixel_spacing" if len(shape) == 3 else "pixel_spacing"}
    with _validate.renamed(names):
        return func(shape, fwhm, vox, centre=centre, normalize=normalize,
                    oversample=_int("oversample", oversample, 1))


def gaussian_psf(width: int = 64, height: int = 64, depth: int = 32, *, fwhm_xy: float = 250.0,
                 fwhm_z: float = 700.0, pixel_spacing: float = 65.0, slice_spacing: float = 200.0,
                 centre: str = "fft", normalize: str = "sum", oversample: int = 1) -> np.ndarray:
    """:func:`~fijidecon.psf.gaussian` on a ``depth × height × width`` stack (lengths in one unit)."""
    return _idealized(gaussian, width, height, depth, fwhm_xy, fwhm_z, pixel_spacing, slice_spacing, centre,
                      normalize, oversample)


def lorentzian_psf(width: int = 64, height: int = 64, depth: int = 32, *, fwhm_xy: float = 250.0,
                   fwhm_z: float = 700.0, pixel_spacing: float = 65.0, slice_spacing: float = 200.0,
                   centre: str = "fft", normalize: str = "sum", oversample: int = 1) -> np.ndarray:
    """:func:`~fijidecon.psf.lorentzian` on a ``depth × height × width`` stack."""
    return _idealized(lorentzian, width, height, depth, fwhm_xy, fwhm_z, pixel_spacing, slice_spacing, centre,
                      normalize, oversample)


def widefield_psf(width: int = 64, height: int = 64, depth: int = 32, *, na: float = 1.4,
                  wavelength_nm: float = 520.0, immersion_index: float = 1.515, sample_index: float = 1.515,
                  depth_nm: float = 0.0, pixel_size_nm: float = 65.0, slice_spacing_nm: float = 200.0,
                  apodization: str = "aplanatic", oversample: int = 3, axial_origin: str = "nominal",
                  centre: str = "fft", normalize: str = "sum") -> np.ndarray:
    """:func:`~fijidecon.psf.widefield` on a ``depth × height × width`` stack."""
    shape = _stack(width, height, depth)
    for name, side in zip(("width", "height", "depth"), shape[::-1]):  # its tables would blame the spacings
        _validate.check_int(name, side, 1, 65536)
    pixel_size_nm = _validate.check_storable_spacing("pixel_size_nm", _positive("pixel_size_nm", pixel_size_nm), "nm")
    if len(shape) == 3:
        slice_spacing_nm = _validate.check_storable_spacing("slice_spacing_nm",
                                                            _positive("slice_spacing_nm", slice_spacing_nm), "nm")
    vox = (pixel_size_nm, pixel_size_nm) if len(shape) == 2 else (slice_spacing_nm, pixel_size_nm, pixel_size_nm)
    depth_nm = _validate.check_float("depth_nm", depth_nm, 0.0)
    if depth_nm > _validate.STORABLE_SPACING[1]:  # 1e308 was taken (without an index mismatch it does not matter)
        raise InputError(f"depth_nm: expected a depth from 0 to {_validate.STORABLE_SPACING[1]:.2g} nm (the range of "
                         f"the spacings), got {depth_nm:g}; is it in nm?")
    names = {"voxel_size_nm (y, x)": "pixel_size_nm", "shape": _SIZES[len(shape)],
             "voxel_size_nm (z)": "slice_spacing_nm",
             "voxel_size_nm": "slice_spacing_nm, pixel_size_nm" if len(shape) == 3 else "pixel_size_nm"}
    with _validate.renamed(names):
            return widefield(shape, voxel_size_nm=vox, na=na, wavelength_nm=wavelength_nm,
                         immersion_index=immersion_index, sample_index=sample_index, depth_nm=depth_nm,
                         apodization=apodization, oversample=_int("oversample", oversample, 1),
                         axial_origin=axial_origin, centre=centre, normalize=normalize)


def beads_psf(image: np.ndarray, *, pixel_size: float = 0.0, slice_spacing: float = 0.0,
              target_pixel_size: float = 0.0, target_slice_spacing: float = 0.0, width: int = 0, height: int = 0,
              depth: int = 0, threshold: float = 0.25, max_beads: int = 0, reject_saturated: bool = False,
              register: bool = True, bead_diameter: float = 0.0, normalize: str = "sum",
              calibration: Any = None) -> BeadPSF:
    """:func:`~fijidecon.psf.psf_from_beads` with scalar spacings; ``0`` means automatic.

    ``pixel_size = 0`` / ``slice_spacing = 0`` take the spacing from ``calibration`` (a
    :class:`fijidecon.calibration.Calibration` of the image, passed by the ImageJ bridge
    or the CLI when they have one; an error without it); ``target_* = 0`` keeps the
    image's spacing; ``width = height = depth = 0`` takes the
    largest box around the brightest bead (otherwise all three must be given, ``depth``
    ignored for a 2-D image); ``max_beads = 0`` uses every accepted bead;
    ``bead_diameter = 0`` treats the beads as points (their size is not removed).
    """
    if not isinstance(image, np.ndarray):
        raise InputTypeError(f"image: expected a numpy array, got {type(image).__name__}")
    image = np.squeeze(image) if image.ndim > 3 else image
    nd = image.ndim
    typed = [n for n, v in (("slice_spacing", slice_spacing if nd == 3 else 0), ("pixel_size", pixel_size))
             if _validate._is_number(v) and v]  # the spacings given, not taken from the calibration
    pixel_size = _spacing("pixel_size", pixel_size, calibration, "X")
    slice_spacing = _spacing("slice_spacing", slice_spacing, calibration, "Z") if nd == 3 else 1.0
    vox = (pixel_size, pixel_size) if nd == 2 else (slice_spacing, pixel_size, pixel_size)
    tp = _validate.check_float("target_pixel_size", target_pixel_size, 0.0) or None
    ts = _validate.check_float("target_slice_spacing", target_slice_spacing, 0.0) or None
    tp = tp and _validate.check_storable_spacing("target_pixel_size", tp)
    ts = ts and _validate.check_storable_spacing("target_slice_spacing", ts)
    given = [n for n, v in (("target_slice_spacing", ts if nd == 3 else None), ("target_pixel_size", tp)) if v]
    tgt = None
    if tp is not None or ts is not None:
        tp = tp or float(pixel_size)
        ts = ts or float(slice_spacing)
        tgt = (tp, tp) if nd == 2 else (ts, tp, tp)
    sizes = [_int("width", width, 0), _int("height", height, 0), _int("depth", depth, 0)]
    if nd == 2:
        sizes = sizes[:2]
    if all(s == 0 for s in sizes):
        shape = None
    elif any(s == 0 for s in sizes):
        raise InputError("width: give width, height and depth (for a 3-D image) together, or all 0 for automatic")
    else:
        shape = (sizes[1], sizes[0]) if nd == 2 else (sizes[2], sizes[1], sizes[0])
    mb = _int("max_beads", max_beads, 0) or None
    bd = _validate.check_float("bead_diameter", bead_diameter, 0.0)
    if calibration is not None and not calibration.has_length_unit():
        _validate.warn(f"image: no length unit (uncalibrated): the PSF's voxel size ({_fmt(tgt or vox)}) has none "
                       "either, so a deconvolution takes it at its image's voxel size, whatever that is; give the beads "
                       "image a unit (ImageJ: Image > Properties; CLI: --voxel-size with a unit) to have the PSF "
                       "resampled to the image it deconvolves", RuntimeWarning)
    names = {"target_voxel_size": ", ".join(given) or "target_pixel_size", "threshold/min_snr": "threshold",
             "shape": "width, height" + (", depth" if nd == 3 else "")}
    if typed:  # the image's voxel size as given (else from its calibration: CLI --voxel-size)
        names["voxel_size"] = ", ".join(typed)
    with _validate.renamed(names):
        return psf_from_beads(image, vox, target_voxel_size=tgt, shape=shape, threshold=threshold, max_beads=mb,
                              reject_saturated=_validate.check_bool("reject_saturated", reject_saturated),
                              register=_validate.check_bool("register", register),
                              bead_diameter=bd or None, normalize=normalize)


def _fmt(v: Any) -> str:
    return " x ".join(f"{float(x):g}" for x in v)
