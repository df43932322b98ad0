"""``to_imageplus`` on colour-shaped arrays (case 14 of ``shared/cases/real-data``): a uint8
array whose last axis has length 3 becomes an RGB ImagePlus; anything else that looks like
colour samples is taken as X with a warning naming ``axes=`` (real ImageJ 1.54p, Xvfb)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fijidecon.calibration import Calibration


@pytest.fixture(scope="module")
def convert(jvm):
    from fijidecon.fiji import convert

    return convert


def _rgb(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


@pytest.mark.parametrize("shape", [(40, 30, 3), (31, 17, 3), (3, 5, 3), (5, 40, 30, 3), (2, 3, 4, 3)])
def test_uint8_last_axis_3_is_rgb(convert, shape):
    a = _rgb(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: this is the unambiguous case
        imp = convert.to_imageplus(a, title="rgb")
    assert int(imp.getBitDepth()) == 24
    assert (int(imp.getHeight()), int(imp.getWidth())) == shape[-3:-1]
    assert int(imp.getStackSize()) == (shape[0] if len(shape) == 4 else 1)
    assert int(imp.getNChannels()) == 1
    b, cal = convert.from_imageplus(imp)
    assert cal.axes == ("ZYXS" if len(shape) == 4 else "YXS")
    assert np.array_equal(a, b)  # the same round trip as for an RGB image ImageJ opened
    # channel order: red is the first sample
    rgb = int(imp.getProcessor().getPixel(1, 2)) & 0xFFFFFF
    z0 = a[0] if len(shape) == 4 else a
    assert ((rgb >> 16) & 255, (rgb >> 8) & 255, rgb & 255) == tuple(int(v) for v in z0[2, 1])


def test_rgb_from_imagej_comes_back_as_rgb(convert, jvm):
    """An RGB image made by ImageJ goes numpy (Y, X, 3) and back to RGB unchanged."""
    ColorProcessor = jvm.jimport("ij.process.ColorProcessor")
    ImagePlus = jvm.jimport("ij.ImagePlus")
    cp = ColorProcessor(7, 5)
    cp.setColor(jvm.jimport("java.awt.Color")(200, 10, 60))
    cp.fill()
    cp.putPixel(3, 2, (1 << 16) | (2 << 8) | 3)
    a, _ = convert.from_imageplus(ImagePlus("made by ImageJ", cp))
    assert a.shape == (5, 7, 3) and a.dtype == np.uint8
    back = convert.to_imageplus(a)
    assert int(back.getBitDepth()) == 24
    def rgb(ip):  # the 24 colour bits (ImageJ ignores the alpha byte)
        return np.array(ip.getPixels()) & 0xFFFFFF

    assert np.array_equal(rgb(back.getProcessor()), rgb(cp))


@pytest.mark.parametrize("shape, dtype, hint", [
    ((40, 30, 3), np.uint16, "uint16"),          # 16-bit "RGB": no ImageJ type for it
    ((40, 30, 3), np.float32, "float32"),
    ((40, 30, 4), np.uint8, "RGBA"),            # RGBA: ImageJ has no alpha
    ((6, 40, 30, 4), np.uint8, "RGBA"),
    ((2, 2, 40, 30, 3), np.uint8, "TZYXS"),     # 5D: T or C first? only the caller knows
])
def test_colour_like_but_not_rgb_warns_naming_axes(convert, shape, dtype, hint):
    a = np.ones(shape, dtype)
    with pytest.warns(convert.AmbiguousAxesWarning, match=r"axes=") as rec:
        imp = convert.to_imageplus(a)
    assert hint in str(rec[0].message)
    assert int(imp.getBitDepth()) != 24
    assert int(imp.getWidth()) == shape[-1]  # taken as X, as the message says


@pytest.mark.parametrize("kwargs", [{"axes": "ZYX"}, {"calibration": Calibration.make("ZYX", unit="micron", Z=0.3)}])
def test_explicit_axes_win_without_warning(convert, kwargs):
    a = _rgb((40, 30, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        imp = convert.to_imageplus(a, **kwargs)
    assert int(imp.getBitDepth()) == 8
    assert (int(imp.getNSlices()), int(imp.getHeight()), int(imp.getWidth())) == (40, 30, 3)


def test_explicit_rgb_axes_and_plain_shapes_unchanged(convert):
    a = _rgb((30, 40, 3))
    assert int(convert.to_imageplus(a, axes="YXS").getBitDepth()) == 24
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for shape in ((30, 3), (3, 30, 40), (4, 30, 5), (2, 3, 30, 40)):  # no colour-like last axis
            imp = convert.to_imageplus(_rgb(shape))
            assert int(imp.getBitDepth()) == 8 and int(imp.getWidth()) == shape[-1]
