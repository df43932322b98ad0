"""ImageJ hyperstack windows through every deconvolution command (real ImageJ 1.54p, Xvfb).

A 2-channel, 2-timepoint uint16 hyperstack (ImageJ order TZCYX, calibrated in micron,
channel 2 = 5 x channel 1 in the object, each channel blurred with its own PSF) and a CZYX OME-TIFF read by ``fijidecon.io.read_image``: each
(T, C) volume is deconvolved with its channel's PSF (a PSF hyperstack, or one stack for all
channels); the result window has the input's dimensions, order and calibration, keeps the
channel intensity ratio within 2 % and equals the Python API on the same arrays.  The two
ported commands do the same (the originals took C/T planes as z: not reproduced)."""

from __future__ import annotations

import numpy as np
import pytest

from fijidecon.calibration import Calibration

pytestmark = pytest.mark.usefixtures("clean_bridge")

VOXEL = {"Z": 0.25, "Y": 0.1, "X": 0.1}  # micron
LABELS = {"richardson-lucy": "Richardson-Lucy Deconvolution", "wiener": "Wiener Deconvolution",
          "convolve": "Convolve (FFT)", "iterative-deconvolve-3d": "Iterative Deconvolve 3D"}


def _psf(wavelength, depth=9, size=17):
    from fijidecon.psf import diffraction_psf_3d

    return diffraction_psf_3d(width=size, height=size, depth=depth, index=1.33, na=1.2, wavelength=wavelength,
                              pixel_spacing=100, slice_spacing=250)


def _psfs():
    return [_psf(520), _psf(600)]


def _hyperstack(nt=2, nz=20, ny=40, nx=36, seed=3):
    """(T, Z, C, Y, X) uint16: the same points in both channels, 5 x brighter in channel 2, each
    channel blurred with its own PSF (520 and 600 nm) on a background of 20 (100 in channel 2),
    with Poisson noise."""
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(seed)
    out = np.empty((nt, nz, 2, ny, nx), np.uint16)
    for t in range(nt):
        obj = np.zeros((nz, ny, nx))
        for _ in range(5):
            obj[rng.integers(4, nz - 4), rng.integers(8, ny - 8), rng.integers(8, nx - 8)] = rng.uniform(4e3, 8e3)
        for c, (psf, gain) in enumerate(zip(_psfs(), (1, 5))):
            blurred = np.clip(fftconvolve(obj, psf, mode="same"), 0, None) + 20
            out[t, :, c] = rng.poisson(gain * blurred).astype(np.uint16)  # photon noise
    return out


def _show(array, axes, title, unit="micron", **voxel):
    from fijidecon.fiji import convert

    cal = Calibration.make(axes, unit=unit, **(voxel or VOXEL))
    imp = convert.to_imageplus(np.ascontiguousarray(array), cal, title=title)
    imp.show()
    return imp


def _dims(imp):
    c = imp.getCalibration()
    return ((int(imp.getNChannels()), int(imp.getNSlices()), int(imp.getNFrames()), int(imp.getWidth()),
             int(imp.getHeight())),
            (float(c.pixelWidth), float(c.pixelHeight), float(c.pixelDepth), str(c.getUnit()),
             float(c.frameInterval)))


def _api(cmd_id, image, psf, axes, values, voxel=(0.25, 0.1, 0.1), psf_voxel=(0.25, 0.1, 0.1)):
    """The Python API call the command stands for, with the dialog's values."""
    from fijidecon.commands import get_command

    cmd = get_command(cmd_id)
    kw = cmd.api_kwargs({k: v for k, v in values.items() if k not in ("image", "psf")})
    return cmd.load()(image=image, psf=psf, axes=axes, voxel_size=voxel, psf_voxel_size=psf_voxel, **kw)


def _image(res):
    return res if isinstance(res, np.ndarray) else res.image


def _ratio(a, axis):
    """Sum of channel 2 over sum of channel 1 (per the rest of the axes pooled)."""
    s = np.moveaxis(a.astype(np.float64), axis, 0).reshape(a.shape[axis], -1).sum(axis=1)
    return s[1] / s[0]


MACROS = {
    "richardson-lucy": ('run("Richardson-Lucy Deconvolution", "image=hyper psf=[psf hyper] iterations=4 '
                        'title=OUT");', {"iterations": 4}),
    "wiener": ('run("Wiener Deconvolution", "image=hyper psf=[psf hyper] title=OUT");', {}),
    "convolve": ('run("Convolve (FFT)", "image=hyper kernel=[psf hyper] title=OUT");', {}),
}


