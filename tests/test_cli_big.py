"""The CLI beyond memory: lazy file-to-file runs under --memory-limit, OME-Zarr in and out,
--workers (a real dask.distributed LocalCluster), --scheduler, progress, Ctrl-C, one-line errors.

Peak memory is measured in the child process that runs the CLI (``ru_maxrss`` minus its size
after the imports), never in the pytest process.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from fijidecon.calibration import Calibration
from fijidecon.cli import main
from fijidecon.deconvolve import convolve, estimate_memory, richardson_lucy
from fijidecon.io import read_image, write_image
from fijidecon.psf import gaussian

pytest.importorskip("distributed")
pytest.importorskip("tqdm")

BIG = (128, 384, 384)  # float32: 72 MiB (75.5 MB); its whole-volume RL needs 627 MiB
PSF = (9, 15, 15)
BUDGET = 145_000_000  # 138 MiB: about the smallest the plan takes for RL here (a PSF of 9 planes: 14 of halo)
CAL = Calibration.make("ZYX", unit="micron", Z=0.3, Y=0.1, X=0.1)

# The CLI in a child: the size after the imports, the run, the peak on stderr.  The peak is VmHWM (the
# process's own high-water mark): ru_maxrss would keep the pytest parent's size at fork time across execve.
_PEAK = r"""
import os, sys
import dask.array, tifffile, tqdm, zarr  # noqa: F401  (imports are not the run's memory)
import fijidecon.cli_big  # noqa: F401
from fijidecon.cli import main
base = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
rc = main(sys.argv[1:])
peak = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(f"PEAK-INCREMENT {peak - base}", file=sys.stderr)
sys.exit(rc)
"""


def _cli_child(*args, **kw):
    return subprocess.run([sys.executable, "-c", _PEAK, *map(str, args)], capture_output=True, text=True,
                          timeout=300, **kw)


def _increment(stderr: str) -> int:
    return int(next(line for line in stderr.splitlines() if line.startswith("PEAK-INCREMENT")).split()[1])


def _rel_l2(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    d = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(7)
    img = rng.random(BIG, dtype=np.float32) * 100 + 10
    write_image(d / "big.tif", img, CAL)
    write_image(d / "psf.tif", gaussian(PSF, (2.5, 2.0, 2.0)), CAL)
    return d


def test_budget_below_the_whole_run_tiff_to_zarr_to_tiff(big):
    """RL (TIFF -> OME-Zarr) then Convolve (OME-Zarr -> TIFF) under --memory-limit 145MB, about the
    smallest budget planned, on a 75.5 MB file whose whole-volume RL needs 627 MiB: bricked, lazy, the peak
    RSS increment of each child within the budget (+10 %; before the plan counted the bricks' overlapped
    inputs and the run's fixed costs, 70MB was taken and RL added 215 MiB), results equal to the in-memory
    API within 1e-3 (relative L2)."""
    z, t = big / "rl.ome.zarr", big / "back.tif"
    r = _cli_child("deconvolve", "richardson-lucy", big / "big.tif", big / "psf.tif", "-o", z, "--iterations", 2,
                   "--memory-limit", str(BUDGET))
    assert r.returncode == 0, r.stderr
    assert "lazy run" in r.stderr and "bricked" in r.stderr and "brick/s" in r.stderr  # notes and the bar
    inc1 = _increment(r.stderr)
    r2 = _cli_child("deconvolve", "convolve", z, big / "psf.tif", "-o", t, "--memory-limit", str(BUDGET))
    assert r2.returncode == 0, r2.stderr
    inc2 = _increment(r2.stderr)
    whole_rl = estimate_memory("richardson-lucy", BIG, PSF, iterations=2) + 4 * np.prod(BIG)
    whole_cv = estimate_memory("convolve", BIG, PSF) + 4 * np.prod(BIG)
    print(f"peak RSS increments: RL {inc1 / 2**20:.0f} MiB (whole volume: {whole_rl / 2**20:.0f}), convolve "
          f"{inc2 / 2**20:.0f} MiB (whole volume: {whole_cv / 2**20:.0f}); budget {BUDGET / 2**20:.0f} MiB")
    assert inc1 <= 1.1 * BUDGET and inc2 <= 1.1 * BUDGET and BUDGET < 0.25 * whole_rl
    meta = json.loads((big / "rl.ome.zarr.json").read_text())
    assert meta["memory"]["memory_limit_bytes"] == BUDGET and meta["memory"]["brick_core"][0] < BIG[0]  # Z split
    img, _ = read_image(big / "big.tif")
    psf, _ = read_image(big / "psf.tif")
    want = convolve(richardson_lucy(img, psf, 2, memory_limit=False).image, psf, memory_limit=False)
    got, cal = read_image(t)
    assert cal.axes == "ZYX" and cal.unit == "micron" and cal.voxel_size() == pytest.approx((0.3, 0.1, 0.1))
    assert _rel_l2(got, want) < 1e-3


def test_a_lazy_run_names_the_budgets_that_keep_it_in_memory_and_run_it_whole(tmp_path, capsys):
    """A fresh user (2026-12-03) read the lazy note's "about 763 MiB needed" (the whole run's estimate) as
    the budget that runs it whole, which was 1007MiB.  The note names both budgets now, and each does what
    it says: the first keeps the run in memory (in bricks), one MiB less goes lazy, the second runs it in
    one piece."""
    rng = np.random.default_rng(0)
    write_image(tmp_path / "s.tif", rng.poisson(100, (64, 256, 256)).astype(np.float32))
    write_image(tmp_path / "psf.tif", gaussian((5, 9, 9), (1.0, 1.5, 1.5)))

    def run(budget, name):
        assert main(["deconvolve", "convolve", str(tmp_path / "s.tif"), str(tmp_path / "psf.tif"), "-o",
                     str(tmp_path / name), "--memory-limit", budget]) == 0
        return capsys.readouterr().err

    err = run("100MB", "a.tif")
    m = re.search(r"Note: lazy run \(budget 95MiB; --memory-limit (\d+)MiB keeps it in memory, (\d+)MiB runs it "
                  r"in one piece\)", err)
    assert m, err
    keep, whole = int(m.group(1)), int(m.group(2))
    assert "lazy run" in run(f"{keep - 1}MiB", "b.tif")
    inside = run(f"{keep}MiB", "c.tif")
    assert "lazy run" not in inside and "bricked" in inside, inside
    assert "bricked" not in run(f"{whole}MiB", "d.tif")


def test_an_ome_zarr_input_chunked_within_its_planes_is_planned_by_its_chunks(tmp_path):
    """An OME-Zarr input was planned as if read in whole planes: a 1 GiB store of 16x4096x4096 (chunks
    16x256x256) to convolve needed 2244MiB, more than twice its size.  Each brick reads the chunks it
    touches, so the plan counts a band of chunk rows (:func:`fijidecon.cli_big._band`): that store needs
    431MiB now and added 282-331 MiB there.  Here a 256 MiB store: the smallest budget named is under the
    whole-plane one, and the run at it stays within it (+10 %)."""
    import dask.array as da

    from fijidecon import cli_big

    rng = np.random.default_rng(0)
    tile = da.from_array(rng.poisson(100, (16, 2048, 256)).astype(np.float32), chunks=(16, 256, 256))
    write_image(tmp_path / "in.ome.zarr", da.concatenate([tile] * 8, axis=2), CAL)
    write_image(tmp_path / "psf.tif", gaussian((9, 15, 15), (1.5, 2.0, 2.0)), CAL)
    args = ["deconvolve", "convolve", tmp_path / "in.ome.zarr", tmp_path / "psf.tif"]
    r = _cli_child(*args, "-o", tmp_path / "a.ome.zarr", "--memory-limit", "10MB")
    assert r.returncode == 2 and "with their input chunks do not fit" in r.stderr, r.stderr
    named = int(re.search(r"give --memory-limit (\d+)MiB or more", r.stderr).group(1)) * 2**20
    vol, kernel, halo = (16, 2048, 2048), (9, 15, 15), cli_big._bricks_halo((9, 15, 15), "convolve")
    planes = cli_big._smallest_limit("convolve", vol, kernel, halo, {}, 2**20, 1, False)  # as whole planes
    assert named < 0.6 * planes, (named / 2**20, planes / 2**20)
    r = _cli_child(*args, "-o", tmp_path / "b.ome.zarr", "--memory-limit", str(named))
    assert r.returncode == 0, r.stderr
    print(f"named {named / 2**20:.0f} MiB (whole planes: {planes / 2**20:.0f}), added "
          f"{_increment(r.stderr) / 2**20:.0f} MiB")
    assert _increment(r.stderr) <= 1.1 * named
    got, _ = read_image(tmp_path / "b.ome.zarr")
    want = convolve(read_image(tmp_path / "in.ome.zarr")[0][:, :300, :300], read_image(tmp_path / "psf.tif")[0])
    np.testing.assert_allclose(np.asarray(got[:, :200, :200]), want[:, :200, :200], rtol=1e-4, atol=1e-3)


def _hyperstack(d):
    rng = np.random.default_rng(3)
    img = rng.poisson(40, (2, 2, 16, 80, 72)).astype(np.float32)  # T, C, Z, Y, X
    cal = Calibration.make("TCZYX", unit="micron", Z=0.3, Y=0.1, X=0.1)
    write_image(d / "hs.tif", img, cal)
    write_image(d / "psf.tif", gaussian((9, 15, 15), (4.0, 2.0, 2.0)), cal.with_axes("ZYX"))
    return img


def test_workers_local_cluster_on_a_hyperstack_equals_the_in_memory_run(tmp_path):
    img = _hyperstack(tmp_path)
    r = subprocess.run([sys.executable, "-m", "fijidecon.cli", "deconvolve", "richardson-lucy", tmp_path / "hs.tif",
                        tmp_path / "psf.tif", "-o", tmp_path / "out.tif", "--iterations", "4", "--workers", "2"],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert "local cluster of 2 worker processes" in r.stderr and "4/4" in r.stderr  # 4 volumes = 4 bricks done
    assert "Traceback" not in r.stderr and "distributed." not in r.stderr  # no worker log lines (heartbeats …)
    got, cal = read_image(tmp_path / "out.tif")
    psf, _ = read_image(tmp_path / "psf.tif")
    want = richardson_lucy(img, psf, 4, axes="TCZYX", voxel_size=(0.3, 0.1, 0.1),
                           psf_voxel_size=(0.3, 0.1, 0.1), memory_limit=False).image
    order = [cal.axes.index(a) for a in "TCZYX"]
    np.testing.assert_allclose(np.transpose(got, order), want, rtol=1e-4, atol=1e-3)
    meta = json.loads((tmp_path / "out.tif.json").read_text())
    assert meta["memory"]["scheduler"] == "local cluster of 2 worker processes"


def test_workers_with_a_budget_no_brick_fits_are_refused_before_the_cluster_starts(tmp_path):
    """A fresh batch user: the one-line refusal of a too small --memory-limit with --workers 2 came after the
    local cluster had started (7-9 s; 1.8 s without --workers); no worker process is started now."""
    import time

    _hyperstack(tmp_path)
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "fijidecon.cli", "deconvolve", "richardson-lucy", tmp_path / "hs.tif",
                        tmp_path / "psf.tif", "-o", tmp_path / "out.tif", "--iterations", "2", "--workers", "2",
                        "--memory-limit", "2MB"], capture_output=True, text=True, timeout=180)
    assert r.returncode == 2 and r.stderr.startswith("Error: --memory-limit: ") and "too small" in r.stderr, r.stderr
    assert "local cluster" not in r.stderr and time.perf_counter() - t < 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hs.tif", "psf.tif"]


def test_an_existing_cluster_equals_the_in_memory_run_and_its_budget_is_recorded(tmp_path):
    """--scheduler against a running distributed cluster (one worker of 600 MB): the result is the
    threaded run's, and the sidecar's budget is the one planned for each worker (it recorded this
    machine's default budget, 17 GB, for a fresh user's 4 GB worker)."""
    distributed = pytest.importorskip("distributed")
    img = _hyperstack(tmp_path)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, memory_limit="600MB",
                                  dashboard_address=None) as cluster:
        r = subprocess.run([sys.executable, "-m", "fijidecon.cli", "deconvolve", "richardson-lucy",
                            tmp_path / "hs.tif", tmp_path / "psf.tif", "-o", tmp_path / "s.ome.zarr", "--iterations",
                            "3", "--scheduler", cluster.scheduler_address], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    memory = json.loads((tmp_path / "s.ome.zarr.json").read_text())["memory"]
    # 0.7 of the worker's 600 MB (cli_big.WORKER_FRACTION), not this machine's default budget
    assert memory["memory_limit_bytes"] == 420_000_000 and memory["memory_limit_of"] == "each worker", memory
    got, cal = read_image(tmp_path / "s.ome.zarr")
    psf, _ = read_image(tmp_path / "psf.tif")
    want = richardson_lucy(img, psf, 3, axes="TCZYX", voxel_size=(0.3, 0.1, 0.1),
                           psf_voxel_size=(0.3, 0.1, 0.1), memory_limit=False).image
    np.testing.assert_allclose(np.transpose(got, [cal.axes.index(a) for a in "TCZYX"]), want, rtol=1e-4, atol=1e-3)


def _run_until(big, out, extra, pattern):
    """Start the CLI's RL on the big file and read its stderr until ``pattern`` shows: (process, seen)."""
    p = subprocess.Popen([sys.executable, "-m", "fijidecon.cli", "deconvolve", "richardson-lucy", big / "big.tif",
                          big / "psf.tif", "-o", out, *extra], stderr=subprocess.PIPE, text=True, bufsize=1)
    seen = ""
    t0 = time.time()
    while not re.search(pattern, seen) and time.time() - t0 < 120:
        seen += p.stderr.read(1)
    return p, seen


