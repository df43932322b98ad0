"""The terminal face: ``fijidecon psf …``, ``fijidecon deconvolve …``, ``fijidecon demo``.

Every PSF/deconvolution sub-command is generated from its description in
:mod:`fijidecon.commands` (options, defaults, choices, help), so the CLI cannot drift
from the ImageJ dialogs.  Errors print one line and exit with status 2; outputs are
written atomically and an existing file is never replaced without ``--overwrite``.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import click
import numpy as np

from . import __version__
from .calibration import Calibration
from .commands import Command, all_commands
from .commands.run import accepts, output_calibration, run_command  # noqa: F401  (accepts, output_calibration: re-exported)

EXIT_USAGE = 2

# optional faces contributed by fijidecon.fiji (imported lazily; no JVM is started)
_EXTRA_COMMANDS = (
    ("fijidecon.fiji.cli_doctor", "doctor"),
    ("fijidecon.fiji.cli_imagej", "imagej"),
    ("fijidecon.fiji.cli_imagej", "macro"),
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fijidecon")
def cli() -> None:
    """Microscopy PSF generation and deconvolution."""


@cli.group()
def psf() -> None:
    """Make a point spread function."""


@cli.group()
def deconvolve() -> None:
    """Deconvolve an image with a PSF."""


# ----------------------------------------------------------------------------------
# generated commands
# ----------------------------------------------------------------------------------

def _click_option(p) -> click.Option:
    help_text = p.help + (f" [unit: {p.unit}]" if p.unit and p.unit not in ("px",) else "")
    if p.kind == "bool":
        return click.Option([f"{p.cli_flag}/--no-{p.cli_flag[2:]}", p.name], default=p.default,
                            show_default=True, help=help_text)
    if p.kind == "choice":
        names = [str(v).lower() if not isinstance(v, bool) else lab.lower() for lab, v in p.choices]
        default = names[[v for _, v in p.choices].index(p.default)]
        return click.Option([p.cli_flag, p.name], type=click.Choice(names, case_sensitive=False),
                            default=default, show_default=True, help=help_text)
    typ = {"float": float, "int": int, "string": str}[p.kind]
    return click.Option([p.cli_flag, p.name], type=typ, default=p.face_default, show_default=True, help=help_text)


def _choice_value(p, text: str) -> Any:
    for lab, v in p.choices:
        if text.lower() in (lab.lower(), str(v).lower()):
            return v
    raise click.BadParameter(text, param_hint=p.cli_flag)


def _result_record(result: Any) -> dict[str, Any]:
    if isinstance(result, np.ndarray) or not dataclasses.is_dataclass(result):
        return {}
    rec: dict[str, Any] = {}
    for f in dataclasses.fields(result):
        v = getattr(result, f.name)
        if f.name == "image" or isinstance(v, np.ndarray) or isinstance(v, dict):
            continue
        if isinstance(v, (list, tuple)) and any(isinstance(x, np.ndarray) for x in v):
            continue
        rec[f.name] = v
    return rec


def _make_command(cmd: Command, name: str) -> click.Command:
    params: list[click.Parameter] = []
    images = [p for p in cmd.params if p.kind == "image"]
    for p in images:
        params.append(click.Argument([p.name], type=click.Path(exists=True, dir_okay=False)))
    for p in cmd.params:
        if p.api and p.kind != "image":
            params.append(_click_option(p))
    params.append(click.Option(["-o", "--output", "output_path"], required=True, type=click.Path(dir_okay=False),
                               help="Output TIFF (ImageJ hyperstack with calibration). A JSON sidecar "
                                    "OUTPUT.json (e.g. result.tif.json) records parameters, input hashes, "
                                    "iterations and timings."))
    if cmd.extras.get("spacing"):
        params.append(click.Option(["--unit"], default=cmd.extras.get("unit", "nm"), show_default=True,
                                   help="Length unit of the spacings, written into the TIFF calibration."))
    params.append(click.Option(["--overwrite"], is_flag=True, help="Replace existing output files."))
    params.append(click.Option(["-q", "--quiet"], is_flag=True, help="No progress bar or summary."))

    def callback(**kw: Any) -> None:
        _run(cmd, kw)

    return click.Command(name, params=params, callback=callback, help=cmd.summary, short_help=cmd.summary)


def _run(cmd: Command, kw: dict[str, Any]) -> None:
    from . import io

    out = Path(kw.pop("output_path"))
    overwrite = kw.pop("overwrite")
    quiet = kw.pop("quiet")
    unit = kw.pop("unit", None)
    for path in (out, io.sidecar_path(out)):  # refuse before computing anything
        if path.exists() and not overwrite:
            raise click.ClickException(f"{path} exists (use --overwrite to replace it)")
    if not out.parent.exists():
        raise click.ClickException(f"output folder {out.parent} does not exist")
    values: dict[str, Any] = {}
    for p in cmd.params:
        if p.kind == "image" or not p.api:
            continue
        v = kw[p.name]
        values[p.name] = _choice_value(p, v) if p.kind == "choice" else v
    kwargs = cmd.api_kwargs(values)
    images: dict[str, tuple[np.ndarray, Calibration]] = {}
    records = []
    for p in (q for q in cmd.params if q.kind == "image"):
        arr, cal = io.read_image(kw[p.name])
        images[p.name] = (arr, cal)
        records.append({"parameter": p.name, "path": os.path.abspath(kw[p.name]),
                        "sha256": io.sha256_file(kw[p.name]), "shape": list(arr.shape), "dtype": str(arr.dtype),
                        "calibration": dataclasses.asdict(cal)})
    total = cmd.extras.get("progress")
    t0 = time.perf_counter()
    bars: list[Any] = []  # created at the first iteration, so a failed set-up prints one line only
    callback = None
    if total and not quiet and kwargs.get(total, 0) > 0:

        def progress(first: Any, second: Any = None) -> None:
            # (iteration, figure) or (IterationFigures, estimate): see each core function
            if isinstance(first, (int, np.integer)):
                it, figure = int(first), float(second)
            else:
                it, figure = int(first.iteration), float(getattr(first, "relative_change", float("nan")))
            if not bars:
                bars.append(click.progressbar(length=int(kwargs[total]), label=cmd.title, file=sys.stderr))
                bars[0].__enter__()
            bars[0].label = f"{cmd.title} (change {figure:.4g})"
            bars[0].update(it - bars[0].pos)

        callback = progress
    try:
        result, image, cal = run_command(cmd, values, images, callback=callback, unit=unit,
                                         voxel_size_from_calibration=True)
    finally:
        for bar in bars:
            bar.__exit__(None, None, None)
    t1 = time.perf_counter()
    io.write_image(out, image, cal, overwrite=overwrite,
                   description={"fijidecon": __version__, "command": cmd.title})
    t2 = time.perf_counter()
    record = {
        "fijidecon_version": __version__,
        "command": cmd.title,
        "cli": " ".join(sys.argv[1:]) if sys.argv else "",
        "parameters": kwargs,
        "inputs": records,
        "output": {"path": os.path.abspath(out), "shape": list(image.shape), "dtype": str(image.dtype),
                   "calibration": dataclasses.asdict(cal)},
        "result": _result_record(result),
        "timings_s": {"compute": t1 - t0, "write": t2 - t1},
    }
    io.write_sidecar(out, record, overwrite=overwrite)
    if not quiet:
        extra = ""
        if "iterations" in record["result"]:
            extra = f", {record['result']['iterations']} iterations ({record['result'].get('stop_reason', '')})"
        click.echo(f"wrote {out} {tuple(image.shape)} {image.dtype}{extra} in {t1 - t0:.2f} s", err=True)


def _register_generated() -> None:
    for cmd in all_commands():
        group_name, name = cmd.extras.get("cli", ("psf" if not any(p.kind == "image" for p in cmd.params)
                                                   else "deconvolve", cmd.id))
        group = {"psf": psf, "deconvolve": deconvolve}[group_name]
        if name not in group.commands:
            group.add_command(_make_command(cmd, name))


# ----------------------------------------------------------------------------------
# demo: the main job end to end on the bundled sample
# ----------------------------------------------------------------------------------

@cli.command()
@click.option("-o", "--out", "out_dir", default="fijidecon-demo", show_default=True,
              type=click.Path(file_okay=False), help="Folder for the outputs (created).")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
def demo(out_dir: str, overwrite: bool) -> None:
    """Make a PSF, deconvolve the bundled sample stack, write TIFFs and a PNG panel."""
    from . import demo as demo_mod

    paths = demo_mod.run(Path(out_dir), overwrite=overwrite)
    for p in paths:
        click.echo(str(p))


def _register_extras() -> None:
    for mod_name, attr in _EXTRA_COMMANDS:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            if exc.name and (exc.name == mod_name or mod_name.startswith(exc.name)):
                continue
            raise
        obj = getattr(mod, attr, None)
        if isinstance(obj, click.Command) and attr not in cli.commands:
            cli.add_command(obj, attr)


_register_generated()
_register_extras()


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI; expected errors become one line and exit code 2."""
    try:
        cli.main(args=argv, prog_name="fijidecon", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except click.ClickException as exc:
        click.echo(f"Error: {exc.format_message()}", err=True)
        return EXIT_USAGE if exc.exit_code in (1, 2) else exc.exit_code
    except (ValueError, TypeError, FileExistsError, FileNotFoundError, PermissionError, IsADirectoryError,
            NotADirectoryError, MemoryError) as exc:
        click.echo(f"Error: {exc}", err=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
