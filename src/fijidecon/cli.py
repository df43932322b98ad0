"""The terminal face: ``fijidecon psf …``, ``fijidecon deconvolve …``, ``fijidecon info``, ``fijidecon demo``.

Every PSF/deconvolution sub-command is generated from its description in
:mod:`fijidecon.commands` (options, defaults, choices, help), so the CLI cannot drift
from the ImageJ dialogs.  Inputs keep their axes (ImageJ hyperstacks, OME-TIFF, ``.npy``
with ``--axes``); results are written in the input's axes with its calibration.  Errors
print one line and exit with status 2; an output that cannot be written is refused before
any computation; outputs are written atomically and an existing file is never replaced
without ``--overwrite``.  The package's notes (logger ``"fijidecon"``) are printed one per
line and stored in the sidecar, Python warnings become one ``Warning: …`` line each.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import logging
import os
import re
import shlex
import signal
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import click
import numpy as np

from . import __version__, _validate
from .calibration import Calibration, unit_factor
from .deconvolve._bricks import CancelledError
from .errors import InputError, OutputExistsError
from .commands import Command, all_commands
from .commands.run import accepts, output_calibration, rgb_planes_as_z, run_command  # noqa: F401  (accepts, output_calibration: re-exported)

EXIT_USAGE = 2
#: The output exists and --overwrite was not given: nothing was done (a batch re-run can skip it).
EXIT_EXISTS = 3
#: Commands whose core function takes a Dask array (lazy, bricked, any Dask scheduler).
_LAZY_COMMANDS = ("convolve", "wiener", "richardson-lucy")

# optional faces contributed by fijidecon.fiji (imported lazily; no JVM is started)
_EXTRA_COMMANDS = (
    ("fijidecon.fiji.cli_doctor", "doctor"),
    ("fijidecon.fiji.cli_imagej", "imagej"),
    ("fijidecon.fiji.cli_imagej", "macro"),
)

_AXES_HELP = ("Axes of the input image, one letter per axis in numpy order from T, C, Z, Y, X (e.g. CZYX): "
              "needed for .npy arrays whose axes are not the default (2D YX, 3D ZYX, 4D CZYX, 5D TCZYX); "
              "overrides a TIFF's own axes.")
_VOXEL_HELP = ("Voxel size of the input image, e.g. '0.2,0.065,0.065 um' (Z,Y,X; 'Y,X UNIT' for 2D), for files "
               "without a calibration (.npy, plain TIFF); it replaces the file's own, is used to match a calibrated "
               "PSF, and is written into the output.")
_PSF_VOXEL_HELP = ("Voxel size of the PSF file(s), e.g. '0.2,0.065,0.065 um' (Z,Y,X), for a PSF without a calibration "
                   "(a raw bead stack, .npy); it replaces the files' own, and the PSF is resampled to the image's "
                   "voxel size when they differ.")
_PSF_HELP = ("PSF: one file used for every channel, or one file per channel in channel order "
             "(IMAGE PSF1 PSF2 ...), or one PSF hyperstack with a C axis. Any size; resampled to the image's "
             "voxel size when both files are calibrated.")


class _Cli(click.Group):
    """The command group; invoked without :func:`main` (click's test runner, a Python caller) it records its
    own arguments as the invocation, not those of an earlier ``main()`` in this process (whose command's
    options then renamed this run's notes: ``stop=auto chose`` or ``--stop auto chose`` by test order)."""

    def main(self, args: Any = None, *rest: Any, **kw: Any) -> Any:
        if not _OUTPUT_DONE.get("active"):
            _INVOCATION[:] = [str(a) for a in (sys.argv[1:] if args is None else args)]
        return super().main(args, *rest, **kw)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fijidecon")
@click.option("--debug", is_flag=True, help="Show the Python traceback of an error (otherwise one line).")
def cli(debug: bool) -> None:
    """Microscopy PSF generation and deconvolution."""


@cli.group()
def psf() -> None:
    """Make a point spread function."""


@cli.group()
def deconvolve() -> None:
    """Deconvolve an image with a PSF."""


# ----------------------------------------------------------------------------------
# notes and warnings: one line each, kept for the sidecar
# ----------------------------------------------------------------------------------

def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


class _Notes(logging.Handler):
    """Collects the ``"fijidecon"`` logger's records and Python warnings of one run.

    INFO records are notes (printed ``Note: …`` unless quiet); WARNING and above, and
    Python warnings, are printed ``Warning: …`` (always, each distinct message once)."""

    def __init__(self, quiet: bool) -> None:
        super().__init__(logging.INFO)
        self.quiet = quiet
        self.notes: list[str] = []
        self.warnings: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = _one_line(record.getMessage())
        except Exception:  # a bad format string must not end the run
            msg = _one_line(record.msg)
        if record.levelno >= logging.WARNING:
            self.warn(msg)
            return
        msg = _option_named(msg, _INVOCATION)  # as the warnings are, so that one also logged is said once
        if msg not in self.notes and msg not in self.warnings:  # a warning also logged as a note: once
            self.notes.append(msg)
            if not self.quiet:
                _say(f"Note: {msg}")

    def warn(self, msg: str) -> None:
        msg = _option_named(msg, _INVOCATION)  # the core's parameter names as this command's options
        if msg not in self.warnings:
            self.warnings.append(msg)
            _say(f"Warning: {msg}")

    def showwarning(self, message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ARG002
        self.warn(_one_line(message))


def _say(line: str) -> None:
    """One line on stderr; above a brick progress bar (tqdm) when one is drawn, not on its line."""
    bars = sys.modules.get("tqdm")
    drawn = list(getattr(bars.tqdm, "_instances", ())) if bars is not None else []
    if drawn:  # tqdm clears the bars drawn on that stream, writes the line, and draws them again
        fp = drawn[0].fp
        tty = bool(getattr(fp, "isatty", lambda: False)())
        bars.tqdm.write(line if tty else "\n" + line, file=fp)  # a log file: the line starts a line (grep ^Note)
    else:
        click.echo(line, err=True)


@contextmanager
def held_warnings(into: list[str]) -> Iterator[None]:
    """Python warnings raised in the block, kept (one line each) in ``into`` instead of printed:
    inputs are read before the notes are collected, which then say them once, as warnings."""
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        yield
    into.extend(_one_line(w.message) for w in got)


def drop_spacing_warnings(read_warnings: list[str], voxel: Any) -> None:
    """With ``--voxel-size`` given, a file's missing voxel sizes no longer matter: drop their warnings."""
    from . import io

    if voxel:
        read_warnings[:] = [w for w in read_warnings if io.SPACING_TAKEN_AS_1 not in w]


@contextmanager
def _collect_notes(quiet: bool) -> Iterator[_Notes]:
    """Attach a :class:`_Notes` handler to the ``"fijidecon"`` logger (at INFO) and route
    Python warnings to it, for the duration of the block."""
    handler = _Notes(quiet)
    logger = logging.getLogger("fijidecon")
    old_level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", RuntimeWarning)
            warnings.simplefilter("always", UserWarning)
            warnings.showwarning = handler.showwarning
            yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


# ----------------------------------------------------------------------------------
# generated commands
# ----------------------------------------------------------------------------------

class _OutputPath(click.Path):
    """An output file name: not empty, not a folder name ending in '/' (it would be written as a file)."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        text = str(value)
        if not text.strip() or "\n" in text or "\r" in text:
            self.fail(f"expected a file name, got {text!r}", param, ctx)
        if text.endswith(("/", os.sep)) and not text.rstrip("/" + os.sep).lower().endswith(".zarr"):
            self.fail(f"{text!r} ends in '/': give a file name (e.g. result.tif)", param, ctx)
        return super().convert(value, param, ctx)


_OUTPUT_PATH = _OutputPath()


class _Choice(click.Choice):
    """click's case-insensitive choice that also ignores surrounding blanks, as the API does
    (``--initial "wiener "`` from a quoted shell variable)."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        return super().convert(value.strip() if isinstance(value, str) else value, param, ctx)


def _check_length_unit(ctx: Any, param: Any, value: Any) -> Any:
    """``--unit``: a length unit :mod:`fijidecon.calibration` knows, or ``pixel`` (spacings in pixels);
    any other text (``nan``, a typo) would be written into the file's calibration unread."""
    from .calibration import UNIT_NM, unit_factor

    if value is None:
        return value
    text = str(value).strip()
    if text.lower() in ("pixel", "pixels"):
        return "pixel"
    try:
        unit_factor(text)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a length unit (nm, um/micron, mm, m, pm, Å, or pixel)") from None
    return text if text in UNIT_NM else text.lower()  # the file gets the usual spelling ('NM' -> 'nm')


class _NotEmpty(click.ParamType):
    """Text that may not be empty: an empty value (an unset shell variable, ``--weight "$W"``) is
    refused, not taken as the option's default (for ``auto`` options the dialogs' empty field is);
    ``remedy`` ends the message."""

    name = "text"

    def __init__(self, remedy: str) -> None:
        self.remedy = remedy

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail(f"empty; give a value{self.remedy}", param, ctx)
        return value


def _click_option(p) -> click.Option:
    help_text = p.full_help + (f" [unit: {p.unit}]" if p.unit and p.unit not in ("px",) else "")
    if p.kind == "bool":
        return click.Option([f"{p.cli_flag}/--no-{p.cli_flag[2:]}", p.name], default=p.default,
                            show_default=True, help=help_text)
    if p.kind == "choice":
        names = [str(v).lower() if not isinstance(v, bool) else lab.lower() for lab, v in p.choices]
        default = names[[v for _, v in p.choices].index(p.default)]
        return click.Option([p.cli_flag, p.name], type=_Choice(names, case_sensitive=False),
                            default=default, show_default=True, help=help_text)
    typ = {"float": float, "int": int, "string": str}[p.kind]
    metavar = None
    if p.none is not None:  # a number (or a word) or the automatic default
        metavar = f"{'NUMBER' if p.numeric else 'TEXT'}|{p.none}"
        typ = _NotEmpty(f" or {p.none!r}")
    return click.Option([p.cli_flag, p.name], type=typ, default=p.face_default, show_default=True, help=help_text,
                        metavar=metavar)


def _choice_value(p, text: str) -> Any:
    for lab, v in p.choices:
        if text.lower() in (lab.lower(), str(v).lower()):
            return v
    raise click.BadParameter(text, param_hint=p.cli_flag)


def _contains_array(v: Any) -> bool:
    if isinstance(v, np.ndarray):
        return True
    if isinstance(v, dict):
        return any(_contains_array(x) for x in v.values())
    if isinstance(v, (list, tuple)):
        return any(_contains_array(x) for x in v)
    return False


def _result_record(result: Any) -> dict[str, Any]:
    """The result object's fields for the sidecar: everything but images and arrays (and
    ``notes``, which the sidecar keeps at its top level)."""
    if isinstance(result, np.ndarray) or not dataclasses.is_dataclass(result):
        return {}
    rec: dict[str, Any] = {}
    for f in dataclasses.fields(result):
        v = getattr(result, f.name)
        if f.name in ("image", "notes") or f.name.startswith("_") or _contains_array(v):
            continue  # private fields (the resume state) are not results
        rec[f.name] = v
    return rec


def calibration_record(cal: Calibration) -> dict[str, Any]:
    """A Calibration for the sidecar: axes, spacing, the length unit, and ``time_unit``
    ``"s"`` when a T spacing (frame interval, seconds) is present."""
    rec = dataclasses.asdict(cal)
    if "T" in dict(cal.spacing):
        rec["time_unit"] = "s"
    return rec


def _fixed_unit(cmd: Command) -> str | None:
    """The length unit of a command whose spacings have one (widefield: nm), else None
    (the spacings are in "any length unit L", chosen with ``--unit``)."""
    units = {cmd.param(n).unit for n in cmd.extras.get("spacing", ())}
    if len(units) == 1:
        (u,) = units
        try:
            unit_factor(u, "nm")
        except (ValueError, TypeError):
            return None
        return u
    return None


def _like_targets(cmd: Command) -> dict[str, Any] | None:
    """For a PSF command with a size and spacings: the parameters ``--like`` sets."""
    names = {p.name for p in cmd.params}
    spacing = cmd.extras.get("spacing")
    if any(p.kind == "image" for p in cmd.params) or not spacing or not {"width", "height", "depth"} <= names:
        return None
    return {"size": ("width", "height", "depth"), "spacing": spacing}


def _make_command(cmd: Command, name: str) -> click.Command:
    params: list[click.Parameter] = []
    images = [p for p in cmd.params if p.kind == "image"]
    for i, p in enumerate(images):
        several = p.name == "psf" and i == len(images) - 1 and len(images) > 1
        params.append(click.Argument([p.name], nargs=-1 if several else 1, required=True,
                                     type=click.Path(exists=True, dir_okay=True)))
    for p in cmd.params:
        if p.api and p.kind != "image":
            params.append(_click_option(p))
    like = _like_targets(cmd)
    if like:
        params.append(click.Option(["--like"], type=click.Path(exists=True, dir_okay=False), metavar="IMAGE",
                                   help="Make the PSF for this image: its width, height and depth in voxels, and "
                                        "its voxel size (converted to this command's unit) when it is calibrated. "
                                        "Options given on the command line win."))
    if images or like:
        params.append(click.Option(["--axes"], default=None, metavar="AXES",
                                   help=_AXES_HELP if images else "Axes of the --like image (see deconvolve)."))
    if images:
        params.append(click.Option(["--voxel-size"], default=None, metavar="'Z,Y,X UNIT'",
                                   callback=lambda ctx, prm, v: None if v is None else parse_voxel_size(v),
                                   help=_VOXEL_HELP))
    if any(p.name == "psf" for p in images[1:]) and "psf_voxel_size" in inspect.signature(cmd.load()).parameters:
        params.append(click.Option(["--psf-voxel-size"], default=None, metavar="'Z,Y,X UNIT'",
                                   callback=lambda ctx, prm, v: None if v is None else parse_voxel_size(v),
                                   help=_PSF_VOXEL_HELP))
    params.append(click.Option(["-o", "--output", "output_path"], required=True, type=_OUTPUT_PATH,
                               help="Output: an ImageJ hyperstack (.tif), an OME-TIFF (.ome.tif) or an OME-Zarr "
                                    "folder (.zarr, written brick by brick); written "
                                    + ("in the input's axes with its calibration" if images else
                                       "with the command's voxel size as its calibration") +
                                    ". A JSON sidecar OUTPUT.json (e.g. result.tif.json) records "
                                    "parameters, input hashes, notes, warnings, iterations and timings."))
    if cmd.id in _LAZY_COMMANDS:
        params += _big_options()
    if cmd.extras.get("spacing") and not _fixed_unit(cmd):
        params.append(click.Option(["--unit"], default=cmd.extras.get("unit", "nm"), show_default=True,
                                   callback=_check_length_unit,
                                   help="Length unit of the spacings, written into the TIFF calibration (nm, "
                                        "um/micron, mm, m, pm, or pixel)."))
    params.append(click.Option(["--overwrite"], is_flag=True, help="Replace existing output files."))
    params.append(click.Option(["-q", "--quiet"], is_flag=True,
                               help="No progress bar, notes or summary (warnings are still printed)."))
    params.append(click.Option(["--strict"], is_flag=True,
                               help="Treat every warning of the package as an error: exit 2, nothing written "
                                    "(for unattended batches: swapped arguments, voxel sizes in the wrong order or "
                                    "unit, a PSF on an offset ...)."))

    def callback(**kw: Any) -> None:
        _validate.STRICT = bool(kw.pop("strict", False))
        try:
            if cmd.id in _LAZY_COMMANDS or any(q.name == "memory_limit" for q in cmd.params):
                from . import cli_big

                cli_big.run(cmd, kw)
            else:
                _run(cmd, kw)
        finally:
            _validate.STRICT = False

    help_text = cmd.summary + ("\n\n" + _PSF_HELP if len(images) > 1 else "")
    return click.Command(name, params=params, callback=callback, help=help_text, short_help=cmd.summary)


def _big_options() -> list[click.Option]:
    return [
        click.Option(["--workers"], type=click.IntRange(min=1), default=None, metavar="N",
                     help="Compute on a local Dask cluster of N worker processes (one thread each), the "
                          "input read lazily and the result written brick by brick."),
        click.Option(["--scheduler"], type=_NotEmpty(", or leave the option out"), default=None, metavar="ADDRESS",
                     help="Compute on an existing Dask distributed cluster (e.g. tcp://host:8786, started with "
                          "'dask scheduler' and 'dask worker', or dask-jobqueue); the workers must see the input "
                          "and output paths. --memory-limit is then the budget of each worker."),
        click.Option(["--resume"], is_flag=True,
                     help="OME-Zarr output (.zarr) only: keep the partial output if the run does not finish "
                          "(a crash, Ctrl-C, a kill), and go on from the chunks it holds when the same command is run "
                          "again with --resume (same inputs and parameters: the partial keeps its bricks; "
                          "another command is refused)."),
    ]


def input_record(parameter: str, path: str, arr: Any, cal: Calibration, channel: int | None = None):
    """An input's sidecar record; ``sha256`` is None for a folder (an OME-Zarr: no single file)."""
    from . import io

    digest = io.sha256_file(path) if Path(path).is_file() else None
    rec = {"parameter": parameter, "path": os.path.abspath(path), "sha256": digest,
           "shape": list(arr.shape), "dtype": str(arr.dtype), "calibration": calibration_record(cal)}
    if channel is not None:
        rec["channel"] = channel
    return rec


def _split_channels(arr: np.ndarray, cal: Calibration, path: str) -> list[tuple[np.ndarray, Calibration]]:
    """A PSF file with a C axis as one (array, Calibration) per channel (Z, Y, X order kept)."""
    if "T" in cal.axes:
        raise click.ClickException(f"psf: {path} has a time axis ({cal.axes}); a PSF has channels at most")
    c = cal.axes.index("C")
    rest = cal.axes.replace("C", "")
    return [(np.take(arr, i, axis=c), cal.with_axes(rest)) for i in range(arr.shape[c])]


def _read_inputs(kw: dict[str, Any], image_params: list, images: dict[str, Any], records: list, out: Path,
                 axes: str | None, voxel: Any, psf_voxel: Any) -> str | None:
    """Read a command's image inputs into ``images`` (name -> (array, Calibration), the PSFs as
    :func:`_read_psfs` gives them); returns ``--voxel-size``'s warning, if any."""
    from . import io

    voxel_warning = None
    for p in image_params:
        paths = kw[p.name] if isinstance(kw[p.name], tuple) else (kw[p.name],)
        if p.name == "psf" and len(image_params) > 1:
            first = images[image_params[0].name]
            images[p.name] = _read_psfs(paths, first[1], first[0].shape, records, psf_voxel)
        else:
            with _labelled(p.name):
                arr, cal = io.read_image(paths[0], axes=axes if p is image_params[0] else None)
            if p is image_params[0]:
                cal, voxel_warning = with_voxel_size(cal, arr.shape, voxel, paths[0])
            images[p.name] = (arr, cal)
            records.append(input_record(p.name, paths[0], arr, cal))
    return voxel_warning


def _read_psfs(paths: tuple[str, ...], image_cal: Calibration, image_shape: tuple[int, ...], records: list,
               psf_voxel: tuple[tuple[float, ...], str] | None = None):
    """Read the PSF file(s): one (array, Calibration), or a list with one per channel;
    ``psf_voxel`` (``--psf-voxel-size``) replaces their calibration (a warning where it differs)."""
    from . import io

    n_channels = image_shape[image_cal.axes.index("C")] if "C" in image_cal.axes else 1
    psfs: list[tuple[np.ndarray, Calibration]] = []
    for i, path in enumerate(paths):
        with _labelled("psf"):
            arr, cal = io.read_image(path)
        arr, cal = rgb_planes_as_z(arr, cal, f"psf[{i}]" if len(paths) > 1 else "psf")
        cal, replaced = with_voxel_size(cal, arr.shape, psf_voxel, path, "--psf-voxel-size", "a PSF")
        if replaced:
            _validate.warn(replaced, RuntimeWarning)
        records.append(input_record("psf", path, arr, cal, channel=i if len(paths) > 1 else None))
        _refuse_absurd_voxel_sizes(records[0]["path"], image_cal, path, cal)
        if "C" in cal.axes:
            if len(paths) > 1:
                raise click.ClickException(f"psf: {path} has channels; give one PSF hyperstack or one file per "
                                           "channel, not both")
            psfs.extend(_split_channels(arr, cal, path))
        else:
            psfs.append((arr, cal))
    if len(psfs) > 1 and len(psfs) != n_channels:
        bigger = len(paths) == 1 and psfs[0][0].size > int(np.prod(image_shape)) // n_channels
        raise click.ClickException(f"psf: {len(psfs)} PSFs given for an image with {n_channels} channel(s) "
                                   f"(axes {image_cal.axes}, shape {tuple(image_shape)})"
                                   + ("; were the image and the PSF swapped? (the image comes first)" if bigger
                                      else ""))
    return psfs if len(psfs) > 1 else psfs[0]


def _refuse_absurd_voxel_sizes(image_path: str, image_cal: Calibration, psf_path: str, psf_cal: Calibration) -> None:
    """The core's refusal of voxel sizes over ``ABSURD_APART`` apart, as each PSF file is read
    (before any computation; a lazy run has read the image's metadata only), naming both files
    (a damaged resolution tag, metres read as µm).  ``image_path``: the image's file."""
    from .deconvolve import _otf

    axes = [a for a in "ZYX" if a in dict(image_cal.spacing) and a in dict(psf_cal.spacing)]
    try:
        vi, vp = image_cal.voxel_size(axes, unit="nm"), psf_cal.voxel_size(axes, unit="nm")
    except ValueError:  # an axis or both without a length unit: nothing to compare
        return
    if not axes or _otf.unit_mixup(vp, vi):
        return
    ratio = _otf.apart(vp, vi)
    if ratio > _otf.ABSURD_APART:
        raise click.ClickException(
            f"voxel size: the image {image_path} ({', '.join(f'{v:.4g}' for v in vi)} nm, {''.join(axes)}) and the "
            f"PSF {psf_path} ({', '.join(f'{v:.4g}' for v in vp)} nm) differ {ratio:.3g}x; {_otf.NO_MICROSCOPE}: "
            "check both files' calibration (or give --voxel-size, --psf-voxel-size)")


def _same_file(a: Path, b: str) -> bool:
    try:
        return a.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def refuse_psf_is_image(inputs: dict[str, Any]) -> None:
    """``InputError`` when the PSF file is the image file itself (``fijidecon deconvolve … img.tif
    img.tif``: a run that means nothing, refused before reading)."""
    image, psfs = inputs.get("image"), inputs.get("psf")
    for psf in (psfs if isinstance(psfs, tuple) else (psfs,)) if image and psfs else ():
        if _same_file(Path(image), psf):
            raise InputError(f"psf: {psf} is the image file itself; give the PSF's file")


def refuse_psf_same_content(records: list[dict[str, Any]]) -> None:
    """``InputError`` when a PSF file holds the same bytes as the image file (a copy of it), from
    the inputs' SHA-256, before computing (the same path is refused by :func:`refuse_psf_is_image`)."""
    image = next((r for r in records if r["parameter"] == "image" and r.get("sha256")), None)
    for r in records:
        if image and r["parameter"] == "psf" and r.get("sha256") == image["sha256"] and r["path"] != image["path"]:
            raise InputError(f"psf: {r['path']} holds the same bytes as the image ({image['path']}); give the "
                             "PSF's file")


def refuse_inputs_as_output(out: Path, inputs: dict[str, Any], snapshots: Any = (), like: str | None = None) -> None:
    """:func:`refuse_writing_over` for every input (name -> path or tuple of paths) and ``--like``:
    called first, so that an output that is an input says so rather than "exists"."""
    for name, paths in inputs.items():
        for path in paths if isinstance(paths, tuple) else (paths,):
            refuse_writing_over(out, path, name, snapshots)
    if like:
        refuse_writing_over(out, like, "--like")


def refuse_writing_over(out: Path, path: str, name: str, snapshots: Any = ()) -> None:
    """``output: … is an input (name)`` (even with --overwrite) when a file this run writes would
    replace or remove the input ``path``: the output itself (any spelling, link), its sidecar, a
    snapshot, or the output as a folder (an OME-Zarr, replaced whole) that holds the input."""
    from . import io

    side = io.sidecar_path(out)
    for target, what in ((out, ""), (side, " (its sidecar)"), *((s, " (a snapshot)") for s in snapshots)):
        if _same_file(Path(target), path) or Path(target).resolve() == Path(path).resolve():
            raise click.ClickException(f"output: {target}{what} is an input ({name}); choose another name")
    if Path(out).resolve() in Path(path).resolve().parents:
        raise click.ClickException(f"output: {out} is a folder that holds an input ({name}: {path}); writing it "
                                   "would remove the input; choose another name")
    if Path(path).is_dir() and Path(path).resolve() in Path(out).resolve().parents:
        raise click.ClickException(f"output: {out} is inside an input folder ({name}: {path}, an OME-Zarr store); "
                                   "write it elsewhere")


def _apply_like(cmd: Command, kw: dict[str, Any], like: str, axes: str | None, unit: str | None) -> dict[str, Any]:
    """Set width/height/depth and the spacings from the ``--like`` image (given options win)."""
    from . import io

    arr, cal = io.read_image(like, axes=axes)
    record = input_record("like", like, arr, cal)
    ctx = click.get_current_context()
    given = {n for n in kw if ctx.get_parameter_source(n) in (click.core.ParameterSource.COMMANDLINE,
                                                                click.core.ParameterSource.ENVIRONMENT)}
    if "S" in cal.axes and "Z" not in cal.axes:  # a 3- or 4-plane stack stored as RGB (tifffile's default)
        arr, cal = rgb_planes_as_z(arr, cal, f"--like: {Path(like).name}")
    shape = dict(zip(cal.axes, arr.shape))
    taken: dict[str, Any] = {}
    for name, ax in zip(("width", "height", "depth"), "XYZ"):
        taken[name] = int(shape.get(ax, 1))
    z_name, y_name, x_name = cmd.extras["spacing"]
    why = ""
    if cal.has_length_unit():
        for name, ax in ((y_name, "Y"), (x_name, "X"), (z_name, "Z")):  # one lateral spacing: X's (ImageJ's width)
            if ax == "Z" and "Z" not in cal.axes:
                continue
            target = cmd.param(name).unit
            target = target if target not in (None, "L") else (unit or "nm")
            taken[name] = cal.get(ax) * unit_factor(cal.unit, target)
    kept = sorted(n for n in taken if n in given)
    used = {n: v for n, v in taken.items() if n not in given}
    kw.update(used)

    def show(n, v):
        u = cmd.param(n).unit
        u = u if u not in (None, "L", "px", "slices") else (unit or "") if u == "L" else ""
        return f"{n} {v:g}{(' ' + u) if u else ''}" if isinstance(v, float) else f"{n} {v}"

    warning = None
    if x_name == y_name and x_name in used and cal.has_length_unit() and \
            abs(cal.get("Y") - cal.get("X")) > 1e-3 * cal.get("X"):
        warning = (f"--like: {Path(like).name} has pixels of {cal.get('Y'):g} (Y) by {cal.get('X'):g} (X) {cal.unit}; "
                   f"{cmd.param(x_name).cli_flag} is one lateral spacing, so the PSF is made at X's; deconvolving "
                   "resamples it to the image's voxel size")
    if not cal.has_length_unit():
        why = f"; voxel size not taken: {Path(like).name} is not calibrated (unit {cal.unit!r})"
        defaulted = [n for n in dict.fromkeys((x_name, z_name)) if n not in given and n in kw]
        if defaulted:
            plural = "s" if len(defaulted) > 1 else ""
            warning = (f"{cmd.param(defaulted[0]).cli_flag}: {Path(like).name} is not calibrated, so the PSF is "
                       f"made at {' and '.join(show(n, kw[n]) for n in defaulted)} (the default{plural}); give "
                       f"{' and '.join(cmd.param(n).cli_flag for n in defaulted)} (the image's voxel size)")
    kept_text = f" (given on the command line: {', '.join(cmd.param(n).cli_flag for n in kept)})" if kept else ""
    taken_text = ", ".join(show(n, v) for n, v in used.items()) or "nothing taken"
    line = f"from {Path(like).name}: {taken_text}{kept_text}{why}"
    return {"path": os.path.abspath(like), "taken": used, "kept": kept, "line": line, "warning": warning,
            "input": record}


@contextmanager
def _labelled(name: str):
    """File errors of a parameter other than the image name that parameter (``psf: ...``)."""
    try:
        yield
    except (ValueError, OSError) as exc:
        msg = str(exc)
        if msg.startswith("image: "):
            raise type(exc)(f"{name}: {msg[len('image: '):]}") from None
        raise


#: Stop reasons in the summary line's words (others as they are: ``converged``, ``auto``, ``discrepancy`` ...).
_STOP_WORDS = {"iterations": "as asked", "stop": "stopping rule", "max_iterations": "the maximum",
               "diverged": "the change figure rose: divergence detection",
               "change_increased": "the change figure rose"}


def _iterations_text(rec: dict[str, Any]) -> str:
    """', 12 iterations (converged)', or per volume of a hyperstack when they differ."""
    if "iterations" not in rec:
        return ""
    its, why = rec["iterations"], rec.get("stop_reason", "")
    its = list(its) if isinstance(its, (list, tuple)) else [its]
    why = list(why) if isinstance(why, (list, tuple)) else [why]
    if len(set(map(str, its))) == 1 and len(set(map(str, why))) == 1:
        each = " each" if len(its) > 1 else ""
        reason = _STOP_WORDS.get(str(why[0]), why[0])
        return f", {its[0]} iteration{'' if str(its[0]) == '1' else 's'}{each} ({reason})"
    return ", iterations per volume " + ", ".join(f"{i} ({w})" for i, w in zip(its, why * len(its)))


def _wiener_text(result: Any) -> str:
    rho = getattr(result, "regularization", None)
    values = rho if isinstance(rho, (list, tuple)) else [rho]
    if not values or not all(isinstance(v, (int, float, np.floating)) for v in values):  # RL: "tv", None
        return ""
    text = ", ".join(f"{float(v):.4g}" for v in values)
    return f", regularization {text} (rule {getattr(result, 'rule', '?')})"


def parse_voxel_size(text: str) -> tuple[tuple[float, ...], str]:
    """``--voxel-size``: ``"0.2,0.065,0.065 um"`` -> ``((0.2, 0.065, 0.065), "um")``.

    Raises ``click.BadParameter`` (one line, exit 2) for anything else: 2 or 3 positive
    numbers separated by commas or spaces, then a length unit (nm, um/µm/micron, mm, ...).
    """
    from .calibration import unit_factor

    parts = text.replace(",", " ").split()
    what = "expected 2 or 3 positive numbers and a length unit, e.g. '0.2,0.065,0.065 um'"
    if len(parts) not in (3, 4):
        raise click.BadParameter(f"{what}, got {text!r}")
    try:
        sizes = tuple(float(v) for v in parts[:-1])
        unit_factor(parts[-1])
    except ValueError:
        raise click.BadParameter(f"{what}, got {text!r}") from None
    if not all(np.isfinite(v) and v > 0 for v in sizes):
        raise click.BadParameter(f"{what}, got {text!r}")
    return sizes, parts[-1]


def with_voxel_size(cal: Calibration, shape: tuple[int, ...], given: tuple[tuple[float, ...], str] | None,
                    path: str, flag: str = "--voxel-size", what: str = "an image") -> tuple[Calibration, str | None]:
    """The file's calibration with ``flag`` (``--voxel-size``, ``--psf-voxel-size``) applied (Z, Y, X
    of its axes), and the warning to give (``None`` if none) when it replaces a different
    calibration of the file."""
    if given is None:
        return cal, None
    sizes, unit = given
    spatial = [a for a in cal.axes if a in "ZYX"]
    if len(sizes) != len(spatial):
        raise click.UsageError(f"{flag}: {len(sizes)} values for {what} with {len(spatial)} spatial axes "
                               f"({''.join(spatial)}) in {path}")
    new = Calibration.make(cal.axes, unit, **dict(zip(spatial, sizes)))
    if cal.is_calibrated() and cal.has_length_unit():
        old = cal.voxel_size(spatial, unit=unit)
        if not np.allclose(old, sizes, rtol=1e-3):
            return new, (f"{flag}: {','.join(f'{v:g}' for v in sizes)} {unit} replaces the calibration of "
                         f"{path} ({','.join(f'{v:g}' for v in old)} {unit})")
    return new, None


def _stem_and_extension(out: Path) -> tuple[str, str]:
    """An output's name split where its snapshots' ``_iterK`` goes: ``("r", ".ome.tif")``."""
    name = out.name
    ext = next((e for e in (".ome.tiff", ".ome.tif") if name.lower().endswith(e)), out.suffix)
    return (name[:len(name) - len(ext)] if ext else name), ext


def _snapshot_paths(out: Path, values: dict[str, Any]) -> dict[int, Path]:
    """``--snapshot-every N``: the file of each snapshot, ``NAME_iterK.EXT`` beside the output
    (``K`` zero-padded), for every multiple of N up to ``--iterations``."""
    every, n = int(values.get("snapshot_every") or 0), int(values.get("iterations") or 0)
    if every <= 0 or n <= 0:
        return {}
    stem, ext = _stem_and_extension(out)
    width = len(str(n))
    return {k: out.with_name(f"{stem}_iter{k:0{width}d}{ext}") for k in range(every, n + 1, every)}


def _stale_snapshots(out: Path, paths: dict[int, Path]) -> str | None:
    """A warning naming snapshot files of ``out`` (``NAME_iterK.EXT``) that this run does not
    write (an earlier run's, e.g. with more iterations): they stay, and would pass for this run's."""
    import re

    stem, ext = _stem_and_extension(out)
    pattern = re.compile(re.escape(stem) + r"_iter\d+" + re.escape(ext) + "$")
    mine = {p.name for p in paths.values()}
    try:
        old = sorted(p.name for p in out.parent.iterdir() if pattern.match(p.name) and p.name not in mine)
    except OSError:
        return None
    if not old:
        return None
    names = old[0] if len(old) == 1 else f"{old[0]} ... {old[-1]}"
    return (f"{len(old)} snapshot file(s) of an earlier run stay beside the output and are not this run's: {names}; "
            "remove them, or choose another output name")


def _write_snapshots(result: Any, paths: dict[int, Path], cal: Calibration, overwrite: bool, quiet: bool,
                     written: list[Path] | None = None) -> None:
    """Writes ``result.snapshots`` (the output's axes and calibration, float32) to ``paths``
    (each file atomic; ``written`` gets each path once it is in place)."""
    from . import io

    snaps = getattr(result, "snapshots", None) or {}
    for k in sorted(snaps):
        if k in paths:
            io.write_image(paths[k], np.asarray(snaps[k], np.float32), cal, overwrite=overwrite,
                           description={"fijidecon": __version__, "snapshot_iteration": k})
            if written is not None:
                written.append(paths[k])
    if snaps and not quiet:
        done = [k for k in sorted(snaps) if k in paths]
        if not done:
            click.echo("no snapshot written", err=True)
        else:
            names = paths[done[0]].name if len(done) == 1 else f"{paths[done[0]].name} ... {paths[done[-1]].name}"
            click.echo(f"wrote {len(done)} snapshot{'' if len(done) == 1 else 's'}: {names}", err=True)


def _auto_maximum(values: dict[str, Any]) -> str | None:
    """With ``--stop auto`` and no ``--iterations`` typed, the maximum is raised to
    ``_autostop.DEFAULT_MAXIMUM`` (the default count would cap the choice); returns the note
    saying so, or None."""
    from .deconvolve._autostop import DEFAULT_MAXIMUM as AUTO_MAXIMUM

    if values.get("stop") != "auto" or "iterations" not in values:
        return None
    ctx = click.get_current_context(silent=True)
    if ctx is None or ctx.get_parameter_source("iterations") != click.core.ParameterSource.DEFAULT:
        return None
    if values["iterations"] >= AUTO_MAXIMUM:
        return None
    values["iterations"] = AUTO_MAXIMUM
    return (f"--stop auto: choosing the count up to {AUTO_MAXIMUM} iterations (the default --iterations would cap "
            "it; pass --iterations to set the maximum)")


def _run(cmd: Command, kw: dict[str, Any]) -> None:
    from . import io

    out = Path(kw.pop("output_path"))
    overwrite = kw.pop("overwrite")
    quiet = kw.pop("quiet")
    unit = kw.pop("unit", None)
    axes = kw.pop("axes", None)
    like = kw.pop("like", None)
    voxel, voxel_warning = kw.pop("voxel_size", None), None
    psf_voxel = kw.pop("psf_voxel_size", None)
    image_params = [q for q in cmd.params if q.kind == "image"]
    refuse_inputs_as_output(out, {q.name: kw[q.name] for q in image_params}, like=like)
    io.check_output(out, overwrite=overwrite, sidecar=True)  # refuse before reading or computing anything
    read_warnings: list[str] = []
    with held_warnings(read_warnings):
        like_record = _apply_like(cmd, kw, like, axes, unit) if like else None
    values: dict[str, Any] = {}
    for p in cmd.params:
        if p.kind == "image" or not p.api:
            continue
        v = kw[p.name]
        values[p.name] = _choice_value(p, v) if p.kind == "choice" else v
    auto_note = _auto_maximum(values)
    kwargs = cmd.api_kwargs(values)
    images: dict[str, Any] = {}
    records: list[dict[str, Any]] = [like_record["input"]] if like_record else []
    with held_warnings(read_warnings):
        refuse_psf_is_image({q.name: kw[q.name] for q in image_params})
        voxel_warning = _read_inputs(kw, image_params, images, records, out, axes, voxel, psf_voxel)
        refuse_psf_same_content(records)
    drop_spacing_warnings(read_warnings, voxel)
    if image_params:
        first = images[image_params[0].name]
        io.check_output(out, first[1].axes, overwrite=overwrite, sidecar=True, shape=np.shape(first[0]),
                        copies=1 + len(_snapshot_paths(out, values)))  # the snapshots' files too
    _refuse_one_pixel_wide(cmd, values, images, out)
    total = cmd.extras.get("progress")
    bars: list[Any] = []  # created at the first iteration, so a failed set-up prints one line only
    callback = None
    if total and not quiet and (kwargs.get(total) or 0) > 0 and sys.stderr.isatty():

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
    with _collect_notes(quiet) as notes:
        for w in read_warnings:
            notes.warn(w)
        if voxel_warning:
            notes.warn(voxel_warning)
        if auto_note:
            logging.getLogger("fijidecon").info(auto_note)
        if like_record and not quiet:
            click.echo(like_record["line"], err=True)
        if like_record and like_record["warning"]:
            notes.warn(like_record["warning"])
        t0 = time.perf_counter()
        try:
            result, image, cal = run_command(cmd, values, images, callback=callback, unit=unit,
                                             voxel_size_from_calibration=True)
        finally:
            for bar in bars:
                bar.__exit__(None, None, None)
        t1 = time.perf_counter()
        record = _record(cmd, kwargs, records, out, image, cal, result, notes, like_record, t1 - t0)

        def with_write_time(seconds: float) -> dict[str, Any]:
            record["timings_s"]["write"] = seconds
            return record

        io.write_image_and_sidecar(out, image, cal, with_write_time, overwrite=overwrite,
                                   description={"fijidecon": __version__, "command": cmd.title})
        output_in_place()
    if not quiet:
        extra = _iterations_text(record["result"]) + _wiener_text(result)
        shape, axes = io.stored_layout(out, tuple(image.shape), cal.axes)
        click.echo(f"wrote {out} {shape} {axes} {image.dtype}{extra} in {t1 - t0:.2f} s", err=True)


def _refuse_one_pixel_wide(cmd: Command, values: dict[str, Any], images: dict[str, Any], out: Path) -> None:
    """A 3-D PSF 1 pixel wide reads back from a TIFF in another shape (``io.write_image`` refuses it, after
    the computation): refused before computing, naming ``--width`` (an OME-Zarr output holds it)."""
    from . import io

    if values.get("width") != 1 or io._is_zarr(out):
        return
    image = images.get("image")
    if image is not None:
        three_d = np.squeeze(image[0]).ndim == 3
    else:
        three_d = cmd.id == "diffraction-psf-3d" or values.get("depth", 1) > 1
    if three_d:
        raise InputError("width: expected 2 or more for a TIFF output (a stack of planes 1 pixel wide reads back "
                         "from a TIFF in another shape), got 1; give --width 2 or more, or write an OME-Zarr "
                         "(-o NAME.ome.zarr)")


#: ``active``: inside :func:`main` (which restores the signal handlers); ``done``: the run's output and
#: sidecar are in place (see :func:`output_in_place`).
_OUTPUT_DONE = {"done": False, "active": False}


#: Ctrl-C or SIGTERM received after the output was in place (:func:`output_in_place`), acted on at the exit.
_LATE_SIGNALS: list[int] = []


def _late_signal(signum: int, frame: Any) -> None:  # noqa: ARG001
    _LATE_SIGNALS.append(signum)


def output_in_place() -> None:
    """The output and its sidecar are complete (its snapshots are written before it): from now on
    Ctrl-C and SIGTERM do not interrupt the run's last steps (the summary line, a lazy run's scheduler
    closing) but are kept, and the process still ends by that signal once they are done (:func:`main`):
    a batch loop stops there (a fresh batch user's Ctrl-C in the last half second was ignored and the
    loop went on), while the message says the output is complete."""
    import threading

    _OUTPUT_DONE["done"] = True
    # only under main(), which puts the handlers back: a caller of the click group (CliRunner in a test
    # process) would otherwise keep catching signals, and so would every process it starts after
    if _OUTPUT_DONE["active"] and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _late_signal)


#: The arguments of this process's CLI call (the sidecar's ``cli``).
_INVOCATION: list[str] = []


def _record(cmd: Command, kwargs: dict[str, Any], inputs: list, out: Path, image: np.ndarray, cal: Calibration,
            result: Any, notes: _Notes, like_record: dict[str, Any] | None, seconds: float) -> dict[str, Any]:
    """The sidecar record of a run (its ``notes``/``warnings`` lists keep filling until it is written)."""
    from . import io

    stored = io.stored_layout(out, tuple(image.shape), cal.axes)  # as in the file (NGFF, ImageJ or own order)
    record = {
        "fijidecon_version": __version__,
        "command": cmd.title,
        "cli": shlex.join(["fijidecon", *_INVOCATION]),  # quoted: pasting it into a shell runs it again
        "cwd": os.getcwd(),  # where relative paths in "cli" are
        "parameters": kwargs,
        "inputs": inputs,
        "output": {"path": os.path.abspath(out), "shape": list(stored[0]), "dtype": str(image.dtype),
                   "axes": stored[1], "calibration": calibration_record(cal.with_axes(stored[1]))},
        "result": _result_record(result),
        "notes": notes.notes,
        "warnings": notes.warnings,
        "timings_s": {"compute": seconds},
    }
    if like_record:
        record["like"] = {k: like_record[k] for k in ("path", "taken", "kept")}
    return record


def _register_generated() -> None:
    for cmd in all_commands():
        group_name, name = cmd.extras.get("cli", ("psf" if not any(p.kind == "image" for p in cmd.params)
                                                   else "deconvolve", cmd.id))
        group = {"psf": psf, "deconvolve": deconvolve}[group_name]
        if name not in group.commands:
            group.add_command(_make_command(cmd, name))


# ----------------------------------------------------------------------------------
# info: what a file holds
# ----------------------------------------------------------------------------------

def describe(path: str | os.PathLike, axes: str | None = None) -> str:
    """A readable description of an image file: shape, axes, dtype, voxel size, values.

    Raises the errors of :func:`fijidecon.io.read_image` for a file that cannot be read.
    """
    from . import io

    arr, cal = io.read_image(path, axes=axes)
    spatial = [a for a in "ZYX" if a in cal.axes]
    if cal.has_length_unit() or any(cal.get(a) != 1.0 for a in spatial):
        size = " × ".join(f"{cal.get(a):.6g}" for a in spatial)
        voxel = f"{size} {cal.unit} ({', '.join(a.lower() for a in spatial)})"
    else:
        voxel = "not calibrated (1 pixel)"
    if "T" in dict(cal.spacing):
        voxel += f"; frame interval {cal.get('T'):.6g} s"
    data = np.asarray(arr)
    finite = data if data.dtype.kind in "biu" else data[np.isfinite(data)]
    if finite.size:
        values = (f"min {finite.min():.6g}, max {finite.max():.6g}, "
                  f"mean {float(np.mean(finite, dtype=np.float64)):.6g}")
    else:
        values = "no finite values"
    if finite.size != data.size:
        values += f" ({data.size - finite.size} NaN/inf voxels)"
    sizes = ", ".join(f"{a} {n}" for a, n in zip(cal.axes, arr.shape))
    return (f"{path}\n"
            f"  shape      {tuple(arr.shape)}   axes {cal.axes} ({sizes})   dtype {arr.dtype}\n"
            f"  voxel size {voxel}\n"
            f"  values     {values}")


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True))  # .zarr folders too
@click.option("--axes", default=None, metavar="AXES", help="Axes of every FILE (e.g. CZYX for a .npy array).")
def info(files: tuple[str, ...], axes: str | None) -> int:
    """Print each file's shape, axes, dtype, calibration (voxel size, unit) and value range."""
    bad = 0
    with _collect_notes(quiet=True):  # a warning (e.g. ambiguous .npy axes) is one line
        for path in files:
            try:
                click.echo(describe(path, axes))
            except (ValueError, TypeError, OSError) as exc:
                click.echo(f"Error: {_one_line(exc)}", err=True)
                bad += 1
    return EXIT_USAGE if bad else 0


