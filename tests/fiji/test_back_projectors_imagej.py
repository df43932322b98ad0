"""Richardson-Lucy's back projectors and accelerations through ImageJ (real ImageJ, Xvfb): the macro
options of the dialog give the API's result; a bad combination is one line in the error."""

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
    rng = np.random.default_rng(3)
    return rng.poisson(np.clip(convolve(obj, psf, edges="constant"), 0, None) + 10).astype(np.float32), psf


def _show(array, title):
    from fijidecon.fiji import convert

    imp = convert.to_imageplus(array, Calibration.make("ZYX", unit="micron", Z=0.3, Y=0.1, X=0.1), title=title)
    imp.show()
    return imp


def _macro_and_api(bridge, options, title, iterations, **kw):
    """Runs Richardson-Lucy Deconvolution from a macro on the pair; returns the API's result with ``kw``."""
    from fijidecon.deconvolve import richardson_lucy

    img, psf = _pair()
    _show(img, "img")
    _show(psf, "psf")
    r = bridge.run_macro(f'run("Richardson-Lucy Deconvolution", "image=img psf=psf iterations={iterations} '
                         f'{options} background=10 title={title}");', clear_log=True)
    assert r.ok, r.error
    return richardson_lucy(img, psf, iterations, background=10, voxel_size=(0.3, 0.1, 0.1), **kw)


def _same(imp, want):
    from fijidecon.fiji import convert

    got, cal = convert.from_imageplus(imp)
    assert cal.voxel_size() == pytest.approx((0.3, 0.1, 0.1))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.max(want)))


@pytest.mark.parametrize("options,kw", [
    ("acceleration=[Momentum (scaled heavy-ball)] back=Wiener-Butterworth beta=0.05",
     dict(iterations=4, acceleration="momentum", back_projector="wiener-butterworth", bp_beta=0.05)),
    ("acceleration=[Biggs-Andrews, 2nd order]", dict(iterations=8, acceleration="biggs-andrews-2")),
    ("acceleration=[Momentum (scaled heavy-ball)] exponent=2.5", dict(iterations=8, acceleration="momentum",
                                                                       exponent=2.5)),
])
def test_macro_options_give_the_api_result(bridge, options, kw):
    want = _macro_and_api(bridge, options, "OUT", **kw)
    assert want.figures("acceleration").max() > 0  # the extrapolation ran
    assert want.figures("exponent")[0] == kw.get("exponent", 1.0)
    _same(bridge.image("OUT"), want.image)


def test_butterworth_parameters_without_its_back_projector_fail_in_one_line(bridge):
    img, psf = _pair()
    _show(img, "img")
    _show(psf, "psf")
    r = bridge.run_macro('run("Richardson-Lucy Deconvolution", "image=img psf=psf iterations=2 order=4 '
                         'title=BAD");', clear_log=True)
    assert not r.ok
    assert '"Order of the Wiener-Butterworth filter" (order): only used with back=Wiener-Butterworth' in r.error, r.error
    assert "Traceback" not in r.error


def test_snapshot_every_opens_one_window_per_snapshot(bridge):
    want = _macro_and_api(bridge, "snapshot=4", "SNAP", 8, snapshot_every=4)
    for k in (4, 8):
        _same(bridge.image(f"SNAP_iter{k}"), want.snapshots[k])
