"""The main job end to end on a realistic synthetic sample: truth → widefield image → deconvolution → PNG.

:func:`make_sample` builds, at run time, a 64 × 128 × 128 (Z, Y, X) volume of a hundred and fifty
sub-resolution beads and sixty curved filaments (the *truth*, photons per voxel),
images it with a widefield PSF (:func:`fijidecon.psf.widefield`: NA 1.3 oil objective,
520 nm emission, 250 nm slices, 100 nm pixels), adds a constant background and Poisson
noise.  :func:`run` writes the input, the truth, the PSF and the deconvolution (Richardson-Lucy
with :data:`METHOD`, the best method of ``benchmarks/quality.py``) as calibrated TIFFs with
JSON sidecars, and ``demo.png``: input, result and truth side by side (xy and xz maximum
projections, scale bars in µm).  Nothing is downloaded; everything is generated.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import time
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import __version__, io
from .errors import OutputExistsError
from .calibration import Calibration
from .deconvolve import convolve, richardson_lucy
from .psf import widefield

#: The sample's shape (Z, Y, X), voxel size (nm) and optics.
SHAPE = (64, 128, 128)
VOXEL_NM = (250.0, 100.0, 100.0)
OPTICS = dict(na=1.3, wavelength_nm=520.0, immersion_index=1.515, sample_index=1.515)
#: The PSF's box (Z, Y, X): about 8 µm deep, 6.4 µm wide.
PSF_SHAPE = (32, 64, 64)
#: Constant background (photons per voxel) and the seed of the sample.
BACKGROUND = 20.0
SEED = 2026
#: Richardson-Lucy settings of the demo: the scoreboard's best method (``benchmarks/quality.py``).
METHOD = dict(iterations=30, acceleration="momentum")


def sample_path(name: str = "sample.tif") -> Path:
    """Path of a bundled file (``sample.tif``, a 40 × 36 × 12 toy used by ``fijidecon macro {sample}``)."""
    return Path(str(resources.files("fijidecon") / "data" / name))


def all_parameters(func: Callable[..., Any], given: dict[str, Any]) -> dict[str, Any]:
    """Every keyword parameter of ``func`` with a value: ``given`` over its signature defaults
    (arrays and callbacks left out)."""
    out = {}
    for name, q in inspect.signature(func).parameters.items():
        if name in given:
            out[name] = given[name]
        elif q.default is not inspect.Parameter.empty and not callable(q.default) and name != "callback":
            out[name] = q.default
    return out


def _file_record(parameter: str, path: Path, arr: np.ndarray, cal: Calibration) -> dict[str, Any]:
    return {"parameter": parameter, "path": os.path.abspath(path), "sha256": io.sha256_file(path),
            "shape": list(arr.shape), "dtype": str(arr.dtype), "calibration": dataclasses.asdict(cal)}


def _filament(t: np.ndarray, rng: np.random.Generator, margin: int, brightness: float) -> None:
    """Add one smooth random curve (steps of half a voxel, flatter in z) to ``t``."""
    shape = np.array(t.shape)
    p = np.array([rng.uniform(margin, n - margin) for n in shape])
    d = rng.normal(size=3)
    d[0] *= 0.3
    d /= np.linalg.norm(d)
    for _ in range(int(rng.uniform(60, 200))):
        d += rng.normal(scale=0.06, size=3)
        d[0] *= 0.8
        d /= np.linalg.norm(d)
        p = p + 0.5 * d
        q = np.round(p).astype(int)
        if np.all(q >= margin) and np.all(q < shape - margin):
            t[tuple(q)] += brightness


def make_sample(shape: tuple[int, int, int] = SHAPE, *, seed: int = SEED, n_beads: int = 150,
                n_filaments: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A synthetic widefield stack with known truth.

    Parameters
    ----------
    shape:
        (Z, Y, X) voxels; voxel size :data:`VOXEL_NM`.
    seed:
        Seed of the objects and of the noise.
    n_beads, n_filaments:
        Number of sub-resolution beads (single voxels, 1000-4000 photons) and of curved
        filaments (1 voxel wide, 500 photons per half-voxel step).

    Returns
    -------
    image : ndarray, uint16, ``shape``
        Poisson counts (photons) of the blurred truth plus :data:`BACKGROUND`, as a camera
        with gain 1 and offset 0 would record them.
    truth : ndarray, float32, ``shape``
        The object (photons per voxel).
    psf : ndarray, float32, :data:`PSF_SHAPE` (or smaller for small ``shape``)
        The widefield PSF it was imaged with, sum 1.
    """
    rng = np.random.default_rng(seed)
    t = np.zeros(shape, np.float32)
    margin = 3
    idx = tuple(rng.integers(margin, n - margin, n_beads) for n in shape)
    np.add.at(t, idx, rng.uniform(1000, 4000, n_beads).astype(np.float32))
    for _ in range(n_filaments):
        _filament(t, rng, margin, 500.0)
    psf_shape = tuple(min(p, n) for p, n in zip(PSF_SHAPE, shape))
    psf = widefield(psf_shape, voxel_size_nm=VOXEL_NM, **OPTICS)
    blurred = np.clip(convolve(t, psf, edges="constant"), 0, None) + np.float32(BACKGROUND)
    image = np.minimum(rng.poisson(blurred), 65535).astype(np.uint16)
    return image, t, psf


