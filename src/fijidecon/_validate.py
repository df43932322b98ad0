"""Argument checks shared by every public function: one module, one message style.

Every check raises :class:`~fijidecon.errors.InputTypeError` (a ``TypeError``: wrong kind of
value) or :class:`~fijidecon.errors.InputError` (a ``ValueError``: right kind, wrong value) with a one-line message that starts with the parameter's name::

    iterations: expected a whole number >= 0, got 'ten' (str)

Strict types: a string is never taken for a bool or a number (the faces - CLI,
ImageJ dialogs, macros - convert their text through :mod:`fijidecon.commands` first).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import re
import sys
import warnings
from typing import Any, Iterable, Iterator, Literal, Sequence

import numpy as np

from .errors import FijideconError, InputError, InputTypeError, ResourceError

__all__ = ["check_bool", "check_int", "check_float", "check_choice", "check_spacing", "check_axes", "check_per_axis",
           "check_shape", "check_array", "refuse_file_name", "check_count", "check_memory", "format_bytes",
           "budget_option", "got",
           "check_storable_spacing", "renamed", "renamed_message"]


def got(value: Any) -> str:
    """``repr`` of a value with its type, for messages (``'10' (str)``); one line (an array's
    repr spans several), at most 60 characters; arrays also give their shape and dtype."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} ({value.dtype})"
    text = " ".join(repr(value).split())
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
    raise InputTypeError(f"{name}: expected True or False, got {got(value)}")


#: The most iterations any method takes (Richardson-Lucy's best counts are 10-300; 2**31 ran for ever).
MAX_ITERATIONS = 100_000


