"""Hyperstacks through the command line, end to end (real-data cases 7, 8, 9, 10 and the real files).

Each channel is deconvolved with its own PSF (one file per channel, or a PSF hyperstack), every
(T, C) volume separately; the result is written in the input's axes with its calibration: an ImageJ
hyperstack comes back as the same hyperstack, an OME-TIFF (``.ome.tif`` out) in its own axis order.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from conftest import SHARED
from fijidecon.calibration import Calibration
from fijidecon.cli import main
from fijidecon.deconvolve import convolve, richardson_lucy, wiener
from fijidecon.io import read_image, write_image
from fijidecon.psf import gaussian

REAL = SHARED / "data" / "real"
CAL = dict(unit="micron", Z=0.2, Y=0.065, X=0.065)
VOXEL_NM = (200.0, 65.0, 65.0)


def _psfs():
    """Two channels, two PSFs (the second wider, as for a longer wavelength)."""
    return [gaussian((11, 21, 21), fwhm=(700.0, 250.0, 250.0), voxel_size=VOXEL_NM).astype(np.float32),
            gaussian((11, 21, 21), fwhm=(900.0, 330.0, 330.0), voxel_size=VOXEL_NM).astype(np.float32)]


def _truth(shift=0):
    t = np.zeros((12, 40, 40), np.float32)
    t[6, 12 + shift, 12], t[5, 26, 28 - shift] = 2e4, 1e4
    t[3:9, 18:22, 6:34] = 150
    return t + 2.0


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 2-timepoint, 2-channel uint16 ImageJ hyperstack (TZCYX; channel 2 = 5 x channel 1 before the blur,
    each channel blurred with its own PSF), the same data as a CZYX OME-TIFF, and the PSFs as files."""
    d = tmp_path_factory.mktemp("hyper")
    psfs = _psfs()
    tczyx = np.stack([np.stack([convolve(k * _truth(t), p, edges="constant") for k, p in zip((1, 5), psfs)])
                      for t in range(2)])
    tczyx = np.round(tczyx).clip(0, 65535).astype(np.uint16)
    tifffile.imwrite(d / "tzcyx.tif", np.ascontiguousarray(tczyx.transpose(0, 2, 1, 3, 4)), imagej=True,
                     resolution=(1 / 0.065, 1 / 0.065),
                     metadata={"axes": "TZCYX", "spacing": 0.2, "unit": "um", "finterval": 30.0})
    tifffile.imwrite(d / "czyx.ome.tif", tczyx[0], ome=True, metadata={
        "axes": "CZYX", "PhysicalSizeX": 0.065, "PhysicalSizeY": 0.065, "PhysicalSizeZ": 0.2})
    for c, p in enumerate(psfs):
        write_image(d / f"psf{c + 1}.tif", p, Calibration.make("ZYX", **CAL))
    write_image(d / "psf_zcyx.tif", np.stack(psfs, axis=1), Calibration.make("ZCYX", **CAL))  # PSF hyperstack
    return d, tczyx, psfs


def _ratio(vol_c1, vol_c2):
    return float(vol_c2.sum(dtype=np.float64) / vol_c1.sum(dtype=np.float64))


def _channels(arr, axes):
    """The (T, C, Z, Y, X) view of an array with the given axes (T added when absent)."""
    order = [axes.index(a) for a in "TCZYX" if a in axes]
    a = np.transpose(arr, order)
    return a if "T" in axes else a[None]