@pytest.mark.parametrize("cmd_id", list(MACROS))
def test_2c_2t_hyperstack_with_a_psf_per_channel(bridge, cmd_id):
    """The issue's must-show, through ImageJ: each channel with its own PSF (a 2-channel PSF
    hyperstack), dimensions/order/calibration kept, ratio 5 kept within 2 %, = the API."""
    from fijidecon.fiji import convert

    data = _hyperstack()
    psfs = _psfs()
    imp = _show(data, "TZCYX", "hyper", T=2.5, **VOXEL)
    assert float(imp.getCalibration().frameInterval) == 2.5
    _show(np.stack(psfs, axis=1), "ZCYX", "psf hyper")  # (Z, C, Y, X): ImageJ's order
    code, values = MACROS[cmd_id]
    r = bridge.run_macro(code, clear_log=True)
    assert r.ok, r.error
    out = bridge.image("OUT")
    assert out is not None and bool(out.isHyperStack())
    if cmd_id == "wiener":  # the chosen regularization: one Log line per (T, C) volume
        lines = [x for x in r.log.splitlines() if x.startswith("Wiener Deconvolution: ") and "regularization" in x]
        assert len(lines) == 4, r.log
    assert _dims(out) == _dims(imp)
    got, cal = convert.from_imageplus(out)
    assert cal.axes == "TZCYX" and got.shape == data.shape
    assert cal.voxel_size() == pytest.approx((0.25, 0.1, 0.1)) and cal.unit == "micron"
    assert _ratio(got, 2) == pytest.approx(5.0, rel=0.02)
    want = _image(_api(cmd_id, data, psfs, "TZCYX", values))
    assert want.shape == data.shape
    assert np.max(np.abs(got - want)) <= 1e-5 * np.max(np.abs(want))
    # each channel used its own PSF: channel 2 is not 5 x channel 1 deconvolved with PSF 1
    other = _image(_api(cmd_id, data, psfs[0], "TZCYX", values))
    assert np.max(np.abs(got[:, :, 1] - other[:, :, 1])) > 1e-3 * np.max(np.abs(want))
    assert np.max(np.abs(got[:, :, 0] - other[:, :, 0])) <= 1e-5 * np.max(np.abs(want))


@pytest.mark.parametrize("background", ["20,100", "auto"])
def test_richardson_lucy_background_per_channel_from_a_macro(bridge, background):
    """``background=20,100`` (one per channel: channel 2 sits on 5 x 20) and ``background=auto``
    (each volume's lowest local mean, said in the Log) through the dialog's text field = the API."""
    from fijidecon.fiji import convert

    data = _hyperstack(nt=1)[0]  # (Z, C, Y, X)
    psfs = _psfs()
    _show(data, "ZCYX", "hyper")
    _show(np.stack(psfs, axis=1), "ZCYX", "psf hyper")
    r = bridge.run_macro(f'run("Richardson-Lucy Deconvolution", "image=hyper psf=[psf hyper] iterations=4 '
                         f'background={background} title=OUT");', clear_log=True)
    assert r.ok, r.error
    got, _ = convert.from_imageplus(bridge.image("OUT"))
    want = _api("richardson-lucy", data, psfs, "ZCYX", {"iterations": 4, "background": background})
    assert want.background == ([20.0, 100.0] if background != "auto" else want.background)
    assert np.max(np.abs(got - _image(want))) <= 1e-5 * np.max(np.abs(_image(want)))
    if background == "auto":
        assert "background estimated as" in r.log and "(c=1)" in r.log, r.log
        assert 15 < want.background[0] < 20 and 90 < want.background[1] < 100, want.background
    one = _image(_api("richardson-lucy", data, psfs, "ZCYX", {"iterations": 4, "background": "20"}))
    assert np.max(np.abs(got[:, 1] - one[:, 1])) > 1e-3 * np.max(np.abs(one))  # channel 2 took its own


def test_one_psf_stack_for_every_channel(bridge):
    from fijidecon.fiji import convert

    data = _hyperstack(nt=1)[0]  # (Z, C, Y, X)
    psf = _psf(520)
    imp = _show(data, "ZCYX", "hyper")
    _show(psf, "ZYX", "psf one")
    r = bridge.run_macro('run("Wiener Deconvolution", "image=hyper psf=[psf one] regularization=1e-3 '
                         'title=OUT");', clear_log=True)
    assert r.ok, r.error
    out = bridge.image("OUT")
    assert _dims(out) == _dims(imp)
    got, cal = convert.from_imageplus(out)
    assert cal.axes == "ZCYX"
    assert _ratio(got, 1) == pytest.approx(5.0, rel=0.02)
    want = _image(_api("wiener", data, psf, "ZCYX", {"regularization": "1e-3"}))
    assert np.max(np.abs(got - want)) <= 1e-5 * np.max(np.abs(want))


