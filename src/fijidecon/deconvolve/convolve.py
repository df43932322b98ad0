"""Convolution with a PSF or smoothing kernel (Imspector's "Linear ... convolve").

Smoothing is the simplest way to improve a very noisy image: the blur is not removed,
it is increased, but the noise drops a lot.  Use a Gaussian kernel of the width you
can afford to lose, or the PSF itself (a matched filter).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import _validate
from . import _bricks, _edges, _fft, _hyper, _otf


def convolve(image: object, psf: object, *, edges: str = "reflect", recenter: bool = True,
             psf_threshold: float = 1e-4, axes: str | None = None, voxel_size: Sequence[float] | None = None,
             psf_voxel_size: Sequence[float] | None = None, memory_limit: Any = None,
             bricks: Sequence[int] | None = None, halo: Any = None) -> Any:
    """Convolve an image with a kernel (PSF), by real FFTs.

    Parameters
    ----------
    image:
        2D (Y, X), 3D (Z, Y, X), or a hyperstack with ``axes`` (e.g. ``"TZCYX"``); an
        ``xarray.DataArray`` with named dims.  Any real dtype; computed in float32.
    psf:
        The kernel of the volume's dimensionality, any size and parity, origin at
        ``n // 2`` (one for every channel, a stack with a leading channel axis, or a
        list); sampled on the image's voxel grid unless ``psf_voxel_size`` says
        otherwise.  It is normalised to sum 1 (so the total intensity is kept), cleaned
        of a camera offset, cropped to its support and to ``2 n - 1`` (``n`` for
        periodic edges) and re-centred only if it is off by more than half a voxel (see
        :func:`fijidecon.deconvolve._otf.prepare_psf`; changes are logged on the
        ``fijidecon`` logger).
    edges:
        ``"reflect"`` (mirror the image at its borders, the default),
        ``"periodic"`` (wrap around) or ``"constant"`` (zero outside the image).
    recenter:
        Move a kernel that is off-centre by more than half a voxel (``False``: never).
    psf_threshold:
        Relative level defining the kernel's support.
    axes:
        Letters of the image's axes (``TCZYX``, any order); default by dimensionality
        ``YX``, ``ZYX``, ``CZYX``, ``TCZYX``.
    voxel_size, psf_voxel_size:
        (Z, Y, X) or (Y, X) spacings of the image and of the kernel, same length unit;
        when both are given and differ, the kernel is resampled to the image's.
        ``psf_voxel_size`` may be one spacing per kernel (a list) with one kernel per channel.
    memory_limit, bricks, halo:
        As for :func:`fijidecon.deconvolve.richardson_lucy`: a volume over the budget is
        convolved in bricks (exact with the default halo, half the kernel or more).
        A ``dask.array.Array`` image gives a lazy Dask array.

    Returns
    -------
    numpy.ndarray, xarray.DataArray or dask.array.Array
        float32, the image's shape and axes; never negative when the image and the
        kernel are not (the FFT's round-off below zero is set to 0).

    Raises
    ------
    ValueError, TypeError
        NaN/inf in the inputs, an all-zero kernel, mismatched dimensionality or
        channels, bad axes, unknown ``edges``.

    References
    ----------
    Imspector documentation, "Image Deconvolution": smoothing by
    Analysis/Deconvolution/Linear with direction *convolve*.

    Example
    -------
    >>> import numpy as np
    >>> from fijidecon.deconvolve import convolve
    >>> img = np.zeros((32, 32), np.float32); img[16, 16] = 1
    >>> y, x = np.mgrid[-5:6, -5:6]
    >>> out = convolve(img, np.exp(-(x**2 + y**2) / 4.0), edges="periodic")
    >>> out.dtype, round(float(out.sum()), 4)
    (dtype('float32'), 1.0)
    """
    voxel_size, psf_voxel_size = _hyper.coords_voxel_sizes(image, psf, voxel_size, psf_voxel_size)
    edges = _edges.check_edges(edges, ("reflect", "periodic", "constant"))
    if _bricks.is_dask(image):
        return _lazy(image, psf, axes, edges, psf_threshold, recenter, voxel_size, psf_voxel_size, memory_limit,
                     bricks, halo)
    layout, vols = _hyper.split(image, psf, axes)
    preps = _hyper.prepare_psfs(layout, vols, edges, threshold=psf_threshold, recenter=recenter,
                                voxel_size=voxel_size, psf_voxel_size=psf_voxel_size, flat_ok=True)
    _warn_moved(preps)
    plans = _bricks.plan_volumes("convolve", layout, vols, preps, {"edges": edges}, memory_limit, bricks, halo,
                                 np.asarray(image).nbytes)
    with _fft.reuse_memory():
        outs = []
        for v, p, plan in zip(vols, preps, plans):
            if plan is None:
                outs.append(_convolve_one(v.data, p.kernel, edges))
                continue
            _hyper.log.info(f"convolve: bricked: {plan.describe()}")
            outs.append(_bricks.run_numpy(v.data, plan, _brick_fn(p, edges), _bricks.Decisions()))
    return layout.merge(outs, method="convolve")


def _warn_moved(preps: Sequence[Any]) -> None:
    """A warning when a kernel was re-centred: a convolution with a kernel off its centre is often a
    deliberate shift, which ``scipy.ndimage.convolve`` and ImageJ's Convolve keep (a fresh user's one-voxel
    shift kernel returned the image unshifted, with only a logged note)."""
    moved = [p.report.get("shift") for p in preps if p.report.get("recentred")]
    if moved:
        _validate.warn(f"psf: re-centred: its peak and centroid were off its centre voxel (n // 2), so it was moved "
                       f"by ({', '.join(f'{v:+.2f}' for v in moved[0])}) voxels before convolving; give "
                       "recenter=False to convolve with the kernel as given (a shift kernel)", UserWarning)


def _brick_fn(prep: Any, edges: str) -> Any:
    return lambda data, dec, place: _convolve_one(data, prep.kernel, edges)  # exact within its halo: no place


def _lazy(image, psf, axes, edges, psf_threshold, recenter, voxel_size, psf_voxel_size, memory_limit, bricks, halo):
    """A Dask array in: a lazy Dask array out (one task per brick and (T, C) volume)."""
    lv, means = _bricks.lazy_volumes(image, psf, axes)
    vol_shape = tuple(lv.canon.shape[2:])
    preps = _bricks.lazy_preps(lv, edges, psf_threshold, recenter, voxel_size, psf_voxel_size, flat_ok=True)
    plans = _bricks.lazy_plans("convolve", vol_shape, preps, {"edges": edges}, memory_limit, bricks, halo)
    return _bricks.lazy_run(lv, means, preps, plans, lambda p: _brick_fn(p, edges),
                            lambda *a: (_bricks.Decisions(), None))


def _convolve_one(im: np.ndarray, kernel: np.ndarray, edges: str) -> np.ndarray:
    geo = _edges.geometry(edges, im.shape, kernel.shape)
    data = geo.data(im)
    if not geo.full_box:
        work = np.zeros(geo.work_shape, np.float32)
        work[geo.box] = data
        data = work
    spec = _fft.rfftn(data)
    spec *= _otf.otf(kernel, geo.work_shape)
    out = np.ascontiguousarray(_fft.irfftn(spec, geo.work_shape, overwrite_x=True)[geo.crop], dtype=np.float32)
    if kernel.min() >= 0 and im.min() >= 0:  # non-negative in, non-negative out: no FFT round-off below 0
        np.maximum(out, 0, out=out)  # (a simulation's np.random.poisson refuses a mean of -2e-6)
    return out