@pytest.mark.parametrize("method,args,api", [
    ("richardson-lucy", ["--iterations", "8"], lambda im, p: richardson_lucy(im, p, iterations=8).image),
    ("wiener", ["--regularization", "1e-3"], lambda im, p: wiener(im, p, regularization=1e-3).image),
    ("convolve", [], lambda im, p: convolve(im, p)),
])
@pytest.mark.parametrize("psf_form", ["files", "hyperstack"])
def test_imagej_hyperstack_round_trip(files, tmp_path, capsys, method, args, api, psf_form):
    d, tczyx, psfs = files
    psf_args = [str(d / "psf1.tif"), str(d / "psf2.tif")] if psf_form == "files" else [str(d / "psf_zcyx.tif")]
    out = tmp_path / "out.tif"
    assert main(["deconvolve", method, str(d / "tzcyx.tif"), *psf_args, "-o", str(out), *args]) == 0, \
        capsys.readouterr().err
    res, cal = read_image(out)
    src, src_cal = read_image(d / "tzcyx.tif")
    assert cal == src_cal and cal.axes == "TZCYX" and res.shape == src.shape  # same hyperstack, same calibration
    assert cal.get("T") == 30.0 and cal.voxel_size("ZYX") == pytest.approx((0.2, 0.065, 0.065))
    got = _channels(res, cal.axes)
    for t in range(2):
        for c in range(2):  # each (T, C) volume with its own channel's PSF
            want = api(tczyx[t, c].astype(np.float32), psfs[c])
            np.testing.assert_allclose(got[t, c], want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))
        assert _ratio(got[t, 0], got[t, 1]) == pytest.approx(5.0, rel=0.02)
    rec = json.loads((tmp_path / "out.tif.json").read_text())
    assert rec["output"]["axes"] == "TZCYX" and rec["output"]["calibration"]["unit"] == "micron"
    assert rec["output"]["calibration"]["time_unit"] == "s"  # T = 30 sat under "unit": "micron" alone
    assert not any(k.startswith("_") for k in rec["result"])  # no private "_state": null
    assert [i["parameter"] for i in rec["inputs"]] == ["image"] + ["psf"] * len(psf_args)


@pytest.mark.parametrize("method,args", [("richardson-lucy", ["--iterations", "8"]),
                                         ("wiener", ["--regularization", "1e-3"])])
def test_ome_tiff_round_trip_keeps_czyx(files, tmp_path, capsys, method, args):
    d, tczyx, psfs = files
    out = tmp_path / "out.ome.tif"
    assert main(["deconvolve", method, str(d / "czyx.ome.tif"), str(d / "psf1.tif"), str(d / "psf2.tif"),
                 "-o", str(out), *args]) == 0, capsys.readouterr().err
    with tifffile.TiffFile(out) as tif:
        assert tif.is_ome
    res, cal = read_image(out)
    src, src_cal = read_image(d / "czyx.ome.tif")
    assert cal == src_cal and cal.axes == "CZYX" and res.shape == src.shape
    assert _ratio(res[0], res[1]) == pytest.approx(5.0, rel=0.02)
    # an ImageJ TIFF name gives the hyperstack of the same data (ImageJ order), calibration kept
    out2 = tmp_path / "out.tif"
    assert main(["deconvolve", method, str(d / "czyx.ome.tif"), str(d / "psf1.tif"), str(d / "psf2.tif"),
                 "-o", str(out2), *args, "-q"]) == 0
    res2, cal2 = read_image(out2)
    assert cal2 == src_cal.with_axes("ZCYX")
    np.testing.assert_array_equal(res2, res.transpose(1, 0, 2, 3))


def test_case7_zcyx_two_channels_and_case8_5d(tmp_path, capsys):
    """The cases' own files: ZCYX (Z=16, C=2) and TZCYX (T=3, Z=10, C=2), one PSF for both channels."""
    psf = gaussian((11, 21, 21), fwhm=(700.0, 250.0, 250.0), voxel_size=VOXEL_NM).astype(np.float32)
    truth = np.zeros((16, 48, 48))
    truth[8, 12, 12] = truth[8, 30, 36] = 2e5
    truth[4:12, 20:26, 5:40] = 1e3
    ch = convolve(truth.astype(np.float32), psf, edges="constant")
    czyx = np.stack([ch, 5 * ch]).round().clip(0, 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "zcyx.tif", czyx.transpose(1, 0, 2, 3), imagej=True,
                     resolution=(1 / 0.065, 1 / 0.065), metadata={"axes": "ZCYX", "spacing": 0.2, "unit": "um"})
    tzcyx = np.stack([czyx[:, :10], czyx[:, 3:13], czyx[:, 6:16]]).transpose(0, 2, 1, 3, 4)
    tifffile.imwrite(tmp_path / "tzcyx.tif", np.ascontiguousarray(tzcyx), imagej=True,
                     resolution=(1 / 0.065, 1 / 0.065), metadata={"axes": "TZCYX", "spacing": 0.2, "unit": "um"})
    write_image(tmp_path / "psf.tif", psf, Calibration.make("ZYX", **CAL))
    for name, axes in (("zcyx.tif", "ZCYX"), ("tzcyx.tif", "TZCYX")):
        for method in ("richardson-lucy", "wiener", "convolve"):
            out = tmp_path / f"{method}-{name}"
            assert main(["deconvolve", method, str(tmp_path / name), str(tmp_path / "psf.tif"), "-o", str(out),
                         "-q"] + {"richardson-lucy": ["--iterations", "5"], "wiener": ["--regularization", "1e-3"],
                                  "convolve": []}[method]) == 0, \
                capsys.readouterr().err
            res, cal = read_image(out)
            assert cal.axes == axes and cal == read_image(tmp_path / name)[1]
            v = _channels(res, axes)
            for t in range(v.shape[0]):
                assert _ratio(v[t, 0], v[t, 1]) == pytest.approx(5.0, rel=0.02)


