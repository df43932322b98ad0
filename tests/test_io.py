"""TIFF reading/writing with calibration; atomic, non-clobbering writes; sidecars."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import tifffile

from conftest import SHARED
from fijidecon.calibration import Calibration
from fijidecon.io import read_image, sha256_file, sidecar_path, write_image, write_sidecar


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_roundtrip_keeps_data_and_calibration(tmp_path, dtype):
    a = (np.random.default_rng(0).random((5, 6, 7)) * 200).astype(dtype)
    cal = Calibration.make("ZYX", unit="micron", Z=0.3, Y=0.065, X=0.07)
    write_image(tmp_path / "a.tif", a, cal)
    b, cal2 = read_image(tmp_path / "a.tif")
    assert b.dtype == a.dtype
    np.testing.assert_array_equal(a, b)
    assert cal2.axes == "ZYX" and cal2.unit == "micron"
    assert cal2.voxel_size() == pytest.approx((0.3, 0.065, 0.07))


def test_written_file_is_an_imagej_hyperstack(tmp_path):
    a = np.zeros((3, 2, 8, 9), np.float32)  # Z, C, Y, X
    cal = Calibration.make("ZCYX", unit="nm", Z=250, Y=100, X=100)
    write_image(tmp_path / "h.tif", a, cal)
    with tifffile.TiffFile(tmp_path / "h.tif") as tif:
        assert tif.is_imagej
        md = tif.imagej_metadata
        assert md["slices"] == 3 and md["channels"] == 2 and md["unit"] == "nm" and md["spacing"] == 250
    b, cal2 = read_image(tmp_path / "h.tif")
    assert b.shape == a.shape and cal2.axes == "ZCYX"


def test_float64_is_converted_with_a_warning(tmp_path):
    with pytest.warns(UserWarning, match="float32"):
        write_image(tmp_path / "d.tif", np.ones((4, 4)), None)
    assert read_image(tmp_path / "d.tif")[0].dtype == np.float32


def test_never_overwrites_without_permission(tmp_path):
    p = tmp_path / "x.tif"
    write_image(p, np.ones((4, 4), np.float32))
    before = p.read_bytes()
    with pytest.raises(FileExistsError, match="exists"):
        write_image(p, np.zeros((4, 4), np.float32))
    assert p.read_bytes() == before
    write_image(p, np.zeros((4, 4), np.float32), overwrite=True)
    assert read_image(p)[0].max() == 0
    assert [f.name for f in tmp_path.iterdir()] == ["x.tif"]  # no temporary files left


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(TypeError):
        write_image(tmp_path / "c.tif", np.ones((4, 4), np.complex64))
    assert list(tmp_path.iterdir()) == []


def test_ome_tiff_physical_sizes(tmp_path):
    a = np.zeros((4, 5, 6), np.uint16)
    tifffile.imwrite(tmp_path / "o.ome.tif", a, ome=True, metadata={
        "axes": "ZYX", "PhysicalSizeX": 0.1, "PhysicalSizeY": 0.1, "PhysicalSizeZ": 250, "PhysicalSizeZUnit": "nm"})
    _, cal = read_image(tmp_path / "o.ome.tif")
    assert cal.unit == "micron"
    assert cal.voxel_size() == pytest.approx((0.25, 0.1, 0.1))


def test_real_imagej_hyperstack_fixture():
    p = SHARED / "data/real/pyimagej_imagej_tiff_fixtures/test_still_stack.tif"
    if not p.exists():
        pytest.skip("shared data not available")
    a, cal = read_image(p)
    assert a.shape[0] == 3 and cal.axes == "CYX"
    assert cal.unit == "micron" and cal.dx == pytest.approx(0.325)


def test_missing_and_non_tiff_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="image"):
        read_image(tmp_path / "nope.tif")
    (tmp_path / "t.tif").write_text("not a tiff")
    with pytest.raises(ValueError, match="not a readable TIFF"):
        read_image(tmp_path / "t.tif")


def test_sidecar(tmp_path):
    out = tmp_path / "r.tif"
    write_image(out, np.ones((3, 3), np.float32))
    write_sidecar(out, {"a": np.float32(1.5), "b": np.arange(3)})
    assert sidecar_path(out).name == "r.tif.json"
    assert json.loads(sidecar_path(out).read_text()) == {"a": 1.5, "b": [0, 1, 2]}
    assert len(sha256_file(out)) == 64
    with pytest.raises(FileExistsError):
        write_sidecar(out, {})


# ---------------------------------------------------------------------------------------------
# axes are data: every axis order a microscope file uses is read as it is, and written back
# ---------------------------------------------------------------------------------------------
def _hyperstack(tmp_path, axes, shape, name="h.tif", unit="um"):
    """An ImageJ hyperstack written by tifffile (what Fiji and many scripts produce)."""
    a = (np.arange(np.prod(shape)) % 4000).astype(np.uint16).reshape(shape)
    p = tmp_path / name
    tifffile.imwrite(p, a, imagej=True, resolution=(1 / 0.065, 1 / 0.065),
                     metadata={"axes": axes, "spacing": 0.2, "unit": unit})
    return p, a


@pytest.mark.parametrize("axes,shape", [
    ("ZCYX", (16, 2, 12, 10)),      # case 7: two-channel z-stack
    ("TZCYX", (3, 10, 2, 8, 9)),    # case 8: 5D hyperstack
    ("TCYX", (2, 3, 8, 9)), ("TZYX", (2, 5, 8, 9)), ("CYX", (3, 8, 9)), ("ZYX", (4, 8, 9)), ("YX", (8, 9)),
])
def test_imagej_hyperstack_axes_and_calibration_are_read(tmp_path, axes, shape):
    p, a = _hyperstack(tmp_path, axes, shape)
    b, cal = read_image(p)
    assert cal.axes == axes and b.shape == shape
    np.testing.assert_array_equal(a, b)
    assert cal.unit == "micron" and cal.dx == pytest.approx(0.065) and cal.dy == pytest.approx(0.065)
    if "Z" in axes:
        assert cal.dz == pytest.approx(0.2)


@pytest.mark.parametrize("axes,shape", [("CZYX", (2, 5, 8, 9)), ("TCZYX", (2, 2, 3, 8, 9)), ("ZCYX", (3, 2, 8, 9)),
                                        ("CYX", (2, 8, 9)), ("ZYX", (3, 8, 9)), ("TZYX", (2, 3, 8, 9))])
def test_ome_tiff_axes_are_read_in_their_own_order(tmp_path, axes, shape):
    a = np.random.default_rng(1).integers(0, 999, shape).astype(np.uint16)
    tifffile.imwrite(tmp_path / "o.ome.tif", a, ome=True, metadata={
        "axes": axes, "PhysicalSizeX": 65, "PhysicalSizeXUnit": "nm", "PhysicalSizeY": 65, "PhysicalSizeYUnit": "nm",
        "PhysicalSizeZ": 0.2, "PhysicalSizeZUnit": "µm"})
    b, cal = read_image(tmp_path / "o.ome.tif")
    assert cal.axes == axes and b.shape == shape
    np.testing.assert_array_equal(a, b)
    assert cal.unit == "nm"  # one unit: the X unit, Z converted from µm
    assert cal.dx == pytest.approx(65)
    if "Z" in axes:
        assert cal.dz == pytest.approx(200)


def test_plain_tiffs_2d_and_3d(tmp_path):
    tifffile.imwrite(tmp_path / "p2.tif", np.ones((7, 9), np.uint16))
    tifffile.imwrite(tmp_path / "p3.tif", np.ones((4, 7, 9), np.float32), photometric="minisblack")
    with tifffile.TiffWriter(tmp_path / "pages.tif") as w:  # pages without shape metadata (axes "IYX")
        for _ in range(5):
            w.write(np.ones((7, 9), np.uint16), metadata=None, photometric="minisblack")
    for name, axes in (("p2.tif", "YX"), ("p3.tif", "ZYX"), ("pages.tif", "ZYX")):
        a, cal = read_image(tmp_path / name)
        assert cal.axes == axes and not cal.is_calibrated()


def test_npy_axes_given_or_default(tmp_path):
    np.save(tmp_path / "a4.npy", np.zeros((3, 2, 8, 9), np.float32))
    np.save(tmp_path / "a3.npy", np.zeros((3, 8, 9), np.float32))
    assert read_image(tmp_path / "a4.npy")[1].axes == "CZYX"
    assert read_image(tmp_path / "a3.npy")[1].axes == "ZYX"
    assert read_image(tmp_path / "a4.npy", axes="zcyx")[1].axes == "ZCYX"
    assert read_image(tmp_path / "a3.npy", axes="CYX")[1].axes == "CYX"
    # a file's own axes can be overridden, its calibration kept
    p, _ = _hyperstack(tmp_path, "ZYX", (4, 8, 9))
    a, cal = read_image(p, axes="TYX")
    assert cal.axes == "TYX" and cal.unit == "micron" and cal.dx == pytest.approx(0.065)


@pytest.mark.parametrize("axes,needle", [("ZYX", "3 letters"), ("CZYQ", "unknown axis"), ("CZZX", "repeated"),
                                         ("TCZY", "needs both Y and X")])
def test_bad_axes_are_one_line_errors(tmp_path, axes, needle):
    np.save(tmp_path / "a4.npy", np.zeros((3, 2, 8, 9), np.float32))
    with pytest.raises(ValueError, match=needle) as e:
        read_image(tmp_path / "a4.npy", axes=axes)
    assert "\n" not in str(e.value) and "axes" in str(e.value)


@pytest.mark.parametrize("axes,shape", [("CZYX", (2, 5, 8, 9)), ("TCZYX", (2, 2, 3, 8, 9)), ("ZCYX", (3, 2, 8, 9)),
                                        ("CTZYX", (2, 2, 3, 8, 9)), ("ZTYX", (3, 2, 8, 9)), ("CYX", (2, 8, 9)),
                                        ("YXZ", (8, 9, 3))])
def test_write_any_axes_as_imagej_hyperstack(tmp_path, axes, shape):
    """Cases 9/10 and reliability 11: any axis order is written (transposed to ImageJ's TZCYX order)."""
    a = np.random.default_rng(2).random(shape).astype(np.float32)
    cal = Calibration.make(axes, unit="micron", Z=0.2, Y=0.065, X=0.07)
    write_image(tmp_path / "w.tif", a, cal)
    b, cal2 = read_image(tmp_path / "w.tif")
    ij = "".join(x for x in "TZCYX" if x in axes)
    assert cal2.axes == ij
    np.testing.assert_array_equal(b, np.transpose(a, [axes.index(x) for x in ij]))
    assert cal2 == cal.with_axes(ij)
    with tifffile.TiffFile(tmp_path / "w.tif") as tif:
        assert tif.is_imagej


@pytest.mark.parametrize("axes,shape", [("CZYX", (2, 5, 8, 9)), ("TCZYX", (2, 2, 3, 8, 9)), ("ZCYX", (3, 2, 8, 9)),
                                        ("YX", (8, 9)), ("TZYX", (2, 3, 8, 9))])
@pytest.mark.parametrize("suffix", [".ome.tif", ".OME.TIFF"])
def test_write_ome_tiff_keeps_axis_order_and_physical_sizes(tmp_path, axes, shape, suffix):
    a = np.random.default_rng(3).integers(0, 60000, shape).astype(np.uint16)
    cal = Calibration.make(axes, unit="micron", Z=0.2, Y=0.065, X=0.065)
    p = write_image(tmp_path / ("w" + suffix), a, cal)
    with tifffile.TiffFile(p) as tif:
        assert tif.is_ome
        assert 'PhysicalSizeXUnit="µm"' in tif.ome_metadata
    b, cal2 = read_image(p)
    assert cal2 == cal
    np.testing.assert_array_equal(a, b)


def test_write_ome_in_nm_and_uncalibrated(tmp_path):
    a = np.ones((2, 3, 8, 9), np.float32)
    cal = Calibration.make("CZYX", unit="nm", Z=250, Y=100, X=100)
    assert read_image(write_image(tmp_path / "n.ome.tif", a, cal))[1] == cal
    cal0 = Calibration.default(4)
    assert read_image(write_image(tmp_path / "u.ome.tif", a, cal0))[1] == cal0


def test_default_calibration_4d_and_5d_results_are_written(tmp_path):
    """Reliability 11 / case 10: a (C, Z, Y, X) result with the default calibration."""
    write_image(tmp_path / "r4.tif", np.zeros((2, 3, 4, 5), np.float32))
    b, cal = read_image(tmp_path / "r4.tif")
    assert cal.axes == "ZCYX" and b.shape == (3, 2, 4, 5)
    write_image(tmp_path / "r5.tif", np.zeros((2, 2, 3, 4, 5), np.float32))
    assert read_image(tmp_path / "r5.tif")[1].axes == "TZCYX"


def test_empty_and_mismatched_arrays_are_refused(tmp_path):
    """Reliability 12: an empty array is refused, nothing written."""
    for empty in (np.zeros((3, 0)), np.zeros((0, 4, 4), np.float32)):
        with pytest.raises(ValueError, match="empty") as e:
            write_image(tmp_path / "e.tif", empty)
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="calibration axes"):
        write_image(tmp_path / "m.tif", np.zeros((2, 3, 4), np.float32), Calibration.make("CZYX"))
    assert list(tmp_path.iterdir()) == []
    np.save(tmp_path / "e.npy", np.zeros((0, 3)))
    with pytest.raises(ValueError, match="empty"):
        read_image(tmp_path / "e.npy")


