"""Private helpers shared by the modern PSF models: argument checks, grids, normalization.

Nothing here is public API; :mod:`fijidecon.psf.idealized`, :mod:`fijidecon.psf.widefield`
and :mod:`fijidecon.psf.beads` use it so that they check and name their inputs the same way.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import numpy as np

#: Centre conventions: "fft" = index n div 2 (FFT-centred: ``ifftshift`` moves it to 0;
#: the convention of the ported Dougherty plugins and of the deconvolution code);
#: "middle" = (n - 1) / 2, the geometric middle (between two voxels for even n).
CENTRES = ("fft", "middle")

#: Normalizations: "sum" = voxels sum to 1, "peak" = maximum is 1, None = raw model values.
NORMALIZATIONS = ("sum", "peak", None)


def check_shape(shape: Any, name: str = "shape", ndims: Sequence[int] = (1, 2, 3)) -> tuple[int, ...]:
    """A tuple of positive ints with an allowed length."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        raise TypeError(f"{name}: expected a tuple of sizes such as (64, 64) or (32, 64, 64), got the int {shape!r}")
    try:
        items = tuple(shape)
    except TypeError:
        raise TypeError(f"{name}: expected a tuple of ints, got {type(shape).__name__}") from None
    if len(items) not in ndims:
        allowed = " or ".join(str(n) for n in ndims)
        raise ValueError(f"{name}: expected {allowed} sizes, got {len(items)} ({items!r})")
    out = []
    for v in items:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            else:
                raise TypeError(f"{name}: sizes must be ints, got {v!r}")
        if v < 1:
            raise ValueError(f"{name}: sizes must be >= 1, got {items!r}")
        out.append(int(v))
    return tuple(out)


def per_axis(value: Any, ndim: int, name: str, *, allow_zero: bool = False, allow_inf: bool = False) -> tuple[float, ...]:
    """A scalar or a sequence of ``ndim`` numbers -> tuple of floats, each checked positive.

    Per-axis sequences are in numpy order ((z,) y, x).
    """
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name}: expected a number or a sequence of {ndim} numbers, got {value!r}")
    if np.ndim(value) == 0:
        items = (value,) * ndim
    else:
        items = tuple(np.asarray(value).ravel().tolist())
        if len(items) != ndim:
            raise ValueError(f"{name}: expected one number or {ndim} numbers (one per axis, numpy order), got {len(items)}")
    out = []
    for v in items:
        if isinstance(v, bool):
            raise TypeError(f"{name}: expected a number, got {v!r}")
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise TypeError(f"{name}: expected a number, got {v!r}") from None
        if math.isnan(f):
            raise ValueError(f"{name}: NaN is not allowed")
        if math.isinf(f) and not (allow_inf and f > 0):
            raise ValueError(f"{name}: must be finite, got {v!r}")
        if f < 0 or (f == 0 and not allow_zero):
            raise ValueError(f"{name}: must be {'>= 0' if allow_zero else 'positive'}, got {v!r}")
        out.append(f)
    return tuple(out)


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    return per_axis(value, 1, name, allow_zero=allow_zero)[0]


def check_centre(centre: Any) -> str:
    if not isinstance(centre, str) or centre.lower() not in CENTRES:
        raise ValueError(f"centre: expected one of {CENTRES}, got {centre!r}")
    return centre.lower()


def check_normalize(normalize: Any) -> str | None:
    if normalize is None:
        return None
    value = getattr(normalize, "value", normalize)  # accept an Enum such as diffraction.Normalization
    if isinstance(value, str) and value.lower() in ("sum", "peak"):
        return value.lower()
    if isinstance(value, str) and value.lower() == "none":
        return None
    raise ValueError(f"normalize: expected 'sum', 'peak' or None, got {normalize!r}")


def check_dtype(dtype: Any) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: not a numpy dtype: {dtype!r}") from None
    if dt.kind != "f":
        raise TypeError(f"dtype: expected a floating dtype (float32 or float64), got {dt}")
    return dt


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
        raise ValueError(f"normalize: the {name} has {'sum' if normalize == 'sum' else 'maximum'} {ref!r}, "
                         "cannot normalize (is the grid far too coarse or too small?)")
    a /= ref
    return a
