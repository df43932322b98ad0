"""Restoration quality against known truth: NMSE, PSNR and SSIM per method and iteration count.

Synthetic 3D objects with known truth (beads, bars, lines, near-edge cubes) are imaged
with the forward model: a Gaussian PSF with anisotropic voxels (wider in z), a
constant background, Poisson noise and Gaussian read noise; objects near the border
continue outside the field of view, as on a real camera.  Each method is scored
against the truth over the field of view.

Prints a table, four checks (the default Wiener must beat the data and must not widen
points; acceleration; ringing at the border) and writes a plot.

Usage::

    python benchmarks/quality.py [--out benchmarks/quality.png] [--quick]

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

from fijidecon.deconvolve import convolve, richardson_lucy, wiener  # noqa: E402

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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "quality.png"))
    ap.add_argument("--quick", action="store_true", help="fewer iterations (smoke test)")
    args = ap.parse_args(argv)
    n_plain = 100 if args.quick else 300
    n_acc = 60 if args.quick else 100
    psf = gaussian_psf()
    rng = np.random.default_rng(20261124)
    table = []  # (phantom, method, iterations, nmse, psnr, ssim, seconds)
    curves = {}
    checks = {}
    t_all = time.perf_counter()
    rl_kw = dict(background=BACKGROUND, read_noise=READ_NOISE)
    for name, make in PHANTOMS.items():
        big, objects = make(rng)
        truth = _fov(big).astype(np.float64)
        data = simulate(big, psf, rng)
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

        # plain RL (non-circulant), NMSE at every iteration through the callback
        curve_p = []
        t = time.perf_counter()
        snaps = richardson_lucy(data, psf, n_plain, snapshot_every=10, **rl_kw,
                                callback=lambda fig, est: curve_p.append(f(est)))
        secs = time.perf_counter() - t
        for k in (10, 30, 100, n_plain):
            if k in snaps.snapshots:
                row("RL non-circulant", k, snaps.snapshots[k], secs * k / n_plain)
        curve_a = []
        t = time.perf_counter()
        acc = richardson_lucy(data, psf, n_acc, snapshot_every=10, acceleration="biggs-andrews", **rl_kw,
                              callback=lambda fig, est: curve_a.append(f(est)))
        secs = time.perf_counter() - t
        for k in (10, 30, 60, n_acc):
            if k in acc.snapshots:
                row("RL + Biggs-Andrews", k, acc.snapshots[k], secs * k / n_acc)
        curves[name] = (curve_p, curve_a)
        for edges in ("periodic", "reflect"):
            t = time.perf_counter()
            r = richardson_lucy(data, psf, 100, edges=edges, **rl_kw)
            row(f"RL {edges}", 100, r.image, time.perf_counter() - t)
        t = time.perf_counter()
        r = richardson_lucy(data, psf, 100, regularization="tv", **rl_kw)
        row("RL + TV (0.002)", 100, r.image, time.perf_counter() - t)
        t = time.perf_counter()
        r = richardson_lucy(data, psf, n_plain, stop="discrepancy", **rl_kw)
        row("RL, discrepancy stop", r.iterations, r.image, time.perf_counter() - t)
        best_k = int(np.argmin(curve_p)) + 1
        checks.setdefault("discrepancy", []).append((name, r.iterations, f(r.image), best_k, min(curve_p)))

        target = curve_p[-1]
        reach = next((k + 1 for k, v in enumerate(curve_a) if v <= target), None)
        checks.setdefault("acceleration", []).append((name, n_plain, target, reach))
        if objects:
            edge_rows = []
            for edges in ("non-circulant", "periodic", "reflect"):
                r = richardson_lucy(data, psf, 100, edges=edges, **rl_kw)
                b, i = edge_errors(r.image, truth, objects)
                bb, bi = band_errors(r.image, truth)
                edge_rows.append((edges, b, i, b / i, bb, bi, bb / bi))
            checks["edges"] = edge_rows

    print(f"fijidecon restoration quality: field of view {SHAPE} (z, y, x), Gaussian PSF sigma {SIGMA} voxels, "
          f"background {BACKGROUND:g}, Poisson + read noise {READ_NOISE:g}; peak {PEAK:g} photons\n")
    print(f"{'phantom':<10} {'method':<40} {'iter':>5} {'NMSE':>8} {'PSNR dB':>8} {'SSIM':>6} {'s':>6}")
    last = None
    for name, method, its, nmse, psnr, ssim, secs in table:
        if last is not None and name != last:
            print()
        last = name
        print(f"{name:<10} {method:<40} {its:>5} {nmse:8.4f} {psnr:8.2f} {ssim:6.3f} {secs:6.2f}")

    print("\nDefault Wiener (wiener(data - background, psf)) must beat the data's NMSE and must not widen points: "
          "FWHM (z y x, voxels) of a noise-free point, data -> Wiener with the rho chosen; and of the average of "
          "the isolated objects in the noisy data (beads, cubes; noise moves it by ~0.1 voxel):")

    def fmt(a):
        return " ".join(f"{v:.2f}" for v in a)
    for name, nd, nw, rule, rho, pd, pw, fd, fw, npts in checks["default"]:
        beat = "beats the data" if nw < nd else "WORSE THAN THE DATA"
        sharp = "not wider" if np.all(pw <= pd + 1e-6) else "WIDER"
        objs = f"; objects {fmt(fd)} -> {fmt(fw)} ({npts})" if npts else ""
        print(f"  {name:<10} NMSE data {nd:.4f} -> Wiener {nw:.4f} ({beat}; rule {rule}, rho {rho:.2g}); "
              f"point {fmt(pd)} -> {fmt(pw)} ({sharp}){objs}")
    print("\nAcceleration: iterations Biggs-Andrews needs to reach plain RL's NMSE after "
          f"{n_plain} iterations (target <= 60 on bars)")
    for name, n, target, reach in checks["acceleration"]:
        print(f"  {name:<10} plain@{n}: NMSE {target:.4f}  -> accelerated reaches it at iteration "
              f"{reach if reach is not None else f'>{n_acc}'}")
    print("\nBorders (near-edge cubes, RL 100 iterations; target ratio <= 1.5): (a) mean local NMSE of the cubes "
          "within 5 voxels of the border vs the interior cubes; (b) NMSE over all voxels within 5 voxels of the "
          "border vs the rest")
    for edges, b, i, ratio, bb, bi, rb in checks["edges"]:
        print(f"  {edges:<14} (a) border {b:.4f} interior {i:.4f} ratio {ratio:.2f}   "
              f"(b) band {bb:.4f} rest {bi:.4f} ratio {rb:.2f}")
    print("\nDiscrepancy stop vs the NMSE-optimal iteration of plain RL:")
    for name, its, nm, best_k, best in checks["discrepancy"]:
        print(f"  {name:<10} stops at {its:>4} (NMSE {nm:.4f}); best {best_k:>4} (NMSE {best:.4f})")
    print(f"\ntotal {time.perf_counter() - t_all:.0f} s")

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        print("matplotlib not installed: no plot")
        return
    fig, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3.4), sharey=False)
    for ax, (name, (cp, ca)) in zip(np.atleast_1d(axes), curves.items()):
        ax.semilogx(np.arange(1, len(cp) + 1), cp, label="RL")
        ax.semilogx(np.arange(1, len(ca) + 1), ca, label="RL + Biggs-Andrews")
        for n2, method, its, nmse, *_ in table:
            if n2 == name and method.startswith("Wiener default"):
                ax.axhline(nmse, color="gray", ls="--", lw=0.8, label="Wiener (default)")
            if n2 == name and method.startswith("data"):
                ax.axhline(nmse, color="black", ls=":", lw=0.8, label="data")
        ax.set_title(name)
        ax.set_xlabel("iteration")
        ax.set_ylabel("NMSE")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"plot: {args.out}")


if __name__ == "__main__":
    main()
