"""Restoration quality against known truth: the scoreboard of the deconvolution methods (issue 10).

Phantoms
    Synthetic 3D objects with known truth (beads, bars, lines, near-edge cubes; 24x96x96) imaged with
    the forward model: a Gaussian PSF with anisotropic voxels (wider in z), a constant background,
    Poisson noise and Gaussian read noise; objects near the border continue outside the field of view,
    as on a real camera.  And the Hollow Bars of flowdec (``flowdec/datasets/bars-25pct`` of the
    ``flowdec`` 1.1.0 wheel, Apache-2.0: data, truth and its full 32x64x64 kernel), fetched once with
    ``pip download`` into ``$FIJIDECON_BENCH_CACHE`` (default ``~/.cache/fijidecon-benchmarks``), never
    into the repository; its truth is scaled to the data's flux.

Scoreboard
    For each phantom and each Richardson-Lucy variant (plain, Biggs-Andrews of first and second
    order, momentum, starts from the image or its Wiener estimate (``initial=``), the second order
    with the correction raised to 2.5 (``exponent=2.5``) from a flat start and to 3 from a Wiener start, the
    Wiener-Butterworth and OTF-masked Wiener back projectors; default non-circulant edges) and the
    default Wiener filter as a reference: NMSE, PSNR and SSIM at 1, 2, 5, 10, 20, 50, 100, 200
    iterations; the best iterate (NMSE); the wall time (set-up + iterations, scoring excluded) to reach
    plain RL's best NMSE; and ``stop="auto"``'s choice against the best.  Then the issue's must-show
    targets (PASS/FAIL), the older checks (the default Wiener must beat the data and not widen points;
    ringing at the border; the discrepancy stop) and two plots: the NMSE curves (``--out``) and the
    time-to-quality bars (``--out-time``).

Usage::

    python benchmarks/quality.py [--out benchmarks/quality.png] [--out-time benchmarks/quality_time.png]
                                 [--quick] [--no-auto] [--no-hollow-bars] [--only bars "hollow bars"]

Scores: NMSE = sum((x - t)^2) / sum(t^2) (lower is better), PSNR = 10 log10(max(t)^2 / MSE)
in dB, SSIM from scikit-image (data range = max(t)).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from fijidecon.deconvolve import _fft, convolve, richardson_lucy, wiener  # noqa: E402

SHAPE = (24, 96, 96)  # field of view (z, y, x)
MARGIN = 10  # the truth extends this far beyond the field of view
SIGMA = (2.0, 1.4, 1.4)  # PSF standard deviations in voxels (anisotropic voxels: z coarser)
BACKGROUND = 10.0
READ_NOISE = 2.0
PEAK = 200.0  # photons per voxel in bright structures


def gaussian_psf(sigma=SIGMA):
    shape = tuple(2 * int(np.ceil(4 * s)) + 1 for s in sigma)
    g = np.indices(shape, dtype=float)
    p = np.exp(-0.5 * sum(((gi - n // 2) / s) ** 2 for gi, n, s in zip(g, shape, sigma)))
    return (p / p.sum()).astype(np.float32)


def _big():
    return np.zeros(tuple(n + 2 * MARGIN for n in SHAPE), np.float32)


def _fov(a):
    return a[tuple(slice(MARGIN, MARGIN + n) for n in SHAPE)]


def phantom_beads(rng):
    t = _big()
    n = 60
    idx = tuple(rng.integers(MARGIN + 2, MARGIN + s - 2, n) for s in SHAPE)
    t[idx] = rng.uniform(2, 10, n) * PEAK
    return t, []


def phantom_bars(rng):
    """Groups of 2-voxel-wide bars with gaps from 1 to 5 voxels (a resolution target)."""
    t = _big()
    z0, y0 = MARGIN + SHAPE[0] // 2 - 3, MARGIN + 12
    x = MARGIN + 8
    for gap in (1, 2, 3, 4, 5):
        for _ in range(3):
            t[z0:z0 + 6, y0:y0 + 72, x:x + 2] = PEAK
            x += 2 + gap
        x += 6
    return t, []


def phantom_lines(rng):
    """Thin (1-voxel) filaments in random directions."""
    t = _big()
    for _ in range(14):
        p0 = np.array([rng.uniform(MARGIN + 3, MARGIN + s - 3) for s in SHAPE])
        d = rng.normal(size=3)
        d[0] *= 0.2
        d /= np.linalg.norm(d)
        for s in np.linspace(-40, 40, 400):
            q = np.round(p0 + s * d).astype(int)
            if all(MARGIN <= q[i] < MARGIN + SHAPE[i] for i in range(3)):
                t[tuple(q)] = PEAK
    return t, []


def phantom_edges(rng):
    """3x3x3 cubes on a grid that touches (and crosses) the lateral borders, plus interior ones."""
    t = _big()
    objects = []
    z = MARGIN + SHAPE[0] // 2 - 1
    coords = [MARGIN - 1, MARGIN + 1, MARGIN + 24, MARGIN + 47, MARGIN + 70, MARGIN + SHAPE[1] - 4,
              MARGIN + SHAPE[1] - 2]
    for y in coords:
        for x in coords:
            t[z:z + 3, y:y + 3, x:x + 3] = 3 * PEAK
            objects.append((z + 1 - MARGIN, y + 1 - MARGIN, x + 1 - MARGIN))
    return t, objects


PHANTOMS = {"beads": phantom_beads, "bars": phantom_bars, "lines": phantom_lines, "near-edge": phantom_edges}


def simulate(truth_big, psf, rng):
    blurred = np.clip(convolve(truth_big, psf, edges="constant"), 0, None)
    data = rng.poisson(_fov(blurred) + BACKGROUND).astype(np.float32)
    data += rng.normal(0, READ_NOISE, data.shape).astype(np.float32)
    return data


def scores(est, truth):
    from skimage.metrics import structural_similarity
    est = np.asarray(est, np.float64)
    mse = float(np.mean((est - truth) ** 2))
    nmse = mse / float(np.mean(truth ** 2))
    rng_ = float(truth.max())
    psnr = 10 * np.log10(rng_ ** 2 / mse)
    ssim = float(structural_similarity(truth, est, data_range=rng_))
    return nmse, psnr, ssim


def nmse_of(truth):
    t2 = float(np.mean(truth.astype(np.float64) ** 2))
    return lambda e: float(np.mean((e.astype(np.float64) - truth) ** 2) / t2)


def isolated_points(truth, objects, sep=6, half=5):
    """Centres of objects with no other object within ``sep`` voxels and a whole ``half`` box inside."""
    pts = [tuple(int(c) for c in p) for p in (objects or np.argwhere(truth > 0))]
    if not objects:  # single voxels only (beads)
        pts = [p for p in pts if np.count_nonzero(truth[tuple(slice(max(c - sep, 0), c + sep + 1) for c in p)]) == 1]
    inside = [p for p in pts if all(half <= c < n - half for c, n in zip(p, truth.shape))]
    return inside if len(inside) >= 3 else []


def _fwhm(profile, i):
    half, width = profile[i] / 2, 0.0
    for step in (-1, 1):
        j = i
        while 0 <= j + step < len(profile) and profile[j + step] > half:
            j += step
        if not 0 <= j + step < len(profile):
            return float("nan")
        a, b = profile[j], profile[j + step]
        width += abs(j - i) + (a - half) / (a - b)
    return width


def spot_fwhm(img, points, half=5):
    """FWHM (voxels, z y x) of the average of the objects at ``points`` (nan if there are none)."""
    if not points:
        return np.full(img.ndim, np.nan)
    acc = sum(np.asarray(img[tuple(slice(c - half, c + half + 1) for c in p)], float) for p in points)
    return np.array([_fwhm(acc[tuple(slice(None) if a == ax else half for a in range(img.ndim))], half)
                     for ax in range(img.ndim)])


def point_fwhm(psf, rho):
    """FWHM (z y x) of a noise-free point in the data (the PSF) and after Wiener with ``rho``."""
    point = np.zeros(SHAPE, np.float32)
    c = tuple(n // 2 for n in SHAPE)
    point[c] = 1.0
    blurred = convolve(point, psf, edges="periodic")
    out = wiener(blurred, psf, rho, edges="periodic").image
    return spot_fwhm(blurred, [c]), spot_fwhm(out, [c])


def edge_errors(est, truth, objects, radius=4, band=5):
    """Mean local NMSE of the objects within ``band`` voxels of a lateral border and of the others."""
    border, interior = [], []
    for c in objects:
        sl = tuple(slice(max(ci - radius, 0), min(ci + radius + 1, n)) for ci, n in zip(c, truth.shape))
        t = truth[sl].astype(np.float64)
        if t.sum() == 0:
            continue
        e = float(np.sum((est[sl] - t) ** 2) / np.sum(t ** 2))
        near = min(c[1], c[2], truth.shape[1] - 1 - c[1], truth.shape[2] - 1 - c[2]) < band
        (border if near else interior).append(e)
    return float(np.mean(border)), float(np.mean(interior))


def band_errors(est, truth, band=5):
    """NMSE over the voxels within ``band`` of a lateral border and over the rest."""
    m = np.zeros(truth.shape, bool)
    m[:, :band] = m[:, -band:] = True
    m[:, :, :band] = m[:, :, -band:] = True
    e = (np.asarray(est, np.float64) - truth) ** 2
    t = truth.astype(np.float64) ** 2
    return float(e[m].sum() / t[m].sum()), float(e[~m].sum() / t[~m].sum())


# -- the scoreboard -----------------------------------------------------------------------

#: Iterations at which every method's scores are printed.
CHECKPOINTS = (1, 2, 5, 10, 20, 50, 100, 200)
#: Richardson-Lucy variants of the scoreboard: label -> keyword arguments.
METHODS = {
    "RL": {"acceleration": None},
    "RL + Biggs-Andrews": {"acceleration": "biggs-andrews"},
    "RL + momentum": {"acceleration": "momentum"},
    "RL + Biggs-Andrews 2nd order": {"acceleration": "biggs-andrews-2"},
    "RL + Biggs-Andrews, initial image": {"acceleration": "biggs-andrews", "initial": "image"},
    "RL + BA 2nd order, Wiener start": {"acceleration": "biggs-andrews-2", "initial": "wiener"},
    "RL + BA 2nd order, exponent 2.5": {"acceleration": "biggs-andrews-2", "exponent": 2.5},
    "RL + BA 2nd order, exponent 3, Wiener start": {"acceleration": "biggs-andrews-2", "exponent": 3.0,
                                                    "initial": "wiener"},
    "RL + BA, OTF-masked BP (alpha 0.15), initial image": {"acceleration": "biggs-andrews", "initial": "image",
                                                           "back_projector": "otf-masked-wiener", "bp_alpha": 0.15},
    "RL, Wiener-Butterworth BP": {"back_projector": "wiener-butterworth", "acceleration": None},
    "RL, OTF-masked Wiener BP": {"back_projector": "otf-masked-wiener", "acceleration": None},
}
LW = max(map(len, METHODS))  # label width in the tables
#: One colour per method in both plots (matplotlib's ten, then two more: no two methods share one).
COLORS = dict(zip(METHODS, [f"C{i}" for i in range(10)] + ["black", "gold"]))
FLOWDEC = "flowdec==1.1.0"
BARS_FILES = "flowdec/datasets/bars-25pct/"


def _cache_dir() -> str:
    return os.environ.get("FIJIDECON_BENCH_CACHE", os.path.join(os.path.expanduser("~"), ".cache",
                                                                "fijidecon-benchmarks"))


def hollow_bars():
    """The Hollow Bars phantom of the flowdec wheel (Apache-2.0): truth, data, its full 32x64x64 kernel.

    The wheel is fetched once with ``pip download flowdec==1.1.0 --no-deps`` into a cache folder
    outside the repository (``$FIJIDECON_BENCH_CACHE``, default ``~/.cache/fijidecon-benchmarks``)
    and the TIFFs are read from it; nothing is committed.  The truth is scaled to the data's units
    (``sum(truth) = sum(data)``; NMSE is invariant to a common scale).  Returns None (with a line
    saying why) when the wheel cannot be had.
    """
    import glob
    import io as _io
    import subprocess
    import zipfile

    import tifffile

    cache = _cache_dir()
    wheels = glob.glob(os.path.join(cache, "flowdec-1.1.0-*.whl"))
    if not wheels:
        os.makedirs(cache, exist_ok=True)
        r = subprocess.run([sys.executable, "-m", "pip", "download", FLOWDEC, "--no-deps", "-q", "-d", cache],
                           capture_output=True, text=True)
        wheels = glob.glob(os.path.join(cache, "flowdec-1.1.0-*.whl"))
        if r.returncode or not wheels:
            print(f"Hollow Bars left out: pip download {FLOWDEC} failed: {r.stderr.strip()[-200:]}")
            return None
    with zipfile.ZipFile(wheels[0]) as z:
        def read(name):
            return tifffile.imread(_io.BytesIO(z.read(BARS_FILES + name + ".tif"))).astype(np.float32)
        truth, data, kernel = read("actual"), read("data"), read("kernel")
    truth = truth.astype(np.float64) * (float(data.sum(dtype=np.float64)) / float(truth.sum(dtype=np.float64)))
    return truth, data, kernel


class Curve:
    """A method's path: NMSE every iteration, cumulative wall time, the checkpoint iterates and the best one."""

    def __init__(self, truth):
        self.truth = truth
        self.f = nmse_of(truth)
        self.nmse, self.snaps, self.best, self.t_cb, self.sec = [], {}, None, 0.0, []
        self.failed = None

    def __call__(self, fig, est):
        t = time.perf_counter()
        self.sec.append(fig.seconds)
        v = self.f(est)
        self.nmse.append(v)
        k = len(self.nmse)
        if k in CHECKPOINTS:
            self.snaps[k] = np.array(est, np.float64)
        if np.isfinite(v) and (self.best is None or v < self.best[1]):
            self.best = (k, v, np.array(est, np.float64))
        self.t_cb += time.perf_counter() - t

    def finish(self, wall):
        sec = np.array(self.sec)
        setup = max(wall - self.t_cb - float(sec.sum()), 0.0)
        # wall time to have iterate k (k = 1, 2, ...): set-up + k x the median iteration time, which load
        # spikes from other processes on a shared machine do not move
        self.times = setup + np.median(sec) * np.arange(1, len(sec) + 1) if len(sec) else np.zeros(0)
        self.nmse = np.array(self.nmse)
        return self

    def time_to(self, target):
        """(iterations, seconds) to the first iterate with NMSE <= target, or None."""
        hit = np.flatnonzero(self.nmse <= target)
        return None if hit.size == 0 else (int(hit[0]) + 1, float(self.times[hit[0]]))


