"""SciJava ``#@`` scripts for Fiji, generated from the command descriptions.

Each :class:`~fijidecon.commands.Command` gives one script ``fiji_scripts/<id>.py``: a
``#@`` parameter header (types, labels, defaults, ranges and choices from the
description) and a two-line body that calls :func:`run_script`.  They are for Fiji users
whose Fiji runs Python 3 scripts (the ``scripting-python`` language, i.e. a Fiji started
through pyimagej, or any SciJava context with a CPython script language); the ImageJ 1.x
menu commands of :mod:`fijidecon.fiji.commands` need no such setup.

Script inputs are named after :attr:`Param.name` (lower case, valid identifiers), so a
macro calling a script command uses those names as keys (``na=1.2``), whereas the ImageJ
1.x commands keep the original dialog keys (``numerical=1.2``).

Also here: :func:`script_info` parses a script with scijava-common's ``ScriptInfo``,
:func:`register` adds the parsed scripts to a context's ``ModuleService``, and
:func:`python_language` registers a minimal CPython ``ScriptLanguage`` (a JPype proxy:
the script text is ``exec``-uted in this Python process) so that such a module can run
in a plain scijava-common context.  :mod:`fijidecon.fiji.attach` registers the same
scripts (header options: see :func:`header`) and language in a user's gateway.

Regenerate the files with::

    python -m fijidecon.fiji.scripts --write fiji_scripts

Example
-------
>>> from fijidecon.commands import get_command
>>> print(header(get_command("diffraction-psf-3d")).splitlines()[1])
#@ Double (label="Index of refraction of the media", description="Refractive index n of the immersion/sample medium.", value=1.0, min=0.0, persist=false) index
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

from fijidecon.commands import Command, Param, all_commands, get_command
from fijidecon.errors import InputError, InputTypeError

__all__ = [
    "OUTPUT",
    "header",
    "script_text",
    "write_scripts",
    "check_scripts",
    "run_script",
    "new_context",
    "script_info",
    "register",
    "python_language",
    "take_error",
]

#: Name of every script's output (an ``ij.ImagePlus``).
OUTPUT = "result"

_TYPES = {"float": "Double", "int": "Integer", "bool": "Boolean", "choice": "String", "string": "String",
          "image": "ij.ImagePlus"}


def _q(text: str) -> str:
    """A double-quoted ``#@`` attribute value."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', "'") + '"'


def _num(v: Any, kind: str) -> str:
    if kind == "int":
        return str(int(v))
    return repr(float(v))


def _param_line(p: Param, persist: bool = False) -> str:
    attrs = [f"label={_q(p.label)}"]
    if p.full_help:
        attrs.append(f"description={_q(p.full_help)}")
    if p.kind in ("float", "int"):
        attrs.append(f"value={_num(p.default, p.kind)}")
        if p.minimum is not None:
            attrs.append(f"min={_num(p.minimum, p.kind)}")
        if p.maximum is not None:
            attrs.append(f"max={_num(p.maximum, p.kind)}")
    elif p.kind == "bool":
        attrs.append(f"value={'true' if p.default else 'false'}")
    elif p.kind == "choice":
        attrs.append("choices={" + ", ".join(_q(c) for c in p.choice_labels) + "}")
        attrs.append(f"value={_q(p.choice_label(p.default))}")
    elif p.kind == "string":
        attrs.append(f"value={_q(p.face_default if p.face_default is not None else '')}")
    if p.kind != "image" and not persist:
        attrs.append("persist=false")
    return f"#@ {_TYPES[p.kind]} ({', '.join(attrs)}) {p.name}"


