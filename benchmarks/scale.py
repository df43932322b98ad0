"""Scale benchmark: bricked and distributed deconvolution (issue 9), printed in one run.

    .venv/bin/python benchmarks/scale.py [--quick]

1. A 64x1024x1024 float32 volume, Richardson-Lucy (non-circulant, 10 iterations, a 31x63x63
   PSF), file to file through the CLI in child processes: whole volume (in memory, TIFF to
   TIFF) and under ``--memory-limit 1GB`` (lazy, TIFF to OME-Zarr, bricks).  Peak RSS of each
   child process (``VmHWM``, everything counted: Python, imports, the run) and the wall time.
2. Bricked vs whole: relative L2 difference and max |difference| / max, at the default halo;
   the halo / accuracy / time trade-off on a 64x512x512 crop in bricks of 64x256x256.
3. Throughput of a 4-timepoint hyperstack (4 x 32x256x256) with 1 and 2 Dask worker processes
   (``--workers``, a LocalCluster), and a projection to N machines from the measured per-task
   cost and transfer sizes (a 1 TB light-sheet time-lapse on 16 machines).

4. ``--halo`` (alone; about 10 minutes): the halo on real data - ``dapi_001.tif`` of
   ``../shared/data/real`` (deconwolf's demo, 40x201x101) with a 15x31x31 Diffraction PSF 3D, in
   bricks of 20x48x48 (z whole), momentum (the default) and plain RL at 10, 30 and 60 iterations,
   halos of 1, 1.5 (the default) and 2 PSF widths: relative L2 and max |difference| / max against
   the whole volume, and the time against the 1-width run.

5. ``--zarr`` (alone; about 2 minutes): an OME-Zarr input chunked within its planes (16x4096x4096 float32
   in 16x256x256 chunks, 1 GiB; ``--quick``: 16x2048x2048), convolved (9x15x15 PSF) to OME-Zarr: the
   smallest budget named, the one planned as whole planes, and the peak RSS above the imports at the named
   budget (``cli_big._band``).

``--quick`` runs everything on volumes 4x smaller (a check that the script works).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fijidecon.calibration import Calibration
from fijidecon.deconvolve import convolve, richardson_lucy
from fijidecon.io import read_image, write_image
from fijidecon.psf import gaussian

QUICK = "--quick" in sys.argv
SHAPE = (64, 512, 512) if QUICK else (64, 1024, 1024)
PSF_SHAPE = (31, 63, 63)
FWHM = (6.0, 3.0, 3.0)  # voxels (z, y, x)
ITER = 10
CAL = Calibration.make("ZYX", unit="micron", Z=0.3, Y=0.1, X=0.1)

# The peak is VmHWM (this process's own high-water mark), not ru_maxrss: on Linux ru_maxrss keeps the
# high-water mark of the memory image replaced by execve, i.e. of the parent at fork time.
_CHILD = r"""
import sys, time
from fijidecon.cli import main
t0 = time.perf_counter()
rc = main(sys.argv[1:])
hwm = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(f"CHILD {rc} {time.perf_counter() - t0:.3f} {hwm}", file=sys.stderr)
sys.exit(rc)
"""


def cli(*args) -> tuple[float, int, str]:
    """The CLI in a child process: (seconds, peak RSS bytes, stderr)."""
    r = subprocess.run([sys.executable, "-c", _CHILD, *map(str, args)], capture_output=True, text=True)
    m = re.search(r"CHILD (\d+) ([\d.]+) (\d+)", r.stderr)
    if r.returncode != 0 or not m:
        raise SystemExit(f"CLI failed: {' '.join(map(str, args))}\n{r.stderr[-2000:]}")
    return float(m.group(2)), int(m.group(3)), r.stderr


def make_data(d: Path) -> None:
    rng = np.random.default_rng(0)
    obj = np.zeros(SHAPE, np.float32)
    n = int(np.prod(SHAPE) // 4000)
    idx = tuple(rng.integers(0, s, n) for s in SHAPE)
    obj[idx] = rng.uniform(200, 2000, n).astype(np.float32)
    psf = gaussian(PSF_SHAPE, FWHM)
    img = convolve(obj, psf, memory_limit=False)
    del obj
    img = rng.poisson(np.maximum(img, 0) + 20).astype(np.float32)
    write_image(d / "big.tif", img, CAL)
    write_image(d / "psf.tif", psf, CAL)


def rel(a, b) -> tuple[float, float]:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b)), float(np.abs(a - b).max() / np.abs(b).max())


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def part1(d: Path) -> dict:
    print(f"== 1. {'x'.join(map(str, SHAPE))} float32, RL non-circulant, {ITER} iterations, "
          f"{'x'.join(map(str, PSF_SHAPE))} PSF (Gaussian, FWHM {FWHM} voxels) ==")
    tw, pw, _ = cli("deconvolve", "richardson-lucy", d / "big.tif", d / "psf.tif", "-o", d / "whole.tif",
                    "--iterations", ITER, "--memory-limit", "1TB", "-q")
    print(f"whole volume (in memory, TIFF -> TIFF):        {tw:7.1f} s, peak RSS {gib(pw)}")
    tb, pb, err = cli("deconvolve", "richardson-lucy", d / "big.tif", d / "psf.tif", "-o", d / "bricked.ome.zarr",
                      "--iterations", ITER, "--memory-limit", "1GB")
    print(f"--memory-limit 1GB (lazy, TIFF -> OME-Zarr):   {tb:7.1f} s, peak RSS {gib(pb)} "
          f"({'within' if pb <= 1.2e9 else 'OVER'} 1.2 GB), time ratio {tb / tw:.2f} (goal <= 1.4)")
    for line in err.splitlines():
        if line.startswith("Note:"):
            print("  " + line)
    whole, _ = read_image(d / "whole.tif")
    bricked, _ = read_image(d / "bricked.ome.zarr")
    l2, mx = rel(bricked, whole)
    print(f"bricked vs whole: relative L2 {l2:.2e} (goal <= 1e-3), max |diff| / max {mx:.2e} (goal <= 1e-2)")
    return {"whole_s": tw, "whole_peak": pw, "bricked_s": tb, "bricked_peak": pb, "l2": l2, "max": mx}


def part2(d: Path) -> None:
    crop = (64, 512, 512) if not QUICK else (64, 256, 256)
    core = (64, crop[1] // 2, crop[2] // 2)
    print(f"\n== 2. halo / accuracy / time on a {'x'.join(map(str, crop))} crop, bricks of "
          f"{'x'.join(map(str, core))} (RL, {ITER} iterations) ==")
    img, _ = read_image(d / "big.tif")
    img = np.ascontiguousarray(img[tuple(slice(0, n) for n in crop)])
    psf, _ = read_image(d / "psf.tif")
    t0 = time.perf_counter()
    whole = richardson_lucy(img, psf, ITER, acceleration=None, memory_limit=False).image
    tw = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = richardson_lucy(img, psf, ITER, acceleration=None, memory_limit=False, bricks=core)
    td = time.perf_counter() - t0
    m = re.search(r"halo of (\d+)x(\d+)x(\d+)", " ".join(map(str, res.notes)))
    default = tuple(int(v) for v in m.groups()) if m else PSF_SHAPE
    print(f"whole crop: {tw:.1f} s;  default halo = 1.5x the prepared PSF's full width: {'x'.join(map(str, default))}")
    print(f"{'halo (z, y, x)':>18} {'rel. L2':>10} {'max/max':>10} {'time':>8} {'vs whole':>9}")
    rows = [(tuple(max(1, int(round(f * h))) for h in default), f) for f in (1 / 6, 1 / 3, 2 / 3)]
    l2, mx = rel(res.image, whole)
    print(f"{str(default) + ' (default)':>18} {l2:10.2e} {mx:10.2e} {td:7.1f}s {td / tw:8.2f}x")
    for halo, f in rows:
        t0 = time.perf_counter()
        out = richardson_lucy(img, psf, ITER, acceleration=None, memory_limit=False, bricks=core, halo=halo).image
        t = time.perf_counter() - t0
        l2, mx = rel(out, whole)
        print(f"{str(halo) + f' ({1.5 * f:g}x)':>18} {l2:10.2e} {mx:10.2e} {t:7.1f}s {t / tw:8.2f}x")


def part4_real_halo() -> None:
    """The halo / accuracy trade-off on a real widefield stack (see the module docstring, 4)."""
    import warnings

    from fijidecon.psf import diffraction_psf_3d

    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "deconwolf_demo" / "dapi_001.tif"
    if not path.is_file():
        print(f"\n== 4. halo on real data: left out ({path} is not there) ==")
        return
    img, _ = read_image(path)
    img = img.astype(np.float32)
    psf = diffraction_psf_3d(width=31, height=31, depth=15, index=1.33, na=1.2, wavelength=520, pixel_spacing=130,
                             slice_spacing=300)
    core, width = (20, 48, 48), psf.shape
    print(f"\n== 4. halo on real data: dapi_001 {img.shape}, PSF {psf.shape}, bricks of {core}, background 2136 ==")
    print(f"{'method':>10} {'iter':>5} {'halo (z, y, x)':>22} {'rel. L2':>9} {'max/max':>9} {'time vs 1x':>11}")
    for acc in ("momentum", None):
        for n in (10, 30, 60):
            whole = richardson_lucy(img, psf, n, acceleration=acc, background=2136.1, memory_limit=False).image
            t1 = None
            for f in (1.0, 1.5, 2.0):
                halo = tuple(int(np.ceil(f * k)) for k in width)
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # the costly-bricks warning: small bricks on purpose
                    out = richardson_lucy(img, psf, n, acceleration=acc, background=2136.1, memory_limit=False,
                                          bricks=core, halo=halo).image
                t = time.perf_counter() - t0
                t1 = t1 or t
                l2, mx = rel(out, whole)
                label = f"{halo} ({f:g}x{', default' if f == 1.5 else ''})"
                print(f"{acc or 'plain':>10} {n:5d} {label:>22} {l2:9.2e} {mx:9.2e} {t / t1:10.2f}x", flush=True)


def part3(d: Path) -> None:
    hs = (4, 32, 256, 256) if not QUICK else (4, 16, 128, 128)
    print(f"\n== 3. throughput: {hs[0]}-timepoint hyperstack {'x'.join(map(str, hs[1:]))} float32, RL "
          f"{ITER} iterations, 15x31x31 PSF, LocalCluster worker processes ==")
    rng = np.random.default_rng(1)
    write_image(d / "hs.tif", rng.poisson(50, hs).astype(np.float32),
                Calibration.make("TZYX", unit="micron", Z=0.3, Y=0.1, X=0.1))
    write_image(d / "psf_small.tif", gaussian((15, 31, 31), FWHM), CAL)
    vox = int(np.prod(hs))
    rates = {}
    for w in (1, 2):
        out = d / f"hs_w{w}.ome.zarr"
        t, peak, _ = cli("deconvolve", "richardson-lucy", d / "hs.tif", d / "psf_small.tif", "-o", out,
                         "--iterations", ITER, "--workers", w, "-q")
        rec = json.loads(Path(str(out) + ".json").read_text())
        compute = float(rec["timings_s"]["compute_and_write"])
        rates[w] = vox / compute
        print(f"{w} worker(s): {t:6.1f} s in all (cluster start included), {compute:6.1f} s computing and "
              f"writing: {rates[w] / 1e6:6.2f} M voxels/s")
    task_s = vox / rates[1] / hs[0]
    task_bytes = int(np.prod(hs[1:])) * 4
    print(f"per task (one {'x'.join(map(str, hs[1:]))} volume): {task_s:.2f} s on 1 worker; moves "
          f"{task_bytes / 2**20:.0f} MiB in (float32) + {task_bytes / 2**20:.0f} MiB out; scaling 1 -> 2 workers "
          f"on this 2-core machine: {rates[2] / rates[1]:.2f}x")
    import os

    project(max(rates.values()) / (os.cpu_count() or 1), hs)


def project(rate_per_core: float, hs) -> None:
    """A 1 TB (uint16) light-sheet time-lapse on N machines: compute vs network vs storage."""
    total_bytes = 1e12
    voxels = total_bytes / 2  # uint16 input
    out_bytes = voxels * 4  # float32 output
    cores, nic, storage = 32, 1.25e9, 5e9  # per machine: 32 cores, 10 GbE; shared storage 5 GB/s in all
    print(f"\nProjection: 1 TB of uint16 light sheet ({voxels:.2e} voxels), RL {ITER} iterations, float32 "
          f"result ({out_bytes / 1e12:.0f} TB written); per machine {cores} cores at the measured "
          f"{rate_per_core / 1e6:.2f} M voxels/s per core (best run here / this machine's cores), 10 GbE (1.25 GB/s), shared storage 5 GB/s aggregate")
    print(f"{'machines':>9} {'compute':>10} {'network':>10} {'storage':>10} {'total':>10}  bottleneck")
    for n in (1, 4, 16, 64):
        compute = voxels / (n * cores * rate_per_core)
        network = (total_bytes + out_bytes) / (n * nic)
        disk = (total_bytes + out_bytes) / storage
        total = max(compute, network, disk)
        which = ["compute", "network", "storage"][int(np.argmax([compute, network, disk]))]
        print(f"{n:9d} {compute / 3600:9.2f}h {network / 3600:9.2f}h {disk / 3600:9.2f}h {total / 3600:9.2f}h  "
              f"{which}")
    print("(halo overhead not included: a light-sheet time point is one task per brick; with bricks add the halo "
          "factor of section 2; tasks are independent, so the scheduler's per-task cost, ~1 ms, is negligible)")


_INCREMENT = r"""
import os, sys
import dask.array, tifffile, zarr  # noqa: F401  (imports are not the run's memory)
import fijidecon.cli_big  # noqa: F401
from fijidecon.cli import main
base = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
rc = main(sys.argv[1:])
peak = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(f"INCREMENT {rc} {peak - base}", file=sys.stderr)
"""


def part5_zarr_input() -> None:
    import dask.array as da

    from fijidecon import cli_big

    vol = (16, 2048, 2048) if QUICK else (16, 4096, 4096)
    print(f"== 5. OME-Zarr input {'x'.join(map(str, vol))} float32 in 16x256x256 chunks, convolve 9x15x15 ==")
    with tempfile.TemporaryDirectory(prefix="fijidecon-zarr-", dir=".") as tmp:
        d = Path(tmp)
        tile = da.from_array(np.random.default_rng(0).poisson(100, (16, vol[1], 512)).astype(np.float32),
                             chunks=(16, 256, 256))
        write_image(d / "in.ome.zarr", da.concatenate([tile] * (vol[2] // 512), axis=2), CAL)
        write_image(d / "psf.tif", gaussian((9, 15, 15), (1.5, 2.0, 2.0)), CAL)
        args = ["deconvolve", "convolve", d / "in.ome.zarr", d / "psf.tif"]

        def run(out, budget):
            r = subprocess.run([sys.executable, "-c", _INCREMENT, *map(str, args), "-o", d / out, "--memory-limit",
                                budget], capture_output=True, text=True)
            return r.stderr, int(re.search(r"INCREMENT \d+ (\d+)", r.stderr).group(1))

        err, _ = run("a.ome.zarr", "10MB")
        named = int(re.search(r"give --memory-limit (\d+)MiB", err).group(1))
        halo = cli_big._bricks_halo((9, 15, 15), "convolve")
        planes = cli_big._smallest_limit("convolve", vol, (9, 15, 15), halo, {}, 2**20, 1, False) // 2**20
        print(f"smallest budget named {named} MiB; planned as whole planes it would be {planes} MiB")
        for k in range(3):
            t0 = time.perf_counter()
            err, inc = run(f"b{k}.ome.zarr", f"{named}MiB")
            note = next((x for x in err.splitlines() if x.startswith("Note: lazy run")), "")
            print(f"  run {k + 1}: added {inc / 2**20:.0f} MiB ({inc / 2**20 / named:.2f}x the budget) in "
                  f"{time.perf_counter() - t0:.0f} s; {note[6:120]}")


def main() -> None:
    if "--zarr" in sys.argv:
        part5_zarr_input()
        return
    if "--halo" in sys.argv:
        part4_real_halo()
        return
    with tempfile.TemporaryDirectory(prefix="fijidecon-scale-", dir=".") as tmp:
        d = Path(tmp)
        import os

        print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the start: times are "
              "comparable within one run only)")
        t0 = time.perf_counter()
        make_data(d)
        print(f"(input made in {time.perf_counter() - t0:.0f} s)")
        part1(d)
        part2(d)
        part3(d)


if __name__ == "__main__":
    main()
