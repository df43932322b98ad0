"""fijidecon's commands as real ImageJ 1.x menu commands, dialogs and macro commands.

Every :class:`~fijidecon.commands.Command` description becomes a menu item (by default
under *Plugins › Deconvolution*) whose label is the command's ``title``.  The two ported
OptiNav commands keep their original names and dialog labels, so macros written for
the original plugins run unchanged, e.g.::

    run("Diffraction PSF 3D", "index=1.33 numerical=1.2 wavelength=520 longitudinal=0 "
        "image=100 slice=250 width,=32 height,=32 depth,=16 "
        "normalization=[Sum of pixel values = 1] title=psfA");

How it works (no compiled Java): a JPype proxy implementing ``ij.CommandListener`` is
registered with ``ij.Executer.addCommandListener``.  ImageJ calls it before running any
command, on the command's own thread; for one of our labels it runs the command and
returns ``None`` (so ImageJ does nothing more), for any other label it returns the
label unchanged.  The dialog is an ``ij.gui.GenericDialog`` built *from the
description* (label, kind, default, decimals, choices; image parameters become a choice
over the open images), so its macro keys are the first words of the labels, exactly as
for the originals.  In a macro the dialog is not shown and its values come from the
macro's option string (``ij.Macro.getOptions()``); from a menu click the listener
drives the macro recorder itself (``Recorder.setCommand`` / ``saveCommand``), so the
recorder writes a ``run(...)`` line that replays to the same result.

Progress goes to ImageJ's status bar and progress bar; *Esc* cancels iterative commands
(``IJ.escapePressed()`` is polled from the core function's ``callback``).  A volume over the
memory budget (the dialogs' last field, ``memory``; ``auto``: the default budget less the
result image) is deconvolved in bricks: the status bar shows "brick k/n, about T left" and
*Esc* stops it after the current brick (no result window).  A result image that cannot fit
ImageJ's free Java heap is refused before computing.  Errors are
shown as ImageJ error messages (``IJ.error``) or, inside a macro, abort the macro with
a macro error naming the parameter; a Python exception never reaches Java (which would
show a Java exception window).  Results are new image windows carrying the input's
calibration.

Hyperstacks (C and/or T > 1) keep their axes all the way: the core deconvolves each
(T, C) volume with its channel's PSF (one PSF stack for every channel, or a PSF hyperstack
with one channel per image channel) and the result has the input's dimensions, order and
calibration; this holds for the two ported commands too (the originals took C/T planes
as z; not reproduced).  The image's and the PSF's calibrations reach the core, which
resamples a PSF of another voxel size.  While a command runs, the ``fijidecon`` logger's
records (INFO and up: the notes on what was done to the PSF, Wiener's regularization)
and Python warnings are written to the Log window, one line each, prefixed with the
command's name.

If a command with the same label is already installed (e.g. the original OptiNav
plugin in a Fiji), ours is installed as ``"<title> (Python)"`` and a line in the Log
window says so.

Example
-------
>>> from fijidecon.fiji import runtime, commands        # doctest: +SKIP
>>> runtime.start(); runtime.imagej(show=True)          # doctest: +SKIP
>>> labels = commands.install()                         # doctest: +SKIP
>>> commands.run_macro('run("Diffraction PSF 3D", "width,=32 height,=32 depth,=16");')  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
import warnings
from dataclasses import dataclass, field
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np

from fijidecon._validate import format_bytes
from fijidecon.calibration import Calibration
from fijidecon.commands import Command, all_commands
from fijidecon.commands.run import run_command
from fijidecon.errors import InputTypeError
from fijidecon.fiji import heap, runtime

__all__ = [
    "install",
    "uninstall",
    "installed",
    "run_macro",
    "MacroResult",
    "open_dialogs",
    "dialog_text",
    "close_dialogs",
    "CommandError",
    "execute",
    "screenshot",
    "close_images",
    "image",
    "state",
]

#: Suffix used when a command of the same name is already installed in ImageJ.
PYTHON_SUFFIX = " (Python)"

#: Ids of the ported commands, whose dialogs replicate the originals exactly (no unit texts).
_PORTED = ("diffraction-psf-3d", "iterative-deconvolve-3d")


class CommandError(ValueError):
    """A user-facing error of an ImageJ command (shown as an ImageJ error/macro error)."""


# ---------------------------------------------------------------------------------------
# module state
# ---------------------------------------------------------------------------------------
@dataclass
class _State:
    labels: dict = field(default_factory=dict)  # ImageJ label -> Command
    listener: Any = None
    menu_items: dict = field(default_factory=dict)  # label -> java.awt.MenuItem
    last_values: dict = field(default_factory=dict)  # command id -> {name: value} (interactive)
    last_error: str | None = None
    reported_error: str | None = None  # the last error a command reported itself (macro error or IJ.error)
    last_status: str | None = None
    cancel_message: str | None = None  # "<command>: cancelled (Esc)" of the last cancelled command
    running: str | None = None
    iteration: int = 0
    runs: int = 0
    notes: list = field(default_factory=list)
    log_iterations: bool = False
    last_seconds: float = 0.0
    cancel_requested: bool = False
    last_progress: str | None = None  # the last bricked-run status line ("...: brick k/n, about T left ...")


#: What the bridge did last (read by tests and by ``fijidecon macro``).
state = _State()
_lock = threading.RLock()


def _j(name: str):
    return runtime.jimport(name)


# ---------------------------------------------------------------------------------------
# install / uninstall
# ---------------------------------------------------------------------------------------
def installed() -> dict[str, Command]:
    """The installed commands: ImageJ menu label -> :class:`Command`."""
    return dict(state.labels)


def _menu(path: str):
    """The AWT menu for ``"Plugins>Deconvolution"``, creating sub-menus as needed."""
    Menus = _j("ij.Menus")
    Menu = _j("java.awt.Menu")
    parts = [p.strip() for p in path.split(">") if p.strip()]
    if not parts:
        parts = ["Plugins"]
    menu = Menus.getImageJMenu(parts[0])
    if menu is None:
        return None
    for name in parts[1:]:
        found = None
        for i in range(int(menu.getItemCount())):
            it = menu.getItem(i)
            if Menu.class_.isInstance(it) and str(it.getLabel()) == name:
                found = it
                break
        if found is None:
            found = Menu(name)
            menu.add(found)
        menu = found
    return menu


def install(commands: Iterable[Command] | None = None, *, log: bool = True) -> dict[str, Command]:
    """Install commands into ImageJ 1.x's menus and make them runnable from macros.

    Parameters
    ----------
    commands:
        Command descriptions (default: :func:`fijidecon.commands.all_commands`).
    log:
        Write a line to ImageJ's Log window for every command renamed to
        ``"<title> (Python)"`` because its name was already taken.

    Returns
    -------
    dict
        ImageJ label -> command, for the commands installed by this call and before.

    Notes
    -----
    Needs a running JVM with a display (Xvfb will do); creates the ``ij.ImageJ``
    instance (not shown) if there is none.  Idempotent.

    Example
    -------
    >>> labels = install()                 # doctest: +SKIP
    >>> "Iterative Deconvolve 3D" in labels  # doctest: +SKIP
    True
    """
    runtime.imagej()
    Menus = _j("ij.Menus")
    MenuItem = _j("java.awt.MenuItem")
    IJ = _j("ij.IJ")
    Executer = _j("ij.Executer")
    table = Menus.getCommands()
    with _lock:
        for cmd in (all_commands() if commands is None else tuple(commands)):
            if not isinstance(cmd, Command):
                raise InputTypeError(f"commands: expected Command descriptions, got {type(cmd).__name__}")
            if any(c.id == cmd.id for c in state.labels.values()):
                continue
            label = cmd.title
            if table.get(label) is not None or label in state.labels:
                label = cmd.title + PYTHON_SUFFIX
                if log:
                    IJ.log(f"fijidecon: a command named \"{cmd.title}\" is already installed; "
                           f"this one is installed as \"{label}\".")
            if table.get(label) is not None:
                raise RuntimeError(f"fijidecon: cannot install {cmd.title!r}: {label!r} is also taken")
            menu = _menu(cmd.menu)
            if menu is not None:
                item = MenuItem(label)
                item.addActionListener(IJ.getInstance())
                menu.add(item)
                state.menu_items[label] = item
            table.put(label, f"fijidecon.{cmd.id}")  # never run: the listener intercepts it
            state.labels[label] = cmd
        if state.listener is None:
            state.listener = _make_listener()
            Executer.addCommandListener(state.listener)
    return dict(state.labels)


def uninstall(labels: Iterable[str] | None = None) -> None:
    """Remove fijidecon's menu items and commands (all, or the given labels) from ImageJ.

    With ``labels=None`` the command listener is removed too.
    """
    if not runtime.is_started():
        return
    Menus = _j("ij.Menus")
    Executer = _j("ij.Executer")
    with _lock:
        table = Menus.getCommands()
        which = list(state.labels) if labels is None else [str(x) for x in labels]
        for label in which:
            item = state.menu_items.pop(label, None)
            if item is not None and item.getParent() is not None:
                item.getParent().remove(item)
            if table is not None and label in state.labels:
                table.remove(label)
            state.labels.pop(label, None)
        if labels is None and state.listener is not None:
            Executer.removeCommandListener(state.listener)
            state.listener = None


def _make_listener():
    import jpype

    @jpype.JImplements("ij.CommandListener")
    class _Listener:
        @jpype.JOverride
        def commandExecuting(self, label):
            cmd = state.labels.get(str(label))
            if cmd is None:
                return label
            try:
                _run(cmd, str(label))
            except BaseException as e:  # never let anything cross into Java
                try:
                    _report(*_internal_error(str(label), e))
                except BaseException:
                    pass
            return None

    return _Listener()


# ---------------------------------------------------------------------------------------
# errors and progress
# ---------------------------------------------------------------------------------------
def _internal_error(label: str, e: BaseException) -> tuple[str, str]:
    """What a command that failed outside its own checks reports: one line for a full Java
    heap (the class loader or ImageJ itself ran out, e.g. under ``--heap 10m``), else the
    internal error with its last frames."""
    if "OutOfMemoryError" in f"{type(e).__name__} {e}":
        return label, "not enough memory (Java OutOfMemoryError)"
    return "fijidecon", "internal error:\n" + traceback.format_exc(limit=3)


def _in_macro() -> bool:
    IJ = _j("ij.IJ")
    return bool(IJ.isMacro()) or _j("ij.Macro").getOptions() is not None


def _report(title: str, message: str) -> None:
    """Show an error: a macro error that aborts the running macro, else ``IJ.error``."""
    state.last_error = state.reported_error = f"{title}: {message}"
    IJ = _j("ij.IJ")
    IJ.showStatus("")
    IJ.showProgress(1.0)
    if _in_macro():
        Interpreter = _j("ij.macro.Interpreter")
        interp = Interpreter.getInstance()
        if interp is not None:
            try:
                interp.abort(f"{title}: {message}")
            except Exception:  # the interpreter unwinds with "Macro canceled"
                pass
            return
    IJ.error(title, message)


class _IterationWindow:
    """The original's *Show iteration*: one window showing the padded estimate after
    each iteration (replaced in place), closed when the run ends."""

    def __init__(self, title: str):
        self.title = title
        self.imp = None

    def show(self, estimate: np.ndarray, iteration: int) -> None:
        from fijidecon.fiji import convert

        est = np.ascontiguousarray(estimate, dtype=np.float32)
        new = convert.to_imageplus(est, title=self.title, axes="TCZYX"[-est.ndim:] if est.ndim > 3 else "ZYX"[-est.ndim:])
        if self.imp is None or self.imp.getWindow() is None:  # first time, or closed by the user
            self.imp = new
            self.imp.show()
        else:
            z = self.imp.getCurrentSlice()
            self.imp.setStack(new.getStack())
            self.imp.setSlice(min(z, int(self.imp.getStackSize())))
            self.imp.resetDisplayRange()
            self.imp.updateAndDraw()
        self.imp.setProperty("Info", f"iteration {iteration}")

    def close(self) -> None:
        if self.imp is not None:
            self.imp.changes = False
            self.imp.close()
            self.imp = None


def _progress_callback(cmd: Command, label: str, total: int | None,
                       window: _IterationWindow | None = None, volumes: int = 1) -> Callable[..., bool]:
    """A ``callback`` for the core function: progress bar, status, optional Log line, Esc,
    and with ``window`` the estimate after each iteration (Show iteration).

    Two signatures exist in the core: ``callback(iteration, figure)`` (Iterative
    Deconvolve 3D, which passes ``estimate=`` to a callback that names it) and
    ``callback(figures, estimate)`` with ``figures.iteration`` (Richardson-Lucy); in
    both, returning ``True`` stops the run.  For a hyperstack (``volumes`` > 1) the core
    runs each (T, C) volume in turn and the iteration count starts again: the status
    says "volume k/n", the progress bar covers all volumes, and with the Log option a
    "volume k/n" line precedes each volume's figures.
    """
    IJ = _j("ij.IJ")
    seen = {"volume": 0, "last": None}

    def cb(*args) -> bool:
        first = args[0] if args else None
        if _is_brick_figures(first):
            return _brick_progress(label, first)
        numeric = isinstance(first, (int, np.integer))
        iteration = int(first) if numeric else int(getattr(first, "iteration", state.iteration + 1))
        if seen["last"] is None or iteration <= seen["last"]:  # the first call of a volume
            seen["volume"] += 1
            if volumes > 1 and state.log_iterations:
                IJ.log(f"{label}: volume {seen['volume']}/{volumes}")
        seen["last"] = iteration
        state.iteration = iteration
        k = min(seen["volume"], volumes)
        where = f"volume {k}/{volumes}, " if volumes > 1 else ""
        if total:
            IJ.showProgress((k - 1) * int(total) + min(iteration, int(total)), volumes * int(total))
            IJ.showStatus(f"{label}: {where}iteration {iteration}/{total}  (Esc to cancel)")
        else:
            IJ.showStatus(f"{label}: {where}iteration {iteration}  (Esc to cancel)")
        if state.log_iterations and numeric and len(args) > 1:
            IJ.log(str(np.float32(args[1])))
        stop = state.cancel_requested or bool(IJ.escapePressed())  # once cancelled, every later volume stops too
        if stop:
            state.cancel_requested = True
        return stop

    if window is None:
        return cb

    def cb_showing(*args, estimate=None) -> bool:  # the core passes estimate= because it is named
        stop = cb(*args)
        if estimate is not None and not stop:
            window.show(estimate, state.iteration)
        return stop

    return cb_showing


def _is_brick_figures(obj: Any) -> bool:
    from fijidecon.deconvolve import BrickFigures

    return isinstance(obj, BrickFigures)


def _brick_progress(label: str, fig: Any) -> bool:
    """A bricked run's progress (``BrickFigures`` after each brick): bricks done and the ETA in
    the status bar, the progress bar; ``True`` (cancel: the core raises ``CancelledError``)
    once Esc was pressed."""
    IJ = _j("ij.IJ")
    state.iteration = int(fig.brick)
    eta = fig.eta_seconds
    eta_text = f", about {_duration(eta)} left" if np.isfinite(eta) else ""
    IJ.showProgress(int(fig.brick), int(fig.bricks))
    state.last_progress = f"{label}: brick {fig.brick}/{fig.bricks}{eta_text}  (Esc to cancel)"
    IJ.showStatus(state.last_progress)
    stop = state.cancel_requested or bool(IJ.escapePressed())
    if stop:
        state.cancel_requested = True
    return stop


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s} s" if s < 90 else f"{s // 60} min {s % 60:02d} s" if s < 5400 else f"{s / 3600:.1f} h"


def _java_heap_room() -> tuple[int, int]:
    """(bytes the Java heap can still take, its maximum): ``IJ.maxMemory()`` minus the memory in use."""
    IJ = _j("ij.IJ")
    mx = int(IJ.maxMemory())
    return max(mx - int(IJ.currentMemory()), 0), mx


def _memory_budget(cmd: Command, values: Mapping[str, Any], image: tuple[np.ndarray, Calibration] | None,
                   label: str) -> dict[str, Any]:
    """``values`` with the run's memory budget: the result ``ImagePlus`` (float32, as big as the
    image) must fit ImageJ's free Java heap, else a :class:`CommandError`; the default budget
    (``memory_limit`` auto) is :func:`fijidecon.deconvolve.default_memory_limit` less what the
    heap may still take from the system for that result."""
    if image is None or not any(p.name == "memory_limit" for p in cmd.params):
        return dict(values)
    from fijidecon.deconvolve import default_memory_limit

    result = int(np.asarray(image[0]).size) * 4
    out = dict(values)
    given = cmd.param("memory_limit").convert(values.get("memory_limit", "auto"))
    if given is None:
        budget = int(default_memory_limit()) - result
        if budget <= 0:
            raise CommandError(f"memory_limit: no memory left for {label} once the result image "
                               f"({format_bytes(result)}) is counted; close images or other programs")
        out["memory_limit"] = budget
    return out


#: Commands that refuse the image chosen as its own PSF (a deconvolution by the data is never meant;
#: Convolve of an image by itself, an autocorrelation, only warns).
_SELF_PSF_REFUSED = frozenset({"richardson-lucy", "wiener", "iterative-deconvolve-3d"})


def _check_heap(cmd: Command, imp: Any) -> None:
    """Refuse (:class:`CommandError`) a run whose float32 result ``ImagePlus``, as big as the
    input window ``imp``, cannot fit ImageJ's free Java heap (checked before any copy)."""
    if imp is None or not any(p.name == "memory_limit" for p in cmd.params):
        return
    result = int(imp.getWidth()) * int(imp.getHeight()) * int(imp.getStackSize()) * 4
    room, mx = _java_heap_room()
    if result > room:
        raise CommandError(f"memory_limit: the result image ({format_bytes(result)}) does not fit ImageJ's free Java "
                           f"heap ({format_bytes(room, 'down')} free of {format_bytes(mx)}); raise ImageJ's maximum "
                           "memory (Edit > Options > Memory & Threads), close images, or crop the image")


