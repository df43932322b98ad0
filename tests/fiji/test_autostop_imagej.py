"""Richardson-Lucy's automatic stop through ImageJ (real ImageJ 1.54p, Xvfb): the dialog's
"Automatic" stop rule with the camera's gain and offset, its choice in the Log, = the API."""

from __future__ import annotations

import numpy as np
import pytest

from fijidecon.calibration import Calibration

pytestmark = pytest.mark.usefixtures("clean_bridge")


def _pair():
    from fijidecon.deconvolve import convolve

    g = np.indices((9, 9, 9), dtype=float) - 4
    psf = np.exp(-0.5 * ((g[0] / 1.6) ** 2 + (g[1] / 1.2) ** 2 + (g[2] / 1.2) ** 2)).astype(np.float32)
    obj = np.zeros((12, 40, 40), np.float32)
    obj[4:8, 8:32, 10:12] = obj[4:8, 8:32, 14:16] = obj[4:8, 8:32, 19:21] = 150.0
    rng = np.random.default_rng(2)
    img = (rng.poisson(np.clip(convolve(obj, psf, edges="constant"), 0, None) + 10) / 2.0 + 100).astype(np.float32)
    return img, psf  # gain 2 e-/ADU, offset 100 ADU


def _show(array, title):
    from fijidecon.fiji import convert

    imp = convert.to_imageplus(array, Calibration.make("ZYX", unit="micron", Z=0.3, Y=0.1, X=0.1), title=title)
    imp.show()
    return imp


def test_automatic_stop_in_the_dialog_logs_its_choice(bridge):
    from fijidecon.deconvolve import richardson_lucy
    from fijidecon.fiji import convert

    img, psf = _pair()
    _show(img, "img")
    _show(psf, "psf")
    r = bridge.run_macro('run("Richardson-Lucy Deconvolution", "image=img psf=psf iterations=40 '
                         'acceleration=Biggs-Andrews background=105 stop=[Automatic (cross-validation on thinned '
                         'photons)] gain=2 offset=100 title=OUT");', clear_log=True)
    assert r.ok, r.error
    lines = [x for x in r.log.splitlines() if "stop=auto chose" in x]
    assert len(lines) == 1, r.log
    want = richardson_lucy(img, psf, 40, stop="auto", acceleration="biggs-andrews", background=105, gain=2.0,
                           offset=100.0, voxel_size=(0.3, 0.1, 0.1))
    assert f"chose {want.iterations} iterations" in lines[0] and "given" in lines[0]
    got, _ = convert.from_imageplus(bridge.image("OUT"))
    np.testing.assert_allclose(got, want.image, rtol=1e-5, atol=1e-5 * float(np.max(want.image)))


def test_the_discrepancy_stop_says_its_count_in_the_log(bridge):
    """A fresh Fiji user: Richardson-Lucy with 'Discrepancy principle' stopped with no Log line and a window
    titled as any other (the CLI said '8 iterations (stopping rule)')."""
    img, psf = _pair()
    _show(img, "img")
    _show(psf, "psf")
    r = bridge.run_macro('run("Richardson-Lucy Deconvolution", "image=img psf=psf iterations=300 background=100 '
                         'stop=[Discrepancy principle (data in photons)] title=DISC");', clear_log=True)
    assert r.ok, r.error
    assert any("stopped by the discrepancy principle after" in x for x in r.log.splitlines()), r.log


def test_log_warnings_say_macro_keys_not_api_names(bridge):
    """A verifier: the Log said 'choose the count another way (stop='auto', snapshots)' and 'stop='auto' chooses
    at most iterations=5': API spellings an ImageJ user cannot type."""
    img, psf = _pair()
    _show(img * 40, "bright")  # far from photo-electrons: the rule cannot be met in 1 iteration
    _show(psf, "psf")
    r = bridge.run_macro('run("Richardson-Lucy Deconvolution", "image=bright psf=psf iterations=1 background=4000 '
                         'stop=[Discrepancy principle (data in photons)] title=D1");', clear_log=True)
    assert r.ok, r.error
    line = next((x for x in r.log.splitlines() if "was not met" in x), r.log)
    assert "stop='auto'" not in line and "stop=[Automatic (cross-validation on thinned photons)]" in line, line


def test_a_camera_warning_said_as_a_note_has_no_cli_aside(bridge):
    """A fresh user (2026-12-03): the Log said "pass gain= and offset= (CLI --gain, --offset; camera values)":
    the camera warning, held for all volumes and logged as a note, kept the CLI's aside."""
    img, psf = _pair()
    _show(img * 40, "bright40")  # gain 0.05 e-/ADU: far from photo-electrons
    _show(psf, "psf")
    r = bridge.run_macro('run("Richardson-Lucy Deconvolution", "image=bright40 psf=psf iterations=20 '
                         'background=4000 stop=[Automatic (cross-validation on thinned photons)] title=C1");',
                         clear_log=True)
    assert r.ok, r.error
    said = [x for x in r.log.splitlines() if "photo-electrons" in x]
    assert said and not any("(CLI " in x or "--gain" in x for x in said), r.log
