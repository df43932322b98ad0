"""Running a command from parameter values and images: the one path every face uses.

The CLI (:mod:`fijidecon.cli`), the ImageJ 1.x menu commands and ``#@`` scripts
(:func:`fijidecon.fiji.commands.execute`) and the SciJava modules of
:mod:`fijidecon.fiji.attach` all call :func:`run_command`, which

* converts and range-checks the values through the command's :class:`~fijidecon.commands.Param`
  descriptions (missing ones take their defaults),
* passes the image arrays by parameter name, the first image's calibration as
  ``calibration=`` when the core function declares it (e.g. "0 = from the image
  calibration"), and optionally its voxel size as ``voxel_size=``,
* calls the core function and picks the image out of its result, and
* works out the result's calibration (:func:`output_calibration`).

Pure Python and numpy: no Java, no ImageJ, no file I/O.

Example
-------
>>> from fijidecon.commands import get_command
>>> from fijidecon.commands.run import run_command
>>> res, image, cal = run_command(get_command("gaussian-psf"), {"width": 9, "height": 9, "depth": 5}, {})
>>> image.shape, cal.axes, cal.unit
((5, 9, 9), 'ZYX', 'nm')
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping

import numpy as np

from fijidecon import _validate
from fijidecon.calibration import Calibration

from ._model import Command
from ..errors import InputError, InputTypeError

__all__ = ["run_command", "accepts", "output_calibration", "result_image"]


def accepts(func: Any, name: str) -> bool:
    """Whether ``func`` declares a keyword argument ``name`` (``**kwargs`` does not count)."""
    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


def _takes_any_keyword(func: Any) -> bool:
    try:
        return any(q.kind is inspect.Parameter.VAR_KEYWORD for q in inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return False


def _is_array(v: Any) -> bool:
    """A numpy array, or a lazy (Dask) array: what a core function given a Dask image returns."""
    return isinstance(v, np.ndarray) or (hasattr(v, "__dask_graph__") and hasattr(v, "shape")
                                         and hasattr(v, "dtype"))


def result_image(result: Any) -> Any:
    """The image array in a core function's result (the array itself, or its
    ``image``/``psf``/``result``/``data`` attribute, or the first array of a tuple); a
    ``dask.array.Array`` when the core was given one (a lazy result).

    Raises
    ------
    TypeError
        When the result holds no array.
    """
    if _is_array(result):
        return result
    for attr in ("image", "psf", "result", "data"):
        v = getattr(result, attr, None)
        if _is_array(v):
            return v
    if isinstance(result, (tuple, list)):
        for v in result:
            if _is_array(v):
                return v
    raise InputTypeError(f"the command returned {type(result).__name__}, not an image")


def output_calibration(cmd: Command, values: Mapping[str, Any], inputs: list[tuple[np.ndarray, Calibration]],
                       unit: str | None, ndim: int, result: Any = None) -> Calibration:
    """The calibration to write with a command's result.

    In order: a result that knows its own voxel size (``result.voxel_size``, e.g. a
    resampled bead PSF) with the input's unit; the spacings named in the description's
    ``extras["spacing"]`` with ``unit``; the first image input's calibration."""
    own = getattr(result, "voxel_size", None)
    if own is not None and len(own) == ndim and ndim <= 3:
        base_unit = inputs[0][1].unit if inputs else (unit or "pixel")
        return Calibration.make("ZYX"[-ndim:], unit=base_unit, **dict(zip("ZYX"[-ndim:], map(float, own))))
    spacing_params = cmd.extras.get("spacing")
    if spacing_params:
        z, y, x = (float(values[name]) for name in spacing_params)
        axes = "ZYX"[-ndim:] if ndim <= 3 else "CZYX"
        given = {"Z": z, "Y": y, "X": x}  # a 2D PSF has no Z spacing (its default slice spacing is not one)
        return Calibration.make(axes, unit=unit or "pixel", **{a: v for a, v in given.items() if a in axes})
    if inputs:
        cal = inputs[0][1]
        return cal if len(cal.axes) == ndim else Calibration.default(ndim)
    return Calibration.default(ndim)