# ---------------------------------------------------------------------------------------
# the dialog, built from the description
# ---------------------------------------------------------------------------------------
def _image_titles() -> list[str]:
    WindowManager = _j("ij.WindowManager")
    ids = WindowManager.getIDList()
    if ids is None:
        return []
    out = []
    for i in ids:
        imp = WindowManager.getImage(int(i))
        if imp is not None:
            out.append(str(imp.getTitle()))
    return out


def _default_image_titles(cmd: Command, titles: list[str]) -> dict[str, str]:
    """Default choice for each image parameter: the current image first, then a PSF."""
    WindowManager = _j("ij.WindowManager")
    cur = WindowManager.getCurrentImage()
    current = str(cur.getTitle()) if cur is not None else titles[0]
    if current not in titles:
        current = titles[0]
    out: dict[str, str] = {}
    used: set[str] = set()
    for p in cmd.params:
        if p.kind != "image":
            continue
        if "psf" in p.name.lower() or "kernel" in p.label.lower():
            psfs = [t for t in titles if "psf" in t.lower() and t not in used]
            pick = psfs[-1] if psfs else next((t for t in titles if t not in used), titles[0])
        else:
            non_psf = [t for t in titles if "psf" not in t.lower()]
            pick = current if ("psf" not in current.lower() or not non_psf) else non_psf[-1]
            if pick in used:
                pick = next((t for t in titles if t not in used), titles[0])
        out[p.name] = pick
        used.add(pick)
    return out