@pytest.mark.parametrize("cmd_id", list(MACROS))
def test_czyx_ome_tiff_read_and_pushed_into_imagej(bridge, tmp_path, cmd_id):
    """The same with an OME-TIFF stored as CZYX: read_image -> to_imageplus -> macro; the
    result window is the same hyperstack, and equals the API on the CZYX array."""
    import tifffile

    from fijidecon.fiji import convert
    from fijidecon.io import read_image

    czyx = np.ascontiguousarray(np.moveaxis(_hyperstack(nt=1)[0], 1, 0))  # (C, Z, Y, X)
    path = tmp_path / "two channels.ome.tif"
    tifffile.imwrite(path, czyx, ome=True, metadata={
        "axes": "CZYX", "PhysicalSizeX": 0.1, "PhysicalSizeXUnit": "µm", "PhysicalSizeY": 0.1,
        "PhysicalSizeYUnit": "µm", "PhysicalSizeZ": 0.25, "PhysicalSizeZUnit": "µm"})
    arr, cal = read_image(path)
    assert cal.axes == "CZYX" and arr.shape == czyx.shape
    imp = convert.to_imageplus(arr, cal, title="hyper")
    imp.show()
    assert (int(imp.getNChannels()), int(imp.getNSlices())) == (2, czyx.shape[1])
    psfs = _psfs()
    _show(np.stack(psfs, axis=1), "ZCYX", "psf hyper")
    code, values = MACROS[cmd_id]
    r = bridge.run_macro(code, clear_log=True)
    assert r.ok, r.error
    out = bridge.image("OUT")
    assert _dims(out) == _dims(imp)
    got, gcal = convert.from_imageplus(out)
    assert gcal.axes == "ZCYX"
    assert gcal.voxel_size() == pytest.approx(cal.voxel_size())
    assert gcal.has_length_unit() and cal.has_length_unit()
    assert _ratio(got, 1) == pytest.approx(5.0, rel=0.02)
    want = _image(_api(cmd_id, arr, psfs, "CZYX", values, voxel=cal.voxel_size(unit="micron")))
    assert want.shape == czyx.shape  # the API answers in the input's axes
    assert np.max(np.abs(got - np.moveaxis(want, 0, 1))) <= 1e-5 * np.max(np.abs(want))


@pytest.mark.parametrize("frames", [1, 2])
def test_iterative_deconvolve_3d_each_volume_as_the_original_on_that_stack(bridge, frames):
    """Ported command on a hyperstack, PSF hyperstack built in the macro the ImageJ way
    (Diffraction PSF 3D twice, Merge Channels): every (T, C) volume equals the compatible
    run on that single-channel stack alone (the original would have taken the C/T planes
    as z; that is not reproduced)."""
    from fijidecon.deconvolve import iterative_deconvolve_3d
    from fijidecon.fiji import convert

    data = _hyperstack(nt=frames)
    data = data[0] if frames == 1 else data
    axes = "ZCYX" if frames == 1 else "TZCYX"
    imp = _show(data, axes, "hyper")
    psf_opts = ("index=1.33 numerical=1.2 longitudinal=0 image=100 slice=250 width,=17 height,=17 depth,=9 "
                "normalization=[Sum of pixel values = 1]")
    r = bridge.run_macro(
        f'run("Diffraction PSF 3D", "{psf_opts} wavelength=520 title=p520");'
        f'run("Diffraction PSF 3D", "{psf_opts} wavelength=600 title=p600");'
        'run("Merge Channels...", "c1=p520 c2=p600 create");'
        'rename("psf hyper");'
        'run("Iterative Deconvolve 3D", "image=hyper point=[psf hyper] output=ID wiener=0 low=1 z_direction=1 '
        'maximum=4 terminate=-1000");', clear_log=True)
    assert r.ok, r.error
    out = bridge.image("ID_4")
    assert out is not None, r.log  # titled <output>_<iterations>, as the original
    assert _dims(out) == _dims(imp)
    got, cal = convert.from_imageplus(out)
    assert cal.axes == axes and got.shape == data.shape
    vols = data[None] if frames == 1 else data
    res = got[None] if frames == 1 else got
    for t in range(vols.shape[0]):
        for c, wl in enumerate((520, 600)):
            want = iterative_deconvolve_3d(vols[t, :, c], _psf(wl), max_iterations=4, terminate=-1000,
                                           anti_ringing=False, detect_divergence=False)
            assert np.max(np.abs(res[t, :, c] - want.image)) <= 1e-6 * np.max(want.image), (t, c)
    assert _ratio(got, got.ndim - 3) == pytest.approx(5.0, rel=0.02)