def run_command(cmd: Command, values: Mapping[str, Any], images: Mapping[str, tuple[np.ndarray, Calibration]],
                *, callback: Callable[..., Any] | None = None, unit: str | None = None,
                voxel_size_from_calibration: bool = False,
                extra: Mapping[str, Any] | None = None) -> tuple[Any, np.ndarray, Calibration]:
    """Run ``cmd``'s core function on ``values`` and ``images``.

    Parameters
    ----------
    cmd:
        The command description.
    values:
        Parameter values keyed by :attr:`Param.name` (API values or strings); each is
        converted and checked by its ``Param``; missing ones take their defaults.
        Entries named after image parameters are ignored (dialogs return window titles there).
    images:
        ``{image parameter name: (array, Calibration)}`` -- one entry per image parameter
        (the image may be a ``dask.array.Array`` for the commands whose core takes one: the
        result image is then lazy);
        the PSF may also be a list of them (one PSF per channel) or a PSF hyperstack (C
        axis).  For the deconvolution commands the image's ``Calibration.axes`` become
        ``axes=`` (every (T, C) volume on its own) and, when image and PSF both carry a
        length unit, their voxel sizes become ``voxel_size=``/``psf_voxel_size=`` in the
        image's unit (so a PSF of another voxel size is resampled); when only one side
        is calibrated a ``RuntimeWarning`` says the PSF is taken at the image's voxel size.
    callback:
        Progress callback, passed when the core function takes ``callback``.
    unit:
        Length unit of the spacings named in ``extras["spacing"]`` (default
        ``extras["unit"]``).
    voxel_size_from_calibration:
        Pass the first image's calibrated voxel size as ``voxel_size=`` to a core
        function that declares it (and has no such parameter in the description).
    extra:
        Keyword arguments of the core function that no face shows, decided by the face
        itself (e.g. the CLI's ``bricks=``/``halo=`` for a lazy run, see
        :mod:`fijidecon.cli_big`); each must be a parameter the core function declares.

    Returns
    -------
    (result, image, calibration)
        The core function's return value, the image array in it (see
        :func:`result_image`) and the calibration for that image (see
        :func:`output_calibration`).

    Raises
    ------
    ValueError, TypeError
        A bad value (the message names the parameter), a missing image, or the core
        function's own error.

    Example
    -------
    >>> import numpy as np
    >>> from fijidecon.commands import get_command
    >>> img = np.ones((4, 8, 8), np.float32)
    >>> psf = np.zeros((3, 3, 3), np.float32); psf[1, 1, 1] = 1
    >>> cal = Calibration.make("ZYX", unit="micron", Z=0.3, Y=0.1, X=0.1)
    >>> _, out, ocal = run_command(get_command("convolve"), {}, {"image": (img, cal), "psf": (psf, cal)})
    >>> out.shape == img.shape, ocal == cal
    (True, True)
    """
    image_params = [p for p in cmd.params if p.kind == "image"]
    image_names = {p.name for p in image_params}
    for p in image_params:
        if images.get(p.name) is None or (isinstance(images[p.name], list) and not images[p.name]):
            raise InputError(f"{p.name}: an image is required")
    unknown = set(images) - image_names
    if unknown:
        raise InputError(f"images: {cmd.id} has no image parameter(s) {', '.join(sorted(unknown))}")
    plain = {k: v for k, v in values.items() if k not in image_names}
    kwargs = cmd.api_kwargs(plain)
    full = cmd.resolve(plain)
    inputs = [_first(images[p.name]) for p in image_params]
    for arr, cal in inputs:  # the core's functions take (Z, Y, X) order: never relabel an axis silently
        if len(cal.axes) == np.ndim(arr):
            from ..deconvolve import _hyper

            _hyper.spatial_in_order(cal.axes)
    func = cmd.load()
    kwargs.update({p.name: _array_value(images[p.name]) for p in image_params})
    if "psf" in image_names and "image" in image_names and accepts(func, "axes"):
        kwargs.update(_hyperstack_kwargs(images["image"], images["psf"], func, voxel_size_from_calibration))
    elif inputs and accepts(func, "calibration"):
        kwargs["calibration"] = inputs[0][1]
    elif (voxel_size_from_calibration and inputs and "voxel_size" not in kwargs and accepts(func, "voxel_size")
          and inputs[0][1].is_calibrated() and inputs[0][0].ndim in (2, 3)):
        kwargs["voxel_size"] = inputs[0][1].voxel_size("ZYX"[-inputs[0][0].ndim:])
    if callback is not None and (accepts(func, "callback") or _takes_any_keyword(func)):
        kwargs["callback"] = callback
    for name, value in (extra or {}).items():
        if not accepts(func, name):
            raise InputTypeError(f"extra: {cmd.function} takes no {name!r}")
        kwargs[name] = value
    result = func(**kwargs)
    image = result_image(result)
    cal = output_calibration(cmd, full, inputs, unit if unit is not None else cmd.extras.get("unit"), image.ndim,
                             result)
    return result, image, cal