def check_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int (whole-valued floats accepted, bools and strings not)."""
    what = f"a whole number{_bounds(minimum, maximum)}"
    if isinstance(value, (bool, np.bool_, str, bytes)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputTypeError(f"{name}: expected {what}, got {got(value)}")
    if not math.isfinite(float(value)):
        raise InputError(f"{name}: expected {what}, got {got(value)}")
    if float(value) != int(value):
        raise InputTypeError(f"{name}: expected {what}, got {got(value)}")
    v = int(value)
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        raise InputError(f"{name}: expected {what}, got {v}")
    return v


def check_float(name: str, value: Any, minimum: float | None = None, maximum: float | None = None, *,
                positive: bool = False) -> float:
    """``value`` as a finite float in range (``positive``: strictly > 0)."""
    what = "a finite number" + (" > 0" if positive else "") + _bounds(minimum, maximum)
    if isinstance(value, (bool, np.bool_, str, bytes)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputTypeError(f"{name}: expected {what}, got {got(value)}")
    v = float(value)
    if (not math.isfinite(v) or (positive and not v > 0) or (minimum is not None and v < minimum)
            or (maximum is not None and v > maximum)):
        raise InputError(f"{name}: expected {what}, got {value!r}")
    return v


#: The voxel sizes an ImageJ TIFF can store: X and Y as resolution tags (1/size, a ratio of 32-bit integers);
#: the same range is asked of every spacing (Z too), in whatever unit it is given.
STORABLE_SPACING = (1.0 / (2**32 - 1), 2.0**32 - 1)


def check_storable_spacing(name: str, value: Any, unit: str = "", what: str = "spacing") -> float:
    """A voxel size (> 0) within :data:`STORABLE_SPACING` (2.3e-10 to 4.3e9 in its unit), refused before
    computing: smaller or larger ones cannot be written as a TIFF's resolution, and are a unit mix-up.
    ``what``: another length given in the spacings' unit (``"FWHM"``) is held to the same range."""
    v = check_float(name, value, positive=True)
    low, high = STORABLE_SPACING
    if not low <= v <= high:
        in_unit = f" {unit}" if unit else ""
        why = "what a TIFF's resolution tags can store" if what == "spacing" else "the range of the spacings"
        raise InputError(f"{name}: expected a {what} from {low:.2g} to {high:.2g}{in_unit} ({why}), got {v:g}; is it "
                         "in the right unit?")
    return v


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices`` (strings compared case-insensitively)."""
    choices = tuple(choices)
    if not (value is None or isinstance(value, (str, bool, int, float, np.integer, np.floating))):
        # an array, a list, an object: never a choice (and == on an array is not a truth value)
        raise InputTypeError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {got(value)}")
    key = value.strip().lower() if isinstance(value, str) else value
    for c in choices:
        if key == (c.lower() if isinstance(c, str) else c) and not (isinstance(key, str) != isinstance(c, str)):
            return c
    raise InputError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {got(value)}")


def check_spacing(name: str, value: Any, ndim: int) -> tuple[float, ...]:
    """A voxel size: ``ndim`` positive finite numbers, (Z, Y, X) or (Y, X) order."""
    what = f"{ndim} positive spacings ({', '.join('ZYX'[-ndim:])})"
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise InputTypeError(f"{name}: expected {what}, got {got(value)}")
    vals = list(value)
    if len(vals) != ndim:
        raise InputError(f"{name}: expected {what}, got {len(vals)} values {tuple(vals)!r}")
    return tuple(check_float(f"{name}[{i}]", v, positive=True) for i, v in enumerate(vals))


def check_axes(name: str, axes: Any, ndim: int, allowed: str = "TCZYX") -> str:
    """Axis letters, one per array axis, each once, from ``allowed``; Y and X required."""
    if not isinstance(axes, str):
        raise InputTypeError(f"{name}: expected a string of axis letters such as 'ZYX' or 'TZCYX', got {got(axes)}")
    a = axes.strip().upper()
    bad = [c for c in a if c not in allowed]
    if bad:
        extra = " (RGB images: convert to 8/16-bit or split the colours first)" if "S" in bad else ""
        raise InputError(f"{name}: unknown axis letter(s) {''.join(bad)!r} in {axes!r}; use {allowed}{extra}")
    if len(set(a)) != len(a):
        raise InputError(f"{name}: repeated axis letter in {axes!r}")
    if len(a) != ndim:
        raise InputError(f"{name}: {axes!r} names {len(a)} axes but the array has {ndim}")
    if "Y" not in a or "X" not in a:
        raise InputError(f"{name}: {axes!r} must contain Y and X")
    return a


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def check_per_axis(name: str, value: Any, ndim: int, *, scalar: bool = True, minimum: float | None = None,
                   positive: bool = True) -> tuple[float, ...]:
    """One finite number per axis (numpy order): a sequence of ``ndim`` numbers.

    ``scalar=True`` also takes one bare number for every axis (only where the function
    documents it).  Each value is checked as :func:`check_float` with the name
    ``name[i]``: ``positive`` (> 0, the default) or ``>= minimum``.
    """
    what = (f"one number or {ndim} numbers (one per axis, numpy order)" if scalar
            else f"{ndim} numbers (one per axis, numpy order)")
    if _is_number(value) or (isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf"):
        if not scalar:
            raise InputTypeError(f"{name}: expected {what}, got the bare number {got(value)}")
        return (check_float(name, value.item() if isinstance(value, np.ndarray) else value, minimum,
                            positive=positive and minimum is None),) * ndim
    if isinstance(value, (str, bytes, dict, set)) or not isinstance(value, (Sequence, np.ndarray)):
        raise InputTypeError(f"{name}: expected {what}, got {got(value)}")
    if isinstance(value, np.ndarray) and value.ndim != 1:
        raise InputError(f"{name}: expected {what}, got an array of shape {value.shape}")
    vals = value.tolist() if isinstance(value, np.ndarray) else list(value)
    if len(vals) != ndim:
        raise InputError(f"{name}: expected {what}, got {len(vals)} values")
    return tuple(check_float(f"{name}[{i}]", v, minimum, positive=positive and minimum is None)
                 for i, v in enumerate(vals))


def check_shape(name: str, value: Any, ndims: Sequence[int] = (1, 2, 3), minimum: int = 1) -> tuple[int, ...]:
    """An array shape: a sequence of whole numbers ``>= minimum`` whose length is in ``ndims``."""
    allowed = " or ".join(str(n) for n in ndims)
    if _is_number(value):
        raise InputTypeError(f"{name}: expected a tuple of {allowed} sizes such as (32, 64, 64), got the bare "
                             f"number {got(value)}")
    if isinstance(value, (str, bytes, dict, set)) or not isinstance(value, (Sequence, np.ndarray)):
        raise InputTypeError(f"{name}: expected a tuple of {allowed} sizes such as (32, 64, 64), got {got(value)}")
    vals = value.tolist() if isinstance(value, np.ndarray) else list(value)
    if len(vals) not in tuple(ndims):
        raise InputError(f"{name}: expected {allowed} sizes, got {len(vals)} ({tuple(vals)!r})")
    return tuple(check_int(f"{name}[{i}]", v, minimum) for i, v in enumerate(vals))


def refuse_file_name(name: str, value: Any) -> None:
    """``InputTypeError`` when an array parameter got a file name (``str`` or path) instead of an array."""
    if isinstance(value, (str, bytes, os.PathLike)):
        raise InputTypeError(f"{name}: expected an array, got the path {str(value)!r}; read the file first "
                             "(fijidecon.io.read_image)")


def check_array(name: str, value: Any, ndims: Sequence[int] | None = None, kinds: str = "uif", *,
                finite: bool = True, min_size: int = 1) -> np.ndarray:
    """A numpy array with an allowed number of axes and dtype kind, every axis ``>= min_size``.

    ``finite`` refuses NaN and infinite values.  Returns the array itself (not a copy).
    """
    refuse_file_name(name, value)
    if not isinstance(value, np.ndarray):
        raise InputTypeError(f"{name}: expected a numpy array, got {type(value).__name__}")
    if ndims is not None and value.ndim not in tuple(ndims):
        allowed = " or ".join(f"{n}-D" for n in ndims)
        raise InputError(f"{name}: expected a {allowed} array, got shape {value.shape}")
    if value.dtype.kind not in kinds:
        raise InputTypeError(f"{name}: expected a real numeric array, got dtype {value.dtype}")
    if value.ndim and min(value.shape) < min_size:
        raise InputError(f"{name}: every axis needs at least {min_size} voxel(s), got shape {value.shape}")
    if finite and value.dtype.kind == "f" and not np.isfinite(value).all():
        raise InputError(not_finite(name, value))
    return value


def not_finite(name: str, value: Any) -> str:
    """The message for an array with NaN or infinite values: how many, where the first is, and what
    to do (``value``: a numpy array; a Dask array gives no count)."""
    if not isinstance(value, np.ndarray):
        return (f"{name}: contains NaN or infinite values; replace them (np.nan_to_num, or the background level) "
                "or crop them away")
    bad = ~np.isfinite(value)
    n = int(np.count_nonzero(bad))
    first = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), value.shape))
    return (f"{name}: contains {n} NaN or infinite value(s) of {value.size} (the first at index {first}); replace "
            "them (np.nan_to_num, or the background level) or crop them away")


def check_count(name: str, count: float, limit: float, what: str, remedy: str = "") -> None:
    """Refuse a size the parameters imply (nodes, samples, voxels) above ``limit``, before allocating.

    For sizes that are absurd whatever the machine (a wavelength in the wrong unit).
    """
    if not count <= limit:  # also NaN
        tail = f"; {remedy}" if remedy else ""
        raise InputError(f"{name}: {what} would be {count:.3g}, more than the {limit:.3g} allowed{tail}")


def format_bytes(n: float, rounding: Literal["nearest", "up", "down"] = "nearest") -> str:
    """``n`` bytes in the largest binary unit it fills: ``"763 MiB"``, ``"9.54 MiB"``, ``"1.1 GiB"``.

    Three significant digits (whole numbers from 100 up), trailing zeros dropped.  ``"up"``:
    a budget to give, rounded up to a whole MiB below 1 GiB (``"64 MiB"``; with 2 decimals in
    GiB) so that it runs; ``"down"``: a budget given, never read as more than it is (``--memory-limit
    10MB`` is ``"9.53 MiB"``).
    """
    n = float(n)
    if rounding == "up" and 2**20 <= n < 2**30:
        return f"{math.ceil(n / 2**20 - 1e-9):,d} MiB"
    unit, size = next(((u, s) for u, s in (("TiB", 2.0**40), ("GiB", 2.0**30), ("MiB", 2.0**20), ("KiB", 2.0**10))
                       if n >= s), ("bytes", 1.0))
    v = n / size
    digits = 0 if v >= 100 or unit == "bytes" else 1 if v >= 10 else 2
    if rounding == "up" and unit != "bytes":
        digits = max(digits, 2) if unit in ("GiB", "TiB") else digits
        v = math.ceil(v * 10**digits - 1e-9) / 10**digits
    elif rounding == "down":
        v = math.floor(v * 10**digits + 1e-9) / 10**digits
    text = f"{v:,.{digits}f}"
    if digits:
        text = text.rstrip("0").rstrip(".")
    return f"{text} {unit}"


def budget_option(n: float) -> str:
    """A budget to type, rounded up to a whole MiB: ``"1007MiB"`` (``--memory-limit 1007MiB``,
    ``memory_limit="1007MiB"``)."""
    return f"{math.ceil(float(n) / 2**20 - 1e-9)}MiB"


def check_memory(name: str, nbytes: float, what: str, remedy: str = "") -> None:
    """Refuse, before allocating, work that would need more than the memory budget.

    The budget is :func:`fijidecon.deconvolve.default_memory_limit` (0.7 of the memory
    this process can still allocate).  Raises :class:`~fijidecon.errors.ResourceError`
    (a ``MemoryError``) starting with ``name``.
    """
    from .deconvolve._memory import default_memory_limit  # lazy: deconvolve imports this module

    if nbytes != nbytes or nbytes > 2.0**62:  # beyond any machine: no need to ask the system
        budget = None
    else:
        budget = default_memory_limit()
        if nbytes <= budget:
            return
    tail = f"; {remedy}" if remedy else ""
    have = "" if budget is None else f", the memory budget is {format_bytes(budget)}"
    raise ResourceError(f"{name}: {what} would need about {format_bytes(nbytes)}{have}{tail}")


#: Inside :func:`renamed`: the parameter names (core name -> caller's name) its errors and warnings take.
_RENAMES: "contextvars.ContextVar[tuple]" = contextvars.ContextVar("fijidecon_renames", default=())


def renamed_message(message: str, names: Any) -> str:
    """``message`` with each parameter name of ``names`` (a mapping: core name -> caller's name) replaced
    where it stands as a name (``voxel_size_nm (z): ...`` -> ``slice_spacing_nm: ...``; not inside another
    word or a dotted/dashed name); the longest names first."""
    for old in sorted(names, key=len, reverse=True):
        message = re.sub(rf"(?<![\w.-]){re.escape(old)}(?![\w-])", names[old], message)
    return message


@contextlib.contextmanager
def renamed(names: Any) -> Iterator[None]:
    """The package's errors (:class:`~fijidecon.errors.FijideconError`) and warnings (:func:`warn`) raised
    inside the block name the caller's parameters, not the core function's: a flat wrapper (``widefield_psf``'s
    ``slice_spacing_nm``) calling a core function (``widefield``'s ``voxel_size_nm``) says its own names, and
    the CLI then spells them as options (``--slice-spacing-nm``).  ``names``: core name -> caller's name."""
    token = _RENAMES.set(_RENAMES.get() + (dict(names),))
    try:
        yield
    except FijideconError as exc:
        text = renamed_message(str(exc), names)
        if text == str(exc) or len(exc.args) != 1:
            raise
        raise type(exc)(text) from exc
    finally:
        _RENAMES.reset(token)


#: The package's folder: frames from files in it are the package's own, not the user's.
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


#: Warnings are errors (the CLI's ``--strict``, for unattended batches): :func:`warn` raises
#: :class:`~fijidecon.errors.InputError` with the message instead.  Process-wide (Dask threads see it).
STRICT = False


#: Inside :func:`volume_warnings`: the warnings held back to be said once for all volumes.
_HELD: "contextvars.ContextVar[list | None]" = contextvars.ContextVar("fijidecon_held_warnings", default=None)
#: A volume named in a warning (``(volume t=0, c=1)`` or ``(t=0, c=1)``).
_VOLUME = re.compile(r" \((?:volume )?t=(\d+), c=(\d+)\)")


@contextlib.contextmanager
def _holding() -> Iterator[list]:
    """The block's warnings (``(message, category)``) held in the list yielded, not said (see :func:`warn`)."""
    held: list = []
    token = _HELD.set(held)
    try:
        yield held
    finally:
        _HELD.reset(token)


@contextlib.contextmanager
def volume_warnings(also: Any = None) -> Iterator[None]:
    """Warnings from each (T, C) volume of a hyperstack said once: identical ones once, and those that
    differ only in the volume they name (``stop='auto' (volume t=0, c=1): …``) as one warning naming
    every volume (``stop='auto' (volumes (0, 0), (0, 1), … of 6): …`` with the first one's figures).
    A hyperstack of 6 volumes printed the same warning 6 times.  ``also``: called with each warning said
    (e.g. a logger's ``info``, for messages that are logged as well)."""
    with _holding() as held:
        yield
    groups: dict = {}
    for message, category in held:
        m = _VOLUME.search(message)
        key = (_VOLUME.sub("", message) if m is None else
               re.sub(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", "#", _VOLUME.sub("", message)), category)
        groups.setdefault(key, []).append((message, m))
    for (_, category), items in groups.items():
        message, m = items[0]
        named = [f"({x.group(1)}, {x.group(2)})" for _, x in items if x is not None]
        if len(named) > 1:
            message = _VOLUME.sub(f" (volumes (t, c) {', '.join(named)}; the figures of the first)", message, count=1)
        warn(message, category)
        if also is not None:
            also(message)


@contextlib.contextmanager
def held_until_checked(hold: bool = True) -> Iterator[None]:
    """Warnings of the block said only if it ends without an error (``hold``; else said as they come):
    checks that may refuse the input (an image given as the PSF) then come alone, not after warnings
    about what they refuse."""
    if not hold or STRICT:
        yield
        return
    with _holding() as held:
        yield
    for message, category in held:  # reached only without an error
        warn(message, category)


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` pointing at the user's line: the first frame outside the package (a
    fixed ``stacklevel`` pointed inside it, or at ``sys:1``, when the call came through helpers).
    Where no frame is the user's (a Dask worker thread), at the outermost frame there is.  With
    :data:`STRICT`, an ``InputError`` instead; inside :func:`volume_warnings`, held to be said once."""
    for names in reversed(_RENAMES.get()):  # the innermost caller's names first
        message = renamed_message(message, names)
    held = _HELD.get()
    if held is not None and not STRICT:
        held.append((message, category))
        return
    if STRICT:
        raise InputError(f"{message} (--strict: a warning stops the run)")
    frame, level = sys._getframe(1), 2
    while frame.f_back is not None and (frame.f_code.co_filename.startswith(_PACKAGE_DIR)
                                        or frame.f_code.co_filename == contextlib.__file__):
        frame, level = frame.f_back, level + 1  # a held warning said as a context ends: not contextlib's line
    warnings.warn(message, category, stacklevel=level)


def check_callback(callback: Any, form: str) -> Any:
    """``callback`` as a function of two positional arguments (``form`` names them, e.g.
    ``"(figures, estimate)"``), or ``None``.  A function of one argument (``lambda figures: ...``) is
    called with the first only; one that takes neither is refused up front (it failed after the
    set-up, or after the first brick of a bricked run).  Bricked runs call it as
    ``callback(BrickFigures, None)`` after each brick."""
    if callback is None:
        return None
    if not callable(callback):
        raise InputTypeError(f"callback: expected a callable or None, got {got(callback)}")
    import inspect

    try:
        sig = inspect.signature(callback)
    except (TypeError, ValueError):  # a builtin without a signature: taken as it is
        return callback
    named = {"estimate": None} if "estimate" in sig.parameters else {}  # Iterative Deconvolve 3D passes it so
    for n in (2, 1):
        try:
            sig.bind(*([None] * n), **(named if n == 2 else {}))
        except TypeError:
            continue
        return callback if n == 2 else _first_only(callback)
    raise InputTypeError(f"callback: expected a function of {form} (returning True stops the run), got one with "
                         f"parameters {sig}")


def _first_only(callback: Any) -> Any:
    def call(first: Any, second: Any = None, **kw: Any) -> Any:
        return callback(first)
    call.__wrapped_callback__ = callback  # type: ignore[attr-defined]
    return call


#: A 4D array without axes read as CZYX warns when it then has at least this many channels ...
MANY_CHANNELS = 8
#: ... of at most this many planes (a ZCYX stack, as ImageJ and np.stack(..., axis=1) make it).
FEW_PLANES = 4


def warn_default_czyx(shape: Sequence[int], name: str, how: str = "axes=") -> None:
    """The default CZYX of a 4D array (``shape``) without axes that looks like Z planes of a few
    channels (ZCYX): a warning naming ``how`` to give the axes."""
    shape = tuple(int(n) for n in shape)
    if len(shape) == 4 and shape[0] >= MANY_CHANNELS and shape[1] <= FEW_PLANES:
        warn(f"{name}: shape {shape} read as axes 'CZYX' (the default for 4D): {shape[0]} channels of {shape[1]} "
             f"plane(s); if it is {shape[0]} planes of {shape[1]} channels (ImageJ's order, or np.stack(..., "
             f"axis=1)), give {how}'ZCYX'", RuntimeWarning)
