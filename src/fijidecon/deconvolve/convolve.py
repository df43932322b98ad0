"""Convolution with a PSF or smoothing kernel (Imspector's "Linear ... convolve").

Smoothing is the simplest way to improve a very noisy image: the blur is not removed,
it is increased, but the noise drops a lot.  Use a Gaussian kernel of the width you
can afford to lose, or the PSF itself (a matched filter).
"""

from __future__ import annotations

import numpy as np

from . import _edges, _fft, _otf


def convolve(image: object, psf: object, *, edges: str = "reflect", recenter: bool = True,
             psf_threshold: float = 1e-4) -> np.ndarray:
    """Convolve an image with a kernel (PSF), by real FFTs.

    Parameters
    ----------
    image:
        2D (Y, X) or 3D (Z, Y, X) array, or 4D (C, Z, Y, X) with one PSF per channel
        (see :func:`fijidecon.deconvolve._edges.split_channels`).  Any real dtype;
        computed in float32.
    psf:
        The kernel, same dimensionality, sampled on the image's voxel grid, centred
        at ``n // 2``.  It is normalised to sum 1 (so the total intensity is kept),
        cropped to its support and re-centred by its centroid (see
        :func:`fijidecon.deconvolve._otf.prepare_psf`).
    edges:
        ``"reflect"`` (mirror the image at its borders, the default),
        ``"periodic"`` (wrap around) or ``"constant"`` (zero outside the image).
    recenter:
        Move the kernel's centroid to its centre voxel first (``False`` uses ``n // 2``).
    psf_threshold:
        Relative level defining the kernel's support.

    Returns
    -------
    numpy.ndarray
        float32, the image's shape.

    Raises
    ------
    ValueError
        NaN/inf in the inputs, an all-zero kernel, a kernel whose support is bigger
        than the image, mismatched dimensionality, unknown ``edges``.

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
    edges = _edges.check_edges(edges, ("reflect", "periodic", "constant"))
    img = _edges.as_image(image)
    pairs, channels = _edges.split_channels(img, psf)
    outs = []
    with _fft.reuse_memory():
        for i, (im, p) in enumerate(pairs):
            name = f"psf[{i}]" if channels else "psf"
            prep = _otf.prepare_psf(p, threshold=psf_threshold, recenter=recenter, name=name)
            _edges.check_support(prep.kernel.shape, im.shape, name)
            outs.append(_convolve_one(im, prep.kernel, edges))
    return np.stack(outs) if channels else outs[0]


def _convolve_one(im: np.ndarray, kernel: np.ndarray, edges: str) -> np.ndarray:
    geo = _edges.geometry(edges, im.shape, kernel.shape)
    data = geo.data(im)
    if not geo.full_box:
        work = np.zeros(geo.work_shape, np.float32)
        work[geo.box] = data
        data = work
    spec = _fft.rfftn(data)
    spec *= _otf.otf(kernel, geo.work_shape)
    out = _fft.irfftn(spec, geo.work_shape, overwrite_x=True)
    return np.ascontiguousarray(out[geo.crop], dtype=np.float32)
