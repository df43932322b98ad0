"""``stop="auto"``: the Richardson-Lucy iteration count chosen from the data alone.

Binomial thinning (data fission) of Poisson counts
    If ``y ~ Poisson(m)``, then ``y1 ~ Binomial(y, p)`` and ``y2 = y - y1`` are
    *independent* Poisson variables with means ``p m`` and ``(1 - p) m`` (Leiner,
    Duan, Wasserman & Ramdas, JASA 2023, "Data fission"; Neufeld, Dharamshi, Gao &
    Witten, JMLR 2024, "Data thinning").  RL (any variant: acceleration, back
    projector, regularisation) is run on ``y1`` with background ``p b``, and each
    iterate ``x_k`` is scored on ``y2``, which it never saw, over the voxels where
    ``H x_k`` is exact from the image alone (the image less the PSF's half-width at
    each border for non-circulant/mirror edges: the estimate beyond the border fits
    noise early, and scoring it stopped sparse objects too soon; the whole image, with
    the engine's own model, when the PSF is about as wide as the image):

    ``"deblurred"`` (default)
        ``D(k) = || W (H x_k + p b - p / (1 - p) y2) ||^2`` with ``W`` the Wiener
        inverse ``conj(H) / (|H|^2 + eps)`` (``eps = DEBLUR_EPS`` relative to
        ``|OTF(0)|^2 = 1``).  As ``y2`` is independent of ``x_k``,
        ``E D(k) = || W H (x_k - x) ||^2 + const``: an unbiased estimate (up to a
        constant) of the object-space error in the PSF's pass band.
    ``"likelihood"``
        ``L(k) = sum(m_k - y2 log m_k)``, ``m_k = (1 - p) / p (H x_k + p b)``: the
        held-out Poisson likelihood, an estimate of the data-space (prediction) risk.
        It stops too early for sparse objects, whose NMSE keeps falling long after the
        prediction stops improving (beads: 0.73-0.84 vs 0.26-0.59 best).

    Choosing the count: the minimum ``k*`` of ``D`` is where the pass-band error is
    lowest, but sparse objects (beads) keep gaining beyond the pass band long after it,
    where ``D`` is flat within its noise.  So the count ``k1`` is the latest scored
    iterate whose ``D`` is within one standard error of the minimum (``SE_FACTOR``),
    every iterate between them included, and at most ``LATE_CAP = 3`` times ``k*``.  The
    standard error of ``D(k) - D(k*)`` is exact for Poisson ``y2`` (its random part is
    linear in ``y2``; ``_Scorer.standard_error``; checked against 200-300 fresh Poisson
    draws within 3 %).  On the scoreboard of ``benchmarks/quality.py`` this rule lands
    within 5 % / 0.02 of the best NMSE in 31 of 55 runs (its first seven methods: 23 of 35,
    the minimum itself 16); ignoring bumps above the band (the latest iterate within it up
    to the cap) measured 32 of 55 but went further off where it missed (lines, near-edge
    cubes), so the window closes at the first iterate above the band.
    It cannot help where the NMSE is best *before* the minimum of ``D``: bright
    extended objects (the near-edge cubes), whose later iterates ring at frequencies
    the PSF does not pass, which no held-out data can see (1 of 7 there).  With
    ``criterion="likelihood"`` the count is the minimum of ``L``.  The thinned run stops
    once the score has had no new minimum for ``PATIENCE`` times ``k*`` (and 10 more) and
    the one-standard-error window has closed.

From the thinned run to the full data
    RL on a fraction ``p`` of the photons reaches its best iterate a little sooner;
    with ``p = 0.8`` the measured best factor is 1 (1.25 helped sparse objects but made
    Biggs-Andrews and momentum over-fit bars), so ``k = k1``: the full data are then
    deconvolved to ``k`` by the normal path.  Cost: one thinned run (usually stopped
    early), one convolution per scored iterate (every iterate up to 20, then about 20
    per doubling), then the final run to ``k``: at most about 2 runs of ``iterations``.
    ``folds > 1`` averages the scores of independent thinnings (one run each).

Counts must be photo-electrons
    ``gain`` (e-/ADU) and ``offset`` (ADU) convert the image to photo-electrons,
    ``e = gain * (image - offset)``; read noise (``read_noise``, image units) is
    handled by the shifted-Poisson approximation (``e + s**2`` with ``s`` in e-).
    When they are not given, they are estimated from the image (photon-transfer
    curve, :func:`estimate_camera`): the variance of a noise-only residual against
    the mean, in blocks of 8 x 8 pixels binned by mean; a line ``var = a mean + c``
    gives the gain ``1 / a`` and an effective offset ``-c / a`` that includes the
    read-noise shift.  The residual is the image's part at frequencies the PSF does not
    pass (``|OTF| < OTF_STOP``, image mirrored in Y and X), where the object leaves
    nothing (on the phantoms of ``benchmarks/quality.py``: gain within -8 %/+17 %);
    when the PSF passes nearly every frequency, an in-plane discrete Laplacian (low
    quantile per bin; structure makes the gain read 10-25 % low).  A warning says so
    when the image does not look like photo-electrons (gain outside 0.7-1.45 or a
    significant offset); when no line can be fitted (flat or small images), gain 1 and
    offset 0 are used, with a warning.  Assumptions: pixel noise independent (no
    binning or filtering after the camera), Poisson plus Gaussian read noise, one gain
    and offset for all pixels (sCMOS pixel-to-pixel variations are ignored).
"""

from __future__ import annotations

import contextvars
import functools
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft

from .. import _validate
from . import _background, _edges, _hyper, _otf
from ..errors import InputError

log = logging.getLogger("fijidecon")