def test_npy_input_with_axes(files, tmp_path, capsys):
    d, tczyx, psfs = files
    np.save(tmp_path / "zcyx.npy", tczyx[0].transpose(1, 0, 2, 3).astype(np.float32))
    out = tmp_path / "r.tif"
    assert main(["deconvolve", "convolve", str(tmp_path / "zcyx.npy"), str(d / "psf1.tif"), str(d / "psf2.tif"),
                 "--axes", "ZCYX", "-o", str(out), "-q"]) == 0, capsys.readouterr().err
    res, cal = read_image(out)
    assert cal.axes == "ZCYX" and res.shape == (12, 2, 40, 40)
    assert "no voxel size" in capsys.readouterr().err  # .npy has no calibration: said, in one line
    # without --axes a 4D .npy is C, Z, Y, X: 12 "channels" for 2 PSFs is refused before computing
    assert main(["deconvolve", "convolve", str(tmp_path / "zcyx.npy"), str(d / "psf1.tif"), str(d / "psf2.tif"),
                 "-o", str(tmp_path / "bad.tif")]) == 2
    err = capsys.readouterr().err
    assert "2 PSFs given for an image with 12 channel(s)" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad.tif").exists()


# ---------------------------------------------------------------------------------------------
# the real files (shared/data/real)
# ---------------------------------------------------------------------------------------------
def _real(*parts):
    p = REAL.joinpath(*parts)
    if not p.exists():
        pytest.skip("shared data not available")
    return p


def test_dapi_with_a_same_size_diffraction_psf_made_like_it(tmp_path, capsys):
    """Real-data case 2: dapi_001.tif (40, 201, 101) and a Diffraction PSF 3D of exactly its size."""
    dapi = _real("deconwolf_demo", "dapi_001.tif")
    psf = tmp_path / "psf.tif"
    assert main(["psf", "diffraction", "--like", str(dapi), "--index", "1.512", "--na", "1.45", "--wavelength", "461",
                 "--pixel-spacing", "130", "--slice-spacing", "300", "--mode", "improved", "-o", str(psf)]) == 0
    err = capsys.readouterr().err
    assert "from dapi_001.tif: width 101, height 201, depth 40" in err and "not calibrated" in err
    assert read_image(psf)[0].shape == (40, 201, 101)
    for method, extra in (("richardson-lucy", ["--iterations", "3"]), ("wiener", [])):
        out = tmp_path / f"{method}.tif"
        assert main(["deconvolve", method, str(dapi), str(psf), "-o", str(out), *extra]) == 0
        err = capsys.readouterr().err
        assert "Traceback" not in err and "RuntimeWarning" not in err
        res, cal = read_image(out)
        assert res.shape == (40, 201, 101) and np.isfinite(res).all()
        rec = json.loads((tmp_path / f"{method}.tif.json").read_text())
        assert isinstance(rec["notes"], list) and isinstance(rec["warnings"], list)
        if method == "wiener":
            assert "regularization" in err and "(rule " in err


def test_light_sheet_psf_larger_than_a_40_plane_image(tmp_path, capsys):
    """Real-data case 3: the 61-plane lattice light-sheet bead PSF (offset, off-centre) on a 40-plane image."""
    psf = _real("pycudadecon_lls_psf", "psf.tif")
    dapi = _real("deconwolf_demo", "dapi_001.tif")
    for method, extra in (("richardson-lucy", ["--iterations", "3"]), ("wiener", [])):
        out = tmp_path / f"{method}.tif"
        assert main(["deconvolve", method, str(dapi), str(psf), "-o", str(out), *extra]) == 0
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert all(line.startswith(("Note: ", "Warning: ", "wrote ")) for line in err.strip().splitlines()), err
        res, _ = read_image(out)
        assert res.shape == (40, 201, 101) and np.isfinite(res).all()
        rec = json.loads((tmp_path / f"{method}.tif.json").read_text())
        assert rec["notes"] == [ln[len("Note: "):] for ln in err.splitlines() if ln.startswith("Note: ")]