def _first(value: Any) -> tuple[np.ndarray, Calibration]:
    return value[0] if isinstance(value, list) else value


def _array_value(value: Any) -> Any:
    """The array (or the list of per-channel arrays) of an image parameter's value."""
    return [v[0] for v in value] if isinstance(value, list) else value[0]


def _volume_axes(axes: str) -> str:
    return "".join(a for a in axes if a in "ZYX")


def rgb_planes_as_z(arr: np.ndarray, cal: Calibration, name: str = "psf") -> tuple[np.ndarray, Calibration]:
    """A PSF file that TIFF readers take as RGB (axes with ``S``: a 3- or 4-plane stack saved
    without saying it is grey, tifffile's default) as Z planes, with a warning; unchanged otherwise.

    Raises
    ------
    ValueError
        An RGB stack (``S`` and ``Z``): not a PSF.
    """
    axes = cal.axes
    if "S" not in axes or len(axes) != arr.ndim:
        return arr, cal
    if "Z" in axes:
        raise InputError(f"{name}: the file holds an RGB stack (axes {axes}, shape {arr.shape}), not a PSF; save the "
                         "PSF as grey levels (tifffile: photometric='minisblack'; ImageJ: 8/16/32-bit)")

    _validate.warn(f"{name}: the file is stored as RGB (axes {axes}, shape {arr.shape}); a PSF has no colours, so "
                   f"its {arr.shape[axes.index('S')]} colour planes are taken as Z planes", RuntimeWarning)
    return np.moveaxis(arr, axes.index("S"), 0), cal.with_axes("Z" + axes.replace("S", ""))


def split_psf(psf: tuple[np.ndarray, Calibration], name: str = "psf") -> Any:
    """A PSF file/window as the core takes it: its spatial axes in (Z, Y, X) order, and a
    PSF with a C axis (a PSF hyperstack) as a list of per-channel ``(array, Calibration)``.

    Raises
    ------
    ValueError
        A PSF with a T axis (time frames).
    """
    arr, cal = psf
    axes = cal.axes if len(cal.axes) == arr.ndim else Calibration.default(arr.ndim).axes
    if "T" in axes:
        raise InputError(f"{name}: a PSF cannot have time frames (axes {axes}); give one stack, or one channel "
                         "per image channel")
    arr, cal = rgb_planes_as_z(arr, cal.with_axes(axes), name)
    axes = cal.axes
    vol = _volume_axes(axes)
    one = Calibration(axes=vol, spacing=cal.spacing, unit=cal.unit)
    if "C" not in axes:
        return (np.transpose(arr, [axes.index(a) for a in vol]), one)
    order = [axes.index("C")] + [axes.index(a) for a in vol]
    stack = np.transpose(arr, order)
    return [(np.ascontiguousarray(stack[c]), one) for c in range(stack.shape[0])]


