"""Fuzz every public function with hypothesis: a result or the package's one-line error.

The contract checked on every example (issue 11, part 6):

* the call returns, or raises a ``ValueError`` / ``TypeError`` / ``MemoryError`` /
  ``OSError`` (the package's error types are subclasses of these) whose message is one
  line starting with the parameter's name (``^\\w+(\\[\\d+\\])?: ``; for files, the
  message may instead name the file);
* no input array is modified (compared with a copy taken before the call);
* every float array in the result is finite.

Inputs: shapes 0-d to 5-d with zero- and one-length axes, every dtype kind (bool, ints,
floats, complex, object), NaN/inf, magnitudes from 1e-30 to 1e36, non-contiguous and
read-only arrays, and every parameter of every public function (a good value, or
anything: strings such as ``"False"``, bools, NaN, huge numbers, tuples of the wrong
length ...).  A few parameters are perturbed per example so that each bad value is
seen next to good ones.

Profiles (``tests/conftest.py``): ``ci`` (default, 30 examples per function,
derandomized) and ``thorough`` (600 per function): ``pytest tests/test_fuzz.py
--hypothesis-profile thorough``.
"""

from __future__ import annotations

import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import event, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from fijidecon import deconvolve, io, psf
from fijidecon.psf.beads import bead_kernel

NAME = re.compile(r"^\w+(\[\d+\])?: ")
ALLOWED = (ValueError, TypeError, MemoryError, OSError)

# -- values --------------------------------------------------------------------------------
EXTREMES = [0.0, -0.0, 1e-30, -1e-30, 1e-12, 1e36, -1e36, 1e300, 3.4e38, float("nan"), float("inf"),
            float("-inf"), 2**31, 2**63, -1]
#: anything a user or a face might pass by mistake
anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 300),
    st.sampled_from(EXTREMES),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["False", "True", "abc", "", "1e-3", "nan", "auto", "sum", "ZYX", "10"]),
    st.text(max_size=4),
    st.tuples(st.floats(-10, 1e3)),
    st.lists(st.one_of(st.floats(allow_nan=True), st.integers(-2, 50), st.sampled_from(["1", None])), max_size=5).map(tuple),
    st.just(np.float32(np.nan)),
    st.just(np.int64(7)),
    st.just(object()),
)

DTYPES = [np.bool_, np.uint8, np.uint16, np.int32, np.int64, np.float16, np.float32, np.float64, np.complex64, object]


def _elements(dtype, scale):
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return st.booleans()
    if dt.kind in "ui":
        info = np.iinfo(dt)
        return st.integers(int(info.min), int(info.max))
    if dt.kind == "O":
        return st.one_of(st.none(), st.floats(), st.text(max_size=2), st.integers(-5, 5))
    width = 16 if dt == np.float16 else 32 if dt in (np.float32, np.complex64) else 64
    ftype = np.float16 if width == 16 else np.float32 if width == 32 else np.float64
    scale = float(ftype(min(scale, float(np.finfo(ftype).max))))  # 1e-30 is 0 in float16
    finite = st.floats(-scale, scale, width=width, allow_nan=False, allow_infinity=False)
    special = st.floats(width=width, allow_nan=True, allow_infinity=True)
    if dt.kind == "c":
        return st.complex_numbers(max_magnitude=min(scale, 1e18), width=2 * width, allow_nan=False,  # 1e30 fails
                                  allow_infinity=False)
    return st.one_of(finite, finite, special)


@st.composite
def arrays(draw, min_dims=0, max_dims=5, min_side=0, max_side=5, dtypes=DTYPES):
    """Any small array: any dtype, NaN/inf, extreme magnitudes, non-contiguous, read-only."""
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side))
    dtype = draw(st.sampled_from(dtypes))
    scale = draw(st.sampled_from([1.0, 1e-30, 1e3, 1e36]))
    fill = draw(st.sampled_from(["drawn", "constant", "positive"]))
    if fill == "drawn" and np.dtype(dtype) == np.float16:  # drawn as float64 and cast (inf beyond 65504)
        with np.errstate(all="ignore"):
            a = draw(hnp.arrays(np.float64, shape, elements=_elements(np.float64, scale))).astype(np.float16)
    elif fill == "drawn":
        a = draw(hnp.arrays(dtype, shape, elements=_elements(dtype, scale)))
    else:
        a = np.full(shape, scale if fill == "constant" else 0, dtype=np.float64)
        if fill == "positive":
            a = np.random.default_rng(draw(st.integers(0, 9))).random(shape) * scale
        with np.errstate(all="ignore"):
            a = np.asarray(a).astype(dtype) if np.dtype(dtype).kind != "O" else np.asarray(a).astype(object)
    return _layout(draw, a)