def test_ctrl_c_mid_run_exits_130_and_leaves_no_output(big):
    out = big / "cancelled.ome.zarr"
    p, seen = _run_until(big, out, ["--iterations", "10", "--memory-limit", str(BUDGET)], "brick/s")  # the bar is up
    t0 = time.time()  # mid-run: a brick is on disk (the bar of a piped stderr is drawn only every 30 s)
    while not list(big.glob(".cancelled.ome.zarr.partial-*/s0/*/*/*")) and p.poll() is None and time.time() - t0 < 120:
        time.sleep(0.05)
    assert p.poll() is None, seen
    p.send_signal(signal.SIGINT)
    rest = p.stderr.read()
    assert p.wait(timeout=120) == 130, seen + rest
    assert "Interrupted." in rest
    left = [f for f in os.listdir(big) if f.startswith(("cancelled", ".cancelled"))]
    assert left == []  # no OME-Zarr, no sidecar, no partial folder


def test_ctrl_c_with_workers_is_one_line_and_ends_the_workers(big):
    """--workers 2 interrupted: the local cluster's teardown printed about 80 lines of tracebacks (the
    workers' KeyboardInterrupt, the client's AllExit) before 'Interrupted.'; now none, and no worker is left."""
    import psutil

    out = big / "cancelled_w.ome.zarr"
    p, seen = _run_until(big, out, ["--iterations", "40", "--workers", "2"], "brick/s")  # the cluster computes
    children = psutil.Process(p.pid).children(recursive=True)
    assert p.poll() is None and children, seen
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    rest = p.stderr.read()
    assert p.wait(timeout=120) == -signal.SIGINT, seen + rest  # ends by Ctrl-C itself: a shell sees 130
    assert "Interrupted." in rest and "Traceback" not in rest and "AllExit" not in rest, rest
    time.sleep(1.0)
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
    assert [f for f in os.listdir(big) if f.startswith(("cancelled_w", ".cancelled_w"))] == []