def test_check_output_refuses_before_any_work(tmp_path):
    from fijidecon.io import check_output

    assert check_output(tmp_path / "ok.tif", "CZYX") == tmp_path / "ok.tif"
    assert check_output(tmp_path / "ok.ome.tiff", "TCZYX")
    with pytest.raises(FileNotFoundError, match="output: folder"):
        check_output(tmp_path / "missing" / "o.tif")
    with pytest.raises(ValueError, match="not a .tif"):
        check_output(tmp_path / "o.png")
    with pytest.raises(ValueError, match="output axes"):
        check_output(tmp_path / "o.tif", "CZZX")
    with pytest.raises(IsADirectoryError):
        check_output(tmp_path / "d.tif" if (tmp_path / "d.tif").mkdir() is None else None)
    write_image(tmp_path / "x.tif", np.ones((4, 4), np.float32))
    with pytest.raises(FileExistsError, match="exists"):
        check_output(tmp_path / "x.tif")
    check_output(tmp_path / "x.tif", overwrite=True)
    write_sidecar(tmp_path / "y.tif", {})
    with pytest.raises(FileExistsError, match="y.tif.json"):
        check_output(tmp_path / "y.tif", sidecar=True)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if not os.access(ro, os.W_OK):  # root can write anywhere
            with pytest.raises(PermissionError, match="not writable"):
                check_output(ro / "o.tif")
    finally:
        ro.chmod(0o755)


