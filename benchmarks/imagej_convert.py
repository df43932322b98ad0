"""Throughput of the ImageJ bridge converters (medians of a few runs).

numpy -> ImagePlus and back copy every plane once (bulk primitive-array copies);
numpy -> ImgLib2 (``to_img``) shares memory, so its time must not grow with the size.

Usage::

    python benchmarks/imagej_convert.py [--repeat 5] [--shape 64 512 512]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def _median_time(fn, repeat: int) -> float:
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--shape", type=int, nargs="+", default=[64, 512, 512])
    a = ap.parse_args()

    from fijidecon.fiji import convert, runtime

    runtime.start(heap="4g", headless=True)
    shape = tuple(a.shape)
    print(f"shape {shape}, {a.repeat} runs each, medians")
    for dtype in (np.uint8, np.uint16, np.float32):
        arr = (np.random.default_rng(0).random(shape) * 200).astype(dtype)
        mb = arr.nbytes / 1e6
        imp = convert.to_imageplus(arr)
        t_to = _median_time(lambda: convert.to_imageplus(arr), a.repeat)
        t_from = _median_time(lambda: convert.from_imageplus(imp), a.repeat)
        t_copy = _median_time(lambda: arr.copy(), a.repeat)
        print(f"{np.dtype(dtype).name:8s} {mb:7.1f} MB  to_imageplus {t_to * 1e3:7.1f} ms ({mb / t_to:6.0f} MB/s)  "
              f"from_imageplus {t_from * 1e3:7.1f} ms ({mb / t_from:6.0f} MB/s)  "
              f"numpy copy {t_copy * 1e3:6.1f} ms -> to/from = {t_to / t_copy:.0f}x / {t_from / t_copy:.0f}x a numpy copy")
    small = np.zeros((4, 4, 4), np.float32)
    big = np.zeros(shape, np.float32)
    t_small = _median_time(lambda: convert.to_img(small), a.repeat * 4)
    t_big = _median_time(lambda: convert.to_img(big), a.repeat * 4)
    print(f"to_img (zero-copy): {small.nbytes} B in {t_small * 1e3:.2f} ms, {big.nbytes / 1e6:.0f} MB in "
          f"{t_big * 1e3:.2f} ms -> size ratio {big.nbytes / small.nbytes:.0f}x, time ratio {t_big / t_small:.1f}x")
    t_from_img = _median_time(lambda: convert.from_img(convert.to_img(big)), a.repeat)
    print(f"from_img (one Java-side copy) of {big.nbytes / 1e6:.0f} MB: {t_from_img * 1e3:.1f} ms "
          f"({big.nbytes / 1e6 / t_from_img:.0f} MB/s)")


if __name__ == "__main__":
    main()