# ----------------------------------------------------------------------------------
# demo: the main job end to end on a synthetic widefield sample (fijidecon.demo)
# ----------------------------------------------------------------------------------

@cli.command()
@click.option("-o", "--out", "out_dir", default="fijidecon-demo", show_default=True,
              type=click.Path(file_okay=False), help="Folder for the outputs (created).")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
def demo(out_dir: str, overwrite: bool) -> None:
    """Simulate a widefield stack with known truth, deconvolve it, write TIFFs and a PNG panel."""
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
# tifffile logs the damage it finds in a file (e.g. "<tifffile.TiffFile 'x.tif'> ImageJ series metadata
# invalid or corrupted file") through logging's last resort, i.e. to stderr; the readers
# (fijidecon.io, fijidecon.lazy_io) turn it into one error or warning line, so it is not printed again.
logging.getLogger("tifffile").addHandler(logging.NullHandler())


class _Terminated(SystemExit):
    """SIGTERM, raised in the main thread so that temporary files are removed on the way out."""


def _on_sigterm(signum, frame) -> None:  # noqa: ARG001
    raise _Terminated(128 + signal.SIGTERM)


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """While the CLI runs in the main thread, SIGTERM unwinds (``finally`` blocks run) instead of
    killing the process where it stands."""
    try:
        old = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


