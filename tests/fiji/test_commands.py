"""fijidecon's commands in real ImageJ 1.54p menus, run with the *original* macro option strings.

Real Xvfb + JVM + ImageJ (fixtures in conftest.py); every number compared here is computed
twice, once through ImageJ (dialog read from macro options, ImagePlus conversion, result
window) and once through the Python API.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from fijidecon.calibration import Calibration
from fijidecon.commands import all_commands
from fijidecon.commands.dougherty import DIFFRACTION_PSF_3D

DATA = Path(__file__).resolve().parents[1] / "data"

PSF_A = ("index=1.33 numerical=1.2 wavelength=520 longitudinal=0 image=100 slice=250 "
         "width,=32 height,=32 depth,=16 normalization=[Sum of pixel values = 1] title=psfA")
PSF_B = ("index=1.515 numerical=1.4 wavelength=510 longitudinal=400 image=80 slice=200 "
         "width,=33 height,=31 depth,=17 normalization=[Peak = 1] title=psfB")
R1 = ("image=img3d point=psfA output=R1 log perform detect wiener=0 low=1 z_direction=1 "
      "maximum=100 terminate=0.01")
R2 = ("image=img3d point=psfA output=R2 normalize log wiener=0.001 low=1 z_direction=1 "
      "maximum=25 terminate=-1000")


pytestmark = pytest.mark.usefixtures("clean_bridge")


def _array(bridge, title):
    from fijidecon.fiji import convert

    imp = bridge.image(title)
    assert imp is not None, f"no window titled {title!r}"
    return convert.from_imageplus(imp)


def test_every_command_is_in_the_plugins_deconvolution_menu(bridge, jvm):
    Menus = jvm.jimport("ij.Menus")
    table = Menus.getCommands()
    labels = bridge.installed()
    assert {c.id for c in labels.values()} == {c.id for c in all_commands()}
    assert "Diffraction PSF 3D" in labels and "Iterative Deconvolve 3D" in labels
    plugins = Menus.getImageJMenu("Plugins")
    sub = [plugins.getItem(i) for i in range(plugins.getItemCount())
           if str(plugins.getItem(i).getLabel()) == "Deconvolution"]
    assert sub, "no Plugins>Deconvolution menu"
    items = {str(sub[0].getItem(i).getLabel()) for i in range(sub[0].getItemCount())}
    for label in labels:
        assert table.get(label) is not None
        assert label in items


def test_diffraction_psf_original_options_match_api(bridge):
    from fijidecon.psf import diffraction_psf_3d

    for options, kw in (
        (PSF_A, dict(index=1.33, na=1.2, wavelength=520, pixel_spacing=100, slice_spacing=250,
                     width=32, height=32, depth=16, normalization="sum")),
        (PSF_B, dict(index=1.515, na=1.4, wavelength=510, spherical_aberration=400, pixel_spacing=80,
                     slice_spacing=200, width=33, height=31, depth=17, normalization="peak")),
    ):
        r = bridge.run_macro(f'run("Diffraction PSF 3D", "{options}");')
        assert r.ok, r.error
        title = options.rsplit("title=", 1)[1]
        imp = bridge.image(title)
        assert int(imp.getBitDepth()) == 32
        assert int(imp.getCurrentSlice()) == kw["depth"] // 2 + 1  # the centre plane kc+1 is shown
        got, cal = _array(bridge, title)
        want = diffraction_psf_3d(**kw)
        assert got.shape == want.shape == (kw["depth"], kw["height"], kw["width"])
        assert np.max(np.abs(got - want)) <= 1e-6 * np.max(np.abs(want))
        ref = np.load(DATA / f"{title}_{kw['width']}x{kw['height']}x{kw['depth']}.npy")
        assert np.max(np.abs(got - ref)) <= 1e-5 * np.max(ref)  # and the original plugin's output
        assert cal.dx == kw["pixel_spacing"] and cal.dz == kw["slice_spacing"]


def test_iterative_deconvolve_original_options_match_api(bridge, jvm):
    from fijidecon.deconvolve import iterative_deconvolve_3d
    from fijidecon.fiji import convert

    img = np.load(DATA / "input3d_40x36x12.npy")
    psf = np.load(DATA / "psfA_32x32x16.npy")
    cal = Calibration.make("ZYX", unit="micron", Z=0.25, Y=0.1, X=0.1)
    convert.to_imageplus(img, cal, title="img3d").show()
    convert.to_imageplus(psf, None, title="psfA").show()
    for options, kw, title in (
        (R1, dict(), "R1_74"),
        (R2, dict(normalize=True, gamma=0.001, anti_ringing=False, max_iterations=25, terminate=-1000), "R2_25"),
    ):
        r = bridge.run_macro(f'run("Iterative Deconvolve 3D", "{options}");', clear_log=True)
        assert r.ok, r.error
        want = iterative_deconvolve_3d(img, psf, **kw)
        assert title == f"{options.split('output=')[1].split()[0]}_{want.iterations}"
        got, gcal = _array(bridge, title)
        assert got.dtype == np.float32 and got.shape == img.shape
        assert np.max(np.abs(got - want.image)) <= 1e-6 * np.max(np.abs(want.image))
        # the result carries the input's calibration
        assert (gcal.dx, gcal.dy, gcal.dz, gcal.unit) == (0.1, 0.1, 0.25, "micron")
        # "log": the per-iteration figure is printed to ImageJ's Log window
        lines = [ln for ln in r.log.splitlines() if ln.strip()]
        figures = [float(x) for x in lines if x[0].isdigit()]
        assert np.allclose(figures, want.log, rtol=1e-6)
        if want.stop_reason == "converged":
            assert lines[-1] == f"Automatically terminated after {want.iterations} iterations."
    ref = np.load(DATA / "decon_R1_defaults.npy")
    got, _ = _array(bridge, "R1_74")
    assert np.max(np.abs(got - ref)) <= 1e-4 * np.max(ref)


def test_generator_commands_run_from_macros_with_their_description_defaults(bridge):
    """Every command without image inputs (PSF generators) runs from a macro built from
    its description (``Command.to_macro``) and equals its core function."""
    ran = 0
    for label, cmd in bridge.installed().items():
        if any(p.kind == "image" for p in cmd.params) or not {"width", "height", "depth"} <= {p.name for p in cmd.params}:
            continue
        values = {"width": 16, "height": 14, "depth": 6, "title": f"gen{ran}"}
        values = {k: v for k, v in values.items() if k in {p.name for p in cmd.params}}
        options = cmd.to_macro(values)
        r = bridge.run_macro(f'run("{label}", "{options}");')
        assert r.ok, (label, r.error)
        got, _ = _array(bridge, f"gen{ran}")
        want = cmd.load()(**cmd.api_kwargs(values))
        want = want if isinstance(want, np.ndarray) else want.image
        assert got.shape == want.shape
        assert np.max(np.abs(got - want)) <= 1e-6 * max(np.max(np.abs(want)), 1e-30), label
        ran += 1
    assert ran >= 1


def test_name_taken_installs_python_suffix(bridge, jvm):
    """A second command with an existing name is installed as "<title> (Python)", with a Log note."""
    IJ = jvm.jimport("ij.IJ")
    IJ.log("\\Clear")
    twin = dataclasses.replace(DIFFRACTION_PSF_3D, id="diffraction-psf-3d-twin")
    labels = bridge.install([twin])
    try:
        assert labels["Diffraction PSF 3D (Python)"].id == "diffraction-psf-3d-twin"
        assert "installed as \"Diffraction PSF 3D (Python)\"" in str(IJ.getLog())
        r = bridge.run_macro('run("Diffraction PSF 3D (Python)", "width,=8 height,=8 depth,=4 title=twin");')
        assert r.ok, r.error
        assert bridge.image("twin").getStackSize() == 4
    finally:
        bridge.uninstall(["Diffraction PSF 3D (Python)"])
    assert "Diffraction PSF 3D (Python)" not in bridge.installed()
    assert "Diffraction PSF 3D" in bridge.installed()


def test_result_window_on_screen_and_screenshot(bridge, jvm, tmp_path):
    """Not in batch mode, the result is a real window on the (Xvfb) screen; a PNG
    screenshot of the screen is not blank."""
    WindowManager = jvm.jimport("ij.WindowManager")
    Toolkit = jvm.jimport("java.awt.Toolkit")
    r = bridge.run_macro(f'run("Diffraction PSF 3D", "{PSF_A.replace("title=psfA", "title=ShownPSF")}");')
    assert r.ok, r.error
    assert "ShownPSF" in [str(t) for t in WindowManager.getImageTitles()]
    win = bridge.image("ShownPSF").getWindow()
    assert win is not None and win.isShowing()
    screen = Toolkit.getDefaultToolkit().getScreenSize()
    b = win.getBounds()
    assert b.x < screen.width and b.y < screen.height and b.x + b.width > 0 and b.y + b.height > 0
    png = tmp_path / "screen.png"
    import time

    time.sleep(0.5)  # let AWT paint
    bridge.screenshot(str(png))
    from PIL import Image

    im = np.asarray(Image.open(png).convert("L"), dtype=np.float32)
    assert im.shape == (screen.height, screen.width)
    crop = im[max(b.y, 0): b.y + b.height, max(b.x, 0): b.x + b.width]
    assert im.std() > 5 and crop.std() > 5  # not blank, and the window area has content


def _bead_stack():
    """Three copies of psfA (a 'bead' image) at known places, plus background."""
    psf = np.load(DATA / "psfA_32x32x16.npy")
    vol = np.full((16, 64, 80), 0.001, np.float32)
    for y, x in ((2, 2), (2, 44), (30, 24)):
        vol[:, y:y + 32, x:x + 32] += psf / psf.max()
    return vol


def test_image_commands_run_from_macros_and_equal_their_core(bridge, jvm):
    """Every command with image inputs other than the ported one (Convolve, Wiener,
    Richardson-Lucy, PSF from Beads, ...) runs from a macro built from its description
    and gives its core function's result, with the input's calibration."""
    from fijidecon.fiji import convert

    img = np.load(DATA / "input3d_40x36x12.npy")
    psf = np.load(DATA / "psfA_32x32x16.npy")[4:12, 6:26, 6:26].copy()
    beads = _bead_stack()
    cal = Calibration.make("ZYX", unit="nm", Z=250, Y=100, X=100)
    ran = []
    for label, cmd in bridge.installed().items():
        image_params = [p for p in cmd.params if p.kind == "image"]
        if not image_params or cmd.id == "iterative-deconvolve-3d":
            continue
        bridge.close_images()
        names = [p.name for p in image_params]
        arrays = {}
        if len(names) == 1:
            arrays[names[0]] = beads
        else:
            arrays[names[0]] = img
            arrays[names[1]] = psf
        for n, a in arrays.items():
            convert.to_imageplus(a, cal, title=f"in_{n}").show()
        values = {n: f"in_{n}" for n in names}
        pnames = {p.name for p in cmd.params}
        for k, v in (("iterations", 5), ("title", "OUT"), ("output", "OUT")):
            if k in pnames:
                values[k] = v
        r = bridge.run_macro(f'run("{label}", "{cmd.to_macro(values)}");', clear_log=True)
        assert r.ok, (label, r.error)
        fn = cmd.load()
        kw = cmd.api_kwargs({k: v for k, v in values.items() if k not in names})
        kw.update(arrays)
        import inspect

        sig = inspect.signature(fn).parameters
        if "calibration" in sig:
            kw["calibration"] = cal
        elif "voxel_size" in sig and "voxel_size" not in kw:
            kw["voxel_size"] = (250.0, 100.0, 100.0)
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            want = fn(**kw)
        from fijidecon.fiji.commands import imagej_terms

        for w in caught:  # the core's warnings reach ImageJ's Log window, in the dialog's terms
            assert f"{label}: warning: {imagej_terms(cmd, ' '.join(str(w.message).split()))}" in r.log
        want = want if isinstance(want, np.ndarray) else next(
            getattr(want, a) for a in ("image", "psf") if isinstance(getattr(want, a, None), np.ndarray))
        out = [t for t in (str(x) for x in jvm.jimport("ij.WindowManager").getImageTitles())
               if not t.startswith("in_")]
        assert len(out) == 1, (label, out)
        got, gcal = _array(bridge, out[0])
        assert got.shape == want.shape, label
        assert np.max(np.abs(got - want)) <= 1e-6 * max(float(np.max(np.abs(want))), 1e-30), label
        assert gcal.unit == "nm", label
        ran.append(cmd.id)
    assert "iterative-deconvolve-3d" not in ran
    assert len(ran) >= 1
