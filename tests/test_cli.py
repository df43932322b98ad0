"""The CLI: generated options, outputs with calibration and sidecars, one-line errors."""

import json
import os
import re
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
    assert r.returncode == 3  # the output exists: nothing done (a batch re-run tells it from a failure, 2)
    assert out.read_bytes() == b"precious"
    assert r.stderr.strip().count("\n") == 0 and "exists" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("psf", "diffraction", *PSF_A_ARGS, "-o", out, "--overwrite", "-q")
    assert r.returncode == 0 and out.read_bytes() != b"precious"


@pytest.mark.parametrize("args,needle", [
    (["psf", "diffraction", "--na", "1.5", "--index", "1.33", "--width", "8", "--height", "8", "--depth", "2"],
     "--na: expected a numerical aperture smaller than the refractive index, got --na 1.5 with --index 1.33"),
    (["psf", "diffraction", "--pixel-spacing", "0", "--width", "8", "--height", "8", "--depth", "2"],
     "pixel_spacing"),
    (["psf", "diffraction", "--width", "0"], "width"),
    (["psf", "diffraction", "--normalization", "max"], "normalization"),
])
def test_bad_psf_options(tmp_path, args, needle):
    r = run_cli(*args, "-o", tmp_path / "p.tif")
    assert r.returncode == 2
    # the core's message names the option the user typed (pixel_spacing -> --pixel-spacing)
    assert (needle in r.stderr or "--" + needle.replace("_", "-") in r.stderr) and "Traceback" not in r.stderr
    assert not (tmp_path / "p.tif").exists()


