"""The ImageJ faces of the command line: ``fijidecon imagej`` and ``fijidecon macro``.

``fijidecon imagej``
    Opens ImageJ 1.x (from the pinned Maven Central artifacts) with every fijidecon
    command installed under *Plugins › Deconvolution*; returns when ImageJ is closed.
``fijidecon macro FILE.ijm [ARG]``
    Runs an ImageJ macro without a desktop: when there is no display (Linux, ``DISPLAY``
    unset) a private ``Xvfb`` is started and stopped afterwards.  The Log window is
    printed to standard output; a macro error is printed to standard error and the
    exit status is 1.  In ``ARG``, ``{sample}`` is replaced by the path of the bundled
    sample image.

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
import time
from pathlib import Path

import click

__all__ = ["imagej_command", "macro_command", "imagej", "macro", "main", "ensure_display", "start_xvfb",
           "sample_path"]

_XVFB: dict = {}


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


@click.command("imagej")
@click.option("--heap", default=None, help="Maximum Java heap, e.g. 4g (default $FIJIDECON_HEAP or 4g).")
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
@click.option("--heap", default=None, help="Maximum Java heap, e.g. 4g.")
@click.option("--timeout", type=float, default=3600.0, show_default=True, help="Seconds before the macro is aborted.")
@click.option("--show-imagej", is_flag=True, help="Show ImageJ's main window (e.g. for screenshots).")
def macro_command(file: str, arg: str, heap: str | None, timeout: float, show_imagej: bool) -> None:
    """Run an ImageJ macro FILE (with optional argument ARG) and print the Log window.

    Exits with status 1 when the macro fails.  Without a display, a private Xvfb is
    started.  "{sample}" in ARG becomes the path of the bundled sample image (also in the
    Java system property "fijidecon.sample").
    """
    text = Path(file).read_text()
    arg = arg.replace("{sample}", sample_path())
    commands, _ = _start(heap, show=show_imagej)
    from fijidecon.fiji import runtime

    # macros can find the bundled sample: call("java.lang.System.getProperty", "fijidecon.sample")
    runtime.jimport("java.lang.System").setProperty("fijidecon.sample", sample_path())
    r = commands.run_macro(text, arg, timeout=timeout, ignore_errors=True, dismiss_dialogs=True)
    if r.log:
        click.echo(r.log.rstrip("\n"))
    for title, msg in r.dialogs:
        if not r.ok or "error" not in title.lower():
            click.echo(f"[{title}] {msg}", err=True)
    if not r.ok:
        where = f" line {r.line}" if r.line else ""
        click.echo(f"Macro error in {file}{where}: {r.error}", err=True)
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
