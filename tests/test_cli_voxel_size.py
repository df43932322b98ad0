"""``--voxel-size``: an uncalibrated image (a ``.npy`` array, a plain TIFF) given its voxel size on
the command line, so that a calibrated PSF is matched to it and the output is calibrated
(issue 8's remaining limitation: before, only a warning said the PSF was taken at the image's
voxel size)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from fijidecon.calibration import Calibration
from fijidecon.io import read_image, write_image
from fijidecon.psf import gaussian


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "fijidecon.cli", *map(str, args)], capture_output=True, text=True)


@pytest.fixture()
def files(tmp_path):
    img = np.random.default_rng(0).poisson(50, (16, 40, 40)).astype(np.float32)
    np.save(tmp_path / "img.npy", img)
    write_image(tmp_path / "plain.tif", img)  # a TIFF without calibration
    write_image(tmp_path / "cal.tif", img, Calibration.make("ZYX", "nm", Z=300, Y=100, X=100))
    psf = gaussian((9, 15, 15), fwhm=(600.0, 250.0, 250.0), voxel_size=(100.0, 50.0, 50.0))
    write_image(tmp_path / "psf.tif", psf, Calibration.make("ZYX", "nm", Z=100, Y=50, X=50))
    return tmp_path


@pytest.mark.parametrize("image", ["img.npy", "plain.tif"])
@pytest.mark.parametrize("command", ["richardson-lucy", "wiener", "convolve", "iterative3d"])
def test_uncalibrated_image_gets_the_voxel_size_and_the_psf_is_matched(files, image, command):
    out = files / f"{command}.tif"
    extra = {"richardson-lucy": ["--iterations", "2"], "iterative3d": ["--max-iterations", "2"]}.get(command, [])
    r = _cli("deconvolve", command, files / image, files / "psf.tif", *extra,
             "--voxel-size", "0.2,0.1,0.1 um", "-o", out)
    assert r.returncode == 0, r.stderr
    assert "no voxel size (uncalibrated)" not in r.stderr  # the old warning is gone
    if command != "iterative3d":  # the ported command keeps its own PSF rules
        assert "resampled from voxel size" in r.stderr, r.stderr
    _, cal = read_image(out)
    assert cal.voxel_size("ZYX", unit="nm") == pytest.approx((200, 100, 100))


def test_without_it_the_warning_says_how(files):
    r = _cli("deconvolve", "richardson-lucy", files / "img.npy", files / "psf.tif", "--iterations", "1",
             "-o", files / "o.tif")
    assert r.returncode == 0, r.stderr
    assert "--voxel-size on the CLI" in r.stderr


def test_it_replaces_a_different_file_calibration_with_a_warning(files):
    r = _cli("deconvolve", "convolve", files / "cal.tif", files / "psf.tif", "--voxel-size", "0.2 0.1 0.1 um",
             "-o", files / "o.tif")
    assert r.returncode == 0, r.stderr
    assert "replaces the calibration of" in r.stderr and "0.3,0.1,0.1 um" in r.stderr
    _, cal = read_image(files / "o.tif")
    assert cal.voxel_size("ZYX", unit="um") == pytest.approx((0.2, 0.1, 0.1))
    rec = json.loads((files / "o.tif.json").read_text())
    assert any("replaces the calibration" in w for w in rec["warnings"])


@pytest.mark.parametrize("text,words", [("0.2,0.1 um", "2 values for an image with 3 spatial axes"),
                                        ("0.2,0.1,x um", "expected 2 or 3 positive numbers"),
                                        ("0.2,0.1,0.1", "expected 2 or 3 positive numbers"),
                                        ("0.2,0,0.1 um", "expected 2 or 3 positive numbers"),
                                        ("0.2,0.1,0.1 parsec", "expected 2 or 3 positive numbers")])
def test_bad_values_are_one_line_before_any_work(files, text, words):
    r = _cli("deconvolve", "richardson-lucy", files / "img.npy", files / "psf.tif", "--voxel-size", text,
             "-o", files / "o.tif")
    assert r.returncode == 2 and words in r.stderr and "--voxel-size" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (files / "o.tif").exists()


@pytest.mark.parametrize("command", ["richardson-lucy", "convolve"])
def test_psf_voxel_size_calibrates_a_raw_psf(files, command):
    """--psf-voxel-size: a PSF without a calibration (a raw bead stack, .npy) was taken at the image's
    voxel size with only a warning; now it is resampled from the size given."""
    psf, _ = read_image(files / "psf.tif")
    np.save(files / "psf.npy", psf)
    extra = ["--iterations", "2"] if command == "richardson-lucy" else []
    r = _cli("deconvolve", command, files / "cal.tif", files / "psf.npy", *extra, "--psf-voxel-size", "100,50,50 nm",
             "-o", files / "o.tif")
    assert r.returncode == 0, r.stderr
    assert "no voxel size (uncalibrated)" not in r.stderr
    assert "resampled from voxel size (100, 50, 50) to the image's (300, 100, 100)" in r.stderr, r.stderr
    same = _cli("deconvolve", command, files / "cal.tif", files / "psf.tif", *extra, "-o", files / "ref.tif")
    assert same.returncode == 0, same.stderr
    np.testing.assert_array_equal(read_image(files / "o.tif")[0], read_image(files / "ref.tif")[0])


def test_psf_voxel_size_replacing_a_calibration_warns_and_bad_counts_are_one_line(files):
    r = _cli("deconvolve", "convolve", files / "cal.tif", files / "psf.tif", "--psf-voxel-size", "0.2,0.1,0.1 um",
             "-o", files / "o.tif")
    assert r.returncode == 0, r.stderr
    assert "Warning: --psf-voxel-size: 0.2,0.1,0.1 um replaces the calibration of " in r.stderr, r.stderr
    assert "psf.tif (0.1,0.05,0.05 um)" in r.stderr and "resampled from voxel size (200, 100, 100)" in r.stderr
    r = _cli("deconvolve", "convolve", files / "cal.tif", files / "psf.tif", "--psf-voxel-size", "0.2,0.1 um",
             "-o", files / "p.tif")
    assert r.returncode == 2 and "--psf-voxel-size: 2 values for a PSF with 3 spatial axes" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (files / "p.tif").exists()


def _no_z_files(d):
    """The same stack with X/Y pixel sizes but no Z spacing (an OME-TIFF without PhysicalSizeZ, a
    plain TIFF with centimetre resolution tags), and an ImageJ TIFF without 'spacing' (ImageJ's way
    of saying 1 unit: no warning)."""
    import tifffile

    img = np.random.default_rng(1).poisson(50, (16, 40, 40)).astype(np.float32)
    tifffile.imwrite(d / "noz.ome.tif", img, ome=True, metadata={"axes": "ZYX", "PhysicalSizeX": 0.1,
                                                                 "PhysicalSizeY": 0.1})
    tifffile.imwrite(d / "res.tif", img, resolution=(1e5, 1e5), resolutionunit="CENTIMETER")
    tifffile.imwrite(d / "ij.tif", img, imagej=True, resolution=(10, 10), metadata={"axes": "ZYX", "unit": "micron"})
    tifffile.imwrite(d / "ij0.tif", img, imagej=True, resolution=(10, 10), metadata={"axes": "ZYX", "unit": "micron",
                                                                                     "spacing": -0.3})
    tifffile.imwrite(d / "omenan.ome.tif", img, ome=True, metadata={"axes": "ZYX", "PhysicalSizeX": 0.1,
                                                                    "PhysicalSizeY": 0.1, "PhysicalSizeZ": "nan"})


@pytest.mark.parametrize("name, why", [("noz.ome.tif", "OME metadata without PhysicalSizeZ"),
                                       ("res.tif", "resolution tags give X and Y only"), ("ij.tif", None),
                                       ("ij0.tif", "its ImageJ spacing -0.3 is not a valid Z spacing"),
                                       ("omenan.ome.tif", "its OME PhysicalSizeZ 'nan' is not a valid Z spacing")])
def test_a_file_without_z_spacing_is_named_not_silently_1_unit(files, name, why):
    """Z was silently taken as 1 micron and the PSF resampled to it (31 planes -> 9), with a note only."""
    _no_z_files(files)
    out = files / f"out_{name}.tif"
    r = _cli("deconvolve", "convolve", files / name, files / "psf.tif", "-o", out)
    assert r.returncode == 0, r.stderr
    warned = [line for line in r.stderr.splitlines() if "the Z spacing is taken as 1 unit" in line]
    if why is None:
        assert warned == [], r.stderr
        return
    assert warned == [f"Warning: image: {name}: {why}: the Z spacing is taken as 1 unit of its pixel size; give the "
                      "voxel size with --voxel-size 'Z,Y,X UNIT' on the CLI (voxel_size= in the API, Image > "
                      "Properties in ImageJ)"], r.stderr
    given = _cli("deconvolve", "convolve", files / name, files / "psf.tif", "-o", files / "given.tif",
                 "--voxel-size", "0.3,0.1,0.1 micron")
    assert given.returncode == 0 and "the Z spacing" not in given.stderr, given.stderr
    like = _cli("psf", "gaussian", "--like", files / name, "-o", files / "like.tif")
    assert like.returncode == 0 and like.stderr.count("the Z spacing is taken as 1 unit") == 1, like.stderr
    assert "Traceback" not in like.stderr and "RuntimeWarning" not in like.stderr


def test_a_missing_pixel_size_or_bad_ngff_scale_is_named(tmp_path):
    """OME without PhysicalSizeY, and an OME-Zarr whose Z scale is NaN: 1 micron silently (the
    PSF resampled 9x13x13 -> 9x1x13, or -> 3x13x13)."""
    import tifffile

    from fijidecon.io import read_image, write_image

    img = np.random.default_rng(1).poisson(50, (16, 40, 40)).astype(np.float32)
    tifffile.imwrite(tmp_path / "noy.ome.tif", img, ome=True, metadata={"axes": "ZYX", "PhysicalSizeX": 0.1,
                                                                        "PhysicalSizeZ": 0.3})
    with pytest.warns(RuntimeWarning, match="OME metadata without PhysicalSizeY: the Y pixel size is taken as 1 unit "
                                            "of its length unit"):
        read_image(tmp_path / "noy.ome.tif")
    pytest.importorskip("zarr")
    write_image(tmp_path / "z.ome.zarr", img, Calibration.make("ZYX", "micron", Z=0.3, Y=0.1, X=0.1))
    meta = tmp_path / "z.ome.zarr" / ".zattrs"
    import json as _json

    attrs = _json.loads(meta.read_text()) if meta.exists() else None
    if attrs is None:
        pytest.skip("NGFF 0.5 store")
    ms = attrs["multiscales"][0]
    ms["datasets"][0]["coordinateTransformations"][0]["scale"][0] = float("nan")
    meta.write_text(_json.dumps(attrs))
    with pytest.warns(RuntimeWarning, match="its NGFF scale nan for Z is not a valid size: the Z spacing is taken as 1"):
        read_image(tmp_path / "z.ome.zarr")