def _attr(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else _q(value)


def header(cmd: Command, *, script: Mapping[str, Any] | None = None, persist: bool = False) -> str:
    """The ``#@`` header of a command's script (one line per parameter, then the output).

    Parameters
    ----------
    cmd:
        The command description; every input line is derived from its parameters.
    script:
        Attributes of the ``#@script`` line, in order (strings are quoted, booleans
        become ``true``/``false``).  Default: ``label="<title> (script)"`` and
        ``menuPath="<menu>>Scripts><title>"``, as in ``fiji_scripts/``.
    persist:
        Let SciJava remember the last input values.  By default every input is
        ``persist=false``, so a run depends on its given inputs and defaults only.
    """
    if not isinstance(cmd, Command):
        raise InputTypeError(f"cmd: expected a Command, got {type(cmd).__name__}")
    names = [p.name for p in cmd.params]
    if OUTPUT in names:
        raise InputError(f"cmd: parameter name {OUTPUT!r} is reserved for the script output")
    if script is None:
        script = {"label": cmd.title + " (script)", "menuPath": cmd.menu + ">Scripts>" + cmd.title}
    lines = ["#@script (" + ", ".join(f"{k}={_attr(v)}" for k, v in script.items()) + ")"]
    lines += [_param_line(p, persist) for p in cmd.params]
    lines.append(f"#@output ij.ImagePlus {OUTPUT}")
    return "\n".join(lines)


def script_text(cmd: Command, *, script: Mapping[str, Any] | None = None, persist: bool = False) -> str:
    """The whole script file for a command (``script``, ``persist``: see :func:`header`)."""
    return (
        header(cmd, script=script, persist=persist)
        + "\n\n"
        + f'"""{cmd.summary or cmd.title}\n\n'
        + "Generated from fijidecon.commands by `python -m fijidecon.fiji.scripts --write fiji_scripts`;\n"
        + "do not edit.  Needs a Fiji that runs Python 3 scripts with fijidecon installed.\n"
        + '"""\n\n'
        + "try:\n"
        + "    from fijidecon.fiji.scripts import run_script\n"
        + "except ImportError:\n"
        + "    raise ImportError(\"fijidecon is not importable: this script needs a Fiji that runs Python 3 \"\n"
        + "                      \"(pyimagej / scripting-python) with fijidecon installed; Jython cannot run it\")\n\n"
        + f"{OUTPUT} = run_script({cmd.id!r}, globals())\n"
    )


def write_scripts(folder: str | Path, commands: Iterable[Command] | None = None) -> list[Path]:
    """Write ``<id>.py`` for every command into ``folder``; return the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for cmd in (all_commands() if commands is None else commands):
        p = folder / f"{cmd.id}.py"
        p.write_text(script_text(cmd), encoding="utf-8")
        out.append(p)
    return out


def check_scripts(folder: str | Path, commands: Iterable[Command] | None = None) -> list[str]:
    """Differences between the files in ``folder`` and the generated ones (empty = up to date)."""
    folder = Path(folder)
    problems = []
    cmds = tuple(all_commands() if commands is None else commands)
    wanted = {f"{c.id}.py": script_text(c) for c in cmds}
    for name, text in wanted.items():
        p = folder / name
        if not p.exists():
            problems.append(f"{name}: missing")
        elif p.read_text(encoding="utf-8") != text:
            problems.append(f"{name}: differs from the generated script")
    for p in sorted(folder.glob("*.py")):
        if p.name not in wanted:
            problems.append(f"{p.name}: no command with this id")
    return problems


# ---------------------------------------------------------------------------------------
# the script body
# ---------------------------------------------------------------------------------------
def _py(v: Any, p: Param) -> Any:
    """A script input (Java boxed value or Python value) as the Python value for ``p``."""
    if v is None:
        return p.default
    if p.kind == "bool":
        return bool(v)
    if p.kind == "int":
        return int(v)
    if p.kind == "float":
        return float(v)
    return str(v)


def run_script(command_id: str, namespace: Mapping[str, Any]):
    """Body of every generated script: read the ``#@`` inputs, run, return an ``ImagePlus``.

    Parameters
    ----------
    command_id:
        The command's id.
    namespace:
        The script's globals (the SciJava inputs, by ``Param.name``).

    Returns
    -------
    ij.ImagePlus
        The result, titled and calibrated like the menu command's result (not shown:
        SciJava displays outputs itself).

    Raises
    ------
    ValueError
        A bad input value or a failure of the core function, naming the parameter.
    """
    from fijidecon.fiji import commands

    cmd = get_command(command_id)
    values: dict[str, Any] = {}
    imps: dict[str, Any] = {}
    for p in cmd.params:
        v = namespace.get(p.name)
        if p.kind == "image":
            imps[p.name] = v
            continue
        try:
            values[p.name] = p.convert(_py(v, p))
        except (TypeError, ValueError) as e:
            raise InputError(f"{cmd.title}: {e}") from None
    try:
        out, _ = commands.execute(cmd, values, imps)
    except commands.CommandError as e:
        raise InputError(f"{cmd.title}: {e}") from None
    return out


# ---------------------------------------------------------------------------------------
# SciJava: parse, register, run
# ---------------------------------------------------------------------------------------
def _j(name: str):
    from fijidecon.fiji import runtime

    return runtime.jimport(name)


def new_context():
    """A SciJava ``Context`` with the script and module services (and what they need).

    scijava-common only, no ImageJ2.  (A bare ``Context()`` from JPype resolves to the
    varargs constructor with no classes, i.e. an *empty* context, hence the explicit list.)
    """
    import jpype

    classes = [_j(n).class_ for n in ("org.scijava.script.ScriptService", "org.scijava.module.ModuleService")]
    return _j("org.scijava.Context")(jpype.JArray(jpype.JClass("java.lang.Class"))(classes))


def script_info(context, path: str | Path):
    """Parse a script file's ``#@`` header with scijava-common's ``ScriptInfo``."""
    ScriptInfo = _j("org.scijava.script.ScriptInfo")
    File = _j("java.io.File")
    info = ScriptInfo(context, File(str(Path(path).resolve())))
    info.inputs()  # parses the header (raises on a malformed one)
    return info


def register(context, folder: str | Path) -> dict[str, Any]:
    """Parse every ``*.py`` in ``folder`` and add it to the context's ``ModuleService``.

    Returns ``{command id: ScriptInfo}``.
    """
    ModuleService = _j("org.scijava.module.ModuleService")
    ms = context.getService(ModuleService)
    out = {}
    for p in sorted(Path(folder).glob("*.py")):
        info = script_info(context, p)
        ms.addModule(info)
        out[p.stem] = info
    return out


_LANG: dict = {}
_ERRORS: dict[str, BaseException] = {}  # script path -> exception of its last failed run
#: Script paths run by :func:`fijidecon.fiji.attach.run`, which raises their bad-input errors itself.
CALLER_RAISES: set[str] = set()


def take_error(path: str) -> BaseException | None:
    """The Python exception of the last failed run of the script at ``path`` (then forgotten).

    SciJava only logs a script's error; this gives it back to a Python caller
    (see :func:`fijidecon.fiji.attach.run`).
    """
    return _ERRORS.pop(str(path), None)


def python_language(context, *, name: str = "python", extension: str = "py"):
    """Register (once per context and name) a CPython ``ScriptLanguage``.

    A minimal stand-in for Fiji's ``scripting-python``: a JPype proxy implementing
    ``org.scijava.script.ScriptLanguage`` whose engine ``exec``-utes the script text in
    this Python process with the SciJava inputs as globals and hands back the globals
    that Java can hold.  Registered with a priority above Jython's, so with the default
    ``name``/``extension`` it takes ``.py`` files.  :mod:`fijidecon.fiji.attach` uses it
    under its own name and extension (``fijidecon``), leaving a Fiji's ``.py`` language alone.
    """
    import jpype

    key = (int(context.hashCode()), name)
    if key in _LANG:
        return _LANG[key]
    is_python = name == "python"
    language_name = "Python" if is_python else name
    names = ["python", "cpython"] if is_python else [name]
    ScriptService = _j("org.scijava.script.ScriptService")
    ScriptContext = _j("javax.script.ScriptContext")
    SimpleScriptContext = _j("javax.script.SimpleScriptContext")
    SimpleBindings = _j("javax.script.SimpleBindings")
    ScriptException = _j("javax.script.ScriptException")
    ArrayList = _j("java.util.ArrayList")
    Reader = _j("java.io.Reader")
    BufferedReader = _j("java.io.BufferedReader")

    def _jlist(items):
        lst = ArrayList()
        for x in items:
            lst.add(x)
        return lst

    @jpype.JImplements("javax.script.ScriptEngine")
    class _Engine:
        def __init__(self, factory):
            self._factory = factory
            self._ctx = SimpleScriptContext()

        def _bindings(self):
            return self._ctx.getBindings(ScriptContext.ENGINE_SCOPE)

        @jpype.JOverride
        def eval(self, script, *rest):
            if isinstance(script, Reader):
                br = BufferedReader(script)
                lines = []
                line = br.readLine()
                while line is not None:
                    lines.append(str(line))
                    line = br.readLine()
                text = "\n".join(lines)
            else:
                text = str(script)
            b = self._bindings()
            ns: dict[str, Any] = {"__name__": "__main__"}
            for e in b.entrySet():
                ns[str(e.getKey())] = e.getValue()
            filename = str(b.get("javax.script.filename") or "<script>")
            _ERRORS.pop(filename, None)
            try:
                exec(compile(text, filename, "exec"), ns)
            except (ValueError, TypeError) as e:  # bad input: one line, not a Java stack trace from ScriptModule
                _ERRORS[filename] = e
                if filename not in CALLER_RAISES:
                    print(f"[ERROR] {filename}: {type(e).__name__}: {e}", file=sys.stderr)
                return None
            except BaseException as e:  # becomes a ScriptException (logged by ScriptModule, with its trace)
                _ERRORS[filename] = e
                raise ScriptException(f"{type(e).__name__}: {e}") from None
            for k, v in ns.items():
                if k.startswith("__") or callable(v) or type(v).__name__ == "module":
                    continue
                try:
                    b.put(k, v)
                except Exception:
                    pass  # not representable in Java: stays in Python
            return None

        @jpype.JOverride
        def put(self, k, v):
            self._bindings().put(k, v)

        @jpype.JOverride
        def get(self, k):
            return self._bindings().get(k)

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

    @jpype.JImplements("org.scijava.script.ScriptLanguage")
    class _Language:
        def __init__(self):
            self._priority = 1000.0
            self._info = None
            self._context = context

        @jpype.JOverride
        def getEngineName(self):
            return "fijidecon CPython (JPype)"

        @jpype.JOverride
        def getLanguageName(self):
            return language_name

        @jpype.JOverride
        def getExtensions(self):
            return _jlist([extension])

        @jpype.JOverride
        def getNames(self):
            return _jlist(names)

        @jpype.JOverride
        def getScriptEngine(self):
            return _Engine(self)

        # JPype cannot dispatch to an interface's default methods with arguments
        # (NoSuchMethodException), so the ones SciJava calls are implemented here.
        @jpype.JOverride
        def decode(self, obj):
            return obj

        @jpype.JOverride
        def isCompiledLanguage(self):
            return False

        @jpype.JOverride
        def getLanguageVersion(self):
            return sys.version.split()[0]

        @jpype.JOverride
        def getEngineVersion(self):
            return sys.version.split()[0]

        @jpype.JOverride
        def getMimeTypes(self):
            return _jlist(["text/x-python"])

        @jpype.JOverride
        def getParameter(self, key):
            k = str(key)
            return {"javax.script.name": names[0], "javax.script.engine": "fijidecon CPython (JPype)",
                    "javax.script.language": language_name}.get(k)

        @jpype.JOverride
        def getIdentifier(self):
            return f"plugin:fijidecon.{name}"

        @jpype.JOverride
        def getVersion(self):
            return sys.version.split()[0]

        @jpype.JOverride
        def getLocation(self):
            return None

        @jpype.JOverride
        def getPriority(self):
            return self._priority

        @jpype.JOverride
        def setPriority(self, p):
            self._priority = float(p)

        @jpype.JOverride
        def getInfo(self):
            return self._info

        @jpype.JOverride
        def setInfo(self, info):
            self._info = info

        @jpype.JOverride
        def context(self):
            return self._context

        @jpype.JOverride
        def getContext(self):
            return self._context

    lang = _Language()
    ss = context.getService(ScriptService)
    # getLanguages() returns a copy; getIndex() is the live index.
    ss.getIndex().add(jpype.JObject(lang, _j("org.scijava.script.ScriptLanguage")))
    if ss.getLanguageByExtension(extension) is None:  # pragma: no cover - defensive
        raise RuntimeError(f"could not register the {language_name} script language")
    _LANG[key] = lang
    return lang


def _main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m fijidecon.fiji.scripts",
                                 description="Generate the SciJava #@ scripts from the command descriptions.")
    ap.add_argument("--write", metavar="FOLDER", help="write <id>.py for every command into FOLDER")
    ap.add_argument("--check", metavar="FOLDER", help="exit 1 if FOLDER's scripts differ from the generated ones")
    ap.add_argument("--show", metavar="ID", help="print one command's script")
    a = ap.parse_args(argv)
    if a.write:
        for p in write_scripts(a.write):
            print(p)
    if a.check:
        problems = check_scripts(a.check)
        for x in problems:
            print(x, file=sys.stderr)
        return 1 if problems else 0
    if a.show:
        print(script_text(get_command(a.show)), end="")
    if not (a.write or a.check or a.show):
        ap.print_help()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main())
