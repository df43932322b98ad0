"""Speed of the modern PSF models (median of repeated runs; ratios to psfmodels if installed).

Run:  python benchmarks/psf_speed.py [--repeats 5]

Prints one line per case: median seconds, and for the widefield model the ratio to
``psfmodels.scalar_psf`` (Aguet's C++ Gibson–Lanni scalar model) on the same grid.
Benchmarks on a shared 2-core machine are noisy: compare medians, not single runs.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from fijidecon.psf import gaussian, lorentzian, psf_from_beads, widefield


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    r = args.repeats
    try:
        import psfmodels
    except ImportError:  # optional cross-check only
        psfmodels = None

    print(f"{'case':58s} {'median s':>9s} {'vs psfmodels':>13s}")
    cases = [
        ("gaussian 64x256x256 float32", lambda: gaussian((64, 256, 256), (600, 250, 250), (200, 65, 65))),
        ("lorentzian 64x256x256 float32", lambda: lorentzian((64, 256, 256), (600, 250, 250), (200, 65, 65))),
    ]
    for name, fn in cases:
        print(f"{name:58s} {median_time(fn, r):9.3f}")

    for nz, nxy, aberr in ((65, 129, False), (65, 129, True), (129, 257, True)):
        kw = dict(sample_index=1.33, depth_nm=5000.0) if aberr else {}
        name = f"widefield {nz}x{nxy}x{nxy}, NA 1.4, oversample 3{' +mismatch' if aberr else ''}"
        t_ours = median_time(lambda: widefield((nz, nxy, nxy), voxel_size_nm=(100, 50, 50), na=1.4,
                                               wavelength_nm=600, apodization="uniform",
                                               axial_origin="paraxial", **kw), r)
        ratio = ""
        if psfmodels is not None:
            ns = kw.get("sample_index", 1.515)
            pz = kw.get("depth_nm", 0.0) / 1000
            zv = (np.arange(nz) - nz // 2) * 0.1 + pz
            t_ref = median_time(lambda: psfmodels.scalar_psf(zv, nx=nxy, dxy=0.05, pz=pz, wvl=0.6,
                                                             params=dict(NA=1.4, ns=ns, ni=1.515)), r)
            ratio = f"{t_ref / t_ours:12.1f}x"
        print(f"{name:58s} {t_ours:9.3f} {ratio:>13s}")

    deep_emitters(r)

    rng = np.random.default_rng(0)
    psf = widefield((25, 45, 45), voxel_size_nm=(150, 65, 65), na=1.3, wavelength_nm=520, normalize="peak")
    img = np.full((40, 256, 256), 100.0)
    for i in range(9):
        y, x = 40 + 80 * (i % 3), 40 + 80 * (i // 3)
        img[8:33, y - 22:y + 23, x - 22:x + 23] += 3000 * psf
    img = rng.poisson(img).astype(np.uint16)
    name = "psf_from_beads 40x256x256, 9 beads, crop 15x31x31"
    print(f"{name:58s} {median_time(lambda: psf_from_beads(img, (150, 65, 65), shape=(15, 31, 31)), r):9.3f}")
    name = "  ... resampled to 200x100x100 nm"
    t = median_time(lambda: psf_from_beads(img, (150, 65, 65), target_voxel_size=(200, 100, 100),
                                           shape=(11, 21, 21)), r)
    print(f"{name:58s} {t:9.3f}")


def deep_emitters(repeats: int) -> None:
    """Emitters deep under a 1.515/1.33 mismatch (thousands of angular nodes): the composite rule used above
    ``GLOBAL_RULE_NODES`` against one Gauss-Legendre rule of the same count, in one run (time ratio, rel L2)."""
    import sys

    mod = sys.modules[widefield.__module__]
    for depth in (3e5, 1e6):
        def run():
            return widefield((4, 16, 16), voxel_size_nm=(200, 65, 65), na=1.4, wavelength_nm=520,
                             sample_index=1.33, depth_nm=depth)
        t_new, new = median_time(run, repeats), run()
        keep = mod.GLOBAL_RULE_NODES
        mod.GLOBAL_RULE_NODES = 10**9
        try:
            t_old, old = median_time(run, repeats), run()
        finally:
            mod.GLOBAL_RULE_NODES = keep
        rel = float(np.linalg.norm(new - old) / np.linalg.norm(old))
        name = f"widefield 4x16x16, {depth / 1e3:g} um deep (composite vs one rule)"
        print(f"{name:58s} {t_new:9.3f} {t_old / t_new:11.1f}x faster, rel L2 {rel:.1e}")


if __name__ == "__main__":
    main()