def _refuse_swapped_first(arr: np.ndarray, axes: str, psf: Any) -> None:
    """An image given as the PSF (bigger on every axis, not concentrated once its offset is off) is refused
    here, before the files' calibration warnings (a batch user read a voxel-size warning, then the refusal)."""
    import warnings

    from ..deconvolve import _hyper, _otf

    vol = tuple(int(n) for a, n in zip(axes, arr.shape) if a in "ZYX")
    for p in (psf if isinstance(psf, list) else [psf]):
        a = np.asarray(p, np.float32)
        if a.ndim != len(vol) or not all(g > n for g, n in zip(a.shape, vol)) or not np.all(np.isfinite(a)) \
                or not float(a.max()) > 0:
            continue  # (a PSF without positive values: the method says what is wrong with it)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                clean = _otf.remove_offset(a, "psf", {}, [])
            except (ValueError, ArithmeticError):
                continue  # the method says what is wrong with it
        _hyper.refuse_swapped("psf", tuple(a.shape), vol, _otf._peak_to_mean(clean), 0.0, "")


def _hyperstack_kwargs(image: Any, psf: Any, func: Any, voxel_from_cal: bool) -> dict[str, Any]:
    """``axes``, the PSF(s) in (Z, Y, X) order, and the two voxel sizes in the image's
    unit when both sides carry a length calibration (a warning when only one does)."""

    arr, cal = _first(image)
    out: dict[str, Any] = {}
    if len(cal.axes) == arr.ndim:
        out["axes"] = cal.axes
    psfs = [split_psf(p, f"psf[{i}]") for i, p in enumerate(psf)] if isinstance(psf, list) else split_psf(psf)
    if isinstance(psfs, list):
        psfs = [p for item in psfs for p in (item if isinstance(item, list) else [item])]
        out["psf"] = [p[0] for p in psfs]
        pcals = [p[1] for p in psfs]
    else:
        out["psf"] = psfs[0]
        pcals = [psfs[1]]
    vol = _volume_axes(out.get("axes", Calibration.default(arr.ndim).axes))
    _refuse_swapped_first(arr, out.get("axes", Calibration.default(arr.ndim).axes), out["psf"])
    if not voxel_from_cal or any(len(vol) != len(pc.axes) for pc in pcals):
        return out
    if cal.is_calibrated() and accepts(func, "voxel_size"):
        out["voxel_size"] = cal.voxel_size(vol)
    # each PSF its own voxel size (files of one channel each may differ): one for all when they agree
    # an uncalibrated PSF with a calibrated image: taken at the image's voxel size (the warning below says so)
    sizes = [(pc.voxel_size(vol, unit=cal.unit) if pc.has_length_unit() else cal.voxel_size(vol))
             if cal.has_length_unit() else None for pc in pcals]
    if any(v is not None for v in sizes) and accepts(func, "psf_voxel_size"):
        out["psf_voxel_size"] = sizes[0] if all(v == sizes[0] for v in sizes) else sizes
    elif "voxel_size" in out and accepts(func, "psf_voxel_size"):  # an image without a length unit: the PSF is
        out["psf_voxel_size"] = out["voxel_size"]  # taken at its voxel size, as the warning below says (the core's
        # note 'no psf_voxel_size given; give it' contradicted it)
    for i, pc in enumerate(pcals):
        if cal.has_length_unit() != pc.has_length_unit():
            which, other = ("image", "psf") if cal.has_length_unit() else ("psf", "image")
            if other == "psf" and len(pcals) > 1:
                other = f"psf[{i}]"
            how = ("; to give the image its voxel size: --voxel-size on the CLI, Image > Properties in ImageJ"
                   if other == "image" else "")
            odd = (pc if other.startswith("psf") else cal).unit
            why = ("no voxel size (uncalibrated)" if odd in ("", "pixel", "pixels") else
                   f"its unit {odd!r} is not a length unit (nm, µm, mm, m, pm, Å; an 'inch' is a TIFF's print "
                   "resolution, not a voxel size)")
            _validate.warn(f"{other}: {why} while the {which} has one; the PSF is taken to be "
                           f"sampled at the image's voxel size{how}", RuntimeWarning)
            if other == "image":
                break
    return out
