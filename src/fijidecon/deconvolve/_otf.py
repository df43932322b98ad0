"""PSF preparation and the optical transfer function (OTF), computed once per run.

:func:`prepare_psf` turns a user PSF of **any size and parity** into the kernel every
algorithm uses, in named stages, each reported (:class:`PreparedPSF` ``.notes``, one
line each, also logged on the ``fijidecon`` logger at INFO):

1. ``check``: finite, real, not all zero;
2. ``remove_offset``: a raw measured PSF sits on a constant camera offset.  The offset
   is estimated as the median of the array's outer shell (the voxels on its faces);
   when the PSF is at least 15 voxels wide in Y and X and that median is above 1 % of
   the peak (or, as camera noise, holds over the array more than 10 % of the light above it:
   a bright bead, a large crop) and flat (robust spread below half the offset and a tenth of the peak
   above it, and the array's corners at the same level: a cut-off PSF tail is not flat),
   it is subtracted and voxels within 3 noise standard deviations of it are set to 0
   (the noise floor would otherwise add up to more than the PSF over a large crop).
   A PSF whose peak stands less than 20 noise deviations above such a flat border level
   gets a ``RuntimeWarning`` ("mostly background").  Negative values (over-subtracted backgrounds) become 0
   (a warning when they sum to over 10 % of the positive ones).  A PSF at least 15 voxels wide whose
   peak is under 8x its mean warns: an image given as the PSF;
3. ``resample`` (when both voxel sizes are known and differ): one cubic-spline
   interpolation to the image's voxel size that keeps the array centre ``n // 2`` on
   the new centre ``m // 2``, no plane lost, integrated over the wider pixel when the new
   lateral voxels are coarser (:func:`resample`; flux is kept by the normalisation of stage 6).  Sizes that
   differ about 1000x on every axis are a unit mix-up (nm vs µm), not a sampling
   difference: a warning, and no resampling;
4. ``centre``: the origin of the PSF is its array centre ``n // 2`` (the package's
   convention, also for even sizes).  The PSF is moved only if both its peak and its
   centroid are more than half a voxel away from that centre (then the centroid of its
   core, the voxels above 30 % of its peak, is put on the centre, sub-voxel, with a note: the
   peak's place, which is where a PSF cropped about its peak has it).  So a PSF made at
   ``n // 2`` is used as it is;
5. ``crop``: to its *support* (the box, symmetric about the centre, of the voxels above
   ``threshold * max``), then to what the method can use, ``max_shape`` (non-circulant
   and mirror edges: up to ``2 * image - 1``; periodic edges: the image box).  A crop
   that drops more than 1e-4 of the flux is reported with the fraction dropped;
6. ``normalise`` to sum 1 (so deconvolution and convolution preserve flux).

:func:`otf` places the kernel on a work grid with its centre at the origin and returns
its real FFT (complex64).

Example
-------
>>> import numpy as np
>>> from fijidecon.deconvolve._otf import prepare_psf
>>> z, y, x = np.mgrid[-8:9, -8:9, -8:9]
>>> p = prepare_psf(np.exp(-(x**2 + y**2 + z**2) / 4.0))
>>> p.kernel.shape, float(p.kernel.sum()).__round__(5), p.notes
((13, 13, 13), 1.0, ())
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from scipy import ndimage

from .. import _validate
from . import _fft
from ..errors import InputError, InputTypeError

log = logging.getLogger("fijidecon.psf")

#: Sub-voxel offsets of the centroid below this (voxels) are not corrected.
SHIFT_MIN = 0.05
#: A PSF is re-centred only when its peak and centroid are further than this from n // 2 (voxels).
CENTRE_TOLERANCE = 0.5
#: A PSF that is moved is centred on the centroid of its core, the voxels above this fraction of its peak weighted
#: by their height above it: the sub-voxel place of its peak (a sampled Gaussian's within 0.01 voxel), so that a PSF
#: moved and the same PSF cropped about its peak (not moved) put objects in one place (the centroid above 2 % put a
#: real bead's asymmetric tails in: 0.7-1.0 voxel from its peak, now 0.05 in Z).
RECENTRE_LEVEL = 0.3
#: Shell median above this fraction of the peak: a candidate camera offset.
OFFSET_MIN = 0.01
#: A flat noisy border level below ``OFFSET_MIN`` is still an offset when, over the array, it holds more than this
#: fraction of the light above it.
OFFSET_FLUX = 0.1
#: Offsets are looked for only in PSFs at least this wide in Y and X (measured crops; not small kernels).
OFFSET_MIN_SIZE = 15
#: Noise floor (in noise standard deviations) zeroed after removing an offset.
NOISE_FLOOR = 3.0
#: Crops that drop more flux than this are reported.
FLUX_REPORT = 1e-4


@dataclass(frozen=True)
class PreparedPSF:
    """A PSF ready for the FFT core.

    Attributes
    ----------
    kernel:
        float32, sum 1, its origin at index ``k // 2`` on every axis.
    centroid:
        Centroid of the PSF (index units, coordinates of the array given, after
        resampling if any).
    shift:
        Shift applied to re-centre it (voxels per axis; zeros when not moved).
    notes:
        One line per change made (offset removed, resampled, re-centred, cropped).
    report:
        The same as JSON-able values (shapes, offset, noise, shift, flux dropped, ...).
    """

    kernel: np.ndarray
    centroid: tuple[float, ...]
    shift: tuple[float, ...]
    notes: tuple[str, ...] = ()
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def centre(self) -> tuple[int, ...]:
        return tuple(n // 2 for n in self.kernel.shape)


def check_psf(psf: object, name: str = "psf") -> np.ndarray:
    """Validate a PSF array and return it as float64 (a copy, input untouched)."""
    _validate.refuse_file_name(name, psf)
    a = np.asarray(psf)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise InputTypeError(f"{name}: expected a real numeric array, got dtype {a.dtype}")
    if np.iscomplexobj(a):
        raise InputTypeError(f"{name}: complex PSFs are not supported (got {a.dtype})")
    if a.ndim < 1 or a.size == 0:
        raise InputError(f"{name}: empty array of shape {a.shape}")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise InputError(_validate.not_finite(name, a))
    if not a.max() > 0:
        raise InputError(f"{name}: the PSF is all zero or negative (max {a.max() + 0.0:g}); it must have a positive "
                         "sum")
    return a


def _shell(a: np.ndarray) -> np.ndarray:
    """The voxels on the faces of the array (all of it when it is too small to have an inside)."""
    if a.ndim == 0 or min(a.shape) < 3:
        return a.ravel()
    inner = np.zeros(a.shape, bool)
    inner[tuple(slice(1, -1) if n > 2 else slice(None) for n in a.shape)] = True
    return a[~inner]


def _corner_median(a: np.ndarray) -> float:
    """Median of the array's corner blocks (an offset is there too; a cut-off PSF tail is not)."""
    parts = []
    for corner in np.ndindex(*(2,) * a.ndim):
        sl = tuple(slice(0, max(2, n // 8)) if c == 0 else slice(n - max(2, n // 8), n) for c, n in zip(corner, a.shape))
        parts.append(a[sl].ravel())
    return float(np.median(np.concatenate(parts)))


#: A PSF whose negative values (set to 0) sum to more than this fraction of its positive ones is warned
#: about (Iterative Deconvolve 3D, which uses the PSF as given, warns at the same share).
NEGATIVE_WARN = 0.1


def camera_offset(a: np.ndarray) -> tuple[float, float, bool, bool]:
    """``(level, noise SD, on_offset, flat)`` of a PSF's border: ``on_offset`` when a measured
    PSF (≥ ``OFFSET_MIN_SIZE`` wide) sits on a flat level above ``OFFSET_MIN`` of its peak,
    ``flat`` when that level is also well above its noise (it is then removed)."""
    peak = float(a.max())
    shell = _shell(a)
    b = float(np.median(shell))
    sigma = float(1.4826 * np.median(np.abs(shell - b)))
    level = (min(a.shape[-2:]) >= OFFSET_MIN_SIZE and sigma < 0.5 * b and abs(_corner_median(a) - b) <= 0.2 * b
             and (OFFSET_MIN * peak < b or _offset_carries_the_flux(a, b, sigma)))
    return b, sigma, bool(level), bool(level and sigma < 0.1 * (peak - b))


def _offset_carries_the_flux(a: np.ndarray, b: float, sigma: float) -> bool:
    """A border level under ``OFFSET_MIN`` of the peak that still holds more than ``OFFSET_FLUX`` of the
    PSF's light over the array (a bright bead on a camera offset, or a large crop: a light-sheet bead
    0.56 % of its peak up held 98 %), and that is camera noise (neighbouring border voxels differ as
    independent ones do), not a computed PSF's smooth far tails."""
    above = float(a.sum(dtype=np.float64)) - b * a.size
    if not (b > 0 and b * a.size > OFFSET_FLUX * max(above, 0.0)):
        return False
    face = np.asarray(a[..., 0], np.float64).reshape(-1, a.shape[-2])  # the X = 0 face, rows along Y
    step = np.diff(face, axis=-1).ravel()
    rough = 1.4826 * float(np.median(np.abs(step - np.median(step)))) / np.sqrt(2)
    return sigma > 0 and rough > 0.1 * sigma  # measured: noisy widefield beads 0.22-0.27, computed PSFs <= 0.023


def remove_offset(a: np.ndarray, name: str, report: dict, notes: list[str]) -> np.ndarray:
    """Stage 2: subtract a flat camera offset (see the module docstring); clip negatives."""
    peak = float(a.max())
    b, sigma, level, flat = camera_offset(a)
    report.update(offset=0.0, noise=sigma)
    if level and peak - b < 20 * sigma:
        _validate.warn(f"{name}: mostly background: its peak is only {(peak - b) / max(sigma, 1e-30):.1f} noise SD "
                       f"above its border level {b:.4g}; average more beads or crop closer to the bead (a computed "
                       "PSF this flat was made with wrong parameters: check their units)",
                       RuntimeWarning)
    if flat:
        a = a - b
        floor = NOISE_FLOOR * sigma
        a[a < floor] = 0.0
        report.update(offset=b)
        notes.append(f"{name}: camera offset {b:.4g} (median of its border voxels) removed; "
                     f"voxels within {NOISE_FLOOR:g} noise SD ({sigma:.3g}) of it set to 0")
    elif a.min() < 0:
        pos, neg = float(a[a > 0].sum(dtype=np.float64)), -float(a[a < 0].sum(dtype=np.float64))
        share = (f"{100 * neg / pos:.0f} % of" if neg <= 10 * pos else f"{neg / pos:.3g} times")  # not 987470 %
        notes.append(f"{name}: negative values (down to {a.min() / peak:.2g} x the maximum; their sum "
                     f"{share} the positive ones) set to 0")
        if neg > NEGATIVE_WARN * pos:
            _validate.warn(f"{name}: its negative values sum to {share} its positive ones and are "
                           "set to 0, which leaves only its brightest core: was a background subtracted too far? "
                           "(give the PSF with its background, or clip it yourself)", RuntimeWarning)
        a = np.clip(a, 0, None)
    return a


def resample(a: np.ndarray, psf_voxel_size: Sequence[float], voxel_size: Sequence[float],
             max_shape: Sequence[int] | None = None) -> np.ndarray:
    """Resample a PSF sampled at ``psf_voxel_size`` to ``voxel_size`` (same unit, same order).

    One cubic-spline interpolation; the array centre ``n // 2`` goes to the new centre ``m // 2``.
    Per axis, ``m = round(n * psf_voxel / voxel)`` when the new voxels are finer, and, when they
    are coarser, the most whole new voxels on each side of the centre that the old array covers
    (so no plane of a symmetric PSF is lost: 21 planes at 100 nm give 9 at 250, not 8 with the
    last one empty); at most ``max_shape``.  On the lateral axes (Y, X: the last two) a coarser
    voxel is a wider camera pixel, so the PSF is first integrated over it: a Gaussian of variance
    ``(r² − 1) / 12`` old voxels (``r`` the ratio of the voxel sizes; the old samples already
    integrate over their own pixel, variance ``1/12``) — a widefield PSF (NA 1.45, 461 nm) taken
    from 65 or 43 nm pixels to 130 nm is then within 4 % / 0.5 % rel L2 of the one computed at
    130 nm, against 22 % / 27 % sampled without it.  Axially (Z) no integration: the focal plane
    is a plane.  Values are not normalised (the caller normalises the sum).
    """
    ratio = np.array([float(v) / float(p) for p, v in zip(psf_voxel_size, voxel_size)])  # new step in old voxels
    shape = [_resampled_size(n, r) for n, r in zip(a.shape, ratio)]
    if max_shape is not None:
        shape = [min(m, int(k)) for m, k in zip(shape, max_shape)]
    a = np.asarray(a, np.float64)
    for ax in range(max(0, a.ndim - 2), a.ndim):
        if ratio[ax] > 1 + 1e-6 and a.shape[ax] > 1:
            a = ndimage.gaussian_filter1d(a, float(np.sqrt((ratio[ax] ** 2 - 1) / 12)), axis=ax, mode="constant")
    c_old = np.array([n // 2 for n in a.shape], float)
    c_new = np.array([m // 2 for m in shape], float)
    out = ndimage.affine_transform(a, ratio, offset=c_old - ratio * c_new, output_shape=tuple(shape), order=3,
                                   mode="constant", cval=0.0)
    return np.clip(out, 0, None)


def _resampled_size(n: int, r: float) -> int:
    """The new length of an axis of ``n`` voxels resampled to voxels ``r`` times as large (see
    :func:`resample`): centre ``n // 2`` kept on ``m // 2``."""
    if r <= 1:
        return max(1, int(round(n / r)))
    lo, hi = n // 2, n - 1 - n // 2  # old voxels below and above the centre
    return int(np.floor(lo / r + 1e-9)) + int(np.floor(hi / r + 1e-9)) + 1


def _centroid(w: np.ndarray, around: tuple[int, ...]) -> tuple[float, ...]:
    """Centroid of ``w`` in the largest box symmetric about ``around`` (so a cut-off tail on
    one side of an even-sized array does not pull it)."""
    box = tuple(slice(c - min(c, n - 1 - c), c + min(c, n - 1 - c) + 1) for c, n in zip(around, w.shape))
    sub = w[box]
    tot = sub.sum()
    if not tot > 0:
        return tuple(float(c) for c in around)
    grids = np.indices(sub.shape, sparse=True)
    return tuple(float((sub * g).sum() / tot) + b.start for g, b in zip(grids, box))


def _crop_box(a: np.ndarray, ci: Sequence[int], half: Sequence[int]) -> np.ndarray:
    """The box ``ci - half .. ci + half`` of ``a`` (zero outside the array)."""
    box = np.zeros(tuple(2 * h + 1 for h in half))
    src, dst = [], []
    for ax in range(a.ndim):
        s0, s1 = ci[ax] - half[ax], ci[ax] + half[ax] + 1
        a0, a1 = max(s0, 0), min(s1, a.shape[ax])
        src.append(slice(a0, a1))
        dst.append(slice(a0 - s0, a1 - s0))
    box[tuple(dst)] = a[tuple(src)]
    return box


def refuse_flat(a: np.ndarray, name: str) -> None:
    """An error for a PSF big enough to tell (``OFFSET_MIN_SIZE`` wide) whose voxels are all equal: a saturated
    or blank bead crop, never a PSF to deconvolve with (a fresh batch user's all-65535 PSF ran Wiener and RL
    without a word: Wiener's result -7.9e5 to 6.8e5 for data up to 2e4).  Convolve keeps box kernels."""
    if a.ndim < 2 or min(a.shape[-2:]) < OFFSET_MIN_SIZE:
        return
    top, low, mean = float(a.max()), float(a.min()), float(a.mean(dtype=np.float64))
    if top > 0 and top - low <= 1e-6 * top:
        raise InputError(f"{name}: every voxel of its {'x'.join(map(str, a.shape))} array is {top:g}: a saturated or "
                         "blank crop, not a PSF (a PSF concentrates its light around its centre)")
    if top > 0 and top <= 1.001 * mean:  # a few voxels off a flat level: as flat
        raise InputError(f"{name}: its {'x'.join(map(str, a.shape))} array is flat (its peak {top:g} is within 0.1 % "
                         "of its mean): a saturated or blank crop, not a PSF (a PSF concentrates its light around its "
                         "centre)")


def _limit(box: np.ndarray, max_shape: Sequence[int] | None) -> np.ndarray:
    """Crop a kernel (origin at k // 2) to at most ``max_shape``, keeping the origin at the new m // 2."""
    if max_shape is None:
        return box
    sl = []
    for k, m in zip(box.shape, max_shape):
        m = max(1, min(int(m), k))
        c = k // 2
        sl.append(slice(c - m // 2, c - m // 2 + m))
    return box[tuple(sl)]


def prepare_psf(psf: object, *, threshold: float = 1e-4, recenter: bool = True, name: str = "psf",
                max_shape: Sequence[int] | None = None, voxel_size: Sequence[float] | None = None,
                psf_voxel_size: Sequence[float] | None = None,
                image_shape: Sequence[int] | None = None, flat_ok: bool = False) -> PreparedPSF:
    """Check, clean, resample, centre, crop and normalise a PSF (see the module docstring).

    Parameters
    ----------
    psf:
        The PSF, any real dtype, any size; its origin is the array centre ``n // 2``.
    threshold:
        Voxels at or below ``threshold * max`` are outside the support.  0 keeps every
        non-zero voxel.
    recenter:
        Move a PSF whose peak and centroid are both more than half a voxel off its centre
        (``False``: never move it).
    name:
        Parameter name used in messages (``"psf"``, ``"psf[1]"``).
    max_shape:
        Largest kernel the method can use, per axis (``None``: no limit).
    image_shape:
        The volume's shape, when known: a PSF bigger on every axis and not concentrated around
        a peak is refused at once as the image itself (arguments swapped), before its warnings.
    voxel_size, psf_voxel_size:
        Voxel sizes of the image and of the PSF (same unit, same axis order as the PSF).
        When both are given and differ by more than 0.1 %, the PSF is resampled.
    flat_ok:
        Accept a PSF at least ``OFFSET_MIN_SIZE`` wide whose voxels are all equal (a box
        smoothing kernel, for convolve); otherwise it is refused (:func:`refuse_flat`).

    Returns
    -------
    PreparedPSF

    Raises
    ------
    TypeError, ValueError
        A non-numeric, complex, empty, non-finite or all non-positive PSF; bad
        ``threshold`` or voxel sizes.
    """
    from .. import _validate

    threshold = _validate.check_float("psf_threshold", threshold, 0.0, 1.0)
    if threshold >= 1:
        raise InputError(f"psf_threshold: expected a number in [0, 1), got {threshold!r}")
    a = check_psf(psf, name)
    if not flat_ok:
        refuse_flat(a, name)
    notes: list[str] = []
    report: dict[str, Any] = {"shape_given": list(a.shape)}
    bigger = image_shape is not None and all(g > n for g, n in zip(a.shape, image_shape))
    with _validate.held_until_checked(bigger):  # an image given as the PSF: the refusal alone, its warnings not
        a = remove_offset(a, name, report, notes)
        if not a.sum() > 0:
            raise InputError(f"{name}: nothing is left of the PSF after removing its background")
        if bigger:  # swapped: refused first
            from ._hyper import refuse_swapped

            refuse_swapped(name, tuple(a.shape), tuple(image_shape), _peak_to_mean(a), 0.0, "")
    report["peak_to_mean"] = _warn_not_concentrated(a, name)
    a = _match_voxel_size(a, name, voxel_size, psf_voxel_size, max_shape, report, notes)
    centroid, ci, frac, moved = _centre(a, recenter, name, report, notes)
    need_shift = any(abs(f) > SHIFT_MIN for f in frac)
    mask = a > threshold * a.max()
    idx = np.nonzero(mask)
    half = [max(ci[ax] - int(idx[ax].min()), int(idx[ax].max()) - ci[ax], 0)
            + (1 if need_shift and a.shape[ax] > 1 else 0) for ax in range(a.ndim)]
    total = a.sum()
    box = _crop_box(a, ci, half)
    if need_shift:
        box = ndimage.shift(box, [-f for f in frac], order=3, mode="constant", cval=0.0)
        np.clip(box, 0, None, out=box)
    support = box.shape
    box = _limit(box, max_shape)
    dropped = 1.0 - float(box.sum() / total) if total > 0 else 0.0
    report.update(support_shape=list(support), kernel_shape=list(box.shape), flux_dropped=max(dropped, 0.0))
    if box.shape != support and dropped > FLUX_REPORT:
        notes.append(f"{name}: cropped from its support {support} to {box.shape} (what these edges can use); "
                     f"{100 * dropped:.2g} % of its flux was outside and is not used")
    elif dropped > FLUX_REPORT:  # faint wide tails (a widefield PSF's out-of-focus light) below the threshold
        grown = [i for i, (s, n) in enumerate(zip(support, a.shape)) if s > n]  # 'cropped' 40 -> 41 planes read oddly
        odd = ("; centred on its centre voxel, so a side with light at both ends gains a voxel of zeros"
               if grown else "")
        notes.append(f"{name}: cropped from {a.shape} to its support {support} (the voxels above psf_threshold="
                     f"{threshold:g} of its peak{odd}); {100 * dropped:.2g} % of its flux was outside and is not "
                     "used (psf_threshold=0 uses it all)")
    if not box.sum() > 0:
        raise InputError(f"{name}: nothing of the PSF is left inside {tuple(box.shape)}")
    box /= box.sum()
    shift = tuple(float(g - c) for g, c in zip((n // 2 for n in a.shape), centroid)) if moved else (0.0,) * a.ndim
    report.update(shift=list(shift), recentred=moved)
    for n in notes:
        log.info(n)
    return PreparedPSF(box.astype(np.float32), centroid, shift, tuple(notes), report)


def one_sided_voxel_size(name: str, voxel_size: Any, psf_voxel_size: Any, notes: list[str]) -> None:
    """Only one of ``voxel_size`` / ``psf_voxel_size`` given: a note (the PSF is taken at the
    image's voxel size) or a warning (``psf_voxel_size`` alone cannot be used)."""
    if voxel_size is not None and psf_voxel_size is None:
        notes.append(f"{name}: taken to be sampled at the image's voxel size (no psf_voxel_size given; give it to "
                     "have the PSF resampled)")
    if psf_voxel_size is not None and voxel_size is None:
        _validate.warn(f"psf_voxel_size: not used without the image's voxel_size; the {name} is taken to be sampled at "
                       "the image's voxel size (give voxel_size= to have it resampled)", RuntimeWarning)


def _match_voxel_size(a, name, voxel_size, psf_voxel_size, max_shape, report, notes) -> np.ndarray:
    one_sided_voxel_size(name, voxel_size, psf_voxel_size, notes)
    if voxel_size is None or psf_voxel_size is None:
        return a
    from .. import _validate

    vs = _validate.check_spacing("voxel_size", voxel_size, a.ndim)
    ps = _validate.check_spacing("psf_voxel_size", psf_voxel_size, a.ndim)
    if all(abs(p - v) <= 1e-3 * v for p, v in zip(ps, vs)):
        return a
    ratio = apart(ps, vs)
    factor = mixup_factor(ps, vs)
    if factor is not None:  # read in the image's unit: resampled as any other PSF (it was used as is, 74 % off
        # the right result for a PSF sampled 2x finer: 125 nm given against 0.25 µm)
        read = tuple(p * factor for p in ps)
        _validate.warn(f"{name}: its voxel size {_fmt(ps)} and the image's {_fmt(vs)} (both in the image's length "
                       f"unit) differ about {ratio:.0f}x: probably a unit mix-up (nm vs µm); the PSF's is read as "
                       f"{_fmt(read)}; give both in one unit", RuntimeWarning)
        ps, ratio = read, apart(read, vs)
        if all(abs(p - v) <= 1e-3 * v for p, v in zip(ps, vs)):
            return a
    check = ("check both voxel sizes (the files' calibration, --voxel-size/--psf-voxel-size, "
             "voxel_size=/psf_voxel_size=)")
    if ratio > ABSURD_APART:  # m vs µm: a constant or an unchanged image (in memory), a huge PSF (lazy)
        raise InputError(f"{name}: its voxel size {_fmt(ps)} and the image's {_fmt(vs)} differ {ratio:.3g}x; "
                         f"{NO_MICROSCOPE}: {check}")
    if ratio > FAR_APART:  # not nm/µm (above), but as absurd: a resolution tag of 0 ...
        _validate.warn(f"{name}: its voxel size {_fmt(ps)} and the image's {_fmt(vs)} differ {ratio:.3g}x: "
                       f"{NO_MICROSCOPE}; {check}", RuntimeWarning)
    if _axes_reversed(ps, vs):
        _validate.warn(f"{name}: its voxel size {_fmt(ps)} is finer in Z than in X while the image's {_fmt(vs)} is "
                       "coarser (or the reverse): given in X, Y, Z order? Voxel sizes are (Z, Y, X); "
                       f"{check}", RuntimeWarning)
    limit = None
    if max_shape is not None:  # no need to compute more than the method can use (+ room to re-centre)
        limit = [int(m) + 2 for m in max_shape]
    n_out = [_resampled_size(n, v / p) for n, p, v in zip(a.shape, ps, vs)]
    if limit is not None:
        n_out = [min(n, m) for n, m in zip(n_out, limit)]
    if float(np.prod(n_out, dtype=float)) * 8 > 2 ** 33:
        raise InputError(f"{name}: resampling from voxel size {ps} to {vs} would make a "
                         f"{'x'.join(map(str, n_out))} PSF; check the voxel sizes")
    out = resample(a, ps, vs, limit)
    if not out.sum() > 0:
        raise InputError(f"{name}: nothing is left of the PSF after resampling from voxel size {ps} to {vs}")
    report.update(resampled_from=list(ps), resampled_to=list(vs), shape_resampled=list(out.shape))
    notes.append(f"{name}: resampled from voxel size {_fmt(ps)} to the image's {_fmt(vs)} "
                 f"({'x'.join(map(str, a.shape))} -> {'x'.join(map(str, out.shape))})")
    return out


#: A PSF (>= OFFSET_MIN_SIZE wide in Y and X) whose peak is less than this times its mean is warned about:
#: measured and computed PSFs are 14x (RedLionfish's broad 8-bit PSF) to 8000x; dapi_001 given as the PSF, 3.2x.
CONCENTRATED = 8.0


def _peak_to_mean(a: np.ndarray) -> float | None:
    """A PSF's peak / mean (``None`` for a PSF too small to tell, or a uniform box kernel)."""
    if a.ndim < 2 or min(a.shape[-2:]) < OFFSET_MIN_SIZE:
        return None
    inside = a[a > 0]
    if inside.size and float(inside.max() - inside.min()) <= 1e-6 * float(inside.max()):
        return None  # a uniform (box) kernel: a smoothing kernel for convolve, not an image
    return float(a.max()) / float(a.mean())


def _warn_not_concentrated(a: np.ndarray, name: str) -> float | None:
    """A warning when a PSF big enough to tell is not concentrated around a peak: an image given as the
    PSF (arguments swapped, or the same-size PSF file mixed up with the data).  Returns its peak / mean
    (``None`` for a PSF too small to tell, or a uniform box kernel)."""
    ratio = _peak_to_mean(a)
    if ratio is None:
        return None
    if ratio < CONCENTRATED:
        _validate.warn(f"{name}: its peak is only {ratio:.2g}x its mean, where a PSF concentrates its light around "
                       "its centre (measured and computed PSFs: from 14x for a broad 8-bit PSF to thousands of times): "
                       "is it an image, given as the PSF (arguments swapped)?", RuntimeWarning)
    return ratio


#: A voxel whose Z and X sizes differ by more than this factor is anisotropic (see ``_axes_reversed``).
ANISOTROPIC = 1.5


def _axes_reversed(ps: Sequence[float], vs: Sequence[float]) -> bool:
    """Whether PSF and image voxels are both clearly anisotropic, the PSF's Z finer than its X where
    the image's is coarser (or the reverse): one of them given in (X, Y, Z) order."""
    if len(ps) < 3:
        return False
    rp, rv = ps[0] / ps[-1], vs[0] / vs[-1]
    return (rp > ANISOTROPIC and rv < 1 / ANISOTROPIC) or (rp < 1 / ANISOTROPIC and rv > ANISOTROPIC)


#: Image and PSF voxel sizes further apart than this (on any axis, and not a nm/µm mix-up) warn;
#: beyond ``ABSURD_APART`` they are refused.
FAR_APART = 30.0
ABSURD_APART = 3000.0


#: Said of voxel sizes more than :data:`FAR_APART` apart.
NO_MICROSCOPE = "no microscope samples a PSF and its image that differently"


def apart(a: Sequence[float], b: Sequence[float]) -> float:
    """How many times two voxel sizes differ along the axis where they differ most (>= 1)."""
    return max(max(x / y, y / x) for x, y in zip(a, b))


def unit_mixup(psf_voxel_size: Sequence[float], voxel_size: Sequence[float]) -> bool:
    """Whether two voxel sizes differ by about 1000x on every axis, the same way (a nm/µm or µm/mm
    mix-up, never a real sampling difference)."""
    return mixup_factor(psf_voxel_size, voxel_size) is not None


def mixup_factor(psf_voxel_size: Sequence[float], voxel_size: Sequence[float]) -> float | None:
    """The factor (1e-3 or 1e3) that brings a PSF's voxel size given in the other unit of a nm/µm (or
    µm/mm) mix-up to the image's unit: every axis 300x to 3000x apart, the same way; else ``None``.
    The PSF may still be sampled otherwise than the image (a factor 0.3 to 3 on each axis is left)."""
    ratios = [p / v for p, v in zip(psf_voxel_size, voxel_size)]
    if all(300 < r < 3000 for r in ratios):
        return 1e-3
    if all(1 / 3000 < r < 1 / 300 for r in ratios):
        return 1e3
    return None


def _fmt(v: Sequence[float]) -> str:
    return "(" + ", ".join(f"{x:.4g}" for x in v) + ")"


def _centre(a, recenter, name, report, notes):
    """Stage 4: where the PSF's origin is; returns (centroid, origin voxel, sub-voxel rest, moved)."""
    geo = tuple(n // 2 for n in a.shape)
    sm = ndimage.gaussian_filter(a, 1.0, mode="constant") if a.size > 1 else a
    peak = tuple(int(i) for i in np.unravel_index(int(np.argmax(sm)), a.shape))
    centroid = _centroid(a, geo)
    report.update(centroid=list(centroid), peak=list(peak))
    off_c = max(abs(c - g) for c, g in zip(centroid, geo))
    off_p = max(abs(p - g) for p, g in zip(peak, geo))
    if not recenter or off_c <= CENTRE_TOLERANCE or off_p <= CENTRE_TOLERANCE:
        return centroid, geo, (0.0,) * a.ndim, False
    if all(n > 3 and (p <= 1 or p >= n - 2) for p, n in zip(peak, a.shape)):
        _validate.warn(f"{name}: its peak {peak} is at a corner of the {a.shape} array: a PSF in FFT order (origin "
                       "at index 0)? Give it centred (numpy.fft.fftshift(psf)); it is used re-centred on that corner, "
                       "without the parts wrapped to the other corners", RuntimeWarning)
    core = np.clip(a - RECENTRE_LEVEL * a.max(), 0.0, None)  # the core above the level: tails do not pull it
    centroid = _centroid(core, peak)  # measured about the peak: the array centre is not the PSF's
    centroid = _centroid(core, tuple(int(round(c)) for c in centroid))
    report.update(centroid=list(centroid))
    ci = tuple(int(round(c)) for c in centroid)
    frac = tuple(c - i for c, i in zip(centroid, ci))
    notes.append(f"{name}: re-centred: its centroid {_fmt(centroid)} and peak {peak} are off the array centre "
                 f"{geo} by ({', '.join(f'{c - g:+.1f}' for c, g in zip(centroid, geo))}) voxels (per axis)")
    return centroid, ci, frac, True


def place(kernel: np.ndarray, work_shape: tuple[int, ...]) -> np.ndarray:
    """The kernel on a zero work grid (float32) with its centre voxel at index 0 (wrapped)."""
    if any(k > n for k, n in zip(kernel.shape, work_shape)):
        raise InputError(f"psf: kernel {kernel.shape} does not fit the work grid {work_shape}")
    out = np.zeros(work_shape, np.float32)
    idx = [(np.arange(k) - k // 2) % n for k, n in zip(kernel.shape, work_shape)]
    out[np.ix_(*idx)] = kernel
    return out


def otf(kernel: np.ndarray, work_shape: tuple[int, ...]) -> np.ndarray:
    """Real FFT (complex64, half spectrum) of the kernel centred at the origin of the work grid."""
    return _fft.rfftn(place(kernel, work_shape), overwrite_x=True).astype(np.complex64, copy=False)
