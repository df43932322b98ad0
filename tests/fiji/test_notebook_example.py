"""examples/notebook.py runs end to end under the test display (a fresh process: its own JVM)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "notebook.py"


def test_notebook_example_runs(display, jvm, tmp_path):
    shot = tmp_path / "screen.png"
    env = dict(os.environ, DISPLAY=display)
    r = subprocess.run(
        [sys.executable, str(EXAMPLE), "--screenshot", str(shot), "--iterations", "6"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    out = r.stdout
    assert re.search(r"ImageJ 1\.54p started", out)
    assert "numpy -> ImageJ: 'blurred' 64x64x24, 32-bit, voxel 200 x 65 x 65 nm" in out
    assert 'run("Diffraction PSF 3D", "' in out and 'run("Iterative Deconvolve 3D", "' in out
    assert "-> 'deconvolved_6'" in out
    assert "ImageJ -> numpy: (24, 64, 64) float32, axes ZYX, voxel (200.0, 65.0, 65.0) nm" in out
    assert "PSF made in ImageJ equals the numpy PSF: True" in out
    m = re.search(r"peak/mean: blurred ([\d.]+), deconvolved ([\d.]+)", out)
    assert m and float(m.group(2)) > 1.5 * float(m.group(1)), out
    m = re.search(r"correlation with the bead positions: blurred ([\d.]+), deconvolved ([\d.]+)", out)
    assert m and float(m.group(2)) > float(m.group(1)), out
    assert "sees the numpy write: -1.0" in out
    assert out.strip().endswith("done")
    # the screen shows windows (not a blank screen)
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert img.shape[0] >= 480 and img.std() > 10
