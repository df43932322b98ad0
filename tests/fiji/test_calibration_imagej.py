"""Calibration from ImageJ windows to the core, and the core's notes in ImageJ's Log window
(real ImageJ 1.54p, Xvfb).

The image's and the PSF's calibrations reach the core unchanged: a PSF sampled at another
voxel size (another unit, too) is resampled to the image's, and the one-line note the core
logs ("fijidecon" logger, INFO) is in the Log; when only one side is calibrated, the
warning is; Wiener's chosen regularization is one Log line."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from fijidecon.calibration import Calibration

pytestmark = pytest.mark.usefixtures("clean_bridge")

LABELS = {"richardson-lucy": "Richardson-Lucy Deconvolution", "wiener": "Wiener Deconvolution",
          "convolve": "Convolve (FFT)", "iterative-deconvolve-3d": "Iterative Deconvolve 3D"}
PSF_OPTS = ("index=1.33 numerical=1.2 wavelength=520 longitudinal=0 width,=33 height,=33 depth,=17 "
            "normalization=[Sum of pixel values = 1]")
RUNS = {
    "richardson-lucy": ('run("Richardson-Lucy Deconvolution", "image=img psf=psf iterations=3 title=OUT");',
                        {"iterations": 3}),
    "wiener": ('run("Wiener Deconvolution", "image=img psf=psf regularization=1e-3 title=OUT");',
               {"regularization": "1e-3"}),
    "convolve": ('run("Convolve (FFT)", "image=img kernel=psf title=OUT");', {}),
    "iterative-deconvolve-3d": ('run("Iterative Deconvolve 3D", "image=img point=psf output=OUT wiener=0 low=1 '
                                'z_direction=1 maximum=3 terminate=-1000");',  # absent checkboxes are off
                                {"max_iterations": 3, "terminate": -1000, "anti_ringing": False,
                                 "detect_divergence": False}),
}


def _beads(shape=(16, 48, 40), seed=5):
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    obj = np.zeros(shape)
    for _ in range(6):
        obj[tuple(rng.integers(4, n - 4) for n in shape)] = 1000
    return (gaussian_filter(obj, (1.5, 2.0, 2.0)) + 10).astype(np.float32)


def _show(array, title, cal):
    from fijidecon.fiji import convert

    imp = convert.to_imageplus(array, cal, title=title)
    imp.show()
    return imp


def _out(bridge):
    from fijidecon.fiji import convert

    WindowManager = __import__("fijidecon.fiji.runtime", fromlist=["x"]).jimport("ij.WindowManager")
    titles = [str(t) for t in WindowManager.getImageTitles() if str(t).startswith("OUT")]
    assert len(titles) == 1, titles
    return convert.from_imageplus(bridge.image(titles[0]))


def _api(cmd_id, image, psf, values, **kw):
    from fijidecon.commands import get_command

    cmd = get_command(cmd_id)
    res = cmd.load()(image=image, psf=psf, **cmd.api_kwargs(values), **kw)
    return res if isinstance(res, np.ndarray) else res.image


@pytest.mark.parametrize("cmd_id", list(RUNS))
def test_psf_at_another_voxel_size_and_unit_is_resampled_with_a_log_note(bridge, cmd_id):
    """Image in micron (0.25, 0.1, 0.1); PSF made by Diffraction PSF 3D at half that voxel
    size, in nm: the core resamples it (a note in the Log naming the command) and the
    result equals the API given both voxel sizes, not the API without them."""
    from fijidecon.psf import diffraction_psf_3d

    img = _beads()
    _show(img, "img", Calibration.make("ZYX", unit="micron", Z=0.25, Y=0.1, X=0.1))
    code, values = RUNS[cmd_id]
    r = bridge.run_macro(f'run("Diffraction PSF 3D", "{PSF_OPTS} image=50 slice=125 title=psf");' + code,
                         clear_log=True)
    assert r.ok, r.error
    label = LABELS[cmd_id]
    notes = [line for line in r.log.splitlines() if line.startswith(label + ": ")]
    assert any("resampl" in line.lower() for line in notes), r.log
    got, cal = _out(bridge)
    assert cal.unit == "micron" and cal.voxel_size() == pytest.approx((0.25, 0.1, 0.1))
    psf = diffraction_psf_3d(index=1.33, na=1.2, wavelength=520, pixel_spacing=50, slice_spacing=125,
                             width=33, height=33, depth=17)
    want = _api(cmd_id, img, psf, values, voxel_size=(0.25, 0.1, 0.1), psf_voxel_size=(0.125, 0.05, 0.05))
    assert np.max(np.abs(got - want)) <= 1e-5 * np.max(np.abs(want))
    unmatched = _api(cmd_id, img, psf, values)
    assert np.max(np.abs(got - unmatched)) > 1e-2 * np.max(np.abs(want))


def test_same_voxel_size_in_another_unit_is_not_resampled(bridge):
    img = _beads()
    _show(img, "img", Calibration.make("ZYX", unit="micron", Z=0.25, Y=0.1, X=0.1))
    code, _ = RUNS["richardson-lucy"]
    r = bridge.run_macro(f'run("Diffraction PSF 3D", "{PSF_OPTS} image=100 slice=250 title=psf");' + code,
                         clear_log=True)
    assert r.ok, r.error
    assert "resampl" not in r.log.lower(), r.log


@pytest.mark.parametrize("calibrated", ["image", "psf"])
def test_only_one_side_calibrated_warns_in_the_log(bridge, calibrated):
    from fijidecon.fiji import convert

    img = _beads()
    nm = Calibration.make("ZYX", unit="nm", Z=250, Y=100, X=100)
    _show(img, "img", nm if calibrated == "image" else None)
    psf = np.zeros((9, 15, 15), np.float32)
    psf[4, 7, 7] = 1
    convert.to_imageplus(psf, nm if calibrated == "psf" else None, title="psf").show()
    r = bridge.run_macro(RUNS["richardson-lucy"][0], clear_log=True)
    assert r.ok, r.error
    warned = [line for line in r.log.splitlines() if line.startswith("Richardson-Lucy Deconvolution: warning:")]
    assert warned, r.log
    assert any("calibrat" in line.lower() or "voxel" in line.lower() for line in warned), warned


def test_wiener_choice_is_one_log_line(bridge):
    img = _beads()
    _show(img, "img", Calibration.make("ZYX", unit="micron", Z=0.25, Y=0.1, X=0.1))
    r = bridge.run_macro(f'run("Diffraction PSF 3D", "{PSF_OPTS} image=100 slice=250 title=psf");'
                         'run("Wiener Deconvolution", "image=img psf=psf title=OUT");', clear_log=True)
    assert r.ok, r.error
    lines = [line for line in r.log.splitlines() if line.startswith("Wiener Deconvolution: ")
             and "regularization" in line]
    assert len(lines) == 1, r.log


def test_log_handler_is_removed_and_the_logger_level_restored(bridge):
    from fijidecon.fiji import commands

    logger = logging.getLogger("fijidecon")
    level, handlers = logger.level, list(logger.handlers)
    img = _beads()
    _show(img, "img", None)
    _show(np.ones((3, 5, 5), np.float32), "psf", None)
    r = bridge.run_macro(RUNS["convolve"][0])
    assert r.ok, r.error
    assert logger.level == level and logger.handlers == handlers
    assert not commands._RUN_THREADS


@pytest.mark.parametrize("unit, scale", [("nm", 1.0), ("µm", 1e-3), ("100 nm", 1e-2)])
def test_diffraction_psf_in_any_length_unit_gives_the_same_result(bridge, unit, scale):
    """The original's lengths are in any unit L ("perhaps in nm"); macros in µm must still
    work now that a PSF window's calibration can trigger resampling: the window's unit follows
    the wavelength's magnitude (nm, µm), and for any other unit the PSF has no length unit and
    is taken at the image's voxel size (a warning says so). Same result every time."""
    img = _beads()
    _show(img, "img", Calibration.make("ZYX", unit="micron", Z=0.25, Y=0.1, X=0.1))
    opts = (f"index=1.33 numerical=1.2 wavelength={520 * scale:g} longitudinal=0 width,=33 height,=33 depth,=17 "
            f"normalization=[Sum of pixel values = 1] image={100 * scale:g} slice={250 * scale:g} title=psf")
    r = bridge.run_macro(f'run("Diffraction PSF 3D", "{opts}");' + RUNS["richardson-lucy"][0], clear_log=True)
    assert r.ok, r.error
    assert "resampl" not in r.log.lower(), r.log
    if unit == "µm":
        assert "Diffraction PSF 3D: wavelength 0.52 taken as µm" in r.log
    if unit == "100 nm":
        assert "neither nm nor µm" in r.log
        assert "Richardson-Lucy Deconvolution: warning:" in r.log
    got, _ = _out(bridge)
    from fijidecon.psf import diffraction_psf_3d

    psf = diffraction_psf_3d(index=1.33, na=1.2, wavelength=520, pixel_spacing=100, slice_spacing=250,
                             width=33, height=33, depth=17)
    want = _api("richardson-lucy", img, psf, RUNS["richardson-lucy"][1])
    assert np.max(np.abs(got - want)) <= 1e-4 * np.max(want)