def _format_default(p, value):
    if p.kind == "choice":
        return p.choice_label(value)
    return value


def _build_dialog(cmd: Command, defaults: Mapping[str, Any], titles: list[str]):
    GenericDialog = _j("ij.gui.GenericDialog")
    gd = GenericDialog(cmd.dialog_title)
    ported = cmd.id in _PORTED
    image_defaults = _default_image_titles(cmd, titles) if titles else {}
    for p in cmd.params:
        val = defaults.get(p.name, p.default)
        if p.kind in ("float", "int"):
            digits = 0 if p.kind == "int" else int(p.decimals)
            if p.unit and not ported:
                gd.addNumericField(p.label, float(val), digits, 8, str(p.unit))
            else:
                gd.addNumericField(p.label, float(val), digits)
        elif p.kind == "bool":
            gd.addCheckbox(p.label, bool(val))
        elif p.kind == "choice":
            gd.addChoice(p.label, list(p.choice_labels), p.choice_label(val))
        elif p.kind == "string":  # None as the field's word for it ("auto"), not a blank field
            shown = p.face(val)
            gd.addStringField(p.label, "" if shown is None else str(shown), 12)
        elif p.kind == "image":
            gd.addChoice(p.label, titles, image_defaults.get(p.name, titles[0]))
    if cmd.summary and not ported:
        gd.addMessage(cmd.summary)
    return gd


class _AlreadyReported(Exception):
    """An error ImageJ itself has already shown (or recorded) for the running macro."""