@pytest.mark.parametrize("args,message", [
    (["--workers", "0"], "--workers"),
    (["--workers", "two"], "--workers"),
    (["--workers", "100000"], "--workers: 100000 worker processes for"),
    (["--memory-limit", "12parsec"], "memory_limit"),
    (["--memory-limit", "-1GB"], "memory_limit"),
    (["--scheduler", "foo://nowhere:8786"], "scheduler: cannot connect"),
    (["--scheduler", "tcp://127.0.0.1:8786", "--workers", "2"], "--workers, --scheduler"),
])
def test_bad_options_are_one_line_errors_before_any_computation(tmp_path, capsys, args, message):
    _hyperstack(tmp_path)
    out = tmp_path / "out.ome.zarr"
    rc = main(["deconvolve", "richardson-lucy", str(tmp_path / "hs.tif"), str(tmp_path / "psf.tif"), "-o", str(out),
               *args])
    err = capsys.readouterr().err.strip().splitlines()
    named = message if "_" not in message else "--" + message.replace("_", "-")  # the option typed, CLI-style
    assert rc == 2 and len(err) == 1 and err[0].startswith("Error:") and named in err[0], err
    assert not out.exists() and not (tmp_path / "out.ome.zarr.json").exists()


def test_stop_auto_in_a_lazy_run_chooses_on_each_volume_s_central_brick(tmp_path, capsys):
    """--stop auto was refused in lazy runs (any OME-Zarr output): each (T, C) volume's count is now
    chosen on its central brick, every brick of it run to that count; the sidecar keeps the choices."""
    img = _hyperstack(tmp_path)
    out = tmp_path / "out.ome.zarr"
    rc = main(["deconvolve", "richardson-lucy", str(tmp_path / "hs.tif"), str(tmp_path / "psf.tif"), "-o", str(out),
               "--stop", "auto", "--iterations", "40", "--background", "20", "--gain", "1", "--offset", "0", "-q"])
    assert rc == 0, capsys.readouterr().err
    rec = json.loads((tmp_path / "out.ome.zarr.json").read_text())["result"]
    auto = rec["auto_stop"]
    assert rec["stop_reason"] == "auto" and len(auto["volumes"]) == 4
    assert auto["on"] == "whole volume (not split)"  # each 16x80x72 volume fits: one brick each
    counts = [v["iteration"] for v in auto["volumes"]]
    assert all(1 <= k <= 40 for k in counts) and rec["iterations"] == max(counts) == auto["iteration"]
    assert read_image(out)[0].shape == img.shape


