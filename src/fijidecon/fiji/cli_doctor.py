"""``fijidecon doctor``: a click command the main CLI registers (``cli.add_command(doctor)``).

Example
-------
.. code-block:: console

    $ fijidecon doctor            # Java, Maven cache, display
    $ fijidecon doctor --start    # ... and start ImageJ in a child process
    $ fijidecon doctor --json
"""

from __future__ import annotations

import json
import sys

import click


@click.command("doctor")
@click.option("--start/--no-start", default=False, show_default=True,
              help="Also start the JVM with ImageJ in a child process and time it.")
@click.option("--offline", is_flag=True, default=False,
              help="Do not probe Maven Central when the cache is incomplete.")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the checks as JSON.")
def doctor(start: bool, offline: bool, as_json: bool) -> None:
    """Check Java, the Maven cache and the display for the ImageJ bridge, and say what to fix."""
    from fijidecon.fiji.doctor import format_checks, run_checks

    checks = run_checks(start=start, network=not offline)
    if as_json:
        click.echo(json.dumps([c.as_dict() for c in checks], indent=2))
    else:
        click.echo(format_checks(checks))
    if not all(c.ok for c in checks):
        sys.exit(1)


__all__ = ["doctor"]
