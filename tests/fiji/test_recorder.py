"""The macro recorder: a menu click + a filled-in dialog records a ``run(...)`` line that
replays to the same result (real ImageJ 1.54p under Xvfb, dialogs driven like a user)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture
def recorder(bridge, jvm):
    Recorder = jvm.jimport("ij.plugin.frame.Recorder")
    rec = Recorder(False)  # the Recorder window (not shown); sets Recorder.record
    yield rec
    rec.close()
    bridge.close_dialogs()
    bridge.close_images()


def _wait_dialog(bridge, title, timeout=20.0):
    import jpype

    GenericDialog = jpype.JClass("ij.gui.GenericDialog")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for d in bridge.open_dialogs():
            if str(d.getTitle()) == title and GenericDialog.class_.isInstance(d):
                return jpype.JObject(d, GenericDialog)
        time.sleep(0.05)
    raise AssertionError(f"no dialog {title!r} appeared; open: {[str(d.getTitle()) for d in bridge.open_dialogs()]}")


def _press(gd, index):
    import jpype

    ActionEvent = jpype.JClass("java.awt.event.ActionEvent")
    btn = gd.getButtons()[index]
    gd.actionPerformed(ActionEvent(btn, ActionEvent.ACTION_PERFORMED, str(btn.getLabel())))


def _wait_image(bridge, title, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        imp = bridge.image(title)
        if imp is not None:
            return imp
        time.sleep(0.05)
    raise AssertionError(f"no image {title!r}")


def _recorded(rec, label):
    text = str(rec.getText())
    lines = [ln for ln in text.splitlines() if ln.startswith(f'run("{label}"')]
    assert lines, f"nothing recorded for {label!r}:\n{text}"
    return lines[-1]


def test_psf_dialog_is_recorded_and_replays(bridge, jvm, recorder):
    from fijidecon.fiji import convert

    IJ = jvm.jimport("ij.IJ")
    IJ.doCommand("Diffraction PSF 3D")  # as a menu click: a new "Run$_" thread
    gd = _wait_dialog(bridge, "Specify psf")
    nums = gd.getNumericFields()
    # the original's fields, in the original's order
    for i, v in enumerate(["1.330", "1.20", "520.0", "150.00", "100.00", "250.00", "24", "20", "9"]):
        nums.get(i).setText(v)
    gd.getChoices().get(0).select("Peak = 1")
    gd.getStringFields().get(0).setText("rec psf")  # a title with a space: recorded in [brackets]
    _press(gd, 0)
    msg = _wait_dialog(bridge, "PSF: peak to first dark ring (w/o sph. aber.)")  # the original's OK/Cancel note
    assert "Rayleigh resolution" in bridge.dialog_text(msg) and "2.6 pixels" in bridge.dialog_text(msg)
    _press(msg, 0)
    imp = _wait_image(bridge, "rec psf")
    line = _recorded(recorder, "Diffraction PSF 3D")
    assert line == ('run("Diffraction PSF 3D", "index=1.330 numerical=1.20 wavelength=520 longitudinal=150 '
                    'image=100 slice=250 width,=24 height,=20 depth,=9 normalization=[Peak = 1] '
                    'title=[rec psf] mode=Compatible");')
    first, _ = convert.from_imageplus(imp)
    bridge.close_images()
    r = bridge.run_macro(line)
    assert r.ok, r.error
    again, _ = convert.from_imageplus(bridge.image("rec psf"))
    np.testing.assert_array_equal(first, again)
    from fijidecon.psf import diffraction_psf_3d

    want = diffraction_psf_3d(index=1.33, na=1.2, wavelength=520, spherical_aberration=150, pixel_spacing=100,
                              slice_spacing=250, width=24, height=20, depth=9, normalization="peak")
    assert np.max(np.abs(first - want)) <= 1e-6


def test_deconvolve_dialog_with_image_choices_is_recorded_and_replays(bridge, jvm, recorder):
    from fijidecon.fiji import convert

    IJ = jvm.jimport("ij.IJ")
    img = np.load(DATA / "input3d_40x36x12.npy")
    psf = np.load(DATA / "psfA_32x32x16.npy")
    convert.to_imageplus(img, title="blurred stack").show()
    convert.to_imageplus(psf, title="psfA").show()
    IJ.doCommand("Iterative Deconvolve 3D")
    gd = _wait_dialog(bridge, "Deconvlove 3D (DAMAS3)")
    choices = gd.getChoices()
    # defaults: the image is the non-PSF window, the kernel the PSF window
    assert str(choices.get(0).getSelectedItem()) == "blurred stack"
    assert str(choices.get(1).getSelectedItem()) == "psfA"
    gd.getStringFields().get(0).setText("Rec")
    boxes = gd.getCheckboxes()  # normalize, data, show, log, perform, detect
    boxes.get(0).setState(True)
    boxes.get(3).setState(False)
    nums = gd.getNumericFields()  # wiener, low, z_direction, maximum, terminate
    nums.get(0).setText("0.001")
    nums.get(3).setText("7")
    nums.get(4).setText("-1000")
    _press(gd, 0)
    imp = _wait_image(bridge, "Rec_7")
    line = _recorded(recorder, "Iterative Deconvolve 3D")
    assert re.fullmatch(
        r'run\("Iterative Deconvolve 3D", "image=\[blurred stack\] point=psfA output=Rec normalize show perform '
        r'detect wiener=0\.001 low=1 z_direction=1 maximum=7 terminate=-1000 mode=Compatible memory=auto"\);', line), line
    first, _ = convert.from_imageplus(imp)
    imp.close()
    r = bridge.run_macro(line)
    assert r.ok, r.error
    again, _ = convert.from_imageplus(bridge.image("Rec_7"))
    np.testing.assert_array_equal(first, again)
    from fijidecon.deconvolve import iterative_deconvolve_3d

    want = iterative_deconvolve_3d(img, psf, normalize=True, gamma=0.001, max_iterations=7, terminate=-1000)
    assert np.max(np.abs(first - want.image)) <= 1e-6 * np.max(np.abs(want.image))


def test_interactive_values_are_remembered_for_the_next_dialog(bridge, jvm, recorder):
    IJ = jvm.jimport("ij.IJ")
    IJ.doCommand("Diffraction PSF 3D")
    gd = _wait_dialog(bridge, "Specify psf")
    gd.getNumericFields().get(6).setText("12")
    gd.getNumericFields().get(7).setText("12")
    gd.getNumericFields().get(8).setText("3")
    gd.getStringFields().get(0).setText("first")
    _press(gd, 0)
    _press(_wait_dialog(bridge, "PSF: peak to first dark ring (w/o sph. aber.)"), 0)
    _wait_image(bridge, "first")
    IJ.doCommand("Diffraction PSF 3D")
    gd = _wait_dialog(bridge, "Specify psf")
    assert [str(gd.getNumericFields().get(i).getText()) for i in (6, 7, 8)] == ["12", "12", "3"]
    _press(gd, 1)  # Cancel


def test_cancel_in_the_rayleigh_message_computes_nothing(bridge, jvm, recorder):
    IJ = jvm.jimport("ij.IJ")
    bridge.state.last_status = None
    IJ.doCommand("Diffraction PSF 3D")
    gd = _wait_dialog(bridge, "Specify psf")
    gd.getStringFields().get(0).setText("never")
    _press(gd, 0)
    msg = _wait_dialog(bridge, "PSF: peak to first dark ring (w/o sph. aber.)")
    _press(msg, 1)  # Cancel
    end = time.monotonic() + 10
    while bridge.state.last_status != "cancelled" and time.monotonic() < end:
        time.sleep(0.05)
    assert bridge.state.last_status == "cancelled"
    assert bridge.image("never") is None
    assert 'run("Diffraction PSF 3D"' not in str(recorder.getText())
