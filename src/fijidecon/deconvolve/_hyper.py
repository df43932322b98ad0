"""Hyperstacks: any axis order in, each (T, C) volume deconvolved with its channel's PSF, same axes out.

Every deconvolution function takes its image through :func:`split` and gives its
result back through :meth:`Layout.merge`:

* the image is a numpy array with ``axes`` (letters from ``TCZYX`` in any order, Y and X
  required; default by dimensionality: ``YX``, ``ZYX``, ``CZYX``, ``TCZYX``) or an
  ``xarray.DataArray`` whose dimension names say the axes (``t``/``time``,
  ``c``/``ch``/``channel``, ``z``/``pln``, ``y``/``row``, ``x``/``col``);
* the PSF is one PSF for every channel (the volume's dimensionality), one more leading
  axis with one PSF per channel, a list/tuple of per-channel PSF arrays (a nested list
  of numbers is one PSF, as numpy reads it), or a DataArray with a ``c`` dimension;
* the result has the input's axes, in the input's order (a DataArray with the input's
  dims, coords and attrs for DataArray input).

Pure numpy (xarray is used only when the caller passes a DataArray).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .. import _validate
from . import _edges
from ..errors import InputError, InputTypeError

log = logging.getLogger("fijidecon.deconvolve")

#: Dimension names understood on DataArrays (pyimagej's names included).
DIM_ALIASES = {
    "t": "T", "time": "T", "c": "C", "ch": "C", "channel": "C", "z": "Z", "pln": "Z", "plane": "Z",
    "y": "Y", "row": "Y", "x": "X", "col": "X",
}
DEFAULT_AXES = {2: "YX", 3: "ZYX", 4: "CZYX", 5: "TCZYX"}


def _is_xarray(obj: Any) -> bool:
    return type(obj).__name__ == "DataArray" and hasattr(obj, "dims") and hasattr(obj, "values")


def _dims_to_axes(dims: Sequence[Any], name: str) -> str:
    out = []
    for d in dims:
        a = DIM_ALIASES.get(str(d).lower())
        if a is None:
            raise InputError(f"{name}: unknown dimension {d!r}; name dims t, c, z, y, x (or time, channel, ...)")
        out.append(a)
    return "".join(out)


def coords_voxel_sizes(image: Any, psf: Any, voxel_size: Any, psf_voxel_size: Any) -> tuple[Any, Any]:
    """``(voxel_size, psf_voxel_size)``, each taken from a DataArray's coords when not given: the steps of
    its Z/Y/X coordinates, when every spatial one has a step and the array a length unit (index
    coordinates without one are no voxel size).  The PSF's is converted to the image's unit.  A note
    (logged) says what was taken."""
    from ..calibration import dataarray_calibration

    def of(a: Any, name: str) -> Any:
        if not _is_xarray(a):
            return None
        cal = dataarray_calibration(a, _dims_to_axes(a.dims, name))
        vol = "".join(x for x in "ZYX" if x in cal.axes)
        if not cal.has_length_unit() or not all(x in dict(cal.spacing) for x in vol):
            return None
        return cal, vol

    img, ker = (of(image, "image") if voxel_size is None else None), (of(psf, "psf") if psf_voxel_size is None
                                                                        else None)
    if img is not None:
        voxel_size = img[0].voxel_size(img[1])
        log.info("voxel_size %s (%s) taken from the image's coords", voxel_size, img[0].unit)
    if ker is not None:
        unit = img[0].unit if img is not None else None
        psf_voxel_size = ker[0].voxel_size(ker[1], unit=unit)
        log.info("psf_voxel_size %s (%s) taken from the PSF's coords", psf_voxel_size, unit or ker[0].unit)
    return voxel_size, psf_voxel_size


@dataclass(frozen=True)
class Volume:
    """One (T, C) volume: its index in (T, C), the data (float32, (Z, Y, X) or (Y, X)) and its PSF."""

    t: int
    c: int
    data: np.ndarray
    psf: Any

    @property
    def label(self) -> str:
        return f"t={self.t}, c={self.c}"


@dataclass(frozen=True)
class Layout:
    """How the input's axes map to (T, C, volume axes), to put results back."""

    axes: str
    shape: tuple[int, ...]
    vol_axes: str
    n_t: int
    n_c: int
    template: Any = None  # the input DataArray, if any
    scale: float = 1.0  # the volumes hold the image times this (extreme values); merge divides it out

    @property
    def volumes(self) -> int:
        return self.n_t * self.n_c

    @property
    def single(self) -> bool:
        """Whether there is one volume and no T/C axis (results are then plain volumes)."""
        return self.volumes == 1 and "T" not in self.axes and "C" not in self.axes

    def merge(self, outputs: Sequence[np.ndarray], dtype: Any = np.float32, method: str = "result") -> Any:
        """Stack per-volume outputs (in :func:`split`'s order) back into the input's axes,
        undo the internal scale, and check the result is finite.

        Raises
        ------
        NumericalError
            When the result holds NaN or infinite values (never returned silently).
        """
        outputs = [self.finish(o, method) for o in outputs]
        if self.single and self.template is None:
            return outputs[0]
        vol_shape = outputs[0].shape
        canon = np.empty((self.n_t, self.n_c) + vol_shape, dtype)
        for i, o in enumerate(outputs):
            canon[i // self.n_c, i % self.n_c] = o
        present = [a for a in "TC" if a in self.axes] + list(self.vol_axes)
        canon = canon.reshape(tuple(canon.shape[k] for k, a in enumerate("TC") if a in self.axes) + vol_shape)
        order = [present.index(a) for a in self.axes]
        out = np.ascontiguousarray(np.transpose(canon, order))
        if self.template is not None:
            return self.template.copy(data=out)
        return out

    def split_like(self, array: Any, name: str) -> list[np.ndarray]:
        """Split another array of the input's shape (e.g. a ``start`` estimate) into volumes."""
        if not (_is_xarray(array) or isinstance(array, np.ndarray) or type(array).__name__ == "Array"):
            raise InputTypeError(f"{name}: expected a previous result or an array of the image's shape "
                                 f"{self.shape}, got {_validate.got(array)}")
        a = np.asarray(array.values if _is_xarray(array) else array)
        if a.shape != self.shape:
            raise InputError(f"{name}: shape {a.shape} differs from the image's {self.shape}")
        return list(_volumes_of(a, self.axes, self.vol_axes))


    def finish(self, out: np.ndarray, method: str = "result") -> np.ndarray:
        """One volume's output with the internal scale undone, checked finite."""
        if self.scale != 1.0:
            with np.errstate(over="ignore"):
                out = (out.astype(np.float64) / self.scale).astype(np.float32)
        check_finite(out, method)
        return out


#: Data whose largest magnitude is above this (or below its inverse) are scaled for the float32 FFTs.
SAFE_RANGE = 1e20


def data_scale(img: np.ndarray) -> float:
    """1, or the factor that brings the largest magnitude of ``img`` to 1 when it is beyond
    :data:`SAFE_RANGE` either way (float32 FFT sums would overflow or lose everything)."""
    m = float(np.max(np.abs(img))) if img.size else 0.0
    if m > SAFE_RANGE or 0.0 < m < 1.0 / SAFE_RANGE:
        return 1.0 / m
    return 1.0


def check_finite(out: np.ndarray, method: str) -> None:
    """Raise :class:`~fijidecon.errors.NumericalError` when ``out`` holds NaN or infinity."""
    if not np.isfinite(out).all():
        from ..errors import NumericalError

        bad = int(np.size(out) - np.count_nonzero(np.isfinite(out)))
        raise NumericalError(f"{method}: {bad} of {np.size(out)} result values are NaN or infinite; the likely cause "
                             "is data or a PSF beyond float32's range (about 1e38) or a regularization of 0 - "
                             "rescale the data or check the PSF")


def _volumes_of(a: np.ndarray, axes: str, vol_axes: str):
    order = [axes.index(x) for x in "TC" if x in axes] + [axes.index(x) for x in vol_axes]
    canon = np.transpose(a, order)
    lead = tuple(a.shape[axes.index(x)] if x in axes else 1 for x in "TC")
    canon = canon.reshape(lead + canon.shape[len(order) - len(vol_axes):])
    for t in range(lead[0]):
        for c in range(lead[1]):
            yield canon[t, c]


def image_axes(image: Any, axes: str | None, psf: Any = None, name: str = "image") -> tuple[np.ndarray, str, Any]:
    """The image as an array, its axes (checked) and the DataArray template (or None)."""
    _validate.refuse_file_name(name, image)
    template = None
    if _is_xarray(image):
        template = image
        dim_axes = _dims_to_axes(image.dims, name)
        if axes is not None and _validate.check_axes("axes", axes, image.ndim) != dim_axes:
            raise InputError(f"axes: {axes!r} contradicts the DataArray's dims {tuple(image.dims)}")
        axes, image = dim_axes, image.values
    a = np.asarray(image)
    if axes is None:
        items = psf_list(psf)
        if a.ndim == 3 and items is not None and all(np.ndim(p) == 2 for p in items):
            axes = "CYX"  # a list of 2D PSFs: the first axis holds channels
        elif a.ndim in DEFAULT_AXES:
            axes = DEFAULT_AXES[a.ndim]
            _validate.warn_default_czyx(a.shape, name)
        else:
            raise InputError(f"{name}: expected a 2D (Y, X) to 5D (T, C, Z, Y, X) array, got shape {a.shape}; "
                             "name its axes with axes=")
    return a, spatial_in_order(_validate.check_axes("axes", axes, a.ndim)), template


def spatial_in_order(axes: str) -> str:
    """``axes`` when its spatial letters come in (Z, Y, X) order, else ``ValueError``: the PSF's
    axes are (Z, Y, X), and volumes are deconvolved in the order of the image's axes (an image
    labelled 'XYZ' would get the PSF's Z profile along its first axis)."""
    spatial = "".join(x for x in axes if x in "ZYX")
    want = "".join(x for x in "ZYX" if x in axes)
    if spatial != want:
        raise InputError(f"axes: the spatial axes of {axes!r} are in {spatial} order; they must be in {want} order "
                         f"(the PSF's): transpose the array first (numpy.moveaxis) or give the axes it really has")
    return axes


def split(image: Any, psf: Any, axes: str | None = None, *, allow_negative: bool = True,
          name: str = "image") -> tuple[Layout, list[Volume]]:
    """Check the image and pair each (T, C) volume with its channel's PSF (see the module docstring).

    Raises
    ------
    TypeError, ValueError
        Bad axes, an image that is not a real finite array, or PSFs that do not match the
        channels or the volume's dimensionality (messages name ``image``, ``axes`` or ``psf``).
    """
    a, axes, template = image_axes(image, axes, psf, name)
    img = _edges.as_image(a, name, allow_negative=allow_negative)
    scale = data_scale(img)
    if scale != 1.0:  # values that float32 FFTs would overflow (or underflow): computed at max 1, scaled back
        img = img * np.float32(scale)
    vol_axes = "".join(x for x in axes if x in "ZYX")
    n_t = img.shape[axes.index("T")] if "T" in axes else 1
    n_c = img.shape[axes.index("C")] if "C" in axes else 1
    layout = Layout(axes, img.shape, vol_axes, n_t, n_c, template, scale)
    if ("Z" in axes and img.shape[axes.index("Z")] == 1 and not _is_xarray(psf) and psf_list(psf) is None
            and np.ndim(psf) == 2):  # one plane (1, Y, X), as a TIFF without ImageJ axes reads it: its 2D PSF
        psf = np.asarray(psf)[None]  # (Iterative Deconvolve 3D took it; RL refused '2D PSF for 3D volumes')
    psfs = channel_psfs(psf, n_c, len(vol_axes), "C" in axes)
    vols = [Volume(i // n_c, i % n_c, np.ascontiguousarray(v), psfs[i % n_c])
            for i, v in enumerate(_volumes_of(img, axes, vol_axes))]
    return layout, vols


def psf_list(psf: Any) -> list[Any] | None:
    """The PSFs of a per-channel list (a list or tuple of arrays: items with a ``shape``), else
    ``None``.  A nested list of numbers (``psf.tolist()``) is one PSF, as numpy reads it (it was
    taken as one PSF per plane: "15 PSFs given for 40 channel(s)")."""
    if isinstance(psf, (list, tuple)) and len(psf) and all(hasattr(p, "shape") for p in psf):
        return list(psf)
    return None


def channel_psfs(psf: Any, n_c: int, vol_ndim: int, has_c: bool) -> list[Any]:
    """One PSF per channel from a single PSF, a stack with a leading channel axis, or a list of arrays."""
    if _is_xarray(psf):
        pax = _dims_to_axes(psf.dims, "psf")
        order = [pax.index(x) for x in "C" + "ZYX" if x in pax]
        if len(order) != len(pax):
            raise InputError(f"psf: dims {tuple(psf.dims)} must be c (optional), z, y, x")
        psf = np.transpose(psf.values, order)
    _validate.refuse_file_name("psf", psf)
    items = psf_list(psf)
    if items is not None:
        if len(items) != n_c:
            raise InputError(f"psf: {len(items)} PSFs given for {n_c} channel(s)")
        for i, p in enumerate(items):
            if np.ndim(p) != vol_ndim:
                raise InputError(f"psf: PSF {i} is {np.ndim(p)}D but the image's volumes are {vol_ndim}D "
                                 "(mismatched dimensionality)")
        return items
    p = np.asarray(psf)
    if p.ndim == vol_ndim:
        return [p] * n_c
    if p.ndim == vol_ndim + 1 and (has_c or p.shape[0] == 1):
        if p.shape[0] == n_c:
            return [p[i] for i in range(n_c)]
        hint = ("; if the image's first axis is Z, not C (a stack saved without axes), give axes='ZYX' "
                "(CLI --axes ZYX)" if vol_ndim == 2 else "")
        raise InputError(f"psf: shape {p.shape} holds {p.shape[0]} channel PSFs (first axis) but the image has "
                         f"{n_c} channel(s){hint}")
    raise InputError(dimensionality_message(p.shape, vol_ndim))


def dimensionality_message(psf_shape: tuple[int, ...], vol_ndim: int) -> str:
    """The one-line error for a PSF of ``psf_shape`` whose dimensionality does not fit the volumes."""
    what = "a (Z, Y, X) PSF" if vol_ndim == 3 else "a (Y, X) PSF"
    plane = ("; or, for one plane of a Z stack (a file keeps no axis of length 1), read it as (1, Y, X) with "
             "axes 'ZYX' (read_image; CLI --axes ZYX)" if vol_ndim == 2 and len(psf_shape) == 3 else "")
    return (f"psf: {len(psf_shape)}D PSF (shape {tuple(psf_shape)}) for {vol_ndim}D volumes: give {what} (for "
            f"several channels, one per channel stacked on a leading channel axis; mismatched dimensionality){plane}")


def for_each(layout: Layout, vols: Sequence[Volume], fn: Callable[[Volume], Any]) -> list[Any]:
    """``fn`` on every volume, in order (one place to add progress or parallelism later)."""
    return [fn(v) for v in vols]


def channel_psf_voxel_size(psf_voxel_size: Any, c: int, n_c: int) -> Any:
    """Channel ``c``'s PSF voxel size: ``psf_voxel_size`` itself, or its ``c``-th item when it
    is one per channel (a list of voxel sizes, ``None`` items for PSFs sampled at the image's
    voxel size), as given with one PSF per channel from files of different calibrations."""
    if psf_voxel_size is None or isinstance(psf_voxel_size, (str, bytes)):
        return psf_voxel_size
    items = list(psf_voxel_size) if isinstance(psf_voxel_size, (list, tuple)) else None
    if not items or not all(i is None or (isinstance(i, (list, tuple, np.ndarray)) and len(i)) for i in items):
        return psf_voxel_size  # one voxel size for every channel (checked where it is used)
    if len(items) != n_c:
        raise InputError(f"psf_voxel_size: {len(items)} voxel sizes (one per PSF) for an image with {n_c} "
                         "channel(s); give one voxel size, or one per channel")
    return items[c]


def per_channel(psfs: Sequence[Any], psf_voxel_size: Any, make: Callable[[Any, str, Any], Any]) -> list[Any]:
    """``make(psf, name, channel_voxel_size)`` for each channel's PSF in ``psfs`` (one item per channel),
    called once per distinct PSF: a single PSF given for every channel is prepared once and named
    ``psf`` (its notes once, not once per channel); distinct PSFs are named ``psf[c]``."""
    n_c = len(psfs)
    sizes = [channel_psf_voxel_size(psf_voxel_size, c, n_c) for c in range(n_c)]
    shared = all(p is psfs[0] for p in psfs) and all(v is sizes[0] for v in sizes)
    done: dict[tuple[int, int], Any] = {}
    out = []
    for c, (p, v) in enumerate(zip(psfs, sizes)):
        key = (id(p), id(v))
        if key not in done:
            done[key] = make(p, "psf" if shared else f"psf[{c}]", v)
        out.append(done[key])
    return out


def channel_psfs_of(layout: Layout, vols: Sequence[Volume]) -> list[Any]:
    """Each channel's PSF (item ``c`` for channel ``c``) from the volumes of :func:`split`."""
    first = {}
    for v in vols:
        first.setdefault(v.c, v.psf)
    return [first[c] for c in range(layout.n_c)]


def prepare_psfs(layout: Layout, vols: Sequence[Volume], edges: str, *, threshold: float, recenter: bool,
                 voxel_size: Sequence[float] | None = None, psf_voxel_size: Sequence[float] | None = None,
                 limit: bool = True, flat_ok: bool = False) -> list[Any]:
    """The :class:`~fijidecon.deconvolve._otf.PreparedPSF` of each volume, prepared once per channel
    (before any iteration, so a bad PSF of the last channel fails first)."""
    from . import _otf

    _validate.check_bool("recenter", recenter)
    max_shape = _edges.kernel_limit(edges, vols[0].data.shape) if limit else None
    by_channel = per_channel(channel_psfs_of(layout, vols), psf_voxel_size, lambda p, name, pvs: _otf.prepare_psf(
        p, threshold=threshold, recenter=recenter, name=name, max_shape=max_shape, voxel_size=voxel_size,
        psf_voxel_size=pvs, image_shape=vols[0].data.shape, flat_ok=flat_ok))
    warn_swapped(by_channel, vols[0].data.shape)
    return [by_channel[v.c] for v in vols]


#: A PSF bigger than the image on every axis that loses more than this fraction of its flux to
#: the crop the edges allow is warned about: the image and the PSF were probably swapped ...
SWAPPED_FLUX = 0.5
#: ... and refused when it is also this many times the image's size on every axis (RedLionfish's
#: 160³ data given as the PSF of its 61x32x32 PSF: a sparse image, peak 57x its mean, 91 % cropped).
SWAPPED_SIZE = 2.0


def warn_swapped(preps: Sequence[Any], vol_shape: Sequence[int]) -> None:
    """A PSF bigger than the image on every axis: an error when it is not concentrated around a
    peak either (``_otf.CONCENTRATED``): no PSF is both, it is the image (``deconvolve PSF IMAGE``
    instead of ``IMAGE PSF``), and a batch run would otherwise write a result of the PSF's shape and
    exit 0; a warning when most of its flux lies outside the kernel the method can use."""
    for c, p in enumerate(preps):
        given, dropped = p.report.get("shape_given"), float(p.report.get("flux_dropped") or 0.0)
        if not (given and all(g > n for g, n in zip(given, vol_shape))):
            continue
        name = "psf" if len(preps) == 1 else f"psf[{c}]"
        refuse_swapped(name, tuple(given), tuple(vol_shape), p.report.get("peak_to_mean"), dropped,
                       "outside the part that can be used")
        if dropped > SWAPPED_FLUX:
            _validate.warn(f"{name}: {tuple(given)} is bigger than the image {tuple(vol_shape)} on every axis and "
                           f"{100 * dropped:.0f} % of its flux lies outside the part that can be used: were the image "
                           "and the PSF swapped? (the image comes first)", RuntimeWarning)


def refuse_swapped(name: str, given: tuple[int, ...], vol_shape: tuple[int, ...], ratio: float | None,
                   outside: float, where: str) -> None:
    """The refusal of a 'PSF' bigger than the image on every axis (the caller checks that) that is the
    image: its peak under ``_otf.CONCENTRATED`` x its mean (``ratio``), or at least :data:`SWAPPED_SIZE`
    x the image on every axis with more than :data:`SWAPPED_FLUX` of its flux ``outside`` (``where``
    says of what).  Shared by every method (Iterative Deconvolve 3D has no crop: its own box)."""
    from . import _otf

    if ratio is not None and ratio < _otf.CONCENTRATED:
        raise InputError(f"{name}: {given} is bigger than the image {vol_shape} on every axis and its peak is only "
                         f"{ratio:.2g}x its mean: the image and the PSF look swapped (the image comes first)")
    if all(g >= SWAPPED_SIZE * n for g, n in zip(given, vol_shape) if n > 1) and outside > SWAPPED_FLUX:
        raise InputError(f"{name}: {given} is at least {SWAPPED_SIZE:g}x the image {vol_shape} on every axis and "
                         f"{100 * outside:.0f} % of its flux lies {where}: the image and the PSF look swapped (the "
                         "image comes first)")


def notes_of(preps: Sequence[Any]) -> list[str]:
    """The PSF notes of every channel, each once, in order."""
    seen: list[str] = []
    for p in preps:
        for n in p.notes:
            if n not in seen:
                seen.append(n)
    return seen


def reports_of(layout: Layout, preps: Sequence[Any]) -> Any:
    """The PSF report (one dict, or one per channel)."""
    per_c = [preps[c].report for c in range(layout.n_c)]
    return per_c[0] if layout.n_c == 1 else per_c
