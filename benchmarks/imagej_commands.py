"""Overhead of running fijidecon's commands through ImageJ 1.x (macro -> dialog -> ImagePlus
conversion -> core -> result window) compared with calling the Python API directly.

Run:  python benchmarks/imagej_commands.py   (starts Xvfb itself when DISPLAY is unset)
Prints medians over repeats and the ratio ImageJ / API.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
REPEATS = 7


def _median(fn, repeats=REPEATS):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    from fijidecon.deconvolve import iterative_deconvolve_3d
    from fijidecon.fiji import commands, convert, runtime
    from fijidecon.fiji.cli_imagej import ensure_display
    from fijidecon.psf import diffraction_psf_3d

    ensure_display()
    runtime.start(heap="2g")
    runtime.imagej()
    commands.install()
    img = np.load(DATA / "input3d_40x36x12.npy")
    psf = np.load(DATA / "psfA_32x32x16.npy")
    convert.to_imageplus(img, title="img3d").show()
    convert.to_imageplus(psf, title="psfA").show()

    cases = [
        ("Diffraction PSF 3D 64x64x32",
         'run("Diffraction PSF 3D", "index=1.33 numerical=1.2 wavelength=520 image=100 slice=250 '
         'width,=64 height,=64 depth,=32 title=bench"); close("bench");',
         lambda: diffraction_psf_3d(index=1.33, na=1.2, wavelength=520, pixel_spacing=100, slice_spacing=250,
                                    width=64, height=64, depth=32)),
        ("Iterative Deconvolve 3D R1 (74 it.)",
         'run("Iterative Deconvolve 3D", "image=img3d point=psfA output=B perform detect wiener=0 low=1 '
         'z_direction=1 maximum=100 terminate=0.01"); close("B_74");',
         lambda: iterative_deconvolve_3d(img, psf)),
        ("  the same with Show iteration",
         'run("Iterative Deconvolve 3D", "image=img3d point=psfA output=B show perform detect wiener=0 low=1 '
         'z_direction=1 maximum=100 terminate=0.01"); close("B_74");',
         lambda: iterative_deconvolve_3d(img, psf)),
    ]
    print(f"{'case':40s} {'ImageJ macro s':>15s} {'Python API s':>13s} {'ratio':>7s}")
    for name, macro, api in cases:
        api()
        r = commands.run_macro(macro)
        assert r.ok, r.error
        t_ij = _median(lambda: commands.run_macro(macro))
        t_api = _median(api)
        print(f"{name:40s} {t_ij:15.3f} {t_api:13.3f} {t_ij / t_api:7.2f}")
    sys.stdout.flush()
    import os

    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
