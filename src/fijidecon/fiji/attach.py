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
* Each command gets a small script: a ``#@`` header derived from its one
  :class:`~fijidecon.commands.Command` description (inputs with labels, defaults,
  ranges, choices; ``#@output ij.ImagePlus result``) and one body line naming the
  command.  ``ScriptInfo`` (scijava-common) parses the header into real module inputs.
* The script's language is a JSR-223 ``ScriptEngineFactory`` implemented in Python (a
  JPype proxy) added to the ``ScriptService``'s language index; its engine, when the
  module runs, reads the inputs from the bindings, converts ``ImagePlus`` inputs to numpy
  (:mod:`fijidecon.fiji.convert`), calls the core function and puts the result back as a
  calibrated ``ImagePlus``.

Modules added after start-up are runnable through the module service but do not appear
in ImageJ 1.x's menus (imagej-legacy copies menus once, at start-up); for menu entries in
Fiji use the ImageJ 1.x commands of :mod:`fijidecon.fiji.scripts` (``install``), which
work in a plain ImageJ 1.x and in Fiji alike.

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
from typing import Any, Mapping

import numpy as np

from fijidecon.calibration import Calibration
from fijidecon.commands import Command, all_commands, get_command
from fijidecon.fiji import runtime

__all__ = ["attach", "run", "script_source", "module_id", "LANGUAGE_NAME", "EXTENSION"]

#: Name and file extension of the (virtual) script language that runs fijidecon commands.
LANGUAGE_NAME = "fijidecon"
EXTENSION = "fijidecon"
_MARKER = "# fijidecon-command: "
_PATH_PREFIX = "fijidecon/"

_lock = threading.RLock()
_attached: dict[int, dict[str, Any]] = {}  # id(context) -> {"language":..., "infos": {...}}
_last_error: dict[str, BaseException] = {}


