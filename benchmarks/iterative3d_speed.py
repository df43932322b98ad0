"""Speed of iterative_deconvolve_3d, both modes, against the FFT floor of one iteration.

Problem (issue 2): a 64×256×256 float32 image and a 32×64×64 PSF.  Prints, measured in
this one process: set-up time, median time per iteration, the same as a ratio to the
FFTs one iteration needs (compat: 1 forward + 2 inverse real FFTs of its 128×512×512
grid; improved: 1 forward + 1 inverse of its grid), and the speed-up over the original
Java plugin on this machine (33 s set-up, 5.1 s per iteration, as measured for issue 2).

    python benchmarks/iterative3d_speed.py [--iterations N] [--repeats R]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from fijidecon.deconvolve import _fft, iterative_deconvolve_3d
from fijidecon.psf import diffraction_psf_3d

JAVA_SETUP_S = 33.0
JAVA_ITER_S = 5.1


def fft_floor(shape, n_forward, n_inverse, repeats):
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    psf = diffraction_psf_3d(width=64, height=64, depth=32, index=1.33, na=1.2, wavelength=520,
                             pixel_spacing=100, slice_spacing=250)
    image = rng.random((64, 256, 256), dtype=np.float32) * 100 + 10
    print(f"image {image.shape} float32, psf {psf.shape}; {args.iterations} iterations x {args.repeats} runs")
    print(f"{'mode':9s} {'grid':>15s} {'setup s':>8s} {'s/iter':>8s} {'FFT floor s':>11s} "
          f"{'x floor':>8s} {'vs Java/iter':>12s} {'vs Java setup':>13s}")
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
        s, it = statistics.median(setups), statistics.median(iters)
        name = "compat" if compat else "improved"
        print(f"{name:9s} {'x'.join(map(str, grid)):>15s} {s:8.2f} {it:8.3f} {floor:11.3f} "
              f"{it / floor:8.2f} {JAVA_ITER_S / it:11.1f}x {JAVA_SETUP_S / s:12.1f}x")


if __name__ == "__main__":
    main()
