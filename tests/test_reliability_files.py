"""Reliability cases 1-6 and 16 (``shared/cases/reliability``): bad files, outputs that cannot
be written, outputs that are inputs, interrupted overwrites, signals.

Every test runs the real CLI in a fresh process (``python -m fijidecon.cli``) on real files:
corrupt, garbage, bit-flipped, truncated and empty inputs give one line naming the file and
exit status 2 (no traceback, no tifffile log lines); a read-only folder and a full disk (a
64 KiB tmpfs, when ``mount`` is permitted) give one line and leave nothing behind; an output
that is an input is refused; an image and its sidecar are replaced together or not at all;
Ctrl-C exits 130, SIGTERM 143, both without temporary files; a SIGKILLed run's temporary
files are removed by the next run.  Signals are real (``os.kill``); where a test needs one at
an exact point of the write, a small driver calls :func:`fijidecon.cli.main` and sends it
from a wrapper around that step.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from fijidecon.io import read_image

SHARED = Path(__file__).resolve().parents[2] / "shared"
REAL_TIFF = SHARED / "data" / "real" / "pyimagej_imagej_tiff_fixtures"


# ------------------------------------------------------------------------------ helpers

def _cli(*args, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fijidecon.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def _one_error_line(r: subprocess.CompletedProcess, *needles: str) -> str:
    """The run failed with exit 2 and exactly one stderr line ``Error: ...`` holding every needle."""
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """Small real inputs: a 16-slice float32 ImageJ stack, a uint16 plain stack, an OME-TIFF,
    a 3D and a 2D PSF."""
    d = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(11)
    img = (rng.random((16, 32, 32)) * 100 + 10).astype(np.float32)
    tifffile.imwrite(d / "stack.tif", img, imagej=True, resolution=(10, 10), metadata={"axes": "ZYX", "spacing": 0.25,
                                                                                       "unit": "micron"})
    tifffile.imwrite(d / "stack16.tif", (img * 100).astype(np.uint16))
    tifffile.imwrite(d / "stack.ome.tif", img[:8], ome=True, metadata={"axes": "ZYX"})
    psf = np.zeros((5, 7, 7), np.float32)
    psf[2, 3, 3] = 1.0
    psf[1:4, 2:5, 2:5] += 0.05
    cal = {"resolution": (10, 10), "metadata": {"axes": "ZYX", "spacing": 0.25, "unit": "micron"}}
    tifffile.imwrite(d / "psf.tif", psf, imagej=True, **cal)
    tifffile.imwrite(d / "psf2d.tif", psf[2], imagej=True, resolution=(10, 10), metadata={"unit": "micron"})
    return d


@pytest.fixture
def work(tmp_path, files) -> Path:
    for f in files.iterdir():
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


# ------------------------------------------------------------------------------ cases 1-3: bad files

@pytest.mark.parametrize("size_z, says", [(32, "OME series is missing 16 frames"),
                                           (4, "OME series expected 4 frames, got 16")])
@pytest.mark.parametrize("output", ["out.tif", "out.ome.zarr"])
def test_an_ome_header_the_pages_do_not_match_is_refused(work, size_z, says, output):
    """SizeZ 32 for 16 pages gave 16 zero planes (mean halved), SizeZ 4 dropped 12: both ran, exit 0."""
    import tifffile

    img = np.random.default_rng(4).random((16, 32, 32), dtype=np.float32)
    tifffile.imwrite(work / "ok.ome.tif", img, ome=True, metadata={"axes": "ZYX"})
    with tifffile.TiffFile(work / "ok.ome.tif") as t:
        xml = t.ome_metadata
    tifffile.imwrite(work / "lie.ome.tif", img, description=xml.replace('SizeZ="16"', f'SizeZ="{size_z}"'),
                     metadata=None)
    r = _cli("deconvolve", "convolve", "lie.ome.tif", "psf.tif", "-o", output, cwd=work)
    _one_error_line(r, "image: 'lie.ome.tif' is truncated or damaged: pages are missing or do not match its header",
                    says)
    assert not (work / output).exists()


def test_an_imagej_header_counting_fewer_images_than_pages_is_refused(work):
    """'images=10' over 16 pages: read as 10 planes, the other 6 dropped, exit 0."""
    raw = (work / "stack.tif").read_bytes()
    assert raw.count(b"images=16") == 1
    (work / "ij10.tif").write_bytes(raw.replace(b"images=16", b"images=10"))
    r = _cli("deconvolve", "convolve", "ij10.tif", "psf.tif", "-o", "out.tif", cwd=work)
    _one_error_line(r, "image: 'ij10.tif' is truncated or damaged: its ImageJ header says 10 images, the file "
                       "holds 16 pages")


def test_a_tiff_of_several_series_names_the_one_read(work):
    """A 4x4 thumbnail before the 16-plane stack: the thumbnail was deconvolved, without a word."""
    import tifffile

    with tifffile.TiffWriter(work / "two.tif") as tw:
        tw.write(np.ones((4, 4), np.float32))
        tw.write(np.ones((16, 32, 32), np.float32))
    r = _cli("info", "two.tif", cwd=work)
    assert r.returncode == 0
    assert ("Warning: image: two.tif holds 2 series of images; the first (4x4) is read, not the others (16x32x32); "
            "save the one to deconvolve on its own") in r.stderr.splitlines()


def test_case1_tiff_header_then_random_bytes(work):
    raw = (work / "stack.tif").read_bytes()
    bad = work / "bad.tif"
    bad.write_bytes(raw[:8] + np.random.default_rng(1).bytes(1024))
    r = _cli("deconvolve", "richardson-lucy", bad, "psf.tif", "-o", "out.tif", cwd=work)
    _one_error_line(r, "bad.tif")
    assert not (work / "out.tif").exists()


@pytest.mark.parametrize("name", ["empty.npy", "empty.tif"])
@pytest.mark.parametrize("role", ["image", "psf"])
def test_case2_zero_byte_files(work, name, role):
    (work / name).write_bytes(b"")
    args = (name, "psf.tif") if role == "image" else ("stack.tif", name)
    r = _cli("deconvolve", "richardson-lucy", *args, "-o", "out.tif", cwd=work)
    _one_error_line(r, name)
    assert not (work / "out.tif").exists()


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9])
@pytest.mark.parametrize("name", ["stack.tif", "stack16.tif", "stack.ome.tif"])
def test_case3_truncated_stack_is_refused_in_one_line(work, name, fraction):
    """A stack cut short was read as one plane (and deconvolved with a 2D PSF, exit 0);
    tifffile's own log lines ("ImageJ series metadata invalid or corrupted file") leaked."""
    raw = (work / name).read_bytes()
    cut = work / f"cut_{name}"
    cut.write_bytes(raw[:int(len(raw) * fraction)])
    r = _cli("deconvolve", "richardson-lucy", cut.name, "psf2d.tif", "-o", "out.tif", "--iterations", "2", cwd=work)
    line = _one_error_line(r, cut.name)
    assert "truncated" in line or "not a readable TIFF" in line, line
    assert "<tifffile" not in r.stderr  # tifffile's own log lines are not printed
    assert not (work / "out.tif").exists()
    r = _cli("info", cut.name, cwd=work)
    _one_error_line(r, cut.name)


