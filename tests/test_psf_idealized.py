"""Tests of the idealized Gaussian and Lorentzian PSFs (Imspector formulas)."""

import numpy as np
import pytest
from scipy.special import erf

from fijidecon.psf import gaussian, lorentzian

FUNCS = [gaussian, lorentzian]


def _formula(kind, shape, fwhm, vox, centre="fft"):
    """The Imspector formulas written out independently on a meshgrid."""
    coords = []
    for n, d in zip(shape, vox):
        c = n // 2 if centre == "fft" else (n - 1) / 2
        coords.append((np.arange(n) - c) * d)
    grids = np.meshgrid(*coords, indexing="ij")
    q = sum((g / (a / 2)) ** 2 for g, a in zip(grids, fwhm))
    return 2.0 ** (-q) if kind == "gaussian" else 1.0 / (q + 1.0)


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("shape", [(17,), (16, 20), (9, 16, 15)])
def test_shape_dtype_sum(func, shape):
    p = func(shape, 3.0)
    assert p.shape == shape
    assert p.dtype == np.float32
    assert abs(float(p.sum(dtype=np.float64)) - 1.0) < 1e-5
    assert p.min() >= 0
    assert tuple(np.unravel_index(p.argmax(), shape)) == tuple(n // 2 for n in shape)
    p64 = func(shape, 3.0, dtype=np.float64)
    assert p64.dtype == np.float64
    np.testing.assert_allclose(p, p64, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("kind", ["gaussian", "lorentzian"])
@pytest.mark.parametrize("centre", ["fft", "middle"])
def test_matches_imspector_formula(kind, centre):
    func = gaussian if kind == "gaussian" else lorentzian
    shape, fwhm, vox = (12, 21, 16), (600.0, 250.0, 300.0), (200.0, 65.0, 80.0)
    p = func(shape, fwhm, vox, centre=centre, normalize=None, dtype=np.float64)
    np.testing.assert_allclose(p, _formula(kind, shape, fwhm, vox, centre), rtol=1e-12)
    pk = func(shape, fwhm, vox, centre=centre, normalize="peak", dtype=np.float64)
    ref = _formula(kind, shape, fwhm, vox, centre)
    np.testing.assert_allclose(pk, ref / ref.max(), rtol=1e-12)


@pytest.mark.parametrize("func", FUNCS)
def test_fwhm_per_axis(func):
    # half maximum exactly at +-a/2: choose a/2 = whole number of voxels
    vox = (0.2, 0.05, 0.04)
    fwhm = (0.8, 0.3, 0.32)  # half widths of 2, 3, 4 voxels
    p = func((21, 31, 41), fwhm, vox, normalize="peak", dtype=np.float64)
    c = (10, 15, 20)
    assert p[c] == 1.0
    for ax, h in enumerate((2, 3, 4)):
        for sgn in (-1, 1):
            idx = list(c)
            idx[ax] += sgn * h
            assert p[tuple(idx)] == pytest.approx(0.5, abs=1e-12)
        # and strictly above half inside
        idx = list(c)
        idx[ax] += h - 1
        assert p[tuple(idx)] > 0.5


def test_centre_conventions():
    p = gaussian((8, 8), 2.0, centre="fft", normalize="peak")
    assert p[4, 4] == 1.0
    # ifftshift moves the fft centre to the origin
    assert np.fft.ifftshift(p)[0, 0] == 1.0
    m = gaussian((8, 8), 2.0, centre="middle")
    np.testing.assert_array_equal(m, m[::-1, ::-1])
    np.testing.assert_array_equal(m, m.T)
    assert np.argmax(m) in {27, 28, 35, 36}  # the four middle voxels are equal maxima
    assert m[3, 3] == m[4, 4] == m[3, 4]
    # odd sizes: both conventions agree
    np.testing.assert_array_equal(gaussian((9, 7), 2.0, centre="fft"), gaussian((9, 7), 2.0, centre="middle"))


def test_symmetry_fft_centre():
    p = lorentzian((9, 12, 12), (3.0, 2.0, 2.0), normalize=None, dtype=np.float64)
    # about index n//2: p[c + k] == p[c - k]
    np.testing.assert_allclose(p[:, 1:, 1:], p[:, 1:, 1:][:, ::-1, ::-1], rtol=1e-15)
    np.testing.assert_allclose(p, p[::-1], rtol=1e-15)
    np.testing.assert_allclose(p, np.swapaxes(p, 1, 2), rtol=1e-15)


def test_lorentzian_tails_are_inverse_square():
    p = lorentzian((401,), 2.0, normalize=None, dtype=np.float64)
    c = 200
    # 1 / ((x)^2 + 1) ~ 1/x^2: doubling the distance quarters the value
    assert p[c + 100] / p[c + 200] == pytest.approx(4.0, rel=1e-3)
    g = gaussian((401,), 2.0, normalize=None, dtype=np.float64)
    assert g[c + 10] < 1e-25 < p[c + 10]


def test_oversample_approximates_voxel_integral():
    # exact voxel integral of the 1-D Gaussian 2^(-(x/(a/2))^2) = exp(-x^2 / (2 s^2))
    a, n = 1.5, 21
    s = a / (2 * np.sqrt(2 * np.log(2)))
    x = np.arange(n) - n // 2
    exact = erf((x + 0.5) / (np.sqrt(2) * s)) - erf((x - 0.5) / (np.sqrt(2) * s))
    exact /= exact.sum()
    point = gaussian((n,), a, dtype=np.float64)
    over = gaussian((n,), a, oversample=9, dtype=np.float64)
    err_point = np.abs(point - exact).max()
    err_over = np.abs(over - exact).max()
    assert err_over < err_point / 20
    assert err_over < 2e-3
    # 3-D oversampled Lorentzian: still normalized, still peaked at the centre, flatter peak
    lo = lorentzian((7, 9, 9), 1.0, oversample=3)
    assert abs(float(lo.sum()) - 1) < 1e-5
    assert lo.max() < lorentzian((7, 9, 9), 1.0).max()


def test_inputs_not_modified_and_tuple_args():
    fwhm = np.array([3.0, 2.0])
    vox = [1.0, 0.5]
    gaussian((10, 10), fwhm, vox)
    np.testing.assert_array_equal(fwhm, [3.0, 2.0])
    assert vox == [1.0, 0.5]


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize(
    "kwargs, exc, word",
    [
        (dict(shape=(8, 8), fwhm=0.0), ValueError, "fwhm"),
        (dict(shape=(8, 8), fwhm=-1.0), ValueError, "fwhm"),
        (dict(shape=(8, 8), fwhm=float("nan")), ValueError, "fwhm"),
        (dict(shape=(8, 8), fwhm=float("inf")), ValueError, "fwhm"),
        (dict(shape=(8, 8), fwhm=(1.0, 2.0, 3.0)), ValueError, "fwhm"),
        (dict(shape=(8, 8), fwhm="2"), TypeError, "fwhm"),
        (dict(shape=(8, 8), fwhm=2.0, voxel_size=0), ValueError, "voxel_size"),
        (dict(shape=(8, 8), fwhm=2.0, voxel_size=(1, 2, 3)), ValueError, "voxel_size"),
        (dict(shape=8, fwhm=2.0), TypeError, "shape"),
        (dict(shape=(2, 2, 2, 2), fwhm=2.0), ValueError, "shape"),
        (dict(shape=(8, 0), fwhm=2.0), ValueError, "shape"),
        (dict(shape=(8, 2.5), fwhm=2.0), TypeError, "shape"),
        (dict(shape=(8, 8), fwhm=2.0, centre="corner"), ValueError, "centre"),
        (dict(shape=(8, 8), fwhm=2.0, normalize="max"), ValueError, "normalize"),
        (dict(shape=(8, 8), fwhm=2.0, dtype=np.int32), TypeError, "dtype"),
        (dict(shape=(8, 8), fwhm=2.0, oversample=2), ValueError, "oversample"),
        (dict(shape=(8, 8), fwhm=2.0, oversample=1.0), TypeError, "oversample"),
    ],
)
def test_bad_input(func, kwargs, exc, word):
    with pytest.raises(exc, match=word):
        func(**kwargs)


@pytest.mark.parametrize("kind", ["gaussian", "lorentzian"])
def test_command_description_calls_core(kind):
    from fijidecon.commands import modern_psf

    cmd = {"gaussian": modern_psf.GAUSSIAN_PSF, "lorentzian": modern_psf.LORENTZIAN_PSF}[kind]
    func = {"gaussian": gaussian, "lorentzian": lorentzian}[kind]
    keys = [p.key for p in cmd.params]
    assert len(keys) == len(set(keys))
    values = cmd.parse_macro("lateral=250 axial=700 pixel=65 slice=200 width,=32 height,=30 depth,=16 "
                             "normalization=[Peak = 1] title=mine")
    out = cmd.load()(**cmd.api_kwargs(values))
    ref = func((16, 30, 32), (700.0, 250.0, 250.0), (200.0, 65.0, 65.0), normalize="peak")
    np.testing.assert_array_equal(out, ref)
    assert cmd.parse_macro(cmd.to_macro(values)) == values
    flat = cmd.load()(**cmd.api_kwargs(dict(depth=1, width=20, height=20)))
    assert flat.shape == (20, 20)
    with pytest.raises(ValueError, match="fwhm"):
        cmd.load()(**cmd.api_kwargs(dict(fwhm_xy=0.0)))


def test_fwhm_and_voxel_size_in_two_units_warn():
    """gaussian(fwhm in µm, voxel_size in nm) gave a one-voxel PSF without a word; the physical models
    warned ('... in one unit?').  A sampled PSF of any sensible width does not warn."""
    import warnings

    with pytest.warns(UserWarning, match=r"^fwhm: \(0.7, 0.25, 0.25\) is \(0.00233, 0.00192, 0.00192\) voxels of "
                                         r"voxel_size \(300.0, 130.0, 130.0\) \(a PSF far narrower than one voxel\): "
                                         r"are fwhm and voxel_size in one unit\?$"):
        assert gaussian((15, 31, 31), fwhm=(0.7, 0.25, 0.25), voxel_size=(300, 130, 130)).max() == 1.0
    with pytest.warns(UserWarning, match=r"thousands of voxels wide\): are fwhm and voxel_size in one unit\?$"):
        lorentzian((31, 31), fwhm=250, voxel_size=0.13)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gaussian((15, 31, 31), fwhm=(700, 250, 250), voxel_size=(300, 130, 130))
        gaussian((3, 5, 5), 0.3)  # a third of a voxel: a deliberately sharp kernel
