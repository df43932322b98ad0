"""Resumable OME-Zarr outputs: a write that does not finish keeps its chunks, and the same
write (same key) goes on from them; the CLI's ``--resume`` after a real SIGKILL gives the
same bytes as an uninterrupted run."""

import json
import logging
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr")

from fijidecon import lazy_io  # noqa: E402
from fijidecon.calibration import Calibration  # noqa: E402
from fijidecon.cli import main  # noqa: E402
from fijidecon.io import write_image  # noqa: E402
from fijidecon.psf import gaussian  # noqa: E402

CHUNKS = (2, 16, 16)
TRUTH = np.arange(4 * 48 * 48, dtype=np.float32).reshape(4, 48, 48)  # 2x3x3 = 18 chunks


class Boom(Exception):
    pass


def _lazy(fail_after=None, calls=None):
    """TRUTH * 2, computed block by block; raises after ``fail_after`` blocks (one thread)."""
    calls = calls if calls is not None else []

    def f(block):
        if block.size == 0:  # dask's meta probe
            return block * 2
        if fail_after is not None and len(calls) >= fail_after:
            raise Boom("the run was stopped")
        calls.append(1)
        return block * 2

    return da.from_array(TRUTH, chunks=CHUNKS).map_blocks(f, dtype=np.float32), calls


def _chunk_files(store):
    return sorted(p for p in (store / "s0").rglob("*") if p.is_file() and not p.name.startswith("."))


def _interrupted(out, key="k1", fail_after=5):
    import dask

    with dask.config.set(scheduler="synchronous"), pytest.raises(Boom):
        lazy_io.write_ome_zarr(out, _lazy(fail_after)[0], chunks=CHUNKS, resume=key)
    tmp = lazy_io.resumable_path(out)
    assert not out.exists() and tmp.is_dir() and 1 <= len(_chunk_files(tmp)) <= fail_after
    return tmp, len(_chunk_files(tmp))


def test_interrupted_write_is_kept_and_resumed(tmp_path, caplog):
    out = tmp_path / "r.ome.zarr"
    tmp, n = _interrupted(out)
    assert not os.path.exists(f"{tmp}.lock")  # the lock goes with the writer
    report, calls = {}, []
    with caplog.at_level(logging.INFO, logger="fijidecon"):
        lazy_io.write_ome_zarr(out, _lazy(calls=calls)[0], chunks=CHUNKS, resume="k1", report=report)
    assert report == {"discarded": None, "chunks": 18, "kept": n, "bricks_to_compute": 18 - n}
    assert len(calls) == 18 - n  # only the missing chunks were computed
    np.testing.assert_array_equal(zarr.open_group(str(out), mode="r")["s0"][:], TRUTH * 2)
    assert lazy_io.RESUME_ATTR not in zarr.open_group(str(out), mode="r").attrs
    assert not tmp.exists() and sorted(os.listdir(tmp_path)) == ["r.ome.zarr"]
    assert any(f"resumed r.ome.zarr: {n} of 18 chunks kept" in r.getMessage() for r in caplog.records)


def test_chunk_cut_short_by_a_kill_is_computed_again(tmp_path):
    out = tmp_path / "r.ome.zarr"
    tmp, n = _interrupted(out)
    cut = _chunk_files(tmp)[0]
    cut.write_bytes(cut.read_bytes()[:20])  # what a SIGKILL in the middle of a chunk write leaves
    report = {}
    lazy_io.write_ome_zarr(out, _lazy()[0], chunks=CHUNKS, resume="k1", report=report)
    assert report["kept"] == n - 1
    np.testing.assert_array_equal(zarr.open_group(str(out), mode="r")["s0"][:], TRUTH * 2)


def test_partial_of_other_parameters_is_discarded(tmp_path, caplog):
    out = tmp_path / "r.ome.zarr"
    _interrupted(out, key="k1")
    report = {}
    with caplog.at_level(logging.INFO, logger="fijidecon"):
        lazy_io.write_ome_zarr(out, _lazy()[0] + 1, chunks=CHUNKS, resume="k2", report=report)
    assert report["kept"] == 0 and "other inputs, parameters" in report["discarded"]
    np.testing.assert_array_equal(zarr.open_group(str(out), mode="r")["s0"][:], TRUTH * 2 + 1)
    assert any("was discarded" in r.getMessage() for r in caplog.records)


