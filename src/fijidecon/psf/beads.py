"""A PSF measured from images of sub-resolution beads.

Pipeline of :func:`psf_from_beads`:

1. **Background**: a global level (median of the image unless given) is subtracted; the
   noise σ is 1.4826 × the median absolute deviation.  Optionally each bead's crop then
   has the median of its outer shell subtracted (local background).
2. **Saturation**: with integer images, voxels at the image maximum when that maximum is
   the dtype maximum or ``2**k - 1`` (a 8/10/12/14/16-bit camera) and reached by at least
   two voxels, or at/above ``saturation`` if given, are saturated: each bead containing
   some is reported in a warning (and dropped with ``reject_saturated=True``).
3. **Detection**: local maxima of the image smoothed by a 1-voxel Gaussian, at least
   ``threshold`` × the brightest one and ``min_snr`` noise σ above background; maxima
   closer than ``min_distance`` are one object (the brightest is kept).  Beads whose crop
   box leaves the image or contains another object are rejected (with a reason).
4. **Sub-voxel registration**: each bead is first located by a Gaussian (log-parabola)
   fit of its smoothed peak, then refined by cross-correlation with the current average
   (parabolic sub-voxel peak), twice.
5. **Averaging**: every bead is sampled directly on the output grid (cubic spline of the
   background-subtracted image at ``position + (j - c) * target / voxel``), so shift and
   resampling are one interpolation; crops are summed (brightness-weighted, the default)
   or their normalized median is taken.  When the output voxel is coarser than the
   input voxel along an axis, the image is first smoothed along it by a Gaussian whose
   variance is that of the larger pixel box minus that of the smaller one.
6. **Finishing**: the peak of the average is moved to the centre (``n // 2`` or
   ``(n - 1) / 2``), negatives are clipped to 0 and the PSF is normalized.
7. **Bead size** (with ``bead_diameter``): the average is the PSF blurred by the bead, a
   uniform sphere (in 2D its projection); that blur is removed by ``bead_iterations``
   Richardson-Lucy iterations with the voxelized sphere (:func:`bead_kernel`) as the
   kernel.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from scipy import ndimage

from .. import _validate
from ..errors import InputError, InputTypeError
from ._grid import centre_index, check_centre, check_dtype, check_normalize, check_shape, normalize_array, per_axis

__all__ = ["BeadPSF", "bead_kernel", "psf_from_beads", "SaturationWarning"]


class SaturationWarning(UserWarning):
    """A bead used for the PSF contains saturated (clipped) voxels."""


@dataclass
class BeadPSF:
    """Result of :func:`psf_from_beads`.

    Attributes
    ----------
    psf : numpy.ndarray
        The averaged, centred, normalized PSF (dtype as requested, float32 by default).
    voxel_size : tuple of float
        Voxel size of ``psf`` (numpy order), in the unit of the input ``voxel_size``.
    beads : numpy.ndarray
        (n_beads, ndim) sub-voxel positions of the beads used, in input voxel indices.
    brightness : numpy.ndarray
        Background-subtracted integrated intensity of each bead's crop.
    rejected : list of (tuple, str)
        Detected maxima that were not used: integer position and the reason.
    background : float
        Global background level subtracted.
    noise : float
        Robust noise σ of the image (1.4826 × MAD).
    saturated : int
        Number of saturated voxels inside the crops of the beads used.
    warnings : list of str
        Every warning issued (also sent through :mod:`warnings`) and notes such as
        "one bead used".
    fwhm : tuple of float
        Full width at half maximum of ``psf`` along each axis through its centre, in the
        unit of ``voxel_size`` (linear interpolation; ``nan`` if the profile does not fall
        to half within the crop).  With ``bead_diameter``: after the bead size was removed.
    fwhm_average : tuple of float
        The same for the plain average of the beads (before the bead size was removed).
    """

    psf: np.ndarray
    voxel_size: tuple[float, ...]
    beads: np.ndarray
    brightness: np.ndarray
    rejected: list = field(default_factory=list)
    background: float = 0.0
    noise: float = 0.0
    saturated: int = 0
    warnings: list = field(default_factory=list)
    fwhm: tuple = ()
    fwhm_average: tuple = ()

    @property
    def image(self) -> np.ndarray:
        """The PSF array (alias of :attr:`psf`, for code that reads ``result.image``)."""
        return self.psf


# ----------------------------------------------------------------------------------------
def _saturation_mask(image: np.ndarray, saturation: Any) -> tuple[np.ndarray | None, float | None]:
    if saturation is None or saturation is False:
        return None, None
    if isinstance(saturation, str):
        if saturation.lower() != "auto":
            raise InputError(f"saturation: expected 'auto', None or a number, got {saturation!r}")
        if image.dtype.kind not in "ui":
            return None, None
        vmax = int(image.max())
        levels = {int(np.iinfo(image.dtype).max)} | {2**k - 1 for k in (8, 10, 12, 14, 16)}
        if vmax in levels and int(np.count_nonzero(image == vmax)) >= 2:
            return image == vmax, float(vmax)
        return None, None
    level = per_axis(saturation, 1, "saturation")[0]
    mask = image >= level
    return (mask if mask.any() else None), level


def _log_parabola_peak(sm: np.ndarray, p: tuple[int, ...]) -> np.ndarray:
    """Sub-voxel peak of a positive blob by a Gaussian (3-point log-parabola) fit per axis."""
    out = np.array(p, dtype=np.float64)
    for ax in range(sm.ndim):
        if p[ax] == 0 or p[ax] == sm.shape[ax] - 1:
            continue
        idx = list(p)
        vals = []
        for d in (-1, 0, 1):
            idx[ax] = p[ax] + d
            vals.append(sm[tuple(idx)])
        a, b, c = vals
        if min(a, b, c) > 0:
            a, b, c = math.log(a), math.log(b), math.log(c)
        den = a - 2.0 * b + c
        if den < 0:
            out[ax] += float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
    return out


def _parabolic_peak(corr: np.ndarray) -> np.ndarray:
    """Sub-voxel position of the maximum of a (fft-shifted) correlation array."""
    p = np.unravel_index(int(np.argmax(corr)), corr.shape)
    out = np.array(p, dtype=np.float64)
    for ax in range(corr.ndim):
        if 0 < p[ax] < corr.shape[ax] - 1:
            idx = list(p)
            idx[ax] -= 1
            a = corr[tuple(idx)]
            idx[ax] += 2
            c = corr[tuple(idx)]
            b = corr[p]
            den = a - 2 * b + c
            if den < 0:
                out[ax] += float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
    return out


def _spline_peak(a: np.ndarray, sigma: float) -> np.ndarray:
    """Sub-voxel maximum of ``a`` (lightly smoothed) on its cubic-spline interpolant."""
    sm = ndimage.gaussian_filter(a, sigma, mode="nearest")
    p = np.unravel_index(int(np.argmax(sm)), sm.shape)
    coeffs = ndimage.spline_filter(sm, order=3, mode="nearest")
    best = np.array(p, dtype=np.float64)
    step = 0.5
    val = float(sm[p])
    # coordinate-wise pattern search on the interpolant, step halved down to 1/256 voxel
    while step > 1.0 / 256:
        improved = False
        for ax in range(a.ndim):
            for d in (-step, step):
                q = best.copy()
                q[ax] += d
                v = float(ndimage.map_coordinates(coeffs, q[:, None], order=3, mode="nearest", prefilter=False)[0])
                if v > val:
                    best, val, improved = q, v, True
        if not improved:
            step /= 2
    lim = np.array(p) + 1.0
    return np.clip(best, np.array(p) - 1.0, lim)


def _fwhm_axis(a: np.ndarray, axis: int) -> float:
    """FWHM (in voxels) of the profile of ``a`` along ``axis`` through its maximum."""
    p = np.unravel_index(int(np.argmax(a)), a.shape)
    idx = list(p)
    idx[axis] = slice(None)
    prof = np.asarray(a[tuple(idx)], dtype=np.float64)
    c = p[axis]
    half = prof[c] / 2.0
    if not half > 0:
        return float("nan")
    edges = []
    for step in (1, -1):
        i = c
        while 0 <= i + step < len(prof) and prof[i + step] > half:
            i += step
        j = i + step
        if not 0 <= j < len(prof):
            return float("nan")
        edges.append(i + step * (prof[i] - half) / (prof[i] - prof[j]))
    return float(edges[0] - edges[1])


#: Most voxels a bead PSF box may have (a 256**3 box): beyond that the voxel sizes are
#: in different units or the shape is absurd.
MAX_BOX_VOXELS = 2.0**24
#: Most a target voxel may be finer than the image's along an axis (upsampling creates no
#: detail; far beyond this the two voxel sizes are in different units).
MAX_UPSAMPLING = 32.0
#: Most sample points of the bead kernel (see :func:`bead_kernel`): about a second of work
#: (a 1 µm bead on 40 nm voxels needs 1.4e7).
MAX_KERNEL_POINTS = 1e8
#: Target and image voxel sizes this many times apart on every axis are a unit mix-up, refused at once.
UNIT_MIXUP = 100.0


def _check_box(shape, scale, bd, tgt, bead_iterations, resampled) -> None:
    """Refuse, before sampling, a PSF box or a bead kernel that is absurd or does not fit."""
    voxels = float(np.prod(shape, dtype=np.float64))
    ratio = float(np.max(1.0 / scale))
    if resampled and ratio > MAX_UPSAMPLING:
        raise InputError(f"target_voxel_size: {'x'.join(f'{v:g}' for v in tgt)} is {ratio:.3g}x finer than the "
                         f"image's voxel size (at most {MAX_UPSAMPLING:g}x); are voxel_size and target_voxel_size "
                         "in one unit?")
    if voxels > MAX_BOX_VOXELS:
        name = "target_voxel_size" if resampled and ratio > 1 else "shape"
        raise InputError(f"{name}: the PSF box would be {'x'.join(map(str, shape))} voxels (more than "
                         f"{MAX_BOX_VOXELS:.3g}); target voxels {ratio:.3g}x finer than the image's: are "
                         "voxel_size and target_voxel_size in one unit?")
    if bd is not None and bead_iterations:
        ks = _kernel_shape(bd, tgt)
        if any(k > m for k, m in zip(ks, shape)):
            raise InputError(f"bead_diameter: the bead ({'x'.join(map(str, ks))} voxels of "
                             f"{'x'.join(f'{v:g}' for v in tgt)}) does not fit in the PSF box "
                             f"{'x'.join(map(str, shape))}; is bead_diameter in the unit of voxel_size?")


def _remove_bead(mean: np.ndarray, kernel: np.ndarray, iterations: int) -> np.ndarray:
    """Richardson-Lucy deconvolution of the bead average by the bead kernel."""
    if kernel.size == 1:
        return mean
    if any(k > m for k, m in zip(kernel.shape, mean.shape)):
        raise InputError(f"bead_diameter: the bead ({kernel.shape} voxels) does not fit in the PSF box {mean.shape}")
    from ..deconvolve import richardson_lucy  # the numerical core only

    m = np.clip(mean, 0.0, None).astype(np.float32)
    if not m.sum() > 0:
        return mean
    return richardson_lucy(m, kernel, int(iterations), recenter=False, acceleration=None).image.astype(np.float64)


def _sample(coeffs: np.ndarray, pos: np.ndarray, offsets: list[np.ndarray]) -> np.ndarray:
    """Sample the spline ``coeffs`` at ``pos + offsets`` (an open grid of per-axis offsets)."""
    grids = np.meshgrid(*[pos[k] + offsets[k] for k in range(len(offsets))], indexing="ij")
    return ndimage.map_coordinates(coeffs, grids, order=3, mode="nearest", prefilter=False)


def _shell_median(crop: np.ndarray, width: int = 2) -> float:
    mask = np.ones(crop.shape, dtype=bool)
    inner = tuple(slice(width, n - width) if n > 2 * width + 2 else slice(0, 0) for n in crop.shape)
    mask[inner] = False
    return float(np.median(crop[mask]))


def _kernel_shape(diameter: float, vox: Sequence[float]) -> tuple[int, ...]:
    """Odd shape of the voxelized bead (:func:`bead_kernel`), computed without allocating."""
    r = diameter / 2.0
    return tuple(2 * int(math.ceil(min(float(r) / float(v), 2.0**40) - 0.5)) + 1 for v in vox)  # inf: capped


def bead_kernel(diameter: float, voxel_size: float | Sequence[float], ndim: int | None = None,
                subsamples: int = 9) -> np.ndarray:
    """A bead (uniform sphere) of ``diameter`` on a voxel grid, as a blur kernel.

    3D: each voxel holds the fraction of its volume inside the sphere (estimated with
    ``subsamples`` points per axis).  2D: the sphere's projection along z (weights
    proportional to the chord length), the in-focus image of a bead in a widefield
    image to first order.  Odd shape, centred, sum 1, float64.

    Parameters
    ----------
    diameter : float
        Bead diameter, same unit as ``voxel_size`` (> 0).
    voxel_size : float or sequence of float
        Voxel size per axis (numpy order); a scalar is used for every axis.
    ndim : int, optional
        2 or 3; default: the length of ``voxel_size`` (3 for a scalar).
    subsamples : int, default 9
        Sample points per voxel and axis.

    Example
    -------
    >>> k = bead_kernel(200.0, (100.0, 40.0, 40.0))
    >>> k.shape, round(float(k.sum()), 6), bool(np.allclose(k, k[::-1, ::-1, ::-1]))
    ((3, 5, 5), 1.0, True)
    """
    if ndim is None:
        n = len(voxel_size) if isinstance(voxel_size, (Sequence, np.ndarray)) and np.ndim(voxel_size) else 3
    else:
        n = _validate.check_int("ndim", ndim, 2, 3)
    if n not in (2, 3):
        raise InputError(f"voxel_size: expected 2 or 3 values (or one number), got {n}")
    d = per_axis(diameter, 1, "bead_diameter")[0]
    vox = np.array(per_axis(voxel_size, n, "voxel_size"))
    if isinstance(subsamples, (float, np.floating)):
        raise InputTypeError(f"subsamples: expected a whole number >= 1, got {_validate.got(subsamples)}")
    sub = _validate.check_int("subsamples", subsamples, 1, 101)
    r = d / 2.0
    shape = _kernel_shape(d, vox)
    half = [(m - 1) // 2 for m in shape]
    _validate.check_count("bead_diameter", float(np.prod(shape, dtype=np.float64)) * sub**n, MAX_KERNEL_POINTS,
                          f"the bead kernel's sample points ({'x'.join(map(str, shape))} voxels x {sub}**{n})",
                          "give bead_diameter and voxel_size in one unit")
    _validate.check_memory("bead_diameter", float(np.prod(shape, dtype=np.float64)) * sub**n * 18.0,
                           f"a {'x'.join(map(str, shape))}-voxel bead kernel", "give bead_diameter and voxel_size "
                           "in one unit, or fewer subsamples")
    offs = (np.arange(sub) + 0.5) / sub - 0.5
    # squared distance of every sample point, summed per axis: (voxel, sample) grids
    axes_r2 = [(((np.arange(m) - h)[:, None] + offs[None, :]) * v) ** 2 for m, h, v in zip(shape, half, vox)]
    if n == 3:
        r2 = axes_r2[0][:, None, None, :, None, None] + axes_r2[1][None, :, None, None, :, None] + \
            axes_r2[2][None, None, :, None, None, :]
        w = (r2 <= r * r).sum(axis=(3, 4, 5)).astype(np.float64)
    else:
        r2 = axes_r2[0][:, None, :, None] + axes_r2[1][None, :, None, :]
        w = np.sqrt(np.clip(r * r - r2, 0.0, None)).sum(axis=(2, 3))
    if not w.sum() > 0:  # smaller than the sampling: a point
        w = np.zeros(shape)
        w[tuple(half)] = 1.0
    return w / w.sum()


def psf_from_beads(
    image: np.ndarray,
    voxel_size: float | Sequence[float],
    *,
    target_voxel_size: float | Sequence[float] | None = None,
    shape: Sequence[int] | None = None,
    background: float | str = "auto",
    local_background: bool = False,
    threshold: float = 0.25,
    min_snr: float = 5.0,
    min_distance: float | None = None,
    max_beads: int | None = None,
    saturation: float | str | None = "auto",
    reject_saturated: bool = False,
    register: bool = True,
    average: str = "weighted",
    centre: str = "fft",
    normalize: str | None = "sum",
    bead_diameter: float | None = None,
    bead_iterations: int = 10,
    dtype: Any = np.float32,
) -> BeadPSF:
    """Measure a PSF from an image of one or several sub-resolution beads.

    See the module docstring for the pipeline.

    Parameters
    ----------
    image : numpy.ndarray
        2-D (y, x) or 3-D (z, y, x) image of beads, any real dtype.  Not modified.
    voxel_size : float or sequence of float
        Voxel size of ``image`` (numpy order), any length unit.
    target_voxel_size : float or sequence, optional
        Voxel size of the result (same unit), e.g. that of the image to deconvolve.
        Default: ``voxel_size`` (no resampling).
    shape : sequence of int, optional
        Shape of the result in output voxels.  Default: the largest box centred on the
        brightest bead that stays inside the image (give it explicitly for images of
        several beads, so that neighbours do not fall in each other's box).
    background : float or "auto", default "auto"
        Global background level; "auto" is the median of the image.
    local_background : bool, default False
        Also subtract from each crop the median of its 2-voxel outer shell (for uneven
        backgrounds; only when the crop holds the whole PSF, else it removes real tails).
    threshold : float, default 0.25
        Keep maxima of at least this fraction of the brightest (smoothed) maximum.
    min_snr : float, default 5
        ... and at least this many noise σ (of the smoothed image) above background.
    min_distance : float, optional
        Maxima closer than this (physical units, per axis) are one object.  Default:
        half the crop box along each axis (at least 2 voxels).
    max_beads : int, optional
        Use at most this many beads (the brightest accepted ones).
    saturation : "auto", float or None, default "auto"
        Saturation level (see the module docstring); None disables the check.
    reject_saturated : bool, default False
        Drop beads with saturated voxels (unless that would leave none).
    register : bool, default True
        Refine bead positions by cross-correlation with the average.
    average : {"weighted", "median"}, default "weighted"
        Sum of the crops (brightness-weighted mean) or median of the unit-sum crops.
    centre : {"fft", "middle"}, default "fft"
        Where the PSF peak is put: index ``n // 2`` or ``(n - 1) / 2``.
    normalize : {"sum", "peak", None}, default "sum"
        Normalization of the result.
    bead_diameter : float, optional
        Diameter of the beads (same unit as ``voxel_size``).  The average of the beads is
        the PSF blurred by the bead; that blur is removed (see ``bead_iterations``), and
        a warning is issued when the bead is larger than the lateral FWHM of the average
        (the result is then unreliable: use smaller beads).
    bead_iterations : int, default 10
        Richardson-Lucy iterations that remove the bead size (kernel :func:`bead_kernel`).
        On synthetic beads (4 per image, 100 nm z / 40 nm xy voxels, a PSF of 250 nm
        lateral and 700 nm axial FWHM, 3 noise seeds), 10 iterations bring the lateral
        FWHM of 250 nm beads from 11-16 % too wide to within 3.1 %; for 100-175 nm beads
        (average 4-9 % too wide) the result scatters within -7.5..+5.8 %, as the FWHM
        estimate itself does.  More iterations start to fit noise.
        ``0`` keeps the bead size, and warns when the bead exceeds half the lateral FWHM.
    dtype : float dtype, default float32

    Returns
    -------
    BeadPSF
        ``.psf``, ``.voxel_size``, ``.beads``, ``.brightness``, ``.rejected``,
        ``.background``, ``.noise``, ``.saturated``, ``.warnings``.

    Raises
    ------
    fijidecon.errors.InputError, fijidecon.errors.InputTypeError
        Bad arguments (a ``ValueError``/``TypeError`` whose message starts with the
        parameter's name: strings for numbers or bools, NaN, out-of-range values), no
        usable bead found (``image: ...``), a target voxel more than
        :data:`MAX_UPSAMPLING` times finer than the image's, a PSF box over
        :data:`MAX_BOX_VOXELS` voxels, or a bead (``bead_diameter``) larger than the box,
        all before any large allocation.
    fijidecon.errors.ResourceError
        The bead crops would not fit the memory budget
        (:func:`fijidecon.deconvolve.default_memory_limit`).

    Warns
    -----
    SaturationWarning
        A bead used contains saturated voxels.
    UserWarning
        Beads rejected because their crop box leaves the image.

    References
    ----------
    R. W. Cole, T. Jinadasa and C. M. Brown, "Measuring and interpreting point spread
    functions to determine confocal microscope resolution and ensure quality control",
    Nat. Protoc. 6, 1929–1941 (2011).
    P. J. Shaw and D. J. Rawlins, "The point-spread function of a confocal microscope:
    its measurement and use in deconvolution of 3-D data", J. Microsc. 163, 151–165 (1991).

    Example
    -------
    >>> from fijidecon.psf import gaussian
    >>> img = np.full((24, 64, 64), 100.0)
    >>> img[:, 8:40, 16:48] += 5e4 * gaussian((24, 32, 32), (4.0, 2.5, 2.5))
    >>> res = psf_from_beads(img, (200, 65, 65), shape=(15, 21, 21))
    >>> res.psf.shape, [round(float(v)) for v in res.beads[0]]
    ((15, 21, 21), [12, 24, 32])
    """
    # -- arguments ------------------------------------------------------------------------
    _validate.check_array("image", image, (2, 3), "uif", min_size=3)
    nd = image.ndim
    vox = np.array(per_axis(voxel_size, nd, "voxel_size"))
    tgt = vox.copy() if target_voxel_size is None else np.array(per_axis(target_voxel_size, nd, "target_voxel_size"))
    if np.all(tgt / vox >= UNIT_MIXUP) or np.all(vox / tgt >= UNIT_MIXUP):  # before the beads are looked for
        ratio = float(np.median(np.maximum(tgt / vox, vox / tgt)))
        raise InputError(f"target_voxel_size: {'x'.join(f'{v:g}' for v in tgt)} and voxel_size "
                         f"{'x'.join(f'{v:g}' for v in vox)} differ about {ratio:.0f}x on every axis: probably a unit "
                         "mix-up (nm vs µm); give both in one unit")
    if shape is not None:
        shape = check_shape(shape, ndims=(nd,))
    thr = per_axis(threshold, 1, "threshold", allow_zero=True)[0]
    if thr > 1:
        raise InputError(f"threshold: a fraction of the brightest bead, expected 0..1, got {threshold!r}")
    snr = per_axis(min_snr, 1, "min_snr", allow_zero=True)[0]
    if max_beads is not None:
        if isinstance(max_beads, (float, np.floating)):
            raise InputTypeError(f"max_beads: expected a positive int or None, got {_validate.got(max_beads)}")
        max_beads = _validate.check_int("max_beads", max_beads, 1)
    local_background = _validate.check_bool("local_background", local_background)
    reject_saturated = _validate.check_bool("reject_saturated", reject_saturated)
    register = _validate.check_bool("register", register)
    if not isinstance(average, str):
        raise InputTypeError(f"average: expected 'weighted' or 'median', got {_validate.got(average)}")
    average = _validate.check_choice("average", average, ("weighted", "median"))
    centre = check_centre(centre)
    bd = None if bead_diameter is None else per_axis(bead_diameter, 1, "bead_diameter")[0]
    if isinstance(bead_iterations, (float, np.floating)):
        raise InputTypeError(f"bead_iterations: expected a whole number >= 0, got {_validate.got(bead_iterations)}")
    bead_iterations = _validate.check_int("bead_iterations", bead_iterations, 0, 10**6)
    normalize = check_normalize(normalize)
    dt = check_dtype(dtype)
    if isinstance(background, str):
        _validate.check_choice("background", background, ("auto",))
    elif background is None or isinstance(background, (bool, np.bool_)) or not isinstance(
            background, (int, float, np.integer, np.floating)):
        raise InputTypeError(f"background: expected 'auto' or a number, got {_validate.got(background)}")
    else:
        _validate.check_float("background", background, 0.0)
    if isinstance(saturation, str):
        _validate.check_choice("saturation", saturation, ("auto",))
    elif saturation is not None and saturation is not False:
        _validate.check_float("saturation", saturation, positive=True)
    if min_distance is not None:
        per_axis(min_distance, 1, "min_distance")
    data = np.asarray(image, dtype=np.float64)  # a copy for integer input; never written to
    notes: list[str] = []

    def warn(msg: str, cat: type[Warning] = UserWarning) -> None:
        notes.append(msg)
        _validate.warn(msg, cat)

    # -- background, noise, saturation ------------------------------------------------------
    if isinstance(background, str):
        bg = float(np.median(data))
    else:
        bg = per_axis(background, 1, "background", allow_zero=True)[0]
    sig = 1.4826 * float(np.median(np.abs(data - np.median(data))))
    sat_mask, sat_level = _saturation_mask(image, saturation)
    work = data - bg

    # -- detection -------------------------------------------------------------------------
    sm = ndimage.gaussian_filter(work, 1.0, mode="nearest")
    # noise of the smoothed image: σ / sqrt(prod over axes of 2 sqrt(pi) * 1)
    sig_sm = sig / math.sqrt((2.0 * math.sqrt(math.pi)) ** nd)
    scale = tgt / vox  # input voxels per output voxel

    floor = max(thr * float(sm.max()), snr * sig_sm, 0.0)
    if not float(sm.max()) > floor:
        raise InputError(
            f"image: no bead found (brightest smoothed peak {float(sm.max()):.4g} above background {bg:.4g}, "
            f"noise σ {sig:.3g}); lower threshold/min_snr or check background")
    brightest = np.unravel_index(int(np.argmax(sm)), sm.shape)
    if shape is None:
        h_in = np.array([min(brightest[k], image.shape[k] - 1 - brightest[k]) for k in range(nd)], dtype=float)
        h_out = np.floor(np.minimum(h_in / scale + 1e-9, 2.0**40)).astype(np.int64)
        if np.any(h_out < 1):
            raise InputError(
                f"shape: the brightest maximum at {tuple(int(i) for i in brightest)} is on the image edge; "
                "give shape explicitly or crop the image")
        shape = tuple(int(2 * h + 1) for h in h_out)
    _check_box(shape, scale, bd, tgt, bead_iterations, target_voxel_size is not None)
    c_out = np.array([centre_index(n, centre) for n in shape])
    lo_in = c_out * scale  # extent of a crop in input voxels below the bead ...
    hi_in = (np.array(shape) - 1 - c_out) * scale  # ... and above it
    if min_distance is None:
        foot = np.maximum(2, np.floor(np.minimum(lo_in, hi_in) / 2.0)).astype(int)
    else:
        md = per_axis(min_distance, 1, "min_distance")[0]
        foot = np.maximum(1, np.ceil(np.minimum(md / vox, np.array(image.shape)))).astype(int)
    maxed = ndimage.maximum_filter(sm, size=tuple(2 * foot + 1), mode="nearest")
    peaks = np.argwhere((sm == maxed) & (sm > floor))
    if len(peaks) == 0:
        raise InputError(
            f"image: no bead found (brightest smoothed peak {float(sm.max()):.4g} above background {bg:.4g}, "
            f"noise σ {sig:.3g}); lower threshold/min_snr or check background")
    order = np.argsort([-sm[tuple(p)] for p in peaks], kind="stable")
    peaks = peaks[order]

    rejected: list = []
    accepted: list = []
    for i, p in enumerate(peaks):
        pt = tuple(int(v) for v in p)
        if np.any(p - lo_in < -0.5) or np.any(p + hi_in > np.array(image.shape) - 0.5):
            rejected.append((pt, "crop box leaves the image"))
            continue
        others = np.delete(peaks, i, axis=0)
        if len(others):
            inside = np.all((others >= p - lo_in - 0.5) & (others <= p + hi_in + 0.5), axis=1)
            if inside.any():
                rejected.append((pt, "another bead inside its crop box"))
                continue
        accepted.append(p)
    n_edge = sum(1 for _, r in rejected if r.startswith("crop box"))
    if n_edge:
        warn(f"{n_edge} bead(s) rejected: their {shape} crop box leaves the image")
    if not accepted:
        span = "x".join(f"{v:.4g}" for v in lo_in + hi_in + 1)
        raise InputError(
            f"image: {len(peaks)} maxima found but none usable ({'; '.join(sorted({r for _, r in rejected}))}); "
            f"the {'x'.join(map(str, shape))} box spans {span} input voxels around a bead, the image is "
            f"{'x'.join(map(str, image.shape))}: give a smaller shape")

    # saturation per bead
    sat_counts = []
    for p in accepted:
        if sat_mask is None:
            sat_counts.append(0)
            continue
        sl = tuple(slice(max(0, int(math.floor(p[k] - lo_in[k]))), int(math.ceil(p[k] + hi_in[k])) + 1) for k in range(nd))
        sat_counts.append(int(np.count_nonzero(sat_mask[sl])))
    if reject_saturated and any(sat_counts) and not all(sat_counts):
        keep = [i for i, c in enumerate(sat_counts) if c == 0]
        for i, c in enumerate(sat_counts):
            if c:
                rejected.append((tuple(int(v) for v in accepted[i]), f"{c} saturated voxels"))
        accepted = [accepted[i] for i in keep]
        sat_counts = [0] * len(accepted)
    if max_beads is not None and len(accepted) > max_beads:
        for p in accepted[max_beads:]:
            rejected.append((tuple(int(v) for v in p), "beyond max_beads"))
        accepted, sat_counts = accepted[:max_beads], sat_counts[:max_beads]
    for p, c in zip(accepted, sat_counts):
        if c:
            warn(f"bead at {tuple(int(v) for v in p)} has {c} saturated voxels (level {sat_level:g}): "
                 "its peak is clipped and the PSF is too flat there", SaturationWarning)
    if len(accepted) == 1 and len(peaks) >= 1:
        notes.append("one bead used: no averaging, the PSF keeps that bead's noise")
        logging.getLogger("fijidecon.psf").info("psf-from-beads: " + notes[-1])  # the CLI and ImageJ print it

    _validate.check_memory("shape", float(np.prod(shape, dtype=np.float64)) * 8.0 * (2 * len(accepted) + nd + 8),
                           f"{len(accepted)} bead crops of {'x'.join(map(str, shape))} voxels",
                           "give a smaller shape or max_beads")
    # -- sampling grid: anti-alias when the output voxel is coarser ------------------------
    src = work
    # lateral axes (the last two) are camera pixels: a coarser pixel integrates more; the
    # axial axis of a 3-D stack is point-sampled (focal planes), so it is only interpolated
    sig_aa = [math.sqrt(max(s * s - 1.0, 0.0) / 12.0) if (s > 1 and k >= nd - 2) else 0.0
              for k, s in enumerate(scale)]
    if any(sig_aa):
        src = ndimage.gaussian_filter(work, sig_aa, mode="nearest")
    coeffs = ndimage.spline_filter(src, order=3, mode="nearest")
    offsets = [(np.arange(shape[k]) - c_out[k]) * scale[k] for k in range(nd)]

    pos = [_log_parabola_peak(sm, tuple(int(v) for v in p)) for p in accepted]

    def extract(pos_list):
        crops = []
        for q in pos_list:
            crop = _sample(coeffs, q, offsets)
            if local_background:
                crop = crop - _shell_median(crop)
            crops.append(crop)
        return crops

    def combine(crops):
        if average == "weighted" or len(crops) == 1:
            return np.sum(crops, axis=0)
        normed = [c / max(float(c.sum()), 1e-300) for c in crops]
        return np.median(normed, axis=0)

    crops = extract(pos)
    mean = combine(crops)
    if register and len(crops) > 1:
        for _ in range(2):
            axes = tuple(range(nd))
            fm = np.conj(np.fft.rfftn(mean))
            new_pos = []
            for q, crop in zip(pos, crops):
                corr = np.fft.fftshift(np.fft.irfftn(np.fft.rfftn(crop) * fm, s=crop.shape, axes=axes))
                shift = _parabolic_peak(corr) - np.array([n // 2 for n in crop.shape])
                shift = np.clip(shift, -2.0, 2.0)  # a registration correction, not a re-detection
                new_pos.append(q + shift * scale)
            pos = new_pos
            crops = extract(pos)
            mean = combine(crops)

    # -- centre the peak of the average --------------------------------------------------
    delta = _spline_peak(mean, 0.5) - c_out
    if np.any(np.abs(delta) > 1e-3):
        pos = [q + delta * scale for q in pos]
        crops = extract(pos)
        mean = combine(crops)

    brightness = np.array([float(c.sum()) for c in crops])
    fwhm = fwhm_average = tuple(_fwhm_axis(mean, k) * float(tgt[k]) for k in range(nd))
    if bd is not None:
        lateral = float(np.nanmin(fwhm[-2:])) if not np.all(np.isnan(fwhm[-2:])) else float("nan")
        if bead_iterations:
            if lateral == lateral and bd > lateral:
                warn(f"bead_diameter {bd:g} is larger than the lateral FWHM {lateral:.4g} of the average: "
                     "removing the bead size is unreliable; use smaller beads")
            mean = _remove_bead(mean, bead_kernel(bd, tgt, nd), bead_iterations)
            fwhm = tuple(_fwhm_axis(mean, k) * float(tgt[k]) for k in range(nd))
        elif lateral == lateral and bd > 0.5 * lateral:
            warn(f"bead_diameter {bd:g} is more than half the measured lateral FWHM {lateral:.4g}: "
                 "the measured PSF is broadened by the bead size (bead_iterations=0 keeps it)")
    psf = np.clip(mean, 0.0, None)
    normalize_array(psf, normalize, "bead PSF")
    return BeadPSF(
        psf=psf.astype(dt, copy=False),
        voxel_size=tuple(float(v) for v in tgt),
        beads=np.array(pos, dtype=np.float64).reshape(len(pos), nd),
        brightness=brightness,
        rejected=rejected,
        background=bg,
        noise=sig,
        saturated=int(sum(sat_counts)),
        fwhm=fwhm,
        fwhm_average=fwhm_average,
        warnings=notes,
    )
