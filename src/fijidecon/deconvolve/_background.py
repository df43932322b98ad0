"""Richardson-Lucy's constant background: one value, one per channel, or estimated per volume.

The RL model is ``image = H x + b`` (:mod:`fijidecon.deconvolve.richardson_lucy`); ``b`` is
the level of the data without signal: the camera offset plus the sample's uniform
background, which differ between channels (a DAPI channel at 2,100 counts beside a GFP
channel at 400).  ``background=`` takes

- a number ``>= 0`` (every (T, C) volume),
- one number per channel (a list or tuple, channel order; every time point), or
- ``"auto"``: estimated on each whole (T, C) volume by :func:`estimate`, the lowest local mean
  (Huygens' "lowest" background mode: the minimum of the image after a mean filter,
  here 3 planes by 9 x 9 pixels, so that single noisy or dead pixels do not decide it).
  It is a lower bound of the background, which RL tolerates (too high a background
  removes real signal; too low one leaves a dim haze).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import _validate
from ..errors import InputError

#: The word for a background estimated on each volume.
AUTO = "auto"

#: Mean filter of :func:`estimate`, (Z, Y, X) (the last axes for 2D volumes).
WINDOW = (3, 9, 9)

#: Voxels per slab of planes :func:`estimate` filters at once (a float32 copy and its filtered copy:
#: 32 MB; at least one plane and the window's 2 neighbours).
SLAB_VOXELS = 4_000_000


#: Voxels :func:`low_level` looks at, at most (an even lattice: enough for a percentile).
LOW_SAMPLE = 1_000_000


def low_lattice(shape: Sequence[int]) -> tuple[slice, ...]:
    """The slices of an even lattice of at most :data:`LOW_SAMPLE` voxels of a volume of ``shape``
    (one stride on every axis): the same voxels whether the volume is in memory or read in bricks."""
    size = float(np.prod(shape))
    stride = 1
    while size / stride ** len(shape) > LOW_SAMPLE:
        stride += 1
    return tuple(slice(None, None, stride) for _ in shape)


def low_level(data: Any) -> float:
    """The 1st percentile of ``data`` on :func:`low_lattice`: the level an offset warning names."""
    a = np.asarray(data)
    return float(np.percentile(a[low_lattice(a.shape)], 1))


def check(value: Any) -> float | tuple[float, ...] | str:
    """``background=`` as a float, a tuple of per-channel floats, or ``"auto"``.

    Raises
    ------
    InputTypeError, InputError
        One line naming ``background`` (negative, not finite, empty list, another word).
    """
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (list, tuple, np.ndarray)) and not (isinstance(value, np.ndarray) and value.ndim == 0):
        items = list(np.asarray(value, dtype=object).ravel()) if isinstance(value, np.ndarray) else list(value)
        if not items:
            raise InputError("background: expected a number >= 0, one per channel, or 'auto', got an empty list")
        vals = tuple(_validate.check_float("background", v, 0) for v in items)
        return vals[0] if len(vals) == 1 else vals
    if isinstance(value, str):
        raise _validate.InputTypeError(f"background: expected a number >= 0, one per channel, or 'auto', got "
                                       f"{_validate.got(value)}")
    return _validate.check_float("background", value, 0)


def parse(value: Any) -> float | tuple[float, ...] | str:
    """A face's text (CLI, dialog, macro) as :func:`check` takes it: ``"auto"``, ``"600"`` or
    ``"600, 400"`` (commas, semicolons or blanks between per-channel values); an API value
    (a number, a list) goes to :func:`check` as it is.

    Raises
    ------
    InputError
        One line naming ``background`` (empty text, a word other than ``auto``, bad numbers).
    """
    if not isinstance(value, str):
        return check(value)
    text = value.strip()
    if text.lower() == AUTO:
        return AUTO
    text = text.replace(";", ",")
    parts = [t.strip() for t in text.split(",")] if "," in text else text.split()
    try:  # an empty item ("600," from a list built in a script) is an error, not one value for every channel
        nums = [float(t) for t in parts] if parts and all(parts) else []
    except ValueError:
        nums = []
    if not nums:
        raise InputError(f"background: expected a number >= 0, one per channel (e.g. 600,400), or 'auto', got "
                         f"{value!r}")
    return check(nums)


def per_volume(background: float | tuple[float, ...] | str, n_t: int, n_c: int,
               data_of: Any, scale: float = 1.0) -> list[float]:
    """The background of each (T, C) volume in run order (``i = t * n_c + c``), in the volumes'
    units (the image times ``scale``).  ``data_of(i)`` gives volume ``i``'s array (or the part
    (numpy or Dask: a lazy run's volume is read once more, slab by slab), read only for ``"auto"``.

    Raises
    ------
    InputError
        A per-channel list whose length is not the image's channel count.
    """
    if background == AUTO:
        return [estimate(data_of(i)) for i in range(n_t * n_c)]
    if isinstance(background, tuple):
        if len(background) != n_c:
            raise InputError(f"background: {len(background)} values for an image with {n_c} channel(s); give one "
                             "value, or one per channel in channel order")
        return [background[i % n_c] * scale for i in range(n_t * n_c)]
    return [float(background) * scale] * (n_t * n_c)


def estimate(data: Any) -> float:
    """The lowest local mean of ``data`` (2D or 3D, any real dtype; numpy or Dask), clipped at 0:
    the minimum of the means of :data:`WINDOW` voxels that fit inside the data (along an axis
    shorter than the window, of all its voxels), computed in slabs of planes of about
    :data:`SLAB_VOXELS` (float32 copies of a slab only; a Dask array is read one slab at a time).

    Returns
    -------
    float
        In ``data``'s units.
    """
    from scipy import ndimage

    a = data if hasattr(data, "dask") else np.asarray(data)  # a Dask array is read slab by slab
    size = tuple(min(n, w) for n, w in zip(a.shape, WINDOW[-a.ndim:]))
    inner = tuple(slice(k // 2, n - (k - 1 - k // 2)) for n, k in zip(a.shape, size))  # windows inside the data
    if a.ndim != 3:
        flat = np.asarray(a, dtype=np.float32)
        return max(float(ndimage.uniform_filter(flat, size, mode="reflect")[inner].min()), 0.0)
    z_in = range(inner[0].start, inner[0].stop)
    step = max(1, SLAB_VOXELS // max(1, a[0].size))
    low = np.inf
    for z0 in range(z_in.start, z_in.stop, step):
        z1 = min(z0 + step, z_in.stop)
        lo, hi = z0 - size[0] // 2, z1 + (size[0] - 1 - size[0] // 2)  # the planes the windows of z0..z1 cover
        m = ndimage.uniform_filter(np.asarray(a[lo:hi], dtype=np.float32), size, mode="reflect")
        low = min(low, float(m[z0 - lo:z1 - lo, inner[1], inner[2]].min()))
    return max(low, 0.0)


def too_high(background: float, data: Any) -> tuple[float, float] | None:
    """(lowest local mean, pixel noise SD) of ``data`` (numpy) when ``background`` is far above its
    darkest part: over 1.1x its lowest local mean (:func:`estimate`) and by more than 3 pixel noise
    SDs (:func:`noise_sd`), where a right background is above it by a fraction of one.  RL then
    takes signal for background there.  Else ``None``."""
    if background <= 0:
        return None
    low = estimate(data)
    if background <= 1.1 * low:
        return None
    sd = noise_sd(data)
    return (low, sd) if background - low > 3 * sd else None


def noise_sd(data: np.ndarray) -> float:
    """The pixel noise SD of ``data`` from neighbour differences along its last axis (median
    absolute difference / (0.6745 sqrt 2): robust to edges), on at most about 1e6 of them."""
    a = np.asarray(data)
    d = np.diff(a.reshape(-1, a.shape[-1])[:: max(1, a.size // 1_000_000)].astype(np.float32), axis=-1)
    return float(np.median(np.abs(d))) / (0.6745 * np.sqrt(2)) if d.size else 0.0


def describe(values: Sequence[float], n_c: int, scale: float = 1.0) -> str:
    """The estimated backgrounds in words: ``"2136"``, ``"2136 (c=0), 476 (c=1)"``, or with
    several time points each channel's range (``"2194-2494 (c=0)"``)."""
    out = []
    for c in range(n_c):
        vals = [values[i] / scale for i in range(c, len(values), n_c)]
        lo, hi = min(vals), max(vals)
        text = f"{lo:.4g}" if f"{lo:.4g}" == f"{hi:.4g}" else f"{lo:.4g}-{hi:.4g}"
        out.append(text if n_c == 1 else f"{text} (c={c})")
    return ", ".join(out)