def _read_dialog(cmd: Command, gd, macro: bool = False, typed: dict | None = None) -> dict[str, Any]:
    """Read the fields back in order; validate each through its :class:`Param`.  ``typed``: filled
    with the text of each string field as typed (what the next dialog shows again)."""
    values: dict[str, Any] = {}
    for p in cmd.params:
        if p.kind in ("float", "int"):
            v = float(gd.getNextNumber())
            if bool(gd.invalidNumber()):
                if macro:  # ImageJ has already reported it (macro error naming the key)
                    raise _AlreadyReported(f"\"{p.label}\" ({p.key}): not a number")
                raise CommandError(f"\"{p.label}\" ({p.key}): not a number")
            values[p.name] = int(v) if p.kind == "int" and v == int(v) else v
        elif p.kind == "bool":
            values[p.name] = bool(gd.getNextBoolean())
        elif p.kind in ("choice", "image"):
            values[p.name] = str(gd.getNextChoice())
        elif p.kind == "string":
            values[p.name] = str(gd.getNextString())
    if typed is not None:
        typed.update({p.name: values[p.name] for p in cmd.params if p.kind == "string"})
    out: dict[str, Any] = {}
    for p in cmd.params:
        v = values[p.name]
        if p.kind == "image":
            out[p.name] = v
            continue
        try:
            out[p.name] = p.convert(v)
        except (TypeError, ValueError) as e:
            msg = str(e)
            if msg.startswith(p.name + ": "):
                msg = msg[len(p.name) + 2:]
            raise CommandError(f"\"{p.label}\" ({p.key}={_show(v)}): {msg}") from None
    return out


def _show(v: Any) -> str:
    if isinstance(v, float) and v == int(v):
        return str(int(v))
    return str(v)


# ---------------------------------------------------------------------------------------
# running one command
# ---------------------------------------------------------------------------------------
def _input_array(cmd: Command, p, imp) -> tuple[np.ndarray, Calibration]:
    """An image parameter's window as ``(array, Calibration)``, axes in ImageJ order.

    Hyperstacks keep their C and T axes (``Calibration.axes`` says which, e.g. ``ZCYX`` or
    ``TZCYX``): the core deconvolves each (T, C) volume separately.  This is also true for
    the two ported commands, whose originals took the C/T planes of a hyperstack as z.
    """
    from fijidecon.fiji import convert

    if int(imp.getBitDepth()) == 24:
        raise CommandError(
            f"\"{p.label}\" ({p.key}={imp.getTitle()}): RGB images are not supported; "
            "convert to 8-bit, 16-bit or 32-bit first (Image > Type)"
        )
    return convert.from_imageplus(imp)


def _psf_per_channel(p, title: str, psf: tuple[np.ndarray, Calibration],
                     image: tuple[np.ndarray, Calibration]):
    """The PSF parameter's value for :func:`run_command`: the PSF as it is, or, for a
    PSF hyperstack with C > 1, a list with one ``(array, Calibration)`` per channel.

    Raises
    ------
    CommandError
        A PSF with time frames, or whose number of channels is neither 1 nor the image's.
    """
    arr, cal = psf
    if "T" in cal.axes:
        raise CommandError(f"\"{p.label}\" ({p.key}={title}): a PSF cannot have time frames "
                           f"({arr.shape[cal.axes.index('T')]}); use one stack for all channels or a PSF "
                           "hyperstack with one channel per image channel")
    if "C" not in cal.axes:
        return psf
    ci = cal.axes.index("C")
    n_psf = arr.shape[ci]
    n_img = image[0].shape[image[1].axes.index("C")] if "C" in image[1].axes else 1
    if n_psf != n_img:
        raise CommandError(f"\"{p.label}\" ({p.key}={title}): the PSF has {n_psf} channels but the image has "
                           f"{n_img}; use one PSF stack for all channels or one PSF channel per image channel")
    one = Calibration(axes=cal.axes.replace("C", ""), spacing=cal.spacing, unit=cal.unit)
    return [(np.ascontiguousarray(np.take(arr, c, axis=ci)), one) for c in range(n_psf)]


# ---------------------------------------------------------------------------------------
# the core's notes (logging) in ImageJ's Log window
# ---------------------------------------------------------------------------------------
#: Threads now running a command (their own log records go to their own run's Log lines).
_RUN_THREADS: set[int] = set()
_LOG_LEVEL_USERS = [0, logging.NOTSET]  # runs that lowered the "fijidecon" logger's level, its level before


class _ImageJLogHandler(logging.Handler):
    """Writes the ``fijidecon`` logger's records (INFO and up) to ImageJ's Log window as
    ``"<label>: <message>"`` (``"<label>: warning: <message>"`` from WARNING up).

    Records from another command's thread are left to that command's handler; records
    from worker threads (no command running on them) are taken."""

    def __init__(self, label: str, cmd: Command | None = None):
        super().__init__(logging.INFO)
        self.label = label
        self.cmd = cmd
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread == self.thread or record.thread not in _RUN_THREADS

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = " ".join(record.getMessage().split())  # one line
            self.messages.append(msg)
            kind = "warning: " if record.levelno >= logging.WARNING else ""
            # a warning's advice in macro keys; a note without the CLI's asides (a warning also logged as a
            # note, said once: 'pass gain= and offset= (CLI --gain, --offset; camera values)' reached the Log)
            said = imagej_terms(self.cmd if kind else None, msg)
            line = f"{self.label}: {kind}{said}"
            state.notes.append(line)
            _j("ij.IJ").log(line)
        except Exception:  # never let logging break a run
            self.handleError(record)


@contextmanager
def _log_to_imagej(label: str, cmd: Command | None = None) -> Iterator[_ImageJLogHandler]:
    """Show the ``fijidecon`` logger's INFO records in ImageJ's Log window during a run
    (the logger's level is lowered to INFO meanwhile and restored afterwards)."""
    logger = logging.getLogger("fijidecon")
    handler = _ImageJLogHandler(label, cmd)
    with _lock:
        if _LOG_LEVEL_USERS[0] == 0:
            _LOG_LEVEL_USERS[1] = logger.level
            if logger.getEffectiveLevel() > logging.INFO:
                logger.setLevel(logging.INFO)
        _LOG_LEVEL_USERS[0] += 1
        _RUN_THREADS.add(handler.thread)
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        with _lock:
            logger.removeHandler(handler)
            _RUN_THREADS.discard(handler.thread)
            _LOG_LEVEL_USERS[0] -= 1
            if _LOG_LEVEL_USERS[0] == 0:
                logger.setLevel(_LOG_LEVEL_USERS[1])


def _log_wiener_choice(label: str, res: Any, logged: list[str]) -> None:
    """Make sure Wiener's regularization and rule are in the Log (one line), also when the
    core did not log them."""
    if any("regulari" in m for m in logged) or getattr(res, "regularization", None) is None:
        return
    rho = res.regularization
    text = ", ".join(f"{float(r):.3g}" for r in np.ravel(rho))
    line = f"{label}: regularization {text} (rule {getattr(res, 'rule', '?')})"
    state.notes.append(line)
    _j("ij.IJ").log(line)


#: The length that tells a PSF window's unit, and its range in nm (the same range / 1000 is µm).
_UNIT_BY = {"diffraction-psf-3d": ("wavelength", 100.0, 2500.0), "gaussian-psf": ("fwhm_xy", 50.0, 5000.0),
            "lorentzian-psf": ("fwhm_xy", 50.0, 5000.0)}


