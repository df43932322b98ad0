"""The ``fijidecon`` console command: Ctrl-C or SIGTERM while the CLI's modules import (the
first second or so) exits 130 or 143 with one line, as during a run, not with a traceback or
killed by the signal."""

from __future__ import annotations

import signal
import sys


class _TerminatedEarly(BaseException):
    """SIGTERM while the CLI imports."""


def _raise_terminated(signum, frame):  # noqa: ARG001
    raise _TerminatedEarly


def main() -> int:
    """Import the CLI, then run it (:func:`fijidecon.cli.main`, which handles signals itself)."""
    own = signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    if own:
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
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
