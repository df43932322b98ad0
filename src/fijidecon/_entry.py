"""The ``fijidecon`` console command: Ctrl-C while the CLI's modules import (the first second
or so) exits 130 with one line, as during a run, not with a traceback."""

from __future__ import annotations

import sys


def main() -> int:
    """Import the CLI, then run it (:func:`fijidecon.cli.main`)."""
    try:
        from .cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        return 130
    return cli_main()
