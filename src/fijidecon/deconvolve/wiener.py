"""Wiener (linear, regularised) deconvolution with an automatic regularisation choice.

The estimate is, per spatial frequency,

    F = G * conj(H) / (|H|^2 + rho)

with ``H`` the OTF (``H(0) = 1`` because the PSF is normalised to sum 1), ``G`` the
image spectrum and ``rho`` the regularisation parameter: small ``rho`` = sharp with
ringing and negative values, large ``rho`` = smooth.

Choosing ``rho``
----------------
``regularization=None`` / ``"auto"`` / ``"snr"`` (the default): the signal-to-noise rule
    The Wiener filter that minimises the mean squared error has the gain
    ``|H|^2 / (|H|^2 + S_n / S_f(k))`` (Wiener 1949; Helstrom 1967): it passes a
    frequency where the data's signal power ``|H|^2 S_f`` exceeds the noise power
    ``S_n`` and stops it where the noise wins, with gain 1/2 where the two are equal.
    A single ``rho`` reproduces that gain exactly at the frequencies where
    ``|H|^2 = rho``, so the rule puts ``rho`` at the level of ``|H|^2`` where the
    data's signal power falls to the noise power:

    1. the noise power ``sigma^2`` is measured where the data can only hold noise,
       beyond the OTF support (``|H|^2 <= 1e-6``; Poisson and read noise are white,
       so their power is the same at every frequency): the median of ``|G|^2 / N``
       there, divided by ``ln 2``.  Objects cut by the image border, where the
       periodic or mirror model fails, leave artifacts that the filter amplifies like
       noise; their power, the *mean* power beyond the OTF of what the filter is
       given, replaces ``sigma^2`` when it is larger;
    2. frequencies are ranked by decreasing ``|H|^2`` and grouped; in each group the
       SNR is read at the upper quartile of the power (a line or a bar puts its power
       in a few directions only), and ``rho`` is the ``|H|^2`` of the first group from
       which the SNR stays below 1;
    3. sharpness cap: a point in the result has the width of the effective PSF
       ``irfftn(|H|^2 / (|H|^2 + rho))``; if it is wider than the PSF itself on any
       axis (FWHM), ``rho`` is lowered until it is not (``rule="snr->fwhm"``), so the
       result is never blurrier than the data.  Axes on which the PSF is under 2
       voxels wide (undersampled) are left out: there no ``rho`` short of an inverse
       filter makes a point narrower.

    Signal and noise are measured on the image's own grid for every edge model: the
    image tapered at its borders (Tukey window) and made periodic (Moisan 2011), so
    that objects cut by the border do not read as signal at every frequency, with the
    OTF sampled at the same frequencies.  Cost: three forward FFTs of the image, one
    of the work grid for mirror edges, no inverse FFT.  On a real 8-bit PSF and data
    (RedLionfish's 27 cubes, case 11) it gives ``rho = 4e-6`` and spots 3-6 voxels
    wide (16, 6, 8 in the data) where Imspector's rule gave ``rho = 0.33`` and spots
    wider than in the data; on the synthetic phantoms of ``benchmarks/quality.py`` it
    beats the data's NMSE on every phantom.
``"imspector"``
    Imspector's rule of thumb: the smallest ``rho`` for which the most negative value
    of the result is no more than 10 % (``negative_fraction``) of its maximum.  Found
    by bisection on ``log10(rho)`` in [1e-12, 10] (one inverse FFT per step).  On
    isolated bright objects over a dark background the ringing of any sharpening
    filter is more negative than that, so the rule smooths until the result is
    blurrier than the data; use it to reproduce Imspector.  When no ``rho`` meets it
    (background subtracted too far) the SNR rule is used (``rule="imspector->snr"``).
``"gcv"``
    Generalised cross-validation (Golub, Heath & Wahba 1979): minimises
    ``N * sum |1 - phi|^2 |G|^2 / (sum (1 - phi))^2`` with ``phi = |H|^2 / (|H|^2 + rho)``,
    evaluated in Fourier space (no inverse FFT).  Good on white Gaussian noise and
    an exactly known PSF; it can pick far too small a value when the noise is not
    white (clipped or quantised data, mirror padding) and then amplifies noise.
a number
    Used as is.

The filter passes the mean (``H(0) = 1``) with gain ``1 / (1 + rho)``, so the result's sum is
that fraction of the data's; from ``rho = 0.05`` (5 % lost) the log line says so.

The value used is returned in :attr:`WienerResult.regularization` (and ``.rule``) and
logged at INFO on the ``fijidecon`` logger, one line per volume, e.g.
``wiener: regularization 1.75e-06 chosen by the SNR rule (...)``.

References
----------
N. Wiener, *Extrapolation, Interpolation, and Smoothing of Stationary Time Series*
(MIT Press, 1949).
C. W. Helstrom, "Image restoration by the method of least squares", J. Opt. Soc. Am.
57, 297-303 (1967).
L. Moisan, "Periodic plus smooth image decomposition", J. Math. Imaging Vis. 39,
161-179 (2011).
Imspector documentation, "Image Deconvolution / Wiener Filtering".
G. H. Golub, M. Heath, G. Wahba, "Generalized cross-validation as a method for choosing
a good ridge parameter", Technometrics 21, 215-223 (1979).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from . import _bricks, _edges, _fft, _hyper, _otf
from .. import _validate
from ..errors import InputError, InputTypeError

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
        The ``rho`` used (a list, one per volume, for hyperstacks).
    rule:
        How it was chosen: ``"snr"`` (the default rule), ``"snr->fwhm"`` (the SNR
        rule's value lowered by its sharpness cap), ``"imspector"``, ``"gcv"``,
        ``"given"``, or ``"imspector->snr"`` when the Imspector rule could not be met
        at any ``rho`` (noise alone gives negative values beyond the tolerance, e.g.
        after subtracting the background) and the SNR rule was used instead (a
        warning is logged).  For hyperstacks: the first volume's rule, or a fallback
        (``"->"``) if any volume needed one.
    negative_fraction:
        ``-min / max`` of the estimate (per channel): how deep its most negative value
        goes, as a fraction of its maximum (it can exceed 1); not the share of negative voxels.
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
           psf_voxel_size: Sequence[float] | None = None, memory_limit: Any = None,
           bricks: Sequence[int] | None = None, halo: Any = None) -> WienerResult:
    """Wiener deconvolution; by default the regularization is chosen from the data's own noise.

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
        ``None``/``"auto"``/``"snr"`` (default): ``rho = |H|^2`` where the data's signal
        power falls to its noise power (estimated beyond the OTF support), lowered if
        needed so that points never get wider than in the data (see the module
        docstring); ``"imspector"`` (Imspector's 10 % negative rule); ``"gcv"``; or a
        number ``rho > 0`` relative to ``|H(0)|^2 = 1`` (numeric strings such as
        ``"1e-3"`` are accepted).  Imspector suggests trying 1e-1 ... 1e-10 on a
        logarithmic scale.
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
        ``psf_voxel_size`` may be one spacing per PSF (a list) with one PSF per channel.
    memory_limit, bricks, halo:
        As for :func:`fijidecon.deconvolve.richardson_lucy`: a volume over the budget
        (or given ``bricks=``, the brick *core* size per axis in voxels, not a count) is
        filtered in bricks, read with ``halo`` voxels on each side (default: 1.5 times
        the prepared PSF's size); the regularization is chosen once, on each volume's central brick.
        A warning says when the filter reaches beyond the halo (small ``rho``: the result
        then depends on the layout).  A ``dask.array.Array`` image gives a lazy result.

    Returns
    -------
    WienerResult
        ``.image`` (float32), ``.regularization`` (the value used), ``.rule`` (how it
        was chosen).  The choice is also logged at INFO on the ``fijidecon`` logger.

    Raises
    ------
    ValueError, TypeError
        Naming ``regularization``, ``edges``, ``negative_fraction``, ``image`` or ``psf``.

    Example
    -------
    >>> import numpy as np
    >>> from fijidecon.deconvolve import convolve, wiener
    >>> y, x = np.mgrid[-6:7, -6:7]; psf = np.exp(-(x**2 + y**2) / 4.0)
    >>> img = np.zeros((48, 48), np.float32); img[20:28, 20:28] = 100
    >>> data = np.random.default_rng(0).poisson(convolve(img, psf, edges="periodic") + 5.0) - 5.0
    >>> res = wiener(data, psf, edges="periodic")
    >>> res.rule, res.image.dtype, bool(1e-6 < res.regularization < 1.0)
    ('snr', dtype('float32'), True)
    >>> wiener(data, psf, "imspector", edges="periodic").negative_fraction <= 0.1 + 1e-6
    True
    """
    voxel_size, psf_voxel_size = _hyper.coords_voxel_sizes(image, psf, voxel_size, psf_voxel_size)
    edges = _edges.check_edges(edges, ("reflect", "periodic"))
    rule, rho = _parse_regularization(regularization)
    negative_fraction = _validate.check_float("negative_fraction", negative_fraction, 0.0, 1.0)
    if not 0 < negative_fraction < 1:
        raise InputError(f"negative_fraction: expected a number in (0, 1), got {negative_fraction!r}")
    if negative_fraction != 0.10 and rule != "imspector":
        _validate.warn(f"negative_fraction: {negative_fraction:g} is used only by regularization='imspector' (the "
                       f"rule here is {rule!r}); it has no effect", RuntimeWarning)
    recenter = _validate.check_bool("recenter", recenter)
    psf_threshold = _validate.check_float("psf_threshold", psf_threshold, 0.0, 1.0)
    given = rho if rule == "given" else None
    choose = dict(rule=rule, rho=given, edges=edges, negative_fraction=negative_fraction)
    if _bricks.is_dask(image):
        return _lazy(image, psf, axes, choose, psf_threshold, recenter, voxel_size, psf_voxel_size, memory_limit,
                     bricks, halo)
    layout, vols = _hyper.split(image, psf, axes)
    preps = _hyper.prepare_psfs(layout, vols, edges, threshold=psf_threshold, recenter=recenter,
                                voxel_size=voxel_size, psf_voxel_size=psf_voxel_size)
    plans = _bricks.plan_volumes("wiener", layout, vols, preps, {"edges": edges, "regularization": regularization},
                                 memory_limit, bricks, halo, np.asarray(image).nbytes)
    if any(p is not None for p in plans):
        return _run_bricked(layout, vols, preps, plans, choose)
    pairs = [(v.data, p) for v, p in zip(vols, preps)]
    with _fft.reuse_memory():
        return _wiener(pairs, layout, rule, given, edges, negative_fraction, recenter, psf_threshold)


def _one(data: np.ndarray, prep: Any, choose: dict, quiet: bool = False, place: Any = None) -> WienerResult:
    """Wiener on one volume or brick, the regularization chosen by ``choose["rule"]``
    (``quiet``: no log line, for the bricks after the central one; ``place``: a brick's place
    in its volume, ``_bricks.Place``)."""
    shape = data.shape
    single = _hyper.Layout("ZYX"[-data.ndim:], shape, "ZYX"[-data.ndim:], 1, 1)
    return _wiener([(data, prep)], single, choose["rule"], choose["rho"], choose["edges"],
                   choose["negative_fraction"], True, 0.0, quiet, place)


def _decide(pilot: np.ndarray, prep: Any, choose: dict, place: Any) -> tuple["_bricks.Decisions", WienerResult]:
    """The regularization of a volume, chosen on its central brick (whose result is kept)."""
    first = _one(np.ascontiguousarray(pilot, dtype=np.float32), prep, choose, quiet=True, place=place)
    return _bricks.Decisions(regularization=float(first.regularization), extra={"rule": first.rule}), first


def _brick_fn(prep: Any, choose: dict) -> "_bricks.BrickFn":
    def fn(data: np.ndarray, dec: "_bricks.Decisions", place: Any) -> np.ndarray:
        return _one(data, prep, dict(choose, rule="given", rho=dec.regularization), quiet=True, place=place).image
    return fn


def _run_bricked(layout, vols, preps, plans, choose) -> WienerResult:
    """Each volume in bricks (whole when its plan is None), one regularization per volume."""
    outs, rhos, negs, notes, rule = [], [], [], [], choose["rule"]
    with _fft.reuse_memory():
        for vol, prep, plan in zip(vols, preps, plans):
            plan = plan or _bricks.Plan(vol.data.shape, vol.data.shape, (0,) * vol.data.ndim)
            dec, first = _decide(vol.data[plan.pilot().outer], prep, choose, plan.pilot().place(vol.data.shape))
            out = _bricks.run_numpy(vol.data, plan, _brick_fn(prep, choose), dec,
                                    pilot_result=(plan.pilot(), first.image))
            outs.append(out)
            rhos.append(dec.regularization)
            negs.append(max(_negfrac(out), 0.0))
            rule = dec.extra["rule"]
            who = "wiener" if layout.single else f"wiener (t={vol.t}, c={vol.c})"
            notes.append(f"{who}: bricked: {plan.describe()}; regularization {dec.regularization:.3g} " + (
                "given" if dec.extra["rule"] == "given" else
                f"chosen on the central brick (rule {dec.extra['rule']}; the whole volume's choice may differ: give "
                "regularization= for the same value everywhere)"))
            log.info(notes[-1])
            if plan.n > 1:
                warn_reach(prep.kernel, dec.regularization, plan.halo)
    extra = dict(notes=_hyper.notes_of(preps) + notes, psf_report=_hyper.reports_of(layout, preps))
    if layout.single:
        return WienerResult(layout.merge(outs, method="wiener"), rhos[0], rule, negs[0], **extra)
    return WienerResult(layout.merge(outs, method="wiener"), rhos, rule, negs, **extra)


def _lazy(image, psf, axes, choose, psf_threshold, recenter, voxel_size, psf_voxel_size, memory_limit, bricks,
          halo) -> WienerResult:
    """A Dask array in: ``result.image`` is a lazy Dask array (the regularization of each
    volume is chosen now, on its central brick)."""
    lv, means = _bricks.lazy_volumes(image, psf, axes)
    vol_shape = tuple(lv.canon.shape[2:])
    preps = _bricks.lazy_preps(lv, choose["edges"], psf_threshold, recenter, voxel_size, psf_voxel_size)
    plans = _bricks.lazy_plans("wiener", vol_shape, preps, {"edges": choose["edges"]}, memory_limit, bricks, halo)
    rhos: list[float] = []
    rules: list[str] = []

    def decide(vol, plan, prep, mean):
        if choose["rule"] == "given":
            dec = _bricks.Decisions(regularization=choose["rho"], extra={"rule": "given"})
        else:
            dec = _decide(np.asarray(vol[plan.pilot().outer], dtype=np.float32), prep, choose,
                          plan.pilot().place(plan.shape))[0]
        rhos.append(dec.regularization)
        rules.append(dec.extra["rule"])
        return dec, None

    lazy = _bricks.lazy_run(lv, means, preps, plans, lambda p: _brick_fn(p, choose), decide)
    # as the in-memory run says it: the first volume's rule, or a fallback ('->') if any volume needed one
    rule = next((r for r in rules if "->" in r), rules[0] if rules else choose["rule"])
    if plans[0].n > 1:
        warn_reach(preps[0].kernel, min(rhos), plans[0].halo)
    how = "given" if rule == "given" else "chosen on each volume's central brick"
    return WienerResult(lazy, rhos[0] if len(rhos) == 1 else rhos, rule, float("nan"),
                        notes=[f"wiener: lazy: {plans[0].describe()}; regularization {how}"]
                        + [n for p in preps for n in p.notes])


#: Bricked Wiener warns when more than this fraction of its filter's weight lies beyond the halo.
REACH_WARN = 0.05


def filter_reach(kernel: np.ndarray, rho: float, halo: Sequence[int]) -> float:
    """The fraction of the Wiener filter's weight (sum of ``|w|``, ``w`` its real-space form
    ``irfftn(conj(H) / (|H|^2 + rho))``) beyond ``halo`` voxels of its centre, on a grid twice
    the halo box (at most 256 per axis).  A brick's core sees its neighbours' data only within
    the halo: the rest of the filter meets the brick's own mirrored and wrapped edges."""
    grid = tuple(int(_fft.fast_len(min(2 * (2 * int(h) + 1), 256))) if k > 1 else 1
                 for h, k in zip(halo, kernel.shape))
    grid = tuple(max(g, k) for g, k in zip(grid, kernel.shape))
    H = _otf.otf(kernel, grid)
    w = np.abs(_fft.irfftn(np.conj(H) / (H.real * H.real + H.imag * H.imag + np.float32(rho)), grid))
    box = np.ix_(*[np.r_[0:min(h, n // 2) + 1, n - min(h, (n - 1) // 2):n] if n > 1 else np.r_[0:1]
                   for n, h in zip(grid, halo)])
    total = float(w.sum())
    return 1.0 - float(w[box].sum()) / total if total > 0 else 0.0


def warn_reach(kernel: np.ndarray, rho: float, halo: Sequence[int]) -> None:
    """A warning when bricks of this Wiener filter cannot match the whole volume (see :func:`filter_reach`)."""
    out = filter_reach(kernel, rho, halo)
    if out > REACH_WARN:
        _validate.warn(f"wiener: at regularization {rho:.3g} {100 * out:.0f} % of the filter's weight lies beyond the "
                       f"bricks' halo ({'x'.join(map(str, halo))}): the result depends on the brick layout "
                       "(RedLionfish's 8-bit PSF: 17 % rel L2 between layouts at 1e-3, 57 % at 1e-4; noisy PSF tails "
                       "make the filter wide); give a larger regularization, a larger halo, or the memory to run the "
                       "whole volume", RuntimeWarning)


def _wiener(pairs, channels, rule, rho, edges, negative_fraction, recenter, psf_threshold,
            quiet: bool = False, place: Any = None) -> WienerResult:
    outs, rhos, negs, said = [], [], [], []
    used = rule
    for im, prep in pairs:
        geo = _edges.geometry(edges, im.shape, prep.kernel.shape, place)
        G = _fft.rfftn(geo.data(im))
        H = _otf.otf(prep.kernel, geo.work_shape)
        H2 = (H.real * H.real + H.imag * H.imag).astype(np.float32)
        r_gcv = _gcv(G, H2, geo.work_shape) if rule == "gcv" else None
        r_snr = _snr_rule(im, prep.kernel, _edge_power(G, H2, geo, im)) if rule == "snr" else None
        np.conjugate(H, out=H)
        G *= H  # G conj(H)
        del H

        def solve(r: float) -> np.ndarray:
            spec = G / (H2 + np.float32(r))
            return _fft.irfftn(spec, geo.work_shape, overwrite_x=True)[geo.crop]

        r, how, why = _choose(rule, rho, r_gcv, r_snr, solve, negative_fraction,
                              lambda: _snr_rule(im, prep.kernel, _edge_power(_fft.rfftn(geo.data(im)), H2, geo, im)))
        used = how if how != rule else used
        out = np.ascontiguousarray(solve(r), dtype=np.float32)
        neg = _negfrac(out)
        k = len(outs)
        where = "" if channels.single else f" (t={k // channels.n_c}, c={k % channels.n_c})"
        if not quiet:  # the same line in the result's notes (the CLI's sidecar, ImageJ's Log)
            said.append(f"wiener{where}: regularization {r:.3g} {why}; {_lowest_text(neg)}{_flux_text(r)}")
            log.info(said[-1])
        outs.append(out)
        rhos.append(float(r))
        negs.append(max(neg, 0.0))
    layout = channels
    preps = [p for _, p in pairs]
    extra = dict(notes=_hyper.notes_of(preps) + said, psf_report=_hyper.reports_of(layout, preps))
    if not layout.single:
        return WienerResult(layout.merge(outs, method="wiener"), rhos, used, negs, **extra)
    return WienerResult(layout.merge(outs, method="wiener"), rhos[0], used, negs[0], **extra)


def _lowest_text(neg: float) -> str:
    """The result's lowest value for the log line (``neg``: minus the minimum over the maximum)."""
    if not np.isfinite(neg):  # no positive maximum: an all-zero (or all-negative) result
        return "no positive values (the result's maximum is 0 or below)"
    if neg > 0:
        return f"most negative value {-neg:.3g} x the maximum (negative_fraction)"
    return f"no negative values (the lowest is {-neg:.3g} x the maximum)"


def _flux_text(rho: float) -> str:
    """What a large ``rho`` does to intensities: the filter passes the mean (the OTF's 1 at 0)
    with gain 1 / (1 + rho), so the result's sum is that fraction of the data's."""
    if rho < FLUX_NOTE_RHO:
        return ""
    return (f"; the result's sum is {1 / (1 + rho):.2g} of the data's (1/(1+rho)): give a smaller regularization "
            "to keep intensities")


#: ``rho`` from which the note says how much of the data's sum the result keeps (5 % lost).
FLUX_NOTE_RHO = 0.05


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


_RULES = {"auto": "snr", "": "snr", "snr": "snr", "imspector": "imspector", "gcv": "gcv"}


def _parse_regularization(regularization: object) -> tuple[str, float | None]:
    """``(rule, rho)``: a rule name (``rho`` None) or ``("given", rho)``; raises naming ``regularization``."""
    if regularization is None:
        return "snr", None
    if isinstance(regularization, str) and regularization.strip().lower() in _RULES:
        return _RULES[regularization.strip().lower()], None
    if isinstance(regularization, str):  # a number typed in a dialog or on the command line
        try:
            regularization = float(regularization)
        except ValueError:
            raise InputError(f"regularization: expected a number, None, 'auto', 'snr', 'imspector' or 'gcv', "
                             f"got {regularization!r}") from None
    if isinstance(regularization, bool):
        raise InputTypeError(f"regularization: expected a number, None or a rule name, got {regularization!r}")
    try:
        rho = float(regularization)
    except (TypeError, ValueError):
        raise InputTypeError(f"regularization: expected a number, None or a rule name, "
                             f"got {regularization!r}") from None
    if not (rho > 0 and np.isfinite(rho)):
        raise InputError(f"regularization: must be a positive finite number, got {regularization!r}")
    if rho > RHO_MAX:  # |H|^2 <= 1: far above it every frequency is damped to nothing (1e308 overflowed to 0)
        raise InputError(f"regularization: expected at most {RHO_MAX:g} (the OTF's |H|^2 is at most 1, so "
                         f"{rho:g} damps every frequency to nothing), got {rho:g}")
    return "given", rho


#: The largest Wiener regularization taken: 1e4 times the OTF's largest |H|^2 (1 at zero frequency).
RHO_MAX = 1e4


@dataclass(frozen=True)
class SnrChoice:
    """What the ``"snr"`` rule measured (see the module docstring).

    Attributes
    ----------
    rho:
        The value chosen.
    noise_power:
        ``sigma^2``: mean noise power per voxel, from the spectrum beyond the OTF support
        (intensity units squared).
    noise_fraction:
        Fraction of the spectrum used for ``sigma^2`` (``|H|^2 <= 1e-6``, or the 5 %
        with the smallest ``|H|^2`` when fewer qualify).
    edge_power:
        Mean power beyond the OTF support of what the filter is given (the image,
        mirror-padded for ``"reflect"``): the noise plus the artifacts of the borders
        (objects cut by the border, where the periodic or mirror model fails).  Used
        instead of ``noise_power`` when larger: the filter amplifies those artifacts
        as it amplifies noise.
    crossing:
        ``|H|^2`` at which the data's signal power falls to the noise (or edge) power.
    capped:
        True when ``crossing`` would have blurred points (see :func:`_sharpness_cap`)
        and ``rho`` was lowered until it does not.
    """

    rho: float
    noise_power: float
    noise_fraction: float
    crossing: float
    capped: bool
    edge_power: float = 0.0


def _choose(rule, rho, r_gcv, choice, solve, negative_fraction, snr_later) -> tuple[float, str, str]:
    """``(rho, rule used, text for the log line)`` for one volume."""
    if rule == "given":
        return rho, "given", "given"
    if rule == "gcv":
        return r_gcv, "gcv", "chosen by GCV"
    if rule == "snr":
        return choice.rho, ("snr->fwhm" if choice.capped else "snr"), _snr_text(choice)
    r = _imspector_rule(solve, negative_fraction)
    if r is not None:
        return r, "imspector", f"chosen by Imspector's {100 * negative_fraction:.0f} % negative rule"
    log.warning("wiener: the noise alone has negative values beyond %.0f %% of the maximum at any rho "
                "(background subtracted too far?); using the SNR rule instead", 100 * negative_fraction)
    choice = snr_later()
    return choice.rho, "imspector->snr", _snr_text(choice)


def _snr_text(c: SnrChoice) -> str:
    text = (f"chosen by the SNR rule (noise power {c.noise_power:.3g} from {100 * c.noise_fraction:.0f} % of the "
            f"spectrum")
    if c.edge_power > c.noise_power:
        text += f", border artifacts raise it to {c.edge_power:.3g}"
    text += f"; signal = noise at |OTF|^2 = {c.crossing:.2g}"
    if c.capped:
        text += "; lowered so that points get no wider than in the data"
    return text + ")"


#: ``|H|^2`` at or below which a frequency is taken as beyond the OTF support (pure noise).
NOISE_OTF2 = 1e-6
#: At most this many spectrum samples are used by the SNR rule (a seeded random subset).
SNR_SAMPLES = 1 << 20


def _snr_rule(image: np.ndarray, kernel: np.ndarray, edge_power: float = 0.0) -> SnrChoice:
    """The default rule: ``rho = |H|^2`` where the data's signal power falls to the noise power.

    Measured on the image's own grid, whatever the edges: the spectrum of the image's
    periodic component (:func:`_periodic_spectrum`; mirror padding would add kinks and
    mirrored, correlated noise) and the OTF sampled at the same frequencies (the kernel
    folded onto the grid).  Three forward FFTs of the image's size, no inverse FFT.
    ``image``: 2D/3D float array; ``kernel``: the prepared PSF (sum 1, centre ``n // 2``);
    ``edge_power``: :func:`_edge_power` of the filter's input, the noise level used
    when it is larger than the noise measured here.
    """
    shape = image.shape
    data = np.asarray(image, np.float32)
    H = _fft.rfftn(_fold(kernel, shape), overwrite_x=True)
    H2 = (H.real * H.real + H.imag * H.imag).astype(np.float32)
    del H
    data, energy = _apodize(data)
    power, h2 = _spectrum_sample(_periodic_spectrum(data, _fft.rfftn(data)), H2, shape)
    power /= energy  # per voxel of the image, as without the window
    if power.size == 0:  # a single voxel: nothing to measure
        return SnrChoice(RHO_RANGE[0], 0.0, 0.0, RHO_RANGE[0], False)
    noise, frac = _noise_power(power, h2)
    crossing = _snr_crossing(power, h2, max(noise, edge_power))
    rho = float(np.clip(crossing, *RHO_RANGE))
    capped = _sharpness_cap(H2, rho, shape, kernel)
    return SnrChoice(capped if capped is not None else rho, noise, frac, crossing, capped is not None, edge_power)


def _edge_power(G: np.ndarray, H2: np.ndarray, geo: Any, image: np.ndarray, min_fraction: float = 0.05) -> float:
    """Mean of ``|G|^2 / N`` beyond the OTF support (``|H|^2 <= 1e-6``) of the filter's input spectrum ``G``.

    Noise alone gives its power there; the jumps and kinks of objects cut by the
    image border (where the periodic or mirror model fails) add theirs, in every
    direction, and the filter amplifies them like noise.  A mean, not a median: those
    artifacts sit on a few lines of the spectrum.  With mirror padding the ends of the
    padding wrap onto each other outside the image; those jumps are removed first
    (:func:`_periodic_spectrum`), as what the filter makes of them is mostly cropped
    away.  0 when less than ``min_fraction`` of the spectrum is beyond the OTF.
    ``geo``: the :class:`~fijidecon.deconvolve._edges.Geometry` of ``G``; ``image``:
    the volume (float32).
    """
    if geo.data_shape != tuple(image.shape):
        G = _periodic_spectrum(np.asarray(geo.data(image), np.float32), G)
    power, h2 = _spectrum_sample(G, H2, geo.work_shape)
    beyond = h2 <= NOISE_OTF2
    if beyond.sum() < max(min_fraction * h2.size, 1):
        return 0.0
    return float(power[beyond].mean())


def _fold(kernel: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The kernel wrapped onto a periodic grid of ``shape`` with its centre ``n // 2`` at index 0.

    Its DFT is the OTF sampled exactly at the grid's frequencies, for a kernel of any size.
    """
    out = np.zeros(shape, np.float32)
    idx = [(np.arange(k) - k // 2) % n for k, n in zip(kernel.shape, shape)]
    np.add.at(out, np.ix_(*idx), np.asarray(kernel, np.float32))
    return out


#: Fraction of each axis (both ends together) tapered by :func:`_apodize`; axes shorter than TAPER_MIN are not.
TAPER = 0.25
TAPER_MIN = 16


def _apodize(a: np.ndarray) -> tuple[np.ndarray, float]:
    """``(a * window, mean(window^2))`` for a separable Tukey window (cosine tapers over ``TAPER / 2`` of each end).

    Bright objects cut by the image border are kinks that spread power over every
    frequency; tapered, they do not.  The rule compares signal and noise in the same
    windowed spectrum, so the window's loss of power cancels out; dividing the power by
    ``mean(window^2)`` keeps the noise power in the image's units (for the log).
    """
    from scipy.signal.windows import tukey

    out = np.array(a, np.float32)
    energy = 1.0
    for ax, n in enumerate(a.shape):
        if n >= TAPER_MIN:
            shape = [1] * a.ndim
            shape[ax] = n
            w = tukey(n, TAPER)
            out *= w.astype(np.float32).reshape(shape)
            energy *= float(np.mean(w * w))
    return out, energy


def _periodic_spectrum(data: np.ndarray, G: np.ndarray) -> np.ndarray:
    """Spectrum of the periodic component of ``data`` (Moisan's periodic + smooth decomposition).

    The jumps where the work grid wraps around (image borders, or the ends of the mirror
    padding) spread power over every frequency, which would read as signal far beyond
    the OTF; the periodic component has none of it.  ``G = rfftn(data)``; returns a new
    array (``G`` is not modified).
    """
    a = np.asarray(data, np.float32)
    v = np.zeros(a.shape, np.float32)  # boundary image: the jump across each face
    for ax, n in enumerate(a.shape):
        if n < 2:
            continue
        first = [slice(None)] * a.ndim
        last = [slice(None)] * a.ndim
        first[ax], last[ax] = 0, n - 1
        jump = a[tuple(last)] - a[tuple(first)]
        v[tuple(first)] += jump
        v[tuple(last)] -= jump
    V = _fft.rfftn(v, overwrite_x=True)
    denom = np.zeros(V.shape, np.float64)
    for ax, n in enumerate(a.shape):
        k = np.arange(V.shape[ax])
        shape = [1] * a.ndim
        shape[ax] = -1
        denom = denom + (2.0 - 2.0 * np.cos(2.0 * np.pi * k / n)).reshape(shape)
    denom.reshape(-1)[0] = 1.0  # the mean belongs to the periodic component
    V /= denom.astype(np.float32)
    V.reshape(-1)[0] = 0.0
    return G + V  # G minus the smooth component's spectrum, -V / denom


def _spectrum_sample(G: np.ndarray, H2: np.ndarray, work_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Power ``|G|^2 / N`` and ``|H|^2`` (float64, 1D) of the half spectrum without its DC term."""
    g = G.reshape(-1)
    h = H2.reshape(-1)
    idx = np.arange(1, g.size)
    if idx.size > SNR_SAMPLES:
        idx = np.sort(np.random.default_rng(0).choice(idx, SNR_SAMPLES, replace=False))
    gs = g[idx]
    power = (gs.real.astype(np.float64) ** 2 + gs.imag.astype(np.float64) ** 2) / float(np.prod(work_shape))
    return power, h[idx].astype(np.float64)


def _noise_power(power: np.ndarray, h2: np.ndarray, min_fraction: float = 0.05, fallback: float = 0.2,
                 min_count: int = 256) -> tuple[float, float]:
    """``(sigma^2, fraction used)`` from the frequencies beyond the OTF support.

    There the data hold only noise; the median of ``|G|^2 / N`` over them divided by
    ``ln 2`` is ``sigma^2`` for white noise (``|G|^2`` is exponentially distributed) and
    ignores the few frequencies a signal may still reach.  When fewer than
    ``min_fraction`` of the frequencies (or ``min_count``) are beyond the OTF (a PSF of
    about 2 voxels), the ``fallback`` fraction least transmitted is used: some signal is
    counted as noise, which errs towards a smoother result (the sharpness cap still holds).
    """
    beyond = h2 <= NOISE_OTF2
    if beyond.sum() >= max(min_fraction * h2.size, min(min_count, h2.size)):
        sel = power[beyond]
    else:
        need = min(max(int(fallback * h2.size), min_count), h2.size)
        sel = power[np.argpartition(h2, need - 1)[:need]]
    return float(np.median(sel) / np.log(2.0)), sel.size / h2.size


def _snr_crossing(power: np.ndarray, h2: np.ndarray, noise: float, level: float = 1.0, q: float = 0.75,
                  groups: int = 200, min_group: int = 64, run: int = 2) -> float:
    """``|H|^2`` at which the signal-to-noise ratio of the data's power spectrum falls to ``level``.

    Frequencies are ranked by decreasing ``|H|^2`` and cut into groups of equal size; in
    each group the SNR is estimated at the upper quartile (``q``) of the power, so that
    a signal filling a quarter of the frequencies (lines, bars) still counts:
    ``SNR = Q_q(|G|^2 / N) / (sigma^2 ln(1 / (1 - q))) - 1``.  The first group that
    starts ``run`` groups in a row below ``level`` gives the median ``|H|^2`` returned.
    """
    if not noise > 0:  # noise-free data: nothing to protect against
        return RHO_RANGE[0]
    if h2.size == 0:
        return RHO_RANGE[0]
    order = np.argsort(h2)[::-1]
    size = min(max(min_group, h2.size // groups), h2.size)
    n = h2.size // size
    p = power[order[:n * size]].reshape(n, size)
    snr = np.quantile(p, q, axis=1) / (noise * np.log(1.0 / (1.0 - q))) - 1.0
    level_h2 = np.median(h2[order[:n * size]].reshape(n, size), axis=1)
    below = snr < level
    for i in range(n):
        if below[i:i + run].all():
            return float(level_h2[i])
    return float(level_h2[-1])


def _sharpness_cap(H2: np.ndarray, rho: float, work_shape: tuple[int, ...], kernel: np.ndarray) -> float | None:
    """None if points filtered with ``rho`` are no wider than in the data, else the largest ``rho`` that is.

    A point in the data has the PSF's width; in the result it has the width of the
    effective PSF ``irfftn(|H|^2 / (|H|^2 + rho))``.  Both are measured along every axis
    (FWHM through the maximum, linear interpolation) and ``log10(rho)`` is bisected.
    Axes on which the PSF is narrower than ``UNDERSAMPLED`` voxels are left out: there
    the voxel, not the optics, sets the width, and no ``rho`` short of an inverse filter
    (noise amplified without bound) makes a point narrower.
    """
    target = _psf_fwhm(kernel)
    target[target < UNDERSAMPLED] = np.inf
    if np.all(_effective_fwhm(H2, rho, work_shape) <= target):
        return None
    lo, hi = np.log10(RHO_RANGE[0]), np.log10(rho)
    if np.any(_effective_fwhm(H2, 10.0 ** lo, work_shape) > target):
        log.warning("wiener: points stay wider than in the data at any rho down to %.0e; keeping %.3g",
                    RHO_RANGE[0], rho)
        return None
    while hi - lo > 0.05:
        mid = 0.5 * (lo + hi)
        if np.all(_effective_fwhm(H2, 10.0 ** mid, work_shape) <= target):
            lo = mid
        else:
            hi = mid
    return float(10.0 ** lo)


#: PSF widths (FWHM, voxels) below which an axis is undersampled and the sharpness cap ignores it.
UNDERSAMPLED = 2.0


def _fwhm(profile: np.ndarray, i: int) -> float:
    """Full width at half maximum (voxels) of a 1D profile around its maximum at ``i``; inf if it does not fall."""
    half = 0.5 * profile[i]
    width = 0.0
    for step in (-1, 1):
        j = i
        while 0 <= j + step < profile.size and profile[j + step] > half:
            j += step
        if not 0 <= j + step < profile.size:
            return float("inf")
        a, b = profile[j], profile[j + step]
        width += abs(j - i) + (a - half) / (a - b)
    return width


def _psf_fwhm(kernel: np.ndarray) -> np.ndarray:
    """FWHM of the PSF along every axis through its maximum (inf for axes of length 1)."""
    k = np.asarray(kernel, np.float64)
    peak = np.unravel_index(int(np.argmax(k)), k.shape)
    out = []
    for ax in range(k.ndim):
        line = list(peak)
        line[ax] = slice(None)
        out.append(_fwhm(k[tuple(line)], peak[ax]) if k.shape[ax] > 1 else float("inf"))
    return np.array(out)


def _effective_fwhm(H2: np.ndarray, rho: float, work_shape: tuple[int, ...]) -> np.ndarray:
    """FWHM along every axis of the effective PSF of the filter, from projections of its spectrum.

    The profile of ``irfftn(T)`` through the origin along an axis is the 1D inverse DFT
    of ``T`` summed over the other axes (no full inverse FFT).  Axes of length 1 give 0.
    """
    T = H2 / (H2 + np.float32(rho))
    nd = len(work_shape)
    w = np.full(T.shape[-1], 2.0, np.float32)  # interior columns of the half spectrum count twice
    w[0] = 1.0
    if work_shape[-1] % 2 == 0:
        w[-1] = 1.0
    out = []
    for ax in range(nd):
        if work_shape[ax] == 1:
            out.append(0.0)
            continue
        others = tuple(a for a in range(nd) if a != ax)
        if ax == nd - 1:
            prof = np.fft.irfft(T.sum(axis=others, dtype=np.float64), work_shape[ax])
        else:
            prof = np.fft.ifft((T * w).sum(axis=others, dtype=np.float64)).real
        out.append(_fwhm(np.fft.fftshift(prof), work_shape[ax] // 2))
    return np.array(out)