@pytest.mark.parametrize("image_unit, image_voxel, psf_unit, psf_voxel", [
    ("nm", (250, 100, 100), "micron", (0.125, 0.05, 0.05)),
    ("µm", (0.25, 0.1, 0.1), "nm", (125, 50, 50)),
    ("um", (0.25, 0.1, 0.1), "mm", (0.000125, 0.00005, 0.00005)),
    ("micron", (0.25, 0.1, 0.1), "micron", (0.5, 0.05, 0.05)),  # coarser in z, finer in x/y
])
def test_units_and_voxel_sizes_of_both_windows_reach_the_core(bridge, image_unit, image_voxel, psf_unit, psf_voxel):
    """Any pair of length units (ImageJ spells "um" as "µm"): the PSF is resampled to the
    image's voxel size in the image's unit, as the API does with both voxel sizes."""
    from fijidecon.calibration import unit_factor
    from fijidecon.fiji import convert
    from fijidecon.psf import gaussian

    img = _beads()
    _show(img, "img", Calibration.make("ZYX", unit=image_unit, **dict(zip("ZYX", image_voxel))))
    f = unit_factor(psf_unit, "nm")
    psf = np.asarray(gaussian((17, 33, 33), (700, 260, 260), (psf_voxel[0] * f, psf_voxel[1] * f, psf_voxel[2] * f)),
                     np.float32)  # the same optics (FWHM in nm) on the PSF's grid
    convert.to_imageplus(psf, Calibration.make("ZYX", unit=psf_unit, **dict(zip("ZYX", psf_voxel))), title="psf").show()
    r = bridge.run_macro(RUNS["richardson-lucy"][0], clear_log=True)
    assert r.ok, r.error
    assert "Richardson-Lucy Deconvolution: psf: resampled" in r.log, r.log
    got, cal = _out(bridge)
    assert cal.voxel_size() == pytest.approx(image_voxel)
    to_image = unit_factor(psf_unit, "nm") / unit_factor("micron" if image_unit in ("µm", "um") else image_unit, "nm")
    want = _api("richardson-lucy", img, psf, RUNS["richardson-lucy"][1], voxel_size=tuple(map(float, image_voxel)),
                psf_voxel_size=tuple(v * to_image for v in psf_voxel))
    assert np.max(np.abs(got - want)) <= 1e-5 * np.max(want)