def run(out_dir: Path, *, overwrite: bool = False, shape: tuple[int, int, int] = SHAPE,
        iterations: int | None = None) -> list[Path]:
    """Write the demo's files into ``out_dir`` and return their paths.

    ``sample.tif`` (the input), ``truth.tif``, ``psf.tif``, ``deconvolved.tif`` (each
    calibrated in nm; the last three with JSON sidecars) and ``demo.png``.  Each sidecar
    carries ``fijidecon_version``, ``command``, every parameter of the core function
    (``parameters``), the inputs (path, SHA-256, shape, dtype, calibration), the output and,
    for the deconvolution, its iterations, stop reason, per-iteration figures and timings --
    the same fields as a CLI sidecar.  ``shape`` and ``iterations`` make a smaller, quicker
    demo (tests).

    Raises
    ------
    FileExistsError
        If an output exists and ``overwrite`` is False (checked before computing anything).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = ("sample.tif", "truth.tif", "psf.tif", "deconvolved.tif", "demo.png")
    targets = {n: out_dir / n for n in names}
    for n in names[:4]:  # refuse before computing anything
        io.check_output(targets[n], "ZYX", overwrite=overwrite, sidecar=n != "sample.tif")
    if targets["demo.png"].is_dir():
        raise IsADirectoryError(f"output: {targets['demo.png']} is a folder; remove it or choose another folder")
    if targets["demo.png"].exists() and not overwrite:
        raise OutputExistsError(f"output: {targets['demo.png']} exists (use --overwrite to replace it)")
    cal = Calibration.make("ZYX", unit="nm", Z=VOXEL_NM[0], Y=VOXEL_NM[1], X=VOXEL_NM[2])
    t0 = time.perf_counter()
    image, truth, psf = make_sample(shape)
    t_sim = time.perf_counter() - t0
    io.write_image(targets["sample.tif"], image, cal, overwrite=overwrite)
    io.write_image(targets["truth.tif"], truth, cal, overwrite=overwrite)
    sim = {"shape": list(shape), "voxel_size_nm": list(VOXEL_NM), "background": BACKGROUND, "seed": SEED,
           "noise": "Poisson", **OPTICS}
    io.write_sidecar(targets["truth.tif"], _record("fijidecon.demo.make_sample", sim, [], targets["truth.tif"],
                                                   truth, cal, {}, t_sim), overwrite=overwrite)
    io.write_image(targets["psf.tif"], psf, cal, overwrite=overwrite)
    psf_args = dict(shape=list(psf.shape), voxel_size_nm=list(VOXEL_NM), **OPTICS)
    io.write_sidecar(targets["psf.tif"], _record("fijidecon.psf.widefield", all_parameters(widefield, psf_args), [],
                                                 targets["psf.tif"], psf, cal, {}, t_sim), overwrite=overwrite)
    args = dict(METHOD, background=BACKGROUND)
    if iterations is not None:
        args["iterations"] = int(iterations)
    t0 = time.perf_counter()
    res = richardson_lucy(image, psf, **args)
    t1 = time.perf_counter()
    io.write_image(targets["deconvolved.tif"], res.image, cal, overwrite=overwrite)
    inputs = [_file_record("image", targets["sample.tif"], image, cal),
              _file_record("psf", targets["psf.tif"], psf, cal)]
    result = {"iterations": res.iterations, "stop_reason": res.stop_reason, "notes": res.notes,
              "history": [dataclasses.asdict(f) for f in res.history]}
    io.write_sidecar(targets["deconvolved.tif"],
                     _record("Richardson-Lucy Deconvolution", all_parameters(richardson_lucy, args), inputs,
                             targets["deconvolved.tif"], res.image, cal, result, t1 - t0), overwrite=overwrite)
    how = ", ".join(f"{k}={v}" for k, v in args.items() if k != "iterations")
    save_panel(targets["demo.png"], image, res.image, truth, voxel_nm=VOXEL_NM, overwrite=overwrite,
               title=f"Richardson-Lucy ({how}), {res.iterations} iterations, {t1 - t0:.0f} s; "
                     f"widefield NA {OPTICS['na']}, {image.shape[0]}×{image.shape[1]}×{image.shape[2]} voxels, "
                     f"Poisson noise")
    return [targets[n] for n in names]


def _record(command: str, parameters: dict[str, Any], inputs: list, out: Path, arr: np.ndarray, cal: Calibration,
            result: dict[str, Any], seconds: float) -> dict[str, Any]:
    return {"fijidecon_version": __version__, "command": command, "cli": "fijidecon demo", "parameters": parameters,
            "inputs": inputs, "output": {"path": os.path.abspath(out), "shape": list(arr.shape),
                                         "dtype": str(arr.dtype), "axes": cal.axes,
                                         "calibration": dataclasses.asdict(cal)},
            "result": result, "notes": list(result.get("notes", [])), "warnings": [],
            "timings_s": {"compute": seconds}}


def _scale_bar(ax, length_px: float, label: str, shape: tuple[int, int]) -> None:
    """A white bar with its length in the lower right corner of an image axis."""
    from matplotlib.patches import Rectangle

    h, w = shape
    x0, y0 = w - length_px - 0.04 * w, h - 0.06 * h
    ax.add_patch(Rectangle((x0, y0), length_px, max(0.012 * h, 1.0), color="white"))
    ax.text(x0 + length_px / 2, y0 - 0.015 * h, label, color="white", ha="center", va="bottom", fontsize=8)


def save_panel(path: Path, image, result, truth, *, voxel_nm=VOXEL_NM, title: str = "",
               overwrite: bool = False) -> Path:
    """PNG: input, result and truth side by side (xy and xz maximum projections, scale bars).

    Each column has its own grey scale (0 to its 99.9th percentile) so that the input's haze
    and the result's detail are both visible; the xz views are stretched by dz/dx.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        raise RuntimeError("the PNG panel needs matplotlib: pip install 'fijidecon[plot]'") from None
    cols = [("input (widefield, Poisson noise)", image), ("deconvolved", result), ("truth", truth)]
    dz, dx = voxel_nm[0], voxel_nm[-1]
    nz, ny, nx = np.shape(image)
    bar_um = 2.0 if nx * dx >= 6000 else 1.0
    fig, axes = plt.subplots(2, 3, figsize=(12, 4 * (ny + nz * dz / dx) / nx + 0.9),
                             gridspec_kw={"height_ratios": [ny, nz * dz / dx]}, squeeze=False)
    for j, (name, vol) in enumerate(cols):
        vol = np.asarray(vol, dtype=np.float32)
        xy, xz = vol.max(axis=0), vol.max(axis=1)
        vmax = float(np.percentile(xy, 99.9)) or 1.0
        lo = float(np.percentile(xy, 1)) if j == 0 else 0.0
        axes[0, j].imshow(xy, cmap="gray", vmin=lo, vmax=vmax, interpolation="nearest")
        axes[0, j].set_title(f"{name}\nxy, max projection", fontsize=9)
        axes[1, j].imshow(xz, cmap="gray", vmin=lo, vmax=vmax, aspect=dz / dx, interpolation="nearest")
        axes[1, j].set_title("xz, max projection", fontsize=9)
        _scale_bar(axes[0, j], bar_um * 1000 / dx, f"{bar_um:g} µm", (ny, nx))
        _scale_bar(axes[1, j], bar_um * 1000 / dx, f"{bar_um:g} µm", (nz, nx))
        for a in axes[:, j]:
            a.set_xticks([])
            a.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    import io as _io

    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return io.atomic_write_bytes(path, buf.getvalue(), overwrite=overwrite)