def run_method(data, psf, truth, n, kw, rl_kw):
    c = Curve(truth)
    t = time.perf_counter()
    try:
        with np.errstate(all="ignore"):
            richardson_lucy(data, psf, n, callback=c, **rl_kw, **kw)
    except (ArithmeticError, ValueError) as exc:  # NumericalError: the iteration diverged (the curve so far is kept)
        c.failed = f"diverged at iteration {len(c.nmse)}: {str(exc)[:50]}"
    return c.finish(time.perf_counter() - t)


def run_auto(data, psf, truth, n, kw, rl_kw):
    """stop="auto": (chosen iteration, its NMSE, seconds) or the reason it is not available."""
    import logging
    import warnings

    logging.getLogger("fijidecon").setLevel(logging.ERROR)  # the camera-model warnings: once per phantom below
    t = time.perf_counter()
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            r = richardson_lucy(data, psf, n, stop="auto", **rl_kw, **kw)
    except (ValueError, TypeError, ArithmeticError) as exc:
        return f"n/a ({str(exc)[:60]})"
    k = (r.auto_stop or {}).get("iteration", r.iterations)
    return int(k), nmse_of(truth)(r.image), time.perf_counter() - t


def scoreboard(truth, data, psf, rl_kw, n_plain, n_other, auto):
    """Every method on one phantom: {label: Curve}, the Wiener reference and the auto choices."""
    curves, autos = {}, {}
    for label, kw in METHODS.items():
        curves[label] = run_method(data, psf, truth, n_plain if label == "RL" else n_other, kw, rl_kw)
        if auto:
            autos[label] = run_auto(data, psf, truth, n_plain if label == "RL" else n_other, kw, rl_kw)
    t = time.perf_counter()
    w = wiener(data - rl_kw.get("background", 0.0), psf)
    ref = (w.image, time.perf_counter() - t)
    return curves, ref, autos


