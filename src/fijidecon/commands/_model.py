"""The one description of a user-facing command, and what is derived from it.

A :class:`Command` lists its :class:`Param` objects once; the ImageJ dialog (label
text and macro key), the macro option string, the CLI options and the ``#@`` script
header are all derived from these objects, so the faces cannot drift apart.

Defaults are defined once, in the core function's signature: a parameter described with
``default=API`` takes the signature's default when the :class:`Command` is made (read
with :func:`inspect.signature`), so the CLI, the dialogs, the macro keys and the ``#@``
headers show exactly what ``function()`` does when the argument is left out.  Where
the core function's default is ``None`` ("automatic"), the description names the word
the faces show for it (``none="auto"``): typing it (or leaving the field empty) gives
the core function ``None``.
"""

from __future__ import annotations

import importlib
import inspect
import shlex
import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from .. import _validate
from ..errors import InputError

#: Parameter kinds understood by every face.
KINDS = ("float", "int", "bool", "choice", "string", "image")


class _ApiDefault:
    """Marker: take the default from the core function's signature."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "API"


#: ``Param(..., default=API)``: the default is the core function's signature default.
API = _ApiDefault()


def macro_key(label: str) -> str:
    """ImageJ's macro key for a dialog label: its first word, lower-cased.

    This is the rule of ``ij.Macro.trimKey``: cut at the first space, then at the
    first colon, then lower-case.  ``"Width, pixels"`` gives ``"width,"``.
    """
    key = label.split(" ", 1)[0]
    key = key.split(":", 1)[0]
    return key.lower()


@dataclass(frozen=True)
class Param:
    """One parameter of a command.

    Parameters
    ----------
    name:
        Keyword of the core function (``None``-free Python identifier).  Also gives
        the CLI option ``--name-with-dashes`` and the ``#@`` script parameter name.
    label:
        Dialog label.  Its first word (see :func:`macro_key`) is the macro key.
    kind:
        One of :data:`KINDS`.
    default:
        Default value, in API terms (for choices: the API value, not the label), or
        :data:`API` to take it from the core function's signature (resolved when the
        :class:`Command` is made; prefer it for every parameter the function has).
    unit:
        Physical unit text shown with the value, or ``None``.
    choices:
        For ``kind="choice"``: pairs ``(label shown in ImageJ, API value)``.
    minimum, maximum:
        Inclusive range checked by :meth:`convert` (``None`` = unbounded).
    positive:
        For a ``"float"``: the value must be > 0 (a length, an index), the bound the message states;
        ``minimum`` is then ``None`` (an inclusive 0 would let the dialogs offer 0).
    decimals:
        Digits ImageJ shows for a numeric field.
    flag:
        CLI option name when it should differ from ``name`` (e.g. ``"mode"``).
    api:
        ``False`` for dialog-only fields (window titles, display switches): they
        are not passed to the core function.
    help:
        One sentence for ``--help`` and the script header.
    none:
        For a ``"string"`` parameter whose API value may be ``None`` (automatic): the
        word every face shows for ``None`` (e.g. ``"auto"``).  That word, an empty field
        or ``None`` convert to ``None``; a number converts to a float (range-checked).
    numeric:
        For a ``"string"`` parameter with ``none``: only numbers (or the ``none`` word)
        are accepted.
    check:
        Optional validator of a converted value that is not ``None``: it raises
        ``ValueError`` (one line naming the parameter) for a bad value, so every face
        refuses it before any computation (e.g. ``memory_limit``: ``parse_memory``).
    parse:
        For a ``"string"`` parameter whose API value is not text: converts the face's text
        (or an API value passed through) to the API value, raising a one-line error naming
        the parameter (``background``: ``"600, 400"`` -> ``(600.0, 400.0)``, ``"auto"``).
    """

    name: str
    label: str
    kind: str
    default: Any
    unit: str | None = None
    choices: tuple[tuple[str, Any], ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    decimals: int = 2
    api: bool = True
    help: str = ""
    flag: str | None = None
    none: str | None = None
    numeric: bool = False
    check: Callable[[Any], Any] | None = None
    parse: Callable[[Any], Any] | None = None
    positive: bool = False

    def __post_init__(self) -> None:
        if self.positive and (self.kind != "float" or self.minimum is not None):
            raise InputError(f"Param {self.name!r}: positive= needs a float parameter without a minimum")
        if self.kind not in KINDS:
            raise InputError(f"Param {self.name!r}: unknown kind {self.kind!r}")
        if self.kind == "choice" and not self.choices:
            raise InputError(f"Param {self.name!r}: a choice needs choices")
        if self.none is not None and self.kind != "string":
            raise InputError(f"Param {self.name!r}: none= needs a string parameter (a text field in every face)")

    @property
    def full_help(self) -> str:
        """:attr:`help` with the rule a bound cannot show (``positive``: "Must be > 0."), for ``--help`` and
        the ``#@`` script descriptions."""
        return self.help + (" Must be > 0." if self.positive else "")

    # -- face values ---------------------------------------------------------------
    def face(self, value: Any) -> Any:
        """The value a face shows for an API value (``None`` → the ``none`` word)."""
        return self.none if value is None and self.none is not None else value

    @property
    def face_default(self) -> Any:
        """The default as dialogs, macros, the CLI and ``#@`` headers show it."""
        return self.face(self.default)

    # -- derived names -------------------------------------------------------------
    @property
    def key(self) -> str:
        """The macro key (first word of the label, lower-cased)."""
        return macro_key(self.label)

    @property
    def cli_flag(self) -> str:
        """The CLI option (``flag`` if given, else ``--name-with-dashes``)."""
        return "--" + (self.flag or self.name).replace("_", "-")

    @property
    def choice_labels(self) -> tuple[str, ...]:
        return tuple(c[0] for c in self.choices)

    def choice_label(self, value: Any) -> str:
        """The ImageJ label for an API value of a choice."""
        for lab, val in self.choices:
            if val == value or lab == value:
                return lab
        raise InputError(f"{self.name}: {value!r} is not one of {self.choice_labels}")

    # -- conversion and validation ---------------------------------------------------
    def convert(self, value: Any) -> Any:
        """Convert ``value`` (a string from a macro/CLI, or a Python value) to the API
        value, checking type and range.  Errors are one line naming the parameter."""
        name = self.name
        if self.kind == "bool":
            if isinstance(value, str):
                low = value.strip().lower()
                if low in ("1", "true", "yes", "on"):
                    return True
                if low in ("0", "false", "no", "off"):
                    return False
                raise InputError(f"{name}: expected true/false, got {value!r}")
            return bool(value)
        if self.kind == "choice":
            for lab, val in self.choices:
                if value == val or (isinstance(value, str) and value.strip().lower() in (lab.lower(), str(val).lower())):
                    return val
            raise InputError(
                f"{name}: {value!r} is not one of " + ", ".join(repr(c) for c in self.choice_labels)
            )
        if self.kind == "string" and self.parse is not None:
            return self.parse(value)
        if self.kind == "string" and self.none is not None:
            value = self._convert_auto(value)
            if value is not None and self.check is not None:
                self.check(value)
            return value
        if self.kind in ("string", "image"):
            return value
        return self._number(value)

    def _convert_auto(self, value: Any) -> Any:
        """A text field standing for ``None`` (the ``none`` word), a number or another word."""
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", self.none.lower())):
            return None
        if isinstance(value, str):
            try:
                float(value)
            except ValueError:
                if self.numeric:
                    raise InputError(f"{self.name}: expected a number or {self.none!r}, got {value!r}") from None
                return value.strip()
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{self.name}: expected a number or {self.none!r}, got {value!r}")
        return float(self._number(value))

    def _number(self, value: Any) -> Any:
        name = self.name
        try:
            if isinstance(value, bool):
                raise TypeError
            num = float(value)
        except (TypeError, ValueError):
            raise InputError(f"{name}: expected a number, got {value!r}") from None
        try:  # the core's checks, so that every face words a bad number the same way
            if self.kind == "int":
                return _validate.check_int(name, num, self.minimum, self.maximum)
            return _validate.check_float(name, num, self.minimum, self.maximum, positive=self.positive)
        except (TypeError, ValueError) as exc:
            raise InputError(str(exc)) from None

    def to_macro(self, value: Any) -> str:
        """This parameter's part of an ImageJ macro option string ('' for a false checkbox)."""
        value = self.face(value)
        if self.kind == "bool":
            return self.key if value else ""
        if self.kind == "choice":
            text = self.choice_label(value)
        elif self.kind == "float":
            text = repr(float(value)).rstrip("0").rstrip(".") if float(value) != int(float(value)) else str(int(float(value)))
            if "e" in text:
                text = repr(float(value))
        else:
            text = str(value)
        if " " in text or text == "":
            text = f"[{text}]"
        return f"{self.key}={text}"


