"""Every method on (T, C, Z, Y, X) data in any axis order, and on xarray DataArrays (cases 7, 8)."""

from __future__ import annotations

import numpy as np
import pytest

from fijidecon.deconvolve import convolve, iterative_deconvolve_3d, richardson_lucy, wiener


def _gauss(shape, sigma):
    grids = np.indices(shape, dtype=float)
    r2 = sum(((g - n // 2) / s) ** 2 for g, n, s in zip(grids, shape, sigma))
    return np.exp(-r2 / 2)


PSFS = [_gauss((7, 9, 9), (1.2, 1.5, 1.5)), _gauss((9, 11, 11), (2.0, 2.5, 2.5))]


def _volumes(n_t=2, n_c=2, shape=(10, 24, 24), seed=0):
    """(T, C, Z, Y, X) truth blurred per channel with its PSF; channel c is (c*4+1) x channel 0."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n_t, n_c) + shape, np.float32)
    for t in range(n_t):
        obj = np.zeros(shape, np.float32)
        obj[tuple(rng.integers(2, n - 2, 6) for n in shape)] = rng.uniform(500, 1500, 6)
        for c in range(n_c):
            out[t, c] = convolve(obj, PSFS[c], edges="constant") * (4 * c + 1) + 2
    return out


METHODS = {
    "rl": lambda im, p, **k: richardson_lucy(im, p, 5, background=2, **k).image,
    "wiener": lambda im, p, **k: wiener(im, p, 1e-3, **k).image,
    "convolve": lambda im, p, **k: convolve(im, p, **k),
    "iterative3d": lambda im, p, **k: iterative_deconvolve_3d(im, p, max_iterations=3, terminate=-1000, **k).image,
}


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("axes", ["TCZYX", "TZCYX", "ZCYX", "CZYX", "ZTYX", "TZYX"])
def test_each_volume_with_its_channel_psf_in_any_axis_order(method, axes):
    fn = METHODS[method]
    data = _volumes()
    canon = "TCZYX"
    keep = [a for a in canon if a in axes]
    sub = data
    for a in reversed(canon):  # drop the axes this layout has not got (take index 0)
        if a not in axes:
            sub = np.take(sub, 0, axis=canon.index(a))
    order = [keep.index(a) for a in axes]
    img = np.ascontiguousarray(np.transpose(sub, order))
    n_c = img.shape[axes.index("C")] if "C" in axes else 1
    psf = PSFS[:n_c] if n_c > 1 else PSFS[0]
    out = fn(img, psf, axes=axes)
    assert out.shape == img.shape and out.dtype == np.float32
    # each volume equals the single-volume call with its channel's PSF
    back = np.transpose(out, [axes.index(a) for a in keep])
    back = back.reshape((data.shape[0] if "T" in axes else 1, n_c) + data.shape[2:])
    ref_in = np.transpose(img, [axes.index(a) for a in keep]).reshape(back.shape)
    for t in range(back.shape[0]):
        for c in range(n_c):
            np.testing.assert_allclose(back[t, c], fn(ref_in[t, c], PSFS[c]), rtol=1e-5, atol=1e-4 * back.max())


def test_channel_ratio_is_kept_through_richardson_lucy():
    data = np.clip(_volumes(n_t=1, n_c=2)[0] - 2, 0, None)
    out = richardson_lucy(data, PSFS, 20, axes="CZYX").image
    # non-circulant edges also restore the flux blurred out of the box: the true ratio is 5
    assert out[1].sum() / out[0].sum() == pytest.approx(5.0, rel=0.02)


def test_five_d_hyperstack_runs_per_time_point_and_channel():
    """Case 8: T=3, Z=10, C=2 in ImageJ order.  Before: 'image: expected a 2D, 3D or 4D array'."""
    data = _volumes(n_t=3, n_c=2)  # (T, C, Z, Y, X)
    tzcyx = np.ascontiguousarray(data.transpose(0, 2, 1, 3, 4))
    res = richardson_lucy(tzcyx, np.stack(PSFS[:1] * 2), 4, axes="TZCYX", background=2)
    assert res.image.shape == tzcyx.shape and len(res.history) == 6
    np.testing.assert_allclose(res.image[2, :, 1], richardson_lucy(data[2, 1], PSFS[0], 4, background=2).image,
                               rtol=1e-5, atol=1e-3)


def test_resume_and_snapshots_of_a_hyperstack():
    data = _volumes(n_t=2, n_c=2)
    a = richardson_lucy(data, PSFS, 6, axes="TCZYX", background=2, snapshot_every=3)
    b = richardson_lucy(data, PSFS, 3, axes="TCZYX", background=2)
    b = richardson_lucy(data, PSFS, 3, axes="TCZYX", background=2, start=b)
    np.testing.assert_allclose(a.image, b.image, rtol=1e-6, atol=1e-5)
    assert set(a.snapshots) == {3, 6} and a.snapshots[3].shape == data.shape


def test_xarray_dims_name_the_axes():
    xr = pytest.importorskip("xarray")
    data = _volumes(n_t=1, n_c=2)[0]  # (C, Z, Y, X)
    zcyx = data.transpose(1, 0, 2, 3)
    da = xr.DataArray(zcyx, dims=("z", "c", "y", "x"), coords={"x": np.arange(24) * 0.1}, attrs={"unit": "micron"})
    out = wiener(da, PSFS, 1e-3).image
    assert isinstance(out, xr.DataArray) and out.dims == da.dims and out.attrs == da.attrs
    np.testing.assert_allclose(out.values, wiener(zcyx, PSFS, 1e-3, axes="ZCYX").image)
    psf_da = xr.DataArray(np.stack(PSFS[:1] * 2), dims=("c", "z", "y", "x"))
    assert convolve(da, psf_da).shape == da.shape
    with pytest.raises(ValueError, match="dimension"):
        convolve(xr.DataArray(zcyx, dims=("z", "q", "y", "x")), PSFS[0])


def test_a_dataarrays_calibrated_coords_are_its_voxel_size():
    """A fresh notebook user: coords with steps and a unit were ignored (`psf_voxel_size: not used without
    the image's voxel_size`), so the PSF was not resampled; index coords without a unit are no voxel size."""
    xr = pytest.importorskip("xarray")
    data = _volumes(n_t=1, n_c=1)[0][0]  # (Z, Y, X)
    nz, ny, nx = data.shape
    da = xr.DataArray(data, dims=("z", "y", "x"), attrs={"unit": "micron"},
                      coords={"z": np.arange(nz) * 0.3, "y": np.arange(ny) * 0.1, "x": np.arange(nx) * 0.1})
    psf = PSFS[0]
    got = richardson_lucy(da, psf, 3, psf_voxel_size=(0.15, 0.05, 0.05))
    want = richardson_lucy(data, psf, 3, psf_voxel_size=(0.15, 0.05, 0.05), voxel_size=(0.3, 0.1, 0.1))
    assert any("resampled" in n for n in got.notes), got.notes
    np.testing.assert_array_equal(np.asarray(got.image), want.image)
    # a single volume's result is a DataArray with the input's coords (a verifier: richardson_lucy gave a bare
    # ndarray, so write_image(path, result.image) lost the calibration the other methods keep)
    assert isinstance(got.image, xr.DataArray) and got.image.attrs == da.attrs
    assert np.allclose(got.image.coords["z"], da.coords["z"])
    psf_da = xr.DataArray(psf, dims=("z", "y", "x"), attrs={"unit": "nm"},
                          coords={d: np.arange(n) * s for d, n, s in zip("zyx", psf.shape, (150.0, 50.0, 50.0))})
    both = wiener(da, psf_da, 1e-3)  # the PSF's coords in nm, converted to the image's micron
    np.testing.assert_allclose(np.asarray(both.image), wiener(data, psf, 1e-3, voxel_size=(0.3, 0.1, 0.1),
                                                              psf_voxel_size=(0.15, 0.05, 0.05)).image, atol=1e-5)
    index = xr.DataArray(data, dims=("z", "y", "x"), coords={d: np.arange(n) for d, n in zip("zyx", data.shape)})
    with pytest.warns(RuntimeWarning, match="^psf_voxel_size: not used without the image's voxel_size"):
        richardson_lucy(index, psf, 2, psf_voxel_size=(0.15, 0.05, 0.05))


@pytest.mark.parametrize("axes,match", [("ZYX", "names 3 axes"), ("ZZYX", "repeated"), ("ZCYT", "Y and X"),
                                        ("ZCYXS", "unknown axis"), ("ZCXY", "must be in ZYX order"),
                                        ("CXYZ", "must be in ZYX order")])
def test_bad_axes_name_the_parameter(axes, match):
    with pytest.raises(ValueError, match=f"axes: .*{match}|axes: {match}"):
        richardson_lucy(np.ones((2, 4, 8, 8), np.float32), PSFS[0], 1, axes=axes)
    with pytest.raises(TypeError, match="axes"):
        convolve(np.ones((4, 8, 8)), PSFS[0], axes=3)


def test_psf_count_must_match_the_channels():
    img = np.ones((3, 4, 8, 8), np.float32)
    with pytest.raises(ValueError, match="psf: 2 PSFs given for 3 channel"):
        wiener(img, PSFS, axes="CZYX")
    with pytest.raises(ValueError, match="psf: shape .* 2 channel PSFs"):
        convolve(img, np.stack(PSFS[:1] * 2), axes="CZYX")


@pytest.mark.parametrize("method", ["rl", "wiener", "iterative3d"])
def test_one_psf_for_every_channel_is_prepared_once_and_named_psf(method):
    """Six channels, one PSF to resample: one note naming ``psf`` (not six naming psf[0]..psf[5]);
    one PSF per channel: each note names its channel's PSF."""
    img = np.tile(_volumes(n_t=1, n_c=1)[0], (6, 1, 1, 1))
    kw = dict(axes="CZYX", voxel_size=(0.3, 0.1, 0.1), psf_voxel_size=(0.2, 0.05, 0.05))
    fn = {"rl": lambda p: richardson_lucy(img, p, 1, **kw), "wiener": lambda p: wiener(img, p, 1e-3, **kw),
          "iterative3d": lambda p: iterative_deconvolve_3d(img, p, max_iterations=1, **kw)}[method]
    resampled = [n for n in fn(PSFS[0]).notes if "resampled" in n]
    assert len(resampled) == 1 and resampled[0].startswith("psf: resampled from voxel size (0.2, 0.05, 0.05)")
    each = [n.split(":")[0] for n in fn([PSFS[c % 2].copy() for c in range(6)]).notes if "resampled" in n]
    assert each == [f"psf[{c}]" for c in range(6)]
    reused = [n.split(":")[0] for n in fn([PSFS[0], PSFS[1]] * 3).notes if "resampled" in n]
    assert reused == ["psf[0]", "psf[1]"]  # the same array given for channels 0, 2, 4: prepared once


def test_spatial_axes_out_of_order_are_refused_not_computed_in_the_wrong_order():
    """axes='XYZ' gave the same result as 'ZYX' (the PSF's Z profile along X), in memory and lazy."""
    da = pytest.importorskip("dask.array")
    img = np.ones((16, 12, 8), np.float32)
    for image in (img, da.from_array(img)):
        with pytest.raises(ValueError, match=r"^axes: the spatial axes of 'XYZ' are in XYZ order; they must be in "
                                             r"ZYX order"):
            richardson_lucy(image, PSFS[0], 2, axes="XYZ")


@pytest.mark.parametrize("method", list(METHODS))
def test_a_bad_psf_among_several_is_named_by_its_index(method):
    """Iterative Deconvolve 3D said 'psf: contains NaN' for the second of three PSFs."""
    img = np.random.default_rng(3).random((3, 8, 16, 16), dtype=np.float32) + 3
    bad = PSFS[0].copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"^psf\[1\]: contains 1 NaN or infinite value\(s\) of \d+ \(the first "
                                         r"at index \(0, 0, 0\)\); replace them \(np.nan_to_num"):
        METHODS[method](img, [PSFS[0], bad, PSFS[0].copy()], axes="CZYX")


def test_a_psf_given_as_a_nested_list_is_one_psf():
    """psf.tolist() was read as one PSF per plane ('psf: 15 PSFs given for 40 channel(s)': the image
    taken as 40 channels of 2D planes); a nested list of numbers is one PSF, as numpy reads it, and
    gives the array's result; a list of arrays stays one PSF per channel."""
    import warnings

    from fijidecon.deconvolve import convolve, richardson_lucy, wiener
    from fijidecon.psf import gaussian

    img = np.random.default_rng(1).random((20, 40, 40), dtype=np.float32) + 1
    p = gaussian((7, 11, 11), (2.0, 2.0, 2.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(richardson_lucy(img, p.tolist(), 2).image, richardson_lucy(img, p, 2).image)
        np.testing.assert_array_equal(wiener(img, p.tolist(), 1e-3).image, wiener(img, p, 1e-3).image)
        np.testing.assert_array_equal(convolve(img[3], p[3].tolist()), convolve(img[3], p[3]))
        two = richardson_lucy(np.stack([img, 2 * img]), [p, p], 2).image
    assert two.shape == (2, 20, 40, 40)


def test_a_zcyx_stack_without_axes_is_warned_about():
    """np.stack([a, b], axis=1) on two 40-plane volumes ran as 40 channels of 2 planes, silently (a
    note about a cropped PSF was the only sign); now a warning names axes='ZCYX'.  CZYX-looking
    stacks, or axes given, do not warn."""
    import warnings

    from fijidecon.deconvolve import richardson_lucy

    vol = np.random.default_rng(2).random((40, 24, 24), dtype=np.float32) + 1
    psf = np.ones((3, 5, 5), np.float32)
    with pytest.warns(RuntimeWarning, match=r"^image: shape \(40, 2, 24, 24\) read as axes 'CZYX' \(the default "
                                            r"for 4D\): 40 channels of 2 plane\(s\); .* give axes='ZCYX'"):
        richardson_lucy(np.stack([vol, vol], axis=1), psf, 1, background=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert richardson_lucy(np.stack([vol, vol], axis=1), psf, 1, axes="ZCYX",
                               background=0.5).image.shape == (40, 2, 24, 24)
        richardson_lucy(np.stack([vol, vol]), psf, 1, background=0.5)


def test_a_warning_about_every_volume_is_said_once():
    """A fresh notebook user's 3x2 hyperstack: Iterative Deconvolve 3D printed the same 'psf: it sits on a
    flat level' warning 6 times, stop='auto' 6 near-identical camera warnings (one per volume); now one
    warning each, the latter naming every volume."""
    import warnings

    rng = np.random.default_rng(3)
    vols = rng.poisson(np.clip(_volumes(n_t=3, n_c=2), 0, None) + 50).astype(np.float32) * 10  # gain 0.1
    wide = _gauss((9, 21, 21), (1.5, 2.0, 2.0))  # camera offsets are looked for in PSFs >= 15 px wide
    offset_psf = wide / wide.max() * 1000 + 100
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        iterative_deconvolve_3d(vols, offset_psf, max_iterations=2, compat=False, axes="TCZYX")
    flat = [str(w.message) for w in got if "flat level" in str(w.message)]
    assert len(flat) == 1, flat
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        richardson_lucy(vols, PSFS[0], 12, stop="auto", background=500, axes="TCZYX")
    camera = [str(w.message) for w in got if "photo-electrons" in str(w.message)]
    assert len(camera) == 1 and camera[0].startswith(
        "stop='auto' (volumes (t, c) (0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1); the figures of the first): "
        "the image"), camera