def test_bad_deconvolution_inputs(tmp_path):
    write_image(tmp_path / "img.tif", load("input3d_40x36x12.npy"))
    write_image(tmp_path / "zero.tif", np.zeros((8, 8, 8), np.float32))
    write_image(tmp_path / "nan.tif", np.full((4, 8, 8), np.nan, np.float32))
    (tmp_path / "junk.tif").write_text("junk")
    cases = [("zero.tif", "psf: all zero"), ("nan.tif", "psf: contains 256 NaN or infinite value(s)"),
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
    assert r.returncode != 0 and "--bead-diameter:" in r.stderr and "Traceback" not in r.stderr


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


# ---------------------------------------------------------------------------------------------
# info, --like, outputs refused before computing, notes and warnings
# ---------------------------------------------------------------------------------------------
def test_info_prints_shape_axes_dtype_calibration_and_values(tmp_path, capsys):
    a = np.arange(2 * 3 * 4 * 5, dtype=np.uint16).reshape(2, 3, 4, 5)
    write_image(tmp_path / "h.ome.tif", a, Calibration.make("CZYX", unit="micron", Z=0.2, Y=0.065, X=0.065))
    np.save(tmp_path / "a.npy", np.full((3, 4), 2.5, np.float32))
    assert main(["info", str(tmp_path / "h.ome.tif"), str(tmp_path / "a.npy")]) == 0
    out = capsys.readouterr().out
    assert "(2, 3, 4, 5)" in out and "axes CZYX" in out and "uint16" in out
    assert "0.2 × 0.065 × 0.065 micron" in out
    assert f"min 0, max {a.max()}, mean {a.mean():.6g}" in out
    assert "axes YX" in out and "not calibrated" in out and "min 2.5, max 2.5" in out
    (tmp_path / "bad.tif").write_bytes(b"II*\x00garbage")
    assert main(["info", str(tmp_path / "bad.tif"), str(tmp_path / "a.npy")]) == 2
    cap = capsys.readouterr()
    assert cap.err.count("\n") == 1 and "bad.tif" in cap.err and "Traceback" not in cap.err
    assert "axes YX" in cap.out  # the good file is still described
    assert main(["info", str(tmp_path / "a.npy"), "--axes", "ZYX"]) == 2
    assert "axes" in capsys.readouterr().err


def test_psf_like_takes_size_and_voxel_size_converted_to_the_commands_unit(tmp_path, capsys):
    img = np.zeros((9, 20, 30), np.uint16)
    write_image(tmp_path / "img.tif", img, Calibration.make("ZYX", unit="micron", Z=0.3, Y=0.13, X=0.13))
    # diffraction: any length unit -> the --unit (nm by default); explicit options win
    out = tmp_path / "p.tif"
    assert main(["psf", "diffraction", "--like", str(tmp_path / "img.tif"), "--depth", "5", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "from img.tif: width 30, height 20, pixel_spacing 130 nm, slice_spacing 300 nm" in err
    assert "given on the command line: --depth" in err
    psf, cal = read_image(out)
    assert psf.shape == (5, 20, 30) and cal.unit == "nm" and cal.voxel_size() == pytest.approx((300, 130, 130))
    rec = json.loads((tmp_path / "p.tif.json").read_text())
    assert rec["parameters"]["pixel_spacing"] == pytest.approx(130) and rec["like"]["kept"] == ["depth"]
    # the --like image is an input of the PSF: listed with its SHA-256 (the inputs were empty)
    import hashlib

    (like,) = rec["inputs"]
    assert like["parameter"] == "like" and like["path"] == str(tmp_path / "img.tif")
    assert like["sha256"] == hashlib.sha256((tmp_path / "img.tif").read_bytes()).hexdigest()
    # --unit micron: the spacings stay in micron
    out = tmp_path / "pu.tif"
    assert main(["psf", "gaussian", "--like", str(tmp_path / "img.tif"), "--unit", "micron", "--fwhm-xy", "0.25",
                 "--fwhm-z", "0.7", "-o", str(out), "-q"]) == 0
    psf, cal = read_image(out)
    assert psf.shape == (9, 20, 30) and cal.unit == "micron" and cal.voxel_size() == pytest.approx((0.3, 0.13, 0.13))
    # widefield: always nm
    out = tmp_path / "pw.tif"
    assert main(["psf", "widefield", "--like", str(tmp_path / "img.tif"), "--na", "1.2", "--pixel-size-nm", "100",
                 "-o", str(out)]) == 0
    assert "pixel_size_nm" not in capsys.readouterr().err.split("(given")[0]
    psf, cal = read_image(out)
    assert psf.shape == (9, 20, 30) and cal.voxel_size() == pytest.approx((300, 100, 100))


def test_psf_like_non_square_pixels_takes_x_and_says_so(tmp_path, capsys):
    """Y 0.16 by X 0.13 micron: the one lateral spacing silently became Y's 160 nm."""
    write_image(tmp_path / "img.tif", np.zeros((9, 20, 30), np.uint16),
                Calibration.make("ZYX", unit="micron", Z=0.3, Y=0.16, X=0.13))
    assert main(["psf", "gaussian", "--like", str(tmp_path / "img.tif"), "-o", str(tmp_path / "p.tif")]) == 0
    err = capsys.readouterr().err
    assert "pixel_spacing 130 nm" in err
    assert ("Warning: --like: img.tif has pixels of 0.16 (Y) by 0.13 (X) micron; --pixel-spacing is one lateral "
            "spacing, so the PSF is made at X's") in err


def test_psf_like_a_three_plane_stack_stored_as_rgb_takes_its_planes(tmp_path, capsys):
    """tifffile stores a (3, Y, X) stack as RGB: --like made a 2D PSF (depth 1), silently."""
    import tifffile

    tifffile.imwrite(tmp_path / "i3.tif", np.ones((3, 20, 30), np.float32))
    assert main(["psf", "gaussian", "--like", str(tmp_path / "i3.tif"), "-o", str(tmp_path / "p.tif")]) == 0
    assert "its 3 colour planes are taken as Z planes" in capsys.readouterr().err
    assert read_image(tmp_path / "p.tif")[0].shape == (3, 20, 30)


def test_psf_like_an_uncalibrated_image_takes_only_its_size(tmp_path, capsys):
    np.save(tmp_path / "img.npy", np.zeros((2, 7, 20, 30), np.float32))
    out = tmp_path / "p.tif"
    assert main(["psf", "gaussian", "--like", str(tmp_path / "img.npy"), "--axes", "CZYX", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "width 30, height 20, depth 7; voxel size not taken: img.npy is not calibrated" in err
    psf, cal = read_image(out)
    assert psf.shape == (7, 20, 30) and cal.voxel_size() == pytest.approx((200, 65, 65))  # the defaults
    # the spacings it was made at are said as a warning naming the options to give
    assert ("Warning: --pixel-spacing: img.npy is not calibrated, so the PSF is made at --pixel-spacing 65 nm and "
            "--slice-spacing 200 nm (the defaults); give --pixel-spacing and --slice-spacing") in err
    assert main(["psf", "gaussian", "--like", str(tmp_path / "img.npy"), "--axes", "CZYX", "--pixel-spacing", "100",
                 "--slice-spacing", "250", "--width", "9", "--height", "9", "--depth", "5",
                 "-o", str(tmp_path / "q.tif")]) == 0
    err = capsys.readouterr().err
    assert "Warning" not in err and "from img.npy: nothing taken (given on the command line" in err


def test_outputs_that_cannot_be_written_are_refused_before_computing(tmp_path, capsys):
    write_image(tmp_path / "img.tif", load("input3d_40x36x12.npy"))
    write_image(tmp_path / "psf.tif", load("psfA_32x32x16.npy"))
    base = ["deconvolve", "richardson-lucy", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif")]
    cases = [
        (["-o", str(tmp_path / "no" / "r.tif")], "does not exist", 2),
        (["-o", str(tmp_path / "r.png")], "not a .tif", 2),
        (["-o", str(tmp_path / "img.tif"), "--overwrite"], "is an input", 2),
        (["-o", str(tmp_path / "psf.tif"), "--overwrite"], "is an input", 2),
    ]
    (tmp_path / "old.tif.json").write_text("{}")
    cases.append((["-o", str(tmp_path / "old.tif")], "old.tif.json", 3))  # exists: nothing done, status 3
    before = sorted(p.name for p in tmp_path.iterdir())
    for extra, needle, status in cases:
        assert main(base + extra + ["--iterations", "1000000"]) == status, extra  # would run for hours if not refused
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert read_image(tmp_path / "img.tif")[0].shape == (12, 36, 40)


def test_psf_channel_count_and_psf_hyperstack_errors(tmp_path, capsys):
    img = np.ones((2, 4, 16, 16), np.float32)
    write_image(tmp_path / "img.tif", img, Calibration.make("CZYX"))
    write_image(tmp_path / "p.tif", np.ones((3, 5, 5), np.float32))
    write_image(tmp_path / "p2c.tif", np.ones((3, 2, 5, 5), np.float32), Calibration.make("ZCYX"))
    write_image(tmp_path / "p3c.tif", np.ones((3, 3, 5, 5), np.float32), Calibration.make("ZCYX"))
    base = ["deconvolve", "convolve", str(tmp_path / "img.tif")]
    for psfs, needle in (([tmp_path / "p.tif"] * 3, "3 PSFs given for an image with 2 channel(s)"),
                         ([tmp_path / "p3c.tif"], "3 PSFs given for an image with 2 channel(s)"),
                         ([tmp_path / "p2c.tif", tmp_path / "p.tif"], "not both")):
        assert main(base + [str(p) for p in psfs] + ["-o", str(tmp_path / "o.tif")]) == 2
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1
        assert "swapped" not in err  # these PSFs are smaller than the image
    # a 2-channel image given as the PSF of a PSF file (arguments swapped): the count refusal says so
    assert main(["deconvolve", "convolve", str(tmp_path / "p.tif"), str(tmp_path / "img.tif"), "-o",
                 str(tmp_path / "s.tif")]) == 2
    assert "2 PSFs given for an image with 1 channel(s) (axes ZYX, shape (3, 5, 5)); were the image and the PSF " \
        "swapped? (the image comes first)" in capsys.readouterr().err
    assert main(base + [str(tmp_path / "p2c.tif"), "-o", str(tmp_path / "o.tif"), "-q"]) == 0
    assert read_image(tmp_path / "o.tif")[1].axes == "ZCYX"


def test_warnings_are_one_clean_line_and_go_into_the_sidecar(tmp_path, capsys):
    """A Python warning raised during a run: 'Warning: <message>', never 'file:line: RuntimeWarning'."""
    import warnings

    from fijidecon import cli as cli_mod

    real = cli_mod.run_command

    def noisy(*a, **k):
        warnings.warn("psf: mostly background\n(second line)", RuntimeWarning)
        warnings.warn("psf: mostly background\n(second line)", RuntimeWarning)  # said once
        import logging
        logging.getLogger("fijidecon.test").info("psf: a note")
        return real(*a, **k)

    write_image(tmp_path / "img.tif", load("input3d_40x36x12.npy"))
    write_image(tmp_path / "psf.tif", load("psfA_32x32x16.npy"))
    cli_mod.run_command = noisy
    try:
        assert main(["deconvolve", "convolve", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"), "-o",
                     str(tmp_path / "o.tif")]) == 0
    finally:
        cli_mod.run_command = real
    err = capsys.readouterr().err
    assert err.count("Warning: psf: mostly background (second line)\n") == 1
    assert "Note: psf: a note" in err
    assert "RuntimeWarning" not in err and ".py:" not in err
    rec = json.loads((tmp_path / "o.tif.json").read_text())
    assert rec["warnings"] == ["psf: mostly background (second line)"] and "psf: a note" in rec["notes"]
    # -q: notes and summary hidden, warnings still shown
    cli_mod.run_command = noisy
    try:
        assert main(["deconvolve", "convolve", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"), "-o",
                     str(tmp_path / "o.tif"), "--overwrite", "-q"]) == 0
    finally:
        cli_mod.run_command = real
    err = capsys.readouterr().err
    assert err == "Warning: psf: mostly background (second line)\n"


def test_notes_of_the_core_are_printed_and_stored(tmp_path, capsys):
    """A raw bead PSF with a camera offset (real-data case 16's kind): the core's notes reach the terminal."""
    from fijidecon.psf import gaussian

    raw = gaussian((15, 31, 31), fwhm=(700.0, 250.0, 250.0), voxel_size=(200.0, 65.0, 65.0), normalize="peak")
    raw = np.random.default_rng(0).poisson(raw * 300 + 140).astype(np.uint16)
    write_image(tmp_path / "psf.tif", raw)
    write_image(tmp_path / "img.tif", load("input3d_40x36x12.npy"))
    assert main(["deconvolve", "richardson-lucy", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"),
                 "--iterations", "2", "-o", str(tmp_path / "o.tif")]) == 0
    err = capsys.readouterr().err
    notes = [ln[len("Note: "):] for ln in err.splitlines() if ln.startswith("Note: ")]
    assert any("offset" in n for n in notes), err
    rec = json.loads((tmp_path / "o.tif.json").read_text())
    assert rec["notes"] == notes


@pytest.mark.parametrize("sig,code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_interrupted_run_exits_130_or_143_and_leaves_nothing(tmp_path, sig, code):
    """Reliability case 16: Ctrl-C exits 130 (not 1 "Aborted."), SIGTERM 143, no output or temporary left."""
    import signal
    import time

    np.save(tmp_path / "img.npy", np.random.default_rng(0).random((32, 128, 128)).astype(np.float32))
    np.save(tmp_path / "psf.npy", load("psfA_32x32x16.npy")[4:12, 8:24, 8:24])
    p = subprocess.Popen([sys.executable, "-m", "fijidecon.cli", "deconvolve", "iterative3d", str(tmp_path / "img.npy"),
                          str(tmp_path / "psf.npy"), "-o", str(tmp_path / "out.tif"), "--max-iterations", "100000",
                          "--terminate", "-1000", "--no-detect-divergence", "--mode", "improved", "-q"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    assert p.poll() is None, p.communicate()
    p.send_signal(getattr(signal, sig))
    _, err = p.communicate(timeout=60)
    assert p.returncode == code, err
    assert "Traceback" not in err and err.strip() in ("Interrupted.", "Terminated.")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["img.npy", "psf.npy"]


def test_widefield_lengths_are_nm_only(tmp_path, capsys):
    """The widefield model's lengths are nm: no --unit that would mislabel them in the calibration."""
    assert main(["psf", "widefield", "--unit", "micron", "--width", "8", "--height", "8", "--depth", "4",
                 "-o", str(tmp_path / "w.tif")]) == 2
    assert "--unit" in capsys.readouterr().err and not (tmp_path / "w.tif").exists()
    assert main(["psf", "widefield", "--width", "8", "--height", "8", "--depth", "4", "--oversample", "1",
                 "-o", str(tmp_path / "w.tif"), "-q"]) == 0
    assert read_image(tmp_path / "w.tif")[1].unit == "nm"


def test_snapshot_every_writes_each_snapshot_beside_the_output(tmp_path, capsys):
    """``--snapshot-every N``: ``NAME_iterK.EXT`` for every multiple of N, the API's snapshots with
    the output's axes; an existing snapshot file is refused before computing (no --overwrite)."""
    from fijidecon.deconvolve import richardson_lucy

    img, psf = load("input3d_40x36x12.npy"), load("psfA_32x32x16.npy")
    cal = Calibration.make("ZYX", unit="micron", Z=0.3, Y=0.1, X=0.1)
    write_image(tmp_path / "img.tif", img, cal)
    write_image(tmp_path / "psf.tif", psf, cal)
    base = ["deconvolve", "richardson-lucy", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"), "--iterations",
            "12", "--snapshot-every", "5", "--acceleration", "biggs-andrews-2", "-q"]
    assert main(base + ["-o", str(tmp_path / "r.ome.tif")]) == 0
    names = sorted(p.name for p in tmp_path.iterdir() if "_iter" in p.name)
    assert names == ["r_iter05.ome.tif", "r_iter10.ome.tif"]
    want = richardson_lucy(img, psf, 12, snapshot_every=5, acceleration="biggs-andrews-2", voxel_size=(0.3, 0.1, 0.1))
    got, gcal = read_image(tmp_path / "r_iter10.ome.tif")
    assert gcal.axes == "ZYX" and gcal.voxel_size() == pytest.approx((0.3, 0.1, 0.1))
    np.testing.assert_allclose(got, want.snapshots[10], rtol=1e-5, atol=1e-5 * float(want.snapshots[10].max()))
    (tmp_path / "s_iter10.tif").write_bytes(b"mine")
    assert main(base + ["-o", str(tmp_path / "s.tif")]) == 3  # a snapshot exists: refused before reading the inputs
    assert "s_iter10.tif" in capsys.readouterr().err and (tmp_path / "s_iter10.tif").read_bytes() == b"mine"
    assert not (tmp_path / "s.tif").exists()


def test_snapshots_of_an_earlier_run_are_named_and_this_runs_listed_in_the_sidecar(tmp_path, capsys):
    """`--overwrite` with fewer iterations left r_iter15/r_iter20 of the earlier run beside the new
    output without a word, and no file told which run made which snapshot."""
    img, psf = load("input3d_40x36x12.npy"), load("psfA_32x32x16.npy")
    write_image(tmp_path / "img.tif", img)
    write_image(tmp_path / "psf.tif", psf)
    base = ["deconvolve", "richardson-lucy", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"),
            "--snapshot-every", "5", "-o", str(tmp_path / "r.tif"), "-q"]
    assert main(base + ["--iterations", "20"]) == 0
    capsys.readouterr()
    assert main(base + ["--iterations", "10", "--overwrite"]) == 0
    err = capsys.readouterr().err
    assert ("Warning: 2 snapshot file(s) of an earlier run stay beside the output and are not this run's: "
            "r_iter15.tif ... r_iter20.tif; remove them, or choose another output name") in err, err
    assert (tmp_path / "r_iter15.tif").exists()  # kept: never deleted unasked
    side = json.loads((tmp_path / "r.tif.json").read_text())
    assert side["output"]["snapshots"] == ["r_iter05.tif", "r_iter10.tif"]
    assert "r_iter15.tif" in side["warnings"][0]


def test_snapshots_are_written_while_ctrl_c_still_stops_the_run(tmp_path, monkeypatch):
    """Under main() signals are ignored once the output is in place; the snapshots (full-size
    TIFFs) were written after that, so Ctrl-C could not stop them.  They are written first now,
    and a run that fails after them (here its output write) leaves none of them."""
    import signal

    from fijidecon import cli

    img, psf = load("input3d_40x36x12.npy"), load("psfA_32x32x16.npy")
    write_image(tmp_path / "img.tif", img)
    write_image(tmp_path / "psf.tif", psf)
    seen, real = [], cli._write_snapshots

    def spy(*a, **k):
        seen.append((signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)))
        return real(*a, **k)

    monkeypatch.setattr(cli, "_write_snapshots", spy)
    assert main(["deconvolve", "richardson-lucy", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"),
                 "--iterations", "4", "--snapshot-every", "2", "-q", "-o", str(tmp_path / "r.tif")]) == 0
    assert len(seen) == 1 and signal.SIG_IGN not in seen[0], seen
    assert (tmp_path / "r_iter2.tif").exists()

    def refused(*a, **k):
        raise KeyboardInterrupt  # Ctrl-C while the output is written

    import fijidecon.io

    monkeypatch.setattr(fijidecon.io, "write_image_and_sidecar", refused)
    assert main(["deconvolve", "richardson-lucy", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"),
                 "--iterations", "4", "--snapshot-every", "2", "-q", "-o", str(tmp_path / "s.tif")]) == 130
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("s")]


@pytest.mark.parametrize("out", ["same.tif", "same.ome.zarr"])
def test_the_image_given_as_its_own_psf_is_refused(tmp_path, out):
    """`deconvolve … img.tif img.tif` ran without a word (in memory and lazy), then with a warning
    and exit 0: a run that means nothing is refused before computing, exit 2, nothing written."""
    import subprocess
    import sys

    from fijidecon.calibration import Calibration
    from fijidecon.io import write_image

    write_image(tmp_path / "im.tif", np.random.default_rng(0).random((8, 32, 32)).astype(np.float32) + 1,
                Calibration.make("ZYX", unit="micron", Z=0.3, Y=0.1, X=0.1))
    r = subprocess.run([sys.executable, "-m", "fijidecon.cli", "deconvolve", "wiener", "im.tif", "./im.tif", "-o", out],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.splitlines() == [
        "Error: psf: ./im.tif is the image file itself; give the PSF's file"], r.stderr
    (tmp_path / "copy.tif").write_bytes((tmp_path / "im.tif").read_bytes())  # a copy: the same bytes
    r = subprocess.run([sys.executable, "-m", "fijidecon.cli", "deconvolve", "wiener", "im.tif", "copy.tif", "-o",
                        "2" + out], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.splitlines() == [
        f"Error: psf: {tmp_path / 'copy.tif'} holds the same bytes as the image ({tmp_path / 'im.tif'}); give the "
        "PSF's file"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.tif", "im.tif"]


def test_sidecar_cli_line_is_shell_quoted_and_replays(tmp_path):
    """The sidecar's ``cli`` pasted into a shell runs the same command (a fresh user's
    ``--voxel-size 0.3,0.13,0.13 um`` came back unquoted and failed)."""
    import shlex

    from fijidecon.psf import gaussian

    img, psf = tmp_path / "my image.tif", tmp_path / "psf.tif"
    write_image(img, np.random.default_rng(0).poisson(20, (8, 32, 32)).astype(np.uint16))
    write_image(psf, gaussian((5, 7, 7), (1.0, 1.0, 1.0)))
    args = ["deconvolve", "richardson-lucy", str(img), str(psf), "-o", str(tmp_path / "out.tif"), "--iterations",
            "2", "--voxel-size", "0.3,0.13,0.13 um", "--psf-voxel-size", "0.3,0.13,0.13 um", "-q"]
    assert main(args) == 0
    rec = json.loads((tmp_path / "out.tif.json").read_text())
    line = rec["cli"]
    assert shlex.split(line) == ["fijidecon", *args] and rec["cwd"] == os.getcwd()
    replay = shlex.split(line)[1:]
    replay[replay.index(str(tmp_path / "out.tif"))] = str(tmp_path / "again.tif")
    assert main(replay) == 0
    np.testing.assert_array_equal(read_image(tmp_path / "again.tif")[0], read_image(tmp_path / "out.tif")[0])


def test_a_run_leaves_the_callers_signal_handlers_alone(tmp_path):
    """Once its output is in place a run ignores Ctrl-C/SIGTERM (exit 0, not 130): only inside
    main(), which puts the handlers back.  Through the click group (CliRunner) the ignore stayed in
    the test process, and every process it started later ignored SIGINT and SIGTERM (9 CI failures)."""
    import signal

    from click.testing import CliRunner

    from fijidecon.cli import cli

    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    r = CliRunner().invoke(cli, ["psf", "gaussian", "-o", str(tmp_path / "a.tif"), "-q"])
    assert r.exit_code == 0, r.output
    assert main(["psf", "gaussian", "-o", str(tmp_path / "b.tif"), "-q"]) == 0
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_python_dash_m_runs_the_same_command(tmp_path):
    """`python -m fijidecon` said "No module named fijidecon.__main__" (a fresh user's notebook)."""
    r = subprocess.run([sys.executable, "-m", "fijidecon", "deconvolve", "richardson-lucy", str(tmp_path / "no.tif"),
                        str(tmp_path / "no.tif"), "-o", str(tmp_path / "o.tif")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("Error: Invalid value for 'IMAGE': Path "), r.stderr
    assert "Traceback" not in r.stderr


def test_strict_makes_a_warning_stop_the_run_before_anything_is_written(tmp_path, capsys):
    """A batch user: voxel sizes in the wrong order or unit, a PSF on an offset, data on a camera
    offset with background 0 ... each warns and exits 0 with a result.  --strict turns the package's
    warnings into a one-line error, exit 2, nothing written; without it the run goes on as before."""
    from fijidecon.psf import gaussian

    rng = np.random.default_rng(0)
    write_image(tmp_path / "img.tif", rng.poisson(2000, (12, 32, 32)).astype(np.float32))
    write_image(tmp_path / "psf.tif", gaussian((5, 9, 9), (2.0, 2.0, 2.0)))
    args = ["deconvolve", "richardson-lucy", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"), "--iterations",
            "2", "-o"]
    assert main([*args, str(tmp_path / "s.tif"), "--strict"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: --background: 0, but the image's lowest values are about"), err
    assert err[0].endswith("(--strict: a warning stops the run)") and "Traceback" not in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.tif", "psf.tif"]
    assert main([*args, str(tmp_path / "w.tif")]) == 0
    assert "Warning: --background: 0, but" in capsys.readouterr().err and (tmp_path / "w.tif").exists()
    assert main([*args, str(tmp_path / "b.tif"), "--strict", "--background", "1990"]) == 0  # nothing to warn about


@pytest.mark.parametrize("name", ["p.tif", "p.ome.tif", "p.ome.zarr"])
def test_the_sidecar_describes_the_file_as_it_reads_back(tmp_path, capsys, name):
    """A one-plane PSF (--depth 1): 'wrote … (1, 31, 31) ZYX' and the sidecar said so, but the TIFF
    reads back (31, 31) YX (a TIFF keeps no axis of length 1); an OME-Zarr keeps it."""
    out = tmp_path / name
    assert main(["psf", "diffraction", "--width", "31", "--height", "31", "--depth", "1", "-o", str(out)]) == 0
    arr, cal = read_image(out)
    rec = json.loads((tmp_path / f"{name}.json").read_text())["output"]
    assert (tuple(rec["shape"]), rec["axes"]) == (arr.shape, cal.axes), (rec, arr.shape, cal.axes)
    assert f"{name} {arr.shape} {cal.axes} float32" in capsys.readouterr().err


def test_warnings_name_the_options_of_the_command_not_the_api_parameters(tmp_path, capsys):
    """A CLI user read 'give background= about that level ... (CLI --background)' and 'memory_limit 65MiB
    runs it whole': the core's warnings are said in the command's terms (--background, --memory-limit 65MiB,
    --stop auto, --gain), in the console and the sidecar alike."""
    from fijidecon.psf import gaussian

    rng = np.random.default_rng(1)
    write_image(tmp_path / "img.tif", rng.poisson(2000, (12, 32, 32)).astype(np.float32))
    write_image(tmp_path / "psf.tif", gaussian((11, 31, 31), (2.0, 6.0, 6.0)))
    out = tmp_path / "o.tif"
    assert main(["deconvolve", "richardson-lucy", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"),
                 "--iterations", "2", "-o", str(out)]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Warning: ")]
    bg = next(line for line in err if "lowest values are about" in line)
    assert bg.startswith("Warning: --background: 0, but") and "give --background about that level" in bg, bg
    assert "background=" not in bg and "(CLI " not in bg, bg
    side = json.loads((tmp_path / "o.tif.json").read_text())
    assert any("give --background about that level" in w for w in side["warnings"]), side["warnings"]
    from fijidecon import cli

    rl = ["deconvolve", "richardson-lucy", "a.tif", "p.tif"]
    costly = cli._option_named("memory_limit: richardson-lucy in 16 bricks computes 5x the volume's voxels (...); "
                               "memory_limit 44MiB runs it whole, or crop the PSF", rl)
    assert re.fullmatch(r"--memory-limit: .* --memory-limit 44MiB runs it whole, or crop the PSF", costly), costly
    spelled = cli._option_named("stop='auto': the image does not look like photo-electrons; pass gain= and offset= "
                                "(CLI --gain, --offset; camera values) to use those instead",
                                rl)
    assert spelled == ("--stop auto: the image does not look like photo-electrons; pass --gain and --offset "
                       "(camera values) to use those instead"), spelled


def test_a_budget_under_a_mebibyte_is_said_as_given(tmp_path, capsys):
    """A fresh batch user: --memory-limit 10kb was refused as '0 MiB is too small' (rounded)."""
    from fijidecon.psf import gaussian

    write_image(tmp_path / "img.tif", np.ones((12, 32, 32), np.float32))
    write_image(tmp_path / "psf.tif", gaussian((5, 9, 9), (2.0, 2.0, 2.0)))
    assert main(["deconvolve", "richardson-lucy", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"),
                 "--memory-limit", "10kb", "-o", str(tmp_path / "o.tif")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: --memory-limit: 9.76 KiB is too small"), err
    # and '10MB' (10^6 bytes each) read as '10 MiB' (2^20), 5 % more than given: said as given, rounded down
    write_image(tmp_path / "big.tif", np.ones((40, 128, 128), np.float32))
    assert main(["deconvolve", "richardson-lucy", str(tmp_path / "big.tif"), str(tmp_path / "psf.tif"),
                 "--memory-limit", "10MB", "-o", str(tmp_path / "o2.tif")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: --memory-limit: 9.53 MiB is too small"), err


def test_a_2d_psf_has_no_z_spacing_in_its_sidecar(tmp_path):
    """A fresh batch user: a 2D Gaussian PSF (--unit um) had ['Z', 200.0] in its sidecar calibration: the
    default slice spacing (in nm) relabelled µm, for a YX output."""
    out = tmp_path / "p.tif"
    assert main(["psf", "gaussian", "--depth", "1", "--width", "15", "--height", "15", "--fwhm-xy", "0.3",
                 "--pixel-spacing", "0.1", "--unit", "um", "-o", str(out)]) == 0
    rec = json.loads((tmp_path / "p.tif.json").read_text())["output"]
    assert rec["axes"] == "YX" and "Z" not in dict(rec["calibration"]["spacing"]), rec


def test_iterative3d_takes_a_one_plane_psf_file_for_a_stack_and_a_hyperstack(tmp_path):
    """A verifier: the API and ImageJ took a one-plane PSF (slice by slice), the CLI refused it ('psf: 2D PSF
    for 3D volumes', from its memory estimate), on a plain stack too."""
    from fijidecon.psf import gaussian

    rng = np.random.default_rng(0)
    write_image(tmp_path / "hs.tif", rng.poisson(50, (2, 8, 2, 32, 32)).astype(np.float32),
                Calibration.make("TZCYX", unit="nm", Z=300, Y=100, X=100))
    write_image(tmp_path / "st.tif", rng.poisson(50, (8, 32, 32)).astype(np.float32))
    write_image(tmp_path / "p2d.tif", gaussian((15, 15), (2.0, 2.0)))
    for name in ("hs.tif", "st.tif"):
        assert main(["deconvolve", "iterative3d", str(tmp_path / name), str(tmp_path / "p2d.tif"),
                     "--max-iterations", "2", "-o", str(tmp_path / f"o_{name}")]) == 0
        assert read_image(tmp_path / f"o_{name}")[0].shape == read_image(tmp_path / name)[0].shape
