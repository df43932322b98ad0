"""Richardson-Lucy speed and memory per iteration: the FFT floor, every variant, scikit-image, deconwolf.

Prints, in one run, for each FFT backend asked for (scipy's pocketfft, pyFFTW):

* the *FFT floor*: two forward + two inverse real FFTs of the work grid RL uses (the least an
  RL iteration can cost with that backend), measured in the same rounds as the iterations,
* ms per iteration of each Richardson-Lucy variant - plain (non-circulant and periodic edges),
  Biggs-Andrews, momentum, Wiener-Butterworth and OTF-masked Wiener back projectors (median of the
  per-iteration times the engine records: the set-up, PSF preparation and OTF, is excluded and
  printed apart as the median time of a 1-iteration run minus its iteration),
* the peak extra memory of a plain run (resident-set high-water mark minus the resident set before
  the call, via ``/proc/self/clear_refs``) in bytes per image voxel,

and scikit-image's ``richardson_lucy`` (float32, same data and PSF), and deconwolf when a ``dw`` binary
is on ``PATH`` (never built or downloaded here: it says so when there is none).  Rounds interleave all
of them, so that load from other processes hits all alike; medians over the rounds.

Usage::

    python benchmarks/rl_speed.py [--shape 32 64 64] [--psf 32 64 64] [--rounds 5] [--iterations 4]
                                  [--backends scipy pyfftw] [--no-skimage]

The issue-10 sizes: the 32x64x64 Hollow Bars volume with its 32x64x64 PSF (small) and
128x256x256 with a 32x64x64 PSF (large).
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


VARIANTS = {
    "plain": dict(edges="non-circulant", acceleration=None),
    "plain, periodic": dict(edges="periodic", acceleration=None),
    "Biggs-Andrews": dict(acceleration="biggs-andrews"),
    "momentum": dict(acceleration="momentum"),
    "Wiener-Butterworth BP": dict(back_projector="wiener-butterworth", acceleration=None),
    "OTF-masked Wiener BP": dict(back_projector="otf-masked-wiener", acceleration=None),
}


def deconwolf_ms(data, psf, iterations=(5, 15)):
    """deconwolf's ms per iteration and set-up (s) from two runs of ``dw``, or a line saying why not."""
    import shutil
    import subprocess
    import tempfile

    dw = shutil.which("dw")
    if dw is None:
        return "deconwolf: no `dw` binary on PATH (not built or downloaded by fijidecon): not measured"
    import tifffile

    with tempfile.TemporaryDirectory() as tmp:
        img, ker = os.path.join(tmp, "image.tif"), os.path.join(tmp, "psf.tif")
        tifffile.imwrite(img, data)
        tifffile.imwrite(ker, psf)
        secs = []
        for n in iterations:
            out = os.path.join(tmp, f"out{n}.tif")
            t = time.perf_counter()
            r = subprocess.run([dw, "--iter", str(n), "--threads", str(_fft.n_workers()), "--out", out,
                                "--overwrite", img, ker], capture_output=True, text=True)
            secs.append(time.perf_counter() - t)
            if r.returncode:
                return f"deconwolf ({dw}) failed: {(r.stderr or r.stdout).strip()[-200:]}"
    per = (secs[1] - secs[0]) / (iterations[1] - iterations[0])
    return f"deconwolf ({dw}): {1e3 * per:.1f} ms/iteration, set-up {secs[0] - iterations[0] * per:.2f} s"


