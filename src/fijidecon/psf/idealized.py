"""Idealized PSFs: a Gaussian or a Lorentzian peak of given FWHM, in 1, 2 or 3 dimensions.

These are the Imspector recipes ("Creating an idealized PSF" in the Imspector
deconvolution notes), with the stack offset at minus half the stack so that the origin
is the centre:

* Gaussian   ``2 ** (-(x² + y² + z²) / (a/2)²)``   — FWHM ``a``;
* Lorentzian ``1 / ((x² + y² + z²) / (a/2)² + 1)`` — FWHM ``a`` along each axis.

Here each axis may have its own FWHM (``a`` becomes ``a_i`` inside the sum), all
lengths are in one physical unit of your choice (the FWHM and the voxel size must use
the same unit), and the peak sits at the centre given by ``centre``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ._grid import (
    axis_coords,
    check_centre,
    check_dtype,
    check_normalize,
    check_shape,
    normalize_array,
    per_axis,
    check_oversample,
    MAX_EVALUATIONS,
)
from .. import _validate
from .._validate import check_count, check_memory

__all__ = ["gaussian", "lorentzian"]


def _subvoxel_offsets(oversample: Any) -> np.ndarray:
    m = check_oversample(oversample)
    return (np.arange(m) - (m - 1) / 2.0) / m


def _check_size(shape: tuple[int, ...], m: int, bytes_per_voxel: float, what: str) -> None:
    """Refuse, before allocating, a grid or a sub-sample count beyond memory or reason."""
    voxels = float(np.prod(shape, dtype=np.float64))
    evaluations = voxels * (1.0 if what == "Gaussian" else float(m) ** len(shape))  # the Gaussian is separable
    name = "oversample" if m > 1 and voxels * bytes_per_voxel <= 2.0**30 else "shape"
    check_count(name, evaluations, MAX_EVALUATIONS, f"the number of {what} evaluations ({shape} voxels x "
                f"{m}**{len(shape)} sub-samples)", "use a smaller shape or oversample")
    check_memory("shape", voxels * bytes_per_voxel, f"a {shape} {what} PSF (float64 work arrays)",
                 "use a smaller shape")


#: FWHM / voxel size outside this range on every axis (below) or on any axis (above) warns: no PSF is
#: sampled that way, and lengths in two units (a FWHM in µm, voxels in nm) are 1000x off.
FWHM_VOXELS = (0.05, 1000.0)


def _warn_units(fwhm: Sequence[float], voxel_size: Sequence[float]) -> None:
    """A ``UserWarning`` when ``fwhm`` and ``voxel_size`` look like lengths in two units (as the
    physical models warn about their wavelength and voxel size)."""
    ratios = [a / d for a, d in zip(fwhm, voxel_size)]
    if all(r < FWHM_VOXELS[0] for r in ratios) or any(r > FWHM_VOXELS[1] for r in ratios):
        each = ", ".join(f"{r:.3g}" for r in ratios)
        what = "far narrower than one voxel" if all(r < FWHM_VOXELS[0] for r in ratios) else "thousands of voxels wide"
        _validate.warn(f"fwhm: {tuple(fwhm)} is ({each}) voxels of voxel_size {tuple(voxel_size)} (a PSF {what}): "
                       "are fwhm and voxel_size in one unit?", UserWarning)


def _prepare(shape, fwhm, voxel_size, centre, normalize, dtype, oversample, what="Gaussian", bytes_per_voxel=24.0):
    shape = check_shape(shape)
    nd = len(shape)
    fwhm_t = per_axis(fwhm, nd, "fwhm")
    vox_t = per_axis(voxel_size, nd, "voxel_size")
    _warn_units(fwhm_t, vox_t)
    centre = check_centre(centre)
    normalize = check_normalize(normalize)
    dt = check_dtype(dtype)
    sub = _subvoxel_offsets(oversample)
    _check_size(shape, len(sub), bytes_per_voxel, what)
    # scaled coordinates u_i = x_i / (a_i / 2) at every sub-voxel position, shape (n_i, m)
    scaled = []
    for n, a, d in zip(shape, fwhm_t, vox_t):
        x = axis_coords(n, d, centre)[:, None] + sub[None, :] * d
        scaled.append(x / (a / 2.0))
    return shape, scaled, normalize, dt


def gaussian(
    shape: Sequence[int],
    fwhm: float | Sequence[float],
    voxel_size: float | Sequence[float] = 1.0,
    *,
    centre: str = "fft",
    normalize: str | None = "sum",
    oversample: int = 1,
    dtype: Any = np.float32,
) -> np.ndarray:
    """A Gaussian PSF of given full width at half maximum on a 1-, 2- or 3-D grid.

    The value at a voxel whose centre is at ``x`` (a vector of physical offsets from the
    origin) is ``2 ** -sum_i (x_i / (a_i / 2))²`` before normalization, where ``a_i``
    is the FWHM along axis ``i`` — the Imspector formula, so the profile along each axis
    falls to half its peak at ``±a_i / 2``.

    Parameters
    ----------
    shape : tuple of int
        Output shape in numpy order, ``(nx,)``, ``(ny, nx)`` or ``(nz, ny, nx)``.
    fwhm : float or sequence of float
        Full width at half maximum, one value for all axes or one per axis (numpy order),
        in the same physical unit as ``voxel_size``.
    voxel_size : float or sequence of float, default 1.0
        Voxel size per axis (numpy order), same unit as ``fwhm``.  With the default, the
        FWHM is in voxels.
    centre : {"fft", "middle"}, default "fft"
        Where the origin (the peak) is: ``"fft"`` at index ``n // 2`` on every axis (the
        convention of Diffraction PSF 3D and of the deconvolution functions;
        ``numpy.fft.ifftshift`` moves it to index 0), ``"middle"`` at ``(n - 1) / 2``
        (between two voxels for even ``n``; symmetric array).
    normalize : {"sum", "peak", None}, default "sum"
        ``"sum"``: the voxels sum to 1; ``"peak"``: the maximum is 1 (Imspector's
        normalization); ``None``: the raw formula (1 at the origin).
    oversample : int, default 1
        Odd number of sub-samples per voxel and axis.  With ``oversample > 1`` each voxel
        is the mean of the formula over ``oversample**ndim`` points spread evenly over
        the voxel (an approximation of the voxel integral).
    dtype : float dtype, default float32
        Output dtype; the computation is done in float64.

    Returns
    -------
    numpy.ndarray
        Array of ``shape`` and ``dtype``.

    Raises
    ------
    fijidecon.errors.InputError, fijidecon.errors.InputTypeError
        Non-positive or non-finite ``fwhm``/``voxel_size``, a string or bool for a
        number, a bad ``shape``, ``centre``, ``normalize``, ``oversample`` or a non-float
        ``dtype``; more than ``MAX_EVALUATIONS`` (4e9) evaluations of the formula.  The
        message starts with the parameter's name.
    fijidecon.errors.ResourceError
        The grid would not fit the memory budget
        (:func:`fijidecon.deconvolve.default_memory_limit`); checked before allocating.

    References
    ----------
    Abberior Instruments, *Imspector* documentation, "Image Deconvolution — Creating an
    idealized PSF" (formulas ``2^(-(x^2+y^2)/(a/2)^2)`` and ``1/((x^2+y^2+z^2)/(a/2)^2+1)``).

    Example
    -------
    >>> psf = gaussian((32, 64, 64), fwhm=(600.0, 250.0, 250.0), voxel_size=(200.0, 65.0, 65.0))
    >>> psf.shape, psf.dtype, round(float(psf.sum()), 4)
    ((32, 64, 64), dtype('float32'), 1.0)
    >>> tuple(int(i) for i in np.unravel_index(psf.argmax(), psf.shape))
    (16, 32, 32)
    """
    shape, scaled, normalize, dt = _prepare(shape, fwhm, voxel_size, centre, normalize, dtype, oversample)
    # separable: product of 1-D profiles, each averaged over its sub-samples
    out = np.ones((), dtype=np.float64)
    for k, u in enumerate(scaled):
        prof = np.exp2(-(u * u)).mean(axis=1)
        out = np.multiply.outer(out, prof) if k else prof
    out = np.array(out, dtype=np.float64, copy=True).reshape(shape)
    normalize_array(out, normalize, "Gaussian")
    return out.astype(dt, copy=False)


def lorentzian(
    shape: Sequence[int],
    fwhm: float | Sequence[float],
    voxel_size: float | Sequence[float] = 1.0,
    *,
    centre: str = "fft",
    normalize: str | None = "sum",
    oversample: int = 1,
    dtype: Any = np.float32,
) -> np.ndarray:
    """A Lorentzian (Cauchy) PSF of given full width at half maximum on a 1-, 2- or 3-D grid.

    The value at a voxel centred at ``x`` is ``1 / (sum_i (x_i / (a_i / 2))² + 1)`` before
    normalization (the Imspector formula), so the profile along each axis through the
    origin falls to half its peak at ``±a_i / 2``.  Its tails decay as ``1/r²``, so with
    ``normalize="sum"`` the result depends noticeably on the grid size (the truncated
    tails are not in the sum).

    Parameters
    ----------
    shape : tuple of int
        Output shape in numpy order, ``(nx,)``, ``(ny, nx)`` or ``(nz, ny, nx)``.
    fwhm : float or sequence of float
        Full width at half maximum, one value or one per axis (numpy order), same unit
        as ``voxel_size``.
    voxel_size : float or sequence of float, default 1.0
        Voxel size per axis (numpy order).
    centre : {"fft", "middle"}, default "fft"
        Origin at index ``n // 2`` (``"fft"``) or at ``(n - 1) / 2`` (``"middle"``).
    normalize : {"sum", "peak", None}, default "sum"
        Sum 1, maximum 1, or the raw formula.
    oversample : int, default 1
        Odd number of sub-samples per voxel and axis (voxel averaging).
    dtype : float dtype, default float32
        Output dtype; the computation is done in float64.

    Returns
    -------
    numpy.ndarray
        Array of ``shape`` and ``dtype``.

    Raises
    ------
    ValueError, TypeError
        As :func:`gaussian`.

    References
    ----------
    Abberior Instruments, *Imspector* documentation, "Image Deconvolution — Creating an
    idealized PSF".

    Example
    -------
    >>> psf = lorentzian((64, 64), fwhm=0.25, voxel_size=0.05, normalize="peak")
    >>> float(psf[32, 32]), round(float(psf[32, 32 + 2]), 3)   # 2 voxels = 0.1 = 0.4 FWHM
    (1.0, 0.61)
    """
    shape, scaled, normalize, dt = _prepare(shape, fwhm, voxel_size, centre, normalize, dtype, oversample,
                                            "Lorentzian", 40.0)
    nd = len(shape)
    m = scaled[0].shape[1]
    # accumulate over the m**nd sub-sample positions (memory stays at one array of shape)
    out = np.zeros(shape, dtype=np.float64)
    for idx in np.ndindex(*(m,) * nd):
        r2 = np.zeros((1,) * nd, dtype=np.float64)
        for k, u in enumerate(scaled):
            view = [1] * nd
            view[k] = shape[k]
            r2 = r2 + (u[:, idx[k]] ** 2).reshape(view)
        out += 1.0 / (r2 + 1.0)
    out /= m**nd
    out = np.array(out, dtype=np.float64, copy=True)
    normalize_array(out, normalize, "Lorentzian")
    return out.astype(dt, copy=False)