#: The core's remedies spelt as Python, and how the command line says them.
_CLI_SPELLINGS = (("overwrite=True or --overwrite", "--overwrite"), ("use compat=False", "use --mode improved"),
                  ("compat=False", "--mode improved"), ("raise memory_limit", "raise --memory-limit"),
                  ("give memory_limit", "give --memory-limit"),
                  ("or, from a file, use the CLI with an OME-Zarr output (it holds only the bricks)",
                   "or write an OME-Zarr output (-o NAME.ome.zarr: it holds only the bricks)"),
                  ("a PSF cropped closer (a higher psf_threshold)", "a PSF file cropped closer"),
                  ("clip with np.clip(image, 0, None), or pass read_noise=", "clip the data at 0, or pass --read-noise"),
                  ("check gain=", "check --gain"), ("and offset=", "and --offset"))


#: Words a user may write after a switch (``--recenter False``): click takes them for a file.
_BOOL_WORDS = ("true", "false", "yes", "no", "on", "off", "1", "0")


def _command_of(args: list[str]) -> Any:
    """The (sub-)command the arguments name (the group itself when none)."""
    cmd: Any = cli
    for a in args:
        if isinstance(cmd, click.Group) and a in cmd.commands:
            cmd = cmd.commands[a]
    return cmd