#: The largest count the CLI's ``--stop auto`` considers when ``--iterations`` is not given.
DEFAULT_MAXIMUM = 200
#: ``stop="auto"`` with a maximum below this warns (little to choose from).
FEW = 10
#: Default thinning fraction: the photons RL is run on (the rest score it).
DEFAULT_FRACTION = 0.8
#: Count for the full data per count chosen on the fraction p (measured, see the module docstring).
AUTO_FACTOR = {("deblurred", 0.8): 1.0, ("likelihood", 0.8): 1.0}
#: The scores of the held-out data (see ``choose_iterations``).
CRITERIA = {"deblurred": "held-out residual after a Wiener inverse", "likelihood": "held-out Poisson likelihood"}
#: Regularisation of the Wiener inverse of the "deblurred" score, relative to |OTF(0)|^2 = 1.
DEBLUR_EPS = 1e-3
#: Iterates scored one by one up to here, then about ``SCORES_PER_DOUBLING`` per doubling.
DENSE_UNTIL = 20
SCORES_PER_DOUBLING = 20
#: The thinned run stops when no new minimum for this factor times the best count (and 10 more).
PATIENCE = 1.6
#: The count chosen: the latest iterate within this many standard errors of the score's minimum ...
SE_FACTOR = 1.0
#: ... and at most this factor times the minimum's count (see ``_LateRule``).
LATE_CAP = 3.0
#: How the count is chosen from each score's curve.
RULES = {"deblurred": f"the latest iterate within {SE_FACTOR:g} standard error of the minimum (at most "
                      f"{LATE_CAP:g}x its count)", "likelihood": "the minimum"}
#: ``exponent > 1``: the final run's exponent schedule, one entry per (T, C) volume: the first
#: iteration at which the thinned run's guard dropped the exponent to 1, or ``None`` (never).
#: Set by :func:`run_auto` around the final run, read by ``richardson_lucy`` (its guard is then off).
EXPONENT_DROPS: contextvars.ContextVar[list | None] = contextvars.ContextVar("fijidecon_exponent_drops",
                                                                             default=None)
#: True while the thinned run of :func:`choose_iterations` runs (checks of the user's data are skipped there).
THINNED: contextvars.ContextVar[bool] = contextvars.ContextVar("fijidecon_auto_thinned", default=False)
#: Set by :func:`run_auto` for a bricked or lazy run (a Dask image, ``bricks=``, or a choice that does not
#: fit ``memory_limit`` whole): each (T, C) volume's count is chosen on its central brick by
#: :func:`choose_on_pilot` (``{"gain", "offset", "choices"}``), read by ``richardson_lucy``'s ``_decide``.
ON_PILOT: contextvars.ContextVar[dict | None] = contextvars.ContextVar("fijidecon_auto_on_pilot", default=None)
#: Blocks of the photon-transfer estimate (pixels per side, in each plane).
BLOCK = 8
#: The quantile of the blocks' residual variances taken per mean bin.
QUANTILE = 0.1
#: The PSF passes nothing at frequencies where |OTF| < this (the spectral noise estimate).
OTF_STOP = 1e-4


@dataclass(frozen=True)
class Camera:
    """Conversion of image units to photo-electrons: ``e = gain * (image - offset)``.

    ``offset`` is the effective offset (ADU) of the shifted-Poisson model (read noise
    included) when estimated; ``source`` says ``"given"``, ``"estimated"`` or
    ``"assumed"`` (gain 1, offset 0); ``fit`` holds the photon-transfer line
    ``(a, c)`` of ``var = a mean + c`` when estimated.
    """

    gain: float
    offset: float
    source: str
    fit: tuple[float, float] | None = None
    shift: float = 0.0


def _laplacian_residual(vol: np.ndarray) -> np.ndarray:
    """In-plane discrete Laplacian scaled to keep the variance of white noise, (Z, Y-2, X-2)."""
    v = vol.reshape((-1,) + vol.shape[-2:]).astype(np.float64)
    c = v[:, 1:-1, 1:-1]
    r = 4 * c - v[:, :-2, 1:-1] - v[:, 2:, 1:-1] - v[:, 1:-1, :-2] - v[:, 1:-1, 2:]
    return r / math.sqrt(20.0), c


@functools.lru_cache(maxsize=None)
def _quantile_of_noise(block: int, q: float) -> float:
    """The ``q`` quantile of the blocks' residual variance for white noise of variance 1
    (the Laplacian's neighbours are correlated: measured, not from a chi-square law)."""
    rng = np.random.default_rng(12345)
    r, _ = _laplacian_residual(rng.standard_normal((8, 32 * block + 2, 32 * block + 2)))
    v = (r ** 2).reshape(8, 32, block, 32, block).mean(axis=(2, 4))
    return float(np.quantile(v, q))


def estimate_camera(image: np.ndarray, kernel: np.ndarray | None = None, block: int = BLOCK, bins: int = 16,
                    quantile: float = QUANTILE) -> Camera | None:
    """Gain and offset from the noise of one image (photon-transfer curve).

    Parameters
    ----------
    image:
        (Y, X) or (Z, Y, X) raw camera image (any real dtype), not modified.
    kernel:
        The PSF on the image's grid (origin at ``n // 2``).  With it, the noise is
        measured in the frequencies the PSF does not pass (``|OTF| < OTF_STOP``), where the
        object leaves nothing; without it (or when it passes nearly every frequency), in
        an in-plane discrete Laplacian of the image.
    block:
        Side of the square blocks (pixels) in each plane.
    bins:
        Number of mean-level bins (quantiles of the blocks' means).
    quantile:
        The blocks' residual variance taken in each bin (a low quantile: blocks with
        structure read high), scaled by the same quantile of white noise.

    Returns
    -------
    Camera or None
        ``Camera(gain, offset, "estimated", (a, c))`` with ``var = a mean + c`` fitted
        through the bins' variances; ``None`` when there are fewer than 32 blocks, the
        means span too narrow a range, or the slope is not positive.
    """
    if kernel is not None:
        rc = _spectral_residual(np.asarray(image), np.asarray(kernel))
        if rc is not None:
            return _fit_camera(*rc, block, bins, None, 1.0)
    r, c = _laplacian_residual(np.asarray(image))
    return _fit_camera(r, c, block, bins, quantile, _quantile_of_noise(block, quantile))


