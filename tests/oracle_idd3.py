"""An independent, literal implementation of spec §3.3 (Iterative Deconvolve 3D), for tests.

Written directly from ``specs/dougherty-plugins.md`` in the most obvious way: full
complex FFTs in float64, arrays rounded to float32 where Java stores floats, explicit
loops in the order the spec gives, ``np.cumsum(..., dtype=float32)[-1]`` for the
sequential sums, ``np.pad(mode="symmetric")`` for the mirror padding.  It shares no
code with ``fijidecon.deconvolve.iterative3d`` and serves as the oracle for the cases
whose original outputs are held back (dB, 2D, single-slice PSF, filters only, odd sizes).
"""

import numpy as np

f32 = np.float32


def seq(a):
    return np.cumsum(np.ravel(a).astype(f32), dtype=f32)[-1] if np.size(a) else f32(0)


def e(n):
    if n <= 1:
        return 4
    p = 4
    while p < 1.5 * n:
        p *= 2
    return p


def run(image, psf, normalize=False, gamma=0.0, fxy=1.0, fz=1.0, nmax=100, T=0.01, ar=True, detect=True, db=False):
    Y = np.asarray(image, f32)
    A = np.asarray(psf, f32)
    two_d = Y.ndim == 2
    if Y.ndim == 2:
        Y = Y[None]
    if A.ndim == 2:
        A = A[None]
    if db:
        Y = np.exp(Y.astype(float) * np.log(10) / 10).astype(f32)
        A = np.exp(A.astype(float) * np.log(10) / 10).astype(f32)
    S = seq(A)
    scale = f32(1) / S if normalize and S != 0 else f32(1)
    bd, bh, bw = Y.shape
    kd, kh, kw = A.shape
    d = max(1 if bd == 1 else e(bd), 1 if kd == 1 else e(kd))
    h = max(e(bh), e(kh))
    w = max(e(bw), e(kw))
    N = (d, h, w)
    off = [(Nn - n + 1) // 2 for Nn, n in zip(N, Y.shape)]
    pads = [(o, Nn - n - o) for o, Nn, n in zip(off, N, Y.shape)]
    Yp = np.pad(Y, pads, mode="symmetric").astype(f32)
    Ap = np.zeros(N, f32)
    ko = [(Nn - k + 1) // 2 for Nn, k in zip(N, A.shape)]
    Ap[ko[0]:ko[0] + kd, ko[1]:ko[1] + kh, ko[2]:ko[2] + kw] = A
    for ax, Nn in enumerate(N):
        if Nn % 2 == 0:
            Ap = np.roll(Ap, -Nn // 2, axis=ax)
    FA = np.fft.fftn(Ap.astype(float))
    if ar:
        B = np.fft.ifftn(FA * np.fft.fftn(Yp.astype(float))).real.astype(f32)
        alpha = np.zeros(N, f32)
        for ax, (Nn, o, n) in enumerate(zip(N, off, Y.shape)):
            a = np.zeros(Nn, f32)
            for p in range(Nn):
                c = p - o
                if c < 0:
                    a[p] = f32(-c) / f32(o)
                elif c > n - 1:
                    a[p] = f32(c - n) / f32(o)
            shape = [1, 1, 1]
            shape[ax] = Nn
            alpha = np.maximum(alpha, a.reshape(shape))
        Yp = ((f32(1) - alpha) * Yp + alpha * (B / S)).astype(f32)
    if gamma > 1e-4:
        P = np.abs(FA) ** 2
        den = 2 * (P + gamma * P.max())
        Yp = np.fft.ifftn(np.conj(FA) * np.fft.fftn(Yp.astype(float)) / den).real.astype(f32)
        FA = P / den
        As = np.fft.ifftn(FA).real.astype(f32)
    else:
        As = Ap
    aSum = seq(np.abs(As))
    if scale != 1:
        Yp = (Yp / scale).astype(f32)

    def g(Nn, F):
        i = np.arange(Nn)
        ip = np.minimum(i, Nn - i)
        return np.exp(-((ip * (F + 1e-6) / Nn) ** 2)).astype(f32)

    gz = g(d, fz) if d > 1 else np.ones(1, f32)
    G = (gz[:, None, None] * g(h, fxy)[None, :, None]) * g(w, fxy)[None, None, :]
    X = Yp.copy()
    prev = f32(3.4028235e38)
    log = []
    it_out = nmax
    crop = tuple(slice(o, o + n) for o, n in zip(off, Y.shape))
    for it in range(nmax):
        FX = np.fft.fftn(X.astype(float)) * G
        AX = np.fft.ifftn(FA * FX).real.astype(f32)
        X = np.fft.ifftn(FX).real.astype(f32)
        delta = (Yp - AX / aSum).astype(f32)
        X = (X + delta).astype(f32)
        kept = X >= 0
        X[~kept] = 0
        D = seq(np.where(kept, np.abs(delta), f32(0)))
        P = seq(X[crop])
        pc = f32(f32(100) * D) / P
        log.append(float(pc))
        if f32(prev - pc) < T:
            it_out = it
            break
        if detect and prev < pc:
            it_out = it
            break
        prev = pc
    out = np.fft.ifftn(np.fft.fftn(X.astype(float)) * (G / aSum)).real.astype(f32)[crop]
    if db:
        out = np.where(out > 1e-9, 10 * np.log10(np.maximum(out, 1e-30).astype(float)), -90).astype(f32)
    return (out[0] if two_d else out), it_out, log
