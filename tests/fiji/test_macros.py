"""Macros that use fijidecon's commands the way ImageJ users write them: batch mode,
files opened and saved by ImageJ, 2-D data, hyperstacks (real ImageJ 1.54p, Xvfb)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fijidecon.calibration import Calibration

DATA = Path(__file__).resolve().parents[1] / "data"


pytestmark = pytest.mark.usefixtures("clean_bridge")


def test_batch_mode_open_psf_deconvolve_save(bridge, tmp_path):
    from fijidecon.deconvolve import iterative_deconvolve_3d
    from fijidecon.io import read_image, write_image
    from fijidecon.psf import diffraction_psf_3d

    img = np.load(DATA / "input3d_40x36x12.npy")
    src = tmp_path / "in put.tif"
    write_image(src, img, Calibration.make("ZYX", unit="micron", Z=0.25, Y=0.1, X=0.1))
    out = tmp_path / "result.tif"
    code = f"""
    setBatchMode(true);
    open("{src}");
    id = getTitle();
    run("Diffraction PSF 3D", "index=1.33 numerical=1.2 wavelength=520 longitudinal=0 image=100 slice=250 width,=32 height,=32 depth,=16 normalization=[Sum of pixel values = 1] title=psf");
    run("Iterative Deconvolve 3D", "image=[" + id + "] point=psf output=out normalize wiener=0.001 low=1 z_direction=1 maximum=20 terminate=-1000");
    print(getTitle());
    saveAs("Tiff", "{out}");
    print(nImages);
    """
    r = bridge.run_macro(code, clear_log=True)
    assert r.ok, r.error
    assert r.log.split() == ["out_20", "3"]  # batch mode: no windows, but the images exist
    got, cal = read_image(out)
    psf = diffraction_psf_3d(index=1.33, na=1.2, wavelength=520, pixel_spacing=100, slice_spacing=250,
                             width=32, height=32, depth=16)
    # "perform" and "detect" are absent from the options: those checkboxes are off
    want = iterative_deconvolve_3d(img, psf, normalize=True, gamma=0.001, max_iterations=20, terminate=-1000,
                                   anti_ringing=False, detect_divergence=False)
    assert np.max(np.abs(got - want.image)) <= 1e-6 * np.max(np.abs(want.image))
    assert (cal.dx, cal.dz, cal.unit) == (0.1, 0.25, "micron")


def test_2d_image_with_single_plane_psf(bridge):
    from fijidecon.deconvolve import iterative_deconvolve_3d
    from fijidecon.fiji import convert
    from fijidecon.psf import diffraction_psf_3d

    img = np.load(DATA / "input2d_40x36.npy")
    convert.to_imageplus(img, title="plane").show()
    r = bridge.run_macro(
        'run("Diffraction PSF 3D", "index=1.33 numerical=1.2 wavelength=520 image=100 slice=250 '
        'width,=32 height,=32 depth,=1 title=psf2d");'
        'run("Iterative Deconvolve 3D", "image=plane point=psf2d output=D2 log perform detect wiener=0 '
        'low=1 z_direction=1 maximum=100 terminate=0.01");')
    assert r.ok, r.error
    psf = diffraction_psf_3d(index=1.33, na=1.2, wavelength=520, pixel_spacing=100, slice_spacing=250,
                             width=32, height=32, depth=1)
    want = iterative_deconvolve_3d(img, psf)
    imp = bridge.image(f"D2_{want.iterations}")
    got, _ = convert.from_imageplus(imp)
    assert got.shape == img.shape
    assert np.max(np.abs(got - want.image)) <= 1e-6 * np.max(np.abs(want.image))


def test_improved_mode_key_reaches_the_core(bridge):
    """The one added key, mode=Improved, reaches the core.  (Hyperstacks: each (T, C) volume
    is deconvolved separately, see test_hyperstack_imagej.py.)"""
    from fijidecon.deconvolve import iterative_deconvolve_3d
    from fijidecon.fiji import convert

    img = np.load(DATA / "input3d_40x36x12.npy")
    psf = np.load(DATA / "psfA_32x32x16.npy")
    convert.to_imageplus(img, title="stack").show()
    convert.to_imageplus(psf, title="psfA").show()
    r = bridge.run_macro('run("Iterative Deconvolve 3D", "image=stack point=psfA output=Imp wiener=0 low=1 '
                         'z_direction=1 maximum=5 terminate=0 mode=Improved");')
    assert r.ok, r.error
    want = iterative_deconvolve_3d(img, psf, max_iterations=5, terminate=0, anti_ringing=False,
                                   detect_divergence=False, compat=False)
    got, _ = convert.from_imageplus(bridge.image(f"Imp_{want.iterations}"))
    assert got.shape == img.shape
    assert np.max(np.abs(got - want.image)) <= 1e-6 * np.max(np.abs(want.image))
    compat = iterative_deconvolve_3d(img, psf, max_iterations=5, terminate=0, anti_ringing=False,
                                     detect_divergence=False, compat=True)
    assert np.max(np.abs(got - compat.image)) > 1e-3 * np.max(np.abs(want.image))  # the key changed something


def test_psf_wider_than_the_image_is_accepted_as_by_the_original(bridge):
    from fijidecon.deconvolve import iterative_deconvolve_3d
    from fijidecon.fiji import convert

    img = np.load(DATA / "input3d_40x36x12.npy")[:, :20, :20]
    psf = np.load(DATA / "psfA_32x32x16.npy")
    convert.to_imageplus(img, title="crop").show()
    convert.to_imageplus(psf, title="wide psf").show()
    r = bridge.run_macro('run("Iterative Deconvolve 3D", "image=crop point=[wide psf] output=W perform detect '
                         'maximum=6 terminate=-1000");')
    assert r.ok, r.error
    want = iterative_deconvolve_3d(img, psf, max_iterations=6, terminate=-1000)
    got, _ = convert.from_imageplus(bridge.image(f"W_{want.iterations}"))
    assert got.shape == img.shape
    assert np.max(np.abs(got - want.image)) <= 1e-6 * np.max(np.abs(want.image))


def test_show_iteration_displays_the_padded_estimate_each_iteration(bridge, jvm, monkeypatch):
    """"Show iteration" opens one window with the padded estimate, replaced after every
    iteration (checked while it is on screen), and closes it at the end; without the
    key no window appears. The result equals the API's."""
    from fijidecon.deconvolve import iterative_deconvolve_3d
    from fijidecon.fiji import commands, convert

    img = np.load(DATA / "input3d_40x36x12.npy")
    psf = np.load(DATA / "psfA_32x32x16.npy")
    convert.to_imageplus(img, title="img").show()
    convert.to_imageplus(psf, title="psf").show()
    WindowManager = jvm.jimport("ij.WindowManager")
    seen = []
    real_show = commands._IterationWindow.show

    def observed_show(self, estimate, iteration):
        real_show(self, estimate, iteration)
        imp = WindowManager.getImage(self.title)  # the real window, looked up by title
        arr, _ = convert.from_imageplus(imp)
        seen.append((iteration, bool(imp.isVisible()), np.array_equal(arr, estimate), int(WindowManager.getImageCount())))

    monkeypatch.setattr(commands._IterationWindow, "show", observed_show)
    r = bridge.run_macro('run("Iterative Deconvolve 3D", "image=img point=psf output=S show perform detect '
                         'maximum=4 terminate=-1000");')
    assert r.ok, r.error
    want = iterative_deconvolve_3d(img, psf, max_iterations=4, terminate=-1000)
    assert [s[0] for s in seen] == [1, 2, 3, 4]
    assert all(vis and same for _, vis, same, _ in seen)
    assert len({n for *_, n in seen}) == 1  # one window, replaced in place (not one per iteration)
    assert WindowManager.getImage("S (iteration)") is None  # closed at the end
    got, _ = convert.from_imageplus(bridge.image("S_4"))
    np.testing.assert_array_equal(got.shape, img.shape)
    assert np.max(np.abs(got - want.image)) <= 1e-6 * np.max(np.abs(want.image))
    seen.clear()
    r = bridge.run_macro('run("Iterative Deconvolve 3D", "image=img point=psf output=N perform detect '
                         'maximum=2 terminate=-1000");')
    assert r.ok, r.error
    assert seen == []


