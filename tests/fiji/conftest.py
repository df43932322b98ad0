"""Session fixtures for the ImageJ bridge tests: a real Xvfb, one JVM, one ij.ImageJ.

* ``display``: if ``DISPLAY`` is unset, a real ``Xvfb`` is started on a free display
  number (``-displayfd``) and killed when the test process ends (after the JVM shut
  down, so AWT never loses its X server under it).
* ``jvm``: the fijidecon runtime started once (pinned Maven Central artifacts, system JDK,
  not headless); returns :mod:`fijidecon.fiji.runtime`.
* ``ij1``: the running ``ij.ImageJ`` instance (created with ``NO_SHOW``).

Every test in ``tests/fiji`` is marked ``imagej``.  Tests are skipped only when Java
itself is missing; a missing Xvfb or Maven artifacts is an error, not a skip.
"""

from __future__ import annotations

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def pytest_collection_modifyitems(config, items):
    for item in items:
        if str(item.fspath).startswith(HERE):
            item.add_marker(pytest.mark.imagej)


def _java_missing_reason() -> str | None:
    try:
        import jpype  # noqa: F401
        import scyjava  # noqa: F401
    except ImportError as e:  # the bridge's Python side is not installed
        return f"scyjava/JPype not installed ({e}); pip install 'fijidecon[imagej]'"
    from fijidecon.fiji import runtime

    if runtime.find_java() is None:
        return "no Java (JDK/JRE 11+) found: install OpenJDK 17 or set JAVA_HOME"
    return None


_SESSION: dict = {}


def pytest_sessionfinish(session, exitstatus):
    _SESSION["status"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Leave the test process without the JVM's shutdown, as ``fijidecon imagej`` does.

    With AWT threads alive, the JVM's shutdown at interpreter exit segfaulted in about
    1 of 15 short sessions (exit code 139 after every test passed).  After the summary
    is printed, the process ends with pytest's status; the private Xvfb is stopped a
    second later by a detached ``kill`` (stopping it first would let AWT's X error
    handler exit the JVM with 1)."""
    import jpype

    if "status" not in _SESSION or not jpype.isJVMStarted():
        return
    from fijidecon.fiji import cli_imagej

    proc = cli_imagej._XVFB.get("proc")
    if proc is not None and proc.poll() is None:
        import subprocess

        subprocess.Popen(["sh", "-c", f"sleep 1; kill {proc.pid}"], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_SESSION["status"])


@pytest.fixture(scope="session")
def display() -> str:
    """The X display used by the tests (a fresh Xvfb when DISPLAY was unset)."""
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        from fijidecon.fiji.cli_imagej import start_xvfb

        # without -terminate: the X server outlives every X client of the session
        os.environ["DISPLAY"] = start_xvfb(terminate=False)
    return os.environ.get("DISPLAY", "")


@pytest.fixture(scope="session")
def jvm(display):
    """Start the fijidecon JVM once per test session; returns ``fijidecon.fiji.runtime``."""
    reason = _java_missing_reason()
    if reason:
        pytest.skip(reason)
    from fijidecon.fiji import runtime

    runtime.start(heap="2g", headless=False)
    return runtime


@pytest.fixture(scope="session")
def ij1(jvm):
    """The running ``ij.ImageJ`` instance (ImageJ 1.x, not shown)."""
    return jvm.imagej()


@pytest.fixture(scope="module")
def bridge(ij1):
    """``fijidecon.fiji.commands`` with every command installed in ImageJ's menus."""
    from fijidecon.fiji import commands

    commands.install()
    yield commands
    commands.close_dialogs()
    commands.close_images()


@pytest.fixture
def clean_bridge(bridge):
    """``bridge``, closing the dialogs and images a test left open."""
    yield bridge
    bridge.close_dialogs()
    bridge.close_images()
