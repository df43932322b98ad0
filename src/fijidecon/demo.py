"""The main job end to end on the bundled sample: PSF → deconvolution → TIFFs + PNG panel."""

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
from .calibration import Calibration
from .deconvolve import iterative_deconvolve_3d
from .psf import diffraction_psf_3d

#: The optics the bundled sample was simulated with (lengths in nm).
SAMPLE_OPTICS = dict(index=1.33, na=1.2, wavelength=520.0, pixel_spacing=100.0, slice_spacing=250.0)


def sample_path(name: str = "sample.tif") -> Path:
    """Path of a bundled sample file (``sample.tif`` or ``sample_truth.tif``)."""
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


def run(out_dir: Path, *, overwrite: bool = False) -> list[Path]:
    """Write ``psf.tif``, ``deconvolved.tif`` (+ JSON sidecars) and ``demo.png`` into ``out_dir``.

    Each sidecar (``psf.tif.json``, ``deconvolved.tif.json``) carries ``fijidecon_version``,
    ``command``, every parameter of the core function (``parameters``), the inputs (path,
    SHA-256, shape, dtype, calibration), the output (shape, dtype, calibration) and, for the
    deconvolution, its iterations, stop reason, per-iteration log and timings -- the same
    fields as a CLI sidecar.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    targets = [out_dir / n for n in ("psf.tif", "deconvolved.tif", "demo.png")]
    for t in targets[:2]:  # refuse before computing anything
        io.check_output(t, "ZYX", overwrite=overwrite, sidecar=True)
    if targets[2].exists() and not overwrite:
        raise FileExistsError(f"output: {targets[2]} exists (use --overwrite to replace it)")
    image, cal = io.read_image(sample_path())
    truth, _ = io.read_image(sample_path("sample_truth.tif"))
    psf_args = dict(width=32, height=32, depth=16, **SAMPLE_OPTICS)
    t0 = time.perf_counter()
    psf = diffraction_psf_3d(**psf_args)
    t1 = time.perf_counter()
    psf_cal = Calibration.make("ZYX", unit="nm", Z=SAMPLE_OPTICS["slice_spacing"], Y=SAMPLE_OPTICS["pixel_spacing"],
                               X=SAMPLE_OPTICS["pixel_spacing"])
    io.write_image(targets[0], psf, psf_cal, overwrite=overwrite)
    io.write_sidecar(targets[0], _record("Diffraction PSF 3D", all_parameters(diffraction_psf_3d, psf_args), [],
                                         targets[0], psf, psf_cal, {}, t1 - t0), overwrite=overwrite)
    t0 = time.perf_counter()
    res = iterative_deconvolve_3d(image, psf)
    t1 = time.perf_counter()
    io.write_image(targets[1], res.image, cal, overwrite=overwrite)
    inputs = [_file_record("image", sample_path(), image, cal), _file_record("psf", targets[0], psf, psf_cal)]
    result = {"iterations": res.iterations, "stop_reason": res.stop_reason, "log": res.log,
              "setup_seconds": res.setup_seconds, "iteration_seconds": res.iteration_seconds}
    io.write_sidecar(targets[1], _record("Iterative Deconvolve 3D", all_parameters(iterative_deconvolve_3d, {}),
                                         inputs, targets[1], res.image, cal, result, t1 - t0), overwrite=overwrite)
    save_panel(targets[2], image, psf, res.image, truth, overwrite=overwrite,
               title=f"Iterative Deconvolve 3D (compatible mode), {res.iterations} iterations",
               z_aspect=cal.dz / cal.dx)
    return targets


def _record(command: str, parameters: dict[str, Any], inputs: list, out: Path, arr: np.ndarray, cal: Calibration,
            result: dict[str, Any], seconds: float) -> dict[str, Any]:
    return {"fijidecon_version": __version__, "command": command, "cli": "fijidecon demo", "parameters": parameters,
            "inputs": inputs, "output": {"path": os.path.abspath(out), "shape": list(arr.shape),
                                         "dtype": str(arr.dtype), "axes": cal.axes,
                                         "calibration": dataclasses.asdict(cal)},
            "result": result, "timings_s": {"compute": seconds}}


def save_panel(path: Path, image, psf, result, truth=None, *, title: str = "", z_aspect: float = 1.0,
               overwrite: bool = False) -> Path:
    """PNG with xy and xz views of input, PSF, result (and truth); ``z_aspect`` = dz/dx."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        raise RuntimeError("the PNG panel needs matplotlib: pip install 'fijidecon[plot]'") from None
    cols = [("input", image), ("PSF", psf), ("result", result)] + ([("truth", truth)] if truth is not None else [])
    fig, axes = plt.subplots(2, len(cols), figsize=(3.2 * len(cols), 5.5), squeeze=False)
    for j, (name, vol) in enumerate(cols):
        vol = np.asarray(vol, dtype=np.float32)
        if name == "PSF":  # centre sections, square-root scaled to show the rings
            zc, yc, _ = np.unravel_index(np.argmax(vol), vol.shape)
            xy, xz, what = np.sqrt(np.clip(vol[zc], 0, None)), np.sqrt(np.clip(vol[:, yc, :], 0, None)), "sqrt, centre"
        else:  # maximum-intensity projections
            xy, xz, what = vol.max(axis=0), vol.max(axis=1), "max projection"
        axes[0, j].imshow(xy, cmap="magma")
        axes[0, j].set_title(f"{name}: xy ({what})", fontsize=9)
        axes[1, j].imshow(xz, cmap="magma", aspect=z_aspect)
        axes[1, j].set_title(f"{name}: xz", fontsize=9)
        for a in axes[:, j]:
            a.set_xticks([])
            a.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    import io as _io

    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return io.atomic_write_bytes(path, buf.getvalue(), overwrite=overwrite)