def test_sidecars_are_strict_json(tmp_path):
    """Case 15: NaN and inf become null; json.loads with a strict parser accepts the file."""
    out = tmp_path / "r.tif"
    write_sidecar(out, {"deviance": [float("nan"), 1.0, np.float32(np.inf)], "x": np.float64(-np.inf),
                        "nested": {"a": (np.nan, 2)}, 3: np.bool_(True)})
    text = sidecar_path(out).read_text()

    def refuse(c):
        raise ValueError(c)

    rec = json.loads(text, parse_constant=refuse)
    assert rec == {"deviance": [None, 1.0, None], "x": None, "nested": {"a": [None, 2]}, "3": True}


@pytest.mark.parametrize("content", [b"", b"II*\x00" + bytes(range(256)) * 4, b"\x93NUMPY garbage"])
@pytest.mark.parametrize("suffix", [".tif", ".npy"])
def test_damaged_files_are_one_line_errors(tmp_path, content, suffix):
    p = tmp_path / ("bad" + suffix)
    p.write_bytes(content)
    with pytest.raises(ValueError, match="image: .*bad") as e:
        read_image(p)
    assert "\n" not in str(e.value)


def test_npy_rgb_and_colour_like_last_axes(tmp_path):
    """Real-data case 14's file side: a (40, 30, 3) uint8 array is RGB, not 40 slices 3 pixels wide."""
    rgb = np.random.default_rng(0).integers(0, 255, (40, 30, 3), dtype=np.uint8)
    np.save(tmp_path / "rgb.npy", rgb)
    np.save(tmp_path / "zrgb.npy", np.stack([rgb, rgb]))
    assert read_image(tmp_path / "rgb.npy")[1].axes == "YXS"
    assert read_image(tmp_path / "zrgb.npy")[1].axes == "ZYXS"
    write_image(tmp_path / "rgb.tif", rgb, read_image(tmp_path / "rgb.npy")[1])
    b, cal = read_image(tmp_path / "rgb.tif")
    assert cal.axes == "YXS" and np.array_equal(b, rgb)
    for arr in (rgb.astype(np.float32), np.zeros((40, 30, 4), np.uint8)):
        np.save(tmp_path / "c.npy", arr)
        with pytest.warns(UserWarning, match="axes="):
            assert read_image(tmp_path / "c.npy")[1].axes == "ZYX"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(tmp_path / "c.npy", axes="YXS")[1].axes == "YXS"  # axes given: no warning