def _switch_hint(message: str, args: list[str]) -> str:
    """``--recenter False``: click reads 'False' as the PSF's path ("Path 'False' does not exist"); the
    message says the option is a switch, taking no value, and what to write."""
    cmd = _command_of(args)
    for i, a in enumerate(args[1:], 1):
        prev = args[i - 1]
        if a.lower() not in _BOOL_WORDS or (f"'{a}'" not in message and f"({a})" not in message):
            continue
        opt = next((p for p in getattr(cmd, "params", []) if isinstance(p, click.Option) and p.is_flag
                    and prev in (*p.opts, *p.secondary_opts)), None)
        if opt is None:
            continue
        on = next((o for o in opt.opts if o.startswith("--")), opt.opts[0])  # --quiet, not -q
        off = (opt.secondary_opts or [None])[0]
        wanted = (prev == on) == (a.lower() in _BOOL_WORDS[::2])  # '--x true' / '--no-x false': on
        forms = f"{on} or {off}" if off else f"{on} (or leave it out)"
        write = on if wanted else (off or f"nothing (leave {on} out)")
        return f"{prev} {a}: {prev} is a switch and takes no value; write {forms}: here {write}"
    return message


def _option_named(message: str, args: list[str]) -> str:
    """A core message naming a parameter (``"snapshot_every: expected ..."``) names the
    option instead (``"--snapshot-every: expected ..."``) when the user typed it or the command
    has it, and its remedies are spelt as options (``raise --memory-limit``, not ``raise
    memory_limit``; ``give background=2100`` as ``give --background 2100``)."""
    for api, cli_words in _CLI_SPELLINGS:
        message = message.replace(api, cli_words)
    options = _options_of(_command_of(args))
    message = _API_ASSIGNMENT.sub(lambda m: _as_option(m, options), message)
    for option in options:  # a bare snake_case parameter name ('are wavelength, pixel_spacing ... in one unit?')
        if option.count("-") > 2:
            snake = option[2:].replace("-", "_")
            message = re.sub(rf"(?<![\w.-]){snake}(?![\w=(\[:])", option, message)
    message = _API_BUDGET.sub(lambda m: f"--memory-limit {m.group(1)}" if "--memory-limit" in options
                              else m.group(0), message)
    message = _CLI_ASIDE.sub(lambda m: _drop_aside(m, options), message).replace(" ()", "")
    message = _param_names_as_options(message, options)
    name, sep, rest = message.partition(":")
    if not sep or not name.isidentifier():
        return message
    option = "--" + name.replace("_", "-")
    if option in options or any(a == option or a.startswith(option + "=") for a in args):
        return f"{option}:{rest}"
    return message


