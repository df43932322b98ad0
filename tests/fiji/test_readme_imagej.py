"""The README's ImageJ example runs as written, in a fresh process (its own JVM, shown
ImageJ window) under the test display."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_imagej_example_runs(display, jvm, tmp_path):
    blocks = [c for c in re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
              if c.startswith("from fijidecon.fiji import runtime, convert, commands")]
    assert len(blocks) == 1
    script = tmp_path / "readme_imagej.py"
    script.write_text(
        "import numpy as np\n"
        "stack = np.random.default_rng(0).random((16, 32, 40), dtype=np.float32)\n"
        + blocks[0]
        + "\nprint('psf window', commands.run_macro('print(isOpen(\"PSF\"));').log.strip())\n"
        "print('back', arr.shape, arr.dtype, cal.unit, cal.voxel_size('ZYX'))\n"
        "print('img', img.getClass().getName(), [int(img.dimension(d)) for d in range(3)])\n"
        "import os; os._exit(0)\n")
    env = dict(os.environ, DISPLAY=display)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "psf window 1" in r.stdout, r.stdout
    assert "back (16, 32, 40) float32 micron (0.25, 0.1, 0.1)" in r.stdout, r.stdout
    assert re.search(r"img net\.imglib2\.\S+ \[40, 32, 16\]", r.stdout), r.stdout