@pytest.mark.parametrize("imagej", [True, False])
def test_truncated_stack_is_an_error_not_one_plane(tmp_path, imagej):
    """Reliability case 3: a 16-slice TIFF cut to 60 % of its bytes is not read as one plane."""
    a = np.random.default_rng(0).random((16, 32, 32)).astype(np.float32)
    if imagej:
        tifffile.imwrite(tmp_path / "t.tif", a, imagej=True, metadata={"axes": "ZYX"})
    else:
        tifffile.imwrite(tmp_path / "t.tif", a, photometric="minisblack")
    data = (tmp_path / "t.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(ValueError, match=r"image: .*cut.tif.*(truncated|not a readable)") as e:
        read_image(tmp_path / "cut.tif")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name", ["t.tif", "t.ome.tif"])
def test_frame_interval_is_kept(tmp_path, name):
    """The T spacing (frame interval, seconds) survives both formats, as ImageJ's finterval / OME TimeIncrement."""
    cal = Calibration.make("TZYX", unit="micron", T=2.5, Z=0.3, Y=0.1, X=0.1)
    write_image(tmp_path / name, np.zeros((2, 3, 8, 9), np.float32), cal)
    assert read_image(tmp_path / name)[1] == cal


def test_image_and_sidecar_are_written_together_or_not_at_all(tmp_path):
    """Reliability cases 4 and 6: no output that looks complete without its sidecar, never a new image with an
    old sidecar."""
    import errno

    from fijidecon.io import write_image_and_sidecar

    out = tmp_path / "r.tif"
    write_image_and_sidecar(out, np.ones((4, 5), np.float32), None, lambda s: {"iterations": 5, "write_s": s})
    assert read_image(out)[0].shape == (4, 5)
    assert json.loads(sidecar_path(out).read_text())["iterations"] == 5
    old_image, old_side = out.read_bytes(), sidecar_path(out).read_bytes()

    def disk_full(seconds):
        raise OSError(errno.ENOSPC, "No space left on device")

    for target, overwrite in ((tmp_path / "new.tif", False), (out, True)):
        with pytest.raises(OSError, match="No space"):
            write_image_and_sidecar(target, np.zeros((4, 5), np.float32), None, disk_full, overwrite=overwrite)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.tif", "r.tif.json"]  # nothing new, no temporaries
    assert out.read_bytes() == old_image and sidecar_path(out).read_bytes() == old_side
    # an existing sidecar alone also refuses the pair, before anything is written
    (tmp_path / "s.tif.json").write_text("{}")
    with pytest.raises(FileExistsError, match="s.tif.json"):
        write_image_and_sidecar(tmp_path / "s.tif", np.ones((4, 5), np.float32), None, {})
    assert not (tmp_path / "s.tif").exists()
    write_image_and_sidecar(out, np.zeros((4, 5), np.float32), None, {"iterations": 20}, overwrite=True)
    assert read_image(out)[0].max() == 0 and json.loads(sidecar_path(out).read_text()) == {"iterations": 20}


@pytest.mark.parametrize("size", [1e10, 1e-30])
def test_pixel_sizes_a_tiff_cannot_store_are_refused(tmp_path, size):
    """1e10 read back as 1 (the resolution tag's ratio underflowed); 1e-30 gave 'max_denominator
    should be at least 1'.  An OME-TIFF stores any size."""
    cal = Calibration.make("ZYX", "nm", Z=200, Y=size, X=size)
    with pytest.raises(ValueError, match=r"^calibration: the X pixel size .* cannot be stored in a TIFF's resolution"):
        write_image(tmp_path / "p.tif", np.zeros((2, 4, 4), np.float32), cal)
    assert not (tmp_path / "p.tif").exists()
    write_image(tmp_path / "p.ome.tif", np.zeros((2, 4, 4), np.float32), cal)
    assert read_image(tmp_path / "p.ome.tif")[1].voxel_size() == pytest.approx((200, size, size))


def test_imagej_frame_interval_in_its_time_unit_is_read_in_seconds(tmp_path):
    """ImageJ writes tunit=min beside finterval=10: the T spacing is 600 s, not 10."""
    tifffile.imwrite(tmp_path / "t.tif", np.zeros((3, 4, 5, 6), np.uint16), imagej=True,
                     metadata={"axes": "TZYX", "finterval": 10.0, "tunit": "min", "unit": "um", "spacing": 0.5})
    assert read_image(tmp_path / "t.tif")[1].get("T") == 600.0


def test_a_resolution_of_zero_with_a_unit_is_warned_about(tmp_path):
    """ImageJ TIFF with unit micron and resolution 0: X and Y were taken as 1 micron silently
    (a 0.1 µm PSF then became 7x1x1; only Z's invalid spacing was warned about)."""
    import tifffile

    p = tmp_path / "res0.tif"
    tifffile.imwrite(p, np.zeros((4, 8, 8), np.float32), imagej=True, resolution=(0, 0),
                     metadata={"spacing": 0.2, "unit": "micron", "axes": "ZYX"})
    with pytest.warns(RuntimeWarning, match=r"^image: res0.tif: its X/Y resolution tag is 0 or missing: the X/Y "
                                            r"pixel size is taken as 1 unit"):
        _, cal = read_image(p)
    assert dict(cal.spacing)["Z"] == pytest.approx(0.2) and "X" not in dict(cal.spacing)


def test_write_image_takes_a_dataarray_with_its_dims_as_axes(tmp_path):
    """write_image(path, DataArray) raised xarray's 'unhashable type: list' (the deconvolution
    functions take DataArrays): its dims are now the axes; a calibration that contradicts them is refused."""
    xr = pytest.importorskip("xarray")
    from fijidecon.calibration import Calibration

    data = np.arange(2 * 4 * 8 * 8, dtype=np.float32).reshape(2, 4, 8, 8)
    a = xr.DataArray(data, dims=("c", "z", "y", "x"))
    write_image(tmp_path / "a.tif", a)
    back, cal = read_image(tmp_path / "a.tif")
    assert sorted(cal.axes) == sorted("CZYX")
    np.testing.assert_array_equal(np.moveaxis(back, [cal.axes.index(x) for x in "CZYX"], range(4)), data)
    with pytest.raises(ValueError, match=r"^calibration: axes 'TZYX' contradict the DataArray's dims"):
        write_image(tmp_path / "b.tif", a, Calibration.default(4).with_axes("TZYX"))


def test_write_image_keeps_a_dataarrays_calibrated_coords(tmp_path):
    """A fresh notebook user: a DataArray with coords z 0.3, y/x 0.1 and attrs unit 'micron' (the form
    from_imageplus_xarray makes) was written uncalibrated, without a word."""
    xr = pytest.importorskip("xarray")
    a = xr.DataArray(np.ones((8, 24, 24), np.float32), dims=("z", "y", "x"), attrs={"unit": "micron"},
                     coords={"z": np.arange(8) * 0.3, "y": np.arange(24) * 0.1, "x": np.arange(24) * 0.1})
    for name in ("a.tif", "a.ome.tif"):
        write_image(tmp_path / name, a)
        _, cal = read_image(tmp_path / name)
        assert cal.unit in ("micron", "µm") and cal.voxel_size() == pytest.approx((0.3, 0.1, 0.1), rel=1e-6), cal


def test_a_zcyx_npy_without_axes_is_warned_about(tmp_path):
    """A fresh batch user's (40, 2, Y, X) .npy (np.stack(..., axis=1)) ran through the CLI as 40 channels
    of 2 planes, rc 0, with no word; read_image (the CLI's reader) now warns and names --axes."""
    v = np.ones((40, 8, 8), np.float32)
    np.save(tmp_path / "zc.npy", np.stack([v, v], axis=1))
    with pytest.warns(RuntimeWarning, match=r"^image: zc.npy: shape \(40, 2, 8, 8\) read as axes 'CZYX' .* give its "
                                            r"axes \(axes=, --axes\) as 'ZCYX'$"):
        arr, cal = read_image(tmp_path / "zc.npy")
    assert cal.axes == "CZYX"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(tmp_path / "zc.npy", axes="ZCYX")[1].axes == "ZCYX"


def test_voxel_size_in_a_unit_of_an_uncalibrated_file_says_what_to_do():
    """README's recipe `pcal.voxel_size("ZYX", unit=cal.unit)` on dapi_001 (no voxel sizes: unit
    'pixel') said "unit: 'pixel' is not a length unit (known: ...)" without saying why or what to do."""
    from fijidecon.calibration import Calibration

    pixel, um = Calibration.make("ZYX"), Calibration.make("ZYX", "um", Z=0.2, Y=0.1, X=0.1)
    assert um.voxel_size("ZYX", unit="nm") == pytest.approx((200, 100, 100))
    with pytest.raises(ValueError, match=r"^unit: 'furlong' is not a length unit \(known: "):  # not 'no voxel sizes'
        um.voxel_size("ZYX", unit="furlong")
    for cal, unit, which in ((um, pixel.unit, "the unit asked for"), (pixel, "nm", "this calibration's unit")):
        with pytest.raises(ValueError, match=rf"^unit: {which} is 'pixel', not a length \(a file without voxel "
                                             r"sizes reads as 'pixel'\): give the voxel sizes yourself"):
            cal.voxel_size("ZYX", unit=unit)


@pytest.mark.parametrize("name", ["op.tif", "op.ome.tif"])
def test_a_one_plane_stack_reads_back_as_one_plane_when_its_axes_are_given(tmp_path, name):
    """A fresh notebook user: a (1, Y, X) ZYX stack came back (Y, X) (a TIFF keeps no axis of length 1) and
    read_image(path, axes='ZYX') raised 'has 3 letters for an array with 2 dimensions'; the CLI's --axes
    ZYX too, so a one-plane image could not meet a 3D PSF."""
    from fijidecon.calibration import Calibration
    from fijidecon.cli import main
    from fijidecon.lazy_io import read_lazy
    from fijidecon.psf import gaussian

    write_image(tmp_path / name, np.full((1, 32, 32), 5.0, np.float32),
                Calibration.make("ZYX", unit="micron", Z=0.3, Y=0.1, X=0.1))
    arr, cal = read_image(tmp_path / name, axes="ZYX")
    assert arr.shape == (1, 32, 32) and cal.axes == "ZYX" and cal.voxel_size() == pytest.approx((0.3, 0.1, 0.1))
    lazy, lcal = read_lazy(tmp_path / name, axes="ZYX")
    assert lazy.shape == (1, 32, 32) and lcal.axes == "ZYX"
    write_image(tmp_path / "p.tif", gaussian((7, 15, 15), (2.0, 2.0, 2.0)))
    assert main(["deconvolve", "richardson-lucy", str(tmp_path / name), str(tmp_path / "p.tif"), "--iterations",
                 "2", "--background", "1", "-o", str(tmp_path / "o.tif")]) == 2  # 2D image, 3D PSF: refused ...
    assert main(["deconvolve", "richardson-lucy", str(tmp_path / name), str(tmp_path / "p.tif"), "--iterations",
                 "2", "--background", "1", "--axes", "ZYX", "-o", str(tmp_path / "o.tif")]) == 0  # ... as one plane
    with pytest.raises(ValueError, match="has 3 letters"):  # only T, C, Z of length 1 are put back
        read_image(tmp_path / name, axes="YXS")


def test_a_text_file_named_npy_is_not_called_pickled(tmp_path):
    """A fresh batch user: a .npy holding the text 'hello' was 'not a readable .npy file (ValueError: This
    file contains pickled (object) data ...)'."""
    from fijidecon.lazy_io import read_lazy

    (tmp_path / "text.npy").write_text("hello")
    for read in (read_image, read_lazy):
        with pytest.raises(ValueError, match=r"^image: '.*text\.npy' is not a \.npy file \(no NumPy header\)$"):
            read(tmp_path / "text.npy")