#: ``name=value`` or ``name=`` in a core message (``stop='auto'``, ``background=2100``, ``gain=``).
_API_ASSIGNMENT = re.compile(r"(?<![\w.-])([a-z][a-z_]*)=('[^']*'|[^\s,;)'\"]*)")
#: A core message's aside for CLI users (``(CLI --gain, --offset; camera values)``), said already in CLI terms.
_CLI_ASIDE = re.compile(r"\(CLI ((?:--[a-z-]+(?: [A-Z]+)?(?:, )?)+)(; |\))")
#: A budget a core message proposes (``memory_limit 65MiB runs it whole``).
_API_BUDGET = re.compile(r"(?<![\w-])memory_limit (\d+(?:\.\d+)?[KMGT]i?B)")


def _param_names_as_options(message: str, options: set[str]) -> str:
    """The parameter names a message lists (``fwhm_z, fwhm_xy: ...``, ``are wavelength, pixel_spacing and
    slice_spacing in one unit?``, ``lower threshold``) spelt as this command's options, each one: the bare
    one-word names (``wavelength``, ``threshold``) only there, where they cannot be an ordinary word."""
    def listed(m: "re.Match[str]") -> str:
        items = re.split(r"(, | and |/)", m.group(2))
        if not all(i in (", ", " and ", "/") or "--" + i.replace("_", "-") in options or i.startswith("--")
                   for i in items):
            return m.group(0)
        return m.group(1) + "".join(i if i in (", ", " and ", "/") or i.startswith("--")
                                    else "--" + i.replace("_", "-") for i in items) + m.group(3)

    names = r"(?:[a-z][a-z_]*|--[a-z-]+)(?:(?:, | and |/)(?:[a-z][a-z_]*|--[a-z-]+))*"
    message = re.sub(rf"^()({names})(:)", listed, message)
    message = re.sub(rf"(\bare )({names})( in one unit)", listed, message)
    return re.sub(rf"(\b(?:lower|raise|give|check) )({names})(\b)(?![-=(])", listed, message)


