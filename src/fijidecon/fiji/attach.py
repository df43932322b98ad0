"""Install fijidecon's commands into an existing pyimagej / SciJava gateway (a user's Fiji).

``attach(ij)`` registers every command of :func:`fijidecon.commands.all_commands` as a
SciJava module (``ModuleService.addModule``) so that it can be run with the gateway's
module service -- from Python (``ij.module().run(...)``, :func:`run`) or from any SciJava
client that lists modules.  Only public API is used: ``ij.context()`` (pyimagej's
``net.imagej.ImageJ`` gateway, or any object whose ``context()`` / ``getContext()``
returns an ``org.scijava.Context``), ``ScriptService``, ``ModuleService`` and
``org.scijava.script.ScriptInfo``.

How a Python function becomes a SciJava module without compiled Java
-------------------------------------------------------------------
* Each command gets the script of ``fiji_scripts/`` (:func:`fijidecon.fiji.scripts.script_text`,
  held in memory): a ``#@`` header derived from its one
  :class:`~fijidecon.commands.Command` description (inputs with labels, defaults,
  ranges, choices; ``#@output ij.ImagePlus result``) and a body calling
  :func:`fijidecon.fiji.scripts.run_script`.  ``ScriptInfo`` (scijava-common) parses the
  header into real module inputs.
* The script's language is the CPython ``ScriptLanguage`` of
  :func:`fijidecon.fiji.scripts.python_language` (a JPype proxy), registered under its
  own name and extension (``fijidecon``) so that a Fiji's ``.py`` language is left
  alone.  When the module runs, the script converts ``ImagePlus`` inputs to numpy, runs
  the command (:func:`fijidecon.fiji.commands.execute`, the path of the menu commands)
  and hands back a calibrated ``ImagePlus``.

Modules added after start-up are runnable through the module service but do not appear
in ImageJ 1.x's menus (imagej-legacy copies menus once, at start-up); for menu entries in
Fiji use the ImageJ 1.x commands of :mod:`fijidecon.fiji.commands`
(:func:`~fijidecon.fiji.commands.install`), which work in a plain ImageJ 1.x and in Fiji alike.

Example
-------
>>> import imagej                                   # doctest: +SKIP
>>> ij = imagej.init("/path/to/Fiji.app")           # doctest: +SKIP
>>> from fijidecon.fiji.attach import attach, run   # doctest: +SKIP
>>> infos = attach(ij)                              # doctest: +SKIP
>>> out = run(ij, "diffraction-psf-3d", width=64, height=64, depth=32)  # doctest: +SKIP
>>> out["result"]                                   # an ij.ImagePlus  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from typing import Any

from fijidecon.commands import Command, all_commands, get_command
from fijidecon.errors import InputError, InputTypeError
from fijidecon.fiji import runtime, scripts

__all__ = ["attach", "run", "script_source", "module_id", "LANGUAGE_NAME", "EXTENSION"]

#: Name and file extension of the (virtual) script language that runs fijidecon commands.
LANGUAGE_NAME = "fijidecon"
EXTENSION = "fijidecon"
_PATH_PREFIX = "fijidecon/"

_lock = threading.RLock()
_attached: dict[int, dict[str, Any]] = {}  # id(context) -> {"language":..., "infos": {...}}


# ---------------------------------------------------------------------------------------
# the script of a command
# ---------------------------------------------------------------------------------------
def module_id(command: Command) -> str:
    """The SciJava module identifier of a command once attached (``script:fijidecon.<id>``)."""
    return f"script:fijidecon.{command.id}"


def _path(command: Command) -> str:
    return f"{_PATH_PREFIX}{command.id}.{EXTENSION}"


def script_source(command: Command) -> str:
    """The script registered for *command*: the ``fiji_scripts/`` script of
    :func:`fijidecon.fiji.scripts.script_text`, with a ``#@script`` line naming the module
    and its menu entry, and inputs that remember their last values.

    Example
    -------
    >>> from fijidecon.commands import get_command
    >>> print(script_source(get_command("diffraction-psf-3d")).splitlines()[0])  # doctest: +ELLIPSIS
    #@script (name="fijidecon.diffraction-psf-3d", label="Diffraction PSF 3D", menuPath="Plugins>Deconvolution>Diffraction PSF 3D", ...
    """
    menu = f"{command.menu}>{command.title}" if command.menu else command.title
    attrs = {"name": "fijidecon." + command.id, "label": command.title, "menuPath": menu,
             "description": command.summary or command.title, "headless": True}
    return scripts.script_text(command, script=attrs, persist=True)


# ---------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------
def _context(ij):
    for name in ("context", "getContext"):
        f = getattr(ij, name, None)
        if callable(f):
            ctx = f()
            if ctx is not None:
                return ctx
    Context = runtime.jimport("org.scijava.Context")
    if isinstance(ij, Context):
        return ij
    raise InputTypeError(
        f"ij: expected a pyimagej gateway (or an object with .context()) or an org.scijava.Context, got {type(ij).__name__}"
    )


def _services(ctx):
    ScriptService = runtime.jimport("org.scijava.script.ScriptService")
    ModuleService = runtime.jimport("org.scijava.module.ModuleService")
    ss = ctx.getService(ScriptService)
    ms = ctx.getService(ModuleService)
    if ss is None or ms is None:
        raise RuntimeError("ij: its SciJava context has no ScriptService/ModuleService; attach needs both")
    return ss, ms


def attach(ij, commands=None) -> dict:
    """Register fijidecon's commands as SciJava modules in *ij*'s context.

    Parameters
    ----------
    ij:
        A pyimagej gateway (``imagej.init(...)``), any object with ``context()`` or
        ``getContext()`` returning an ``org.scijava.Context``, or the context itself.
    commands:
        Commands to install (default: all of :func:`fijidecon.commands.all_commands`).

    Returns
    -------
    dict
        ``{command id: org.scijava.script.ScriptInfo}`` -- the registered module infos.
        Calling ``attach`` again on the same context returns the same infos.

    Example
    -------
    >>> infos = attach(ij)                                        # doctest: +SKIP
    >>> ij.module().run(infos["diffraction-psf-3d"], True,
    ...                 {"width": 64, "height": 64, "depth": 16}).get()   # doctest: +SKIP
    """
    import jpype

    ctx = _context(ij)
    ss, ms = _services(ctx)
    cmds = tuple(commands) if commands is not None else all_commands()
    with _lock:
        key = int(runtime.jimport("java.lang.System").identityHashCode(ctx))
        state = _attached.setdefault(key, {"language": None, "infos": {}})
        if state["language"] is None:
            lang = ss.getLanguageByName(LANGUAGE_NAME)
            if lang is None:
                scripts.python_language(ctx, name=LANGUAGE_NAME, extension=EXTENSION)
                lang = ss.getLanguageByName(LANGUAGE_NAME)
            if lang is None:  # pragma: no cover
                raise RuntimeError("fijidecon: could not register the fijidecon script language")
            state["language"] = lang
        ScriptInfo = jpype.JClass("org.scijava.script.ScriptInfo")
        StringReader = jpype.JClass("java.io.StringReader")
        added = []
        for cmd in cmds:
            if cmd.id in state["infos"]:
                continue
            info = ScriptInfo(ctx, _path(cmd), StringReader(script_source(cmd)))
            info.setLanguage(state["language"])
            info.inputs()  # parse the #@ header now: identifier, menu path and inputs are then final
            state["infos"][cmd.id] = info
            added.append(info)
        if added:
            ArrayList = jpype.JClass("java.util.ArrayList")
            lst = ArrayList()
            for i in added:
                lst.add(i)
            ms.addModules(lst)
        return dict(state["infos"])


def run(ij, command: str | Command, **values) -> dict:
    """Run an attached fijidecon command through *ij*'s ``ModuleService``; return its outputs.

    Parameters
    ----------
    ij:
        The gateway (or context) given to :func:`attach` (attached on demand).
    command:
        Command id (``"diffraction-psf-3d"``), menu title, or :class:`Command`.
    **values:
        Inputs by parameter name; missing ones take the command's defaults.  Images are
        ``ij.ImagePlus`` objects (see :func:`fijidecon.fiji.convert.to_imageplus`).

    Returns
    -------
    dict
        ``{"result": ij.ImagePlus}``.

    Raises
    ------
    ValueError
        A bad value or the command's own error (the message names the parameter).
    RuntimeError
        The module produced no result for another reason (see the SciJava log).
    """
    cmd = command if isinstance(command, Command) else get_command(command)
    infos = attach(ij, [cmd])
    info = infos[cmd.id]
    _, ms = _services(_context(ij))
    full = {p.name: p.default for p in cmd.params}
    unknown = set(values) - set(full)
    if unknown:
        raise InputError(f"{cmd.id}: unknown parameter(s) {', '.join(sorted(unknown))}")
    full.update(values)
    try:
        inputs = _inputs(cmd, full)
    except (ValueError, TypeError) as e:  # as the module's own errors: named by the command
        raise type(e)(f"{cmd.title}: {e}") from None
    path = str(_path(cmd))
    scripts.take_error(path)
    scripts.CALLER_RAISES.add(path)
    try:
        module = ms.run(info, True, inputs).get()
    finally:
        scripts.CALLER_RAISES.discard(path)
    err = scripts.take_error(path)
    if err is not None:
        raise err
    result = module.getOutput("result")
    if result is None:
        raise RuntimeError(f"{cmd.id}: the module produced no result (see the SciJava log)")
    return {"result": result}


def _inputs(cmd: Command, full: dict) -> Any:
    """The module's inputs (a Java ``HashMap``), each value converted and checked by its :class:`Param`."""
    import jpype

    inputs = jpype.JClass("java.util.HashMap")()
    for p in cmd.params:
        v = full[p.name]
        if p.kind == "image":
            if v is None:
                raise InputError(f"{p.name}: an image is required")
            inputs.put(p.name, v)
        elif p.kind == "choice":
            inputs.put(p.name, jpype.JString(p.choice_label(p.convert(v))))
        elif p.kind == "bool":
            inputs.put(p.name, jpype.java.lang.Boolean(bool(p.convert(v))))
        elif p.kind == "int":
            inputs.put(p.name, jpype.java.lang.Integer(int(p.convert(v))))
        elif p.kind == "float":
            inputs.put(p.name, jpype.java.lang.Double(float(p.convert(v))))
        else:
            inputs.put(p.name, jpype.JString("" if v is None else str(v)))
    return inputs
