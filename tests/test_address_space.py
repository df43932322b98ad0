"""Runs under an address-space limit (``ulimit -v``, RLIMIT_AS): the real CLI in a child process.

The default budget counts what the process maps once it has imported what a lazy run imports (Dask, Zarr),
and what its threads reserve (stacks, malloc arenas); a limit that leaves nothing, or too little for the
bricks and their Dask graph, is refused in one line naming the ``ulimit -v`` that runs it; a limit that
leaves enough runs (bricked); running out of memory during a run is one line too, and leaves no output.
"""

from __future__ import annotations

import errno
import os
import re
import resource
import subprocess
import sys

import numpy as np
import pytest
import tifffile

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc (Linux)")

SHAPE, PSF = (32, 192, 192), (9, 15, 15)


def _files(tmp_path):
    img, psf = tmp_path / "img.tif", tmp_path / "psf.tif"
    if not img.exists():
        rng = np.random.default_rng(0)
        tifffile.imwrite(img, (rng.random(SHAPE) * 100 + 10).astype(np.float32), imagej=True,
                         metadata={"axes": "ZYX"})
        z, y, x = np.meshgrid(*[np.arange(n) - n // 2 for n in PSF], indexing="ij")
        k = np.exp(-(z**2 / 4 + y**2 / 3 + x**2 / 3)).astype(np.float32)
        tifffile.imwrite(psf, k / k.sum(), imagej=True, metadata={"axes": "ZYX"})
    return img, psf


def _cli(tmp_path, kib, out, *extra, image=None):
    """``python -m fijidecon deconvolve richardson-lucy`` under ``ulimit -v kib``."""
    img, psf = _files(tmp_path)
    img = image or img

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (kib * 1024, resource.RLIM_INFINITY))

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    return subprocess.run([sys.executable, "-m", "fijidecon", "deconvolve", "richardson-lucy", str(img), str(psf),
                           "-o", str(tmp_path / out), "--iterations", "2", "--background", "10", "-q", *extra],
                          capture_output=True, text=True, timeout=120, preexec_fn=limit, env=env, cwd=tmp_path)


def _left(tmp_path, out):
    """The output, its sidecar and any partial of it left in the folder."""
    return sorted(p.name for p in tmp_path.iterdir() if out in p.name)


def _one_line_error(p) -> str:
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr, p.stderr
    errors = [line for line in p.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, p.stderr
    return errors[0]


def test_a_limit_that_leaves_nothing_is_refused_in_one_line_naming_the_limit_that_runs_it(tmp_path):
    """Was '--memory-limit: 0 bytes is too small ... give --memory-limit 34MiB' (a budget the limit cannot
    give), or numpy's 'Unable to allocate' / 'can't start new thread' during the run."""
    p = _cli(tmp_path, 450_000, "a.tif")
    line = _one_line_error(p)
    assert line.startswith("Error: --memory-limit: nothing is left for the run under ulimit -v 450000 (the process "
                           "already maps "), line
    need = int(re.search(r"raise ulimit -v to at least (\d+) \(KiB\)", line).group(1))
    assert _left(tmp_path, "a.tif") == []
    # the limit it names runs it, bricked, to a TIFF and to an OME-Zarr
    ok = _cli(tmp_path, need, "b.tif")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert _left(tmp_path, "b.tif") == ["b.tif", "b.tif.json"]
    zarr_ok = _cli(tmp_path, need, "b.ome.zarr")
    assert zarr_ok.returncode == 0, zarr_ok.stderr[-2000:]
    assert _left(tmp_path, "b.ome.zarr") == ["b.ome.zarr", "b.ome.zarr.json"]


def test_a_limit_too_small_for_the_bricks_and_their_graph_is_refused_before_computing(tmp_path):
    """A budget of a few MiB was planned in hundreds of bricks whose Dask graph then filled the address
    space ('Unable to allocate', 'error return without exception set'); the limit named has a margin of
    up to 5 % (the in-memory run's, for the prepared PSF), so 8 % less is refused."""
    first = _one_line_error(_cli(tmp_path, 450_000, "a.tif"))
    need = int(re.search(r"at least (\d+) \(KiB\)", first).group(1))
    p = _cli(tmp_path, need - 60_000, "c.tif")
    line = _one_line_error(p)
    assert line.startswith("Error: --memory-limit: "), line
    assert f"ulimit -v {need - 60_000}" in line, line
    again = int(re.search(r"raise ulimit -v to at least (\d+) \(KiB\)$", line).group(1))
    assert abs(again - need) <= 4096, line  # the same remedy (what the process maps varies by a MiB or so)
    assert _left(tmp_path, "c.tif") == []


def test_running_out_of_memory_during_a_run_is_one_line_and_leaves_no_output(tmp_path):
    """An explicit budget above what the limit leaves (taken with a warning): numpy's 'Unable to allocate'
    during the run was printed as is, a thread that could not start as an 'internal error'."""
    first = _one_line_error(_cli(tmp_path, 450_000, "a.tif"))
    m = re.search(r"already maps (\d+) MiB, and its threads reserve (\d+) MiB", first)
    kib = (int(m.group(1)) + int(m.group(2)) + 30) * 1024  # 30 MiB left (and the reserve): the whole run needs 400 MiB
    big = tmp_path / "big.tif"
    tifffile.imwrite(big, np.random.default_rng(1).random((64, 384, 384), dtype=np.float32) + 10, imagej=True,
                     metadata={"axes": "ZYX"})
    p = _cli(tmp_path, kib, "d.tif", "--memory-limit", "4GB", image=big)
    line = _one_line_error(p)
    assert line.startswith(f"Error: out of memory during the run under ulimit -v {kib} (the process maps "), line
    assert "raise ulimit -v" in line and "--memory-limit" in line, line
    assert _left(tmp_path, "d.tif") == []


@pytest.mark.parametrize("exc, said", [
    (MemoryError(), "MemoryError"),
    (MemoryError("Unable to allocate 1.00 GiB for an array with shape (256, 1024, 1024)"), "Unable to allocate"),
    (RuntimeError("can't start new thread"), "can't start new thread"),
    (RuntimeError("Resource temporarily unavailable"), "Resource temporarily unavailable"),
    (MemoryError("std::bad_alloc"), "std::bad_alloc"),
    (OSError(errno.ENOMEM, "Cannot allocate memory"), "Cannot allocate memory"),
    (ImportError("/x/_core.so: failed to map segment from shared object"), "failed to map segment"),
])
def test_out_of_memory_is_recognised_in_every_form(exc, said):
    from fijidecon import cli

    line = cli.out_of_memory(exc)
    assert line is not None and line.startswith("out of memory during the run") and said in line, line
    assert "\n" not in line and "--memory-limit" in line
    wrapped = ValueError("while writing")  # what caused an error counts too
    wrapped.__cause__ = exc
    assert cli.out_of_memory(wrapped) is not None


@pytest.mark.parametrize("exc", [ValueError("iterations: expected ..."), OSError(errno.ENOSPC, "No space left"),
                                 MemoryError("memory_limit: 17 MiB is too small for richardson-lucy"),
                                 RuntimeError("something else")])
def test_other_errors_and_budget_refusals_are_not_out_of_memory(exc):
    from fijidecon import cli
    from fijidecon.errors import ResourceError

    assert cli.out_of_memory(exc) is None
    assert cli.out_of_memory(ResourceError("memory_limit: 1 MiB is too small")) is None


def test_a_failed_partial_output_that_reappears_is_removed_at_exit(tmp_path):
    """A brick still computing when the write failed may write its chunk after the partial was removed."""
    from fijidecon import lazy_io

    out = tmp_path / "e.ome.zarr"
    with pytest.raises(MemoryError):
        with lazy_io._atomic_output(out, False) as tmp:
            tmp.mkdir()
            raise MemoryError
    assert not tmp.exists()
    (tmp / "s0").mkdir(parents=True)  # the late chunk
    lazy_io.remove_failed_partials()  # what runs at exit
    assert not tmp.exists() and not out.exists()


def test_the_address_space_left_counts_what_is_mapped_and_the_threads(tmp_path):
    code = ("import json, resource\n"
            "from fijidecon.deconvolve import _memory\n"
            "resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, resource.RLIM_INFINITY))\n"
            "a = _memory.address_space()\n"
            "print(json.dumps([a.limit, a.mapped, a.reserve, a.room, _memory.vm_size(), _memory.available_memory(),"
            " __import__('os').environ.get('MALLOC_ARENA_MAX')]))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    import json

    limit, mapped, reserve, room, vm, avail, arenas = json.loads(p.stdout)
    assert limit == 4 * 2**30 and abs(mapped - vm) < 64 * 2**20 and room == limit - mapped - reserve
    cores = os.cpu_count() or 1
    assert reserve >= (3 * cores + 8) * 2**20 and arenas == "2"  # stacks of MiB at least; arenas capped
    assert avail <= room + 64 * 2**20