def _spectral_residual(image: np.ndarray, kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The image's frequencies where the PSF passes nothing (``|OTF| < OTF_STOP``), scaled
    to the variance of white noise, and the image itself, cropped of a border where the
    periodic wrap leaks (``None`` when the PSF passes more than 95 % of the frequencies)."""
    v = image.reshape((-1,) + image.shape[-2:]).astype(np.float32)
    k = kernel.reshape((-1,) + kernel.shape[-2:]) if kernel.ndim == image.ndim else None
    if k is None or k.ndim != v.ndim:
        return None
    n = v.shape
    v = np.concatenate([v, v[:, ::-1]], axis=1)  # mirrored in Y and X: no wrap-around step at the borders
    v = np.concatenate([v, v[:, :, ::-1]], axis=2)
    otf = np.abs(_folded_otf(k.astype(np.float64) / k.sum(), v.shape))
    mask = otf < OTF_STOP
    weight = np.full(mask.shape, 2.0)
    weight[..., 0] = 1
    if v.shape[-1] % 2 == 0:
        weight[..., -1] = 1
    frac = float((weight * mask).sum() / weight.sum())
    if frac < 0.05:
        return None
    r = scipy.fft.irfftn(scipy.fft.rfftn(v, workers=-1) * mask, v.shape, workers=-1) / math.sqrt(frac)
    bz = 2 if n[0] > 8 else 0
    crop = (slice(bz, n[0] - bz), slice(2, n[1] - 2), slice(2, n[2] - 2))
    return r[crop].astype(np.float64), v[crop].astype(np.float64)


def _fit_camera(r: np.ndarray, c: np.ndarray, block: int, bins: int, quantile: float | None,
                q_noise: float) -> Camera | None:
    """``var = a mean + c`` through the bins of blocks (see :func:`estimate_camera`); per bin the
    blocks' mean variance (``quantile=None``) or that quantile divided by ``q_noise``."""
    nz, ny, nx = r.shape
    by, bx = ny // block, nx // block
    if nz * by * bx < 32:
        return None
    sl = (slice(None), slice(0, by * block), slice(0, bx * block))
    shp = (nz, by, block, bx, block)
    var = (r[sl] ** 2).reshape(shp).mean(axis=(2, 4)).ravel()
    mean = c[sl].reshape(shp).mean(axis=(2, 4)).ravel()
    bins = max(3, min(bins, mean.size // 6))  # at least 6 blocks a bin on small images
    edges = np.quantile(mean, np.linspace(0, 1, bins + 1))
    idx = np.clip(np.searchsorted(edges, mean, side="right") - 1, 0, bins - 1)
    mb, vb = [], []
    for i in range(bins):
        sel = idx == i
        if sel.sum() >= 4:
            mb.append(float(np.median(mean[sel])))
            vb.append(float(np.mean(var[sel]) if quantile is None else np.quantile(var[sel], quantile)))
    mb, vb = np.array(mb), np.array(vb) / q_noise
    if len(mb) < 3 or not (mb.max() - mb.min()) > 0.5 * math.sqrt(max(np.median(vb), 1e-12)):
        return None
    a, c0 = np.polyfit(mb, vb, 1)
    if not a > 0:
        return None
    return Camera(float(1 / a), float(-c0 / a), "estimated", (float(a), float(c0)))


def _camera(vol: np.ndarray, gain: Any, offset: Any, read_noise: float, kernel: np.ndarray,
            where: str = "") -> Camera:
    """The camera model used for thinning: given, estimated or assumed (with a warning).

    ``shift`` (e-) is added to the converted counts: the read-noise variance when the
    offset is given or assumed; 0 when it is estimated (it then includes the shift).
    ``where`` (``" (volume t=0, c=1)"`` in a hyperstack) goes into the warnings."""
    if gain is not None and offset is not None:
        return Camera(gain, offset, "given", shift=(gain * read_noise) ** 2)
    floor = float(np.mean(vol == np.min(vol)))
    if floor > 0.5:  # no camera offset or read noise (simulated data): the noise is not measurable there
        _warn(f"stop='auto'{where}: {floor:.0%} of the voxels equal the image's minimum ({float(np.min(vol)):g}), so "
              "the camera's noise cannot be measured well (simulated data without background?); pass gain= and "
              "offset= (CLI --gain, --offset) if the image is in photo-electrons, e.g. gain 1 and offset 0")
    est = estimate_camera(vol, kernel)
    if est is None:
        g, off = (1.0 if gain is None else gain), (0.0 if offset is None else offset)
        missing = " and ".join(n for n, v in (("gain", gain), ("offset", offset)) if v is None)  # not the one given
        cli = ", ".join(f"--{n}" for n in missing.split(" and "))
        give = missing.replace("gain", "gain=").replace("offset", "offset=")
        _warn(f"stop='auto'{where}: the image's noise level could not be measured (too flat or too small); taking "
              f"gain {g:g} e-/ADU and offset {off:g} - pass {give} (CLI {cli}; camera values) if the image is not in "
              "photo-electrons")
        return Camera(g, off, "assumed", shift=(g * read_noise) ** 2)
    g = est.gain if gain is None else gain
    if offset is None:  # var = a mean + c: counts g (image + c g) have variance = mean (shifted Poisson)
        off, shift = -est.fit[1] * g, 0.0
    else:
        off, shift = offset, (g * read_noise) ** 2
    level = float(np.mean(vol))
    if (gain is None and not 0.7 <= g <= 1.45) or (offset is None and abs(off) > 0.05 * max(level, 1.0) + 2 +
                                                   2 * read_noise ** 2):
        _warn(f"stop='auto'{where}: the image does not look like photo-electrons: its noise variance is "
              f"{est.fit[0]:.3g} x mean {est.fit[1]:+.3g}, i.e. gain {g:.3g} e-/ADU and offset {off:.3g} "
              "(estimated and used to choose the iteration count); pass gain= and offset= "
              "(CLI --gain, --offset; camera values) to use those instead")
    return Camera(float(g), float(off), "estimated", est.fit, shift)


def _warn(msg: str) -> None:
    """A ``UserWarning``, also logged at INFO like the notes (at WARNING, Python's last-resort
    handler would print it a second time where logging is not configured)."""
    _validate.warn(msg, UserWarning)  # first: the CLI then prints it once, as a warning
    if _validate._HELD.get() is None:  # else logged once for all volumes (volume_warnings)
        log.info(msg)


#: Photo-electrons per voxel beyond which thinning is refused (int64 binomial draws; no camera counts so many).
MAX_COUNTS = 1e15


def thin(counts: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split counts into independent Poisson parts: ``y1 ~ Binomial(y, p)``, ``y2 = y - y1``.

    Non-integer counts are rounded stochastically first (``floor(y) + Bernoulli(frac)``),
    negative ones set to 0.  Returns two float32 arrays of ``counts``' shape.
    """
    y = np.maximum(np.asarray(counts, np.float64), 0)
    top = float(y.max()) if y.size else 0.0
    if y.size and top < 1.0:
        raise InputError(f"gain: (image - offset) x gain is at most {top:.3g} photo-electrons in a voxel (less than "
                         "one): nothing to split; check gain= (photo-electrons per image unit) and offset= (image "
                         "units)")
    if not top <= MAX_COUNTS:
        raise InputError(f"gain: (image - offset) x gain is {top:.3g} photo-electrons in a voxel (more than "
                         f"{MAX_COUNTS:.0e}): check gain= (photo-electrons per image unit) and offset= (image units)")
    fl = np.floor(y)
    y = fl + (rng.random(y.shape) < (y - fl))
    n = y.astype(np.int64)
    y1 = rng.binomial(n, fraction)
    return y1.astype(np.float32), (n - y1).astype(np.float32)


def _folded_otf(kernel: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The real-FFT OTF of ``kernel`` (origin at ``n // 2``) wrapped onto a periodic grid ``shape``."""
    k = np.zeros(shape, np.float64)
    idx = np.indices(kernel.shape).reshape(kernel.ndim, -1)
    np.add.at(k, tuple((idx[d] - kernel.shape[d] // 2) % shape[d] for d in range(kernel.ndim)), kernel.ravel())
    return scipy.fft.rfftn(k, workers=-1)


class _Scorer:
    """Held-out scores of an estimate ``x`` of the thinned run.

    ``__call__`` returns ``(deblurred, likelihood)``: the squared norm of the held-out
    residual ``r = H x + p b - p / (1 - p) y2`` after the Wiener inverse
    ``conj(H) / (|H|^2 + eps)`` (per voxel), and the held-out Poisson negative
    log-likelihood (per voxel, up to a constant).

    The scored voxels are those where ``H x`` is exact from the image part alone (the
    image shrunk by the PSF's half-width for non-circulant/mirror edges, all of it for
    periodic edges).  When that leaves fewer than an eighth of an axis (a PSF about as
    wide as the image), the whole image is scored with the engine's own model on its
    work grid, if the estimate given to the callback is the image part of the engine's
    work-grid estimate (``x.base``, the geometry of :mod:`._edges`), else the central
    half.  The mode is fixed at the first call."""

    def __init__(self, y2: np.ndarray, kernel: np.ndarray, scale: float, bg: float, edges: str, eps: float):
        self.kernel = np.asarray(kernel, np.float32)
        self.y2_all = np.asarray(y2, np.float32)
        self.edges, self.eps = edges, eps
        self.scale, self.bg = scale, bg
        self.geo = _edges.geometry(edges, y2.shape, self.kernel.shape)
        self.mode: str | None = None

    def _setup(self, x: np.ndarray) -> None:
        ks, shape = self.kernel.shape, self.y2_all.shape
        lo = [n - 1 - n // 2 for n in ks]
        hi = [s - n // 2 for s, n in zip(shape, ks)]
        interior = self.edges == "periodic" or all(h - l >= max(2, s // 8) for l, h, s in zip(lo, hi, shape))
        if not interior and self._engine_grid(x):
            self.mode = "work"
            self.box = tuple(slice(0, n) for n in x.shape)
            self.otf = _otf.otf(self.kernel, self.geo.work_shape)
        else:
            self.mode = "image"
            if self.edges == "periodic":
                self.box = tuple(slice(0, n) for n in shape)
                self.grid = shape
                self.otf = _folded_otf(self.kernel.astype(np.float64), shape).astype(np.complex64)
            else:
                if not interior:  # PSF about as wide as the image and no engine grid: the central half
                    lo = [min(l, s // 4) for l, s in zip(lo, shape)]
                    hi = [max(h, s - s // 4, l + 2) for l, h, s in zip(lo, hi, shape)]
                self.box = tuple(slice(l, h) for l, h in zip(lo, hi))
                self.grid = tuple(scipy.fft.next_fast_len(s + n - 1, real=True) for s, n in zip(shape, ks))
                self.otf = scipy.fft.rfftn(self.kernel, self.grid, workers=-1).astype(np.complex64)
        self.y2 = self.y2_all[self.box]
        self.voxels = self.y2.size
        hb = _folded_otf(self.kernel.astype(np.float64), self.y2.shape)
        self.inverse = (np.conj(hb) / (np.abs(hb) ** 2 + self.eps)).astype(np.complex64)

    def _engine_grid(self, x: np.ndarray) -> bool:
        """Whether ``x`` is the image part of the engine's work-grid estimate (``x.base``)."""
        base = x.base
        if not (isinstance(base, np.ndarray) and base.shape == tuple(self.geo.work_shape) and base.dtype == x.dtype):
            return False
        part = base[self.geo.crop]
        return part.__array_interface__["data"][0] == x.__array_interface__["data"][0] and part.strides == x.strides

    def blur(self, x: np.ndarray) -> np.ndarray:
        """``H x`` over the scored box."""
        if self.mode == "work":
            h = scipy.fft.irfftn(scipy.fft.rfftn(x.base, workers=-1) * self.otf, self.geo.work_shape, workers=-1)
            return h[self.geo.crop]
        h = scipy.fft.irfftn(scipy.fft.rfftn(x, self.grid, workers=-1) * self.otf, self.grid, workers=-1)
        if self.edges == "periodic":
            return h[self.box]
        off = [n // 2 for n in self.kernel.shape]
        return h[tuple(slice(b.start + o, b.stop + o) for b, o in zip(self.box, off))]

    def __call__(self, x: np.ndarray) -> tuple[float, float]:
        if self.mode is None:
            self._setup(x)
        hx = np.maximum(self.blur(x), 0)
        hx += np.float32(self.bg)
        r = scipy.fft.rfftn(hx - self.y2 / np.float32(self.scale), workers=-1)
        r *= self.inverse
        self.last = (hx, r)  # the model and its weighted residual, for ``standard_error``
        deblurred = float(np.vdot(r, r).real) / self.voxels ** 2
        m = np.maximum(np.float32(self.scale) * hx, np.float32(1e-12))
        nll = float(np.sum(m, dtype=np.float64) - np.vdot(self.y2, np.log(m)))
        return deblurred, nll / self.voxels

    def standard_error(self, ref: tuple[np.ndarray, np.ndarray]) -> float:
        """The Poisson standard error of ``D(k) - D(ref)`` for the last scored iterate ``k``.

        The difference's random part is ``-2 / (N s) sum(u y2)`` with ``u`` the real-space
        form of ``|W|^2 FFT(a_k - a_ref)`` (``a`` = the models, ``s`` = ``scale``); with
        ``Var(y2) = s a_ref`` (Poisson), ``SE = 2 / (N s) sqrt(sum(u^2 s a_ref))``."""
        a_ref, r_ref = ref
        q = np.conj(self.inverse) * (self.last[1] - r_ref)
        n = self.y2.shape[-1]
        q[..., 1:(n + 1) // 2] *= 0.5  # D sums the half spectrum once: u is the inverse of q on it
        u = scipy.fft.irfftn(q, self.y2.shape, workers=-1)
        var = np.float64(np.vdot(u * u, a_ref)) * self.scale
        return 2.0 / (self.voxels * self.scale) * math.sqrt(max(var, 0.0))


class _LateRule:
    """The count chosen on a score's curve (``late``): the minimum ``kmin`` without a
    window (``likelihood``); with one (``deblurred``), the latest iterate whose score is
    within ``SE_FACTOR`` standard errors of the minimum, every scored iterate from the
    minimum to it included, at most ``LATE_CAP`` times the minimum's count.  The score sees
    only the PSF's pass band; past its minimum, iterates it cannot tell apart may still gain
    beyond it (sparse objects), so the rule keeps going while the score is not
    significantly worse.  ``closed``: no later iterate can be chosen unless a new minimum
    comes."""

    def __init__(self, scorer: _Scorer, window: bool):
        self.scorer, self.window = scorer, window
        self.best, self.kmin, self.late, self.closed, self.ref = math.inf, 0, 0, True, None

    def update(self, k: int, score: float) -> None:
        if score < self.best:
            self.best, self.kmin, self.late, self.closed = score, k, k, not self.window
            self.ref = self.scorer.last
        elif not self.closed:
            if score - self.best <= SE_FACTOR * self.scorer.standard_error(self.ref) and k <= LATE_CAP * self.kmin:
                self.late = k
            else:
                self.closed = True


def _scored(k: int) -> bool:
    """Whether iterate ``k`` is scored: all up to DENSE_UNTIL, then about SCORES_PER_DOUBLING per doubling."""
    if k <= DENSE_UNTIL:
        return True
    step = max(1, int(round(k * math.log(2) / SCORES_PER_DOUBLING)))
    return k % step == 0


def check_options(gain: Any, offset: Any, fraction: Any, seed: Any, criterion: Any = "deblurred",
                  folds: Any = 1) -> tuple[Any, Any, float, Any, str, int]:
    """The auto-stop parameters checked (one-line errors naming them)."""
    if gain is not None:
        gain = _validate.check_float("gain", gain, positive=True)
    if offset is not None:
        offset = _validate.check_float("offset", offset)
    fraction = _validate.check_float("auto_fraction", fraction, positive=True)
    if not fraction < 1:
        raise InputError(f"auto_fraction: expected a fraction of the photons between 0 and 1 (exclusive), "
                         f"got {fraction!r}")
    if seed is not None:
        seed = _validate.check_int("seed", seed, 0)
    criterion = _validate.check_choice("criterion", criterion, CRITERIA)
    folds = _validate.check_int("folds", folds, 1, 16)
    return gain, offset, fraction, seed, criterion, folds


def _fold_curve(rl: Any, y1: np.ndarray, kernel: np.ndarray, scorer: _Scorer, iterations: int, col: int,
                background: float, inner: dict) -> tuple[list[list[float]], int, int | None]:
    """RL on the thinned counts ``y1``, scored by ``scorer``: ``[[k, deblurred, likelihood], ...]``,
    the count chosen on column ``col`` (``_LateRule``; a window for ``deblurred``), stopped once
    the column has had no new minimum for a while (``PATIENCE``) and the window has closed, and
    the iteration at which the exponent's guard dropped it to 1 (``None``: never)."""
    rows: list[list[float]] = []
    rule = _LateRule(scorer, window=col == 1)
    q0, drop = float(inner.get("exponent", 1.0)), [None]

    def score(fig: Any, est: np.ndarray) -> bool:
        if not hasattr(fig, "iteration"):  # a bricked run: no per-iteration estimate
            raise MemoryError("stop: 'auto' needs the thinned run in one piece but the volume is over "
                              "memory_limit; choose the count on a crop with choose_iterations")
        k = int(fig.iteration)
        if drop[0] is None and fig.exponent < q0:
            drop[0] = k
        if _scored(k) or k == iterations:
            rows.append([k, *scorer(est)])
            rule.update(k, rows[-1][col])
        return rule.closed and k >= 10 + PATIENCE * max(rule.kmin, 1) and k > rule.kmin + 10

    rl(y1, kernel, iterations, callback=score, background=background, recenter=False, psf_threshold=0.0, **inner)
    return rows, rule.late, drop[0]


def _median_drop(drops: list[int | None]) -> int | None:
    """The folds' exponent drops: their median, a fold that never dropped counting as infinite."""
    m = float(np.median([math.inf if d is None else d for d in drops]))
    return None if math.isinf(m) else int(round(m))


def _average(folds: list[list[list[float]]]) -> np.ndarray:
    """The folds' curves averaged over the iterations every fold scored."""
    common = set.intersection(*({r[0] for r in f} for f in folds))
    return np.array([np.mean([r for f in folds for r in f if r[0] == k], axis=0) for k in sorted(common)])


def _choose_volume(vol: Any, prep: Any, bg: float, gain: Any, offset: Any, rn: float, edges: str, fraction: float,
                   seed: Any, folds: int, iterations: int, col: int, inner: dict, picks: list, minima: list,
                   curves: list, cams: list, drops: list, scored: list, single: bool) -> None:
    """One (T, C) volume of :func:`choose_iterations`: its camera model, its thinned runs and their
    held-out curve; the results are appended to ``picks`` ... ``scored`` (one item each)."""
    from .richardson_lucy import richardson_lucy

    if offset is not None and not offset < float(np.max(vol.data)):
        raise InputError(f"offset: the camera offset ({offset:g}) is at or above the image's maximum "
                         f"({float(np.max(vol.data)):g}): no photo-electrons would be left; give the offset "
                         "in image units (ADU), or omit it to estimate it")
    where = "" if single else f" (volume t={vol.t}, c={vol.c})"
    cam = _camera(vol.data, gain, offset, rn, prep.kernel, where)
    counts = cam.gain * (vol.data.astype(np.float64) - cam.offset) + cam.shift
    b_e = cam.gain * (bg - cam.offset) + cam.shift
    if b_e < -0.05 * max(float(counts.mean()), 1.0):
        _warn(f"background{where}: {bg:g} is below the camera offset {cam.offset:.4g} ({cam.source}; "
              "stop='auto'): the RL model image = H x + background would take the rest of the offset for object; give "
              f"background={cam.offset:.4g} or more (CLI --background, ImageJ Background: the offset plus the "
              "sample's own background), or subtract the offset from the image first")
    b_e = max(b_e, 0.0)
    runs, modes, fold_picks, fold_drops = [], [], [], []
    # each volume thinned from the seed afresh: its choice does not depend on the volumes before it, and
    # is the one a lazy run makes on that volume alone (one stream for all gave [40, 39] against [40, 40])
    rng = np.random.default_rng(seed)
    for _ in range(folds):
        try:
            y1, y2 = thin(counts, fraction, rng)
        except InputError as e:  # say the camera model it used: an estimated offset is not what the user gave
            raise InputError(f"{e} (here gain {cam.gain:.4g} e-/image unit, offset {cam.offset:.4g}, "
                             f"{cam.source}{where})") from None
        scorer = _Scorer(y2, prep.kernel, (1 - fraction) / fraction, fraction * b_e, edges, DEBLUR_EPS)
        token = THINNED.set(True)  # its data are photo-electrons of the thinned half, not the user's image
        try:
            rows, pick, drop = _fold_curve(richardson_lucy, y1, prep.kernel, scorer, iterations, col,
                                           fraction * b_e, inner)
        finally:
            THINNED.reset(token)
        runs.append(rows)
        fold_picks.append(pick)
        fold_drops.append(drop)
        modes.append(scorer.mode)
    drops.append(_median_drop(fold_drops))
    curve = _average(runs)
    minima.append(int(curve[int(np.argmin(curve[:, col])), 0]))
    picks.append(int(np.median(fold_picks)))
    curves.append(curve)
    cams.append(cam)
    scored.append(modes[0])


def choose_iterations(image: Any, psf: Any, iterations: int, *, gain: float | None = None,
                      offset: float | None = None, fraction: float = DEFAULT_FRACTION, seed: int | None = 0,
                      criterion: str = "deblurred", folds: int = 1, **options: Any) -> dict:
    """The Richardson-Lucy iteration count for ``image`` chosen by binomial-thinning cross-validation.

    Parameters
    ----------
    image:
        2D (Y, X), 3D (Z, Y, X) or a hyperstack with ``axes`` (in ``options``), in
        camera units; not modified.  Each (T, C) volume gets its own choice and the
        median is returned.
    psf:
        As for :func:`~fijidecon.deconvolve.richardson_lucy`.
    iterations:
        The largest count considered (>= 1).
    gain, offset:
        Camera gain (photo-electrons per image unit, > 0) and offset (image units);
        ``None``: estimated from the image (see the module docstring).
    fraction:
        Thinning fraction ``p`` the thinned RL run gets (0 < p < 1; default 0.8).
    seed:
        Seed of the thinning (``None``: a fresh random split).
    criterion:
        ``"deblurred"`` (default: the held-out residual after a Wiener inverse, an
        estimate of the object-space error in the PSF's pass band) or ``"likelihood"``
        (the held-out Poisson likelihood: the data-space prediction risk).
    folds:
        Independent thinnings whose curves are averaged (each costs one thinned run).
    **options:
        Every other :func:`richardson_lucy` option of the final run (acceleration,
        regularization, edges, background, read_noise, voxel_size, axes, ...); the
        thinned run uses the same ones, with background and read noise converted.

    Returns
    -------
    dict
        ``iteration`` (the count for the full data), ``note`` (the one-line summary,
        also logged and added to ``result.notes``), ``thinned_iteration`` (the
        count chosen on the curve: see the module docstring), ``minimum`` (the
        curve's minimum), ``rule`` (how ``thinned_iteration`` was chosen), ``curve`` (``[[k, score], ...]``; per volume for several
        volumes), ``likelihood_curve`` (the other score), ``method``, ``criterion``,
        ``fraction``, ``factor``, ``folds``, ``gain``, ``offset``, ``camera``
        (``"given"``, ``"estimated"`` or ``"assumed"``), ``seed``, ``maximum``; with
        ``exponent > 1``, ``exponent_drops`` (per (T, C) volume, the first iteration at
        which the thinned run's guard set the exponent to 1, the folds' median, ``None``:
        never), which the final run of ``stop="auto"`` follows.

    Raises
    ------
    ValueError, TypeError
        Bad ``gain``, ``offset``, ``fraction`` (as ``auto_fraction``), ``seed``,
        ``criterion``, ``folds`` or ``iterations``, a Dask image, or any error of
        :func:`richardson_lucy`.
    """
    iterations = _validate.check_int("iterations", iterations, 1, _validate.MAX_ITERATIONS)
    gain, offset, fraction, seed, criterion, folds = check_options(gain, offset, fraction, seed, criterion, folds)
    if iterations < FEW and not THINNED.get():
        _warn(f"iterations: stop='auto' chooses at most iterations={iterations}, which leaves little to choose from "
              f"(the scoreboard's best counts are 5-300); give the largest count to consider, e.g. {DEFAULT_MAXIMUM}")
    if type(image).__name__ == "Array" and hasattr(image, "dask"):
        raise InputError("stop: 'auto' needs an in-memory image, not a Dask array (run stop='auto' on a numpy crop, "
                         "then give its result's iterations as iterations=)")
    background = _background.check(options.get("background", 0.0))
    rn = _validate.check_float("read_noise", options.get("read_noise", 0.0), 0)
    layout, vols = _hyper.split(image, psf, options.get("axes"), allow_negative=True)
    bgs = _background.per_volume(background, layout.n_t, layout.n_c, lambda i: vols[i].data, layout.scale)
    edges = _edges.check_edges(options.get("edges", "non-circulant"))
    preps = _hyper.prepare_psfs(layout, vols, edges, threshold=options.get("psf_threshold", 1e-4),
                                recenter=options.get("recenter", True), voxel_size=options.get("voxel_size"),
                                psf_voxel_size=options.get("psf_voxel_size"))
    factor = AUTO_FACTOR.get((criterion, round(fraction, 6)), 1.0)
    col = 1 if criterion == "deblurred" else 2
    inner = {k: v for k, v in options.items() if k not in (
        "axes", "psf_voxel_size", "recenter", "background", "read_noise", "callback", "stop", "snapshot_every",
        "psf_threshold", "start", "track_deviance", "bricks", "halo")}
    if inner.get("voxel_size") is not None:  # the kernel is prepared (resampled) already: at the image's voxel size
        inner["psf_voxel_size"] = inner["voxel_size"]
    picks, minima, curves, cams, drops, scored = [], [], [], [], [], []
    with _validate.volume_warnings(also=log.info):  # each volume's camera warnings said once for all
        for vol, prep, bg in zip(vols, preps, bgs):
            _choose_volume(vol, prep, bg, gain, offset, rn, edges, fraction, seed, folds, iterations, col, inner,
                           picks, minima, curves, cams, drops, scored, len(vols) == 1)
    k1 = int(np.median(picks))
    k = int(min(iterations, max(1, round(k1 * factor))))

    def pairs(c: np.ndarray, j: int) -> list:
        return [[int(r[0]), float(r[j])] for r in c]

    one = len(curves) == 1
    out = dict(iteration=k, thinned_iteration=k1, minimum=int(np.median(minima)),
               curve=pairs(curves[0], col) if one else [pairs(c, col) for c in curves],
               likelihood_curve=pairs(curves[0], 2) if one else [pairs(c, 2) for c in curves],
               method=f"binomial thinning cross-validation (p={fraction:g}, {folds} fold(s), {CRITERIA[criterion]})",
               criterion=criterion, fraction=fraction, factor=factor, folds=folds, gain=cams[0].gain,
               offset=cams[0].offset, camera=cams[0].source, seed=seed, maximum=iterations, rule=RULES[criterion],
               scored="whole image" if scored[0] == "work" or edges == "periodic" else "image interior")
    if not one:  # each (T, C) volume's count and camera model, in the order of the volumes
        out.update(per_volume=picks, gain=[c.gain for c in cams], offset=[c.offset for c in cams],
                   camera=[c.source for c in cams])
    q0 = float(options.get("exponent", 1.0))
    if q0 > 1:
        out["exponent_drops"] = drops
    out["note"] = ("richardson-lucy: stop=auto chose %d iterations%s (%s on %g of the photons: minimum at %d, %s %d; "
                   "of %d; %s%s)" % (
                       k, "" if one else " for every volume, the median of their own counts", criterion, fraction,
                       out["minimum"],
                       "within one standard error until" if criterion == "deblurred" else "chosen", k1, iterations,
                       _camera_note(cams[0]) if one else "per volume (t, c): " + "; ".join(
                           f"({v.t}, {v.c}) {p}, {_camera_note(c)}" for v, p, c in zip(vols, picks, cams)),
                       _drop_note(q0, drops)))
    log.info(out["note"])
    if k1 >= iterations:
        _validate.warn(f"stop: 'auto' chose the last iteration ({iterations}): the best count may be higher; "
                       "raise iterations", RuntimeWarning)
    return out


def _camera_note(cam: Camera) -> str:
    """The note's words on a volume's camera model."""
    kind = "effective offset (read noise included)" if cam.shift == 0 and cam.source == "estimated" else "offset"
    return f"gain {cam.gain:.3g} e-/ADU, {kind} {cam.offset:.3g}, {cam.source}"


def _drop_note(q0: float, drops: list[int | None]) -> str:
    """The note's words on the exponent schedule the final run takes from the thinned run."""
    if q0 <= 1:
        return ""
    said = sorted({"throughout" if d is None else f"until iteration {d - 1}" for d in drops}, key=len)
    return f"; exponent {q0:g} {' / '.join(said)}, as on the thinned run"


def run_auto(rl: Any, image: Any, psf: Any, iterations: Any, gain: Any, offset: Any, opts: dict) -> Any:
    """``richardson_lucy(..., stop="auto")``: choose the count, then the normal run to it.

    ``rl`` is :func:`richardson_lucy`; ``opts`` its other options.  The result is that
    run's, with ``auto_stop`` (the choice, see :func:`choose_iterations`) and
    ``stop_reason="auto"``.  ``start`` is refused (the choice counts from the first
    iteration); ``callback`` and ``snapshot_every`` apply to the final run only, and are refused
    (as in any bricked run) when the count is chosen on the central brick because the choice
    would not fit ``memory_limit`` (:func:`_on_pilot`; the choice holds about
    ``_memory.AUTO_IMAGE_VOLUMES`` image volumes more than the run).  With
    ``exponent > 1`` the final run drops the exponent where the thinned run's guard did
    (``EXPONENT_DROPS``): the guard's 1 % test is decided by noise (on the bars phantom a
    0.7-count change of the offset moves it from iteration 6 to never), and a count chosen for
    one schedule does not fit the other (bars: 78 for a best at 24).
    """
    if opts.get("start") is not None:
        raise InputError("start: not available with stop='auto' (the count is chosen from the first iteration); "
                         "resume with stop=None")
    if _on_pilot(image, psf, opts):
        return _run_on_pilots(rl, image, psf, iterations, gain, offset, opts)
    choose = {k: v for k, v in opts.items() if k not in ("start", "snapshot_every", "callback", "track_deviance",
                                                         "bricks", "halo")}
    log.info("richardson-lucy: stop=auto: the count is chosen first on a thinned copy of the data (one more run, "
             "usually stopped early), then the data are deconvolved to it: about twice a run's time")
    t0 = time.perf_counter()
    auto = choose_iterations(image, psf, iterations, gain=gain, offset=offset, **choose)
    auto["seconds"] = round(time.perf_counter() - t0, 3)  # the choice alone: the final run is timed as usual
    token = EXPONENT_DROPS.set(auto.get("exponent_drops"))
    try:  # the same exponent schedule as the thinned run, so that the count chosen is the count of this run
        res = rl(image, psf, auto["iteration"], stop=None, **opts)
    finally:
        EXPONENT_DROPS.reset(token)
    res.auto_stop = auto
    res.stop_reason = "auto"
    res.notes.append(auto["note"])
    return res


def _on_pilot(image: Any, psf: Any, opts: dict) -> bool:
    """Whether the count is chosen per volume on its central brick: a Dask image, bricks given, or
    a whole-volume choice (about 2x a run: :data:`~fijidecon.deconvolve._memory.AUTO_IMAGE_VOLUMES`)
    over ``memory_limit``."""
    from . import _bricks
    from ._memory import estimate_memory

    if _bricks.is_dask(image) or opts.get("bricks") is not None:
        return True
    limit = _bricks.budget(opts.get("memory_limit"))
    if limit is None:
        return False
    try:
        a = np.asarray(image)
        mem = {k: opts.get(k) for k in ("edges", "acceleration", "regularization", "weight", "read_noise", "axes")
               if opts.get(k) is not None}
        need = estimate_memory("richardson-lucy", a.shape, np.shape(psf), stop="auto", dtype=a.dtype, **mem)
    except (ValueError, TypeError):  # the run itself says what is wrong
        return False
    return need + _bricks.resident_bytes(a.nbytes, a.size) > limit


def _run_on_pilots(rl: Any, image: Any, psf: Any, iterations: Any, gain: Any, offset: Any, opts: dict) -> Any:
    """``stop="auto"`` in bricks: each (T, C) volume's count chosen on its central brick (with its
    halo), then every brick of that volume run to it; ``auto_stop`` is that choice (one volume)
    or ``{"iteration": the largest, "volumes": [...], ...}``."""
    state = {"gain": gain, "offset": offset, "choices": []}
    token = ON_PILOT.set(state)
    try:
        res = rl(image, psf, iterations, stop=None, **opts)
    finally:
        ON_PILOT.reset(token)
    choices = state["choices"]
    if len(choices) == 1:
        auto = dict(choices[0])
    else:
        auto = {"iteration": max(c["iteration"] for c in choices), "volumes": choices,
                "note": "; ".join(c["note"] for c in choices)}
    shape = tuple(getattr(image, "shape", ()))
    axes = str(opts.get("axes") or _hyper.DEFAULT_AXES.get(len(shape), "")).upper()
    volume = [n for a, n in zip(axes, shape) if a in "ZYX"]
    auto["on"] = "whole volume (not split)" if all(c.get("brick") == volume for c in choices) else "central brick"
    res.auto_stop, res.stop_reason = auto, "auto"
    for c in choices:
        if c["note"] not in res.notes:
            res.notes.append(c["note"])
    return res


def choose_on_pilot(pilot: np.ndarray, prep: Any, opts: dict, voxel_size: Any, iterations: int) -> dict:
    """:func:`choose_iterations` on a volume's central brick ``pilot`` (float32, its halo
    included) with the prepared kernel ``prep.kernel`` and the run's options ``opts`` (as
    ``richardson_lucy`` holds them); the choice is appended to :data:`ON_PILOT`'s ``choices``."""
    state = ON_PILOT.get()
    bp = opts["back_projector"]
    bp_kw = ({"back_projector": None} if bp.kind == "matched" else {"back_projector": bp.kernel}
             if bp.kind == "array" else {"back_projector": bp.kind, "bp_alpha": bp.alpha, "bp_beta": bp.beta,
                                         "bp_order": bp.order})
    token = ON_PILOT.set(None)  # the thinned run inside is an ordinary whole-volume run
    try:
        choice = choose_iterations(pilot, prep.kernel, iterations, gain=state["gain"], offset=state["offset"],
                                   edges=opts["edges"], background=opts["background"], read_noise=opts["read_noise"],
                                   regularization=opts["regularization"], weight=opts["weight"],
                                   acceleration=opts["acceleration"], initial=opts["initial"],
                                   exponent=opts["exponent"], recenter=False, psf_threshold=0.0, **bp_kw)
    finally:
        ON_PILOT.reset(token)
    choice["brick"] = list(pilot.shape)
    state["choices"].append(choice)
    return choice
