"""Input checks, channel handling and the edge models (work-grid geometry).

Edge models
-----------
``"non-circulant"`` (Bertero & Boccacci 2005)
    The object is estimated on a larger grid, ``image + psf_support - 1`` rounded up
    to a fast FFT length, of which the image is one box; data exist only in that box.
    The blur is then a true linear convolution of the extended object, nothing wraps
    around, and objects near (or partly beyond) the border are restored without the
    ringing that periodic or mirrored edges produce.
``"periodic"``
    The image is treated as one period (work grid = image shape, no padding): fastest,
    exact for data that really are periodic, rings at borders otherwise.
``"reflect"``
    The image is mirror-padded (half-sample symmetric) by half the PSF support on each
    side, rounded up to a fast length, processed periodically and cropped.

References
----------
M. Bertero and P. Boccacci, "A simple method for the reduction of boundary effects in
the Richardson-Lucy approach to image deconvolution", A&A 437, 369-374 (2005).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .. import _validate
from . import _fft
from ..errors import InputError, InputTypeError

EDGES = ("non-circulant", "periodic", "reflect")


#: Negative values down to this fraction of the maximum are FFT round-off (e.g. a convolved image), not data.
ROUND_OFF = 1e-5


def as_image(image: object, name: str = "image", allow_negative: bool = True) -> np.ndarray:
    """Check an image and return it as float32 (no copy when it already is float32)."""
    a = np.asarray(image)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise InputTypeError(f"{name}: expected a real numeric array, got dtype {a.dtype}")
    if np.iscomplexobj(a):
        raise InputTypeError(f"{name}: complex images are not supported (got {a.dtype})")
    if a.size == 0:
        raise InputError(f"{name}: empty array of shape {a.shape}")
    with np.errstate(over="ignore"):
        f = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(f).all():
        if a.dtype.kind == "f" and a.dtype.itemsize > 4 and np.isfinite(a).all():
            top = float(np.max(np.abs(a)))
            raise InputError(f"{name}: values up to {top:.3g} do not fit float32 (largest 3.4e38), which the "
                             "computation uses; rescale the data")
        raise InputError(_validate.not_finite(name, a))
    a = f
    if not allow_negative:
        mn = float(a.min())
        if 0 > mn >= -ROUND_OFF * max(float(a.max()), 0.0):  # FFT round-off of a computed image: clipped (a copy)
            return np.clip(a, 0, None)
        if mn < 0:
            raise InputError(
                f"{name}: Richardson-Lucy needs non-negative data, but the minimum is {mn:g}; subtract less "
                "background, clip with np.clip(image, 0, None), or pass read_noise= (Gaussian read noise, "
                "which allows values down to -read_noise**2)")
    return a


def check_edges(edges: str, allowed: Sequence[str] = EDGES) -> str:
    """The edge model's name, lower case (one of ``allowed``)."""
    return _validate.check_choice("edges", edges if not isinstance(edges, str) else edges.lower(), tuple(allowed))


