"""Private helpers shared by the modern PSF models: argument checks, grids, normalization.

Nothing here is public API; :mod:`fijidecon.psf.idealized`, :mod:`fijidecon.psf.widefield`
and :mod:`fijidecon.psf.beads` use it so that they check and name their inputs the same way.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from .. import _validate
from ..errors import InputError, InputTypeError, NumericalError

#: Centre conventions: "fft" = index n div 2 (FFT-centred: ``ifftshift`` moves it to 0;
#: the convention of the ported Dougherty plugins and of the deconvolution code);
#: "middle" = (n - 1) / 2, the geometric middle (between two voxels for even n).
CENTRES = ("fft", "middle")

#: Normalizations: "sum" = voxels sum to 1, "peak" = maximum is 1, None = raw model values.
NORMALIZATIONS = ("sum", "peak", None)


def check_shape(shape: Any, name: str = "shape", ndims: Sequence[int] = (1, 2, 3)) -> tuple[int, ...]:
    """A tuple of positive ints with an allowed length."""
    return _validate.check_shape(name, shape, ndims)


def per_axis(value: Any, ndim: int, name: str, *, allow_zero: bool = False, allow_inf: bool = False) -> tuple[float, ...]:
    """A scalar or a sequence of ``ndim`` numbers -> tuple of floats, each checked positive.

    Per-axis sequences are in numpy order ((z,) y, x).  Strict types: no strings, no
    bools; NaN and infinities refused (``allow_inf``: ``+inf`` allowed).
    """
    if allow_inf and ndim == 1 and isinstance(value, (float, np.floating)) and value == math.inf:
        return (math.inf,)
    return _validate.check_per_axis(name, value, ndim, minimum=0.0 if allow_zero else None)


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """One finite number > 0 (``allow_zero``: >= 0); strict types."""
    if allow_zero:
        return _validate.check_float(name, value, 0.0)
    return _validate.check_float(name, value, positive=True)


def check_centre(centre: Any) -> str:
    if not isinstance(centre, str):
        raise InputTypeError(f"centre: expected one of {CENTRES}, got {_validate.got(centre)}")
    return _validate.check_choice("centre", centre, CENTRES)


def check_normalize(normalize: Any) -> str | None:
    if normalize is None:
        return None
    value = getattr(normalize, "value", normalize)  # accept an Enum such as diffraction.Normalization
    if isinstance(value, str) and value.strip().lower() in ("sum", "peak"):
        return value.strip().lower()
    if isinstance(value, str) and value.strip().lower() == "none":
        return None
    err = InputError if isinstance(value, str) else InputTypeError
    raise err(f"normalize: expected 'sum', 'peak' or None, got {_validate.got(normalize)}")


def check_dtype(dtype: Any) -> np.dtype:
    if isinstance(dtype, (bool, int, float)) or dtype is None:
        raise InputTypeError(f"dtype: expected a float dtype (float32 or float64), got {_validate.got(dtype)}")
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        raise InputTypeError(f"dtype: not a numpy dtype: {_validate.got(dtype)}") from None
    if dt.kind != "f" or dt.itemsize < 4:
        raise InputTypeError(f"dtype: expected a floating dtype (float32 or float64), got {dt}")
    return dt


def check_oversample(oversample: Any) -> int:
    """An odd whole number >= 1 of sub-samples per voxel and axis."""
    if isinstance(oversample, (float, np.floating)):
        raise InputTypeError(f"oversample: expected an odd int >= 1, got {_validate.got(oversample)}")
    m = _validate.check_int("oversample", oversample, 1)
    if m % 2 == 0:
        raise InputError(f"oversample: expected an odd int >= 1, got {m}")
    return m


#: Most float64 evaluations a PSF model may make (some tens of seconds of work; a 256**3
#: Lorentzian with oversample=3 needs 4.5e8): beyond it the parameters are absurd (a
#: length in the wrong unit) rather than merely large.
MAX_EVALUATIONS = 4e9


def centre_index(n: int, centre: str) -> float:
    """Index of the origin along an axis of length ``n``."""
    return float(n // 2) if centre == "fft" else (n - 1) / 2.0


def axis_coords(n: int, step: float, centre: str) -> np.ndarray:
    """Physical coordinates (float64) of the voxels along one axis, origin at the centre."""
    return (np.arange(n, dtype=np.float64) - centre_index(n, centre)) * step


def normalize_array(a: np.ndarray, normalize: str | None, name: str = "PSF") -> np.ndarray:
    """Scale ``a`` in place to sum 1 or peak 1 (float64 accumulation)."""
    if normalize is None:
        return a
    ref = float(np.sum(a, dtype=np.float64)) if normalize == "sum" else float(np.max(a))
    if not ref > 0 or not math.isfinite(ref):
        raise NumericalError(f"normalize: the {name} has {'sum' if normalize == 'sum' else 'maximum'} {ref!r}, "
                         "cannot normalize (is the grid far too coarse or too small?)")
    a /= ref
    return a


#: Voxel sizes accepted without a warning, relative to the resolution: lateral to lambda / (2 NA),
#: axial to 2 n lambda / NA^2 (typical sampling is 0.3-2x; lengths in mixed units are ~1000x off).
LATERAL_RATIO = (1 / 300, 30.0)
AXIAL_RATIO = (1 / 300, 30.0)


def warn_if_units_mixed(wavelength: float, na: float, index: float, lateral: float, axial: float | None,
                        names: tuple[str, str, str], refuse_after: float | None = None) -> None:
    """A ``UserWarning`` when the voxel size is far from the resolution the optics give: the usual
    result of lengths in different units (a wavelength in µm with pixels in nm).  ``names`` are
    the wavelength's, the lateral and the axial spacing's parameter names.  ``refuse_after``: the
    estimated computing time (seconds) of a PSF long to compute: then an ``InputError`` instead (a
    fresh user's wavelength 0.52 with 30-unit spacings ran for many minutes after the warning)."""
    r, a = wavelength / (2 * na), 2 * index * wavelength / na ** 2
    bad = []
    if not LATERAL_RATIO[0] * r <= lateral <= LATERAL_RATIO[1] * r:
        bad.append(f"{names[1]}={lateral:g} is {lateral / r:.2g}x the lateral resolution ({names[0]} / 2 NA = "
                   f"{r:.3g})")
    if axial is not None and not AXIAL_RATIO[0] * a <= axial <= AXIAL_RATIO[1] * a:
        bad.append(f"{names[2]}={axial:g} is {axial / a:.2g}x the depth of field (2 n {names[0]} / NA^2 = {a:.3g})")
    if bad and refuse_after is not None:
        raise InputError(f"{names[0]}: {'; '.join(bad)}: are {', '.join(names)} in one unit? (refused: this PSF "
                         f"would take about {refuse_after / 60:.0f} min to compute)")
    if bad:
        _validate.warn(f"psf: {'; '.join(bad)}: are {', '.join(names)} in one unit?", UserWarning)