def _drop_aside(m: "re.Match[str]", options: set[str]) -> str:
    """``(CLI --gain, --offset; camera values)`` -> ``(camera values)`` when the command has those options."""
    named = re.findall(r"--[a-z-]+", m.group(1))
    if not all(o in options for o in named):
        return m.group(0)
    return "(" if m.group(2) == "; " else "()"


def _options_of(cmd: Any) -> set[str]:
    """The long option names of a click command (``--memory-limit``, ...)."""
    return {o for p in getattr(cmd, "params", []) if isinstance(p, click.Option) for o in p.opts + p.secondary_opts
            if o.startswith("--")}


def _as_option(m: "re.Match[str]", options: set[str]) -> str:
    """``background=2100`` -> ``--background 2100`` and ``gain=`` -> ``--gain`` when the command has the option."""
    option = "--" + m.group(1).replace("_", "-")
    if option not in options:
        return m.group(0)
    value = m.group(2).strip("'")
    if value in ("True", "False") and f"--no-{option[2:]}" in options:  # a switch: recenter=False -> --no-recenter
        return option if value == "True" else f"--no-{option[2:]}"
    return f"{option} {value}" if value else option


@contextmanager
def _resume_hint(args: list[str]) -> Iterator[None]:
    """After a ``--resume`` run that did not finish: say where its partial output is kept (once:
    not when the error says it already, nor for a partial an earlier call in this process kept),
    or, when it was stopped (Ctrl-C, SIGTERM) before its first brick was written, that nothing was."""
    lazy = sys.modules.get("fijidecon.lazy_io")
    before = len(getattr(lazy, "KEPT", []))
    try:
        yield
    except BaseException as exc:
        lazy = sys.modules.get("fijidecon.lazy_io")
        kept = getattr(lazy, "KEPT", [])[before:before + 1]
        for tmp in kept:
            if tmp.exists() and tmp.name not in str(exc):
                click.echo(f"Note: the partial output is kept ({tmp}); run the same command with --resume to go on "
                           "from it", err=True)
        stopped = isinstance(exc, (_Terminated, click.exceptions.Abort, KeyboardInterrupt))
        out = _output_argument(args)
        if not kept and stopped and "--resume" in args and out is not None and lazy is not None:
            earlier = lazy.resumable_path(out)
            click.echo("Note: --resume: stopped before this run wrote a brick of the output (in its set-up); "
                       + (f"the partial output of an earlier run is kept as it was ({earlier})" if earlier.exists()
                          else "nothing was kept, and the next run starts from the beginning"), err=True)
        raise


