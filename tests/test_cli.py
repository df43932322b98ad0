"""The CLI: generated options, outputs with calibration and sidecars, one-line errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import load
from fijidecon.calibration import Calibration
from fijidecon.cli import main
from fijidecon.io import read_image, write_image

PSF_A_ARGS = ["--width", "32", "--height", "32", "--depth", "16", "--index", "1.33", "--na", "1.2",
              "--wavelength", "520", "--pixel-spacing", "100", "--slice-spacing", "250"]


def run_cli(*args):
    """Run the installed console script in a subprocess (what a user runs)."""
    return subprocess.run([sys.executable, "-m", "fijidecon.cli", *map(str, args)], capture_output=True, text=True)


def test_psf_diffraction_writes_calibrated_tiff_and_sidecar(tmp_path):
    out = tmp_path / "psf.tif"
    r = run_cli("psf", "diffraction", *PSF_A_ARGS, "-o", out)
    assert r.returncode == 0, r.stderr
    psf, cal = read_image(out)
    np.testing.assert_array_equal(psf, load("psfA_32x32x16.npy"))
    assert cal.unit == "nm" and cal.voxel_size() == pytest.approx((250, 100, 100))
    meta = json.loads((tmp_path / "psf.tif.json").read_text())
    assert meta["parameters"]["na"] == 1.2 and meta["parameters"]["compat"] is True
    assert meta["fijidecon_version"]


def test_deconvolve_iterative3d_end_to_end(tmp_path):
    cal = Calibration.make("ZYX", unit="nm", Z=250, Y=100, X=100)
    write_image(tmp_path / "img.tif", load("input3d_40x36x12.npy"), cal)
    write_image(tmp_path / "psf.tif", load("psfA_32x32x16.npy"))
    out = tmp_path / "res.tif"
    r = run_cli("deconvolve", "iterative3d", tmp_path / "img.tif", tmp_path / "psf.tif", "-o", out)
    assert r.returncode == 0, r.stderr
    res, rcal = read_image(out)
    ref = load("decon_R1_defaults.npy")
    assert np.max(np.abs(res - ref)) <= 1e-4 * np.max(np.abs(ref))
    assert rcal == cal  # calibration of the input kept
    meta = json.loads((tmp_path / "res.tif.json").read_text())
    assert meta["result"]["iterations"] == 74 and len(meta["result"]["log"]) == 75
    assert {i["parameter"] for i in meta["inputs"]} == {"image", "psf"}
    assert all(len(i["sha256"]) == 64 for i in meta["inputs"])
    assert meta["timings_s"]["compute"] > 0
    assert "74 iterations" in r.stderr


def test_options_reach_the_core(tmp_path):
    write_image(tmp_path / "img.tif", load("input3d_40x36x12.npy"))
    write_image(tmp_path / "psf.tif", load("psfA_32x32x16.npy"))
    r = run_cli("deconvolve", "iterative3d", tmp_path / "img.tif", tmp_path / "psf.tif", "-o", tmp_path / "r.tif",
                "--normalize", "--gamma", "0.001", "--no-anti-ringing", "--max-iterations", "25",
                "--terminate", "-1000", "-q")
    assert r.returncode == 0, r.stderr
    ref = load("decon_R2_wiener0.001_norm_noAR_fixed25.npy")
    res, _ = read_image(tmp_path / "r.tif")
    assert np.max(np.abs(res - ref)) <= 1e-4 * np.max(np.abs(ref))
    r = run_cli("deconvolve", "iterative3d", tmp_path / "img.tif", tmp_path / "psf.tif", "-o", tmp_path / "i.tif",
                "--mode", "improved", "--max-iterations", "5", "-q")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "i.tif.json").read_text())["parameters"]["compat"] is False


def test_never_overwrites_and_errors_are_one_line(tmp_path):
    out = tmp_path / "psf.tif"
    out.write_bytes(b"precious")
    r = run_cli("psf", "diffraction", *PSF_A_ARGS, "-o", out)
    assert r.returncode != 0
    assert out.read_bytes() == b"precious"
    assert r.stderr.strip().count("\n") == 0 and "exists" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("psf", "diffraction", *PSF_A_ARGS, "-o", out, "--overwrite", "-q")
    assert r.returncode == 0 and out.read_bytes() != b"precious"


@pytest.mark.parametrize("args,needle", [
    (["psf", "diffraction", "--na", "1.5", "--index", "1.33", "--width", "8", "--height", "8", "--depth", "2"],
     "na must be smaller than index"),
    (["psf", "diffraction", "--pixel-spacing", "0", "--width", "8", "--height", "8", "--depth", "2"],
     "pixel_spacing"),
    (["psf", "diffraction", "--width", "0"], "width"),
    (["psf", "diffraction", "--normalization", "max"], "normalization"),
])
def test_bad_psf_options(tmp_path, args, needle):
    r = run_cli(*args, "-o", tmp_path / "p.tif")
    assert r.returncode == 2
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "p.tif").exists()


def test_bad_deconvolution_inputs(tmp_path):
    write_image(tmp_path / "img.tif", load("input3d_40x36x12.npy"))
    write_image(tmp_path / "zero.tif", np.zeros((8, 8, 8), np.float32))
    write_image(tmp_path / "nan.tif", np.full((4, 8, 8), np.nan, np.float32))
    (tmp_path / "junk.tif").write_text("junk")
    cases = [("zero.tif", "psf is all zero"), ("nan.tif", "psf contains NaN"),
             ("junk.tif", "not a readable TIFF"), ("missing.tif", "does not exist")]
    for psf, needle in cases:
        r = run_cli("deconvolve", "iterative3d", tmp_path / "img.tif", tmp_path / psf, "-o", tmp_path / "o.tif")
        assert r.returncode == 2, (psf, r.stderr)
        assert needle in r.stderr, (psf, r.stderr)
        assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
        assert not (tmp_path / "o.tif").exists()


def test_main_returns_status_in_process(tmp_path, capsys):
    assert main(["psf", "diffraction", "--width", "-1", "-o", str(tmp_path / "p.tif")]) == 2
    assert "width" in capsys.readouterr().err


def test_demo_writes_the_main_job(tmp_path):
    r = subprocess.run([sys.executable, "-m", "fijidecon.cli", "demo", "-o", str(tmp_path / "d")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for name in ("psf.tif", "deconvolved.tif", "demo.png", "deconvolved.tif.json"):
        assert (tmp_path / "d" / name).stat().st_size > 0
    png = (tmp_path / "d" / "demo.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    res, cal = read_image(tmp_path / "d" / "deconvolved.tif")
    assert cal.unit == "nm" and res.shape == (12, 36, 40)
    # the sidecars carry the version and every parameter, as the README says, in strict JSON
    import inspect

    from fijidecon import __version__
    from fijidecon.deconvolve import iterative_deconvolve_3d
    from fijidecon.psf import diffraction_psf_3d

    def strict(path):
        return json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{path.name}: {c}"))

    for name, func, want in (("psf.tif", diffraction_psf_3d, {"width": 32, "depth": 16, "na": 1.2}),
                             ("deconvolved.tif", iterative_deconvolve_3d, {"max_iterations": 100})):
        rec = strict(tmp_path / "d" / f"{name}.json")
        assert rec["fijidecon_version"] == __version__ and rec["command"]
        sig = {n for n, q in inspect.signature(func).parameters.items()
               if q.default is not inspect.Parameter.empty and n != "callback"}
        assert sig <= set(rec["parameters"]) and want.items() <= rec["parameters"].items()
        assert rec["output"]["calibration"]["unit"] == "nm"
    rec = strict(tmp_path / "d" / "deconvolved.tif.json")
    assert [i["parameter"] for i in rec["inputs"]] == ["image", "psf"] and len(rec["inputs"][0]["sha256"]) == 64
    assert rec["result"]["iterations"] > 0 and rec["result"]["stop_reason"]
    r2 = subprocess.run([sys.executable, "-m", "fijidecon.cli", "demo", "-o", str(tmp_path / "d")],
                        capture_output=True, text=True)
    assert r2.returncode == 2 and "exists" in r2.stderr


def test_psf_beads_takes_the_image_calibration_and_writes_the_resampled_one(tmp_path):
    from fijidecon.psf import gaussian

    bead = gaussian((16, 48, 48), (600.0, 250.0, 250.0), (200.0, 65.0, 65.0), normalize="peak")
    img = (100 + 1000 * np.roll(bead, (0, 3, -5), axis=(0, 1, 2))).astype(np.uint16)
    write_image(tmp_path / "beads.tif", img, Calibration.make("ZYX", unit="nm", Z=200, Y=65, X=65))
    out = tmp_path / "psf.tif"
    r = run_cli("psf", "beads", tmp_path / "beads.tif", "--target-pixel-size", "130", "--target-slice-spacing",
                "200", "--width", "16", "--height", "16", "--depth", "12", "-o", out, "-q")
    assert r.returncode == 0, r.stderr
    psf, cal = read_image(out)
    assert cal.unit == "nm" and cal.voxel_size() == pytest.approx((200, 130, 130))
    assert psf.shape == (12, 16, 16)
    assert np.unravel_index(np.argmax(psf), psf.shape) == (6, 8, 8)
    # the bead size removed: a narrower PSF, same flux; a negative diameter is one clear error
    out2 = tmp_path / "psf-small.tif"
    r = run_cli("psf", "beads", tmp_path / "beads.tif", "--target-pixel-size", "130", "--target-slice-spacing",
                "200", "--width", "16", "--height", "16", "--depth", "12", "--bead-diameter", "200", "-o", out2, "-q")
    assert r.returncode == 0, r.stderr
    small, _ = read_image(out2)
    assert small.sum() == pytest.approx(psf.sum(), rel=1e-4) and small.max() > 1.05 * psf.max()
    r = run_cli("psf", "beads", tmp_path / "beads.tif", "--bead-diameter", "-1", "-o", tmp_path / "x.tif")
    assert r.returncode != 0 and "bead_diameter" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("command,extra", [
    ("richardson-lucy", ["--iterations", "7", "--edges", "periodic"]),
    ("wiener", []),
    ("convolve", []),
])
def test_modern_deconvolution_commands(tmp_path, command, extra):
    cal = Calibration.make("ZYX", unit="micron", Z=0.25, Y=0.1, X=0.1)
    write_image(tmp_path / "img.tif", load("input3d_40x36x12.npy"), cal)
    write_image(tmp_path / "psf.tif", load("psfA_32x32x16.npy")[4:12, 8:24, 8:24])
    out = tmp_path / "r.tif"
    r = run_cli("deconvolve", command, tmp_path / "img.tif", tmp_path / "psf.tif", "-o", out, *extra)
    assert r.returncode == 0, r.stderr
    res, rcal = read_image(out)
    assert res.shape == (12, 36, 40) and res.dtype == np.float32 and rcal == cal
    meta = json.loads((tmp_path / "r.tif.json").read_text())
    assert meta["command"] and len(meta["inputs"]) == 2
    if command == "richardson-lucy":
        assert meta["result"]["iterations"] == 7
        assert "7 iterations" in r.stderr
