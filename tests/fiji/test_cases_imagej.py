"""The real-data cases of ``../shared/cases/real-data`` through ImageJ (real ImageJ 1.54p, Xvfb).

The inputs are written by the cases' own ``make_cases.py`` into a temporary folder; TIFFs are
opened by ImageJ itself (``open(path)`` in the macro) and results saved by ImageJ
(``saveAs``) are read back with :func:`fijidecon.io.read_image`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fijidecon.calibration import Calibration

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT.parent / "shared" / "cases" / "real-data"

pytestmark = [pytest.mark.usefixtures("clean_bridge"),
              pytest.mark.skipif(not (CASES / "make_cases.py").is_file(), reason=f"no {CASES}/make_cases.py")]

DECONV = {
    "richardson-lucy": 'run("Richardson-Lucy Deconvolution", "image=[{img}] psf=[{psf}] iterations=4 title=OUT");',
    "wiener": 'run("Wiener Deconvolution", "image=[{img}] psf=[{psf}] regularization=1e-3 title=OUT");',
    "convolve": 'run("Convolve (FFT)", "image=[{img}] kernel=[{psf}] title=OUT");',
}
VALUES = {"richardson-lucy": {"iterations": 4}, "wiener": {"regularization": "1e-3"}, "convolve": {}}


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    out = tmp_path_factory.mktemp("cases")
    subprocess.run([sys.executable, str(CASES / "make_cases.py"), str(out)], check=True, capture_output=True,
                   timeout=300)
    return out


def _api(cmd_id, image, psf, **kw):
    from fijidecon.commands import get_command

    cmd = get_command(cmd_id)
    res = cmd.load()(image=image, psf=psf, **cmd.api_kwargs(VALUES.get(cmd_id, {})), **kw)
    return res if isinstance(res, np.ndarray) else res.image


def _saved(bridge, tmp_path, name="out.tif"):
    """Save the window OUT with ImageJ and read the file back."""
    from fijidecon.io import read_image

    path = tmp_path / name
    r = bridge.run_macro(f'selectImage("OUT"); saveAs("Tiff", "{path}");')
    assert r.ok, r.error
    return read_image(path)


@pytest.mark.parametrize("cmd_id", list(DECONV))
@pytest.mark.parametrize("psf_name", ["case01_psf_widefield_32x64x64.npy", "case01_psf_diffraction_32x64x64.npy"])
def test_case01_same_size_even_psf(bridge, cases, cmd_id, psf_name):
    from fijidecon.fiji import convert

    img = np.load(cases / "case01_image_32x64x64.npy")
    psf = np.load(cases / psf_name)
    assert psf.shape == img.shape
    convert.to_imageplus(img, title="img").show()
    convert.to_imageplus(np.asarray(psf, np.float32), title="psf").show()
    r = bridge.run_macro(DECONV[cmd_id].format(img="img", psf="psf"), clear_log=True)
    assert r.ok, r.error
    got, _ = convert.from_imageplus(bridge.image("OUT"))
    want = _api(cmd_id, img, np.asarray(psf, np.float32))
    assert got.shape == img.shape
    assert np.max(np.abs(got - want)) <= 1e-5 * np.max(np.abs(want))


@pytest.mark.parametrize("cmd_id", ["richardson-lucy", "wiener"])
def test_case04_psf_deeper_than_the_image(bridge, cases, cmd_id):
    from fijidecon.fiji import convert

    img = np.load(cases / "case04_image_12x64x64.npy")
    psf = np.asarray(np.load(cases / "case04_psf_41x31x31.npy"), np.float32)
    convert.to_imageplus(img, title="img").show()
    convert.to_imageplus(psf, title="psf").show()
    r = bridge.run_macro(DECONV[cmd_id].format(img="img", psf="psf"), clear_log=True)
    assert r.ok, r.error
    got, _ = convert.from_imageplus(bridge.image("OUT"))
    assert got.shape == img.shape
    assert np.max(np.abs(got - _api(cmd_id, img, psf))) <= 1e-5 * np.max(np.abs(got))


def test_case06_psf_made_at_another_voxel_size_is_resampled(bridge, cases, tmp_path):
    """Case 6 in ImageJ: the image file (200 x 65 x 65 nm) opened by ImageJ, a Gaussian PSF made
    in the macro at 300 x 100 x 100 nm: resampled with a Log note, and the beads come back as
    bright as with a PSF made at the image's voxel size (the case's "peak 117 instead of 1365")."""
    path = cases / "case06_image_200x65x65nm.tif"
    gauss = ('run("Gaussian PSF", "lateral=250 axial=700 pixel={dx} slice={dz} width,=31 height,=31 depth,=15 '
             'title={t}");')
    rl = 'run("Richardson-Lucy Deconvolution", "image=img psf={t} iterations=30 title={o}");'
    r = bridge.run_macro(f'open("{path}"); rename("img");' + gauss.format(dx=100, dz=300, t="psf_coarse")
                         + gauss.format(dx=65, dz=200, t="psf_fine") + rl.format(t="psf_coarse", o="OUT")
                         + rl.format(t="psf_fine", o="REF"), clear_log=True)
    assert r.ok, r.error
    assert any(line.startswith("Richardson-Lucy Deconvolution: psf: resampled") for line in r.log.splitlines()), r.log
    from fijidecon.fiji import convert

    got, cal = convert.from_imageplus(bridge.image("OUT"))
    ref, _ = convert.from_imageplus(bridge.image("REF"))
    assert cal.unit == "nm" and cal.voxel_size() == pytest.approx((200, 65, 65))
    for bead in [(12, 20, 20), (10, 40, 44)]:
        assert got[bead] == pytest.approx(ref[bead], rel=0.15), bead
        assert got[bead] > 5 * np.percentile(got, 99)


@pytest.mark.parametrize("cmd_id", list(DECONV))
@pytest.mark.parametrize("name, axes", [("case07_zcyx_2ch.tif", "ZCYX"), ("case08_tzcyx.tif", "TZCYX")])
def test_case07_08_hyperstack_files_opened_by_imagej(bridge, cases, tmp_path, cmd_id, name, axes):
    """Cases 7 and 8: ImageJ hyperstack files written by tifffile, opened by ImageJ; every
    channel deconvolved with the PSF; ratio 5 kept; saved by ImageJ as the same hyperstack."""
    from fijidecon.io import read_image

    src, src_cal = read_image(cases / name)
    assert src_cal.axes == axes
    psf, _ = read_image(cases / "case07_psf.tif")
    r = bridge.run_macro(f'open("{cases / name}"); rename("img"); open("{cases / "case07_psf.tif"}"); '
                         'rename("psf");' + DECONV[cmd_id].format(img="img", psf="psf"), clear_log=True)
    assert r.ok, r.error
    got, cal = _saved(bridge, tmp_path)
    assert cal.axes == axes and got.shape == src.shape
    assert cal.unit in ("µm", "micron", "um") and cal.voxel_size() == pytest.approx(src_cal.voxel_size(), rel=1e-4)
    c = axes.index("C")
    sums = np.moveaxis(got.astype(np.float64), c, 0).reshape(2, -1).sum(axis=1)
    assert sums[1] / sums[0] == pytest.approx(5.0, rel=0.02)
    want = _api(cmd_id, src, np.asarray(psf, np.float32), axes=axes)
    assert np.max(np.abs(got - want)) <= 1e-4 * np.max(np.abs(want))


def test_case09_ome_tiff_czyx(bridge, cases, tmp_path):
    from fijidecon.fiji import convert
    from fijidecon.io import read_image

    arr, cal = read_image(cases / "case09_czyx.ome.tif")
    assert cal.axes == "CZYX"
    convert.to_imageplus(arr, cal, title="img").show()
    psf, _ = read_image(cases / "case07_psf.tif")
    convert.to_imageplus(np.asarray(psf, np.float32), title="psf").show()
    r = bridge.run_macro(DECONV["richardson-lucy"].format(img="img", psf="psf"), clear_log=True)
    assert r.ok, r.error
    got, gcal = convert.from_imageplus(bridge.image("OUT"))
    assert gcal.axes == "ZCYX"
    want = _api("richardson-lucy", arr, np.asarray(psf, np.float32), axes="CZYX")
    assert np.max(np.abs(got - np.moveaxis(want, 0, 1))) <= 1e-5 * np.max(want)


def test_case14_rgb_array_becomes_an_rgb_window(bridge, cases):
    from fijidecon.fiji import convert

    a = np.load(cases / "case14_rgb_40x30x3.npy")
    imp = convert.to_imageplus(a, title="rgb")
    assert int(imp.getBitDepth()) == 24 and (int(imp.getHeight()), int(imp.getWidth())) == (40, 30)
    assert int(imp.getStackSize()) == 1


def test_case16_raw_psf_with_camera_offset(bridge, cases):
    """Case 16: a raw 16-bit bead PSF with an offset of a third of its peak as the PSF window:
    the offset is estimated and removed, and the Log says so."""
    from fijidecon.fiji import convert

    psf = np.load(cases / "case16_raw_psf_offset.npy")
    img = np.load(cases / "case01_image_32x64x64.npy")
    convert.to_imageplus(img, Calibration.make("ZYX", unit="nm", Z=250, Y=100, X=100), title="img").show()
    convert.to_imageplus(psf, Calibration.make("ZYX", unit="nm", Z=250, Y=100, X=100), title="raw psf").show()
    r = bridge.run_macro(DECONV["richardson-lucy"].format(img="img", psf="raw psf"), clear_log=True)
    assert r.ok, r.error
    assert any(line.startswith("Richardson-Lucy Deconvolution: ") and "offset" in line
               for line in r.log.splitlines()), r.log
