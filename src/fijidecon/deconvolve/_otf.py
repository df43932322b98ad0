"""PSF preparation and the optical transfer function (OTF), computed once per run.

:func:`prepare_psf` turns a user PSF into the kernel every algorithm uses:

1. checked (finite, real, not all zero); negative values (background-subtracted
   measurements) are set to zero with a warning;
2. normalised to sum 1 (so deconvolution and convolution preserve flux);
3. cropped to its *support*: the bounding box of the voxels above
   ``threshold * max`` (default 1e-4), taken symmetric about the centre, so that the
   work grid of the non-circulant method stays ``image + support - 1``;
4. re-centred by its centroid with sub-voxel precision (cubic spline shift) so that the
   centroid sits exactly on the centre voxel; a warning is issued if the centroid was
   more than one voxel away from the array centre ``n // 2`` (an off-centre PSF shifts
   every result by the same amount).

:func:`otf` places the kernel on a work grid with its centre at the origin and returns
its real FFT (complex64).

Example
-------
>>> import numpy as np
>>> from fijidecon.deconvolve._otf import prepare_psf
>>> z, y, x = np.mgrid[-8:9, -8:9, -8:9]
>>> p = prepare_psf(np.exp(-(x**2 + y**2 + z**2) / 4.0))
>>> p.kernel.shape, float(p.kernel.sum()).__round__(5)
((13, 13, 13), 1.0)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from . import _fft

#: Sub-voxel offsets of the centroid below this (voxels) are not corrected.
SHIFT_MIN = 0.05


@dataclass(frozen=True)
class PreparedPSF:
    """A PSF ready for the FFT core.

    Attributes
    ----------
    kernel:
        float32, sum 1, odd size on every axis, centroid on the centre voxel.
    centroid:
        Centroid of the input PSF (index units, input array coordinates).
    shift:
        Sub-voxel shift applied (``centre - centroid`` per axis, voxels).
    """

    kernel: np.ndarray
    centroid: tuple[float, ...]
    shift: tuple[float, ...]

    @property
    def centre(self) -> tuple[int, ...]:
        return tuple(n // 2 for n in self.kernel.shape)


def check_psf(psf: object, name: str = "psf") -> np.ndarray:
    """Validate a PSF array and return it as float64 (a copy, input untouched)."""
    a = np.asarray(psf)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise TypeError(f"{name}: expected a real numeric array, got dtype {a.dtype}")
    if np.iscomplexobj(a):
        raise TypeError(f"{name}: complex PSFs are not supported (got {a.dtype})")
    if a.ndim < 1 or a.size == 0:
        raise ValueError(f"{name}: empty array of shape {a.shape}")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    if a.min() < 0:
        neg = -a.min() / max(a.max(), np.finfo(float).tiny)
        warnings.warn(f"{name}: negative values (down to {neg:.2g} of the maximum) were set to zero",
                      RuntimeWarning, stacklevel=3)
        a = np.clip(a, 0, None)
    s = a.sum()
    if not s > 0:
        raise ValueError(f"{name}: the PSF is all zero (sum {s:g}); it must have a positive sum")
    return a / s


def prepare_psf(psf: object, *, threshold: float = 1e-4, recenter: bool = True, name: str = "psf") -> PreparedPSF:
    """Check, normalise, crop to support and re-centre a PSF (see the module docstring).

    Parameters
    ----------
    psf:
        The PSF, any real dtype, centred near index ``n // 2`` on each axis.
    threshold:
        Voxels at or below ``threshold * max`` are outside the support.  0 keeps every
        non-zero voxel.
    recenter:
        Shift the PSF so that its centroid is on the centre voxel (sub-voxel).  With
        ``False`` the PSF's own centre ``n // 2`` is used as the origin.

    Returns
    -------
    PreparedPSF
    """
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold: must be in [0, 1), got {threshold!r}")
    a = check_psf(psf, name)
    mask = a > threshold * a.max()
    w = np.where(mask, a, 0.0)
    grids = np.indices(a.shape, sparse=True)
    centroid = tuple(float((w * g).sum() / w.sum()) for g in grids)
    geo = tuple(n // 2 for n in a.shape)
    if recenter:
        ci = tuple(int(round(c)) for c in centroid)
        frac = tuple(c - i for c, i in zip(centroid, ci))
        if max(abs(c - g) for c, g in zip(centroid, geo)) > 1.0:
            warnings.warn(
                f"{name}: its centroid {tuple(round(c, 2) for c in centroid)} is off the array centre {geo}; "
                "it was re-centred (results are aligned with the centroid)", RuntimeWarning, stacklevel=3)
    else:
        ci, frac = geo, (0.0,) * a.ndim
    need_shift = any(abs(f) > SHIFT_MIN for f in frac)
    # half widths of the symmetric box around ci that holds the support
    idx = np.nonzero(mask)
    half = []
    for ax in range(a.ndim):
        lo, hi = int(idx[ax].min()), int(idx[ax].max())
        h = max(ci[ax] - lo, hi - ci[ax], 0) + (1 if need_shift and a.shape[ax] > 1 else 0)
        half.append(h)
    box = np.zeros(tuple(2 * h + 1 for h in half))
    src, dst = [], []
    for ax in range(a.ndim):
        s0, s1 = ci[ax] - half[ax], ci[ax] + half[ax] + 1
        a0, a1 = max(s0, 0), min(s1, a.shape[ax])
        src.append(slice(a0, a1))
        dst.append(slice(a0 - s0, a1 - s0))
    box[tuple(dst)] = a[tuple(src)]
    if need_shift:
        box = ndimage.shift(box, [-f for f in frac], order=3, mode="constant", cval=0.0)
        np.clip(box, 0, None, out=box)
    box /= box.sum()
    shift = tuple(g - c for g, c in zip(geo, centroid)) if recenter else (0.0,) * a.ndim
    return PreparedPSF(box.astype(np.float32), centroid, shift)


def place(kernel: np.ndarray, work_shape: tuple[int, ...]) -> np.ndarray:
    """The kernel on a zero work grid (float32) with its centre voxel at index 0 (wrapped)."""
    if any(k > n for k, n in zip(kernel.shape, work_shape)):
        raise ValueError(f"psf: kernel {kernel.shape} does not fit the work grid {work_shape}")
    out = np.zeros(work_shape, np.float32)
    idx = [(np.arange(k) - k // 2) % n for k, n in zip(kernel.shape, work_shape)]
    out[np.ix_(*idx)] = kernel
    return out


def otf(kernel: np.ndarray, work_shape: tuple[int, ...]) -> np.ndarray:
    """Real FFT (complex64, half spectrum) of the kernel centred at the origin of the work grid."""
    return _fft.rfftn(place(kernel, work_shape), overwrite_x=True).astype(np.complex64, copy=False)