def _layout(draw, a):
    a = np.array(a, copy=True) if not isinstance(a, np.ndarray) or not a.ndim else a
    how = draw(st.sampled_from(["plain", "strided", "transposed", "readonly", "fortran"]))
    if how == "strided" and a.ndim:
        big = np.repeat(a, 2, axis=-1)
        a = big[..., ::2]
    elif how == "transposed" and a.ndim > 1:
        a = np.ascontiguousarray(np.swapaxes(a, 0, -1)).swapaxes(0, -1)  # same shape, not C-contiguous
    elif how == "fortran":
        a = np.asfortranarray(a)
    if how == "readonly" or draw(st.booleans()):
        a.flags.writeable = False
    return a


@st.composite
def images(draw, ndims=(2, 3), lo=3, hi=8):
    """A plausible float image (positive, a few bright spots), any layout, sometimes extreme."""
    nd = draw(st.sampled_from(ndims))
    shape = tuple(draw(st.integers(lo, hi)) for _ in range(nd))
    rng = np.random.default_rng(draw(st.integers(0, 99)))
    a = rng.poisson(5.0, shape).astype(np.float64)
    a[tuple(s // 2 for s in shape)] += 200
    scale = draw(st.sampled_from([1.0, 1.0, 1e-30, 1e30, 1e36]))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.uint16, np.int32]))
    a = (a * scale).astype(dtype) if np.dtype(dtype).kind == "f" else a.astype(dtype)
    return _layout(draw, a)


