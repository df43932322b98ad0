"""Richardson-Lucy speed and memory on a 128x256x256 float32 stack with a 32x64x64 PSF.

Prints, for both edge modes (periodic and non-circulant):

* ms per RL iteration (median of the per-iteration times recorded by the engine, so
  the setup - PSF preparation, OTF, normalisation map - is excluded),
* the ratio to the *FFT floor*: two forward + two inverse real FFTs of the work shape
  actually used, same backend, same process, same allocator setting
  (:func:`fijidecon.deconvolve._fft.reuse_memory`), measured in rounds interleaved with
  the iterations,
* the ratio of ``skimage.restoration.richardson_lucy`` (float32, same data, same PSF)
  to ours,
* the peak extra memory during a run (resident-set high-water mark minus the resident
  set before the call, via ``/proc/self/clear_refs``) in bytes per image voxel and per
  work-grid voxel.

Usage::

    python benchmarks/rl_speed.py [--rounds 4] [--iterations 3] [--skimage-iterations 1] [--backend scipy|pyfftw]
                                  [--shape 128 256 256] [--psf 32 64 64]

Targets (issue 3): <= 1.25x the FFT floor; >= 5x faster than scikit-image with periodic
edges and >= 2x with non-circulant edges; <= 40 B/voxel.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from fijidecon.deconvolve import _fft, convolve, richardson_lucy  # noqa: E402


def gaussian_psf(shape, sigma):
    g = np.indices(shape, dtype=np.float32)
    r2 = sum(((gi - n // 2) / s) ** 2 for gi, n, s in zip(g, shape, sigma))
    p = np.exp(-0.5 * r2)
    return (p / p.sum()).astype(np.float32)


def make_data(shape, psf, seed=0):
    rng = np.random.default_rng(seed)
    obj = np.zeros(shape, np.float32)
    idx = tuple(rng.integers(0, n, 400) for n in shape)
    obj[idx] = rng.uniform(500, 3000, 400).astype(np.float32)
    blurred = np.clip(convolve(obj, psf, edges="constant"), 0, None) + 20
    return rng.poisson(blurred).astype(np.float32)


def _status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def peak_extra_bytes(fn):
    """Resident high-water mark during fn() minus the resident set before (Linux).

    Free heap memory is first returned to the system (glibc ``malloc_trim``), so that
    memory freed by earlier work (e.g. scikit-image's run) is not reused unseen."""
    gc.collect()
    lib = _fft._libc()
    if lib is not None:
        lib.malloc_trim(0)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return float("nan")
    base = _status("VmRSS")
    out = fn()
    peak = _status("VmHWM")
    del out
    gc.collect()
    return peak - base


def fft_floor_ms(work_shape, repeats=5):
    a = np.random.default_rng(1).random(work_shape, dtype=np.float32)
    _fft.irfftn(_fft.rfftn(a), work_shape, overwrite_x=True)  # plans / warm-up
    ts = []
    with _fft.reuse_memory():  # the same allocator setting as richardson_lucy uses
        for _ in range(repeats):
            t = time.perf_counter()
            for _ in range(2):
                f = _fft.rfftn(a)
                b = _fft.irfftn(f, work_shape, overwrite_x=True)
                del f, b
            ts.append(time.perf_counter() - t)
    return 1e3 * float(np.median(ts))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", type=int, nargs="+", default=[128, 256, 256])
    ap.add_argument("--psf", type=int, nargs="+", default=[32, 64, 64])
    ap.add_argument("--iterations", type=int, default=3, help="RL iterations per round")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--skimage-iterations", type=int, default=1, help="scikit-image iterations per round")
    ap.add_argument("--backend", choices=["scipy", "pyfftw"], default="scipy")
    ap.add_argument("--no-skimage", action="store_true")
    args = ap.parse_args(argv)
    shape, pshape = tuple(args.shape), tuple(args.psf)
    _fft.use_pyfftw(args.backend == "pyfftw")
    # widths chosen so that the whole 32x64x64 box is above the 1e-4 support threshold
    psf = gaussian_psf(pshape, [n / 6.4 for n in pshape])
    data = make_data(shape, psf)
    print(f"fijidecon RL speed: image {shape} float32, PSF {pshape}, backend {_fft.backend_name()}, "
          f"FFT threads {_fft.n_workers()}, {args.rounds} rounds of {args.iterations} iterations (medians); "
          f"load average {os.getloadavg()[0]:.2f}")

    sk_rl = None
    if not args.no_skimage:
        from skimage.restoration import richardson_lucy as sk_rl

    # Rounds interleave our iterations, the FFT floor and scikit-image, so that load from
    # other processes hits all three alike; medians over the rounds.
    rows, sk_all = [], []
    for edges in ("periodic", "non-circulant"):
        res = richardson_lucy(data, psf, 1, edges=edges)  # setup + warm-up (not timed)
        work = res._state["x"].shape
        fft_floor_ms(work, repeats=1)  # warm-up
        per_it, floors, sk = [], [], []
        for _ in range(args.rounds):
            floors.append(fft_floor_ms(work, repeats=1))
            res = richardson_lucy(data, psf, args.iterations, edges=edges, start=res)
            per_it += [1e3 * f.seconds for f in res.history]
            floors.append(fft_floor_ms(work, repeats=1))
            if sk_rl is not None:
                t = time.perf_counter()
                sk_rl(data, psf, num_iter=args.skimage_iterations, clip=False)
                sk.append(1e3 * (time.perf_counter() - t) / args.skimage_iterations)
        del res
        gc.collect()
        mem = peak_extra_bytes(lambda: richardson_lucy(data, psf, 3, edges=edges))
        ms, floor = float(np.median(per_it)), float(np.median(floors))
        sk_ms = float(np.median(sk)) if sk else float("nan")
        sk_all += sk
        rows.append((edges, work, ms, floor, ms / floor, sk_ms, sk_ms / ms, mem / np.prod(shape), mem / np.prod(work)))
    if sk_all:
        print(f"scikit-image richardson_lucy (float32, clip=False): median {np.median(sk_all):.0f} ms/iteration "
              f"over {len(sk_all)} runs of {args.skimage_iterations} iteration(s)")

    print()
    print(f"{'edges':<14} {'work shape':<16} {'ms/iter':>8} {'floor ms':>9} {'x floor':>8} {'skimage ms':>11}"
          f" {'x faster':>9} {'peak B/image vox':>17} {'peak B/work vox':>16}")
    for edges, work, ms, floor, rf, skm, rs, bi, bw in rows:
        print(f"{edges:<14} {str(work):<16} {ms:8.0f} {floor:9.0f} {rf:8.2f} {skm:11.0f} {rs:9.1f} {bi:17.1f} {bw:16.1f}")
    print("\nfloor = 2 forward + 2 inverse real FFTs of the work shape, same backend and process.")


if __name__ == "__main__":
    main()
