"""Real microscope files through ImageJ macros: ``fijidecon macro examples/real_data.ijm`` as a
user runs it (fresh process, private Xvfb, real ImageJ 1.54p), on the files of
``../shared/data/real`` (read from there, never copied into the project: some are GPL).

Jobs (see the macro): dapi_001.tif with a same-size Diffraction PSF 3D (RL and Wiener); the raw
light-sheet PSF (61 planes) as PSF of a 40-plane image; the 8-bit RFI PSF with its 160^3 data
(cropped in the macro); the raw bead file through PSF from Beads."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT.parent / "shared" / "data" / "real"
MACRO = ROOT / "examples" / "real_data.ijm"
ITERATIONS = 5

FILES = ("deconwolf_demo/dapi_001.tif", "pycudadecon_lls_psf/psf.tif", "redlionfish_rfi_psf/PSF_RFI_8bit.tif",
         "redlionfish_rfi_psf/gendata_psfconv_poiss.tif", "boulanger_bead_psf/psf-gfp.tif")

pytestmark = pytest.mark.skipif(not all((REAL / f).is_file() for f in FILES),
                                reason=f"the real files of {REAL} are not there")


@pytest.fixture(scope="module")
def run(tmp_path_factory, jvm):
    """One ``fijidecon macro`` run of every job; (completed process, output folder)."""
    out = tmp_path_factory.mktemp("real data out")  # a space: paths go in [brackets]
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    proc = subprocess.run([sys.executable, "-m", "fijidecon.fiji.cli_imagej", "macro", str(MACRO),
                           f"data=[{REAL}] outdir=[{out}] iterations={ITERATIONS}"],
                          env=env, capture_output=True, text=True, timeout=600)
    return proc, out


def _read(path):
    from fijidecon.io import read_image

    return read_image(path)


def _lines(proc, prefix):
    return [line for line in proc.stdout.splitlines() if line.startswith(prefix)]


def test_macro_exits_zero_and_saves_every_result(run):
    proc, out = run
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.splitlines()[-1] == "done"
    shapes = {"dapi_rl.tif": (40, 201, 101), "dapi_wiener.tif": (40, 201, 101), "lls_blurred.tif": (40, 96, 96),
              "lls_rl.tif": (40, 96, 96), "rfi_rl.tif": (64, 64, 64), "rfi_wiener.tif": (64, 64, 64),
              "beads_psf.tif": (24, 64, 64)}
    for name, shape in shapes.items():
        a, cal = _read(out / name)
        assert a.shape == shape, name
        assert np.all(np.isfinite(a)), name
        assert cal.has_length_unit(), (name, cal)


def test_dapi_same_size_psf_equals_the_python_api(run):
    """Case 2: dapi_001 with a Diffraction PSF 3D of exactly its size runs through
    Richardson-Lucy and Wiener, with the image's calibration, and gives the API's arrays."""
    import tifffile

    from fijidecon.deconvolve import richardson_lucy, wiener
    from fijidecon.psf import diffraction_psf_3d

    proc, out = run
    img = tifffile.imread(REAL / FILES[0])
    psf = diffraction_psf_3d(index=1.512, na=1.45, wavelength=461, pixel_spacing=130, slice_spacing=300,
                             width=101, height=201, depth=40)
    assert psf.shape == img.shape
    vs = (300.0, 130.0, 130.0)
    rl, cal = _read(out / "dapi_rl.tif")
    assert cal.unit == "nm" and cal.voxel_size() == pytest.approx(vs, rel=1e-4)  # TIFF stores 1/size
    want = richardson_lucy(img, psf, ITERATIONS, voxel_size=vs, psf_voxel_size=vs, background="auto")
    assert np.max(np.abs(rl - want.image)) <= 1e-5 * np.max(want.image)
    # the example gives the offset as the background: it does not set off its own offset warning
    assert not [line for line in _lines(proc, "Richardson-Lucy Deconvolution: ") if "lowest values" in line]
    # the nuclei get sharper: the bright end rises above the data's (non-circulant edges: the box's
    # flux is not conserved, light from outside it is accounted for)
    top = np.percentile(img, 99)
    assert rl.max() > img.max() and np.percentile(rl, 99.9) > np.percentile(img, 99.9)
    wi, _ = _read(out / "dapi_wiener.tif")
    assert np.max(np.abs(wi - wiener(img, psf, voxel_size=vs, psf_voxel_size=vs).image)) <= 1e-4 * np.max(wi)
    assert np.percentile(wi, 99) > 0.5 * top


def test_wiener_choice_is_one_log_line_per_run(run):
    proc, _ = run
    lines = _lines(proc, "Wiener Deconvolution: ")
    choice = [line for line in lines if "regularization" in line]
    assert len(choice) == 2, lines  # dapi and rfi, one line each
    for line in choice:
        assert re.search(r"regularization [0-9.e+-]+", line), line


def test_raw_light_sheet_psf_deeper_than_the_image(run):
    """Case 3: the 61-plane raw PSF (background ~140, peak off-centre in y) for a 40-plane
    image; its camera offset is reported in the Log, and Richardson-Lucy puts the three
    points back where they were (the same PSF handling for blurring and deconvolving)."""
    proc, out = run
    notes = _lines(proc, "Richardson-Lucy Deconvolution: ")
    assert any("offset" in line for line in notes), notes
    rl, cal = _read(out / "lls_rl.tif")
    blurred, _ = _read(out / "lls_blurred.tif")
    assert cal.unit in ("micron", "µm") and cal.voxel_size() == pytest.approx((0.1, 0.1011, 0.1011), rel=1e-4)
    points = [(19, 40, 48), (11, 70, 30), (29, 24, 70)]  # (z, y, x) as set in the macro
    for z, y, x in points:
        box = rl[z - 2:z + 3, y - 2:y + 3, x - 2:x + 3]
        peak = np.unravel_index(np.argmax(box), box.shape)
        assert max(abs(int(p) - 2) for p in peak) <= 1, ((z, y, x), peak)
        # deconvolution concentrates the point: its voxel gains on the blurred image's
        assert rl[z, y, x] / rl.mean() > (blurred[z, y, x] - 2) / (blurred.mean() - 2)


def test_8bit_psf_with_its_data_restores_the_cube(run):
    """Case 11's files: the 8-bit measured PSF (calibrated 300 nm in the file) and the data
    made with it, cropped to 64^3 around the cube at (72, 72, 72) -> (32, 32, 32)."""
    proc, out = run
    crop, cal = _read(out / "rfi_crop.tif")
    assert crop.shape == (64, 64, 64) and cal.unit == "nm"
    rl, _ = _read(out / "rfi_rl.tif")
    for a in (rl, _read(out / "rfi_wiener.tif")[0]):
        peak = np.unravel_index(np.argmax(a), a.shape)
        assert all(31 <= p <= 34 for p in peak), peak
    # RL concentrates the cube: peak over mean rises
    assert rl.max() / rl.mean() > crop.max() / crop.mean()


def test_psf_from_the_raw_bead_file(run):
    proc, out = run
    psf, cal = _read(out / "beads_psf.tif")
    assert cal.unit == "nm" and cal.voxel_size() == pytest.approx((200.0, 65.0, 65.0), rel=1e-4)
    peak = np.unravel_index(np.argmax(psf), psf.shape)
    assert all(abs(int(p) - n // 2) <= 1 for p, n in zip(peak, psf.shape)), peak
    assert psf.min() >= 0 and abs(float(psf.sum()) - 1) < 1e-3
    # the file's 26 saturated voxels are reported in the Log, not silently used
    assert any("saturated" in line for line in _lines(proc, "PSF from Beads: "))


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "the default Wiener rule (SNR) amplifies noise on real data: dapi 0.1/99.9 percentiles -76846/110458 "
    "for data 1758..21980 (rho 3.0e-4, negative fraction 0.69); RFI crop -1717/1689 for data 0..240 "
    "(rho 1.8e-6). Imspector's rule stays in range (-2185/24904, -59/483). Remove this marker when fixed."))
@pytest.mark.parametrize("name, data", [("dapi_wiener.tif", FILES[0]), ("rfi_wiener.tif", "rfi_crop")])
def test_default_wiener_on_real_data_stays_in_the_data_range(run, name, data):
    """A linear deconvolution whose output is several times beyond the data's range (both
    signs) shows amplified noise, not sharper structure."""
    import tifffile

    _, out = run
    img = _read(out / "rfi_crop.tif")[0] if data == "rfi_crop" else tifffile.imread(REAL / data)
    wi, _ = _read(out / name)
    top = float(img.max())
    assert np.percentile(wi, 0.1) >= -0.5 * top
    assert np.percentile(wi, 99.9) <= 3 * top
