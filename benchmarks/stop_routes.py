"""Two routes for ``stop="auto"`` that were measured and not taken (the README's scoreboard: 31 of 55).

    python benchmarks/stop_routes.py [--only eps|split] [--phantoms beads bars ...]

1. ``eps``: the held-out score ``D`` at several Wiener-inverse ``eps`` (``DEBLUR_EPS`` is 1e-3),
   every method and phantom of ``benchmarks/quality.py`` (55 runs, the same thinning as
   ``stop="auto"``), each curve with its exact Poisson standard errors and the rule of
   ``_autostop._LateRule`` (the latest iterate within one standard error of the minimum, at
   most 3x its count).  Prints per run which ``eps`` land within 5 % (or 0.02) of the best
   NMSE, how many runs *some* ``eps`` lands (an oracle choosing ``eps`` with the truth), and a
   data-only choice: the finest ``eps`` whose minimum is resolved (the curve rises ``z``
   standard errors after it).
2. ``split``: an out-of-band term from two independent halves.  The photons are split into two
   binomial halves ``a`` and ``b``; RL runs on each; ``D`` scores ``x_a`` on ``b`` and ``x_b`` on
   ``a``.  Beyond the pass band (weight ``1 - w``, ``w`` the weighting ``D`` sees) the halves give
   the noise power ``V = |X_a - X_b|^2 / 2`` and the reproducible power ``S = Re(X_a conj X_b)``;
   ``D + V`` adds the out-of-band variance, ``D + V - S`` also counts reproducible power as
   recovered signal.  Printed against the best NMSE of the full data (plain, momentum, second
   order; the synthetic phantoms), with the half's own best iterate (its error against half the
   truth): whether counting on half the photons is what moves the choice.

Both use the truth only to score the choices.  About 12 minutes on 2 cores (``eps``) and 4
(``split``).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import warnings

import numpy as np
import scipy.fft

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

import quality as Q  # noqa: E402

from fijidecon.deconvolve import _autostop as A  # noqa: E402
from fijidecon.deconvolve import richardson_lucy  # noqa: E402

EPS = (3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6)
SPLIT_METHODS = ("RL", "RL + momentum", "RL + Biggs-Andrews 2nd order")


def hit(nmse: np.ndarray, k: int) -> bool:
    best = float(np.nanmin(nmse))
    return nmse[min(max(k, 1), len(nmse)) - 1] <= max(1.05 * best, best + 0.02)


def late(ks: list[int], D: np.ndarray, se: np.ndarray) -> int:
    """``_LateRule`` replayed on a whole curve: the latest iterate within one SE, at most 3x the minimum."""
    j = int(np.argmin(D))
    pick = ks[j]
    for i in range(j + 1, len(ks)):
        if D[i] - D[j] <= A.SE_FACTOR * se[i] and ks[i] <= A.LATE_CAP * ks[j]:
            pick = ks[i]
        else:
            break
    return pick


class _Recorder(A._Scorer):
    """The held-out scorer, keeping each scored iterate's model and residual spectrum."""

    def __call__(self, x):
        out = super().__call__(x)
        if not hasattr(self, "recs"):
            self.recs = []
        hx = self.last[0]
        self.recs.append((hx.copy(), scipy.fft.rfftn(hx - self.y2 / np.float32(self.scale), workers=-1)))
        _Recorder.latest = self
        return out

    def curves(self) -> dict[float, tuple[np.ndarray, np.ndarray]]:
        """Per eps: ``D`` at every scored iterate and the SE of ``D(k) - D(k*)`` (``k*`` its minimum)."""
        hb = A._folded_otf(self.kernel.astype(np.float64), self.y2.shape)
        n = self.y2.shape[-1]
        out = {}
        for e in EPS:
            inv = (np.conj(hb) / (np.abs(hb) ** 2 + e)).astype(np.complex64)
            D = np.array([float(np.vdot(F * inv, F * inv).real) / self.voxels ** 2 for _, F in self.recs])
            a_ref, F_ref = self.recs[int(np.argmin(D))]
            se = []
            for _, F in self.recs:
                q = np.conj(inv) * inv * (F - F_ref)
                q[..., 1:(n + 1) // 2] *= 0.5
                u = scipy.fft.irfftn(q, self.y2.shape, workers=-1)
                var = float(np.vdot(u * u, a_ref)) * self.scale
                se.append(2.0 / (self.voxels * self.scale) * math.sqrt(max(var, 0.0)))
            out[e] = (D, np.array(se))
        return out


def cases(names):
    psf = Q.gaussian_psf()
    rng = np.random.default_rng(20261124)  # quality.py's phantoms and noise, in its order
    for name, make in Q.PHANTOMS.items():
        big, _ = make(rng)
        truth = Q._fov(big).astype(np.float64)
        data = Q.simulate(big, psf, rng)
        if name in names:
            yield name, truth, data, psf, dict(background=Q.BACKGROUND, read_noise=Q.READ_NOISE)
    if "hollow bars" in names:
        hb = Q.hollow_bars()
        if hb is not None:
            yield "hollow bars", hb[0], hb[1], hb[2], {}


def route_eps(names) -> None:
    print("== 1. held-out score at several eps (the late rule on each curve) ==")
    print(f"{'phantom':<12} {'method':<46} {'best':>5} " + " ".join(f"{e:>6.0e}" for e in EPS) + "  resolved-eps")
    patience, scorer = A.PATIENCE, A._Scorer
    A.PATIENCE, A._Scorer = 1e9, _Recorder  # every iterate up to the maximum, scores kept
    counts = np.zeros(len(EPS), int)
    oracle = resolved_hits = total = 0
    try:
        for name, truth, data, psf, kw in cases(names):
            for label, m in Q.METHODS.items():
                n = 300 if m.get("acceleration", "x") is None and "back_projector" not in m else 200
                c = Q.run_method(data, psf, truth, n, m, kw)
                if c.failed:
                    continue
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ch = A.choose_iterations(data, psf, n, **kw, **m)
                ks = [int(r[0]) for r in ch["curve"]]
                cur = _Recorder.latest.curves()
                picks = [late(ks, *cur[e]) for e in EPS]
                hits = [hit(c.nmse, k) for k in picks]
                res = _resolved_pick(ks, cur)
                counts += hits
                oracle += any(hits)
                resolved_hits += hit(c.nmse, res)
                total += 1
                print(f"{name:<12} {label[:46]:<46} {int(np.nanargmin(c.nmse)) + 1:5d} "
                      + " ".join(f"{k:>5d}{'*' if h else ' '}" for k, h in zip(picks, hits)) + f"  {res}", flush=True)
    finally:
        A.PATIENCE, A._Scorer = patience, scorer
    print(f"\nwithin 5 % / 0.02 of the best NMSE (*), of {total} runs: "
          + ", ".join(f"eps {e:g}: {n}" for e, n in zip(EPS, counts)))
    print(f"some eps (an oracle choosing eps with the truth): {oracle}; the finest resolved eps (data only, "
          f"z = 4): {resolved_hits}")


def _resolved_pick(ks, cur, z: float = 4.0) -> int:
    """The finest eps whose curve rises ``z`` SE after its minimum (else the default eps): its late pick."""
    for e in sorted(EPS):
        D, se = cur[e]
        j = int(np.argmin(D))
        rise = max([(D[i] - D[j]) / se[i] for i in range(j + 1, len(D)) if se[i] > 0] or [0.0])
        if rise >= z:
            return late(ks, D, se)
    return late(ks, *cur[A.DEBLUR_EPS])


def _path(data, psf, n, kw, bg, rn):
    out = []
    richardson_lucy(data, psf, n, callback=lambda f, e: out.append(np.array(e, np.float32)), background=bg,
                    read_noise=rn, **kw)
    return out


def route_split(names, n: int = 150) -> None:
    print(f"\n== 2. an out-of-band term from two halves ({n} iterations; the synthetic phantoms) ==")
    print(f"{'phantom':<12} {'method':<30} {'best':>5} {'D':>9} {'D + V':>9} {'D + V - S':>10} {'half truth':>10}  "
          "(iterations, * = hit)")
    tally = np.zeros(4, int)
    total = 0
    for name, truth, data, psf, kw in cases([x for x in names if x != "hollow bars"]):
        rng = np.random.default_rng(7)
        counts = data.astype(np.float64) + Q.READ_NOISE ** 2
        be = Q.BACKGROUND + Q.READ_NOISE ** 2
        ya, yb = A.thin(counts, 0.5, rng)
        f = Q.nmse_of(truth)
        for label in SPLIT_METHODS:
            m = Q.METHODS[label]
            nm = np.array([f(e) for e in _path(data, psf, n, m, Q.BACKGROUND, Q.READ_NOISE)])
            xa, xb = _path(ya, psf, n, m, 0.5 * be, 0.0), _path(yb, psf, n, m, 0.5 * be, 0.0)
            sa = A._Scorer(yb, psf, 1.0, 0.5 * be, "non-circulant", A.DEBLUR_EPS)
            sb = A._Scorer(ya, psf, 1.0, 0.5 * be, "non-circulant", A.DEBLUR_EPS)
            D, V, S, T = [], [], [], []
            for k in range(n):
                D.append(0.5 * (sa(xa[k])[0] + sb(xb[k])[0]))
                if k == 0:
                    box = sa.box
                    shape = sa.y2.shape
                    hb = np.fft.fftn(np.fft.irfftn(A._folded_otf(psf.astype(np.float64), shape), shape,
                                                   axes=tuple(range(len(shape)))))
                    out_band = 1 - (np.abs(hb) ** 2 / (np.abs(hb) ** 2 + A.DEBLUR_EPS)) ** 2
                    norm = 0.5 / sa.y2.size ** 2  # D's normalisation (a half spectrum, per voxel squared)
                XA = np.fft.fftn(xa[k][box].astype(np.float64))
                XB = np.fft.fftn(xb[k][box].astype(np.float64))
                V.append(norm * float(np.sum(out_band * np.abs(XA - XB) ** 2 / 2)))
                S.append(norm * float(np.sum(out_band * np.real(XA * np.conj(XB)))))
                T.append(float(np.sum((xa[k] - 0.5 * truth) ** 2)))  # the half's own error (the truth: a diagnosis)
            D, V, S, T = map(np.array, (D, V, S, T))
            picks = [int(np.argmin(c)) + 1 for c in (D, D + V, D + V - S, T)]
            hits = [hit(nm, k) for k in picks]
            tally += hits
            total += 1
            print(f"{name:<12} {label:<30} {int(np.nanargmin(nm)) + 1:5d} "
                  + " ".join(f"{k:>8d}{'*' if h else ' '}" for k, h in zip(picks, hits)), flush=True)
    print(f"\nwithin 5 % / 0.02 of the best NMSE, of {total} runs: D {tally[0]}, D + V {tally[1]}, "
          f"D + V - S {tally[2]}; the half's own best iterate (with the truth: is the half-to-full factor the "
          f"problem?) {tally[3]}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=("eps", "split"), default=None)
    ap.add_argument("--phantoms", nargs="+", default=list(Q.PHANTOMS) + ["hollow bars"])
    args = ap.parse_args(argv)
    logging.getLogger("fijidecon").setLevel(logging.ERROR)
    with np.errstate(all="ignore"):
        if args.only in (None, "eps"):
            route_eps(args.phantoms)
        if args.only in (None, "split"):
            route_split(args.phantoms)


if __name__ == "__main__":
    main()
