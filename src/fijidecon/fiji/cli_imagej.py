"""The ImageJ faces of the command line: ``fijidecon imagej`` and ``fijidecon macro``.

``fijidecon imagej``
    Opens ImageJ 1.x (from the pinned Maven Central artifacts) with every fijidecon
    command installed under *Plugins › Deconvolution*; returns when ImageJ is closed.
``fijidecon macro FILE.ijm [ARG]``
    Runs an ImageJ macro without a desktop: when there is no display (Linux, ``DISPLAY``
    unset) a private ``Xvfb`` is started and stopped afterwards.  The Log window is
    printed to standard output; a macro error is printed to standard error and the
    exit status is 1.  In ``ARG``, ``{sample}`` is replaced by the path of the bundled
    sample image.  ``--timeout`` always ends the run: the macro is aborted at the
    timeout, and a JVM that does not stop (a command that never checks for cancellation,
    a heap so full that the JVM only collects garbage) is ended with the process
    :data:`GRACE_S` seconds later ("timed out" on standard error, exit status 1, or 137 when
    even Python is stuck; see :class:`Watchdog`).  Starting the JVM and ImageJ may take
    :data:`STARTUP_S` seconds more.

Both are ``click`` commands; :data:`imagej_command` and :data:`macro_command` are added
to the main ``fijidecon`` group by :mod:`fijidecon.cli`.  Also runnable as
``python -m fijidecon.fiji.cli_imagej macro FILE.ijm [ARG]``.

Example
-------
.. code-block:: console

    $ fijidecon macro examples/main_job.ijm "input={sample} outdir=main_job_out"
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import click

__all__ = ["imagej_command", "macro_command", "imagej", "macro", "main", "ensure_display", "start_xvfb",
           "sample_path", "Watchdog", "GRACE_S", "STARTUP_S"]

_XVFB: dict = {}
#: Seconds after ``--timeout`` at which a macro run that did not stop is ended with its process.
GRACE_S = 5.0


#: Seconds allowed for starting the JVM and ImageJ before ``--timeout`` starts counting.
STARTUP_S = 120.0

#: The watchdog process: reads "DEADLINE\tMESSAGE" lines (DEADLINE on the system's monotonic
#: clock) from stdin; at the deadline it writes MESSAGE to stderr and SIGKILLs its parent;
#: at end of input (the parent closed the pipe or is gone) it exits quietly.
_WATCHDOG_CODE = r"""
import os, select, signal, sys, time
parent = int(sys.argv[1])
deadline, message = float("inf"), ""
buf = b""
while True:
    wait = deadline - time.monotonic()
    if wait <= 0:
        if message:
            os.write(2, message.encode(errors="replace") + b"\n")
        try:
            os.kill(parent, signal.SIGKILL)
        except ProcessLookupError:
            pass
        sys.exit(0)
    ready, _, _ = select.select([0], [], [], min(wait, 1.0))
    if os.getppid() != parent:
        sys.exit(0)
    if ready:
        chunk = os.read(0, 65536)
        if not chunk:
            sys.exit(0)
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            when, _, text = line.decode(errors="replace").partition("\t")
            deadline, message = float(when), text