def _psf_length_unit(cmd: Command, values: Mapping[str, Any], cal: Calibration, label: str) -> Calibration:
    """The length unit of a *Diffraction PSF 3D*, *Gaussian PSF* or *Lorentzian PSF* window, from the
    magnitude of its wavelength (lateral FWHM).

    Their lengths are in "any unit L, the same for every length" (the original's label:
    "Wavelength (perhaps in nm)"), and macros written in µm exist.  Now that a PSF window's
    calibration decides whether the PSF is resampled to an image's voxel size, the unit
    must not be guessed blindly: a wavelength of 100-2500 (a FWHM of 50-5000) is nm (the
    description's unit), a thousand times less is µm (a Log line says so), anything else leaves
    the PSF without a length unit and without spacings (a Log line says so, and the
    deconvolution commands then take it at the image's voxel size, with a warning).  A
    Gaussian PSF with a FWHM of 0.25 and spacings of 0.13 was calibrated in nm, and resampled
    1000x wrong."""
    rule = _UNIT_BY.get(cmd.id)
    if rule is None or cal.unit != "nm" or rule[0] not in values:
        return cal
    name, lo, hi = rule
    w = float(values[name])
    if lo <= w <= hi:
        return cal
    unit = "micron" if lo / 1000 <= w <= hi / 1000 else "pixel"
    key = cmd.param(name).key  # the macro key (lateral=), as the user typed it
    line = (f"{label}: {key} {w:g} taken as µm: the PSF is calibrated in micron" if unit == "micron" else
            f"{label}: {key} {w:g} is neither nm nor µm: the PSF gets no length unit")
    _j("ij.IJ").log(line)
    state.notes.append(line)
    return Calibration(axes=cal.axes, spacing=cal.spacing if unit == "micron" else (), unit=unit)


def _iterations(res: Any) -> int | None:
    """The iteration count for the result's title: ``res.iterations``, or for a hyperstack
    (one count per (T, C) volume) the largest one."""
    it = getattr(res, "iterations", None)
    if it is None:
        return None
    counts = [int(v) for v in np.ravel(it)]
    return max(counts) if counts else None


def _result_title(cmd: Command, values: Mapping[str, Any], res: Any, input_title: str | None) -> str:
    names = {p.name: p for p in cmd.params}
    if "title" in names and names["title"].kind == "string" and values.get("title"):
        return str(values["title"])
    if "output" in names and names["output"].kind == "string":
        base = str(values.get("output") or cmd.title)
        it = _iterations(res)
        return f"{base}_{it}" if it is not None else base
    if input_title:
        return f"{cmd.title} of {input_title}"
    return cmd.title


def _psf_confirm(values: Mapping[str, Any]) -> tuple[str, str]:
    """The original Diffraction PSF 3D's OK/Cancel message before computing."""
    lam, dxy, na = float(values["wavelength"]), float(values["pixel_spacing"]), float(values["na"])
    r = 0.6 * lam / (dxy * na) if dxy > 0 and na > 0 else float("nan")
    return ("PSF: peak to first dark ring (w/o sph. aber.)",
            f"Rayleigh resolution = 0.6*wavelength/(pixel spacing*NA) = {r:.3g} pixels")


#: Interactive confirmation messages shown after the dialog (command id -> message maker).
_CONFIRM: dict[str, Callable[[Mapping[str, Any]], tuple[str, str]]] = {"diffraction-psf-3d": _psf_confirm}


class _CoreError(CommandError):
    """A core function's ``ValueError``/``TypeError``, named in its Python parameters."""


def _in_dialog_terms(cmd: Command, message: str) -> str:
    """A core error that starts with a Python parameter name (``pixel_size: …``) as the dialog
    field and macro key the user typed (``"Pixel size of the image …" (pixel): …``); in the
    rest, the command's parameters are its macro keys (``use compat=False`` -> ``use
    mode=Improved``, ``give memory_limit of at least 226 MiB`` -> ``give memory= of at least …``)."""
    head, sep, rest = message.partition(": ")
    rest = imagej_terms(cmd, rest) if sep else imagej_terms(cmd, message)
    name = head.split("[")[0]
    p = next((q for q in cmd.params if q.name == name and q.kind != "image"), None)
    if not sep or p is None:
        return f"{head}: {rest}" if sep else rest
    return f"\"{p.label}\" ({p.key}): {rest}"


#: Core phrases with no ImageJ field, as an ImageJ user can act on them.
_IMAGEJ_PHRASES = (("a PSF cropped closer (a higher psf_threshold)", "a PSF cropped closer"),
                   (" (CLI --background, ImageJ Background: ", " ("))


def imagej_terms(cmd: Command | None, text: str) -> str:
    """A core message (warning, note or error text) in the dialog's terms: macro keys for parameter
    names (:func:`_keys_in`), the CLI's asides dropped (``(CLI --gain, --offset; camera values)`` ->
    ``(camera values)``)."""
    import re

    for core, said in _IMAGEJ_PHRASES:
        text = text.replace(core, said)
    text = re.sub(r" ?\(CLI (?:--[a-z-]+(?: [A-Z]+)?(?:, )?)+\)", "", text)
    text = re.sub(r"\(CLI (?:--[a-z-]+(?: [A-Z]+)?(?:, )?)+; ", "(", text)
    text = re.sub(r"(?:, )?CLI --[a-z-]+(?: [A-Z]+)?", "", text).replace("; )", ")")
    return text if cmd is None else _keys_in(cmd, text)


def _keys_in(cmd: Command, text: str) -> str:
    """``name=value`` of the command's parameters as ``key=value`` (a choice's value as its label), and
    a bare ``snake_case`` parameter name as ``key=``."""
    import re

    for q in cmd.params:
        if q.kind == "image":
            continue

        def value(m: "re.Match[str]", q: Any = q) -> str:
            v = m.group(1).strip("'\"")
            label = next((lab for lab, val in q.choices if str(val) == v), None) if q.kind == "choice" else None
            shown = label if label else v
            return f"{q.key}=[{shown}]" if " " in shown else f"{q.key}={shown}"  # as a macro writes it
        text = re.sub(rf"(?<![\w.-]){re.escape(q.name)}=('[^']*'|[^\s,;)]+)", value, text)
        if "_" in q.name:
            text = re.sub(rf"(?<![\w.-]){re.escape(q.name)}:", f"{q.key}:", text)  # a message's head
            text = re.sub(rf"(?<![\w.-]){re.escape(q.name)}(?![\w=(\[:])", f"{q.key}=", text)
    return text


def _cancelled(label: str, how: str, recording: bool) -> None:
    """A command cancelled (dialog, confirmation or Esc): status bar, ``state``, recorder."""
    _j("ij.IJ").showStatus(f"{label}: {how}")
    state.last_status = "cancelled"
    state.cancel_message = f"{label}: {how}"
    if recording:
        _j("ij.plugin.frame.Recorder").setCommand(None)


