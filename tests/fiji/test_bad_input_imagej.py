"""Bad input through real ImageJ: each case gives one clear ImageJ message (error dialog,
or macro error naming the key), never a Java exception window, no hang, no orphan windows."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
R_FIXED = ("image=img3d point=psfA output=Long wiener=0 low=1 z_direction=1 maximum={n} terminate=-1000")


def _windows(jvm):
    Window = jvm.jimport("java.awt.Window")
    return sorted(str(w.getTitle()) if hasattr(w, "getTitle") else str(w.getName())
                  for w in Window.getWindows() if w.isShowing())


@pytest.fixture(autouse=True)
def no_orphans(bridge, jvm):
    """Every test must leave no dialog and no window it did not expect."""
    bridge.close_images()
    before = set(_windows(jvm))
    yield
    assert not bridge.open_dialogs(), [str(d.getTitle()) for d in bridge.open_dialogs()]
    bridge.close_images()
    after = set(_windows(jvm)) - {"Log"}
    assert after <= before | {"Log"}, after - before
    assert not any("exception" in t.lower() for t in after)


def _inputs(bridge):
    from fijidecon.fiji import convert

    convert.to_imageplus(np.load(DATA / "input3d_40x36x12.npy"), title="img3d").show()
    convert.to_imageplus(np.load(DATA / "psfA_32x32x16.npy"), title="psfA").show()


def _wait_for(pred, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.03)
    raise AssertionError("timed out")


def _titles(jvm):
    t = jvm.jimport("ij.WindowManager").getImageTitles()
    return [str(x) for x in t]


def test_no_image_open_macro(bridge, jvm):
    r = bridge.run_macro('run("Iterative Deconvolve 3D", "image=a point=b maximum=3");')
    assert not r.ok
    assert "There are no images open" in r.error
    assert _titles(jvm) == []


def test_no_image_open_menu_click_shows_an_imagej_error(bridge, jvm):
    jvm.jimport("ij.IJ").doCommand("Iterative Deconvolve 3D")
    dlg = _wait_for(lambda: bridge.open_dialogs())
    assert str(dlg[0].getTitle()) == "Iterative Deconvolve 3D"
    assert "There are no images open" in bridge.dialog_text(dlg[0])
    bridge.close_dialogs()


def test_rgb_image_is_refused_with_a_message(bridge, jvm):
    _inputs(bridge)
    r = bridge.run_macro('newImage("colour", "RGB black", 40, 36, 12);'
                         'run("Iterative Deconvolve 3D", "image=colour point=psfA output=X maximum=3");')
    assert not r.ok
    assert "RGB images are not supported" in r.error and "image=colour" in r.error
    assert not any(t.startswith("X_") for t in _titles(jvm))


def test_cancel_in_the_dialog_leaves_nothing_behind(bridge, jvm):
    _inputs(bridge)
    before = _titles(jvm)
    bridge.state.last_status = None
    jvm.jimport("ij.IJ").doCommand("Iterative Deconvolve 3D")
    _wait_for(lambda: [d for d in bridge.open_dialogs() if str(d.getTitle()) == "Deconvlove 3D (DAMAS3)"])
    bridge.close_dialogs(press="cancel")
    _wait_for(lambda: bridge.state.last_status == "cancelled")
    time.sleep(0.2)
    assert _titles(jvm) == before
    assert bridge.state.last_error is None


@pytest.mark.parametrize("options, key, text", [
    ('run("Diffraction PSF 3D", "width,=16 height,=16 depth,=4 normalization=[Peak = 7]");',
     "normalization=Peak = 7", "is not one of"),
    ('run("Diffraction PSF 3D", "width,=-3 height,=16 depth,=4");', "width,=-3",
     "expected a whole number >= 1, got -3"),
    ('run("Diffraction PSF 3D", "width,=2.5 height,=16 depth,=4");', "width,=2.5", "whole number"),
    ('run("Iterative Deconvolve 3D", "image=img3d point=nothere output=X maximum=3");', "point=nothere",
     "no open image has this title"),
    ('run("Iterative Deconvolve 3D", "image=img3d point=psfA output=X maximum=abc");', "maximum", "abc"),
    # a misspelt key: ImageJ ignores it and the field keeps its default (30 iterations ran for iteratons=3)
    ('run("Richardson-Lucy Deconvolution", "image=img3d psf=psfA iteratons=3");', "'iteratons'",
     "did you mean 'iterations'?"),
    ('run("Iterative Deconvolve 3D", "image=img3d psf=psfA output=X maximum=3");', "'psf'",
     "did you mean 'point'?"),
    ('run("Diffraction PSF 3D", "numerical_aperture=1.4 width=16 height,=16 depth,=4");',
     "unknown macro keys 'numerical_aperture' (did you mean 'numerical'?), 'width' (did you mean 'width,'?)",
     "this command's keys: index numerical"),
])
@pytest.mark.parametrize("batch", [False, True])
def test_wrong_macro_option_value_is_a_macro_error(bridge, jvm, options, key, text, batch):
    _inputs(bridge)
    before = _titles(jvm)
    code = ("setBatchMode(true); " if batch else "") + options + ' print("not reached");'
    # as in the GUI: the macro error is a dialog (closed here), and the macro stops
    r = bridge.run_macro(code, ignore_errors=False, clear_log=True)
    assert not r.ok
    assert "not reached" not in r.log
    assert any(t == "Macro Error" for t, _ in r.dialogs), r.dialogs
    msg = " ".join(x for _, x in r.dialogs)
    assert key in msg and text in msg, msg
    assert _titles(jvm) == before
    # as in a headless run: no dialog, the message is returned
    r = bridge.run_macro(code, ignore_errors=True)
    assert not r.ok and not r.dialogs and key in r.error and text in r.error


def test_core_errors_are_imagej_messages_not_java_exceptions(bridge, jvm):
    from fijidecon.fiji import convert

    convert.to_imageplus(np.ones((4, 16, 16), np.float32), title="small").show()
    convert.to_imageplus(-np.load(DATA / "psfA_32x32x16.npy"), title="negative psf").show()
    r = bridge.run_macro('run("Iterative Deconvolve 3D", "image=small point=[negative psf] output=X maximum=3");')
    assert not r.ok
    assert r.error.startswith("Iterative Deconvolve 3D: psf: must have a positive sum")


def _start(bridge, code):
    box = {}
    th = threading.Thread(target=lambda: box.setdefault("r", bridge.run_macro(code, clear_log=True)))
    th.start()
    return th, box


def test_psf_window_closed_mid_run(bridge, jvm):
    from fijidecon.deconvolve import iterative_deconvolve_3d
    from fijidecon.fiji import convert

    _inputs(bridge)
    bridge.state.iteration = 0
    th, box = _start(bridge, f'run("Iterative Deconvolve 3D", "{R_FIXED.format(n=60)}");')
    _wait_for(lambda: bridge.state.iteration >= 2)
    # progress is in ImageJ's status bar while it runs
    status = str(jvm.jimport("ij.ImageJ").getStatusBarText())
    assert status.startswith("Iterative Deconvolve 3D: iteration ") and "/60" in status, status
    bridge.image("psfA").close()  # the user closes the PSF while it runs
    th.join(60)
    assert not th.is_alive()
    r = box["r"]
    assert r.ok, r.error
    assert "was closed during the run; the copy taken at the start was used" in r.log
    got, _ = convert.from_imageplus(bridge.image("Long_60"))
    want = iterative_deconvolve_3d(np.load(DATA / "input3d_40x36x12.npy"), np.load(DATA / "psfA_32x32x16.npy"),
                                   anti_ringing=False, detect_divergence=False, max_iterations=60, terminate=-1000)
    assert np.max(np.abs(got - want.image)) <= 1e-6 * np.max(np.abs(want.image))


@pytest.mark.parametrize("command", [
    f'run("Iterative Deconvolve 3D", "{R_FIXED.format(n=5000)}");',
    'run("Richardson-Lucy Deconvolution", "image=img3d psf=psfS iterations=5000 title=Long_RL");',
])
def test_escape_cancels_a_running_deconvolution(bridge, jvm, command):
    if "Richardson" in command and "Richardson-Lucy Deconvolution" not in bridge.installed():
        pytest.skip("no Richardson-Lucy command described")
    _inputs(bridge)
    from fijidecon.fiji import convert

    convert.to_imageplus(np.load(DATA / "psfA_32x32x16.npy")[4:12, 6:26, 6:26].copy(), title="psfS").show()
    IJ = jvm.jimport("ij.IJ")
    KeyEvent = jvm.jimport("java.awt.event.KeyEvent")
    bridge.state.iteration = 0
    th, box = _start(bridge, command + ' print("after");')
    _wait_for(lambda: bridge.state.iteration >= 2)
    ij = IJ.getInstance()
    ij.keyPressed(KeyEvent(ij, KeyEvent.KEY_PRESSED, 0, 0, KeyEvent.VK_ESCAPE, chr(27)))  # the Esc key
    th.join(30)
    assert not th.is_alive()
    assert bridge.state.iteration < 5000
    assert bridge.state.last_status == "cancelled"
    assert not any(t.startswith("Long_") for t in _titles(jvm))
    assert "after" not in box["r"].log  # Esc also aborts the macro, as in ImageJ
    # and the caller is told: no result, so not ok (run_macro said ok=True, error None)
    assert not box["r"].ok and box["r"].error.endswith(": cancelled (Esc)"), box["r"]
    IJ.resetEscape()


@pytest.mark.parametrize("block", [False, True])
def test_escape_flag_set_by_a_plugin_cancels_and_aborts_the_macro(bridge, jvm, block):
    """IJ.setKeyDown(VK_ESCAPE) (a plugin or script, not the key): the command stopped but the
    macro went on and run_macro said ok=True with no result; inside a block the error was the
    interpreter's "';' expected"."""
    _inputs(bridge)
    IJ = jvm.jimport("ij.IJ")
    KeyEvent = jvm.jimport("java.awt.event.KeyEvent")
    bridge.state.iteration = 0
    call = 'run("Richardson-Lucy Deconvolution", "image=img3d psf=psfA iterations=5000 title=Flag_RL");'
    code = f'for (i = 0; i < 2; i++) {{ {call} print("loop"); }}' if block else call
    th, box = _start(bridge, code + ' print("after");')
    _wait_for(lambda: bridge.state.iteration >= 2)
    IJ.setKeyDown(KeyEvent.VK_ESCAPE)
    th.join(30)
    IJ.resetEscape()
    assert not th.is_alive()
    r = box["r"]
    assert not r.ok and r.error == "Richardson-Lucy Deconvolution: cancelled (Esc)", r
    assert "after" not in r.log
    assert not any(t.startswith("Flag_") for t in _titles(jvm))