def _output_argument(args: list[str]) -> str | None:
    """The ``-o``/``--output`` value in a command line, if any."""
    for i, a in enumerate(args):
        if a in ("-o", "--output") and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--output="):
            return a.split("=", 1)[1]
    return None


def _interrupted() -> int:
    """Exit status 130 after Ctrl-C.  When the run's local Dask cluster was ended (its workers
    killed), the process ends at once by SIGINT (what the console command does after any Ctrl-C,
    ``_entry._end_by_signal``): distributed's own atexit teardown of that cluster printed tracebacks."""
    big = sys.modules.get("fijidecon.cli_big")
    if big is not None and getattr(big, "WORKERS_ENDED", False):
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # ends by Ctrl-C's default action (a shell sees 130)
        os.kill(os.getpid(), signal.SIGINT)
        os._exit(130)  # pragma: no cover - not reached
    return 130


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI; expected errors become one line and exit code 2; Ctrl-C
    gives 130 and SIGTERM 143, both after removing temporary files."""
    args = list(sys.argv[1:] if argv is None else argv)
    for name in ("stdout", "stderr"):  # closed by the caller (2>&-): Python sets None; the run goes on unheard
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w"))
    _INVOCATION[:] = [str(a) for a in args]
    _OUTPUT_DONE.update(done=False, active=True)
    _LATE_SIGNALS.clear()
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        status = _main(args, debug="--debug" in args[:1] or os.environ.get("FIJIDECON_DEBUG", "") not in ("", "0"))
    finally:
        import threading

        _OUTPUT_DONE["active"] = False
        if threading.current_thread() is threading.main_thread():
            done = _OUTPUT_DONE["done"] and argv is None  # the process exits now, its output in place
            for sig, handler in saved.items():  # in-process callers get their handlers back
                signal.signal(sig, _late_signal if done else handler)
    if _LATE_SIGNALS and status == 0:  # the output is complete; the caller asked to stop: say so, end by it
        out = _output_argument(args)
        word = "Interrupted" if _LATE_SIGNALS[0] == signal.SIGINT else "Terminated"
        click.echo(f"{word} (after {out or 'the output'} was written: it is complete).", err=True)
        return 128 + _LATE_SIGNALS[0]
    return status


class _OutOfMemory(Exception):
    """A run that ran out of memory or address space (:func:`out_of_memory`'s line)."""


#: What running out of memory or address space looks like, other than a MemoryError: a thread that cannot be
#: started (Python's 'can't start new thread', C++'s std::system_error EAGAIN), a C++ allocation
#: (std::bad_alloc), a library that cannot be mapped while it is imported, a C extension's bare failure.
_OOM_TEXTS = ("can't start new thread", "resource temporarily unavailable", "std::bad_alloc", "bad_alloc",
              "failed to map segment", "cannot allocate memory", "error return without exception set")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def out_of_memory(exc: BaseException) -> str | None:
    """One line for a run that ran out of memory or address space (``ulimit -v``), or None when ``exc``
    (or what caused it) is something else.

    A ``MemoryError`` (numpy's 'Unable to allocate', a bare one), ``std::bad_alloc``, "can't start new
    thread", EAGAIN from a C++ thread, ``OSError`` ENOMEM, a shared library that cannot be mapped: the
    line says what failed, the address-space limit and what the process maps when there is one, and the
    remedies.  A budget refusal (``ResourceError``, a message naming ``memory_limit``) is not one: it
    already says its remedy.
    """
    import errno

    from .errors import FijideconError

    for e in _causes(exc):
        text = _one_line(e)
        if isinstance(e, (FijideconError, click.ClickException)) or re.match(r"-*memory[_-]limit:", text):
            return None
        low = text.lower()
        if isinstance(e, MemoryError):
            what = text or "MemoryError"
        elif isinstance(e, OSError) and e.errno == errno.ENOMEM:
            what = text or "cannot allocate memory"
        elif isinstance(e, (RuntimeError, ImportError, OSError, SystemError)) and any(t in low for t in _OOM_TEXTS):
            what = text
        else:
            continue
        break
    else:
        return None
    from .deconvolve import _memory

    limit = _memory.address_space_limit()
    where = ""
    if limit is not None:
        where = (f" under ulimit -v {-(-limit // 1024)} (the process maps {_memory.vm_size() / 2**20:,.0f} MiB of its "
                 f"{limit / 2**20:,.0f} MiB)")
    remedy = ("raise ulimit -v, or leave --memory-limit out (auto: its budget counts the limit, and a plan that "
              "cannot fit it is refused before computing, naming the limit that runs it)" if limit else
              "give a smaller --memory-limit (more, smaller bricks), or free some memory")
    return f"out of memory during the run{where}: {what}; {remedy}; the output was not written"


def _main(args: list[str], debug: bool) -> int:
    try:
        with _sigterm_unwinds(), _resume_hint(args):
            try:
                rv = cli.main(args=args, prog_name="fijidecon", standalone_mode=False)
            except Exception as exc:
                message = None if debug else out_of_memory(exc)
                if message is None:
                    raise
                raise _OutOfMemory(message) from None
    except _OutOfMemory as exc:
        click.echo(f"Error: {exc}", err=True)
        return EXIT_USAGE
    except _Terminated as exc:
        click.echo("Terminated.", err=True)
        return int(exc.code)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            click.echo("Interrupted.", err=True)
            return _interrupted()
        click.echo("Aborted.", err=True)
        return 1
    except click.ClickException as exc:
        click.echo(f"Error: {_switch_hint(_one_line(exc.format_message()), args)}", err=True)
        return EXIT_USAGE if exc.exit_code in (1, 2) else exc.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return _interrupted()
    except CancelledError as exc:
        click.echo(f"Cancelled: {_one_line(exc)}", err=True)
        return 130
    except (ValueError, TypeError, OSError, MemoryError) as exc:  # OSError: a full disk, a read-only folder ...
        if debug:
            raise
        click.echo(f"Error: {_option_named(_one_line(exc), args)}", err=True)
        return EXIT_EXISTS if isinstance(exc, OutputExistsError) else EXIT_USAGE
    except Exception as exc:  # a programming error: still one line for the user, the traceback with --debug
        if debug:
            raise
        click.echo(f"Error: internal error ({type(exc).__name__}: {_one_line(exc)}); run 'fijidecon --debug ...' "
                   "for the traceback and please report it", err=True)
        return 1
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
