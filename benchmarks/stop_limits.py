"""Why ``stop="auto"`` misses: where the NMSE's error lies and what each weighting of it would choose.

    python benchmarks/stop_limits.py [--only beads lines] [--iterations 200]

``stop="auto"`` scores the thinned run's iterates on held-out photons after a Wiener inverse
(``DEBLUR_EPS`` = 1e-3): an unbiased estimate, up to a constant, of the error weighted by
``w(f) = (|H|^2 / (|H|^2 + eps))^2``, about 1 where |OTF| > 0.03 and about 0 below.  The NMSE
weights every frequency by 1.  This script uses the truth (it is a diagnosis, not a method) on
the phantoms of ``benchmarks/quality.py`` and prints, per phantom and method:

* the share of the error at the NMSE's best iterate that the default weighting sees;
* the iterate at which each weighting (eps 1e-3, 1e-4, 1e-5, 0 = the NMSE itself) of the true
  error is lowest, with the NMSE there (an oracle: what a perfect estimate of that weighted error
  would choose);
* the held-out score's own minimum (``choose_iterations``'s ``minimum``, the data alone), with
  the default eps and with eps 1e-5 (what lowering ``DEBLUR_EPS`` would do);
* per weighting, how many runs its oracle choice lands within 5 % (or 0.02) of the best NMSE.

The error is taken on the field of view with the periodic OTF of the PSF on that grid (exact
in the interior, approximate at the borders).  About 3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

import quality as Q  # noqa: E402

from fijidecon.deconvolve import _autostop, richardson_lucy  # noqa: E402

#: Weightings of the error: eps of (|H|^2 / (|H|^2 + eps))^2; 0 is the plain (NMSE) weighting.
EPS = (1e-3, 1e-4, 1e-5, 0.0)
METHODS = ("RL", "RL + momentum", "RL + Biggs-Andrews 2nd order")
PHANTOMS = ("beads", "bars", "lines", "near-edge")
#: The held-out score's eps: the default and a lower one.
HELD_OUT_EPS = (_autostop.DEBLUR_EPS, 1e-5)


def weights(psf: np.ndarray, shape: tuple[int, ...]) -> list[np.ndarray]:
    """|FFT|^2 weights of each ``EPS`` on the full FFT grid of ``shape``."""
    p = np.zeros(shape)
    p[tuple(slice(0, n) for n in psf.shape)] = psf
    h2 = np.abs(np.fft.fftn(np.roll(p, [-(n // 2) for n in psf.shape], axis=tuple(range(p.ndim))))) ** 2
    return [(h2 / (h2 + e)) ** 2 if e else np.ones_like(h2) for e in EPS]


def weighted_path(data, psf, truth, n, kw, ws):
    """Per iterate: the error under each weighting (rows) and the NMSE."""
    rows, t2 = [], float(np.sum(truth ** 2)) * truth.size

    def cb(fig, est):
        e2 = np.abs(np.fft.fftn(est.astype(np.float64) - truth)) ** 2
        rows.append([float(np.sum(e2 * w)) / t2 for w in ws])

    richardson_lucy(data, psf, n, callback=cb, background=Q.BACKGROUND, read_noise=Q.READ_NOISE, **kw)
    return np.array(rows)


def held_out_minimum(data, psf, n, kw, eps) -> int:
    """The held-out score's minimum with ``DEBLUR_EPS = eps`` (the data alone)."""
    default = _autostop.DEBLUR_EPS
    _autostop.DEBLUR_EPS = eps
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _autostop.choose_iterations(data, psf, n, background=Q.BACKGROUND, read_noise=Q.READ_NOISE,
                                               **kw)["minimum"]
    finally:
        _autostop.DEBLUR_EPS = default


def hit(value: float, best: float) -> bool:
    return value <= max(1.05 * best, best + 0.02)


def report(name, label, path, held, hits):
    """One line per run; ``hits`` counts, per column, the choices within 5 % (or 0.02) of the best."""
    nmse = path[:, -1]
    kb = int(np.argmin(nmse))
    cells = []
    for j, e in enumerate(EPS):
        k = int(np.argmin(path[:, j]))
        hits[j] += hit(nmse[k], nmse[kb])
        cells.append(f"{'NMSE' if not e else f'{e:g}'}: {k + 1:>3} ({nmse[k]:.3f})")
    for i, (e, k) in enumerate(held.items()):
        v = nmse[min(k, len(nmse)) - 1]
        hits[len(EPS) + i] += hit(v, nmse[kb])
        cells.append(f"held-out {e:g}: {k:>3} ({v:.3f})")
    print(f"{name:<10} {label:<30} best {kb + 1:>3} {nmse[kb]:.3f}  seen {path[kb, 0] / nmse[kb]:5.1%}   "
          + "   ".join(cells))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="+", default=None, choices=PHANTOMS)
    ap.add_argument("--iterations", type=int, default=200)
    args = ap.parse_args(argv)
    logging.getLogger("fijidecon").setLevel(logging.ERROR)
    psf, rng = Q.gaussian_psf(), np.random.default_rng(20261124)  # the scoreboard's phantoms and noise
    print("Error weightings (|H|^2/(|H|^2+eps))^2 of the true error: the iterate each would choose (NMSE there); "
          "'seen': the default weighting's (eps 1e-3) share of the error at the NMSE's best.\n")
    hits, runs = [0] * (len(EPS) + len(HELD_OUT_EPS)), 0
    for name, make in Q.PHANTOMS.items():
        big, _ = make(rng)
        truth = Q._fov(big).astype(np.float64)
        data = Q.simulate(big, psf, rng)
        if args.only and name not in args.only:
            continue
        ws = weights(psf, truth.shape)
        for label in METHODS:
            n = args.iterations * 3 // 2 if label == "RL" else args.iterations  # as the scoreboard
            path = weighted_path(data, psf, truth, n, Q.METHODS[label], ws)
            held = {e: held_out_minimum(data, psf, n, Q.METHODS[label], e) for e in HELD_OUT_EPS}
            report(name, label, path, held, hits)
            runs += 1
    names = [f"oracle {e:g}" if e else "oracle NMSE" for e in EPS] + [f"held-out {e:g}" for e in HELD_OUT_EPS]
    print(f"\nWithin 5 % (or 0.02) of the best NMSE, of {runs} runs: "
          + ", ".join(f"{n} {h}" for n, h in zip(names, hits)))


if __name__ == "__main__":
    main()
