"""The numerical quirks of Robert Dougherty's OptiNav plugins, in one named place.

Compatible mode (``compat=True``) of :func:`fijidecon.psf.diffraction_psf_3d` and
:func:`fijidecon.deconvolve.iterative_deconvolve_3d` reproduces the originals to
round-off.  Every place where that requires doing something other than the obvious
accurate thing is a function here, named after the quirk in
``specs/dougherty-plugins.md`` (Q1–Q3 for Diffraction PSF 3D, D1–D12 for Iterative
Deconvolve 3D).  Improved mode (``compat=False``) does not call them.
"""

from __future__ import annotations

import numpy as np

#: Java's Float.MAX_VALUE, the initial "previous change" of the iteration (D5).
FLT_MAX = np.float32(3.4028235e38)


def float32_sequential_sum(a: np.ndarray, chunk: int = 1 << 16) -> np.float32:
    """Sum as Java does with a ``float`` accumulator: sequentially, in C order (D7).

    numpy's ``sum`` is pairwise and therefore more accurate; the originals' stopping
    decisions depend on the less accurate sequential sum on large volumes.  Done in
    chunks with a carried accumulator so the scratch buffer stays in cache.
    """
    flat = np.ravel(a)
    if flat.dtype != np.float32:
        flat = flat.astype(np.float32)
    acc = np.float32(0.0)
    if flat.size == 0:
        return acc
    buf = np.empty(min(chunk, flat.size), np.float32)
    for start in range(0, flat.size, chunk):
        part = flat[start : start + chunk]
        out = buf[: part.size]
        out[:] = part
        out[0] = acc + part[0]  # float32 + float32: the Java loop's next step
        np.cumsum(out, out=out)
        acc = out[-1]
    return np.float32(acc)


def float32_sequential_sum_inplace(a: np.ndarray) -> np.float32:
    """:func:`float32_sequential_sum` of a C-contiguous float32 scratch array, which it
    overwrites with its running sum (no copy)."""
    flat = a.reshape(-1)
    if flat.size == 0:
        return np.float32(0.0)
    np.cumsum(flat, out=flat)
    return np.float32(flat[-1])


# ----------------------------------------------------------------------------------
# Diffraction PSF 3D
# ----------------------------------------------------------------------------------

def j0_abramowitz_stegun(x: np.ndarray) -> np.ndarray:
    """Bessel J0 by the Abramowitz & Stegun polynomials 9.4.1 / 9.4.3 (|error| ≤ 5e-8).

    The original uses these instead of an exact J0; matching them keeps the profile
    bit-identical after the float32 cast.
    """
    x = np.abs(np.asarray(x, dtype=np.float64))
    out = np.empty_like(x)
    small = x <= 3.0
    y = (x[small] / 3.0) ** 2
    out[small] = 1.0 + y * (-2.2499997 + y * (1.2656208 + y * (-0.3163866 + y * (
        0.0444479 + y * (-0.0039444 + y * 0.0002100)))))
    big = ~small
    xb = x[big]
    z = 3.0 / xb
    f0 = 0.79788456 + z * (-0.00000077 + z * (-0.00552740 + z * (-0.00009512 + z * (
        0.00137237 + z * (-0.00072805 + z * 0.00014476)))))
    t0 = xb - 0.78539816 + z * (-0.04166397 + z * (-0.00003954 + z * (0.00262573 + z * (
        -0.00054125 + z * (-0.00029333 + z * 0.00013558)))))
    out[big] = f0 * np.cos(t0) / np.sqrt(xb)
    return out


def q1_cycles(K: float, rho: np.ndarray, z: float, sa: float, U: float) -> np.ndarray:
    """Number of Simpson "cycles" per radius, with quirk Q1.

    c = max(1 + floor(KρU/3), 1 + floor(|κ|·0.36·U/6)); κ = K·z only at r = 0 and
    K·(z + SA) for every other radius (a variable reused from the previous radius's
    endpoint).  Changes only the node count, but is needed for bit-exactness.
    """
    cj = 1 + np.floor(K * rho * U / 3.0)
    kappa = np.full(rho.shape, K * (z + sa))
    kappa[0] = K * z
    cz = 1 + np.floor(np.abs(kappa) * 0.36 * U / 6.0)
    return np.maximum(cj, cz).astype(np.int64)


def q2_profile_to_image(prof: np.ndarray, width: int, height: int) -> np.ndarray:
    """Quirk Q2: pixels get the float32 linear interpolation of an integer-radius profile.

    ``prof`` has shape (depth, rmax).  Returns (depth, height, width) float32.
    """
    ic, jc = width // 2, height // 2
    di = np.arange(width, dtype=np.float64) - ic
    dj = np.arange(height, dtype=np.float64) - jc
    r = np.sqrt(dj[:, None] ** 2 + di[None, :] ** 2).astype(np.float32)
    i0 = np.floor(r).astype(np.intp)
    t = (r - i0.astype(np.float32)).astype(np.float32)
    one = np.float32(1.0)
    return ((one - t) * prof[:, i0] + t * prof[:, i0 + 1]).astype(np.float32)


# ----------------------------------------------------------------------------------
# Iterative Deconvolve 3D
# ----------------------------------------------------------------------------------

def d1_fft_size(n_image: int, n_psf: int, axis_is_z: bool) -> int:
    """Quirk D1: the padded length, a power of two ≥ 1.5·n (from 4), max over image and PSF.

    On the z axis a length of 1 stays 1 (the true 2D path) only when both are 1.
    """

    def e(n: int) -> int:
        if n <= 1:
            return 4
        p = 4
        while p < 1.5 * n:
            p *= 2
        return p

    def ez(n: int) -> int:
        return 1 if n == 1 else e(n)

    f = ez if axis_is_z else e
    return max(f(n_image), f(n_psf))