# ---------------------------------------------------------------------------------------
# the script text of a command
# ---------------------------------------------------------------------------------------
def _q(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', "'") + '"'


def _num(v: Any) -> str:
    return repr(float(v)) if not float(v).is_integer() else str(float(v))


def _header_line(p) -> str:
    attrs = [f"label={_q(p.label)}"]
    if p.help:
        attrs.append(f"description={_q(p.help)}")
    if p.kind == "float":
        jtype = "Double"
        attrs.append(f"value={_num(p.default)}")
        if p.minimum is not None:
            attrs.append(f"min={_num(p.minimum)}")
        if p.maximum is not None:
            attrs.append(f"max={_num(p.maximum)}")
    elif p.kind == "int":
        jtype = "Integer"
        attrs.append(f"value={int(p.default)}")
        if p.minimum is not None:
            attrs.append(f"min={int(p.minimum)}")
        if p.maximum is not None:
            attrs.append(f"max={int(p.maximum)}")
    elif p.kind == "bool":
        jtype = "Boolean"
        attrs.append(f"value={'true' if p.default else 'false'}")
    elif p.kind == "choice":
        jtype = "String"
        attrs.append("choices={" + ", ".join(_q(c) for c in p.choice_labels) + "}")
        attrs.append(f"value={_q(p.choice_label(p.default))}")
    elif p.kind == "string":
        jtype = "String"
        attrs.append(f"value={_q(p.default or '')}")
    elif p.kind == "image":
        jtype = "ij.ImagePlus"
    else:  # pragma: no cover - Param validates kinds
        raise ValueError(f"{p.name}: unknown kind {p.kind}")
    return f"#@ {jtype} ({', '.join(attrs)}) {p.name}"


def module_id(command: Command) -> str:
    """The SciJava module identifier of a command once attached (``script:fijidecon.<id>``)."""
    return f"script:fijidecon.{command.id}"


def script_source(command: Command) -> str:
    """The script registered for *command*: ``#@`` header + one line naming the command.

    Example
    -------
    >>> from fijidecon.commands import get_command
    >>> print(script_source(get_command("diffraction-psf-3d")).splitlines()[0])  # doctest: +ELLIPSIS
    #@script(name="fijidecon.diffraction-psf-3d", label="Diffraction PSF 3D", menuPath="Plugins>Deconvolution>Diffraction PSF 3D", ...
    """
    menu = f"{command.menu}>{command.title}" if command.menu else command.title
    lines = [
        f"#@script(name={_q('fijidecon.' + command.id)}, label={_q(command.title)}, "
        f"menuPath={_q(menu)}, description={_q(command.summary or command.title)}, headless=true)"
    ]
    lines += [_header_line(p) for p in command.params]
    lines.append("#@output ij.ImagePlus result")
    lines.append(f"{_MARKER}{command.id}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# running a command from module inputs
# ---------------------------------------------------------------------------------------
def _result_calibration(command: Command, values: Mapping[str, Any], inputs: list) -> Calibration:
    spacing_names = command.extras.get("spacing") if hasattr(command, "extras") else None
    if spacing_names:
        z, y, x = (float(values[n]) for n in spacing_names)
        return Calibration.make("ZYX", unit=str(command.extras.get("unit", "pixel")), Z=z, Y=y, X=x)
    if inputs:
        return inputs[0][1]
    return Calibration()


def execute(command: Command, raw: Mapping[str, Any]):
    """Run *command* with module input values (Java or Python objects); return an ``ImagePlus``.

    Non-image values are converted and checked by the command's own parameter
    descriptions (one message per parameter); ``ImagePlus`` inputs become numpy arrays
    (float32 where needed by the core) with their calibration; the core function's array
    result becomes a calibrated ``ImagePlus`` titled from the command's title field.
    """
    from fijidecon.fiji import convert

    values: dict[str, Any] = {}
    images: list[tuple[np.ndarray, Calibration]] = []
    for p in command.params:
        v = raw.get(p.name)
        if p.kind == "image":
            if v is None:
                raise ValueError(f"{p.name}: an image is required")
            arr, cal = convert.from_imageplus(v)
            images.append((arr, cal))
        elif v is not None:
            values[p.name] = p.convert(str(v) if not isinstance(v, (bool, int, float, str)) else v)
    full = command.resolve(values)
    kwargs = command.api_kwargs(values)
    fn = command.load()
    out = fn(*[a for a, _ in images], **kwargs)
    arr = getattr(out, "image", out)
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{command.id}: the core function returned {type(out).__name__}, not an array")
    title = None
    for name in ("title", "output"):
        if name in full and isinstance(full[name], str):
            title = full[name]
            break
    if title is not None and hasattr(out, "iterations"):
        title = f"{title}_{int(out.iterations)}"
    cal = _result_calibration(command, full, images)
    if len(cal.axes) != arr.ndim:
        cal = cal.with_axes(cal.axes[-arr.ndim:] if len(cal.axes) > arr.ndim else Calibration.default(arr.ndim).axes)
    return convert.to_imageplus(arr, cal, title=title or command.title)


def _make_language():
    """A JSR-223 ScriptEngineFactory (JPype proxy) whose engines run fijidecon commands."""
    import jpype

    JString = jpype.JString
    ArrayList = jpype.JClass("java.util.ArrayList")
    ScriptContext = jpype.JClass("javax.script.ScriptContext")
    SimpleScriptContext = jpype.JClass("javax.script.SimpleScriptContext")
    SimpleBindings = jpype.JClass("javax.script.SimpleBindings")
    ScriptException = jpype.JClass("javax.script.ScriptException")
    ENGINE = ScriptContext.ENGINE_SCOPE

    def jlist(*items):
        lst = ArrayList()
        for it in items:
            lst.add(JString(it))
        return lst

    @jpype.JImplements("javax.script.ScriptEngine")
    class _Engine:
        def __init__(self, factory):
            self._factory = factory
            self._ctx = SimpleScriptContext()
            self._ctx.setBindings(SimpleBindings(), ENGINE)

        # -- evaluation --
        def _run(self, script, bindings):
            text = str(script) if not hasattr(script, "read") else _read_all(script)
            cid = None
            for line in text.splitlines():
                if line.startswith(_MARKER):
                    cid = line[len(_MARKER):].strip()
            if cid is None:
                raise ScriptException("fijidecon: the script names no fijidecon command")
            try:
                command = get_command(cid)
                raw = {p.name: bindings.get(p.name) for p in command.params if bindings.containsKey(p.name)}
                imp = execute(command, raw)
                bindings.put("result", imp)
                _last_error.pop(cid, None)
                return imp
            except Exception as e:  # report to SciJava as a ScriptException
                _last_error[cid] = e
                raise ScriptException(f"fijidecon {cid}: {type(e).__name__}: {e}") from None

        @jpype.JOverride
        def eval(self, script, ctx_or_bindings=None):
            if ctx_or_bindings is None:
                b = self._ctx.getBindings(ENGINE)
            elif isinstance(ctx_or_bindings, jpype.JClass("javax.script.ScriptContext")):
                b = ctx_or_bindings.getBindings(ENGINE)
            else:
                b = ctx_or_bindings
            return self._run(script, b)

        @jpype.JOverride
        def put(self, key, value):
            self._ctx.getBindings(ENGINE).put(key, value)

        @jpype.JOverride
        def get(self, key):
            return self._ctx.getBindings(ENGINE).get(key)

        @jpype.JOverride
        def getBindings(self, scope):
            return self._ctx.getBindings(scope)

        @jpype.JOverride
        def setBindings(self, bindings, scope):
            self._ctx.setBindings(bindings, scope)

        @jpype.JOverride
        def createBindings(self):
            return SimpleBindings()

        @jpype.JOverride
        def getContext(self):
            return self._ctx

        @jpype.JOverride
        def setContext(self, ctx):
            self._ctx = ctx

        @jpype.JOverride
        def getFactory(self):
            return self._factory

    @jpype.JImplements("javax.script.ScriptEngineFactory")
    class _Factory:
        def __init__(self):
            self._self = None

        @jpype.JOverride
        def getEngineName(self):
            return JString("fijidecon engine")

        @jpype.JOverride
        def getEngineVersion(self):
            from fijidecon import __version__

            return JString(__version__)

        @jpype.JOverride
        def getExtensions(self):
            return jlist(EXTENSION)

        @jpype.JOverride
        def getMimeTypes(self):
            return jlist("text/x-fijidecon")

        @jpype.JOverride
        def getNames(self):
            return jlist(LANGUAGE_NAME)

        @jpype.JOverride
        def getLanguageName(self):
            return JString(LANGUAGE_NAME)

        @jpype.JOverride
        def getLanguageVersion(self):
            return self.getEngineVersion()

        @jpype.JOverride
        def getParameter(self, key):
            k = str(key)
            return {
                "javax.script.engine": self.getEngineName(),
                "javax.script.engine_version": self.getEngineVersion(),
                "javax.script.name": JString(LANGUAGE_NAME),
                "javax.script.language": JString(LANGUAGE_NAME),
                "javax.script.language_version": self.getEngineVersion(),
            }.get(k)

        @jpype.JOverride
        def getMethodCallSyntax(self, obj, method, args):
            return JString(f"{obj}.{method}({', '.join(str(a) for a in args)})")

        @jpype.JOverride
        def getOutputStatement(self, toDisplay):
            return JString(f"# {toDisplay}")

        @jpype.JOverride
        def getProgram(self, statements):
            return JString("\n".join(str(s) for s in statements))

        @jpype.JOverride
        def getScriptEngine(self):
            return _Engine(self._self)

    f = _Factory()
    proxy = jpype.JObject(f, jpype.JClass("javax.script.ScriptEngineFactory"))
    f._self = proxy
    return proxy


def _read_all(reader) -> str:
    sb = []
    BufferedReader = runtime.jimport("java.io.BufferedReader")
    br = reader if isinstance(reader, BufferedReader) else BufferedReader(reader)
    line = br.readLine()
    while line is not None:
        sb.append(str(line))
        line = br.readLine()
    return "\n".join(sb)


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
    raise TypeError(
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
            index = ss.getIndex()
            lang = ss.getLanguageByName(LANGUAGE_NAME)
            if lang is None:
                index.add(_make_language(), False)
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
            path = f"{_PATH_PREFIX}{cmd.id}.{EXTENSION}"
            info = ScriptInfo(ctx, path, StringReader(script_source(cmd)))
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
    ValueError, TypeError, RuntimeError
        The command's own error (a bad value names the parameter).
    """
    import jpype

    cmd = command if isinstance(command, Command) else get_command(command)
    infos = attach(ij, [cmd])
    info = infos[cmd.id]
    _, ms = _services(_context(ij))
    inputs = jpype.JClass("java.util.HashMap")()
    full = {p.name: p.default for p in cmd.params}
    unknown = set(values) - set(full)
    if unknown:
        raise ValueError(f"{cmd.id}: unknown parameter(s) {', '.join(sorted(unknown))}")
    full.update(values)
    for p in cmd.params:
        v = full[p.name]
        if p.kind == "image":
            if v is None:
                raise ValueError(f"{p.name}: an image is required")
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
    _last_error.pop(cmd.id, None)
    module = ms.run(info, True, inputs).get()
    err = _last_error.pop(cmd.id, None)
    if err is not None:
        raise err
    result = module.getOutput("result")
    if result is None:
        raise RuntimeError(f"{cmd.id}: the module produced no result (see the SciJava log)")
    return {"result": result}
