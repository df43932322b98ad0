"""run_command: the one Java-free path from values + images to (result, image, calibration)
shared by the CLI, the ImageJ commands/scripts and attach."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from fijidecon.calibration import Calibration
from fijidecon.commands import get_command
from fijidecon.commands import run as run_mod
from fijidecon.commands.run import run_command


def test_docstring_examples():
    assert doctest.testmod(run_mod, optionflags=doctest.ELLIPSIS).failed == 0


def test_generator_equals_core_and_is_calibrated_from_its_spacings():
    from fijidecon.psf import diffraction_psf_3d

    cmd = get_command("diffraction-psf-3d")
    values = {"width": 16, "height": 12, "depth": 5, "pixel_spacing": 70.0, "slice_spacing": 180.0,
              "normalization": "Peak = 1", "title": "ignored by the core"}
    res, image, cal = run_command(cmd, values, {})
    want = diffraction_psf_3d(**cmd.api_kwargs(values))
    np.testing.assert_array_equal(image, want)
    assert image is res
    assert cal.axes == "ZYX" and cal.unit == "nm" and cal.voxel_size() == pytest.approx((180.0, 70.0, 70.0))
    _, _, cal_um = run_command(cmd, values, {}, unit="micron")
    assert cal_um.unit == "micron"


def _pair():
    rng = np.random.default_rng(3)
    img = (rng.random((6, 20, 20)) * 50 + 5).astype(np.float32)
    psf = np.zeros((5, 9, 9), np.float32)
    psf[2, 4, 4] = 1.0
    psf[2, 3:6, 3:6] += 0.1
    return img, psf / psf.sum()


def test_deconvolution_keeps_input_calibration_and_passes_voxel_size_on_request():
    from fijidecon.deconvolve import richardson_lucy

    img, psf = _pair()
    before = img.copy()
    cal = Calibration.make("ZYX", unit="micron", Z=0.5, Y=0.1, X=0.1)
    cmd = get_command("richardson-lucy")
    values = {"iterations": 3, "regularization": "tv", "weight": 0.01}
    seen = []
    res, image, ocal = run_command(cmd, values, {"image": (img, cal), "psf": (psf, Calibration.default(3))},
                                   callback=lambda *a: seen.append(a) and False, voxel_size_from_calibration=True)
    kw = cmd.api_kwargs(values)
    want = richardson_lucy(img, psf, voxel_size=(0.5, 0.1, 0.1), **kw)
    np.testing.assert_allclose(image, want.image, rtol=1e-6, atol=1e-7)
    assert ocal == cal and len(seen) == 3
    np.testing.assert_array_equal(img, before)  # inputs are not modified
    plain = run_command(cmd, values, {"image": (img, cal), "psf": (psf, Calibration.default(3))})[1]
    np.testing.assert_allclose(plain, richardson_lucy(img, psf, **kw).image, rtol=1e-6, atol=1e-7)
    assert not np.allclose(plain, image)  # the voxel size changes the regularised result


def test_bad_input_names_the_parameter():
    img, psf = _pair()
    cal = Calibration.default(3)
    with pytest.raises(ValueError, match="^psf: an image is required"):
        run_command(get_command("convolve"), {}, {"image": (img, cal)})
    with pytest.raises(ValueError, match="width"):
        run_command(get_command("gaussian-psf"), {"width": 0}, {})
    with pytest.raises(ValueError, match="unknown parameter"):
        run_command(get_command("gaussian-psf"), {"nonsense": 1}, {})
    with pytest.raises(TypeError, match="not an image"):
        run_mod.result_image({"image": img})


@pytest.mark.parametrize("psf_unit, said", [("pixel", "psf: no voxel size (uncalibrated) while the image has one"),
                                             ("inch", "psf: its unit 'inch' is not a length unit")])
def test_one_side_calibrated_is_said_with_the_reason(psf_unit, said):
    """A PSF in inches (ImageJ's unit for a TIFF with a print resolution) was reported as
    "no voxel size (uncalibrated)"; both are taken at the image's voxel size, each said."""
    import warnings

    img = np.ones((4, 8, 8), np.float32)
    psf = np.zeros((3, 3, 3), np.float32)
    psf[1, 1, 1] = 1
    cal = Calibration.make("ZYX", unit="micron", Z=0.3, Y=0.1, X=0.1)
    pcal = Calibration.make("ZYX", unit=psf_unit, Z=1.0, Y=0.01, X=0.01)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        res, _, _ = run_command(get_command("richardson-lucy"), {"iterations": 1}, {"image": (img, cal),
                                                                                     "psf": (psf, pcal)},
                                voxel_size_from_calibration=True)
    msgs = [str(w.message) for w in seen]
    assert any(m.startswith(said) and "the PSF is taken to be sampled at the image's voxel size" in m for m in msgs), msgs
    assert not any("psf_voxel_size" in m for m in msgs) and not any("taken to be sampled" in n for n in res.notes)


def test_an_image_without_a_length_unit_gets_one_message_about_the_psfs_voxel_size():
    """A fresh Fiji user: an image calibrated with unit ' ' and a 300 nm PSF window: the Log said 'psf: taken to
    be sampled at the image's voxel size (no psf_voxel_size given; give it ...)' (an API parameter the user cannot
    give there), contradicted by the next line, the warning that the image has no length unit."""
    import warnings

    img, psf = _pair()
    cal = Calibration.make("ZYX", unit=" ", Z=3.0, Y=1.0, X=1.0)
    pcal = Calibration.make("ZYX", unit="nm", Z=300.0, Y=300.0, X=300.0)
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        res, _, _ = run_command(get_command("richardson-lucy"), {"iterations": 2}, {"image": (img, cal),
                                "psf": (psf, pcal)}, voxel_size_from_calibration=True)
    assert not [n for n in res.notes if "no psf_voxel_size given" in n], res.notes
    assert any("image: " in str(w.message) and "while the psf has one" in str(w.message) for w in got), \
        [str(w.message) for w in got]