@pytest.mark.parametrize("cmd", ["Gaussian PSF", "Lorentzian PSF"])
def test_an_idealized_psf_in_microns_is_calibrated_in_microns(bridge, cmd):
    """A fresh Fiji user: a Gaussian PSF with lateral=0.25 pixel=0.13 (µm, 'any one unit L') read 'voxel 0.13,
    0.13, 0.3 nm' and was then resampled 1000x against a µm image; its unit now follows the FWHM's magnitude,
    as Diffraction PSF 3D's follows the wavelength's, and a FWHM in neither unit leaves no length unit."""
    r = bridge.run_macro(f'run("{cmd}", "lateral=0.25 axial=0.7 pixel=0.13 slice=0.3 width,=15 height,=15 '
                         f'depth,=9 title=gpsf");', clear_log=True)
    assert r.ok, r.error
    cal = bridge.image("gpsf").getCalibration()
    assert str(cal.getUnit()) in ("micron", "µm") and abs(float(cal.pixelWidth) - 0.13) < 1e-9
    assert f"{cmd}: lateral 0.25 taken as µm" in r.log
    r = bridge.run_macro(f'run("{cmd}", "lateral=12 axial=30 pixel=5 slice=10 width,=15 height,=15 depth,=9 '
                         f'title=ppsf");', clear_log=True)
    assert r.ok and "neither nm nor µm" in r.log, r.log
    cal = bridge.image("ppsf").getCalibration()
    assert str(cal.getUnit()) in ("pixel", "pixels") and float(cal.pixelWidth) == 1.0