#: The ImageJ macro of the main job (also run by hand with ``fijidecon macro``).
MACRO = Path(__file__).resolve().parents[2] / "examples" / "main_job.ijm"


def run_imagej(out_dir: Path, *, macro: Path | None = None, heap: str | None = None,
               timeout: float = 900.0) -> list[Path]:
    """The demo's ImageJ half: ``examples/main_job.ijm`` on the files :func:`run` wrote, and a screenshot.

    Starts ImageJ 1.x with fijidecon's commands (a private Xvfb when there is no display),
    runs the macro on ``out_dir/sample.tif`` with ``psf.tif`` and ``truth.tif`` (it writes
    ``out_dir/imagej/deconvolved.tif`` and arranges the titled windows side by side), then
    saves ``out_dir/imagej/imagej_screen.png`` with :func:`fijidecon.fiji.commands.screenshot`.
    Returns both paths and prints ImageJ's Log.

    Raises
    ------
    FileNotFoundError
        If :func:`run` has not written the sample, PSF and truth into ``out_dir``, or the macro is missing.
    RuntimeError
        If the macro fails (its error and line).
    """
    out_dir = Path(out_dir)
    macro = Path(macro) if macro is not None else MACRO
    need = [out_dir / n for n in ("sample.tif", "psf.tif", "truth.tif")] + [macro]
    missing = [str(p) for p in need if not p.exists()]
    if missing:
        raise FileNotFoundError(f"out_dir: missing {', '.join(missing)} (run `fijidecon demo -o {out_dir}` first)")
    from .fiji import cli_imagej, commands, runtime

    cli_imagej.ensure_display()
    runtime.start(heap=heap, headless=False)
    runtime.imagej(show=True)
    commands.install(log=False)
    sub = out_dir / "imagej"
    sub.mkdir(parents=True, exist_ok=True)
    arg = " ".join(f"{k}=[{v}]" for k, v in (("input", out_dir / "sample.tif"), ("psf", out_dir / "psf.tif"),
                                               ("truth", out_dir / "truth.tif"), ("outdir", sub)))
    arg += f" iterations={METHOD['iterations']} background={BACKGROUND:g} screenshot=0"
    r = commands.run_macro(macro.read_text(), arg, timeout=timeout, ignore_errors=True, dismiss_dialogs=True)
    if r.log:
        print(r.log.rstrip("\n"))
    if not r.ok:
        raise RuntimeError(f"macro: {macro} failed{f' at line {r.line}' if r.line else ''}: {r.error}")
    _log_beside_images()
    shot = commands.screenshot(str(sub / "imagej_screen.png"))
    return [sub / "deconvolved.tif", Path(shot)]


def _log_beside_images() -> None:
    """Move ImageJ's Log window to the right of the macro's 2 x 2 grid of images (no overlap)."""
    from .fiji import runtime

    log = runtime.jimport("ij.WindowManager").getWindow("Log")
    size = runtime.jimport("java.awt.Toolkit").getDefaultToolkit().getScreenSize()
    cell = (int(size.height) - 110) // 2  # the macro's grid cell
    if log is not None:
        x = 2 * cell + 60
        log.setBounds(x, 110, max(int(size.width) - x - 10, 200), 300)
        log.toFront()
    time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    """``python -m fijidecon.demo [--imagej] OUT``: the demo's files (or, with ``--imagej``, its ImageJ half)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m fijidecon.demo", description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path, help="output folder")
    ap.add_argument("--imagej", action="store_true", help="run examples/main_job.ijm in ImageJ on OUT's files")
    ap.add_argument("--overwrite", action="store_true")
    a = ap.parse_args(argv)
    paths = run_imagej(a.out) if a.imagej else run(a.out, overwrite=a.overwrite)
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    import sys

    code = main()
    sys.stdout.flush()
    os._exit(code)  # AWT's threads would keep the JVM (and this process) alive
