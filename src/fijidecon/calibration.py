"""Calibration carried beside numpy arrays: voxel size, unit and axis names.

The numerical core takes plain arrays plus explicit spacings; :mod:`fijidecon.io`
and :mod:`fijidecon.fiji` carry a :class:`Calibration` beside every array and put it
back on every result.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

from .errors import InputError

#: Axis letters in numpy order that we understand (ImageJ hyperstack order is TZCYX).
AXES = "TZCYXS"

#: Length units understood, in nanometres (ImageJ, OME and common spellings).
UNIT_NM = {
    "pm": 1e-3, "Å": 0.1, "angstrom": 0.1, "nm": 1.0, "nanometer": 1.0, "nanometre": 1.0,
    "µm": 1e3, "\u03bcm": 1e3, "um": 1e3, "micron": 1e3, "microns": 1e3, "micrometer": 1e3, "micrometre": 1e3,
    "mm": 1e6, "millimeter": 1e6, "millimetre": 1e6, "cm": 1e7, "m": 1e9, "meter": 1e9, "metre": 1e9,
}


#: Time units in seconds (ImageJ, OME and OME-Zarr spellings): a ``T`` spacing is always in seconds.
TIME_S = {
    "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0, "ms": 1e-3, "msec": 1e-3, "millisecond": 1e-3,
    "µs": 1e-6, "\u03bcs": 1e-6, "us": 1e-6, "usec": 1e-6, "microsecond": 1e-6, "ns": 1e-9, "nanosecond": 1e-9,
    "min": 60.0, "minute": 60.0, "minutes": 60.0, "h": 3600.0, "hr": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
}


def seconds_per(unit: str | None) -> float | None:
    """Seconds in one ``unit`` of time (``None`` or empty: seconds; unknown: ``None``)."""
    u = str(unit or "s").strip()
    return TIME_S.get(u, TIME_S.get(u.lower()))


def unit_factor(unit: str, to: str = "nm") -> float:
    """How many ``to`` one ``unit`` is (``unit_factor("micron") == 1000.0``).

    Raises
    ------
    ValueError
        For ``"pixel"``, an empty or an unknown unit (the message names it).
    """
    a, b = _unit_nm(unit), _unit_nm(to)
    return a / b


def _unit_nm(unit: str) -> float:
    u = str(unit).strip()
    f = UNIT_NM.get(u, UNIT_NM.get(u.lower()))
    if f is None:
        raise InputError(f"unit: {unit!r} is not a length unit (known: nm, µm/um/micron, mm, m, pm, Å)")
    return f


@dataclass(frozen=True)
class Calibration:
    """Spatial calibration of an array.

    Parameters
    ----------
    axes:
        One letter per array axis in numpy order, e.g. ``"ZYX"`` or ``"CZYX"``.
    spacing:
        Physical size of a step along each *spatial* axis, keyed by letter
        (``{"Z": 0.2, "Y": 0.065, "X": 0.065}``).  Missing axes mean 1 unit.
    unit:
        Length unit of every spacing (``"micron"``, ``"nm"``, ``"pixel"`` …).
    """

    axes: str = "ZYX"
    spacing: tuple[tuple[str, float], ...] = ()
    unit: str = "pixel"

    @classmethod
    def make(cls, axes: str, unit: str = "pixel", **spacing: float) -> "Calibration":
        """A calibration from axis letters, a unit and per-axis spacings, e.g.
        ``Calibration.make("ZYX", "um", Z=0.2, Y=0.065, X=0.065)``; axes without a spacing get 1.

        Raises
        ------
        fijidecon.errors.InputError
            An unknown axis letter, or a spacing that is not positive.
        """
        axes = axes.upper()
        for ax in axes:
            if ax not in AXES:
                raise InputError(f"axes: unknown axis letter {ax!r} in {axes!r}")
        sp = []
        for ax, val in spacing.items():
            ax = ax.upper()
            val = float(val)
            if not val > 0:
                raise InputError(f"spacing: {ax} spacing must be positive, got {val}")
            sp.append((ax, val))
        return cls(axes=axes, spacing=tuple(sorted(sp)), unit=unit)

    @classmethod
    def default(cls, ndim: int) -> "Calibration":
        return cls(axes="ZYX"[-ndim:] if ndim <= 3 else "CZYX"[-ndim:] if ndim == 4 else "TCZYX"[-ndim:])

    def get(self, axis: str, default: float = 1.0) -> float:
        return dict(self.spacing).get(axis.upper(), default)

    @property
    def dx(self) -> float:
        return self.get("X")

    @property
    def dy(self) -> float:
        return self.get("Y")

    @property
    def dz(self) -> float:
        return self.get("Z")

    def voxel_size(self, axes: Sequence[str] = "ZYX", unit: str | None = None) -> tuple[float, ...]:
        """Spacing along ``axes``; with ``unit``, converted to that length unit.

        Raises
        ------
        fijidecon.errors.InputError
            When ``unit`` is given but it, or this calibration's unit, is not a length unit
            (e.g. ``"pixel"``: a file without voxel sizes).
        """
        if unit is not None:
            for which, u in (("this calibration's unit", self.unit), ("the unit asked for", unit)):
                if not _is_length(u) and str(u).lower() in ("", "pixel", "pixels"):
                    raise InputError(f"unit: {which} is {u!r}, not a length (a file without voxel sizes reads "
                                     "as 'pixel'): give the voxel sizes yourself (voxel_size=, psf_voxel_size=; CLI "
                                     "--voxel-size), or leave unit= out to get the spacings as they are")
        f = 1.0 if unit is None else unit_factor(self.unit, unit)
        return tuple(self.get(a) * f for a in axes)

    def has_length_unit(self) -> bool:
        """Whether the unit is a known length unit (so spacings can be compared across files)."""
        return _is_length(self.unit)

    def with_axes(self, axes: str) -> "Calibration":
        return replace(self, axes=axes.upper())

    def is_calibrated(self) -> bool:
        return self.unit not in ("", "pixel", "pixels") or any(v != 1.0 for _, v in self.spacing)


def _is_length(unit: str) -> bool:
    """Whether ``unit`` is a known length unit."""
    try:
        _unit_nm(unit)
    except ValueError:
        return False
    return True


def dataarray_calibration(da: Any, axes: str) -> "Calibration":
    """The calibration an ``xarray.DataArray`` carries: each T/Z/Y/X spacing is the step of its
    coordinate (when it has one, of length > 1 and increasing), the unit is ``da.attrs["unit"]``
    (or ``"units"``), else the ``x`` coordinate's ``attrs["units"]``, else ``"pixel"``.  ``axes``:
    the letters of ``da.dims`` (``"ZYX"``).  What :func:`fijidecon.fiji.convert.from_imageplus_xarray`
    writes, :func:`fijidecon.io.write_image` and the deconvolution functions read back."""
    import numpy as np

    spacing = {}
    unit = da.attrs.get("unit") or da.attrs.get("units")
    for d, a in zip(da.dims, axes):
        if a in "XYZT" and d in da.coords and da.sizes[d] > 1:
            c = np.asarray(da.coords[d].values)
            if c.dtype.kind not in "iuf":
                continue
            step = float(c[1]) - float(c[0])
            if step > 0:
                spacing[a] = step
            if unit is None and a == "X":
                unit = da.coords[d].attrs.get("units") or da.coords[d].attrs.get("unit")
    return Calibration.make(axes, unit=str(unit) if unit else "pixel", **spacing)