def _setup_s(data, psf, kw):
    t = time.perf_counter()
    r = richardson_lucy(data, psf, 1, **kw)
    return time.perf_counter() - t - r.history[0].seconds


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", type=int, nargs="+", default=[32, 64, 64])
    ap.add_argument("--psf", type=int, nargs="+", default=[32, 64, 64])
    ap.add_argument("--iterations", type=int, default=4, help="RL iterations per round and variant")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--skimage-iterations", type=int, default=1, help="scikit-image iterations per round")
    ap.add_argument("--backends", nargs="+", choices=["scipy", "pyfftw"], default=["scipy", "pyfftw"])
    ap.add_argument("--backend", choices=["scipy", "pyfftw"], default=None, help="one backend only (= --backends X)")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), help="names as printed")
    ap.add_argument("--no-skimage", action="store_true")
    ap.add_argument("--no-memory", action="store_true")
    args = ap.parse_args(argv)
    if args.backend:
        args.backends = [args.backend]
    shape, pshape = tuple(args.shape), tuple(args.psf)
    backends = [b for b in args.backends if b == "scipy" or _fft.pyfftw_available()]
    psf = gaussian_psf(pshape, [n / 6.4 for n in pshape])  # the whole box above the 1e-4 support threshold
    data = make_data(shape, psf)
    print(f"fijidecon RL speed: image {shape} float32, PSF {pshape}, FFT threads {_fft.n_workers()}, backends "
          f"{', '.join(backends)}; {args.rounds} rounds of {args.iterations} iterations per variant (medians); "
          f"load average {os.getloadavg()[0]:.2f}")
    if "pyfftw" in args.backends and "pyfftw" not in backends:
        print("pyFFTW is not installed (pip install 'fijidecon[fast]'): scipy only")
    variants = {k: VARIANTS[k] for k in args.variants}
    sk_rl = None
    if not args.no_skimage:
        from skimage.restoration import richardson_lucy as sk_rl

    per_it = {(b, v): [] for b in backends for v in variants}
    setup = {(b, v): [] for b in backends for v in variants}
    floors = {(b, e): [] for b in backends for e in ("non-circulant", "periodic")}
    works, states, sk = {}, {}, []
    for b in backends:  # set-up and warm-up (plans), not timed
        _fft.use_pyfftw(b == "pyfftw")
        for v, kw in variants.items():
            states[b, v] = richardson_lucy(data, psf, 1, **kw)
            works[kw.get("edges", "non-circulant")] = states[b, v]._state["x"].shape
        for e, w in works.items():
            fft_floor_ms(w, repeats=1)
    for _ in range(args.rounds):
        for b in backends:
            _fft.use_pyfftw(b == "pyfftw")
            for e, w in works.items():
                floors[b, e].append(fft_floor_ms(w, repeats=1))
            for v, kw in variants.items():
                states[b, v] = richardson_lucy(data, psf, args.iterations, start=states[b, v], **kw)
                per_it[b, v] += [1e3 * f.seconds for f in states[b, v].history[-args.iterations:]]
                setup[b, v].append(_setup_s(data, psf, kw))
        if sk_rl is not None:
            t = time.perf_counter()
            sk_rl(data, psf, num_iter=args.skimage_iterations, clip=False)
            sk.append(1e3 * (time.perf_counter() - t) / args.skimage_iterations)
    states.clear()
    gc.collect()

    med = lambda xs: float(np.median(xs))  # noqa: E731
    print(f"\n{'backend':<8} {'variant':<24} {'work grid':<16} {'ms/iter':>8} {'floor ms':>9} {'x floor':>8} "
          f"{'set-up s':>9} {'x skimage':>10}")
    for b in backends:
        for v, kw in variants.items():
            e = kw.get("edges", "non-circulant")
            ms, fl = med(per_it[b, v]), med(floors[b, e])
            rs = f"{med(sk) / ms:10.1f}" if sk else f"{'-':>10}"
            print(f"{b:<8} {v:<24} {str(works[e]):<16} {ms:8.1f} {fl:9.1f} {ms / fl:8.2f} {med(setup[b, v]):9.2f} {rs}")
    if sk:
        print(f"scikit-image richardson_lucy (float32, clip=False, periodic edges, grid {shape}): "
              f"{med(sk):.1f} ms/iteration")
    print(deconwolf_ms(data, psf))
    if not args.no_memory:
        print("\npeak extra memory of a plain (non-circulant) 3-iteration run:")
        for b in backends:
            _fft.use_pyfftw(b == "pyfftw")
            mem = peak_extra_bytes(lambda: richardson_lucy(data, psf, 3, acceleration=None))
            print(f"  {b:<8} {mem / 2**20:8.1f} MiB = {mem / np.prod(shape):6.1f} B/image voxel")
    _fft.use_pyfftw(False)
    print("\nfloor = 2 forward + 2 inverse real FFTs of the work grid, same backend and process.")


if __name__ == "__main__":
    main()