def test_complete_write_without_resume_removes_an_old_partial(tmp_path, caplog):
    out = tmp_path / "r.ome.zarr"
    tmp, _ = _interrupted(out)
    with caplog.at_level(logging.INFO, logger="fijidecon"):
        lazy_io.write_ome_zarr(out, _lazy()[0], chunks=CHUNKS)
    assert not tmp.exists() and sorted(os.listdir(tmp_path)) == ["r.ome.zarr"]
    assert any("removed the resumable partial" in r.getMessage() for r in caplog.records)


def test_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "r.ome.zarr"
    lock = f"{lazy_io.resumable_path(out)}.lock"
    fd = os.open(lock, os.O_CREAT | os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(FileExistsError, match="output: another run is writing"):
            lazy_io.write_ome_zarr(out, _lazy()[0], chunks=CHUNKS, resume="k1")
        # a write without resume (a fresh user's run B with --overwrite) is refused too, before computing
        for overwrite in (False, True):
            with pytest.raises(FileExistsError, match="output: another run is writing"):
                lazy_io.write_ome_zarr(out, _lazy()[0], chunks=CHUNKS, overwrite=overwrite)
    finally:
        os.close(fd)
    assert not out.exists()


def test_resume_is_for_ome_zarr_only(tmp_path, capsys):
    with pytest.raises(ValueError, match="resume: only an OME-Zarr output"):
        lazy_io.write_big(tmp_path / "r.tif", _lazy()[0], resume="k1")
    img, psf = tmp_path / "img.tif", tmp_path / "psf.tif"
    cal = Calibration.make("ZYX", unit="micron", Z=0.3, Y=0.1, X=0.1)
    write_image(img, np.ones((8, 32, 32), np.float32), cal)
    write_image(psf, gaussian((5, 7, 7), (1.0, 1.0, 1.0)), cal)
    assert main(["deconvolve", "richardson-lucy", str(img), str(psf), "-o", str(tmp_path / "o.tif"), "--resume"]) == 2
    assert "--resume: only an OME-Zarr output (.zarr)" in capsys.readouterr().err
    assert not (tmp_path / "o.tif").exists()


def test_cli_resume_after_sigkill_gives_the_uninterrupted_result(tmp_path):
    """A real kill (-9) after the first brick is on disk; the same command with --resume keeps
    it, computes the rest, and the bytes equal a run that was never interrupted."""
    rng = np.random.default_rng(0)
    cal = Calibration.make("ZYX", unit="micron", Z=0.3, Y=0.1, X=0.1)
    img, psf = tmp_path / "img.tif", tmp_path / "psf.tif"
    write_image(img, rng.poisson(50, (32, 256, 256)).astype(np.uint16), cal)
    write_image(psf, gaussian((9, 15, 15), (2.0, 1.5, 1.5)), cal)
    base = [sys.executable, "-m", "fijidecon.cli", "deconvolve", "richardson-lucy", str(img), str(psf),
            "--iterations", "10", "--memory-limit", "120MB", "-q"]  # 4 bricks of 32x128x128
    whole = subprocess.run([a for a in base if a != "-q"] + ["-o", str(tmp_path / "whole.ome.zarr")],
                           capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr
    # stderr is a pipe (a batch log): the bar is drawn at the start and the end, not every 0.5 s
    assert 1 <= whole.stderr.count("brick/s") <= 3, whole.stderr
    out = tmp_path / "r.ome.zarr"
    tmp = lazy_io.resumable_path(out)
    p = subprocess.Popen(base + ["-o", str(out), "--resume"], stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    # two chunk files: the first is complete (one brick at a time); a kill during a chunk's write leaves it
    # cut short, and the resumed run computes it again (measured in CI: 0 kept after a kill at the first file)
    while not (tmp.is_dir() and len(_chunk_files(tmp)) >= 2) and p.poll() is None and time.monotonic() - t0 < 120:
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=60)
    assert p.returncode == -signal.SIGKILL and not out.exists() and 2 <= len(_chunk_files(tmp)) < 4
    kept = _chunk_files(tmp)

    def rerun(*change):
        args = list(base)
        for old, new in change:
            args[args.index(old)] = new
        return subprocess.run(args + ["-o", str(out), "--resume"], capture_output=True, text=True, timeout=300)

    # other parameters: refused before computing, the partial untouched (it was discarded with a note)
    other = rerun(("10", "11"))
    assert other.returncode == 2 and "--resume: the partial output .r.ome.zarr.resumable was made with other " \
        "inputs or parameters" in other.stderr, other.stderr
    assert "--iterations 10 then, 11 now" in other.stderr, other.stderr  # what differs, named
    # its bricks no longer fit: refused, naming the budget it began with and the least budget its bricks fit
    small = rerun(("120MB", "20MB"))
    assert small.returncode == 2 and "which do not fit a budget of" in small.stderr, small.stderr
    assert "(it began with 114 MiB); give --memory-limit 102MiB or more" in small.stderr, small.stderr
    assert _chunk_files(tmp) == kept and not out.exists()
    # a larger budget (it would run whole: one brick) goes on with the partial's 4 bricks, and keeps its chunks
    again = rerun(("120MB", "400MB"))
    assert again.returncode == 0, again.stderr
    rec = json.loads((tmp_path / "r.ome.zarr.json").read_text())
    assert rec["resume"]["kept"] >= 1 and rec["resume"]["chunks"] == 4
    assert any("chunks kept from the earlier run" in n for n in rec["notes"])
    a = zarr.open_group(str(out), mode="r")["s0"][:]
    b = zarr.open_group(str(tmp_path / "whole.ome.zarr"), mode="r")["s0"][:]
    np.testing.assert_array_equal(a, b)
    assert not tmp.exists()


def test_a_sidecar_that_fails_puts_the_complete_output_back_as_the_partial(tmp_path):
    """The image was in place, then Ctrl-C (or a full disk) while writing its sidecar: the image
    was removed with all its chunks; now it is the resumable partial again, and the same write
    goes on from every chunk (nothing computed)."""
    out = tmp_path / "r.ome.zarr"
    lazy_io.KEPT.clear()

    def stop(_seconds):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lazy_io.write_big_and_sidecar(out, _lazy()[0], None, stop, chunks=CHUNKS, resume="k1",
                                      resume_info={"key": "k0"})
    tmp = lazy_io.resumable_path(out)
    assert not out.exists() and len(_chunk_files(tmp)) == 18 and lazy_io.KEPT == [tmp]
    assert lazy_io.resume_info(out) == {"key": "k0"}
    report, (arr, calls) = {}, _lazy()
    lazy_io.write_big_and_sidecar(out, arr, None, {"ok": 1}, chunks=CHUNKS, resume="k1", report=report)
    assert report["kept"] == 18 and calls == [] and not tmp.exists()
    np.testing.assert_array_equal(zarr.open_group(str(out), mode="r")["s0"][:], TRUTH * 2)
    assert lazy_io.RESUME_ATTR not in zarr.open_group(str(out), mode="r").attrs


def test_an_unreadable_partial_is_set_aside_not_removed(tmp_path):
    out = tmp_path / "r.ome.zarr"
    tmp, n = _interrupted(out)
    (tmp / ".zgroup").write_text("{not json")
    with pytest.raises(OSError, match=r"^output: the partial output .* cannot be read"):
        lazy_io.resume_info(out)
    report = {}
    lazy_io.write_ome_zarr(out, _lazy()[0], chunks=CHUNKS, resume="k1", report=report)
    assert "cannot be read" in report["discarded"] and "it is kept as" in report["discarded"]
    aside = [p for p in tmp_path.iterdir() if ".unreadable-" in p.name]
    assert len(aside) == 1 and len(_chunk_files(aside[0])) == n


def test_a_lock_busy_for_a_moment_is_waited_for(tmp_path):
    """Another run's probe of the lock (``_held``) holds it for microseconds: a writer starting
    then was refused as if a run were writing."""
    import threading

    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "r.ome.zarr"
    lock = lazy_io.Path(f"{lazy_io.resumable_path(out)}.lock")
    fd = os.open(lock, os.O_CREAT | os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    threading.Timer(0.08, lambda: os.close(fd)).start()
    mine = lazy_io._lock_file(lock, out)
    try:
        assert os.fstat(mine).st_ino == os.stat(lock).st_ino
    finally:
        os.close(mine)


def test_the_kept_message_names_the_cause_and_the_hint_is_for_this_run_only(tmp_path, capsys):
    import errno

    out = tmp_path / "r.ome.zarr"
    lazy_io.KEPT.clear()

    def denied(block):
        if block.size:
            raise PermissionError(errno.EACCES, "Permission denied")
        return block

    with pytest.raises(OSError) as e:
        lazy_io.write_ome_zarr(out, da.from_array(TRUTH, chunks=CHUNKS).map_blocks(denied, dtype=np.float32),
                               chunks=CHUNKS, resume="k1")
    assert "fix the cause and run it again with --resume" in str(e.value) and "free some space" not in str(e.value)
    assert lazy_io.KEPT  # kept by this process: a later, unrelated CLI error must not name it
    assert main(["deconvolve", "richardson-lucy", "--no-such-option"]) == 2
    assert "partial output is kept" not in capsys.readouterr().err


def test_a_resume_run_stopped_in_its_set_up_says_nothing_was_kept(tmp_path, capsys, monkeypatch):
    """Ctrl-C while the central brick was computed (before any brick of the output existed) printed
    only 'Interrupted.', though the README promises that a --resume run that does not finish says
    what it keeps."""
    import importlib

    rl_module = importlib.import_module("fijidecon.deconvolve.richardson_lucy")
    rng = np.random.default_rng(0)
    cal = Calibration.make("ZYX", unit="micron", Z=0.3, Y=0.1, X=0.1)
    write_image(tmp_path / "img.tif", rng.poisson(50, (16, 96, 96)).astype(np.uint16), cal)
    write_image(tmp_path / "psf.tif", gaussian((9, 15, 15), (2.0, 1.5, 1.5)), cal)

    def ctrl_c(*a, **k):
        raise KeyboardInterrupt  # Biggs-Andrews decides its factors on the central brick first

    monkeypatch.setattr(rl_module, "_decide", ctrl_c)
    out = tmp_path / "r.ome.zarr"
    rc = main(["deconvolve", "richardson-lucy", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"),
               "--acceleration", "biggs-andrews", "--memory-limit", "100MB", "-q", "-o", str(out), "--resume"])
    err = capsys.readouterr().err
    assert rc == 130 and "Interrupted." in err, err
    assert ("Note: --resume: stopped before this run wrote a brick of the output (in its set-up); nothing was "
            "kept, and the next run starts from the beginning") in err, err
    assert not out.exists() and not lazy_io.resumable_path(out).exists()


def test_a_run_without_resume_says_it_will_not_use_an_earlier_partial(tmp_path, capsys):
    """A batch user re-ran a killed --resume job without --resume: it started from scratch without a
    word about the partial (hours of bricks) lying next to the output.  A warning now says so, before
    any computation; the partial is removed once the new output is written."""
    write_image(tmp_path / "img.tif", np.random.default_rng(0).random((8, 32, 32), dtype=np.float32) + 1)
    write_image(tmp_path / "psf.tif", gaussian((3, 5, 5), (1.0, 1.0, 1.0)))
    out = tmp_path / "r.ome.zarr"
    partial = lazy_io.resumable_path(out)
    partial.mkdir()
    (partial / "zarr.json").write_text("{}")
    assert main(["deconvolve", "convolve", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert (f"Warning: --resume: not given, so this run starts from the beginning; the partial output an earlier run "
            f"kept ({partial.name}) is removed once this one is written") in err, err
    assert out.exists() and not partial.exists()
    side = json.loads((tmp_path / "r.ome.zarr.json").read_text())
    assert any(w.startswith("--resume: not given") for w in side["warnings"])