def _run(cmd: Command, label: str) -> None:
    IJ = _j("ij.IJ")
    Macro = _j("ij.Macro")
    Recorder = _j("ij.plugin.frame.Recorder")
    WindowManager = _j("ij.WindowManager")
    options = Macro.getOptions()
    state.last_error = None
    state.iteration = 0

    unknown = cmd.unknown_macro_keys(str(options)) if options is not None else []
    if unknown:  # ImageJ would ignore them and run with the defaults
        _report(label, f"unknown macro key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; this command's "
                       f"keys: {' '.join(p.key for p in cmd.params)}")
        return
    image_params = [p for p in cmd.params if p.kind == "image"]
    titles = _image_titles()
    if image_params and not titles:
        _report(label, "There are no images open.\nOpen (or create) an image first.")
        return

    # -- dialog (shown only without macro options) --
    defaults = dict(cmd.defaults())
    if options is None:
        defaults.update(state.last_values.get(cmd.id, {}))
    recording = bool(Recorder.record) and not bool(IJ.isMacro())
    if recording:
        Recorder.setCommand(label)
    gd = _build_dialog(cmd, defaults, titles)
    try:
        gd.showDialog()
    except Exception:  # GenericDialog aborts a macro with a bad value ("Macro canceled")
        state.last_error = f"{label}: invalid macro option"
        return
    if gd.wasCanceled():
        _cancelled(label, "cancelled", recording)
        return
    try:
        typed: dict[str, str] = {}
        values = _read_dialog(cmd, gd, macro=options is not None, typed=typed)
    except CommandError as e:
        _report(label, str(e))
        return
    except _AlreadyReported as e:
        state.last_error = f"{label}: {e}"
        return
    except Exception as e:  # "Macro canceled" after ImageJ's own numeric-field error
        state.last_error = f"{label}: {e}"
        return

    # -- images --
    imps: dict[str, Any] = {}
    for p in image_params:
        title = values[p.name]
        imp = WindowManager.getImage(title)
        if imp is None:
            open_ = ", ".join(titles) if titles else "none"
            _report(label, f"\"{p.label}\" ({p.key}={title}): no open image has this title (open images: {open_})")
            return
        imps[p.name] = imp
    chosen = [imps[p.name] for p in image_params]
    if len(chosen) == 2 and int(chosen[0].getID()) == int(chosen[1].getID()):  # e.g. psf=<the image itself>
        if cmd.id in _SELF_PSF_REFUSED:  # a batch macro kept a meaningless result (a fresh user, 2026-12-03)
            p = image_params[1]
            _report(label, f"\"{p.label}\" ({p.key}={values[p.name]}) is the image itself; choose the PSF's window "
                           f"(open images: {', '.join(titles)})")
            return
        note = (f"{label}: warning: \"{image_params[1].label}\" is the image itself ('{chosen[0].getTitle()}'); "
                "choose the PSF's window")
        state.notes.append(note)
        IJ.log(note)
    confirm = _CONFIRM.get(cmd.id)
    if confirm is not None and options is None:  # interactive only, as in the original
        title, message = confirm(values)
        if not bool(IJ.showMessageWithCancel(title, message)):
            _cancelled(label, "cancelled", recording)
            return
    if recording:
        Recorder.saveCommand()
    if options is None:
        state.last_values[cmd.id] = {p.name: typed.get(p.name, values[p.name]) for p in cmd.params
                                     if p.kind != "image"}

    snaps: list = []
    try:
        out, res = execute(cmd, values, imps, label=label, progress=True, snapshots=snaps)
    except CommandError as e:  # a dialog's or macro's user: the field and key typed, not the Python name
        _report(label, _in_dialog_terms(cmd, str(e)))
        return
    if out is None:
        _cancelled(label, "cancelled (Esc)", False)
        IJ.resetEscape()
        if _in_macro():  # as ImageJ's own Esc does: the rest of the macro would expect the result
            _j("ij.macro.Interpreter").abort()
        return
    for snap in snaps:  # snapshot_every: one window per snapshot, before the result
        snap.show()
    out.show()
    state.runs += 1
    state.last_status = "done"
    for p in image_params:  # inputs were copied at the start; say so if one went away
        imp = imps[p.name]
        if WindowManager.getImage(int(imp.getID())) is None:
            note = (f"{label}: \"{p.label}\" window '{imp.getTitle()}' was closed during the run; "
                    "the copy taken at the start was used.")
            state.notes.append(note)
            IJ.log(note)
    IJ.showStatus(f"{label}: {out.getTitle()} in {state.last_seconds:.2f} s")


def _input_images(cmd: Command, image_params: list, imps: Mapping[str, Any]) -> dict[str, Any]:
    """``{name: (array, Calibration)}`` for :func:`run_command`, copied from the windows; a
    PSF hyperstack becomes a list with one ``(array, Calibration)`` per channel."""
    images: dict[str, Any] = {}
    for k, p in enumerate(image_params):
        imp = imps.get(p.name)
        if imp is None:
            raise CommandError(f"\"{p.label}\" ({p.name}): no image given")
        images[p.name] = _input_array(cmd, p, imp)
        if k > 0 and p.name == "psf":
            images[p.name] = _psf_per_channel(p, str(imp.getTitle()), images[p.name], images[image_params[0].name])
    if len(image_params) == 2:
        first, second = (p.name for p in image_params)
        images[first] = _one_plane_as_z(images[first], images[second])
    return images


def _one_plane_as_z(image: tuple[np.ndarray, Calibration], psf: Any) -> tuple[np.ndarray, Calibration]:
    """A window of one plane (no Z) with a 3D PSF (or kernel) as a Z stack of one plane, as the API
    takes it with ``axes='ZYX'`` on ``(1, Y, X)``: an ImageJ user cannot give axes (the core's remedy
    for a Python user; a fresh user got it, with a broken ``(read_image; )`` aside).  Its Z spacing is
    the PSF's (one plane has none), so the PSF is not resampled in Z; the result is one plane too."""
    arr, cal = image
    parr, pcal = psf[0] if isinstance(psf, list) else psf
    if "Z" in cal.axes or "Z" not in pcal.axes or parr.shape[pcal.axes.index("Z")] < 2:
        return image
    at = 1 if cal.axes.startswith("T") else 0  # ImageJ's order: T, Z, C, Y, X
    dz = pcal.dz
    if cal.has_length_unit() and pcal.has_length_unit():
        dz = pcal.voxel_size("Z", unit=cal.unit)[0]
    spacing = tuple(sorted(dict(cal.spacing, Z=dz).items()))
    return np.expand_dims(arr, at), Calibration(axes=cal.axes[:at] + "Z" + cal.axes[at:], spacing=spacing,
                                                unit=cal.unit)


def _volume_count(image: tuple[np.ndarray, Calibration]) -> int:
    """How many (T, C) volumes the core runs one after the other for this image."""
    arr, cal = image
    return int(np.prod([n for a, n in zip(cal.axes, arr.shape) if a in "TC"], dtype=np.int64))


def _log_warnings(label: str, caught: list, logged: list[str], cmd: Command | None = None) -> None:
    """Python warnings of a run in the Log (invisible in ImageJ otherwise), one line each, in the
    dialog's terms; one already logged through the ``fijidecon`` logger is not repeated."""
    IJ = _j("ij.IJ")
    for w in caught:
        msg = " ".join(str(w.message).split())
        if msg in logged:
            continue
        msg = imagej_terms(cmd, msg)
        IJ.log(f"{label}: warning: {msg}")
        state.notes.append(f"{label}: warning: {msg}")


def _log_termination(label: str, res: Any, log: bool) -> None:
    """Iterative Deconvolve 3D's closing Log line: the original's "Automatically terminated
    after N iterations." (with the ``log`` option) for one volume; for a hyperstack whose
    volumes stopped at different counts, the counts (the title shows the largest)."""
    IJ = _j("ij.IJ")
    if np.size(getattr(res, "iterations", 0)) > 1:
        counts = [int(v) for v in np.ravel(res.iterations)]
        if len(set(counts)) > 1:
            line = f"{label}: iterations per (T, C) volume: {counts}"
            IJ.log(line)
            state.notes.append(line)
    elif log and getattr(res, "stop_reason", "") in ("converged", "diverged", "change_increased"):
        IJ.log(f"Automatically terminated after {res.iterations} iterations.")  # the original's words


