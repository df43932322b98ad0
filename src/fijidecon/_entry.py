"""The ``fijidecon`` console command (and ``python -m fijidecon``): Ctrl-C or SIGTERM while the CLI's
modules import (the first second or so) says one line, as during a run, not a traceback; after the
clean-up the process ends by the signal (a shell's ``$?`` is 130 or 143), so that a batch loop stops."""

from __future__ import annotations

import os
import signal
import sys


class _TerminatedEarly(BaseException):
    """SIGTERM while the CLI imports."""


def _raise_terminated(signum, frame):  # noqa: ARG001
    raise _TerminatedEarly


def main() -> int:
    """Import the CLI, then run it (:func:`fijidecon.cli.main`, which handles signals itself).  A run
    stopped by Ctrl-C or SIGTERM ends, once cleaned up, by that signal (:func:`_end_by_signal`)."""
    return _end_by_signal(_main())


def _end_by_signal(status: int) -> int:
    """Status 130 (Ctrl-C) or 143 (SIGTERM): the process ends by that signal, its default action, so
    that a calling shell sees it was interrupted (``$?`` is 130 or 143 all the same) and a batch loop
    stops there; a plain ``exit 130`` told bash the program had handled Ctrl-C itself, and the loop
    went on with the next file.  Any other status is returned."""
    sig = {128 + signal.SIGINT: signal.SIGINT, 128 + signal.SIGTERM: signal.SIGTERM}.get(status)
    if sig is None:
        return status
    sys.stdout.flush()
    sys.stderr.flush()
    lazy_io = sys.modules.get(f"{__package__}.lazy_io")
    if lazy_io is not None:  # the signal skips atexit: a failed write's partial, rewritten by a late brick
        lazy_io.remove_failed_partials(settle=0.2)
    signal.signal(sig, signal.SIG_DFL)
    os.kill(os.getpid(), sig)
    return status  # pragma: no cover - not reached: the signal ends the process


def _main() -> int:
    own = signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    if own:
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        from ._address_space import cap_malloc_arenas

        cap_malloc_arenas()  # under ulimit -v: before the imports start threads (each may add an arena)
        from .cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        return 130
    except _TerminatedEarly:
        sys.stderr.write("Terminated.\n")
        return 128 + signal.SIGTERM
    finally:
        if own:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return cli_main()