_DRIVER = r'''
import os, sys
from fijidecon.cli import main

# each job: a CLI call whose stderr (fd 2, so also logging's last resort) goes to its own file
for line in open(sys.argv[1]):
    err_path, *argv = line.rstrip("\n").split("\t")
    sys.stderr.flush()
    saved = os.dup(2)
    fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, 2)
    try:
        rc = main(argv)
    except BaseException as exc:  # anything main lets out is a failure of the test
        import traceback
        traceback.print_exc()
        rc = 99
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(fd)
        os.close(saved)
    with open(err_path, "a") as f:
        f.write(f"\n#rc={rc}\n")
'''


def _flip_bits(raw: bytes, rng: np.random.Generator) -> bytes:
    """1 to 8 random bits flipped, half of the time in the first 512 bytes (header and IFDs)."""
    b = bytearray(raw)
    for _ in range(int(rng.integers(1, 9))):
        limit = min(len(b), 512) if rng.random() < 0.5 else len(b)
        i = int(rng.integers(0, limit))
        b[i] ^= 1 << int(rng.integers(0, 8))
    return bytes(b)


def test_case2_bit_flipped_tiffs_never_give_a_traceback(work, tmp_path):
    """240 seeded bit-flipped variants of four real TIFFs (three made here, one of the ImageJ
    fixtures in shared/data/real), read by ``info`` and deconvolved by ``convolve``: each is
    either read (exit 0, no error line) or refused with one line naming it (exit 2); never a
    traceback, never tifffile's log lines, never a temporary file left."""
    sources = [work / "stack.tif", work / "stack16.tif", work / "stack.ome.tif"]
    real = sorted(REAL_TIFF.glob("*.tif")) if REAL_TIFF.is_dir() else []
    small = [p for p in real if p.stat().st_size < 300_000]
    if small:
        sources.append(small[0])
    rng = np.random.default_rng(20261130)
    fuzz = tmp_path / "fuzz"
    fuzz.mkdir()
    jobs = []
    n_each = 240 // len(sources)
    for s in sources:
        raw = s.read_bytes()
        for k in range(n_each):
            name = f"flip_{s.stem.replace('.', '_')}_{k:03d}.tif"
            (fuzz / name).write_bytes(_flip_bits(raw, rng))
            jobs.append((name, ["info", str(fuzz / name)]))
            if k % 4 == 0 and s.parent == work:  # a quarter of our 3D stacks also through a command (lazy reader, then the in-memory one)
                out = fuzz / f"out_{k:03d}_{s.stem.replace('.', '_')}.tif"
                jobs.append((name, ["deconvolve", "convolve", str(fuzz / name), str(work / "psf.tif"), "-o",
                                    str(out), "-q"]))
    listing = tmp_path / "jobs.tsv"
    errs = []
    with listing.open("w") as f:
        for i, (name, argv) in enumerate(jobs):
            err = tmp_path / f"err_{i:04d}.txt"
            errs.append((name, argv, err))
            f.write("\t".join([str(err), *argv]) + "\n")
    driver = tmp_path / "driver.py"
    driver.write_text(_DRIVER)
    r = subprocess.run([sys.executable, str(driver), str(listing)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    refused = read = 0
    for name, argv, err in errs:
        text = err.read_text()
        body, _, rc_line = text.rpartition("#rc=")
        rc = int(rc_line.strip())
        lines = [ln for ln in body.strip().splitlines() if ln.strip()]
        assert "Traceback" not in body and "<tifffile" not in body, (argv, body)
        assert rc in (0, 2), (argv, rc, body)
        errors = [ln for ln in lines if ln.startswith("Error: ")]
        if rc == 2:
            refused += 1
            assert len(errors) == 1 and name in errors[0], (argv, body)
            assert all(ln.startswith(("Error: ", "Warning: ")) for ln in lines), (argv, body)
        else:
            read += 1
            assert not errors, (argv, body)
    print(f"bit-flipped: {len(errs)} CLI calls, {refused} refused in one line, {read} read")
    assert refused > 20 and read > 20, (refused, read)  # both kinds occur
    assert not [p for p in os.listdir(fuzz) if ".partial-" in p or p.endswith(".part.tif")]


# ------------------------------------------------------------------------------ case 4: unwritable outputs

def _mount_tmpfs(folder: Path, options: str) -> None:
    folder.mkdir(exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"mount -t tmpfs not permitted here: {r.stderr.strip()}")


@pytest.fixture
def mounted(tmp_path):
    points: list[Path] = []

    def mount(name: str, options: str) -> Path:
        folder = tmp_path / name
        _mount_tmpfs(folder, options)
        points.append(folder)
        return folder

    yield mount
    for p in points:
        subprocess.run(["umount", str(p)], capture_output=True)


def test_case4_read_only_folder(work, mounted):
    if os.geteuid() == 0:  # root writes through chmod 555: use a read-only file system
        folder = mounted("ro", "ro,size=64k")
    else:
        folder = work / "ro"
        folder.mkdir()
        folder.chmod(0o555)
    r = _cli("deconvolve", "richardson-lucy", "stack.tif", "psf.tif", "-o", folder / "out.tif", cwd=work)
    _one_error_line(r, "ro", "not writable")
    assert _listing(folder) == []


@pytest.mark.parametrize("shape,what", [((16, 32, 32), "out.tif"), ((4, 62, 62), "out.tif.json"),
                                        ((16, 64, 64), "out.ome.zarr")])
def test_case4_full_disk_leaves_nothing_that_looks_complete(work, mounted, shape, what):
    """A 64 KiB tmpfs: the image itself does not fit (16x32x32 float32), or it fits and its
    sidecar does not (4x62x62): one line naming the file that could not be written, and an
    empty folder (before: a complete-looking out.tif without its sidecar)."""
    tifffile.imwrite(work / "in.tif", np.random.default_rng(2).random(shape).astype(np.float32), imagej=True,
                     resolution=(10, 10), metadata={"axes": "ZYX", "spacing": 0.25, "unit": "micron"})
    full = mounted("full", "size=64k")
    out = "out.ome.zarr" if what.endswith(".zarr") else "out.tif"  # the OME-Zarr said "[Errno 28] …" alone
    r = _cli("deconvolve", "richardson-lucy", "in.tif", "psf.tif", "-o", full / out, "--iterations", "2", "-q",
             cwd=work)
    _one_error_line(r, f"{full / what}'", "disk is full", "nothing was written")
    assert _listing(full) == []


# ------------------------------------------------------------------ errors that came after the whole computation

@pytest.mark.parametrize("kind", ["long-name", "one-pixel-wide"])
def test_outputs_that_cannot_be_written_are_refused_before_computing(work, kind):
    """A 234-byte output name (its temporary sibling is too long for the file system) and a stack
    1 pixel wide to a TIFF failed only after 300 iterations, naming a hidden temporary file."""
    image, out = "stack.tif", "out.tif"
    if kind == "long-name":
        out, needle = "b" * 230 + ".tif", "bytes long; this folder's file system takes 255"
    else:
        np.save(work / "thin.npy", np.ones((16, 32, 1), np.float32))
        image, needle = "thin.npy", "a stack of planes 1 pixel wide (shape (16, 32, 1), axes ZYX)"
    t0 = time.perf_counter()
    r = _cli("deconvolve", "richardson-lucy", image, "psf.tif", "-o", out, "--iterations", "3000", cwd=work)
    _one_error_line(r, needle)
    assert time.perf_counter() - t0 < 60 and not (work / out).exists()
    assert [f for f in os.listdir(work) if f.startswith(".")] == []


def test_a_micro_sign_unit_is_written_to_an_imagej_tiff(work):
    """--voxel-size '… µm' with a .tif output: "'ascii' codec can't encode character" after the run."""
    r = _cli("deconvolve", "convolve", "stack16.tif", "psf.tif", "-o", "um.tif", "--voxel-size", "0.25,0.1,0.1 µm",
             cwd=work)
    assert r.returncode == 0, r.stderr
    _, cal = read_image(work / "um.tif")
    assert cal.unit == "micron" and cal.voxel_size() == pytest.approx((0.25, 0.1, 0.1))


# ------------------------------------------------------------------------------ case 5: output is an input

@pytest.mark.parametrize("command", ["richardson-lucy", "wiener", "convolve", "iterative3d"])
@pytest.mark.parametrize("how", ["image", "psf", "symlink", "dotdot", "hardlink"])
def test_case5_output_that_is_an_input_is_refused(work, command, how):
    (work / "sub").mkdir()
    out = {"image": "stack.tif", "psf": "psf.tif", "symlink": "link.tif", "dotdot": "sub/../stack.tif",
           "hardlink": "hard.tif"}[how]
    if how == "symlink":
        (work / "link.tif").symlink_to(work / "stack.tif")
    if how == "hardlink":
        os.link(work / "stack.tif", work / "hard.tif")
    before = {p: _sha(work / p) for p in ("stack.tif", "psf.tif")}
    r = _cli("deconvolve", command, "stack.tif", "psf.tif", "-o", out, "--overwrite", cwd=work)
    _one_error_line(r, "is an input", "psf" if how == "psf" else "image")
    assert {p: _sha(work / p) for p in before} == before
    assert not list(work.glob("*.json"))


@pytest.mark.parametrize("command", ["richardson-lucy", "iterative3d"])
def test_case5_output_that_is_an_input_says_so_without_overwrite(work, command):
    """Without --overwrite the first message was "exists (use --overwrite …)", an invitation to
    replace the input; the cause comes first now."""
    before = _sha(work / "stack.tif")
    r = _cli("deconvolve", command, "stack.tif", "psf.tif", "-o", "stack.tif", cwd=work)
    _one_error_line(r, "stack.tif is an input (image)")
    assert "--overwrite" not in r.stderr
    assert _sha(work / "stack.tif") == before


@pytest.mark.parametrize("how", ["snapshot", "sidecar", "zarr-holding-inputs", "plain-folder", "inside-input-zarr"])
def test_case5_no_file_the_run_writes_replaces_an_input(work, how):
    """A snapshot (NAME_iterK.tif) or the sidecar (NAME.json) named like an input replaced it with
    --overwrite; an OME-Zarr output over a folder removed the folder, inputs and unrelated files too."""
    if how == "snapshot":
        shutil.copy(work / "stack.tif", work / "r_iter2.tif")
        args, needle, kept = ["r_iter2.tif", "psf.tif", "-o", "r.tif", "--iterations", "4", "--snapshot-every",
                                "2"], "r_iter2.tif (a snapshot) is an input (image)", "r_iter2.tif"
    elif how == "sidecar":
        shutil.copy(work / "psf.tif", work / "s.tif.json")
        args, needle, kept = ["stack.tif", "s.tif.json", "-o", "s.tif"], "s.tif.json (its sidecar) is an input (psf)", \
            "s.tif.json"
    elif how == "zarr-holding-inputs":
        assert _cli("deconvolve", "convolve", "stack.tif", "psf.tif", "-o", "store.ome.zarr", cwd=work).returncode == 0
        shutil.copy(work / "stack.tif", work / "store.ome.zarr" / "stack.tif")
        args, needle, kept = ["store.ome.zarr/stack.tif", "psf.tif", "-o", "store.ome.zarr"], \
            "store.ome.zarr is a folder that holds an input (image", "store.ome.zarr/stack.tif"
    elif how == "inside-input-zarr":  # a file written into the input store (a fresh user's -o in.zarr/inner.tif)
        assert _cli("deconvolve", "convolve", "stack.tif", "psf.tif", "-o", "in.ome.zarr", cwd=work).returncode == 0
        args, needle, kept = ["in.ome.zarr", "psf.tif", "-o", "in.ome.zarr/inner.tif"], \
            "in.ome.zarr/inner.tif is inside an input folder (image", "in.ome.zarr/.zattrs"
    else:
        (work / "keep.zarr").mkdir()
        (work / "keep.zarr" / "notes.txt").write_text("mine")
        args, needle, kept = ["stack.tif", "psf.tif", "-o", "keep.zarr"], "is a folder that is not a Zarr store", \
            "keep.zarr/notes.txt"
    before = _sha(work / kept)
    r = _cli("deconvolve", "richardson-lucy", *args, "--overwrite", cwd=work)
    _one_error_line(r, needle)
    assert _sha(work / kept) == before


def test_case5_like_image_as_output_is_refused(work):
    before = _sha(work / "stack.tif")
    r = _cli("psf", "gaussian", "--like", "stack.tif", "-o", "./stack.tif", "--overwrite", cwd=work)
    _one_error_line(r, "is an input (--like)")
    assert _sha(work / "stack.tif") == before


# ------------------------------------------------------------------------------ cases 6 and 16: interruptions

_HOOK = r'''
import os, signal, sys, time
from pathlib import Path
sig_name, when, marker = sys.argv[1], sys.argv[2], sys.argv[3]
sig = getattr(signal, sig_name)
from fijidecon import io
from fijidecon.commands import run as run_mod
from fijidecon import cli_big

if when == "image-written":  # the new image's temporary file is complete, nothing renamed yet
    real = io._write_imagej
    def hooked(tmp, *a, **k):
        real(tmp, *a, **k)
        Path(marker).write_text(tmp)
        os.kill(os.getpid(), sig)
    io._write_imagej = hooked
elif when == "between-renames":  # the sidecar is in place, the image not yet
    real_finish = io._finish
    calls = []
    def hooked(tmp, p, overwrite):
        real_finish(tmp, p, overwrite)
        calls.append(p)
        if len(calls) == 1:
            Path(marker).write_text(str(p))
            os.kill(os.getpid(), sig)
    io._finish = hooked
elif when == "output-in-place":  # image and sidecar are in place; the summary line comes next
    real_layout = io.stored_layout
    def hooked(*a, **k):
        if Path(a[0]).exists() and io.sidecar_path(Path(a[0])).exists():  # its first call makes the record
            Path(marker).write_text("done")
            os.kill(os.getpid(), sig)
        return real_layout(*a, **k)
    io.stored_layout = hooked
elif when == "computing":  # say when the computation starts; the test sends the signal
    from fijidecon import cli as cli_mod
    for mod in (cli_mod, cli_big):
        if hasattr(mod, "run_command"):
            real_run = getattr(mod, "run_command")
            def hooked(*a, _real=real_run, **k):
                Path(marker).write_text("computing")
                return _real(*a, **k)
            setattr(mod, "run_command", hooked)
from fijidecon.cli import main
sys.exit(main(sys.argv[4:]))
'''


def _hooked(work: Path, sig: str, when: str, *args, wait: bool = True):
    hook = work / "hook.py"
    hook.write_text(_HOOK)
    marker = work / "marker.txt"
    marker.unlink(missing_ok=True)
    p = subprocess.Popen([sys.executable, str(hook), sig, when, str(marker), *map(str, args)], cwd=work,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not wait:
        return p, marker
    out, err = p.communicate(timeout=300)
    return p.returncode, err, marker


def _rl(iterations: int, out: str = "out.tif", *extra) -> tuple:
    return ("deconvolve", "richardson-lucy", "stack.tif", "psf.tif", "-o", out, "--iterations", str(iterations),
            "--background", "10", "-q", *extra)  # the stack sits on ~11: without it, an offset warning


def _pair(work: Path, name: str = "out.tif") -> tuple[np.ndarray, int]:
    img = tifffile.imread(work / name)
    side = json.loads((work / f"{name}.json").read_text())
    return img, int(side["parameters"]["iterations"])


@pytest.fixture
def earlier_output(work):
    """out.tif + sidecar from 5 iterations, and reference results for 5 and 20 iterations."""
    for n, name in ((5, "out.tif"), (5, "ref5.tif"), (20, "ref20.tif")):
        r = _cli(*_rl(n, name), cwd=work)
        assert r.returncode == 0, r.stderr
    return {5: tifffile.imread(work / "ref5.tif"), 20: tifffile.imread(work / "ref20.tif")}


def _which(img: np.ndarray, refs: dict) -> int:
    """The reference the image is (to float32 round-off; the two differ by far more)."""
    d = {n: float(np.max(np.abs(img - ref))) for n, ref in refs.items()}
    best = min(d, key=d.get)
    assert d[best] <= 1e-5 * float(np.max(np.abs(refs[best]))), d
    return best


@pytest.mark.parametrize("sig,when,code", [("SIGINT", "image-written", 130), ("SIGTERM", "image-written", 143),
                                           ("SIGINT", "between-renames", 130), ("SIGTERM", "between-renames", 143)])
def test_case6_interrupted_overwrite_replaces_image_and_sidecar_together(work, earlier_output, sig, when, code):
    """Before: the new image with the old sidecar (says 5, image has 20). Now: before the
    renames the old pair is kept; between them the signal waits for the second rename."""
    rc, err, marker = _hooked(work, sig, when, *_rl(20, "out.tif", "--overwrite"))
    assert marker.exists(), err  # the signal was sent where intended
    assert rc == code, (rc, err)
    assert "Traceback" not in err and len(err.split()) and len([ln for ln in err.splitlines() if ln.strip()]) == 1, err
    img, said = _pair(work)
    assert _which(img, earlier_output) == said
    assert said == (5 if when == "image-written" else 20)
    assert not [p for p in os.listdir(work) if ".partial-" in p]


def test_case16_ctrl_c_and_sigterm_mid_run(work):
    tifffile.imwrite(work / "big.tif", np.random.default_rng(3).random((24, 128, 128)).astype(np.float32),
                     imagej=True, resolution=(10, 10), metadata={"axes": "ZYX", "spacing": 0.25, "unit": "micron"})
    for sig, code, word in ((signal.SIGINT, 130, "Interrupted."), (signal.SIGTERM, 143, "Terminated.")):
        p, marker = _hooked(work, "SIGINT", "computing", "deconvolve", "richardson-lucy", "big.tif", "psf.tif",
                            "-o", "o.tif", "--iterations", "100000", "-q", wait=False)
        end = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < end and p.poll() is None:
            time.sleep(0.1)
        assert marker.exists(), p.communicate()[1]
        time.sleep(1.0)  # inside the iterations now
        p.send_signal(sig)
        _, err = p.communicate(timeout=60)
        assert p.returncode == code, (sig, p.returncode, err)
        assert [ln for ln in err.splitlines() if ln.strip()] == [word], err
        assert not [f for f in os.listdir(work) if f.startswith(("o.tif", ".o.tif"))]


def test_case16_temporary_files_of_a_killed_run_are_removed_by_the_next(work):
    rc, err, marker = _hooked(work, "SIGKILL", "image-written", *_rl(2, "o.tif"))
    assert rc == -9
    left = [f for f in os.listdir(work) if f.startswith(".o.tif.partial-")]
    assert len(left) == 1 and left[0].endswith(".part.tif"), os.listdir(work)
    assert not (work / "o.tif").exists()  # a hidden partial file, never the output's name
    # a temporary file of a live process (this one) is not touched
    live = work / f".o.tif.partial-{os.getpid()}.abc.part.tif"
    live.write_bytes(b"busy")
    r = _cli(*_rl(2, "o.tif"), cwd=work)
    assert r.returncode == 0, r.stderr
    now = sorted(f for f in os.listdir(work) if f.startswith((".o.tif", "o.tif")))
    assert now == sorted(["o.tif", "o.tif.json", live.name]), now


def test_a_result_too_big_for_the_disk_is_refused_before_computing(tmp_path):
    """The free space was found missing only after the whole run (an 8 MB tmpfs: 'Not enough free
    space' after 5.5 s).  ``check_output`` with the result's shape (what the CLI calls before
    reading pixels) now compares its float32 size with the disk's free space: a TIFF is refused
    (an OME-Zarr, compressed, is left to the write's own full-disk handling)."""
    import shutil

    from fijidecon import io

    free = shutil.disk_usage(tmp_path).free
    shape = (int(free // 4 // 10**6) + 10, 1000, 1000)  # a little more than the disk holds, as float32
    with pytest.raises(OSError, match=r"^output: '.*r.tif' needs about .* \(the float32 result\) and its folder has "
                                      r".* free; free some space or write elsewhere \(nothing was computed\)"):
        io.check_output(tmp_path / "r.tif", "ZYX", shape=shape)
    io.check_output(tmp_path / "r.ome.zarr", "ZYX", shape=shape)  # compressed: its size is not known before
    io.check_output(tmp_path / "r.tif", "ZYX", shape=(10, 100, 100))  # fits: no error
    assert list(tmp_path.iterdir()) == []
    # with its snapshots: a fresh batch user's 5 snapshots filled a 2 MB disk after the whole run
    half = (int(free // 4 // 10**6 // 2) + 10, 1000, 1000)
    io.check_output(tmp_path / "r.tif", "ZYX", shape=half)
    with pytest.raises(OSError, match=r"\(the float32 result and 4 snapshot\(s\)\) and its folder has"):
        io.check_output(tmp_path / "r.tif", "ZYX", shape=half, copies=5)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_after_the_output_is_in_place_says_the_output_is_complete(work, sig):
    """Ctrl-C or SIGTERM just after the output and sidecar were in place: once exit 130/143 with nothing said
    (a batch thought the run failed), then ignored (exit 0: a batch loop went on after Ctrl-C); now the run's
    last steps finish, the message says the output is complete, and the status is the signal's (the loop
    stops; a rerun says 'exists')."""
    rc, err, marker = _hooked(work, sig, "output-in-place", *_rl(2, "late.tif"))
    assert marker.exists(), err
    signum = getattr(signal, sig)
    assert rc in (128 + signum, -signum), (rc, err)
    assert (work / "late.tif").exists() and (work / "late.tif.json").exists()
    word = "Interrupted" if sig == "SIGINT" else "Terminated"
    assert f"{word} (after late.tif was written: it is complete)." in err, err


def test_full_disk_with_resume_keeps_the_chunks_and_says_so(work, mounted):
    """--resume onto a full disk said 'nothing was written' right after 'the partial output is
    kept' (68 chunks were): the error now says the chunks are kept and how to go on."""
    tifffile.imwrite(work / "in.tif", np.random.default_rng(2).random((16, 64, 64)).astype(np.float32), imagej=True,
                     resolution=(10, 10), metadata={"axes": "ZYX", "spacing": 0.25, "unit": "micron"})
    full = mounted("full", "size=64k")
    r = _cli("deconvolve", "richardson-lucy", "in.tif", "psf.tif", "-o", full / "out.ome.zarr", "--iterations", "2",
             "-q", "--resume", cwd=work)
    assert r.returncode == 2, r.stderr
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("Error:")]
    assert len(err) == 1 and "disk is full" in err[0] and "nothing was written" not in err[0], r.stderr
    assert "the chunks written so far are kept in .out.ome.zarr.resumable" in err[0] and "--resume" in err[0]
    assert (full / ".out.ome.zarr.resumable").is_dir() and not (full / "out.ome.zarr").exists()