@pytest.mark.parametrize("psf_shape, axes, match", [
    ((9, 3, 17, 17), "ZCYX", "3 channels but the image has 2"),
    ((2, 9, 17, 17), "TZYX", "time frames"),
])
def test_psf_hyperstack_that_does_not_fit_is_refused(bridge, psf_shape, axes, match):
    _show(_hyperstack(nt=1)[0], "ZCYX", "hyper")
    _show(np.ones(psf_shape, np.float32), axes, "bad psf")
    r = bridge.run_macro('run("Richardson-Lucy Deconvolution", "image=hyper psf=[bad psf] iterations=2 title=OUT");')
    assert not r.ok
    assert match in r.error and "psf=bad psf" in r.error, r.error
    assert bridge.image("OUT") is None


@pytest.mark.parametrize("axes", ["ZCYX", "TZYX", "CYX", "TCYX", "TZCYX"])
@pytest.mark.parametrize("cmd_id", ["richardson-lucy", "iterative-deconvolve-3d"])
def test_every_hyperstack_layout(bridge, axes, cmd_id):
    """C only, T only, 2D planes with C and/or T: the result window has the input's layout and
    each (T, C) volume equals the API on it (2D planes: a 2D PSF per channel)."""
    from fijidecon.deconvolve import iterative_deconvolve_3d
    from fijidecon.fiji import convert

    full = _hyperstack(nt=2)  # (T, Z, C, Y, X)
    index = tuple(slice(None) if a in axes else 0 for a in "TZCYX")
    data = np.ascontiguousarray(full[index])
    planar = "Z" not in axes
    psfs = [p[p.shape[0] // 2] if planar else p for p in _psfs()]
    imp = _show(data, axes, "hyper")
    if "C" in axes:
        _show(np.stack(psfs, axis=-3), ("" if planar else "Z") + "CYX", "psf")
    else:
        _show(psfs[0], "YX" if planar else "ZYX", "psf")
    if cmd_id == "richardson-lucy":
        code = 'run("Richardson-Lucy Deconvolution", "image=hyper psf=psf iterations=3 title=OUT");'
    else:
        code = ('run("Iterative Deconvolve 3D", "image=hyper point=psf output=OUT wiener=0 low=1 z_direction=1 '
                'maximum=3 terminate=-1000");')
    r = bridge.run_macro(code, clear_log=True)
    assert r.ok, r.error
    out = bridge.image("OUT" if cmd_id == "richardson-lucy" else "OUT_3")
    assert out is not None, r.log
    assert _dims(out) == _dims(imp)
    got, cal = convert.from_imageplus(out)
    assert cal.axes == axes and got.shape == data.shape
    if cmd_id == "richardson-lucy":
        voxel = (0.1, 0.1) if planar else (0.25, 0.1, 0.1)
        want = _image(_api(cmd_id, data, psfs if "C" in axes else psfs[0], axes, {"iterations": 3},
                           voxel=voxel, psf_voxel=voxel))
        assert np.max(np.abs(got - want)) <= 1e-5 * np.max(want)
    else:  # every volume: the compatible run on that single-channel stack
        vol_axes = "".join(a for a in axes if a in "ZYX")
        lead = [a for a in axes if a in "TC"]
        vols = np.moveaxis(data, [axes.index(a) for a in lead], range(len(lead)))
        res = np.moveaxis(got, [axes.index(a) for a in lead], range(len(lead)))
        for idx in np.ndindex(*vols.shape[:len(lead)]):
            c = idx[lead.index("C")] if "C" in lead else 0
            want = iterative_deconvolve_3d(vols[idx], psfs[c], max_iterations=3, terminate=-1000,
                                           anti_ringing=False, detect_divergence=False)
            assert want.image.ndim == len(vol_axes)
            assert np.max(np.abs(res[idx] - want.image)) <= 1e-6 * np.max(want.image), idx


def test_iteration_log_of_a_hyperstack_names_each_volume(bridge):
    """With "log", each (T, C) volume's change figures follow a "volume k/n" line and equal
    the figures of the compatible run on that volume alone."""
    from fijidecon.deconvolve import iterative_deconvolve_3d

    data = _hyperstack(nt=1)[0]  # (Z, C, Y, X)
    psfs = _psfs()
    _show(data, "ZCYX", "hyper")
    _show(np.stack(psfs, axis=1), "ZCYX", "psf hyper")
    r = bridge.run_macro('run("Iterative Deconvolve 3D", "image=hyper point=[psf hyper] output=ID log wiener=0 '
                         'low=1 z_direction=1 maximum=3 terminate=-1000");', clear_log=True)
    assert r.ok, r.error
    lines = r.log.splitlines()
    heads = [i for i, line in enumerate(lines) if line.startswith("Iterative Deconvolve 3D: volume ")]
    assert [lines[i] for i in heads] == ["Iterative Deconvolve 3D: volume 1/2", "Iterative Deconvolve 3D: volume 2/2"]
    for c, i in enumerate(heads):
        want = iterative_deconvolve_3d(data[:, c], psfs[c], max_iterations=3, terminate=-1000, anti_ringing=False,
                                       detect_divergence=False)
        figures = [float(x) for x in lines[i + 1:i + 4]]
        assert figures == pytest.approx([float(np.float32(v)) for v in want.log], rel=1e-6)


@pytest.mark.parametrize("cmd_id", ["richardson-lucy", "iterative-deconvolve-3d"])
def test_progress_and_escape_on_a_hyperstack(bridge, jvm, cmd_id):
    """The status bar names the volume; Esc during the first volume cancels the whole run
    (every later volume stops at its first iteration) and leaves no result window."""
    import threading
    import time

    data = _hyperstack(nt=2)
    _show(data, "TZCYX", "hyper")
    _show(np.stack(_psfs(), axis=1), "ZCYX", "psf hyper")
    if cmd_id == "richardson-lucy":
        code = 'run("Richardson-Lucy Deconvolution", "image=hyper psf=[psf hyper] iterations=5000 title=Long");'
    else:
        code = ('run("Iterative Deconvolve 3D", "image=hyper point=[psf hyper] output=Long wiener=0 low=1 '
                'z_direction=1 maximum=5000 terminate=-1000");')
    IJ = jvm.jimport("ij.IJ")
    IJ.resetEscape()
    bridge.state.iteration = 0
    box = {}
    th = threading.Thread(target=lambda: box.setdefault("r", bridge.run_macro(code + 'print("after");')))
    th.start()
    end = time.monotonic() + 60
    while bridge.state.iteration < 3 and time.monotonic() < end:
        time.sleep(0.02)
    status = str(jvm.jimport("ij.ImageJ").getStatusBarText())
    assert "volume 1/4, iteration " in status and "/5000" in status, status
    KeyEvent = jvm.jimport("java.awt.event.KeyEvent")
    ij = IJ.getInstance()
    ij.keyPressed(KeyEvent(ij, KeyEvent.KEY_PRESSED, 0, 0, KeyEvent.VK_ESCAPE, chr(27)))
    th.join(60)
    assert not th.is_alive()
    assert bridge.state.last_status == "cancelled"
    assert bridge.state.iteration <= 2  # the last volume stopped at once
    assert not any(str(t).startswith("Long") for t in jvm.jimport("ij.WindowManager").getImageTitles())
    assert "after" not in box["r"].log
    IJ.resetEscape()


def test_script_face_on_a_hyperstack(bridge):
    """The `#@` scripts' body (fijidecon.fiji.scripts.run_script, what Fiji runs) takes the
    same path: a hyperstack in, the same hyperstack layout out, equal to the macro's result."""
    from fijidecon.fiji import convert, scripts

    data = _hyperstack(nt=2)
    imp = _show(data, "TZCYX", "hyper")
    psf_imp = _show(np.stack(_psfs(), axis=1), "ZCYX", "psf hyper")
    out = scripts.run_script("richardson-lucy", {"image": imp, "psf": psf_imp, "iterations": 4})
    assert _dims(out) == _dims(imp)
    r = bridge.run_macro(MACROS["richardson-lucy"][0])
    assert r.ok, r.error
    a, _ = convert.from_imageplus(out)
    b, _ = convert.from_imageplus(bridge.image("OUT"))
    assert np.array_equal(a, b)