def _check_java_heap(cmd: Command, label: str, values: Mapping[str, Any], images: Mapping[str, Any],
                     show_iterations: bool) -> None:
    """Refuse (:class:`CommandError`, "not enough memory: ...") a run whose result image (or
    iteration window) cannot fit ImageJ's Java heap: see :mod:`fijidecon.fiji.heap`."""
    shapes = {n: np.shape((v[0] if isinstance(v, list) else v)[0]) for n, v in images.items()}
    try:
        heap.check_command(cmd, label, values, shapes, show_iterations)
    except MemoryError as e:
        raise CommandError(str(e)) from None


def execute(cmd: Command, values: Mapping[str, Any], imps: Mapping[str, Any], *, label: str | None = None,
            progress: bool = False, snapshots: list | None = None):
    """Run a command on ``ImagePlus`` inputs and return its result as a new ``ImagePlus``.

    The ImageJ side shared by the menu/macro commands, the ``#@`` scripts and the
    SciJava modules of :mod:`fijidecon.fiji.attach`: inputs are copied to numpy with
    their calibration, :func:`fijidecon.commands.run.run_command` (the path the CLI
    uses too) runs the core function, and the result becomes an ``ImagePlus`` (not
    shown) titled and calibrated as described in the module docs.

    Parameters
    ----------
    cmd:
        The command description.
    values:
        Non-image parameter values keyed by ``Param.name`` (missing ones get defaults).
    imps:
        ``ImagePlus`` for each image parameter, keyed by name.
    label:
        Name used in status/progress messages (default ``cmd.title``).
    progress:
        Show progress in ImageJ's status and progress bars and let *Esc* cancel.
    snapshots:
        A list to which the result's snapshots (``snapshot_every``) are appended as
        ``ImagePlus`` titled ``"<title>_iter<k>"`` (calibrated as the result, not shown).

    Returns
    -------
    (ImagePlus or None, object)
        The result image (``None`` when cancelled with Esc) and the core function's
        raw return value.

    Raises
    ------
    CommandError
        With a one-line message naming the parameter.
    """
    IJ = _j("ij.IJ")
    label = label or cmd.title
    image_params = [p for p in cmd.params if p.kind == "image"]
    _check_heap(cmd, imps.get(image_params[0].name) if image_params else None)
    images = _input_images(cmd, image_params, imps)
    first_imp = imps[image_params[0].name] if image_params else None
    first_title = str(first_imp.getTitle()) if first_imp is not None else None
    try:
        full = cmd.resolve({k: v for k, v in values.items() if k not in images})
    except ValueError as e:
        raise CommandError(str(e)) from None
    total = None
    prog = cmd.extras.get("progress") if cmd.extras else None
    for name in ((prog,) if prog else ()) + ("max_iterations", "iterations", "n_iterations"):
        if name in full:
            total = int(full[name])
            break
    state.log_iterations = progress and bool(full.get("log", False)) and cmd.id == "iterative-deconvolve-3d"
    window = None
    if progress and bool(full.get("show", False)) and cmd.id == "iterative-deconvolve-3d" and \
            not bool(_j("ij.macro.Interpreter").isBatchMode()):  # batch mode: nothing to show, nothing left
        window = _IterationWindow(f"{full.get('output') or cmd.title} (iteration)")
    _check_java_heap(cmd, label, full, images, window is not None)
    volumes = _volume_count(images[image_params[0].name]) if image_params else 1
    callback = _progress_callback(cmd, label, total, window, volumes) if progress else None
    state.cancel_requested = False
    if progress:
        IJ.resetEscape()
        IJ.showStatus(f"{label}: running...  (Esc to cancel)")
    state.running = label
    t0 = time.perf_counter()
    from fijidecon.deconvolve import CancelledError

    try:
        run_values = _memory_budget(cmd, values, images.get(image_params[0].name) if image_params else None, label)
        with _log_to_imagej(label, cmd) as handler, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res, arr, out_cal = run_command(cmd, run_values, images, callback=callback,
                                            voxel_size_from_calibration=True)
        _log_warnings(label, caught, handler.messages, cmd)
        if cmd.id == "wiener":
            _log_wiener_choice(label, res, handler.messages)
    except CancelledError:  # Esc during a bricked run: no result
        state.cancel_requested = True
        return None, None
    except CommandError:
        raise
    except (ValueError, TypeError) as e:
        raise _CoreError(str(e)) from None
    except MemoryError as e:
        raise CommandError(str(e) or "not enough memory for this computation") from None
    except Exception as e:
        raise CommandError(f"{type(e).__name__}: {e}") from None
    finally:
        state.running = None
        state.log_iterations = False
        if window is not None:
            window.close()
        if progress:
            IJ.showProgress(1.0)
    state.last_seconds = time.perf_counter() - t0
    if "cancelled" in np.ravel(getattr(res, "stop_reason", None)).tolist() or (progress and (
            state.cancel_requested or (not total and bool(IJ.escapePressed())))):
        return None, res
    if cmd.id == "iterative-deconvolve-3d":
        _log_termination(label, res, progress and bool(full.get("log", False)))

    from fijidecon.fiji import convert

    if arr.dtype != np.float32 and arr.dtype not in (np.uint8, np.uint16):
        arr = arr.astype(np.float32)
    out_cal = _psf_length_unit(cmd, full, out_cal, label)
    title = _result_title(cmd, full, res, first_title)
    if _j("ij.WindowManager").getImage(title) is not None:  # ImageJ allows it; image=<title> then picks one
        note = (f"{label}: an image titled '{title}' is already open; the result has the same title (a macro's "
                "image=<title> will pick one of them: give another title)")
        state.notes.append(note)
        _j("ij.IJ").log(note)
    try:
        heap.check_bytes(int(np.size(arr)) * 4, label, f"its result ({'x'.join(map(str, arr.shape[::-1]))} float32)")
    except MemoryError as e:
        raise CommandError(str(e)) from None
    out = convert.to_imageplus(np.ascontiguousarray(arr), out_cal, title=title)
    if snapshots is not None:
        for k, snap in sorted((getattr(res, "snapshots", None) or {}).items()):
            if np.shape(snap) == np.shape(arr):
                snapshots.append(convert.to_imageplus(np.ascontiguousarray(snap, np.float32), out_cal,
                                                      title=f"{title}_iter{k}"))
    nz = int(out.getNSlices())
    if nz > 1:
        if not image_params:  # a generated PSF: show its centre plane (kc + 1)
            out.setSlice(nz // 2 + 1)
        elif first_imp is not None and int(first_imp.getNSlices()) == nz:
            out.setSlice(int(first_imp.getCurrentSlice()))
    return out, res


# ---------------------------------------------------------------------------------------
# running macros (used by ``fijidecon macro`` and by the tests)
# ---------------------------------------------------------------------------------------
@dataclass
class MacroResult:
    """Outcome of :func:`run_macro`."""

    ok: bool
    error: str | None
    returned: str | None
    log: str
    dialogs: list = field(default_factory=list)  # (title, text) of dialogs closed meanwhile
    seconds: float = 0.0
    line: int | None = None  # macro line of the error


def open_dialogs() -> list:
    """The visible ``java.awt.Dialog`` windows (error messages, GenericDialogs …)."""
    Window = _j("java.awt.Window")
    Dialog = _j("java.awt.Dialog")
    return [w for w in Window.getWindows() if Dialog.class_.isInstance(w) and w.isShowing()]


def dialog_text(dlg) -> str:
    """All text shown in a dialog (labels and ImageJ ``MultiLineLabel`` messages)."""
    Container = _j("java.awt.Container")
    Label = _j("java.awt.Label")
    MultiLineLabel = _j("ij.gui.MultiLineLabel")
    TextComponent = _j("java.awt.TextComponent")
    field_ = MultiLineLabel.class_.getDeclaredField("lines")
    field_.setAccessible(True)
    out: list[str] = []

    def walk(c):
        if MultiLineLabel.class_.isInstance(c):
            lines = field_.get(c)
            if lines is not None:
                out.extend(str(s) for s in lines)
        elif Label.class_.isInstance(c):
            out.append(str(c.getText()))
        elif TextComponent.class_.isInstance(c):
            out.append(str(c.getText()))
        if Container.class_.isInstance(c):
            for x in c.getComponents():
                walk(x)

    walk(dlg)
    return "\n".join(s for s in out if s)


def close_dialogs(press: str = "ok") -> list[tuple[str, str]]:
    """Close every visible dialog, pressing OK (or Cancel); return (title, text) of each."""
    import jpype

    GenericDialog = _j("ij.gui.GenericDialog")
    ActionEvent = _j("java.awt.event.ActionEvent")
    closed = []
    for d in open_dialogs():
        closed.append((str(d.getTitle()), dialog_text(d)))
        if GenericDialog.class_.isInstance(d):
            gd = jpype.JObject(d, GenericDialog)
            buttons = gd.getButtons()
            btn = buttons[0] if press == "ok" or len(buttons) < 2 or buttons[1] is None else buttons[1]
            if btn is not None:
                gd.actionPerformed(ActionEvent(btn, ActionEvent.ACTION_PERFORMED, str(btn.getLabel())))
                continue
        d.dispose()
    return closed


def run_macro(code: str, arg: str = "", *, timeout: float = 600.0, ignore_errors: bool = True,
              dismiss_dialogs: bool = True, clear_log: bool = False) -> MacroResult:
    """Run ImageJ macro text on a Java thread and wait for it.

    Parameters
    ----------
    code:
        Macro language source.
    arg:
        Argument for ``getArgument()``.
    timeout:
        Seconds to wait; then the macro is aborted and ``ok`` is false.
    ignore_errors:
        Macro errors do not open a dialog; their message is returned in ``error``.
    dismiss_dialogs:
        Close any modal dialog that opens meanwhile (message boxes in a headless run),
        recording its title and text in ``dialogs``.  An error dialog makes ``ok`` false,
        and so does a fijidecon command cancelled (Esc, or Cancel in its dialog): ``error``
        is then e.g. ``"Richardson-Lucy Deconvolution: cancelled (Esc)"``.
    clear_log:
        Clear the Log window first.  Either way ``log`` holds this run's Log lines only (the
        Log's earlier text is cut off; the whole Log when the macro cleared it itself).

    Returns
    -------
    MacroResult

    Example
    -------
    >>> r = run_macro('print("hello");')     # doctest: +SKIP
    >>> r.ok, r.log.strip()                  # doctest: +SKIP
    (True, 'hello')
    """
    import jpype

    install()
    IJ = _j("ij.IJ")
    Interpreter = _j("ij.macro.Interpreter")
    Thread = _j("java.lang.Thread")
    if clear_log:
        IJ.log("\\Clear")
    before = str(IJ.getLog() or "")
    state.last_error = state.reported_error = state.cancel_message = None
    interp = Interpreter()
    if ignore_errors:
        interp.setIgnoreErrors(True)
    box: dict[str, Any] = {}

    @jpype.JImplements("java.lang.Runnable")
    class _Run:
        @jpype.JOverride
        def run(self):
            try:
                r = interp.run(code, arg)
                box["returned"] = None if r is None else str(r)
            except BaseException as e:  # "Macro canceled" and friends
                box["exception"] = str(e)

    t0 = time.perf_counter()
    th = Thread(_Run(), "Run$_fijidecon_macro")
    th.start()
    dialogs: list = []
    deadline = time.monotonic() + timeout
    while th.isAlive():
        th.join(200)
        if dismiss_dialogs and th.isAlive():
            dialogs.extend(close_dialogs())
        if time.monotonic() > deadline:
            state.cancel_requested = True  # a running fijidecon command stops at its next iteration/brick
            interp.abortMacro()
            th.join(2000)
            box["timed_out"] = f"timed out after {timeout:g} s"
            break
    err = interp.getErrorMessage()
    error = str(err) if err is not None else None
    if "timed_out" in box:  # aborting leaves the interpreter with e.g. "'}' expected": say what happened
        error = box["timed_out"]
    if state.reported_error is not None:  # a command's own message; aborting inside a block
        error = state.reported_error      # leaves the interpreter with e.g. "'}' expected"
    if error is None and "exception" in box:
        # "Macro canceled" is also how exit() ends a macro: an error only if one was reported
        error = box["exception"] if "Macro canceled" not in box["exception"] else state.last_error
    if state.cancel_message is not None and "timed_out" not in box:  # a command cancelled (Esc, Cancel): no
        error = state.cancel_message  # result; aborting inside a block leaves the interpreter with "'}' expected"
    if error is None:
        for title, text in dialogs:
            if "error" in title.lower():
                error = f"{title}: {text}"
                break
    log = str(IJ.getLog() or "")
    log = log[len(before):] if before and log.startswith(before) else log  # this run's lines
    try:
        line = int(interp.getLineNumber()) if error is not None else None
    except Exception:
        line = None
    return MacroResult(
        line=line,
        ok=error is None and not bool(interp.wasError()),
        error=error,
        returned=box.get("returned"),
        log=log,
        dialogs=dialogs,
        seconds=time.perf_counter() - t0,
    )


def screenshot(path: str) -> str:
    """Save a PNG screenshot of the whole (possibly virtual) screen; return the path.

    Uses ``java.awt.Robot`` (works under Xvfb).

    Example
    -------
    >>> screenshot("/tmp/imagej.png")        # doctest: +SKIP
    '/tmp/imagej.png'
    """
    Robot = _j("java.awt.Robot")
    Rectangle = _j("java.awt.Rectangle")
    Toolkit = _j("java.awt.Toolkit")
    ImageIO = _j("javax.imageio.ImageIO")
    File = _j("java.io.File")
    Toolkit.getDefaultToolkit().sync()
    img = Robot().createScreenCapture(Rectangle(Toolkit.getDefaultToolkit().getScreenSize()))
    if not ImageIO.write(img, "png", File(str(path))):
        raise RuntimeError(f"path: could not write a PNG to {path!r}")
    return str(path)


def close_images() -> int:
    """Close every open image (batch-mode images included) without asking; return how many."""
    WindowManager = _j("ij.WindowManager")
    ids = WindowManager.getIDList()
    n = 0
    for i in (ids if ids is not None else []):
        imp = WindowManager.getImage(int(i))
        if imp is not None:
            imp.changes = False
            imp.close()
            n += 1
    return n


def image(title: str):
    """The open ``ImagePlus`` with this title (``None`` if there is none)."""
    return _j("ij.WindowManager").getImage(str(title))