def print_scoreboard(name, truth, curves, ref, autos):
    rng_ = float(truth.max())
    print(f"\n== {name}: NMSE / PSNR (dB) / SSIM at {', '.join(map(str, CHECKPOINTS))} iterations ==")
    head = "".join(f"{k:>8}" for k in CHECKPOINTS)
    print(f"{'method':<{LW}} {'':<5}{head}")
    for label, c in curves.items():
        cols = {m: [] for m in ("NMSE", "PSNR", "SSIM")}
        for k in CHECKPOINTS:
            if k in c.snaps:
                nm, ps, ss = scores(c.snaps[k], truth)
            else:
                nm = ps = ss = float("nan")
            cols["NMSE"].append(f"{nm:8.3f}" if not nm > 999 else f"{'>999':>8}")
            cols["PSNR"].append(f"{ps:8.2f}" if not ps < -99 else f"{'<-99':>8}")
            cols["SSIM"].append(f"{ss:8.3f}")
        for m, vals in cols.items():
            print(f"{label if m == 'NMSE' else '':<{LW}} {m:<5}{''.join(vals)}")
    nm, ps, ss = scores(ref[0], truth)
    print(f"{'Wiener default (reference)':<{LW}} {'':<5}NMSE {nm:.3f}  PSNR {ps:.2f}  SSIM {ss:.3f}  ({ref[1]:.2f} s)")
    plain = curves["RL"]
    target = plain.best[1]
    print(f"\n{'method':<{LW}} {'best NMSE':>9} {'at':>5} {'PSNR':>6} {'SSIM':>6}   {'time to RL best':>16} "
          f"{'x RL':>6}   stop='auto' (chosen, NMSE, vs best)")
    for label, c in curves.items():
        if c.best is None:
            print(f"{label:<{LW}} diverged")
            continue
        k, v, est = c.best
        _, ps, ss = scores(est, truth)
        hit = c.time_to(target)
        tt = f"{hit[1]:7.2f} s @{hit[0]:>4}" if hit else f"{'not reached':>16}"
        ratio = f"{hit[1] / plain.time_to(target)[1]:6.3f}" if hit else f"{'-':>6}"
        a = autos.get(label, "n/a (--no-auto)")
        if isinstance(a, tuple):
            ok = a[1] <= max(1.05 * v, v + 0.02)
            a = f"{a[0]:>4}, {a[1]:.3f}, {'within' if ok else 'MISSES'} 5 % / 0.02 of {v:.3f} ({a[2]:.1f} s)"
        print(f"{label:<{LW}} {v:9.3f} {k:>5} {ps:6.2f} {ss:6.3f}   {tt} {ratio}   {a}"
              + (f"   [{c.failed}]" if c.failed else ""))