@pytest.mark.parametrize("lazy", [False, True])
def test_a_bad_psf_among_several_is_named_by_its_index(tmp_path, capsys, lazy):
    """One PSF per channel, the second all zero: the error names psf[1], in memory and lazy alike."""
    _hyperstack(tmp_path)
    write_image(tmp_path / "zero.tif", np.zeros((9, 15, 15), np.float32), CAL)
    out = tmp_path / "out.ome.zarr"
    rc = main(["deconvolve", "richardson-lucy", str(tmp_path / "hs.tif"), str(tmp_path / "psf.tif"),
               str(tmp_path / "zero.tif"), "-o", str(out), *(["--memory-limit", "20MB"] if lazy else [])])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == ["Error: psf[1]: the PSF is all zero or negative (max 0); it must have a positive sum"]
    assert not out.exists()


def test_in_memory_bricked_run_shows_a_bar_of_bricks(tmp_path):
    """Iterative Deconvolve 3D (improved) has no Dask path: over the budget it is bricked in memory."""
    rng = np.random.default_rng(5)
    write_image(tmp_path / "img.tif", rng.random((24, 160, 160), dtype=np.float32) + 1, CAL)
    write_image(tmp_path / "psf.tif", gaussian((9, 15, 15), (4.0, 2.0, 2.0)), CAL)
    r = subprocess.run([sys.executable, "-m", "fijidecon.cli", "deconvolve", "iterative3d", tmp_path / "img.tif",
                        tmp_path / "psf.tif", "-o", tmp_path / "out.tif", "--mode", "improved", "--max-iterations",
                        "3", "--memory-limit", "25MB"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "bricked" in r.stderr
    meta = json.loads((tmp_path / "out.tif.json").read_text())
    assert meta["memory"]["estimate_whole_bytes"] > 25_000_000


def test_iterative3d_bricked_run_reports_bricks_to_its_callback():
    from fijidecon.deconvolve import BrickFigures, iterative_deconvolve_3d

    rng = np.random.default_rng(5)
    img = rng.random((24, 160, 160), dtype=np.float32) + 1
    seen = []
    iterative_deconvolve_3d(img, gaussian((9, 15, 15), (4.0, 2.0, 2.0)), compat=False, max_iterations=2,
                            memory_limit="25MB", callback=lambda *a, **k: seen.append(a[0]))
    assert any(isinstance(f, BrickFigures) for f in seen)


def test_readme_big_data_example_runs_as_written(tmp_path, monkeypatch):
    """The README's "Big data" Python block, on a small T, C hyperstack: lazy in, lazy out, OME-Zarr written,
    equal to the in-memory run."""
    import re as _re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    (block,) = [b for b in _re.findall(r"```python\n(.*?)```", readme, _re.S)
                if b.startswith("from fijidecon.lazy_io import read_lazy, write_ome_zarr")]
    rng = np.random.default_rng(4)
    img = rng.poisson(30, (2, 2, 12, 48, 40)).astype(np.float32)
    write_image(tmp_path / "timelapse.ome.tif", img, Calibration.make("TCZYX", unit="micron", Z=0.3, Y=0.1, X=0.1))
    psf = gaussian((7, 9, 9), (3.0, 2.0, 2.0))
    monkeypatch.chdir(tmp_path)
    ns = {"psf": psf}
    exec(compile(block, "README", "exec"), ns)
    got, cal = read_image(tmp_path / "result.ome.zarr")
    assert cal.axes == "TCZYX" and cal.unit == "micron"
    want = richardson_lucy(img, psf, 20, axes="TCZYX", memory_limit=False).image
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


def test_lazy_and_in_memory_runs_say_the_same_stop_reason(tmp_path, capsys):
    """--stop discrepancy that runs to --iterations: the lazy run said 'stopping rule' (sidecar
    stop_reason 'stop') where the in-memory run, with the identical result, said 'as asked'."""
    _hyperstack(tmp_path)
    said = {}
    for name in ("mem.tif", "lazy.ome.zarr"):
        assert main(["deconvolve", "richardson-lucy", str(tmp_path / "hs.tif"), str(tmp_path / "psf.tif"), "-o",
                     str(tmp_path / name), "--stop", "discrepancy", "--iterations", "1"]) == 0
        line = capsys.readouterr().err.strip().splitlines()[-1]
        said[name] = (line.split("float32")[1].split(" in ")[0], json.loads((tmp_path / f"{name}.json").read_text())["result"])
    assert said["mem.tif"][0] == said["lazy.ome.zarr"][0], said
    assert said["mem.tif"][1]["stop_reason"] == said["lazy.ome.zarr"][1]["stop_reason"], said


@pytest.mark.parametrize("out", ["out.tif", "out.ome.zarr"])
def test_a_background_above_the_data_is_refused_before_iterating(tmp_path, capsys, out):
    """--background 500 on data of maximum 153 ran and gave a result of maximum 0.0013, exit 0."""
    _hyperstack(tmp_path)
    rc = main(["deconvolve", "richardson-lucy", str(tmp_path / "hs.tif"), str(tmp_path / "psf.tif"), "-o",
               str(tmp_path / out), "--background", "1000"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("Error: --background: 1000 is at or above the image's maximum of volume t=0, c=0 ("), err
    assert not (tmp_path / out).exists()


def test_a_memory_limit_above_what_the_machine_has_is_a_warning(tmp_path, capsys):
    """--memory-limit 1TiB was taken at its word: no comparison with the memory there is."""
    _hyperstack(tmp_path)
    assert main(["deconvolve", "convolve", str(tmp_path / "hs.tif"), str(tmp_path / "psf.tif"), "-o",
                 str(tmp_path / "o.tif"), "--memory-limit", "1TiB"]) == 0
    err = capsys.readouterr().err
    assert "Warning: --memory-limit: 1 TiB is more than this process can allocate now (" in err
    assert "RuntimeWarning" not in err


def test_snapshots_in_a_lazy_run_are_dropped_as_the_warning_says(tmp_path, capsys):
    """The warning said 'only the final result is' written, then the run stopped with an error."""
    _hyperstack(tmp_path)
    out = tmp_path / "s.ome.zarr"
    assert main(["deconvolve", "richardson-lucy", str(tmp_path / "hs.tif"), str(tmp_path / "psf.tif"), "-o", str(out),
                 "--iterations", "2", "--snapshot-every", "1"]) == 0
    err = capsys.readouterr().err
    assert "snapshots are not written in a lazy run" in err and "Error" not in err
    assert out.exists() and not list(tmp_path.glob("s_iter*"))


def test_a_3d_psf_for_a_2d_image_is_the_same_message_lazy_or_not(tmp_path, capsys):
    """To OME-Zarr the planner said 'psf_shape: expected 2 positive whole numbers, got (9, 15, 15)'."""
    write_image(tmp_path / "img2d.tif", np.ones((40, 48), np.float32))
    write_image(tmp_path / "psf.tif", gaussian((9, 15, 15), (2.0, 2.0, 2.0)))
    lines = []
    for out in ("o.tif", "o.ome.zarr"):
        assert main(["deconvolve", "richardson-lucy", str(tmp_path / "img2d.tif"), str(tmp_path / "psf.tif"),
                     "-o", str(tmp_path / out)]) == 2
        lines.append(capsys.readouterr().err.strip().splitlines()[-1])
    assert lines[0] == lines[1] and lines[0].startswith("Error: psf: 3D PSF (shape (9, 15, 15)) for 2D volumes")


def test_a_budget_too_small_for_any_brick_names_the_budget_that_fits(tmp_path, capsys):
    """The refusal said "raise --memory-limit" with no figure: it names the smallest budget
    with a plan (and a smaller PSF as the other remedy), and that budget runs."""
    rng = np.random.default_rng(3)
    write_image(tmp_path / "img.tif", rng.random((40, 96, 96), dtype=np.float32) + 1, CAL)
    write_image(tmp_path / "psf.tif", gaussian((25, 31, 31), (6.0, 4.0, 4.0)), CAL)
    args = ["deconvolve", "richardson-lucy", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"), "--iterations",
            "2", "-o"]
    assert main([*args, str(tmp_path / "a.tif"), "--memory-limit", "2MB"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "or crop the PSF" in err[0], err
    assert re.search(r"their halo of \d+x\d+x\d+ set by the PSF's size\) with their slabs of whole planes do not fit; ",
                     err[0]), err
    need = re.search(r"give --memory-limit (\d+)MiB or more \(this runs it, with a 5 % margin", err[0])
    assert need, err
    assert main([*args, str(tmp_path / "b.tif"), "--memory-limit", f"{need[1]}MiB"]) == 0
    # the budget named runs it whole, in memory: its bricks, each holding most of the volume in its halo, need
    # more once their overlapped inputs are counted (they were not, and the named budget ran 16 costly bricks)
    side = json.loads((tmp_path / "b.tif.json").read_text())
    assert not any("brick" in n for n in side["notes"]) and "brick_core" not in side.get("memory", {}), side["notes"]
    assert main([*args, str(tmp_path / "c.tif"), "--memory-limit", f"{int(need[1]) // 2}MiB"]) == 2
    capsys.readouterr()
    # an OME-Zarr output is lazy whatever the budget, so the in-memory budget does not run it: refused, naming
    # its own smallest budget; that budget's bricks cost many times the volume's work: said, with the budget
    # that runs it as one brick, which does so without the warning (the fault it guards, a budget that still
    # split, was under --workers: test_one_brick_budget_counts_the_bricks_computed_at_once)
    assert main([*args, str(tmp_path / "z.ome.zarr"), "--memory-limit", f"{need[1]}MiB"]) == 2
    lazy = re.search(r"give --memory-limit (\d+)MiB or more", capsys.readouterr().err)
    assert lazy and int(lazy[1]) > int(need[1]), "no advice"
    assert main([*args, str(tmp_path / "z.ome.zarr"), "--memory-limit", f"{lazy[1]}MiB"]) == 0
    one = re.search(r"richardson-lucy in \d+ bricks computes \d+x .*--memory-limit (\d+)MiB runs it whole",
                    capsys.readouterr().err)
    assert one, "no warning about the bricks' cost"
    assert main([*args, str(tmp_path / "z1.ome.zarr"), "--memory-limit", f"{one[1]}MiB"]) == 0
    err = capsys.readouterr().err
    assert "bricks computes" not in err and "not split" in err, err


def test_one_brick_budget_counts_the_bricks_computed_at_once():
    """With --workers 2 the budget is shared by two bricks at once: the advice said a budget (from the
    in-memory rule) under which the run still made 16 bricks."""
    from fijidecon.cli_big import _best_plan, _one_brick_limit

    vol, kernel, halo, opts = (40, 96, 96), (25, 31, 31), (25, 31, 31), {"iterations": 2}
    one = {c: _one_brick_limit("richardson-lucy", vol, kernel, halo, opts, 2**20, c, False) for c in (1, 2)}
    assert one[2] > one[1]
    for c, b in one.items():
        assert tuple(_best_plan("richardson-lucy", vol, kernel, halo, opts, b, c, False)[1]) == vol
        less = _best_plan("richardson-lucy", vol, kernel, halo, opts, b - 2**21, c, False)
        assert less is None or less[1] != vol


def test_with_a_scheduler_the_refusal_names_the_budget_given_and_one_that_runs():
    """A fresh user with --scheduler: 'give --memory-limit 159MiB or more' for the 159MiB given (the workers'
    current memory was taken off the budget, then left out of the advice; with more held: a negative budget)."""
    import re

    from fijidecon.cli_big import plan_bricks

    held = 200 * 2 ** 20
    with pytest.raises(MemoryError) as e:
        plan_bricks("richardson-lucy", (40, 402, 404), (15, 31, 31), {"iterations": 2}, 6 * 2 ** 20, 1, True,
                    held=held)
    msg = str(e.value)
    assert msg.startswith("memory_limit: 206 MiB per worker, less the 200 MiB the scheduler's workers hold now, is "
                          "too small"), msg
    need = int(re.search(r"give --memory-limit (\d+)MiB or more", msg).group(1)) * 2 ** 20
    plan_bricks("richardson-lucy", (40, 402, 404), (15, 31, 31), {"iterations": 2}, need - held, 1, True)  # runs


@pytest.mark.parametrize("workers, held", [(2, 0), (1, 150 * 2**20)])
def test_resume_advice_counts_the_workers_and_what_the_scheduler_holds(monkeypatch, tmp_path, workers, held):
    """--resume with --workers 2: the refusal advised the budget the partial began with (1908MiB, one brick
    at a time), under which two workers' bricks still did not fit (4GB needed); with --scheduler it left out
    what the workers hold."""
    import click

    from fijidecon import cli_big, lazy_io
    from fijidecon.commands import all_commands

    cmd = next(c for c in all_commands() if c.id == "richardson-lucy")
    vol, kernel, opts = (40, 402, 404), (15, 31, 31), {"iterations": 2}
    halo = (15, 31, 31)
    began = 400 * 2**20  # one brick of 40x201x202 at a time
    core = tuple(cli_big._best_plan("richardson-lucy", vol, kernel, halo, opts, began, 1, True)[1])
    assert core != vol
    monkeypatch.setattr(lazy_io, "resume_info", lambda out: {"key": "k", "core": list(core), "halo": list(halo),
                                                             "budget": began})
    budget = cli_big.room_for("richardson-lucy", vol, kernel, core, halo, opts, began, 1, True) and began
    with pytest.raises(click.ClickException) as e:  # the same budget, now shared by two workers / less held
        cli_big._prior_plan(cmd, {}, [], tmp_path / "r.ome.zarr", "k",
                            (vol, kernel, opts, budget - held, workers, True, held))
    msg = e.value.format_message()
    need = int(re.search(r"give --memory-limit (\d+)MiB or more to go on", msg).group(1)) * 2**20
    assert need > began, msg
    assert cli_big.room_for("richardson-lucy", vol, kernel, core, halo, opts, need - held, workers, True) is not None
    assert ("workers" in msg) == (workers > 1 or held > 0), msg
