"""The README's Python examples run as written (with small inputs for the names they
leave to the reader) and say what they claim."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from fijidecon.calibration import Calibration
from fijidecon.io import write_image
from fijidecon.psf import gaussian

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(starting: str) -> list[str]:
    code = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    found = [c for c in code if c.startswith(starting)]
    assert found, f"no README python block starts with {starting!r}"
    return found


def _inputs() -> dict:
    rng = np.random.default_rng(0)
    obj = np.zeros((16, 48, 48), np.float32)
    obj[rng.integers(2, 14, 12), rng.integers(4, 44, 12), rng.integers(4, 44, 12)] = 500.0
    psf = gaussian((9, 15, 15), (3.0, 2.0, 2.0))
    from fijidecon.deconvolve import convolve

    image = rng.poisson(np.clip(convolve(obj, psf, edges="constant"), 0, None) + 5).astype(np.float32)
    beads = np.full((60, 160, 220), 100.0)
    for p in [(30, 45, 45), (30, 45, 150), (31, 110, 100)]:
        sl = tuple(slice(c - n // 2, c - n // 2 + n) for c, n in zip(p, (31, 41, 41)))
        beads[sl] += 5e4 * gaussian((31, 41, 41), (700, 250, 250), (200, 65, 65), normalize="peak", dtype=np.float64)
    return dict(image=image, psf=psf, kernel=gaussian((3, 5, 5), 1.0), beads=beads, result=image)


def test_diffraction_psf_example():
    ns: dict = {}
    (block,) = _blocks("from fijidecon.psf import diffraction_psf_3d")
    exec(compile(block, "README", "exec"), ns)
    assert ns["psf"].shape == (32, 64, 64) and ns["psf"].dtype == np.float32
    assert np.unravel_index(np.argmax(ns["psf"]), ns["psf"].shape) == (16, 32, 32)


def test_iterative_deconvolve_example():
    ns = _inputs()
    (block,) = _blocks("from fijidecon.deconvolve import iterative_deconvolve_3d")
    exec(compile(block, "README", "exec"), ns)
    res = ns["res"]
    # an early stop logs one more figure than the title number (the original's D8)
    assert res.image.shape == ns["image"].shape and len(res.log) in (res.iterations, res.iterations + 1)
    assert res.stop_reason in ("converged", "change_increased", "diverged", "max_iterations", "cancelled",
                               "filters_only")


def test_modern_psf_and_deconvolution_examples():
    ns = _inputs()
    for start in ("from fijidecon.psf import gaussian, lorentzian", "from fijidecon.deconvolve import convolve"):
        (block,) = _blocks(start)
        exec(compile(block, "README", "exec"), ns)
    assert ns["g"].sum() == pytest.approx(1.0, rel=1e-5) and ns["l"].max() == pytest.approx(1.0)
    assert ns["b"].psf.shape == (31, 41, 41) and len(ns["b"].beads) == 3
    assert ns["more"].iterations == 60 and sorted(ns["res"].snapshots) == [10, 20, 30]


def test_files_example(tmp_path, monkeypatch):
    ns = _inputs()
    monkeypatch.chdir(tmp_path)
    write_image("stack.tif", ns["image"], Calibration.make("ZYX", unit="micron", Z=0.25, Y=0.1, X=0.1))
    (block,) = _blocks("from fijidecon.io import read_image, write_image")
    exec(compile(block, "README", "exec"), ns)
    cal = ns["cal"]
    assert (cal.axes, cal.voxel_size("ZYX"), cal.unit) == ("ZYX", pytest.approx((0.25, 0.1, 0.1)), "micron")
    assert (tmp_path / "out.tif").exists()


def test_your_own_data_example(tmp_path, monkeypatch):
    """The "Your own data" block: a CZYX OME-TIFF in micron and a raw bead PSF at 100 nm with a
    camera offset, off-centre: the offset is removed, the PSF resampled and re-centred, each said."""
    import tifffile

    monkeypatch.chdir(tmp_path)
    ns = _inputs()
    img = np.stack([ns["image"], 3 * ns["image"]])[:, :, :40, :40]
    tifffile.imwrite("cells.ome.tif", img, ome=True,
                     metadata={"axes": "CZYX", "PhysicalSizeX": 0.065, "PhysicalSizeY": 0.065, "PhysicalSizeZ": 0.2})
    zz, yy, xx = np.indices((31, 63, 63))
    bead = 3000 * np.exp(-(((zz - 15) / 3.0) ** 2 + ((yy - 35) / 1.1) ** 2 + ((xx - 31) / 1.1) ** 2) / 2) + 147
    raw = np.random.default_rng(1).poisson(bead).astype(np.uint16)
    write_image("psf.tif", raw, Calibration.make("ZYX", unit="nm", Z=100, Y=100, X=100))
    (block,) = _blocks("from fijidecon import io")
    exec(compile(block, "README", "exec"), ns)
    notes = " ".join(ns["res"].notes)
    assert "offset" in notes and "resampled" in notes and "re-centred" in notes
    assert ns["res"].image.shape == img.shape
