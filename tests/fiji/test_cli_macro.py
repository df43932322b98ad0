"""``fijidecon macro`` / ``fijidecon imagej`` as a user runs them: a fresh process, no
display (a private Xvfb is started and goes away), real ImageJ 1.54p; and the README's
main job (examples/main_job.ijm) run through ImageJ."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "main_job.ijm"


def _cli(*args, timeout=180):
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    return subprocess.run([sys.executable, "-m", "fijidecon.fiji.cli_imagej", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def _xvfb_children(pid: int) -> set[str]:
    """The private Xvfb servers process ``pid`` started (only ``fijidecon macro`` passes ``-terminate``)."""
    out = subprocess.run(["pgrep", "-P", str(pid), "-f", "Xvfb -displayfd .* -terminate"], capture_output=True,
                         text=True).stdout
    return set(out.split())


def _alive(pids: set[str]) -> set[str]:
    return {p for p in pids if Path(f"/proc/{p}").exists()
            and "Xvfb" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")}


@pytest.fixture(scope="module")
def sample_tif():
    from fijidecon.fiji.cli_imagej import sample_path

    p = Path(sample_path())
    if not p.exists():
        pytest.fail(f"the bundled sample {p} is missing")
    return p


def test_macro_prints_log_and_exits_zero(tmp_path, jvm):
    m = tmp_path / "ok.ijm"
    m.write_text('print("hello " + getArgument());\n'
                 'run("Diffraction PSF 3D", "width,=16 height,=16 depth,=8 title=P");\n'
                 'print(getTitle() + " " + nSlices + " " + bitDepth());\n')
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    p = subprocess.Popen([sys.executable, "-m", "fijidecon.fiji.cli_imagej", "macro", str(m), "world"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    mine: set[str] = set()  # its own Xvfb: other test files' macros may run theirs meanwhile (pytest-xdist)
    while p.poll() is None:
        mine |= _xvfb_children(p.pid)
        time.sleep(0.05)
    out, err = p.communicate(timeout=180)
    assert p.returncode == 0, err
    assert out.splitlines()[-2:] == ["hello world", "P 8 32"]
    assert mine, "no private Xvfb seen"
    end = time.monotonic() + 5
    while _alive(mine) and time.monotonic() < end:
        time.sleep(0.1)
    assert not _alive(mine)  # the private Xvfb went away with the process


def test_macro_error_exits_non_zero_with_message(tmp_path, jvm):
    m = tmp_path / "bad.ijm"
    m.write_text('print("before");\nrun("Diffraction PSF 3D", "width,=0 height,=16 depth,=8");\nprint("after");\n')
    r = _cli("macro", str(m))
    assert r.returncode == 1
    assert "before" in r.stdout and "after" not in r.stdout
    assert 'Macro error in' in r.stderr and 'line 2' in r.stderr
    assert '"Width, pixels" (width,=0): expected a whole number >= 1, got 0' in r.stderr


def test_imagej_check_lists_the_installed_commands(jvm):
    r = _cli("imagej", "--check")
    assert r.returncode == 0, r.stderr
    assert "Plugins > Deconvolution > Diffraction PSF 3D" in r.stdout
    assert "Plugins > Deconvolution > Iterative Deconvolve 3D" in r.stdout
    assert "ImageJ 1.54p" in r.stdout


def _screen(path):
    from PIL import Image

    png = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
    assert png.shape == (1024, 1280)
    assert png.std() > 10 and len(np.unique(png)) > 20


def test_main_job_through_imagej(tmp_path, sample_tif, jvm):
    """The main job's macro on the bundled sample (its default input): a Diffraction PSF 3D, Richardson-Lucy
    with momentum, the result TIFF equal to the Python API's, and a non-blank screenshot PNG."""
    from fijidecon.deconvolve import richardson_lucy
    from fijidecon.io import read_image
    from fijidecon.psf import diffraction_psf_3d

    out = tmp_path / "out dir"  # a path with a space
    r = _cli("macro", str(EXAMPLE), f"outdir=[{out}] iterations=8", "--show-imagej")  # input: the bundled sample
    assert r.returncode == 0, r.stdout + r.stderr
    assert "8 iterations (momentum)" in r.stdout
    got, cal = read_image(out / "deconvolved.tif")
    img, icals = read_image(sample_tif)
    psf = diffraction_psf_3d(index=1.33, na=1.2, wavelength=520, pixel_spacing=icals.dx, slice_spacing=icals.dz,
                             width=32, height=32, depth=16, normalization="sum")
    background = round(float(img.min()), 2)  # the macro's default background: the stack's minimum
    want = richardson_lucy(img, psf, 8, acceleration="momentum", background=background)
    assert got.shape == img.shape and got.dtype == np.float32
    assert np.max(np.abs(got - want.image)) <= 1e-5 * np.max(np.abs(want.image))
    assert (cal.dx, cal.dz, cal.unit) == (icals.dx, icals.dz, icals.unit)
    _screen(out / "imagej_screen.png")


def test_main_job_on_the_demo_files(tmp_path, jvm):
    """The README's demo through ImageJ: the demo's sample, PSF and truth (small here), four titled windows
    side by side; the result equals ``fijidecon demo``'s deconvolution with the same settings."""
    from fijidecon import demo
    from fijidecon.io import read_image

    d = tmp_path / "demo"
    demo.run(d, shape=(16, 40, 40), iterations=5)
    out = d / "imagej"
    r = _cli("macro", str(EXAMPLE), f"input=[{d / 'sample.tif'}] psf=[{d / 'psf.tif'}] truth=[{d / 'truth.tif'}] "
             f"outdir=[{out}] iterations=5 background={demo.BACKGROUND:g}", "--show-imagej")
    assert r.returncode == 0, r.stdout + r.stderr
    got, _ = read_image(out / "deconvolved.tif")
    want, _ = read_image(d / "deconvolved.tif")
    assert np.max(np.abs(got - want)) <= 1e-5 * np.max(np.abs(want))
    _screen(out / "imagej_screen.png")


def test_imagej_returns_when_imagej_is_quit(tmp_path, jvm):
    m = tmp_path / "quit.ijm"
    m.write_text('run("Diffraction PSF 3D", "width,=8 height,=8 depth,=4");\nrun("Quit");\n')
    r = _cli("imagej", "--macro", str(m), timeout=60)
    assert r.returncode == 0, r.stderr
    assert "Close ImageJ (File > Quit) to return." in r.stdout


def test_exit_in_a_macro_is_not_a_failure(tmp_path, jvm):
    m = tmp_path / "exit.ijm"
    m.write_text('print("a");\nexit;\nprint("b");\n')
    r = _cli("macro", str(m))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["a"]