#: Repeats of the interleaved timing behind the must-show speed ratio.
REPEATS = 9


def timed_ratios(inputs, curves, repeats=REPEATS):
    """Wall time to plain RL's best, re-measured: plain RL to its best iterate and every method that
    reaches that NMSE to its first such iterate, whole calls (set-up included, no scoring), the methods
    interleaved in each of ``repeats`` rounds so that a slow spell of a shared machine hits them all.
    Returns {label: (iterations, median seconds, [ratio to plain RL in each round])}."""
    data, psf, rl_kw = inputs
    vp = curves["RL"].best[1]
    runs = {label: (c.time_to(vp)[0], METHODS[label]) for label, c in curves.items() if c.time_to(vp)}
    secs = {label: [] for label in runs}
    with np.errstate(all="ignore"):
        for _ in range(repeats):
            for label, (k, kw) in runs.items():
                t = time.perf_counter()
                richardson_lucy(data, psf, k, **rl_kw, **kw)
                secs[label].append(time.perf_counter() - t)
    plain = np.array(secs["RL"])
    return {label: (k, float(np.median(secs[label])), list(np.array(secs[label]) / plain))
            for label, (k, _) in runs.items()}


def must_show(boards, timings):
    """The issue's targets, from the scoreboards and the re-measured times: (lines, all passed)."""
    lines, ok = [], True
    for name, (curves, _, _) in boards.items():
        plain = curves["RL"]
        kp, vp = plain.best[:2]
        if kp >= 50:
            tm = timings[name]
            t_plain = tm["RL"][1]
            fastest = min(((float(np.median(r)), label, k, r) for label, (k, _, r) in tm.items() if label != "RL"),
                          default=None)
            good = fastest is not None and fastest[0] <= 0.1
            ok &= good
            lines.append(f"  {name:<12} RL best {vp:.3f} at {kp} ({t_plain:.2f} s); fastest to it: "
                         + (f"{fastest[1]} at {fastest[2]}: {fastest[0]:.3f}x (median of {len(fastest[3])}, "
                            f"{min(fastest[3]):.3f}-{max(fastest[3]):.3f})" if fastest else "none")
                         + ("  PASS (<= 0.1x)" if good else "  FAIL (> 0.1x)"))
        else:
            lines.append(f"  {name:<12} RL best {vp:.3f} at {kp} (< 50 iterations: no speed-up target)")
        if name == "hollow bars":
            at10 = min((float(np.min(c.nmse[:10])), label) for label, c in curves.items())
            best = min((c.best[1], label, c.best[0]) for label, c in curves.items() if c.best)
            g10, gb = at10[0] <= 0.50, best[0] <= 0.45
            ok &= g10 and gb
            lines.append(f"  {'':<12} within 10 iterations: {at10[0]:.3f} ({at10[1]})  "
                         f"{'PASS' if g10 else 'FAIL'} (<= 0.50)")
            lines.append(f"  {'':<12} best: {best[0]:.3f} ({best[1]} at {best[2]})  {'PASS' if gb else 'FAIL'} (<= 0.45)")
    return lines, ok


