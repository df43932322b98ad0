"""The memory model against measured peaks: ``estimate_memory`` vs the peak RSS of a child process.

Each case runs in its own child process (:func:`fijidecon.deconvolve._memory.measure_peak`:
peak resident set size minus the resident set size once the inputs exist).  Prints one
table (method, options, shape, estimate MiB, measured MiB, ratio) and the bytes per image
voxel and per work voxel of each method.

    .venv/bin/python benchmarks/memory_model.py            # 32x128x128 to 64x512x512
    .venv/bin/python benchmarks/memory_model.py --quick    # the small sizes only
    .venv/bin/python benchmarks/memory_model.py --only wiener
"""

from __future__ import annotations

import argparse
import time

from fijidecon.deconvolve import _memory

PSF = (15, 31, 31)
SIZES = [(32, 128, 128), (64, 256, 256), (64, 512, 512)]
CASES = [
    ("richardson-lucy", {}),
    ("richardson-lucy", {"acceleration": "biggs-andrews"}),
    ("richardson-lucy", {"acceleration": "momentum"}),
    ("richardson-lucy", {"back_projector": "wiener-butterworth"}),
    ("richardson-lucy", {"back_projector": "wiener-butterworth", "edges": "periodic"}),
    ("richardson-lucy", {"regularization": "tv"}),
    ("richardson-lucy", {"edges": "periodic"}),
    ("richardson-lucy", {"edges": "reflect"}),
    ("richardson-lucy", {"track_deviance": True}),
    ("richardson-lucy", {"dtype": "uint16"}),
    ("richardson-lucy", {"iterations": 4, "snapshot_every": 1}),
    ("wiener", {}),
    ("wiener", {"regularization": 1e-3}),
    ("wiener", {"regularization": "gcv"}),
    ("wiener", {"regularization": "imspector"}),
    ("wiener", {"edges": "periodic", "regularization": 1e-3}),
    ("convolve", {}),
    ("convolve", {"edges": "periodic"}),
    ("convolve", {"edges": "constant"}),
    ("iterative-deconvolve-3d", {}),
    ("iterative-deconvolve-3d", {"anti_ringing": False}),
    ("iterative-deconvolve-3d", {"compat": False}),
    ("iterative-deconvolve-3d", {"compat": False, "gamma": 0.01}),
]


def _opts(o: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in o.items()) or "defaults"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="32x128x128 and 64x256x256 only")
    ap.add_argument("--only", help="run only this method")
    args = ap.parse_args()
    sizes = SIZES[:2] if args.quick else SIZES
    mib = 2 ** 20
    print(f"PSF {'x'.join(map(str, PSF))}; FFT threads {_memory._threads(None)}; estimates include "
          f"{_memory.OVERHEAD / mib:.0f} MiB fixed overhead\n")
    print(f"{'method':<24s} {'options':<36s} {'shape':<12s} {'work grid':<12s} {'estimate':>9s} {'measured':>9s} "
          f"{'ratio':>6s} {'s':>5s}")
    worst = 1.0
    per_voxel = {}
    for method, opts in CASES:
        if args.only and method != args.only:
            continue
        for shape in sizes:
            m = _memory.memory_model(method, shape, PSF, **opts)
            t0 = time.perf_counter()
            got = _memory.measure_peak(method, shape, PSF, **opts)
            dt = time.perf_counter() - t0
            ratio = m.total / got
            worst = max(worst, ratio, 1 / ratio)
            print(f"{method:<24s} {_opts(opts):<36s} {'x'.join(map(str, shape)):<12s} "
                  f"{'x'.join(map(str, m.work_shape)):<12s} {m.total / mib:8.1f}M {got / mib:8.1f}M "
                  f"{ratio:6.2f} {dt:5.1f}", flush=True)
            per_voxel[(method, _opts(opts))] = (m.per_image_voxel(), m.per_work_voxel(),
                                               (got - m.overhead) / m.image_voxels,
                                               (got - m.overhead) / m.work_voxels)
    print(f"\nworst ratio estimate/measured (or its inverse): {worst:.2f}\n")
    print(f"bytes per voxel at {'x'.join(map(str, sizes[-1]))} (model; measured minus the overhead)")
    print(f"{'method':<24s} {'options':<36s} {'B/image voxel':>14s} {'B/work voxel':>13s} "
          f"{'measured/image':>15s} {'measured/work':>14s}")
    for (method, o), (bi, bw, mi, mw) in per_voxel.items():
        print(f"{method:<24s} {o:<36s} {bi:14.1f} {bw:13.1f} {mi:15.1f} {mw:14.1f}")


if __name__ == "__main__":
    main()