def test_stack_saved_without_axes_error_suggests_axes(tmp_path):
    """A Z stack written by ``tifffile.imwrite(..., imagej=True)`` without axes reads as C, Y, X: with a 3D
    PSF the one-line error says how to fix it (``--axes ZYX``), and with it the run works."""
    import subprocess
    import sys

    import tifffile

    tifffile.imwrite(tmp_path / "stack.tif", np.random.default_rng(0).random((20, 32, 32), dtype=np.float32),
                     imagej=True)
    z, y, x = np.mgrid[-4:5, -7:8, -7:8]
    tifffile.imwrite(tmp_path / "psf.tif", np.exp(-(x ** 2 + y ** 2 + z ** 2) / 8.0).astype(np.float32))

    def run(*extra):
        return subprocess.run([sys.executable, "-m", "fijidecon.cli", "deconvolve", "richardson-lucy",
                               str(tmp_path / "stack.tif"), str(tmp_path / "psf.tif"), "--iterations", "1", *extra,
                               "-o", str(tmp_path / "o.tif")], capture_output=True, text=True)

    r = run()
    assert r.returncode == 2 and "--axes ZYX" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = run("--axes", "ZYX")
    assert r.returncode == 0, r.stderr


def _channel_psf_files(tmp_path):
    """A ZCYX image at 0.2/0.13/0.13 um and one PSF file per channel: the first at the image's
    voxel size, the second at 0.3 um (a fresh user's batch: every PSF was taken at the first's)."""
    rng = np.random.default_rng(0)
    write_image(tmp_path / "img.tif", rng.poisson(20, (12, 2, 48, 40)).astype(np.float32),
                Calibration.make("ZCYX", "micron", z=0.2, y=0.13, x=0.13))
    p = gaussian((9, 15, 15), fwhm=(3.5, 3.5, 3.5), voxel_size=(1.0, 1.0, 1.0)).astype(np.float32)
    write_image(tmp_path / "p_image.tif", p, Calibration.make("ZYX", "micron", z=0.2, y=0.13, x=0.13))
    write_image(tmp_path / "p_coarse.tif", p, Calibration.make("ZYX", "micron", z=0.3, y=0.3, x=0.3))
    return p


def test_one_psf_file_per_channel_each_at_its_own_voxel_size(tmp_path, capsys):
    p = _channel_psf_files(tmp_path)
    shapes = {}
    for order in (("p_image", "p_coarse"), ("p_coarse", "p_image")):
        out = tmp_path / f"out_{order[0]}.tif"
        assert main(["deconvolve", "richardson-lucy", str(tmp_path / "img.tif"),
                     *(str(tmp_path / f"{o}.tif") for o in order), "--iterations", "2", "-o", str(out)]) == 0
        err = capsys.readouterr().err
        coarse = order.index("p_coarse")
        assert f"psf[{coarse}]: resampled from voxel size (0.3, 0.3, 0.3)" in err
        assert f"psf[{1 - coarse}]: resampled" not in err
        report = json.loads(Path(f"{out}.json").read_text())["result"]["psf_report"]
        shapes[order] = [tuple(r["kernel_shape"]) for r in report]
        assert shapes[order][coarse][1] > 2 * shapes[order][1 - coarse][1]  # 0.3/0.13: more than twice as wide
    assert shapes[("p_image", "p_coarse")] == shapes[("p_coarse", "p_image")][::-1]
    # the API: one voxel size per PSF, the same result; a count that does not match is refused
    img, _ = read_image(tmp_path / "img.tif")
    api = richardson_lucy(img, [p, p], 2, axes="ZCYX", voxel_size=(0.2, 0.13, 0.13),
                          psf_voxel_size=[(0.2, 0.13, 0.13), (0.3, 0.3, 0.3)])
    np.testing.assert_allclose(api.image, read_image(tmp_path / "out_p_image.tif")[0], rtol=1e-5)
    with pytest.raises(ValueError, match=r"^psf_voxel_size: 3 voxel sizes \(one per PSF\) for an image with 2 "):
        richardson_lucy(img, [p, p], 2, axes="ZCYX", voxel_size=(0.2, 0.13, 0.13), psf_voxel_size=[(1, 1, 1)] * 3)


