"""The CLI without the 'big' extra (dask, zarr, ome-zarr, distributed), as `pip install fijidecon`
gives it: every command runs in memory (a run over --memory-limit in bricks, in memory); only what
needs the extra is refused, with one line naming it.  The extra's modules are hidden from a child
process (``sys.modules[name] = None`` makes their import fail as if they were not installed)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from fijidecon.calibration import Calibration
from fijidecon.io import read_image, write_image
from fijidecon.psf import gaussian

_CHILD = """
import os, sys
for name in os.environ.get("HIDE", "dask dask.array zarr ome_zarr distributed").split():
    sys.modules[name] = None
from fijidecon.cli import main
rc = main(sys.argv[1:])
print("BIG-LOADED", any(m in sys.modules and sys.modules[m] is not None for m in ("dask", "zarr")), file=sys.stderr)
sys.exit(rc)
"""


def _cli(*args, hide=None):
    env = dict(os.environ, **({"HIDE": hide} if hide else {}))
    return subprocess.run([sys.executable, "-c", _CHILD, *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("base")
    cal = Calibration.make("ZYX", unit="micron", Z=0.3, Y=0.1, X=0.1)
    rng = np.random.default_rng(0)
    write_image(d / "img.tif", rng.poisson(50, (32, 256, 256)).astype(np.uint16), cal)
    write_image(d / "psf.tif", gaussian((9, 15, 15), (2.0, 1.5, 1.5)), cal)
    return d


@pytest.mark.parametrize("command", ["richardson-lucy", "wiener", "iterative3d"])
def test_every_deconvolution_runs_without_the_big_extra(files, command):
    out = files / f"{command}.tif"
    r = _cli("deconvolve", command, files / "img.tif", files / "psf.tif", "-o", out, "--overwrite", "-q")
    assert r.returncode == 0, r.stderr
    assert "BIG-LOADED False" in r.stderr
    img, cal = read_image(out)
    assert img.shape == (32, 256, 256) and cal.voxel_size() == pytest.approx((0.3, 0.1, 0.1))


def test_over_the_budget_it_bricks_in_memory(files):
    out = files / "bricked.tif"
    r = _cli("deconvolve", "richardson-lucy", files / "img.tif", files / "psf.tif", "-o", out, "--overwrite",
             "--memory-limit", "60MB", "--iterations", "3")
    assert r.returncode == 0, r.stderr
    assert "bricked" in r.stderr and "BIG-LOADED False" in r.stderr
    assert read_image(out)[0].shape == (32, 256, 256)


@pytest.mark.parametrize("extra, said", [(["-o", "o.ome.zarr"], "OME-Zarr output"), (["-o", "o.tif", "--workers",
                                                                                        "1"], "--workers")])
def test_what_needs_the_extra_is_refused_in_one_line(files, extra, said):
    extra = [str(files / e) if e.startswith("o.") else e for e in extra]
    r = _cli("deconvolve", "richardson-lucy", files / "img.tif", files / "psf.tif", *extra)
    assert r.returncode == 2
    line = [ln for ln in r.stderr.splitlines() if ln.startswith("Error:")]
    assert len(line) == 1 and said in line[0] and "pip install 'fijidecon[big]'" in line[0], r.stderr
    assert "Traceback" not in r.stderr


def test_workers_without_distributed_is_refused_in_one_line(files):
    """dask and zarr installed, dask.distributed not: --workers failed with an internal ImportError."""
    r = _cli("deconvolve", "richardson-lucy", files / "img.tif", files / "psf.tif", "-o", files / "w.tif",
             "--workers", "1", hide="distributed")
    assert r.returncode == 2, r.stderr
    line = [ln for ln in r.stderr.splitlines() if ln.startswith("Error:")]
    assert len(line) == 1 and "(dask, zarr, distributed)" in line[0] and "--workers" in line[0], r.stderr
    assert "Traceback" not in r.stderr and not (files / "w.tif").exists()
