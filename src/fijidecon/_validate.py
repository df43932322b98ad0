"""Argument checks shared by every public function: one module, one message style.

Every check raises ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind,
wrong value) with a one-line message that starts with the parameter's name::

    iterations: expected a whole number >= 0, got 'ten' (str)

Strict types: a string is never taken for a bool or a number (the faces - CLI,
ImageJ dialogs, macros - convert their text through :mod:`fijidecon.commands` first).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

__all__ = ["check_bool", "check_int", "check_float", "check_choice", "check_spacing", "check_axes", "got"]


def got(value: Any) -> str:
    """``repr`` of a value with its type, for messages (``'10' (str)``)."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _bounds(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" in [{minimum:g}, {maximum:g}]"
    if minimum is not None:
        return f" >= {minimum:g}"
    if maximum is not None:
        return f" <= {maximum:g}"
    return ""


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a bool; only ``True``/``False`` (and numpy bools) are accepted."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name}: expected True or False, got {got(value)}")


def check_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int (whole-valued floats accepted, bools and strings not)."""
    what = f"a whole number{_bounds(minimum, maximum)}"
    if isinstance(value, (bool, np.bool_, str, bytes)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected {what}, got {got(value)}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{name}: expected {what}, got {got(value)}")
    if float(value) != int(value):
        raise TypeError(f"{name}: expected {what}, got {got(value)}")
    v = int(value)
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        raise ValueError(f"{name}: expected {what}, got {v}")
    return v


def check_float(name: str, value: Any, minimum: float | None = None, maximum: float | None = None, *,
                positive: bool = False) -> float:
    """``value`` as a finite float in range (``positive``: strictly > 0)."""
    what = "a finite number" + (" > 0" if positive else "") + _bounds(minimum, maximum)
    if isinstance(value, (bool, np.bool_, str, bytes)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected {what}, got {got(value)}")
    v = float(value)
    if (not math.isfinite(v) or (positive and not v > 0) or (minimum is not None and v < minimum)
            or (maximum is not None and v > maximum)):
        raise ValueError(f"{name}: expected {what}, got {value!r}")
    return v


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices`` (strings compared case-insensitively)."""
    choices = tuple(choices)
    key = value.strip().lower() if isinstance(value, str) else value
    for c in choices:
        if key == (c.lower() if isinstance(c, str) else c) and not (isinstance(key, str) != isinstance(c, str)):
            return c
    raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {got(value)}")


def check_spacing(name: str, value: Any, ndim: int) -> tuple[float, ...]:
    """A voxel size: ``ndim`` positive finite numbers, (Z, Y, X) or (Y, X) order."""
    what = f"{ndim} positive spacings ({', '.join('ZYX'[-ndim:])})"
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise TypeError(f"{name}: expected {what}, got {got(value)}")
    vals = list(value)
    if len(vals) != ndim:
        raise ValueError(f"{name}: expected {what}, got {len(vals)} values {tuple(vals)!r}")
    return tuple(check_float(f"{name}[{i}]", v, positive=True) for i, v in enumerate(vals))


def check_axes(name: str, axes: Any, ndim: int, allowed: str = "TCZYX") -> str:
    """Axis letters, one per array axis, each once, from ``allowed``; Y and X required."""
    if not isinstance(axes, str):
        raise TypeError(f"{name}: expected a string of axis letters such as 'ZYX' or 'TZCYX', got {got(axes)}")
    a = axes.strip().upper()
    bad = [c for c in a if c not in allowed]
    if bad:
        extra = " (RGB images: convert to 8/16-bit or split the colours first)" if "S" in bad else ""
        raise ValueError(f"{name}: unknown axis letter(s) {''.join(bad)!r} in {axes!r}; use {allowed}{extra}")
    if len(set(a)) != len(a):
        raise ValueError(f"{name}: repeated axis letter in {axes!r}")
    if len(a) != ndim:
        raise ValueError(f"{name}: {axes!r} names {len(a)} axes but the array has {ndim}")
    if "Y" not in a or "X" not in a:
        raise ValueError(f"{name}: {axes!r} must contain Y and X")
    return a