def test_lazy_run_with_a_psf_deeper_than_the_stack(tmp_path, capsys):
    """OME-Zarr output (a lazy run) of a 12-plane stack whose PSF, resampled, is 13 planes deep:
    Dask refused the overlap ('The overlapping depth 13 is larger than your array 12'); the bricks
    span the stack, so they need none, and the result is the in-memory run's."""
    _channel_psf_files(tmp_path)
    args = [str(tmp_path / "img.tif"), str(tmp_path / "p_image.tif"), str(tmp_path / "p_coarse.tif"),
            "--iterations", "2"]
    assert main(["deconvolve", "richardson-lucy", *args, "-o", str(tmp_path / "mem.tif")]) == 0
    assert main(["deconvolve", "richardson-lucy", *args, "-o", str(tmp_path / "lazy.ome.zarr")]) == 0
    err = capsys.readouterr().err
    assert "lazy run (OME-Zarr output)" in err and "halo 20x" in err  # 1.5 x the 13-plane PSF: deeper still
    # the zarr holds NGFF order (C before Z): the summary line and the sidecar say so
    assert "lazy.ome.zarr (2, 12, 48, 40) CZYX float32" in err
    side = json.loads((tmp_path / "lazy.ome.zarr.json").read_text())
    out = side["output"]
    assert out["axes"] == "CZYX" and out["shape"] == [2, 12, 48, 40]
    assert any(n.startswith("lazy run (OME-Zarr output)") and "halo 20x" in n for n in side["notes"])  # kept too
    mem, _ = read_image(tmp_path / "mem.tif")
    lazy, cal = read_image(tmp_path / "lazy.ome.zarr")
    lazy = np.moveaxis(lazy, cal.axes.index("C"), 1) if cal.axes.index("C") != 1 else lazy
    np.testing.assert_array_equal(mem, lazy)


def test_axes_that_reorder_the_files_own_warn(tmp_path, capsys):
    """--axes CZYX on a ZCYX hyperstack relabels it (12 planes x 2 channels became 12 channels of 2
    planes, silently): a warning names both; the file's own order, or other letters, do not warn."""
    _channel_psf_files(tmp_path)
    base = ["deconvolve", "richardson-lucy", str(tmp_path / "img.tif"), str(tmp_path / "p_image.tif"),
            "--iterations", "1"]
    assert main([*base, "--axes", "CZYX", "-o", str(tmp_path / "t.tif")]) == 0
    assert ("Warning: --axes: 'CZYX' given for img.tif, whose own axes are 'ZCYX': the stored array is read with "
            "these labels (relabelled, not transposed)") in capsys.readouterr().err
    assert main([*base, "--axes", "ZCYX", "-o", str(tmp_path / "same.tif")]) == 0
    assert "axes:" not in capsys.readouterr().err
    with pytest.warns(RuntimeWarning, match="whose own axes are 'ZCYX'"):
        read_image(tmp_path / "img.tif", axes="CZYX")
    import warnings as _w
    with _w.catch_warnings():
        _w.simplefilter("error")
        assert read_image(tmp_path / "img.tif", axes="TCYX")[1].axes == "TCYX"  # other letters: a choice, no warning


@pytest.mark.parametrize("name, axes", [("out.tif", "ZCYX"), ("out.ome.tif", "CZYX"), ("out.ome.zarr", "CZYX")])
def test_the_wrote_line_and_sidecar_describe_the_file_as_stored(tmp_path, capsys, name, axes):
    """A CZYX OME-TIFF written to a plain .tif is stored in ImageJ's order (ZCYX): the summary line
    and the sidecar said CZYX, so a pipeline trusting the sidecar swapped Z and C."""
    from fijidecon.calibration import Calibration

    img = np.random.default_rng(2).poisson(30, (2, 12, 24, 20)).astype(np.float32)
    write_image(tmp_path / "in.ome.tif", img, Calibration.make("CZYX", unit="micron", Z=0.3, Y=0.1, X=0.1))
    write_image(tmp_path / "psf.tif", np.ones((3, 3, 3), np.float32))
    assert main(["deconvolve", "convolve", str(tmp_path / "in.ome.tif"), str(tmp_path / "psf.tif"),
                 "-o", str(tmp_path / name)]) == 0
    back, cal = read_image(tmp_path / name)
    shape = tuple(img.shape["CZYX".index(a)] for a in axes)
    assert cal.axes == axes and back.shape == shape
    assert f"{name} {shape} {axes} float32" in capsys.readouterr().err
    out = json.loads((tmp_path / (name + ".json")).read_text())["output"]
    assert out["axes"] == axes and out["shape"] == list(shape) and out["calibration"]["axes"] == axes