@st.composite
def small_psfs(draw, ndims=(2, 3)):
    nd = draw(st.sampled_from(ndims))
    shape = tuple(draw(st.integers(1, 5)) for _ in range(nd))
    c = np.meshgrid(*[np.arange(n) - n // 2 for n in shape], indexing="ij")
    k = np.exp(-sum(x.astype(float) ** 2 for x in c) / 1.5)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return _layout(draw, (k * draw(st.sampled_from([1.0, 1.0, 1e-20, 1e20]))).astype(dtype))


def kwargs_from(draw, good: dict, perturb: int = 2) -> dict:
    """``good`` with up to ``perturb`` parameters replaced by anything (or left out)."""
    names = sorted(good)
    bad = draw(st.sets(st.sampled_from(names), max_size=perturb)) if names else set()
    out = {}
    for k in names:
        out[k] = draw(anything) if k in bad else draw(good[k])
    return out


# -- the contract --------------------------------------------------------------------------
def _arrays_in(obj, depth=0):
    if isinstance(obj, np.ndarray):
        yield obj
    elif isinstance(obj, (list, tuple)) and depth < 2:
        for o in obj:
            yield from _arrays_in(o, depth + 1)
    elif isinstance(obj, dict) and depth < 2:
        for o in obj.values():
            yield from _arrays_in(o, depth + 1)


def _outputs(result):
    if isinstance(result, np.ndarray):
        yield result
    for attr in ("image", "psf"):
        v = getattr(result, attr, None)
        if isinstance(v, np.ndarray):
            yield v


def _event(text: str) -> None:
    """Count outcomes for ``--hypothesis-show-statistics`` (a no-op outside a hypothesis test)."""
    try:
        event(text)
    except Exception:  # noqa: BLE001 - outside @given
        pass


def check_contract(fn, *args, files: tuple = (), finite: bool = True, **kwargs):
    """Call ``fn`` and check the contract; returns the result or the exception."""
    inputs = [a for a in _arrays_in((args, kwargs))]
    copies = [(a, a.copy(), a.flags.writeable) for a in inputs]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = fn(*args, **kwargs)
    except ALLOWED as e:
        _event(f"{fn.__name__}: {type(e).__name__}")
        msg = str(e)
        named = NAME.match(msg) or any(str(f) in msg or Path(f).name in msg for f in files)
        assert named, f"{fn.__name__}: {type(e).__name__} not naming a parameter: {msg!r}"
        assert "\n" not in msg.strip(), f"{fn.__name__}: message of several lines: {msg!r}"
        result = e
    except Exception as e:  # noqa: BLE001 - the contract: nothing else may escape
        raise AssertionError(f"{fn.__name__}: {type(e).__name__} escaped: {e}") from e
    if not isinstance(result, BaseException):
        _event(f"{fn.__name__}: result")
    for a, c, w in copies:
        assert a.dtype == c.dtype and a.shape == c.shape and a.tobytes() == c.tobytes(), \
            f"{fn.__name__}: an input array was modified"
        assert a.flags.writeable == w, f"{fn.__name__}: an input array's writeable flag changed"
    if finite and not isinstance(result, BaseException):
        for out in _outputs(result):
            if out.dtype.kind in "fc":
                assert np.isfinite(out).all(), f"{fn.__name__}: non-finite values in the result"
    return result


# -- PSF generators --------------------------------------------------------------------------
sizes = st.integers(1, 8)
pos = st.floats(0.05, 500)


@given(data=st.data())
def test_fuzz_diffraction_psf_3d(data):
    good = dict(width=sizes, height=sizes, depth=sizes, index=st.floats(1.0, 1.6), na=st.floats(0.05, 0.95),
                wavelength=st.floats(300, 800), spherical_aberration=st.floats(-500, 500),
                pixel_spacing=st.floats(20, 200), slice_spacing=st.floats(20, 400),
                normalization=st.sampled_from(["sum", "peak", "peak255", psf.Normalization.PEAK]),
                db=st.booleans(), compat=st.booleans())
    check_contract(psf.diffraction_psf_3d, **kwargs_from(data.draw, good))


SHAPES = st.one_of(st.tuples(sizes), st.tuples(sizes, sizes), st.tuples(sizes, sizes, sizes))


@pytest.mark.parametrize("fn", [psf.gaussian, psf.lorentzian], ids=["gaussian", "lorentzian"])
@given(data=st.data())
def test_fuzz_idealized(fn, data):
    good = dict(shape=SHAPES, fwhm=st.one_of(pos, st.tuples(pos, pos, pos)), voxel_size=st.one_of(pos, st.just(1.0)),
                centre=st.sampled_from(["fft", "middle"]), normalize=st.sampled_from(["sum", "peak", None]),
                oversample=st.sampled_from([1, 3]), dtype=st.sampled_from([np.float32, np.float64]))
    kw = kwargs_from(data.draw, good)
    check_contract(fn, kw.pop("shape"), kw.pop("fwhm"), **kw)


WF_GOOD = dict(na=st.floats(0.1, 1.4), wavelength_nm=st.floats(400, 700), immersion_index=st.just(1.515),
               sample_index=st.sampled_from([None, 1.33, 1.515]), depth_nm=st.sampled_from([0.0, 2000.0]),
               apodization=st.sampled_from(["aplanatic", "uniform"]))


@given(data=st.data())
def test_fuzz_widefield(data):
    good = dict(WF_GOOD, shape=st.one_of(st.tuples(sizes, sizes), st.tuples(sizes, sizes, sizes)),
                voxel_size_nm=st.one_of(st.floats(40, 300), st.tuples(st.floats(100, 300), pos, pos)),
                oversample=st.sampled_from([1, 3]), centre=st.sampled_from(["fft", "middle"]),
                axial_origin=st.sampled_from(["nominal", "paraxial", "peak"]),
                normalize=st.sampled_from(["sum", "peak", None]), dtype=st.just(np.float32),
                quadrature_nodes=st.sampled_from([None, 64]))
    kw = kwargs_from(data.draw, good)
    check_contract(psf.widefield, kw.pop("shape"), **kw)


@given(data=st.data())
def test_fuzz_focal_shift(data):
    check_contract(psf.focal_shift, **kwargs_from(data.draw, WF_GOOD))


@st.composite
def bead_images(draw):
    nd = draw(st.sampled_from([2, 3]))
    shape = tuple(draw(st.integers(3, 12)) for _ in range(nd))
    rng = np.random.default_rng(draw(st.integers(0, 99)))
    a = rng.normal(100.0, 2.0, shape)
    c = np.meshgrid(*[np.arange(n) - n // 2 for n in shape], indexing="ij")
    a += 5000 * np.exp(-sum(x.astype(float) ** 2 for x in c) / 2.0)
    dtype = draw(st.sampled_from([np.float32, np.float64, np.uint16]))
    return _layout(draw, a.astype(dtype))


@given(data=st.data())
def test_fuzz_psf_from_beads(data):
    image = data.draw(st.one_of(bead_images(), bead_images(), arrays()))
    nd = image.ndim
    good = dict(voxel_size=st.one_of(st.floats(0.05, 300), st.just((200.0, 65.0, 65.0)[-nd:] if nd in (2, 3) else 1.0)),
                target_voxel_size=st.sampled_from([None, 0.5, 100.0]), shape=st.sampled_from([None, (3,) * max(nd, 1)]),
                background=st.sampled_from(["auto", 0.0, 50.0]), local_background=st.booleans(),
                threshold=st.floats(0, 1), min_snr=st.floats(0, 10), min_distance=st.sampled_from([None, 1.0]),
                max_beads=st.sampled_from([None, 1, 3]), saturation=st.sampled_from(["auto", None, 1e4]),
                reject_saturated=st.booleans(), register=st.booleans(), average=st.sampled_from(["weighted", "median"]),
                centre=st.sampled_from(["fft", "middle"]), normalize=st.sampled_from(["sum", "peak", None]),
                bead_diameter=st.sampled_from([None, 0.01, 100.0]), bead_iterations=st.sampled_from([0, 2]),
                dtype=st.just(np.float32))
    kw = kwargs_from(data.draw, good)
    check_contract(psf.psf_from_beads, image, kw.pop("voxel_size"), **kw)


@given(data=st.data())
def test_fuzz_bead_kernel(data):
    good = dict(diameter=st.floats(1, 400), voxel_size=st.one_of(st.floats(20, 200), st.tuples(pos, pos, pos),
                                                                   st.tuples(pos, pos)),
                ndim=st.sampled_from([None, 2, 3]), subsamples=st.sampled_from([1, 3, 9]))
    kw = kwargs_from(data.draw, good)
    if kw.get("ndim") is not None and isinstance(kw.get("voxel_size"), tuple) and kw["ndim"] != len(kw["voxel_size"]):
        kw["ndim"] = None
    check_contract(bead_kernel, kw.pop("diameter"), kw.pop("voxel_size"), **kw)


# -- deconvolution --------------------------------------------------------------------------
COMMON = dict(recenter=st.booleans(), psf_threshold=st.sampled_from([0.0, 1e-4, 0.1]), axes=st.just(None),
              voxel_size=st.just(None), psf_voxel_size=st.just(None), memory_limit=st.sampled_from([None, "1GB"]))


def _image_psf(data):
    image = data.draw(st.one_of(images(), images(), arrays()))
    kernel = data.draw(st.one_of(small_psfs(), small_psfs(), arrays(max_dims=3)))
    return image, kernel


@given(data=st.data())
def test_fuzz_convolve(data):
    image, kernel = _image_psf(data)
    kw = kwargs_from(data.draw, dict(COMMON, edges=st.sampled_from(["reflect", "periodic", "zero"])))
    check_contract(deconvolve.convolve, image, kernel, **kw)


@given(data=st.data())
def test_fuzz_wiener(data):
    image, kernel = _image_psf(data)
    kw = kwargs_from(data.draw, dict(COMMON, regularization=st.sampled_from([None, "imspector", "gcv", 1e-3]),
                                     edges=st.sampled_from(["reflect", "periodic"]),
                                     negative_fraction=st.floats(0.01, 0.5)))
    check_contract(deconvolve.wiener, image, kernel, **kw)


@given(data=st.data())
def test_fuzz_richardson_lucy(data):
    image, kernel = _image_psf(data)
    good = dict(COMMON, iterations=st.integers(0, 4), regularization=st.sampled_from([None, "tv", "tikhonov"]),
                weight=st.sampled_from([None, 1e-3]), acceleration=st.sampled_from([None, "biggs-andrews"]),
                edges=st.sampled_from(["non-circulant", "periodic", "reflect"]), snapshot_every=st.sampled_from([None, 2]),
                stop=st.sampled_from([None, 1e-3, "discrepancy"]),
                background=st.sampled_from([0.0, 1.0, "auto", [1.0], (0.5, 0.5)]),
                read_noise=st.sampled_from([0.0, 2.0]), track_deviance=st.sampled_from([None, True]),
                back_projector=st.sampled_from([None, "wiener-butterworth"]))
    kw = kwargs_from(data.draw, good)
    check_contract(deconvolve.richardson_lucy, image, kernel, **kw)


@given(data=st.data())
def test_fuzz_iterative_deconvolve_3d(data):
    image, kernel = _image_psf(data)
    good = dict(normalize=st.booleans(), gamma=st.sampled_from([0.0, 1e-3]), lowpass_xy=st.sampled_from([0.0, 1.0]),
                lowpass_z=st.sampled_from([0.0, 1.0]), max_iterations=st.integers(0, 4),
                terminate=st.sampled_from([0.01, -1000.0]), anti_ringing=st.booleans(), detect_divergence=st.booleans(),
                db=st.just(False), compat=st.booleans(), axes=st.just(None), memory_limit=st.just(None))
    kw = kwargs_from(data.draw, good)
    check_contract(deconvolve.iterative_deconvolve_3d, image, kernel, **kw)


@given(data=st.data())
def test_fuzz_estimate_memory(data):
    shape = st.one_of(st.tuples(st.integers(1, 64), st.integers(1, 64)),
                      st.tuples(st.integers(1, 64), st.integers(1, 64), st.integers(1, 64)))
    good = dict(method=st.sampled_from(["richardson-lucy", "wiener", "convolve", "iterative-deconvolve-3d"]),
                image_shape=shape, psf_shape=shape)
    kw = kwargs_from(data.draw, good)
    result = check_contract(deconvolve.estimate_memory, kw.pop("method"), kw.pop("image_shape"), kw.pop("psf_shape"))
    if not isinstance(result, BaseException):
        assert isinstance(result, int) and result > 0


# -- files ------------------------------------------------------------------------------------
HEADERS = [b"", b"II*\x00", b"MM\x00*", b"II+\x00\x08\x00\x00\x00", b"\x93NUMPY\x01\x00", b"\x89HDF"]


@given(head=st.sampled_from(HEADERS), body=st.binary(max_size=2048),
       suffix=st.sampled_from([".tif", ".tiff", ".npy", ".ome.tif", ".TIF"]),
       axes=st.sampled_from([None, "ZYX", "YX", "abc"]))
def test_fuzz_read_image(head, body, suffix, axes):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"fuzz{suffix}"
        path.write_bytes(head + body)
        result = check_contract(io.read_image, path, axes=axes, files=(path,), finite=False)
        if not isinstance(result, BaseException):
            arr, _cal = result
            assert arr.size > 0, "read_image returned an empty array"


@given(array=arrays(max_dims=5, max_side=4),
       suffix=st.sampled_from([".tif", ".ome.tif", ".npy"]),  # .npy: refused by name (it once got TIFF bytes)
       overwrite=st.sampled_from([False, True, "False"]))
def test_fuzz_write_image(array, suffix, overwrite):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"out{suffix}"
        result = check_contract(io.write_image, path, array, overwrite=overwrite, files=(path,), finite=False)
        if isinstance(result, BaseException):
            leftovers = sorted(p.name for p in Path(d).iterdir())
            assert not any(n.startswith("out") for n in leftovers), f"a refused write left {leftovers}"
        else:
            assert array.size > 0, "an empty array was written"
            back, _cal = io.read_image(result)
            assert back.size == array.size and back.shape[-2:] == array.shape[-2:], \
                f"{array.shape} read back as {back.shape}"


# -- the reliability cases (shared/cases/reliability 8, 9, 10, 12), pinned -------------------
BEADS = np.random.default_rng(0).normal(10.0, 1.0, (16, 32, 32))
BEADS[8, 16, 16] += 1000


def _raises(exc, name, fn, *args, **kwargs):
    with pytest.raises(exc) as info:
        check_contract(fn, *args, **kwargs)  # the contract, then the exact error
        fn(*args, **kwargs)
    assert str(info.value).startswith(f"{name}:"), str(info.value)


def _refused(exc, name, fn, *args, **kwargs):
    r = check_contract(fn, *args, **kwargs)
    assert isinstance(r, exc), f"not refused: {r!r}"
    assert str(r).startswith(f"{name}:"), str(r)


@pytest.mark.parametrize("key", ["compat", "db"])
def test_case8_string_for_bool_names_the_parameter(key):
    _refused(TypeError, key, psf.diffraction_psf_3d, width=8, height=8, depth=4, **{key: "False"})


IMG = np.random.default_rng(1).poisson(20, (8, 8, 8)).astype(np.float32)
PSF = np.ones((3, 3, 3), np.float32)


@pytest.mark.parametrize("fn,kwargs,name", [
    (deconvolve.wiener, dict(negative_fraction="abc"), "negative_fraction"),
    (deconvolve.wiener, dict(psf_threshold=None), "psf_threshold"),
    (deconvolve.wiener, dict(recenter="False"), "recenter"),
    (deconvolve.wiener, dict(negative_fraction=float("nan")), "negative_fraction"),
    (deconvolve.convolve, dict(psf_threshold=None), "psf_threshold"),
    (deconvolve.richardson_lucy, dict(weight="abc", regularization="tv"), "weight"),
    (deconvolve.richardson_lucy, dict(snapshot_every=float("nan")), "snapshot_every"),
    (deconvolve.richardson_lucy, dict(background="abc"), "background"),
    (deconvolve.richardson_lucy, dict(voxel_size=5, psf_voxel_size=(1, 1, 1)), "voxel_size"),
    (deconvolve.iterative_deconvolve_3d, dict(max_iterations=float("nan")), "max_iterations"),
])
def test_case9_bad_values_name_the_parameter(fn, kwargs, name):
    r = check_contract(fn, IMG, PSF, **kwargs)
    assert isinstance(r, (TypeError, ValueError)) and str(r).startswith(f"{name}:"), repr(r)


@pytest.mark.parametrize("kwargs,name", [
    (dict(background="abc"), "background"), (dict(threshold="0.2"), "threshold"), (dict(register="False"), "register"),
    (dict(voxel_size=("1", 1, 1)), "voxel_size[0]"), (dict(max_beads=float("nan")), "max_beads"),
])
def test_case9_beads_bad_values(kwargs, name):
    kw = dict(dict(voxel_size=1.0), **kwargs)
    _refused((TypeError, ValueError), name, psf.psf_from_beads, BEADS, kw.pop("voxel_size"), **kw)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("fn,args,kwargs,name", [
    (psf.widefield, ((4, 8, 8),), dict(voxel_size_nm=100, na=1.0, wavelength_nm=1e-12), "wavelength_nm"),
    (psf.focal_shift, (), dict(na=1.0, wavelength_nm=500, sample_index=2.9, depth_nm=1e12), "depth_nm"),  # (1e30: sample_index)
    (psf.diffraction_psf_3d, (), dict(width=8, height=8, depth=4, wavelength=1e-30), "wavelength"),
    (psf.diffraction_psf_3d, (), dict(width=8, height=8, depth=4, wavelength=1e-30, compat=False), "wavelength"),
    (psf.diffraction_psf_3d, (), dict(width=64, height=64, depth=32, pixel_spacing=1e9), "pixel_spacing"),
    (psf.diffraction_psf_3d, (), dict(width=10**6, height=10**6, depth=4), "width"),
    (psf.psf_from_beads, (BEADS, 1.0), dict(shape=(7, 7, 7), bead_diameter=150), "bead_diameter"),
    (psf.psf_from_beads, (np.pad(np.full((2, 6, 8), 10.0), 1, constant_values=10.0) + np.pad(
        np.ones((1, 1, 1)) * 1000, ((2, 1), (4, 3), (5, 4))), 100), dict(target_voxel_size=1.5), "target_voxel_size"),
    (bead_kernel, (1e6, 1.0), {}, "bead_diameter"),
    (psf.widefield, ((4, 8, 8),), dict(voxel_size_nm=100, na=1.0, wavelength_nm=500, oversample=1001), "oversample"),
    (psf.focal_shift, (), dict(na=5e-324, wavelength_nm=400, sample_index=1.33, depth_nm=2000), "na"),  # was 1/0
    (psf.diffraction_psf_3d, (), dict(width=4, height=4, depth=2, na=1e-200, compat=False), "na"),  # was all NaN
    (psf.widefield, ((3, 4, 4),), dict(voxel_size_nm=100, na=5e-324, wavelength_nm=400), "na"),  # was all NaN
    (psf.gaussian, ((10**5, 10**5, 10**5), 2.0), {}, "shape"),
    (psf.lorentzian, ((64, 64, 64), 2.0), dict(oversample=99), "oversample"),
])
def test_case10_size_checked_before_allocating(fn, args, kwargs, name):
    r = check_contract(fn, *args, **kwargs)
    assert isinstance(r, (ValueError, MemoryError)), f"not refused: {r!r}"
    assert str(r).startswith(f"{name}:"), str(r)


def test_case10_absurd_work_is_refused_quickly():
    import time

    t0 = time.perf_counter()
    for kw in (dict(wavelength=1e-30), dict(wavelength=1e-30, compat=False), dict(index=1e10, na=0.1)):
        check_contract(psf.diffraction_psf_3d, width=8, height=8, depth=4, **kw)
    assert time.perf_counter() - t0 < 2.0


def test_case7_tiny_aperture_ratio_is_refused_or_finite():
    # compat mode computes in float32 like the original: the PSF would underflow to 0 -> NaN
    r = check_contract(psf.diffraction_psf_3d, width=8, height=8, depth=4, index=1e10, na=0.1)
    assert isinstance(r, ValueError) and str(r).startswith("na:")
    ok = check_contract(psf.diffraction_psf_3d, width=8, height=8, depth=4, index=1e10, na=0.1, compat=False)
    assert isinstance(ok, np.ndarray) and abs(float(ok.sum()) - 1.0) < 1e-5


@pytest.mark.parametrize("shape", [(3, 0), (0,), (0, 4, 4), (2, 0, 3, 3)])
def test_case12_write_image_refuses_empty(tmp_path, shape):
    r = check_contract(io.write_image, tmp_path / "e.tif", np.zeros(shape, np.float32), files=(tmp_path / "e.tif",))
    assert isinstance(r, ValueError), f"an empty {shape} array was written: {r!r}"
    assert not (tmp_path / "e.tif").exists()


@pytest.mark.parametrize("image,kernel", [
    (np.array(1.0 + 0j, np.complex64), np.array(1, np.uint16)),   # 0-d complex image
    (np.array(True), np.array(-(2**63))),                          # 0-d arrays
    (np.ones((4, 4), np.complex64), PSF),                          # complex image
])
def test_found_iterative_deconvolve_3d_names_image(image, kernel):
    r = check_contract(deconvolve.iterative_deconvolve_3d, image, kernel)
    assert isinstance(r, (TypeError, ValueError)) and str(r).startswith("image: ")


def test_found_write_image_npy_reads_back(tmp_path):
    a = np.array([[True]])
    r = check_contract(io.write_image, tmp_path / "out.npy", a, files=(tmp_path / "out.npy",), finite=False)
    if not isinstance(r, BaseException):  # written: it must read back as what was written
        back, _cal = io.read_image(r)
        assert back.shape == a.shape
    else:  # or refused by name: no TIFF bytes under a .npy name
        assert str(r).startswith("output: ") and not (tmp_path / "out.npy").exists()


@pytest.mark.parametrize("shape", [(2, 1, 1), (2, 2, 1), (1, 2, 1), (2, 3, 1, 1)])
def test_found_write_image_one_pixel_planes_read_back(tmp_path, shape):
    a = np.ones(shape, np.float32)
    r = check_contract(io.write_image, tmp_path / "out.tif", a, files=(tmp_path / "out.tif",), finite=False)
    if not isinstance(r, BaseException):
        back, _cal = io.read_image(r)
        assert back.size == a.size and back.shape[-2:] == a.shape[-2:], f"{a.shape} read back as {back.shape}"
    else:  # or refused in one line naming the array
        assert str(r).startswith("array: ") and not (tmp_path / "out.tif").exists()


@given(text=st.one_of(st.text(max_size=12), st.text(alphabet="0123456789.,; -eEinfatuAU", max_size=14)))
def test_fuzz_background_text_of_the_faces(text):
    """The CLI/dialog text of ``background``: a float >= 0, a tuple of them, 'auto', or one line naming it."""
    from fijidecon.deconvolve import _background

    try:
        got = _background.parse(text)
    except ALLOWED as e:
        assert NAME.match(str(e)) and str(e).startswith("background: ") and "\n" not in str(e), str(e)
        return
    vals = got if isinstance(got, tuple) else (got,)
    assert got == "auto" or all(isinstance(v, float) and np.isfinite(v) and v >= 0 for v in vals), got
