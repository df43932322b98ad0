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
