"""Wiener (linear, regularised) deconvolution with an automatic regularisation choice.

The estimate is, per spatial frequency,

    F = G * conj(H) / (|H|^2 + rho)

with ``H`` the OTF (``H(0) = 1`` because the PSF is normalised to sum 1), ``G`` the
image spectrum and ``rho`` the regularisation parameter: small ``rho`` = sharp with
ringing and negative values, large ``rho`` = smooth.

Choosing ``rho``
----------------
``regularization=None`` (or ``"imspector"``)
    Imspector's rule of thumb: the smallest ``rho`` for which the most negative value
    of the result is no more than 10 % (``negative_fraction``) of its maximum.  Found
    by bisection on ``log10(rho)`` in [1e-12, 10] (one inverse FFT per step).
``"gcv"``
    Generalised cross-validation (Golub, Heath & Wahba 1979): minimises
    ``N * sum |1 - phi|^2 |G|^2 / (sum (1 - phi))^2`` with ``phi = |H|^2 / (|H|^2 + rho)``,
    evaluated in Fourier space (no inverse FFT), a statistical choice that needs no
    threshold and suits Gaussian-like noise.
a number
    Used as is.

The value used is returned in :attr:`WienerResult.regularization` and logged.

References
----------
Imspector documentation, "Image Deconvolution / Wiener Filtering".
G. H. Golub, M. Heath, G. Wahba, "Generalized cross-validation as a method for choosing
a good ridge parameter", Technometrics 21, 215-223 (1979).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from . import _edges, _fft, _hyper, _otf

log = logging.getLogger(__name__)

RHO_RANGE = (1e-12, 10.0)


@dataclass
class WienerResult:
    """Result of :func:`wiener`.

    Attributes
    ----------
    image:
        float32 estimate, the input's shape.
    regularization:
        The ``rho`` used (one per channel for (C, Z, Y, X) input).
    rule:
        ``"imspector"``, ``"gcv"``, ``"given"``, or ``"imspector->gcv"`` when the
        Imspector rule could not be met at any ``rho`` (noise alone gives negative
        values beyond the tolerance, e.g. after subtracting the background) and GCV
        was used instead (a warning is logged).
    negative_fraction:
        ``-min / max`` of the estimate (per channel).
    notes, psf_report:
        What was done to the PSF (see :class:`~fijidecon.deconvolve.RichardsonLucyResult`).
    """

    image: np.ndarray
    regularization: float | list[float]
    rule: str
    negative_fraction: float | list[float]
    notes: list = field(default_factory=list)
    psf_report: Any = None

    def __array__(self, dtype=None, copy=None):
        return self.image if dtype is None else self.image.astype(dtype)


def wiener(image: object, psf: object, regularization: float | str | None = None, *, edges: str = "reflect",
           negative_fraction: float = 0.10, recenter: bool = True, psf_threshold: float = 1e-4,
           axes: str | None = None, voxel_size: Sequence[float] | None = None,
           psf_voxel_size: Sequence[float] | None = None) -> WienerResult:
    """Wiener deconvolution; ``regularization=None`` picks the parameter automatically.

    Parameters
    ----------
    image:
        2D (Y, X), 3D (Z, Y, X), or a hyperstack with ``axes`` (default 4D ``CZYX``,
        5D ``TCZYX``), or an ``xarray.DataArray`` with named dims (any real dtype;
        computed in float32).  Negative values are allowed (the filter is linear).
        Every (T, C) volume is filtered on its own; the result has the input's axes.
    psf:
        The PSF of the volume's dimensionality, any size and parity, origin at
        ``n // 2`` (one for every channel, a stack with a leading channel axis, or a
        list); cleaned, resampled, re-centred, cropped and normalised as in
        :func:`fijidecon.deconvolve._otf.prepare_psf` (``result.notes`` says what was
        changed).
    regularization:
        ``None``/``"imspector"``/``"auto"`` (Imspector's 10 % rule), ``"gcv"``, or a number
        (numeric strings such as ``"1e-3"`` are accepted)
        ``rho > 0`` relative to ``|H(0)|^2 = 1``.  Imspector suggests trying 1e-1 ...
        1e-10 on a logarithmic scale.
    edges:
        ``"reflect"`` (default; mirror padding reduces border ringing) or
        ``"periodic"`` (Imspector's behaviour: the image is one period).
    negative_fraction:
        Tolerance of the Imspector rule (0.10 = 10 %).
    recenter, psf_threshold:
        As for :func:`fijidecon.deconvolve.richardson_lucy`.
    axes:
        Letters of the image's axes (``TCZYX``, any order).
    voxel_size, psf_voxel_size:
        (Z, Y, X) or (Y, X) spacings of the image and the PSF in one length unit; when
        both are given and differ, the PSF is resampled to the image's voxel size.

    Returns
    -------
    WienerResult
        ``.image`` (float32), ``.regularization`` (the value used), ``.rule``.

    Example
    -------
    >>> import numpy as np
    >>> from fijidecon.deconvolve import convolve, wiener
    >>> y, x = np.mgrid[-6:7, -6:7]; psf = np.exp(-(x**2 + y**2) / 4.0)
    >>> img = np.zeros((48, 48), np.float32); img[20:28, 20:28] = 100
    >>> res = wiener(convolve(img, psf, edges="periodic"), psf, edges="periodic")
    >>> res.rule, res.image.dtype, bool(res.negative_fraction <= 0.1 + 1e-6)
    ('imspector', dtype('float32'), True)
    """
    edges = _edges.check_edges(edges, ("reflect", "periodic"))
    if regularization is None:
        rule = "imspector"
    elif isinstance(regularization, str) and regularization.strip().lower() in ("imspector", "gcv", "auto", ""):
        rule = regularization.strip().lower()
        rule = "imspector" if rule in ("auto", "") else rule
    else:
        if isinstance(regularization, str):  # a number typed in a dialog or on the command line
            try:
                regularization = float(regularization)
            except ValueError:
                raise ValueError(f"regularization: expected a number, None, 'auto'/'imspector' or 'gcv', "
                                 f"got {regularization!r}") from None
        try:
            rho = float(regularization)
        except (TypeError, ValueError):
            raise TypeError(f"regularization: expected a number, None or 'gcv', got {regularization!r}") from None
        if not (rho > 0 and np.isfinite(rho)):
            raise ValueError(f"regularization: must be a positive finite number, got {regularization!r}")
        rule = "given"
    if rule != "given":
        rho = None
    if not 0 < negative_fraction < 1:
        raise ValueError(f"negative_fraction: must be in (0, 1), got {negative_fraction!r}")
    layout, vols = _hyper.split(image, psf, axes)
    preps = _hyper.prepare_psfs(layout, vols, edges, threshold=psf_threshold, recenter=recenter,
                                voxel_size=voxel_size, psf_voxel_size=psf_voxel_size)
    pairs = [(v.data, p) for v, p in zip(vols, preps)]
    with _fft.reuse_memory():
        return _wiener(pairs, layout, rule, rho if rule == "given" else None, edges, negative_fraction,
                       recenter, psf_threshold)


def _wiener(pairs, channels, rule, rho, edges, negative_fraction, recenter, psf_threshold) -> WienerResult:
    outs, rhos, negs = [], [], []
    used = rule
    for im, prep in pairs:
        geo = _edges.geometry(edges, im.shape, prep.kernel.shape)
        G = _fft.rfftn(geo.data(im))
        H = _otf.otf(prep.kernel, geo.work_shape)
        H2 = (H.real * H.real + H.imag * H.imag).astype(np.float32)
        r_gcv = _gcv(G, H2, geo.work_shape) if rule == "gcv" else None
        np.conjugate(H, out=H)
        G *= H  # G conj(H)
        del H

        def solve(r: float) -> np.ndarray:
            spec = G / (H2 + np.float32(r))
            return _fft.irfftn(spec, geo.work_shape, overwrite_x=True)[geo.crop]

        if rule == "given":
            r = rho
        elif rule == "gcv":
            r = r_gcv
        else:
            r = _imspector_rule(solve, negative_fraction)
            if r is None:
                used = "imspector->gcv"
                log.warning("wiener: the noise alone has negative values beyond %.0f %% of the maximum at any rho "
                            "(background subtracted too far?); using GCV instead", 100 * negative_fraction)
                r = _gcv(_fft.rfftn(geo.data(im)), H2, geo.work_shape)
        out = np.ascontiguousarray(solve(r), dtype=np.float32)
        mx = float(out.max())
        neg = float(-out.min() / mx) if mx > 0 else float("inf")
        log.info("wiener: rule %s, regularization %.3g, negative fraction %.3f", rule, r, neg)
        outs.append(out)
        rhos.append(float(r))
        negs.append(max(neg, 0.0))
    layout = channels
    preps = [p for _, p in pairs]
    extra = dict(notes=_hyper.notes_of(preps), psf_report=_hyper.reports_of(layout, preps))
    if not layout.single:
        return WienerResult(layout.merge(outs), rhos, used, negs, **extra)
    return WienerResult(outs[0], rhos[0], used, negs[0], **extra)


def _negfrac(a: np.ndarray) -> float:
    mx = float(a.max())
    return float(-a.min() / mx) if mx > 0 else float("inf")


def _imspector_rule(solve, tol: float, steps: int = 24) -> float | None:
    """Smallest rho (log bisection) with -min <= tol * max; None if even the largest fails."""
    lo, hi = np.log10(RHO_RANGE[0]), np.log10(RHO_RANGE[1])
    if _negfrac(solve(10.0 ** lo)) <= tol:
        return float(10.0 ** lo)
    if _negfrac(solve(10.0 ** hi)) > tol:
        return None
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        if _negfrac(solve(10.0 ** mid)) <= tol:
            hi = mid
        else:
            lo = mid
        if hi - lo < 0.02:
            break
    return float(10.0 ** hi)


def _gcv(G: np.ndarray, H2: np.ndarray, work_shape: tuple[int, ...]) -> float:
    """GCV minimiser for the Wiener filter, in Fourier space (``G`` image spectrum, ``H2 = |H|^2``)."""
    # half-spectrum weights: interior columns of the last axis stand for two coefficients
    n_last = work_shape[-1]
    wcol = np.full(G.shape[-1], 2.0, np.float64)
    wcol[0] = 1.0
    if n_last % 2 == 0:
        wcol[-1] = 1.0
    G2 = G.real.astype(np.float64) ** 2 + G.imag.astype(np.float64) ** 2
    h2 = H2.astype(np.float64)
    # flatten with weights; subsample very large spectra for speed (the sums are smooth in rho)
    w = np.broadcast_to(wcol, G2.shape).ravel()
    G2 = G2.ravel()
    h2 = h2.ravel()
    if G2.size > 4_000_000:
        sel = slice(None, None, int(np.ceil(G2.size / 4_000_000)))
        w, G2, h2 = w[sel], G2[sel], h2[sel]
    N = w.sum()

    def score(logr: float) -> float:
        r = 10.0 ** logr
        one_minus = r / (h2 + r)
        num = (w * one_minus * one_minus * G2).sum() / N
        den = ((w * one_minus).sum() / N) ** 2
        return float(num / den)

    grid = np.arange(np.log10(RHO_RANGE[0]), np.log10(RHO_RANGE[1]) + 1e-9, 0.5)
    vals = [score(g) for g in grid]
    k = int(np.argmin(vals))
    a, b = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    gr = (np.sqrt(5) - 1) / 2
    c, d = b - gr * (b - a), a + gr * (b - a)
    fc, fd = score(c), score(d)
    for _ in range(30):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - gr * (b - a)
            fc = score(c)
        else:
            a, c, fc = c, d, fd
            d = a + gr * (b - a)
            fd = score(d)
        if b - a < 0.01:
            break
    return float(10.0 ** (0.5 * (a + b)))