def plot_curves(path, boards, ref_nmse):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(boards)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 4.6))
    for ax, (name, (curves, _, _)) in zip(np.atleast_1d(axes), boards.items()):
        for label, c in curves.items():
            y = np.where(np.isfinite(c.nmse), c.nmse, np.nan)
            ax.semilogx(np.arange(1, len(y) + 1), y, label=label, lw=1.2, color=COLORS.get(label))
        ax.axhline(ref_nmse[name], color="gray", ls="--", lw=0.8, label="Wiener (default)")
        lo = min(c.best[1] for c in curves.values() if c.best)
        ax.set_ylim(lo * 0.9, min(1.3, max(ref_nmse[name], 1.0) * 1.1))
        ax.set_title(name)
        ax.set_xlabel("iteration")
        ax.set_ylabel("NMSE (lower is better)")
        ax.grid(alpha=0.3, which="both")
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=7, frameon=False)  # below: the panels stay clear
    fig.suptitle("NMSE against the truth along each method's iterations (benchmarks/quality.py)", fontsize=10)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_time(path, boards):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(boards)
    labels = list(METHODS)
    fig, ax = plt.subplots(figsize=(2.0 * len(names) + 2, 4.6))
    width = 0.8 / len(labels)
    never = []
    for j, label in enumerate(labels):
        xs, hs, txt = [], [], []
        for i, name in enumerate(names):
            curves = boards[name][0]
            hit = curves[label].time_to(curves["RL"].best[1])
            xs.append(i + (j - (len(labels) - 1) / 2) * width)
            hs.append(hit[1] if hit else np.nan)
            txt.append(f"{hit[0]} it" if hit else "never")
        color = ax.bar(xs, np.nan_to_num(hs), width, label=label, color=COLORS[label]).patches[0].get_facecolor()
        for x, h, t in zip(xs, hs, txt):
            if np.isfinite(h):
                ax.text(x, h * 1.05, t, ha="center", va="bottom", fontsize=6, rotation=90)
            else:
                never.append((x, color))
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi * 3)
    for x, color in never:
        ax.text(x, lo * 1.15, "never", ha="center", va="bottom", fontsize=6, rotation=90, color=color)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names)
    ax.set_ylabel("wall time (s, log) to plain RL's best NMSE")
    ax.set_title("Time to quality: seconds to plain RL's best NMSE\n(label: iterations; never: not reached)",
                 fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "quality.png"), help="NMSE curves (PNG)")
    ap.add_argument("--out-time", default=None,
                    help="time-to-quality bars (PNG; default: next to --out, named *_time.png)")
    ap.add_argument("--quick", action="store_true",
                    help="fewer iterations, no stop='auto', 2 timing rounds (a smoke test)")
    ap.add_argument("--no-auto", action="store_true", help="leave out the stop='auto' runs")
    ap.add_argument("--no-hollow-bars", action="store_true", help="leave out flowdec's Hollow Bars (no download)")
    ap.add_argument("--only", nargs="+", default=None, help="phantoms to run (names as printed)")
    args = ap.parse_args(argv)
    if args.out_time is None:
        args.out_time = os.path.splitext(args.out)[0] + "_time.png"
    n_plain, n_other = (100, 60) if args.quick else (300, 200)
    auto = not (args.quick or args.no_auto)
    psf = gaussian_psf()
    rng = np.random.default_rng(20261124)
    table = []  # (phantom, method, iterations, nmse, psnr, ssim, seconds)
    checks = {}
    boards, truths, inputs = {}, {}, {}
    t_all = time.perf_counter()
    rl_kw = dict(background=BACKGROUND, read_noise=READ_NOISE)
    for name, make in PHANTOMS.items():
        big, objects = make(rng)
        truth = _fov(big).astype(np.float64)
        data = simulate(big, psf, rng)
        if args.only and name not in args.only:
            continue
        f = nmse_of(truth)

        def row(method, its, est, secs):
            table.append((name, method, its, *scores(est, truth), secs))

        row("data - background", 0, data - BACKGROUND, 0.0)
        t = time.perf_counter()
        sm = convolve(data - BACKGROUND, gaussian_psf((1.0, 1.0, 1.0)))
        row("smoothing (Gaussian 1 voxel)", 0, sm, time.perf_counter() - t)
        for rule in (None, "imspector", "gcv"):
            t = time.perf_counter()
            w = wiener(data - BACKGROUND, psf, rule)
            label = "Wiener default" if rule is None else "Wiener"
            row(f"{label} ({w.rule}, rho={w.regularization:.2g})", 0, w.image, time.perf_counter() - t)
            if rule is None:
                points = isolated_points(truth, objects)
                checks.setdefault("default", []).append(
                    (name, f(data - BACKGROUND), f(w.image), w.rule, w.regularization,
                     *point_fwhm(psf, w.regularization),
                     spot_fwhm(data - BACKGROUND, points), spot_fwhm(w.image, points), len(points)))
        t = time.perf_counter()
        r = richardson_lucy(data, psf, 100, regularization="tv", acceleration=None, **rl_kw)
        row("RL + TV (0.002)", 100, r.image, time.perf_counter() - t)
        t = time.perf_counter()
        r = richardson_lucy(data, psf, n_plain, stop="discrepancy", acceleration=None, **rl_kw)
        row("RL, discrepancy stop", r.iterations, r.image, time.perf_counter() - t)
        boards[name], truths[name] = scoreboard(truth, data, psf, rl_kw, n_plain, n_other, auto), truth
        inputs[name] = (data, psf, rl_kw)
        checks.setdefault("discrepancy", []).append((name, r.iterations, f(r.image), *boards[name][0]["RL"].best[:2]))
        if objects:
            edge_rows = []
            for edges in ("non-circulant", "periodic", "reflect"):
                r = richardson_lucy(data, psf, 100, edges=edges, acceleration=None, **rl_kw)
                b, i = edge_errors(r.image, truth, objects)
                bb, bi = band_errors(r.image, truth)
                edge_rows.append((edges, b, i, b / i, bb, bi, bb / bi))
            checks["edges"] = edge_rows
    hb = None if args.no_hollow_bars or (args.only and "hollow bars" not in args.only) else hollow_bars()
    if hb is not None:
        truth, data, kernel = hb
        boards["hollow bars"], truths["hollow bars"] = scoreboard(truth, data, kernel, {}, n_plain, n_other, auto), truth
        inputs["hollow bars"] = (data, kernel, {})
        table.append(("hollow bars", "data", 0, *scores(data, truth), 0.0))

    print(f"fijidecon restoration quality: field of view {SHAPE} (z, y, x), Gaussian PSF sigma {SIGMA} voxels, "
          f"background {BACKGROUND:g}, Poisson + read noise {READ_NOISE:g}; peak {PEAK:g} photons; and flowdec's "
          "Hollow Bars\n(32x64x64 with its full 32x64x64 kernel; the truth scaled to the data's flux). FFT threads: "
          f"{_fft.n_workers()}, load average {os.getloadavg()[0]:.1f}.\n")
    print(f"{'phantom':<12} {'method':<40} {'iter':>5} {'NMSE':>8} {'PSNR dB':>8} {'SSIM':>6} {'s':>6}")
    last = None
    for name, method, its, nmse, psnr, ssim, secs in table:
        if last is not None and name != last:
            print()
        last = name
        print(f"{name:<12} {method:<40} {its:>5} {nmse:8.4f} {psnr:8.2f} {ssim:6.3f} {secs:6.2f}")

    print("\nScoreboard: every Richardson-Lucy variant (default non-circulant edges; the phantom's background and "
          "read noise), scored against the truth at every iteration;\ntimes are wall seconds on this machine "
          "(set-up + k x the median iteration time; scoring excluded).")
    for name, board in boards.items():
        print_scoreboard(name, truths[name], *board)

    repeats = 2 if args.quick else REPEATS  # --quick: a smoke test of the bookkeeping, not a measurement
    timings = {name: timed_ratios(inputs[name], board[0], repeats) for name, board in boards.items()
               if board[0]["RL"].best[0] >= 50}
    lines, ok = must_show(boards, timings)
    print("\nMust show (issue 10): where plain RL's best needs >= 50 iterations, some method reaches it in <= 1/10 "
          "of plain RL's time\n(whole calls to the iteration that first reaches it, set-up included, no scoring; "
          f"{repeats} interleaved rounds: the median ratio and its range);\n"
          "Hollow Bars: NMSE <= 0.50 within 10 iterations, best <= 0.45.")
    print("\n".join(lines))
    print(f"  overall: {'PASS' if ok else 'FAIL'}")

    print(f"\nAcceleration: iterations Biggs-Andrews needs to reach plain RL's NMSE after {n_plain} iterations")
    for name, (curves, _, _) in boards.items():
        target = float(curves["RL"].nmse[-1])
        hit = curves["RL + Biggs-Andrews"].time_to(target)
        print(f"  {name:<10} plain@{n_plain}: NMSE {target:.4f}  -> accelerated reaches it at iteration "
              f"{hit[0] if hit else f'>{n_other}'}")
    if checks.get("default"):
        print("\nDefault Wiener (wiener(data - background, psf)) must beat the data's NMSE and must not widen "
              "points: FWHM (z y x, voxels) of a noise-free point, data -> Wiener with the rho chosen; and of the "
              "average of the isolated objects in the noisy data (beads, cubes; noise moves it by ~0.1 voxel):")

    def fmt(a):
        return " ".join(f"{v:.2f}" for v in a)
    for name, nd, nw, rule, rho, pd, pw, fd, fw, npts in checks.get("default", []):
        beat = "beats the data" if nw < nd else "WORSE THAN THE DATA"
        sharp = "not wider" if np.all(pw <= pd + 1e-6) else "WIDER"
        objs = f"; objects {fmt(fd)} -> {fmt(fw)} ({npts})" if npts else ""
        print(f"  {name:<10} NMSE data {nd:.4f} -> Wiener {nw:.4f} ({beat}; rule {rule}, rho {rho:.2g}); "
              f"point {fmt(pd)} -> {fmt(pw)} ({sharp}){objs}")
    if "edges" in checks:
        print("\nBorders (near-edge cubes, RL 100 iterations; target ratio <= 1.5): (a) mean local NMSE of the "
              "cubes within 5 voxels of the border vs the interior cubes; (b) NMSE over all voxels within 5 voxels "
              "of the border vs the rest")
        for edges, b, i, ratio, bb, bi, rb in checks["edges"]:
            print(f"  {edges:<14} (a) border {b:.4f} interior {i:.4f} ratio {ratio:.2f}   "
                  f"(b) band {bb:.4f} rest {bi:.4f} ratio {rb:.2f}")
    if checks.get("discrepancy"):
        print("\nDiscrepancy stop vs the NMSE-optimal iteration of plain RL:")
    for name, its, nm, best_k, best in checks.get("discrepancy", []):
        print(f"  {name:<10} stops at {its:>4} (NMSE {nm:.4f}); best {best_k:>4} (NMSE {best:.4f})")
    print(f"\ntotal {time.perf_counter() - t_all:.0f} s")

    try:
        plot_curves(args.out, boards, {n: nmse_of(truths[n])(b[1][0]) for n, b in boards.items()})
        plot_time(args.out_time, boards)
    except ImportError:  # pragma: no cover
        print("matplotlib not installed: no plots")
        return
    print(f"plots: {args.out}, {args.out_time}")


if __name__ == "__main__":
    main()