@dataclass(frozen=True)
class Command:
    """One user-facing command: a core function plus its parameter descriptions.

    Parameters
    ----------
    id:
        Short identifier (``"diffraction-psf-3d"``); also the script file stem.
    title:
        ImageJ menu label (the ``run("title", ...)`` name).
    dialog_title:
        Title of the ImageJ dialog.
    function:
        ``"module:attribute"`` of the core function (imported lazily).
    params:
        The parameters, in dialog order.
    menu:
        ImageJ menu path, e.g. ``"Plugins>Deconvolution"``.
    summary:
        One line for help texts.
    """

    id: str
    title: str
    dialog_title: str
    function: str
    params: tuple[Param, ...]
    menu: str = "Plugins>Deconvolution"
    summary: str = ""
    extras: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        keys = [p.key for p in self.params]
        dup = {k for k in keys if keys.count(k) > 1}
        if dup:
            raise InputError(f"Command {self.id!r}: duplicate macro keys {sorted(dup)}")
        if any(p.default is API for p in self.params):
            object.__setattr__(self, "params", tuple(self._from_signature()))

    def _from_signature(self) -> list[Param]:
        """The params with every ``default=API`` replaced by the core function's default."""
        sig = inspect.signature(self.load())
        out = []
        for p in self.params:
            if p.default is API:
                q = sig.parameters.get(p.name)
                if q is None or q.default is inspect.Parameter.empty:
                    raise InputError(f"Command {self.id!r}: {self.function} has no default for {p.name!r}; "
                                     "give the description a default")
                p = dataclasses.replace(p, default=q.default)
            out.append(p)
        return out

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name or p.key == name:
                return p
        raise KeyError(name)

    def load(self) -> Callable[..., Any]:
        """Import and return the core function."""
        mod, attr = self.function.split(":")
        return getattr(importlib.import_module(mod), attr)

    def defaults(self) -> dict[str, Any]:
        """Every parameter's default as a face shows it (``none`` words for ``None``);
        :meth:`resolve` turns these into API values."""
        return {p.name: p.face_default for p in self.params}

    def resolve(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with ``values`` (keyed by name), each converted and checked."""
        unknown = set(values) - {p.name for p in self.params}
        if unknown:
            raise InputError(f"{self.id}: unknown parameter(s) {', '.join(sorted(unknown))}")
        out = {}
        for p in self.params:
            out[p.name] = p.convert(values[p.name]) if p.name in values else p.default
        return out

    def api_kwargs(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments for the core function (dialog-only fields dropped)."""
        return {p.name: v for p, v in zip(self.params, self.resolve(values).values()) if p.api and p.kind != "image"}

    # -- macro options -----------------------------------------------------------------
    def parse_macro(self, options: str) -> dict[str, Any]:
        """Parse an ImageJ macro option string the way ``GenericDialog`` reads it.

        A key that is absent gives the default, except a checkbox, which is then false
        (ImageJ's rule).  Values may be bracketed ``[with spaces]``.
        """
        found = _split_macro_options(options)
        values: dict[str, Any] = {}
        for p in self.params:
            if p.kind == "bool":
                values[p.name] = p.key in found
            elif p.key in found and found[p.key] is not None:
                values[p.name] = p.convert(found[p.key])
            else:
                values[p.name] = p.default
        return values

    def unknown_macro_keys(self, options: str) -> list[str]:
        """The keys of a macro option string that no field of this command reads, each as
        ``'key'`` or ``'key' (did you mean 'known'?)``.  ImageJ ignores such a key and
        uses the field's default: a misspelt ``iteratons=3`` ran 30 iterations."""
        known = [p.key for p in self.params]
        by_name = {p.name.lower(): p.key for p in self.params}  # the Python name typed as a key: psf= for point=
        out = []
        for key in _split_macro_options(options or ""):
            if key and key not in known:
                near = [by_name[key]] if key in by_name else difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                out.append(f"'{key}'" + (f" (did you mean '{near[0]}'?)" if near else ""))
        return out

    def to_macro(self, values: Mapping[str, Any]) -> str:
        """The option string ImageJ's recorder writes for ``values`` (keyed by name)."""
        full = self.resolve(values)
        parts = [p.to_macro(full[p.name]) for p in self.params]
        return " ".join(x for x in parts if x)


def _split_macro_options(options: str) -> dict[str, str | None]:
    """Split ``"a=1 b=[x y] flag"`` into ``{"a": "1", "b": "x y", "flag": None}``."""
    out: dict[str, str | None] = {}
    i, n = 0, len(options)
    while i < n:
        while i < n and options[i] == " ":
            i += 1
        if i >= n:
            break
        j = i
        while j < n and options[j] not in " =":
            j += 1
        key = options[i:j].lower()
        if j < n and options[j] == "=":
            j += 1
            if j < n and options[j] == "[":
                k = options.find("]", j + 1)
                if k < 0:
                    k = n
                out[key] = options[j + 1 : k]
                i = k + 1
            else:
                k = j
                while k < n and options[k] != " ":
                    k += 1
                out[key] = options[j:k]
                i = k
        else:
            out[key] = None
            i = j
    return out


def shell_join(args: Sequence[str]) -> str:
    return " ".join(shlex.quote(a) for a in args)
