"""convolve(): shapes, dtypes, flux, symmetry, the Gaussian (x) Gaussian case, edges, bad input."""

import numpy as np
import pytest
from scipy import ndimage, signal

from fijidecon.deconvolve import convolve


def gauss(shape, sigma, centre=None):
    centre = [n // 2 for n in shape] if centre is None else centre
    sigma = np.broadcast_to(np.asarray(sigma, float), (len(shape),))
    g = np.indices(shape, dtype=float)
    return np.exp(-0.5 * sum(((gi - c) / s) ** 2 for gi, c, s in zip(g, centre, sigma)))


@pytest.fixture
def img3():
    return np.random.default_rng(0).random((12, 20, 18)).astype(np.float32) * 100


def test_shape_dtype_and_input_untouched(img3):
    before = img3.copy()
    out = convolve(img3, gauss((5, 7, 7), 1.0))
    assert out.shape == img3.shape and out.dtype == np.float32
    np.testing.assert_array_equal(img3, before)
    out16 = convolve(img3.astype(np.uint16), gauss((5, 7, 7), 1.0))
    assert out16.dtype == np.float32


@pytest.mark.parametrize("edges", ["periodic", "reflect"])
def test_flux_is_preserved(img3, edges):
    out = convolve(img3, gauss((5, 7, 7), (1.0, 1.5, 1.5)), edges=edges)
    if edges == "periodic":
        assert abs(out.sum() / img3.sum() - 1) < 1e-5
    else:  # mirror padding keeps the mean within the boundary effect
        assert abs(out.sum() / img3.sum() - 1) < 2e-2


def test_gaussian_convolved_with_gaussian_is_wider_gaussian():
    shape = (64, 64)
    obj = gauss(shape, 2.0).astype(np.float32)
    obj /= obj.sum()
    out = convolve(obj, gauss((31, 31), 3.0), edges="periodic")
    expect = gauss(shape, np.sqrt(2.0 ** 2 + 3.0 ** 2))
    expect /= expect.sum()
    np.testing.assert_allclose(out, expect, atol=1e-3 * expect.max())


def test_matches_scipy_references():
    rng = np.random.default_rng(3)
    img = rng.random((30, 26)).astype(np.float32)
    k = gauss((7, 9), (1.2, 1.7))
    kn = (k / k.sum()).astype(np.float32)
    ref_const = signal.fftconvolve(img, kn, mode="same")
    np.testing.assert_allclose(convolve(img, k, edges="constant"), ref_const, atol=1e-5)
    ref_refl = ndimage.convolve(img, kn, mode="reflect")
    np.testing.assert_allclose(convolve(img, k, edges="reflect"), ref_refl, atol=1e-5)
    ref_wrap = ndimage.convolve(img, kn, mode="wrap")
    np.testing.assert_allclose(convolve(img, k, edges="periodic"), ref_wrap, atol=1e-5)


def test_symmetry_and_point_response():
    img = np.zeros((21, 21), np.float32)
    img[10, 10] = 1
    k = gauss((7, 7), (1.0, 2.0))
    out = convolve(img, k, edges="constant")
    np.testing.assert_allclose(out, out[::-1, ::-1], atol=1e-7)
    np.testing.assert_allclose(out[7:14, 7:14], k / k.sum(), atol=1e-6)


def test_channels_one_psf_each():
    img = np.zeros((2, 9, 16, 16), np.float32)
    img[:, 4, 8, 8] = 1
    psfs = [gauss((5, 5, 5), 0.8), gauss((5, 5, 5), 1.5)]
    out = convolve(img, psfs, edges="periodic")
    assert out.shape == img.shape
    np.testing.assert_allclose(out[0], convolve(img[0], psfs[0], edges="periodic"), atol=1e-7)
    assert out[0].max() > out[1].max()


def test_bad_input():
    img = np.ones((10, 10), np.float32)
    # a kernel bigger than the image is used (up to 2n - 1 for mirror/zero edges), not refused; a uniform box
    # kernel is a smoothing kernel, not an image given as the PSF (no swapped-arguments refusal or warning)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert convolve(img, np.ones((15, 15))).shape == img.shape
    bad = img.copy()
    bad[2, 2] = np.nan
    with pytest.raises(ValueError, match="image.*NaN"):
        convolve(bad, gauss((3, 3), 1))
    with pytest.raises(ValueError, match="psf.*zero"):
        convolve(img, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="dimensionality"):
        convolve(np.ones((4, 10, 10)), gauss((3, 3), 1))
    with pytest.raises(ValueError, match="edges"):
        convolve(img, gauss((3, 3), 1), edges="mirror")
    with pytest.raises(TypeError, match="image"):
        convolve(np.array([["a"]]), gauss((3, 3), 1))
    # negative values are fine for a linear filter
    assert convolve(img - 5, gauss((3, 3), 1)).min() < 0


def test_command_descriptions_drive_the_core_functions():
    """The three menu/CLI descriptions: unique macro keys, and the API keywords they produce run."""
    from fijidecon.commands.modern_deconv import COMMANDS

    img = np.zeros((8, 24, 24), np.float32)
    img[3:5, 10:14, 10:14] = 50
    psf = gauss((5, 7, 7), 1.0)
    data = convolve(img, psf) + 1
    seen = set()
    for cmd in COMMANDS:
        assert cmd.menu == "Plugins>Deconvolution" and cmd.title not in seen
        seen.add(cmd.title)
        fn = cmd.load()
        macro = cmd.to_macro({})
        values = cmd.parse_macro(macro)
        kwargs = cmd.api_kwargs({k: v for k, v in values.items() if cmd.param(k).kind != "image"})
        if cmd.id == "richardson-lucy":
            kwargs["iterations"] = 3
        out = np.asarray(fn(data, psf, **kwargs))
        assert out.shape == data.shape and out.dtype == np.float32
    rl = COMMANDS[2]
    v = rl.parse_macro("iterations=5 edges=Periodic acceleration=Biggs-Andrews stop=[Discrepancy principle "
                       "(data in photons)] snapshot=2")
    assert v["iterations"] == 5 and v["edges"] == "periodic" and v["acceleration"] == "biggs-andrews"
    assert v["stop"] == "discrepancy" and v["snapshot_every"] == 2


@pytest.mark.parametrize("edges", ["reflect", "periodic", "constant"])
def test_non_negative_inputs_give_a_non_negative_result(edges):
    """A fresh user's simulation: convolve a sparse object, then np.random.poisson, which refuses the
    FFT's round-off negatives (-2e-6 on real files); negative data keep their negative values."""
    rng = np.random.default_rng(3)
    obj = np.zeros((12, 40, 40), np.float32)
    obj[tuple(rng.integers(0, n, 30) for n in obj.shape)] = 1e4
    z, y, x = np.mgrid[-4:5, -6:7, -6:7]
    psf = np.exp(-(z**2 / 4.0 + (y**2 + x**2) / 2.0))
    out = convolve(obj, psf, edges=edges)
    assert out.min() >= 0
    rng.poisson(out)  # no ValueError: lam < 0
    ref = ndimage.convolve(obj.astype(np.float64), psf / psf.sum(), mode={"reflect": "reflect", "periodic": "wrap",
                                                                        "constant": "constant"}[edges])
    np.testing.assert_allclose(out, ref, atol=1e-3 * float(ref.max()))
    assert convolve(obj - 1.0, psf, edges=edges).min() < 0  # negative data (background subtracted) stay so