def test_macro_result_log_is_this_runs_lines_only(bridge):
    """MacroResult.log held the whole Log window: an earlier Wiener line came back with every
    later result unless the Log was cleared by hand."""
    assert bridge.run_macro('print("first run");', clear_log=True).log.split() == ["first", "run"]
    r = bridge.run_macro('print("second run");')
    assert r.log.split() == ["second", "run"], r.log


def test_one_plane_with_a_3d_psf_runs_as_a_z_stack_of_one_plane(bridge, jvm):
    """A fresh user (2026-12-03) duplicated one slice of a stack and ran Richardson-Lucy and Wiener with
    its 3D PSF: refused with the API's remedy (read it as (1, Y, X) with axes 'ZYX'), which an ImageJ
    user cannot give, its aside broken to '(read_image; )'.  The plane now runs as a Z stack of one
    plane, as the API does with axes='ZYX'; the result is one plane."""
    from fijidecon.deconvolve import richardson_lucy, wiener
    from fijidecon.fiji import commands, convert

    img = np.load(DATA / "input3d_40x36x12.npy")
    psf = np.load(DATA / "psfA_32x32x16.npy")
    plane = np.ascontiguousarray(img[img.shape[0] // 2])
    convert.to_imageplus(plane, title="plane").show()
    convert.to_imageplus(psf, title="psf3d").show()
    r = bridge.run_macro('run("Richardson-Lucy Deconvolution", "image=plane psf=psf3d iterations=3 title=rl1");'
                         'run("Wiener Deconvolution", "image=plane psf=psf3d regularization=0.01 title=w1");',
                         clear_log=True)
    assert r.ok, r.error
    WindowManager = jvm.jimport("ij.WindowManager")
    got = convert.from_imageplus(WindowManager.getImage("rl1"))[0]
    want = richardson_lucy(plane[None], psf, 3).image
    assert got.shape == plane.shape and WindowManager.getImage("rl1").getStackSize() == 1
    np.testing.assert_allclose(got, want[0], rtol=1e-5, atol=1e-6 * float(want.max()))
    got_w = convert.from_imageplus(WindowManager.getImage("w1"))[0]
    np.testing.assert_allclose(got_w, wiener(plane[None], psf, 0.01).image[0], rtol=1e-5,
                               atol=1e-6 * float(np.abs(got_w).max()))
    assert commands.imagej_terms(None, "read it as (1, Y, X) (read_image; CLI --axes ZYX)") == \
        "read it as (1, Y, X) (read_image)"


def test_a_result_title_already_open_is_said_in_the_log(bridge):
    from fijidecon.fiji import convert

    convert.to_imageplus(np.load(DATA / "input3d_40x36x12.npy"), title="img").show()
    convert.to_imageplus(np.load(DATA / "psfA_32x32x16.npy"), title="psf").show()
    code = 'run("Convolve (FFT)", "image=img kernel=psf title=same");'
    assert bridge.run_macro(code, clear_log=True).ok
    r = bridge.run_macro(code)
    assert r.ok and "an image titled 'same' is already open" in r.log, r.log


def test_the_image_chosen_as_its_own_psf_is_said_in_the_log(bridge, jvm):
    from fijidecon.fiji import convert

    convert.to_imageplus(np.load(DATA / "input3d_40x36x12.npy"), title="img").show()
    r = bridge.run_macro('run("Convolve (FFT)", "image=img kernel=img title=self");', clear_log=True)
    assert r.ok and "is the image itself ('img'); choose the PSF's window" in r.log, r.log
    # a deconvolution by the data itself is refused (it ran and kept a meaningless window 'xs' in a batch macro)
    for run in ('run("Richardson-Lucy Deconvolution", "image=img psf=img iterations=2 title=xs");',
                'run("Wiener Deconvolution", "image=img psf=img title=xs");'):
        r = bridge.run_macro(run, clear_log=True)
        assert not r.ok and '"PSF" (psf=img) is the image itself; choose the PSF\'s window (open images: ' in \
            r.error, r.error
        assert "\n" not in r.error.strip() and jvm.jimport("ij.WindowManager").getImage("xs") is None