def kernel_limit(edges: str, image_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The largest PSF each edge model can use, per axis.

    Non-circulant (and zero) edges see the whole linear blur: a PSF up to ``2 n - 1``
    voxels touches every image voxel from every other.  Mirror edges mirror at most
    ``n`` voxels on each side, so the same bound holds.  Periodic edges wrap around:
    the PSF is cropped to the image box ``n``.
    """
    if edges == "periodic":
        return tuple(int(n) for n in image_shape)
    return tuple(2 * int(n) - 1 for n in image_shape)


@dataclass(frozen=True)
class Geometry:
    """Where the image sits in the work grid.

    ``pad`` gives (before, after) mirror padding per axis (``"reflect"`` only); the
    data array given to the core then has shape ``image + pad``.  ``box`` is the
    slice of the work grid that holds the data (``"non-circulant"``: the image at the
    origin; otherwise the whole grid) and ``crop`` the slice of the work grid holding
    the image.
    """

    edges: str
    image_shape: tuple[int, ...]
    work_shape: tuple[int, ...]
    pad: tuple[tuple[int, int], ...]

    @property
    def data_shape(self) -> tuple[int, ...]:
        return tuple(n + a + b for n, (a, b) in zip(self.image_shape, self.pad))

    @property
    def box(self) -> tuple[slice, ...]:
        return tuple(slice(0, n) for n in self.data_shape)

    @property
    def full_box(self) -> bool:
        return self.data_shape == self.work_shape

    @property
    def crop(self) -> tuple[slice, ...]:
        return tuple(slice(a, a + n) for n, (a, _) in zip(self.image_shape, self.pad))

    def extend(self, data: np.ndarray) -> np.ndarray:
        """``data`` (of :attr:`data_shape`, in the box at the origin) filled out to the whole
        work grid, smoothly: across each margin its mirror image at the box's end fades
        (linearly) into its mirror image at the box's start, which the periodic grid places
        after the margin, so the grid has no jump at either border nor inside the margin
        (a margin wider than the box repeats its edge voxel beyond one mirror).  A new
        array; ``data`` itself when the box is the whole grid."""
        if self.full_box:
            return data
        out = np.empty(self.work_shape, data.dtype)
        filled = list(data.shape)
        out[tuple(slice(0, n) for n in filled)] = data
        for ax, (n, N) in enumerate(zip(data.shape, self.work_shape)):
            if N == n:
                continue
            j = np.arange(n, N)
            end, start = [slice(0, f) for f in filled], [slice(0, f) for f in filled]
            end[ax] = np.clip(2 * n - 1 - j, 0, n - 1)  # mirrored at the end: d[n-1], d[n-2], ...
            start[ax] = np.clip(N - 1 - j, 0, n - 1)  # mirrored at the start: ..., d[1], d[0]
            shape = [1] * data.ndim
            shape[ax] = N - n
            w = ((N - j) / (N - n + 1.0)).astype(data.dtype).reshape(shape)  # 1 -> 0 across the margin
            dst = [slice(0, f) for f in filled]
            dst[ax] = slice(n, N)
            a = out[tuple(end)]
            a -= out[tuple(start)]
            a *= w
            a += out[tuple(start)]
            out[tuple(dst)] = a
            filled[ax] = N
        return out

    def data(self, image: np.ndarray) -> np.ndarray:
        """The image as the core sees it (mirror-padded for ``"reflect"``)."""
        if any(a or b for a, b in self.pad):
            return np.pad(image, self.pad, mode="symmetric")
        return image


def geometry(edges: str, image_shape: tuple[int, ...], kernel_shape: tuple[int, ...],
             place: Sequence[tuple[int, int, int]] | None = None) -> Geometry:
    """Work-grid geometry for an edge model (see the module docstring).

    ``place`` (a brick of a bigger volume): per axis ``(start, stop, n)`` of the brick within a volume
    of ``n`` voxels.  With ``"reflect"``, along an axis where exactly one side of the brick is the
    volume's border, that side gets the whole volume's mirror margin (as far as the brick's grid
    allows, keeping the kernel's half-width on the other side), so that the border sees what it
    sees in the whole run; the grid's shape is the brick's own."""
    image_shape = tuple(int(n) for n in image_shape)
    zero = tuple((0, 0) for _ in image_shape)
    if edges == "periodic":
        return Geometry(edges, image_shape, image_shape, zero)
    if edges in ("non-circulant", "constant"):
        work = tuple(_fft.fast_len(n + k - 1) if n + k - 1 > 1 else 1 for n, k in zip(image_shape, kernel_shape))
        return Geometry(edges, image_shape, work, zero)
    if edges == "reflect":
        pad = []
        for i, (n, k) in enumerate(zip(image_shape, kernel_shape)):
            a, b = _reflect_margins(n, k)
            if place is not None and (a or b) and (place[i][0] == 0) != (place[i][1] == place[i][2]):
                a, b = _border_margins(n, k, a + b, place[i])
            pad.append((a, b))
        pad_t = tuple(pad)
        work = tuple(n + a + b for n, (a, b) in zip(image_shape, pad_t))
        return Geometry(edges, image_shape, work, pad_t)
    raise InputError(f"edges: unknown edge model {edges!r}")


def _reflect_margins(n: int, k: int) -> tuple[int, int]:
    """The mirror margins (before, after) of an axis of ``n`` voxels for a kernel of ``k``: half
    the kernel each, and the rest of a fast FFT length split between them."""
    p = k // 2
    if p == 0:
        return 0, 0
    p = min(p, n)  # 'symmetric' padding can mirror at most n voxels in one go
    e = _fft.fast_len(n + 2 * p) - n - 2 * p
    a, b = p + e // 2, p + e - e // 2
    if a > n or b > n:  # too much for one mirror: fall back to the minimum padding
        a = b = p
    return a, b


def _border_margins(n: int, k: int, total: int, place: tuple[int, int, int]) -> tuple[int, int]:
    """Margins of a brick (``total`` voxels in all) with one side at the volume's border: that
    side the whole volume's margin (at most ``total`` less half the kernel), the other the rest."""
    start, _, whole = place
    wa, wb = _reflect_margins(whole, k)
    border = min(wa if start == 0 else wb, total - min(k // 2, n), n)
    other = total - border
    if other > n:  # more than one mirror
        return _reflect_margins(n, k)
    return (border, other) if start == 0 else (other, border)
