"""Speed and memory of iterative_deconvolve_3d, both modes, against the FFT floor.

Problem (issue 2): a 64×256×256 float32 image and a 32×64×64 PSF.  Prints, measured in
this run: set-up time, median time per iteration, the same as a ratio to the FFTs one
iteration needs (compat: 1 forward + 2 inverse real FFTs of its 128×512×512 grid;
improved: 1 forward + 1 inverse of its grid, same process), the speed-up over the
original Java plugin on this machine (33 s set-up, 5.1 s per iteration, measured for
issue 2), and the peak memory the run added (peak RSS of a child process, reset after the
inputs were made, minus its RSS then) in bytes per voxel of the image and of the FFT grid.

    python benchmarks/iterative3d_speed.py [--iterations N] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import numpy as np

JAVA_SETUP_S = 33.0
JAVA_ITER_S = 5.1
IMAGE_SHAPE = (64, 256, 256)


def inputs():
    from fijidecon.psf import diffraction_psf_3d

    psf = diffraction_psf_3d(width=64, height=64, depth=32, index=1.33, na=1.2, wavelength=520,
                             pixel_spacing=100, slice_spacing=250)
    image = np.random.default_rng(1).random(IMAGE_SHAPE, dtype=np.float32) * 100 + 10
    return image, psf


def fft_floor(shape, n_forward, n_inverse, repeats):
    from fijidecon.deconvolve import _fft

    a = np.random.default_rng(0).random(shape, dtype=np.float32)
    f = _fft.rfftn(a)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(n_forward):
            _fft.rfftn(a)
        for _ in range(n_inverse):
            _fft.irfftn(f, shape)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def child(mode: str, iterations: int) -> None:
    """Run one deconvolution in this fresh process and report its peak memory."""
    from fijidecon.deconvolve import iterative_deconvolve_3d

    image, psf = inputs()
    with open("/proc/self/clear_refs", "w") as f:  # reset the peak-RSS mark (VmHWM), Linux
        f.write("5")
    base = _status_bytes("VmRSS")
    iterative_deconvolve_3d(image, psf, compat=(mode == "compat"), max_iterations=iterations, terminate=-1000,
                            detect_divergence=False)
    print(json.dumps({"extra_bytes": _status_bytes("VmHWM") - base}))


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", choices=["compat", "improved"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.iterations)
        return
    from fijidecon.deconvolve import iterative_deconvolve_3d

    image, psf = inputs()
    print(f"image {image.shape} float32, psf {psf.shape}; {args.iterations} iterations x {args.repeats} runs "
          f"(medians)")
    print(f"{'mode':9s} {'grid':>13s} {'setup s':>8s} {'s/iter':>7s} {'FFT floor s':>11s} {'x floor':>7s} "
          f"{'vs Java/iter':>12s} {'vs Java setup':>13s} {'B/img voxel':>11s} {'B/grid voxel':>12s}")
    for compat in (True, False):
        setups, iters = [], []
        grid = None
        for _ in range(args.repeats):
            r = iterative_deconvolve_3d(image, psf, compat=compat, max_iterations=args.iterations,
                                        terminate=-1000, detect_divergence=False)
            setups.append(r.setup_seconds)
            iters.append(r.iteration_seconds / max(len(r.log), 1))
            grid = r.padded_shape
        floor = fft_floor(grid, 1, 2 if compat else 1, args.repeats)
        name = "compat" if compat else "improved"
        out = subprocess.run([sys.executable, __file__, "--child", name, "--iterations", "2"],
                             capture_output=True, text=True, check=True)
        extra = json.loads(out.stdout.strip().splitlines()[-1])["extra_bytes"]
        s, it = statistics.median(setups), statistics.median(iters)
        print(f"{name:9s} {'x'.join(map(str, grid)):>13s} {s:8.2f} {it:7.3f} {floor:11.3f} {it / floor:7.2f} "
              f"{JAVA_ITER_S / it:11.1f}x {JAVA_SETUP_S / s:12.1f}x {extra / image.size:11.0f} "
              f"{extra / np.prod(grid):12.1f}")


if __name__ == "__main__":
    main()
