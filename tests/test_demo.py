"""The demo (``fijidecon demo``, :mod:`fijidecon.demo`): a synthetic widefield sample with known
truth, deconvolved with the scoreboard's method; files, sidecars, the PNG, and a result that is
measurably closer to the truth than the input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from fijidecon import demo
from fijidecon.io import read_image

SMALL = (24, 48, 48)


def _agreement(est, truth):
    """Correlation of ``est`` with the truth seen at 1.5 voxels (the detail deconvolution can restore)."""
    from scipy.ndimage import gaussian_filter

    t = gaussian_filter(truth.astype(np.float64), 1.5)
    return float(np.corrcoef(np.asarray(est, np.float64).ravel(), t.ravel())[0, 1])


def test_sample_is_a_widefield_stack_with_known_truth():
    image, truth, psf = demo.make_sample(SMALL, seed=3)
    assert image.shape == truth.shape == SMALL and image.dtype == np.uint16 and truth.dtype == np.float32
    assert psf.shape == (24, 48, 48) and abs(float(psf.sum()) - 1) < 1e-4
    assert np.count_nonzero(truth) > 300  # beads and filaments
    # counts: the background plus the blurred truth (part of the light leaves the box through its faces)
    level = float(image.mean()) - demo.BACKGROUND
    assert 0.5 * float(truth.mean()) < level <= float(truth.mean()) + 0.5
    again, _, _ = demo.make_sample(SMALL, seed=3)
    assert np.array_equal(image, again)  # reproducible


def test_demo_writes_files_sidecars_and_a_sharper_result(tmp_path):
    out = tmp_path / "d"
    paths = demo.run(out, shape=SMALL, iterations=10)
    assert [p.name for p in paths] == ["sample.tif", "truth.tif", "psf.tif", "deconvolved.tif", "demo.png"]
    for p in paths:
        assert p.stat().st_size > 0
    assert (out / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img, cal = read_image(out / "sample.tif")
    res, rcal = read_image(out / "deconvolved.tif")
    truth, _ = read_image(out / "truth.tif")
    assert img.shape == res.shape == SMALL and cal.unit == rcal.unit == "nm"
    assert rcal.voxel_size() == pytest.approx(demo.VOXEL_NM)
    # deconvolution brings the image closer to the truth (measured: 0.78 -> 0.88)
    assert _agreement(res, truth) > _agreement(img, truth) + 0.05
    rec = json.loads((out / "deconvolved.tif.json").read_text(),
                     parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
    assert rec["command"] == "Richardson-Lucy Deconvolution" and rec["result"]["iterations"] == 10
    assert rec["parameters"]["acceleration"] == demo.METHOD.get("acceleration")
    assert rec["parameters"]["back_projector"] == demo.METHOD.get("back_projector")
    assert rec["parameters"]["background"] == demo.BACKGROUND
    assert [i["parameter"] for i in rec["inputs"]] == ["image", "psf"] and len(rec["inputs"][0]["sha256"]) == 64
    assert len(rec["result"]["history"]) == 10
    psf_rec = json.loads((out / "psf.tif.json").read_text())
    assert psf_rec["parameters"]["na"] == demo.OPTICS["na"]
    # outputs are never silently replaced
    with pytest.raises(FileExistsError, match="exists"):
        demo.run(out, shape=SMALL, iterations=1)


def test_demo_cli_refuses_existing_outputs_before_computing(tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    (out / "deconvolved.tif").write_bytes(b"keep")
    r = subprocess.run([sys.executable, "-m", "fijidecon.cli", "demo", "-o", str(out)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 3 and "exists" in r.stderr and "Traceback" not in r.stderr
    assert (out / "deconvolved.tif").read_bytes() == b"keep"
    assert not (out / "sample.tif").exists()