def test_a_core_error_names_the_dialog_field_and_macro_key(bridge):
    """The core's `pixel_size: 0 means 'from the image calibration'…` named the Python parameter;
    the ImageJ user typed pixel= in the macro (or the dialog field)."""
    from fijidecon.fiji import convert

    convert.to_imageplus(np.load(DATA / "psfA_32x32x16.npy"), title="beads").show()  # uncalibrated
    r = bridge.run_macro('run("PSF from Beads", "beads=beads pixel=0 slice=0");', ignore_errors=True)
    assert not r.ok and '"Pixel size of the image (0 = from its calibration)" (pixel): 0 means' in r.error, r.error


@pytest.mark.parametrize("cmd, args, want", [
    # refused when the macro's value is read (the fields are positive: "> 0", as the dialog's description says)
    ("Gaussian PSF", "lateral=0 width,=15 height,=15 depth,=5", '"Lateral FWHM (x, y)" (lateral=0): expected a '
                                                                'finite number > 0, got 0'),
    ("Gaussian PSF", "axial=0 width,=15 height,=15 depth,=5", '"Axial FWHM (z)" (axial=0): expected a finite number'),
    ("Lorentzian PSF", "pixel=0 width,=15 height,=15 depth,=5", '"Pixel spacing (x, y)" (pixel=0): expected a finite'),
    ("Widefield PSF", "pixel=0 width,=15 height,=15 depth,=5", '"Pixel size (x, y)" (pixel=0): expected a finite'),
])
def test_psf_field_errors_name_the_field_not_the_cores_tuple(bridge, cmd, args, want):
    """A fresh Fiji user: `Gaussian PSF: fwhm[1]: expected a finite number > 0, got 0.0` (and voxel_size[1],
    voxel_size_nm[1]) named the core's per-axis tuples, which no dialog field or macro key has."""
    r = bridge.run_macro(f'run("{cmd}", "{args}");', ignore_errors=True)
    assert not r.ok and want in r.error and "[1]" not in r.error and "[0]" not in r.error, r.error


def test_memory_refusals_say_what_to_do_in_macro_keys(bridge):
    """A fresh Fiji user: `memory_limit: … use compat=False (processed in bricks) or give memory_limit of at
    least 226 MiB`: the advice is the macro's (mode=Improved, memory=)."""
    _inputs(bridge)
    r = bridge.run_macro('run("Iterative Deconvolve 3D", "image=img3d point=psfA output=idc maximum=3 memory=1MB");',
                         ignore_errors=True)
    assert not r.ok and "(memory): " in r.error and "mode=Improved" in r.error, r.error
    assert "compat=" not in r.error and "memory_limit" not in r.error, r.error


def test_a_missing_window_is_one_line(bridge):
    _inputs(bridge)
    r = bridge.run_macro('run("Richardson-Lucy Deconvolution", "image=img3d psf=nosuchwindow iterations=2");',
                         ignore_errors=True)
    assert not r.ok and "no open image has this title (open images: " in r.error and "\n" not in r.error, r.error