"""


class Watchdog:
    """Ends this process when a run overruns its deadline, whatever the JVM is doing.

    The macro itself is aborted at the timeout by :func:`fijidecon.fiji.commands.run_macro`;
    that needs the JVM's cooperation (the interpreter's next statement, a command's
    ``callback``).  A command busy in code that never checks, or a JVM thrashing in
    garbage collection with a full heap (the main thread then waits in a Java call,
    holding the GIL), does not stop.  So two guards watch the deadline:

    * a Python thread: at the deadline it prints the message to standard error and leaves
      with ``os._exit(status)`` (the JVM and its threads go with the process; a private
      Xvfb exits with its last client);
    * a small separate process, for when that thread cannot run (GIL held): 3 s later it
      prints the message and sends this process ``SIGKILL`` (status 137).

    :meth:`arm` sets (or moves) the deadline; :meth:`close` disarms both.  Also a context
    manager (armed with ``seconds`` on entry).
    """

    def __init__(self, seconds: float | None = None, message: str = "timed out", status: int = 1) -> None:
        self.seconds = seconds
        self.message = message
        self.status = int(status)
        self._deadline = float("inf")
        self._wake = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen | None = None

    def arm(self, seconds: float, message: str | None = None) -> None:
        """End the process ``seconds`` from now (unless re-armed or closed before)."""
        if message is not None:
            self.message = message
        with self._wake:
            self._deadline = time.monotonic() + float(seconds)
            self._wake.notify_all()
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="fijidecon-macro-watchdog", daemon=True)
            self._thread.start()
        try:
            if self._proc is None:
                self._proc = subprocess.Popen([sys.executable, "-c", _WATCHDOG_CODE, str(os.getpid())],
                                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
            line = f"{self._deadline + 3.0!r}\t{' '.join(self.message.split())}\n"
            self._proc.stdin.write(line.encode())
            self._proc.stdin.flush()
        except OSError:  # no process watchdog: the thread remains
            self._proc = None

    def _watch(self) -> None:
        with self._wake:
            while not self._closed:
                wait = self._deadline - time.monotonic()
                if wait <= 0:
                    break
                self._wake.wait(min(wait, 3600.0))
            if self._closed:
                return
        try:
            if self.message:  # "": the error was already reported
                os.write(2, (self.message.rstrip("\n") + "\n").encode(errors="replace"))
        finally:
            os._exit(self.status)

    def close(self) -> None:
        """Disarm: the thread ends, the watchdog process exits."""
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        if self._proc is not None:
            try:
                self._proc.stdin.close()
                self._proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
            self._proc = None

    def __enter__(self) -> "Watchdog":
        if self.seconds is not None:
            self.arm(self.seconds)
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def sample_path() -> str:
    """Path of the bundled sample image (``fijidecon/data/sample.tif``)."""
    return str(Path(__file__).resolve().parents[1] / "data" / "sample.tif")


def _stop_xvfb() -> None:
    proc = _XVFB.pop("proc", None)
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()


def start_xvfb(*, terminate: bool = True) -> str:
    """Start a private ``Xvfb`` on a free display number; return ``":N"``.

    The process is stopped when Python exits (an ``atexit`` hook registered now, i.e.
    before the JVM starts, so it runs after the JVM's shutdown).  With ``terminate``
    Xvfb also exits by itself when its last X client disconnects; the test session
    passes ``False`` because its subprocesses connect and disconnect meanwhile.

    Raises
    ------
    RuntimeError
        When Xvfb is not installed or reports no display number.
    """
    exe = shutil.which("Xvfb")
    if exe is None:
        raise RuntimeError(
            "no display (DISPLAY is unset) and Xvfb is not installed: install it "
            "(Debian/Ubuntu: apt-get install xvfb) or run on a desktop"
        )
    r, w = os.pipe()
    proc = subprocess.Popen(
        [exe, "-displayfd", str(w), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"]
        + (["-terminate"] if terminate else []),
        pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(w)
    _XVFB["proc"] = proc
    atexit.register(_stop_xvfb)
    buf = b""
    deadline = time.monotonic() + 20
    with os.fdopen(r, "rb", buffering=0) as f:
        while not buf.endswith(b"\n") and time.monotonic() < deadline:
            chunk = f.read(16)
            if not chunk:
                break
            buf += chunk
    if not buf.strip():
        _stop_xvfb()
        raise RuntimeError("Xvfb did not start (no display number reported)")
    return ":" + buf.decode().strip()


def ensure_display() -> str | None:
    """Make sure AWT has a display: on Linux without ``DISPLAY``, start a private Xvfb.

    Returns the display (``":N"``) or ``None`` on platforms that need none.  The Xvfb
    process is stopped when Python exits.

    Raises
    ------
    click.ClickException
        When a display is needed and ``Xvfb`` is not installed.
    """
    if not sys.platform.startswith("linux"):
        return None
    if os.environ.get("DISPLAY"):
        return os.environ["DISPLAY"]
    try:
        os.environ["DISPLAY"] = start_xvfb()
    except RuntimeError as e:
        raise click.ClickException(str(e)) from None
    return os.environ["DISPLAY"]


def _start(heap: str | None, show: bool):
    from fijidecon.fiji import commands, runtime

    ensure_display()
    try:
        runtime.start(heap=heap, headless=False)
        runtime.imagej(show=show)
    except RuntimeError as e:
        raise click.ClickException(str(e)) from None
    labels = commands.install()
    return commands, labels


def _exit(code: int) -> None:
    """Leave without waiting for AWT's threads (they would keep the JVM alive).

    A private Xvfb runs with ``-terminate``: it exits by itself when our X connection
    closes.  Stopping it first would make AWT's X error handler exit the JVM with 1.
    """
    from fijidecon.fiji import runtime

    sys.stdout.flush()
    sys.stderr.flush()
    if not runtime.is_started():
        _stop_xvfb()
    os._exit(code)


def _full_heap_hint() -> str:
    """After a failed macro: "; the Java heap is full (...)" when it is (an ``OutOfMemoryError``
    in ImageJ's own code gives messages such as "Fatal error occurred"), else ""."""
    from fijidecon.fiji import heap, runtime

    try:
        free, mx = runtime.java_heap(collect=True)
    except Exception:  # noqa: BLE001 - a JVM in trouble: no hint
        return ""
    if free >= heap.margin(mx):
        return ""
    return (f"; the Java heap is full ({free / 2**20:.1f} MB free of {mx / 2**20:.0f} MB): give ImageJ more "
            "memory with --heap")


def _check_heap_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--heap``: a size the JVM can start with (see :func:`fijidecon.fiji.runtime.start`)."""
    if value is None:
        return None
    from fijidecon.fiji import runtime

    try:
        runtime._parse_heap(value)
    except (TypeError, ValueError) as e:
        raise click.BadParameter(str(e).removeprefix("heap: "), ctx=ctx, param=param) from None
    return value


@click.command("imagej")
@click.option("--heap", default=None, callback=_check_heap_option,
              help="Maximum Java heap, e.g. 4g (at least 10m; default $FIJIDECON_HEAP or 4g).")
@click.option("--macro", "macro_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Run this macro once ImageJ is open.")
@click.option("--check", is_flag=True, help="Print the installed commands and exit (no waiting).")
def imagej_command(heap: str | None, macro_file: str | None, check: bool) -> None:
    """Open ImageJ with fijidecon's commands under Plugins > Deconvolution."""
    commands, labels = _start(heap, show=True)
    click.echo(f"ImageJ {_version()} with {len(labels)} fijidecon commands:")
    for label, cmd in labels.items():
        click.echo(f"  {cmd.menu.replace('>', ' > ')} > {label}")
    code = 0
    if macro_file:
        r = commands.run_macro(Path(macro_file).read_text(), "", dismiss_dialogs=False, ignore_errors=False)
        code = 0 if r.ok else 1
    if check:
        _exit(code)
    from fijidecon.fiji import runtime

    IJ = runtime.jimport("ij.IJ")
    click.echo("Close ImageJ (File > Quit) to return.")
    try:
        while True:
            inst = IJ.getInstance()
            if inst is None or not inst.isShowing():
                break
            time.sleep(0.3)
    except KeyboardInterrupt:
        pass
    _exit(code)


def _version() -> str:
    from fijidecon.fiji import runtime

    return str(runtime.jimport("ij.IJ").getVersion())


@click.command("macro")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.argument("arg", required=False, default="")
@click.option("--heap", default=None, callback=_check_heap_option,
              help="Maximum Java heap, e.g. 4g (at least 10m; default $FIJIDECON_HEAP or 4g).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=3600.0, show_default=True,
              help="Seconds before the macro is aborted; a run that does not stop then is ended "
                   f"{GRACE_S:g} s later (exit status 1).")
@click.option("--show-imagej", is_flag=True, help="Show ImageJ's main window (e.g. for screenshots).")
def macro_command(file: str, arg: str, heap: str | None, timeout: float, show_imagej: bool) -> None:
    """Run an ImageJ macro FILE (with optional argument ARG) and print the Log window.

    Exits with status 1 when the macro fails or times out (a run that does not stop at
    the timeout is ended with the JVM a few seconds later).  A command whose images do
    not fit the Java heap (--heap) fails before it starts ("not enough memory: ...").
    Without a display, a private Xvfb is started.  "{sample}" in ARG becomes the path of
    the bundled sample image (also in the Java system property "fijidecon.sample").
    """
    text = Path(file).read_text()
    arg = arg.replace("{sample}", sample_path())
    dog = Watchdog()
    dog.arm(STARTUP_S, f"Macro error in {file}: ImageJ did not start within {STARTUP_S:g} s "
                       "(a Java heap too small? see --heap); ended")
    commands, _ = _start(heap, show=show_imagej)
    from fijidecon.fiji import runtime

    # macros can find the bundled sample: call("java.lang.System.getProperty", "fijidecon.sample")
    runtime.jimport("java.lang.System").setProperty("fijidecon.sample", sample_path())
    dog.arm(timeout + GRACE_S, f"Macro error in {file}: timed out after {timeout:g} s and did not stop; ended with "
                               f"the JVM {GRACE_S:g} s later (a command that does not check for cancellation, or a "
                               "Java heap too small: see --heap)")
    try:
        r = commands.run_macro(text, arg, timeout=timeout, ignore_errors=True, dismiss_dialogs=True)
    except Exception as e:  # noqa: BLE001 - a Java error out of the bridge itself, e.g. OutOfMemoryError
        line = f"Macro error in {file}: {' '.join(str(e).split()) or type(e).__name__}"
        dog.arm(GRACE_S, line)  # the hint needs the JVM, which may be stuck: then this line alone
        line += _full_heap_hint()
        dog.arm(GRACE_S, "")  # reported: a stuck exit ends silently (one error line)
        click.echo(line, err=True)
        _exit(1)
    hint = "" if r.ok else _full_heap_hint()  # still watched: the JVM may be stuck after an OutOfMemoryError
    if r.ok:
        dog.close()
    else:  # the error line below is the report: a hanging exit is ended silently
        dog.arm(GRACE_S, "")
    if r.log:
        click.echo(r.log.rstrip("\n"))
    for title, msg in r.dialogs:
        if not r.ok or "error" not in title.lower():
            click.echo(f"[{title}] {msg}", err=True)
    if not r.ok:
        where = f" line {r.line}" if r.line else ""
        click.echo(f"Macro error in {file}{where}: {r.error}{hint}", err=True)
        _exit(1)
    _exit(0)


#: Names under which :mod:`fijidecon.cli` looks the commands up.
imagej = imagej_command
macro = macro_command


@click.group()
def main() -> None:
    """fijidecon's ImageJ commands (also available as `fijidecon imagej` / `fijidecon macro`)."""


main.add_command(imagej_command)
main.add_command(macro_command)

if __name__ == "__main__":  # pragma: no cover
    main()
