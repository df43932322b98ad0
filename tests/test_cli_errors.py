"""One error path: a programming error reaches a CLI user as one line (exit 1), the traceback
only with --debug; a cancelled bricked run exits 130 (issue: hardening, part 1)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tifffile

_BOOM = """
import sys
import fijidecon.cli as c
def boom(*a, **k):
    raise KeyError("a bug")
c.run_command = boom
sys.exit(c.main(sys.argv[1:]))
"""


def _run(tmp_path, *extra):
    img, psf = tmp_path / "a.tif", tmp_path / "psf.tif"
    if not img.exists():
        tifffile.imwrite(img, np.ones((4, 16, 16), np.float32), imagej=True, metadata={"axes": "ZYX"})
        tifffile.imwrite(psf, np.ones((3, 5, 5), np.float32), imagej=True, metadata={"axes": "ZYX"})
    out = tmp_path / f"o{len(extra)}.tif"
    return subprocess.run([sys.executable, "-c", _BOOM, *extra, "deconvolve", "convolve", str(img), str(psf),
                           "-o", str(out)], capture_output=True, text=True, timeout=120)


def test_a_programming_error_is_one_line_and_the_traceback_needs_debug(tmp_path):
    p = _run(tmp_path)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith("Error: internal error (KeyError: 'a bug'); run 'fijidecon "
                                                        "--debug")
    d = _run(tmp_path, "--debug")
    assert d.returncode != 0 and "Traceback" in d.stderr and "KeyError: 'a bug'" in d.stderr


def test_a_bad_psf_file_is_named_psf_and_info_opens_ome_zarr(tmp_path):
    from fijidecon.calibration import Calibration
    from fijidecon.cli import main
    from fijidecon.lazy_io import write_ome_zarr

    img = tmp_path / "a.tif"
    tifffile.imwrite(img, np.ones((4, 16, 16), np.float32), imagej=True, metadata={"axes": "ZYX"})
    (tmp_path / "bad.tif").write_bytes(b"xx")
    p = subprocess.run([sys.executable, "-m", "fijidecon.cli", "deconvolve", "richardson-lucy", str(img),
                        str(tmp_path / "bad.tif"), "-o", str(tmp_path / "o.tif")], capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.startswith("Error: psf: ") and "bad.tif" in p.stderr
    write_ome_zarr(tmp_path / "z.ome.zarr", np.ones((4, 16, 16), np.float32),
                   Calibration.make("ZYX", unit="micron", Z=0.3, Y=0.1, X=0.1))
    assert main(["info", str(tmp_path / "z.ome.zarr")]) == 0


def test_a_2d_psf_for_a_3d_image_names_the_psf(tmp_path):
    """The CLI's memory estimate, which runs first, said 'psf_shape: expected 3 positive whole numbers'."""
    tifffile.imwrite(tmp_path / "img.tif", np.ones((6, 24, 24), np.float32), imagej=True, metadata={"axes": "ZYX"})
    tifffile.imwrite(tmp_path / "psf.tif", np.ones((9, 9), np.float32))
    # (Iterative Deconvolve 3D takes a one-plane PSF slice by slice, as the plugin, the API and ImageJ do)
    for cmd in ("richardson-lucy", "convolve"):
        p = subprocess.run([sys.executable, "-m", "fijidecon.cli", "deconvolve", cmd, str(tmp_path / "img.tif"),
                            str(tmp_path / "psf.tif"), "-o", str(tmp_path / f"{cmd}.tif")],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 2 and p.stderr.strip().splitlines() == [
            "Error: psf: 2D PSF (shape (9, 9)) for 3D volumes: give a (Z, Y, X) PSF (for several "
            "channels, one per channel stacked on a leading channel axis; mismatched dimensionality)"], (cmd, p.stderr)


def test_remedies_are_spelt_as_options_on_the_command_line(tmp_path):
    """The core's remedies named Python ('np.clip(image, 0, None), or pass read_noise=', 'raise
    memory_limit', 'compat=False'): the CLI says the options."""
    img = np.random.default_rng(0).normal(5, 3, (8, 24, 24)).astype(np.float32)  # negative values
    tifffile.imwrite(tmp_path / "neg.tif", img)
    tifffile.imwrite(tmp_path / "psf.tif", np.ones((3, 5, 5), np.float32))
    r = subprocess.run([sys.executable, "-m", "fijidecon.cli", "deconvolve", "richardson-lucy", str(tmp_path / "neg.tif"),
                        str(tmp_path / "psf.tif"), "-o", str(tmp_path / "o.tif")], capture_output=True, text=True)
    assert r.returncode == 2 and "clip the data at 0, or pass --read-noise" in r.stderr, r.stderr
    assert "np.clip" not in r.stderr and "read_noise=" not in r.stderr


@pytest.mark.parametrize("shape, axes", [((3, 3, 3), "YXS"), ((3, 5, 5), "SYX")])
def test_a_psf_of_three_planes_stored_as_rgb_is_read_as_z(tmp_path, shape, axes):
    """A 3-plane PSF saved plainly is RGB to TIFF readers: numpy's 'axes don't match array' (YXS), or
    'the file holds an RGB image' (SYX); a PSF has no colours, so the planes are Z, with a warning."""
    from fijidecon.deconvolve import convolve

    img = np.random.default_rng(1).random((8, 24, 24), dtype=np.float32)
    psf = np.random.default_rng(2).random(shape, dtype=np.float32)
    tifffile.imwrite(tmp_path / "img.tif", img)
    tifffile.imwrite(tmp_path / "psf.tif", psf)
    r = subprocess.run([sys.executable, "-m", "fijidecon.cli", "deconvolve", "convolve", str(tmp_path / "img.tif"),
                        str(tmp_path / "psf.tif"), "-o", str(tmp_path / "o.tif"), "--edges", "periodic"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"Warning: psf: the file is stored as RGB (axes {axes}" in r.stderr
    want = convolve(img, np.moveaxis(psf, 2, 0) if axes == "YXS" else psf, edges="periodic")
    np.testing.assert_allclose(tifffile.imread(tmp_path / "o.tif"), want, rtol=1e-5, atol=1e-6)


def test_ctrl_c_while_the_cli_imports_is_one_line():
    """Ctrl-C in the first second (numpy, scipy, tifffile importing) printed a 51-line traceback."""
    code = ("import sys\n"
            "class Stop:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'fijidecon.cli':\n"
            "            raise KeyboardInterrupt\n"
            "sys.meta_path.insert(0, Stop())\n"
            "from fijidecon._entry import main\n"
            "sys.exit(main())\n")
    r = subprocess.run([sys.executable, "-c", code, "info"], capture_output=True, text=True, timeout=60)
    assert r.returncode == -signal.SIGINT and r.stderr == "Interrupted.\n", r.stderr  # a shell's $?: 130


def test_sigterm_while_the_cli_imports_is_one_line():
    """SIGTERM in the first second killed the process by the signal (-15, no word)."""
    code = ("import os, signal, sys\n"
            "class Stop:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'fijidecon.cli':\n"
            "            os.kill(os.getpid(), signal.SIGTERM)\n"
            "sys.meta_path.insert(0, Stop())\n"
            "from fijidecon._entry import main\n"
            "sys.exit(main())\n")
    r = subprocess.run([sys.executable, "-c", code, "info"], capture_output=True, text=True, timeout=60)
    # one line, then ended by SIGTERM's default action once the message is out (a shell's $?: 143)
    assert r.returncode == -signal.SIGTERM and r.stderr == "Terminated.\n", (r.returncode, r.stderr)


def test_a_psf_stored_as_rgb_takes_psf_voxel_size(tmp_path):
    """--psf-voxel-size on such a PSF: '3 values for a PSF with 2 spatial axes (YX)'."""
    tifffile.imwrite(tmp_path / "img.tif", np.ones((8, 24, 24), np.float32))
    tifffile.imwrite(tmp_path / "psf.tif", np.random.default_rng(2).random((3, 5, 5), dtype=np.float32))
    r = subprocess.run([sys.executable, "-m", "fijidecon.cli", "deconvolve", "convolve", str(tmp_path / "img.tif"),
                        str(tmp_path / "psf.tif"), "-o", str(tmp_path / "o.tif"), "--psf-voxel-size",
                        "0.3,0.1,0.1 micron"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("colour planes are taken as Z planes") == 1, r.stderr


@pytest.mark.parametrize("name, said", [("", "expected a file name, got ''"), ("x.tif/", "ends in '/'"),
                                        ("a\nb.tif", "expected a file name")])
def test_output_names_that_are_not_file_names_are_refused(tmp_path, capsys, name, said):
    """-o '' said "PosixPath('.') has an empty name"; a newline split the summary line; 'x.tif/' wrote x.tif."""
    from fijidecon.cli import main

    assert main(["psf", "gaussian", "-o", f"{tmp_path}/{name}" if name else name]) == 2
    err = capsys.readouterr().err
    assert said in err and err.startswith("Error: Invalid value for '-o' / '--output'"), err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("unit, ok", [("nan", False), ("furlong", False), ("", False), ("µm", True),
                                      ("micron", True), ("pixel", True), ("NM", True), ("pixels", True)])
def test_psf_unit_must_be_a_length_unit(tmp_path, capsys, unit, ok):
    """--unit took any text (``nan``) and wrote it into the PSF file's calibration."""
    from fijidecon.cli import main
    from fijidecon.io import read_image

    out = tmp_path / "g.tif"
    rc = main(["psf", "gaussian", "--width", "8", "--height", "8", "--depth", "4", "--unit", unit, "-o", str(out)])
    err = capsys.readouterr().err
    if ok:
        assert rc == 0 and read_image(out)[1].unit in (unit, "micron", unit.lower(), "pixel"), err
        assert read_image(out)[1].unit != "NM"  # the usual spelling is written
    else:
        assert rc == 2 and "Invalid value for '--unit'" in err and "is not a length unit" in err, err
        assert not out.exists()


@pytest.mark.parametrize("option", ["--weight", "--memory-limit", "--scheduler"])
def test_an_empty_value_is_not_taken_as_auto(tmp_path, capsys, option):
    """``--weight "$W"`` with W unset ran with the automatic weight, silently."""
    from fijidecon.cli import main

    img = tmp_path / "a.tif"
    tifffile.imwrite(img, np.ones((4, 16, 16), np.float32), imagej=True, metadata={"axes": "ZYX"})
    assert main(["deconvolve", "richardson-lucy", str(img), str(img), "-o", str(tmp_path / "o.tif"), option,
                 ""]) == 2
    err = capsys.readouterr().err
    said = "empty; give a value, or leave the option out" if option == "--scheduler" else "empty; give a value or 'auto'"
    assert f"Invalid value for '{option}': {said}" in err, err
    assert not (tmp_path / "o.tif").exists()


def test_a_note_during_a_brick_bar_gets_its_own_line():
    """A note or warning printed while the tqdm bar of bricks was drawn ended up on the bar's line."""
    import io

    from tqdm import tqdm

    from fijidecon.cli import _Notes

    buf = io.StringIO()
    bar = tqdm(total=3, file=buf, mininterval=0)
    try:
        _Notes(quiet=False).warn("a late warning")
        bar.update(1)
    finally:
        bar.close()
    text = buf.getvalue()
    before, sep, after = text.partition("Warning: a late warning\n")
    assert sep and before.endswith("\r\n"), repr(text)  # the bar was cleared first; in a log, a line of its own
    assert "1/3" in after  # and drawn again below it


def test_stop_reasons_are_said_in_words():
    """Improved Iterative Deconvolve 3D said '(diverged)' for a small rise of its change figure."""
    from fijidecon.cli import _iterations_text

    assert _iterations_text({"iterations": 7, "stop_reason": "diverged"}) == \
        ", 7 iterations (the change figure rose: divergence detection)"
    assert _iterations_text({"iterations": 9, "stop_reason": "change_increased"}) == \
        ", 9 iterations (the change figure rose)"
    assert _iterations_text({"iterations": 30, "stop_reason": "iterations"}) == ", 30 iterations (as asked)"


def test_a_closed_stderr_does_not_fail_the_run(tmp_path):
    """`fijidecon ... 2>&-` (stderr closed by the caller, so Python's sys.stderr is None) exited 1
    without a word and wrote nothing (an AttributeError on sys.stderr.isatty())."""
    img, psf = tmp_path / "a.tif", tmp_path / "psf.tif"
    tifffile.imwrite(img, np.ones((4, 16, 16), np.float32) + 1, imagej=True, metadata={"axes": "ZYX"})
    tifffile.imwrite(psf, np.ones((3, 5, 5), np.float32), imagej=True, metadata={"axes": "ZYX"})
    code = "import sys\nfrom fijidecon.cli import main\nsys.exit(main())\n"
    r = subprocess.run([sys.executable, "-c", code, "deconvolve", "richardson-lucy", str(img), str(psf), "-o",
                        str(tmp_path / "o.tif"), "--iterations", "2"], stderr=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       timeout=120, close_fds=True, pass_fds=(), preexec_fn=lambda: __import__("os").close(2))
    assert r.returncode == 0 and (tmp_path / "o.tif").exists()


def test_ctrl_c_stops_a_bash_batch_loop(tmp_path):
    """A fresh batch user: Ctrl-C stopped only the run in progress (it exited 130 by itself, which
    tells bash the program handled the signal), and the loop went on with the next file for another
    58 s.  The command now ends by the signal after its clean-up: the loop stops there."""
    import time

    np.save(tmp_path / "img.npy", np.random.default_rng(0).random((32, 128, 128)).astype(np.float32))
    np.save(tmp_path / "psf.npy", np.ones((5, 9, 9), np.float32))
    run = (f'"{sys.executable}" -m fijidecon deconvolve iterative3d "{tmp_path}/img.npy" "{tmp_path}/psf.npy" '
           f'-o "{tmp_path}/out_$i.tif" --max-iterations 100000 --terminate -1000 --no-detect-divergence '
           '--mode improved -q')
    script = tmp_path / "batch.sh"
    script.write_text(f'for i in 1 2 3; do echo "start $i"; {run}; echo "rc $i $?"; done\n')
    p = subprocess.Popen(["bash", str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    time.sleep(5)  # the first run is iterating
    os.killpg(p.pid, signal.SIGINT)  # what the terminal does on Ctrl-C: the whole foreground group
    out, err = p.communicate(timeout=120)
    assert out.splitlines() == ["start 1"], (out, err)  # neither 'rc 1' nor 'start 2': bash stopped
    assert p.returncode == -signal.SIGINT and err.strip() == "Interrupted.", (p.returncode, err)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["batch.sh", "img.npy", "psf.npy"]


@pytest.mark.parametrize("sig, word", [(signal.SIGINT, "Interrupted"), (signal.SIGTERM, "Terminated")])
def test_a_signal_after_the_output_is_written_still_stops_a_batch_loop(tmp_path, sig, word):
    """A fresh batch user: Ctrl-C in the last half second of a run (output in place, the summary line and
    the exit to come) was ignored, the run exited 0 and the loop went on.  Now the run's last steps still
    finish, the message says the output is complete, and the process ends by the signal.  The signal is
    sent by the process itself at the moment its output is in place (the real handler, the real exit)."""
    np.save(tmp_path / "img.npy", np.random.default_rng(0).random((8, 32, 32)).astype(np.float32))
    z, y, x = np.mgrid[-2:3, -4:5, -4:5]
    np.save(tmp_path / "psf.npy", np.exp(-(x ** 2 + y ** 2 + z ** 2) / 4.5).astype(np.float32))
    code = ("import os, sys\n"
            "from fijidecon import cli, _entry\n"
            "real = cli.output_in_place\n"
            "def then_signal():\n"
            f"    real(); os.kill(os.getpid(), {int(sig)})\n"
            "cli.output_in_place = then_signal\n"
            "sys.exit(_entry._end_by_signal(cli.main()))\n")
    out = tmp_path / "out.tif"
    r = subprocess.run([sys.executable, "-c", code, "deconvolve", "convolve", str(tmp_path / "img.npy"),
                        str(tmp_path / "psf.npy"), "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == -sig, (r.returncode, r.stderr)
    assert f"{word} (after {out} was written: it is complete)." in r.stderr and "Traceback" not in r.stderr
    assert out.exists() and (tmp_path / "out.tif.json").exists()


@pytest.mark.parametrize("given, says", [
    (["--recenter", "False"], "--recenter False: --recenter is a switch and takes no value; write --recenter or "
                              "--no-recenter: here --no-recenter"),
    (["--no-recenter", "yes"], "here --no-recenter"),
    (["--overwrite", "no"], "--overwrite no: --overwrite is a switch and takes no value; write --overwrite (or leave "
                            "it out): here nothing (leave --overwrite out)"),
    (["--quiet", "1"], "write --quiet (or leave it out): here --quiet"),  # -q is its first name: was inverted
])
def test_a_value_after_a_switch_is_named_not_taken_for_a_file(tmp_path, capsys, given, says):
    """`--recenter False` said "Invalid value for 'PSF...': Path 'False' does not exist" (click reads
    the word as a file)."""
    from fijidecon.cli import main

    np.save(tmp_path / "img.npy", np.ones((4, 8, 8), np.float32))
    np.save(tmp_path / "psf.npy", np.ones((1, 3, 3), np.float32))
    assert main(["deconvolve", "richardson-lucy", str(tmp_path / "img.npy"), str(tmp_path / "psf.npy"), "-o",
                 str(tmp_path / "o.tif"), *given]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and says in err and "does not exist" not in err, err


def test_a_value_after_a_switch_of_a_psf_command_is_named(tmp_path, capsys):
    """`psf widefield -o p.tif --overwrite true` said click's "Got unexpected extra argument (true)"."""
    from fijidecon.cli import main

    assert main(["psf", "widefield", "-o", str(tmp_path / "p.tif"), "--overwrite", "true"]) == 2
    err = capsys.readouterr().err
    assert "--overwrite true: --overwrite is a switch and takes no value" in err and not (tmp_path / "p.tif").exists()


def test_swapped_files_give_the_refusal_alone(tmp_path, capsys):
    """A verifier: a calibrated DAPI crop given as the PSF of an uncalibrated 9x15x15 PSF printed 'psf: no voxel
    size (uncalibrated) ...' and 'psf: mostly background ...' (Iterative Deconvolve 3D: 'it sits on a flat
    level') before the swapped refusal; now the refusal alone, every method."""
    from pathlib import Path

    from fijidecon.calibration import Calibration
    from fijidecon.cli import main
    from fijidecon.io import write_image
    from fijidecon.psf import gaussian

    dapi = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "deconwolf_demo" / "dapi_001.tif"
    if not dapi.is_file():
        pytest.skip("the real DAPI file is not there")
    write_image(tmp_path / "img.tif", tifffile.imread(dapi)[10:30, 60:124, 20:84],
                Calibration.make("ZYX", unit="micron", Z=0.3, Y=0.13, X=0.13))
    write_image(tmp_path / "psf.tif", gaussian((9, 15, 15), (2.0, 2.0, 2.0)))
    for method in ("richardson-lucy", "wiener", "convolve", "iterative3d"):
        capsys.readouterr()
        assert main(["deconvolve", method, str(tmp_path / "psf.tif"), str(tmp_path / "img.tif"),
                     "-o", str(tmp_path / f"{method}.tif")]) == 2
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert len(err) == 1 and err[0].startswith("Error: psf: (20, 64, 64) is bigger than the image (9, 15, 15)"), \
            (method, err)


def test_a_one_plane_stack_takes_a_2d_psf_in_every_method(tmp_path):
    """A fresh batch user: a (1, Y, X) TIFF written by tifffile (read as ZYX) with a 2D PSF was refused by RL
    ('2D PSF for 3D volumes') while Iterative Deconvolve 3D took the pair."""
    rng = np.random.default_rng(0)
    img = rng.poisson(50, (1, 48, 48)).astype(np.float32)
    y, x = np.mgrid[-7:8, -7:8]
    psf = np.exp(-(x ** 2 + y ** 2) / 6.0).astype(np.float32)
    tifffile.imwrite(tmp_path / "one.tif", img)
    tifffile.imwrite(tmp_path / "p2.tif", psf)
    from fijidecon.deconvolve import richardson_lucy

    for method in ("richardson-lucy", "wiener", "convolve"):
        r = subprocess.run([sys.executable, "-m", "fijidecon", "deconvolve", method, tmp_path / "one.tif",
                            tmp_path / "p2.tif", "-o", tmp_path / f"{method}.tif"], capture_output=True, text=True)
        assert r.returncode == 0, (method, r.stderr)
    got = tifffile.imread(tmp_path / "richardson-lucy.tif")
    want = richardson_lucy(img[0], psf, 30).image  # the CLI's default count, on the plane itself
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-4, atol=1e-3)


def _psf_numeric_options():
    """(command, option, kind) for every numeric option of every PSF command, from the descriptions."""
    from fijidecon.commands import all_commands

    out = []
    for cmd in all_commands():
        group = cmd.extras.get("cli", ("", ""))
        if group[0] == "psf":
            out += [(group[1], p.cli_flag, p.kind) for p in cmd.params if p.api and p.kind in ("float", "int")]
    return out


_PSF_SMALL = {"diffraction": ["--width", "16", "--height", "16", "--depth", "4"],
              "gaussian": ["--width", "8", "--height", "8", "--depth", "4"],
              "lorentzian": ["--width", "8", "--height", "8", "--depth", "4"],
              "widefield": ["--width", "8", "--height", "8", "--depth", "2", "--oversample", "1"]}
#: Values each numeric option refuses (beads: 0 is 'automatic'; spherical aberration and depth_nm may be 0).
_BAD = ("-1", "nan", "inf", "-inf", "1e308", "1e-30", "ten")
_MAY_BE_TINY = {"--spherical-aberration", "--depth-nm", "--threshold", "--bead-diameter", "--max-beads"}
_MAY_BE_HUGE = {"--max-beads"}  # all beads


@pytest.mark.parametrize("command,option,kind", _psf_numeric_options())
def test_every_psf_numeric_option_refuses_bad_values_naming_the_option(tmp_path, capsys, command, option, kind):
    import fijidecon.cli as c
    from fijidecon import io as fio

    if command == "beads":
        beads = tmp_path / "beads.tif"
        img = np.full((12, 24, 24), 10.0, np.float32)
        img[6, 12, 12] = 1000.0
        fio.write_image(beads, img)
        base = [str(beads), "--voxel-size", "200,65,65 nm"]
    else:
        base = _PSF_SMALL[command]
    bad = [v for v in _BAD if not (v == "-1" and option == "--spherical-aberration")
           and not (v == "1e-30" and option in _MAY_BE_TINY) and not (v == "1e308" and option in _MAY_BE_HUGE)]
    if kind == "float" and option not in ("--spherical-aberration", "--depth-nm") and command != "beads":
        bad.append("0")
    if kind == "int" and command != "beads":
        bad += ["0", "100000000000"]
    if option == "--width":
        bad.append("1")  # a stack 1 pixel wide cannot be written to a TIFF: refused before computing
    for value in bad:
        out = tmp_path / "p.tif"
        rc = c.main(["psf", command, *base, option, value, "-o", str(out), "-q"])
        err = capsys.readouterr().err.strip()
        errors = [line for line in err.splitlines() if line.startswith("Error:")]
        assert rc != 0, f"{option} {value}: accepted ({err})"
        assert len(errors) == 1 and option in errors[0], f"{option} {value}: {err}"
        assert "Traceback" not in err and "internal error" not in err, err
        assert not out.exists() and not (tmp_path / "p.tif.json").exists()


def test_psf_errors_name_options_not_python_parameters(tmp_path, capsys):
    import fijidecon.cli as c

    cases = [(["widefield", "--slice-spacing-nm", "1e308"], "--slice-spacing-nm: expected a spacing"),
             (["gaussian", "--pixel-spacing", "1e-30"], "--pixel-spacing: expected a spacing"),
             (["diffraction", "--index", "1e308"], "--index: expected a refractive index"),
             (["diffraction", "--na", "1.6", "--index", "1.33"], "got --na 1.6 with --index 1.33"),
             (["widefield", "--na", "1.6"], "got --na 1.6 with --immersion-index 1.515"),
             (["gaussian", "--fwhm-xy", "0"], "--fwhm-xy: expected a finite number > 0, got 0"),
             (["gaussian", "--fwhm-xy", "-1"], "--fwhm-xy: expected a finite number > 0, got -1"),
             (["gaussian", "--fwhm-xy", "1e308"], "--fwhm-xy: expected a FWHM from 2.3e-10 to 4.3e+09"),
             (["diffraction", "--width", "1"], "--width: expected 2 or more for a TIFF output")]
    for args, said in cases:
        rc = c.main(["psf", args[0], "--width", "8", "--height", "8", "--depth", "2", *args[1:], "-o",
                     str(tmp_path / "p.tif")])
        err = capsys.readouterr().err
        assert rc == 2 and said in err, err
    from fijidecon import io as fio

    img = np.full((12, 24, 24), 10.0, np.float32)
    img[6, 12, 12] = 1000.0
    fio.write_image(tmp_path / "beads.tif", img)
    for args, said in [(["--pixel-size", "65", "--slice-spacing", "1e308"],
                        "--slice-spacing: expected a spacing from 2.3e-10 to 4.3e+09"),
                       (["--pixel-size", "65", "--slice-spacing", "200", "--target-pixel-size", "1e-3"],
                        "are --slice-spacing, --pixel-size and --target-pixel-size in one unit?")]:
        rc = c.main(["psf", "beads", str(tmp_path / "beads.tif"), *args, "-o", str(tmp_path / "p.tif")])
        err = capsys.readouterr().err
        assert rc == 2 and said in err, err
    rc = c.main(["psf", "gaussian", "--fwhm-xy", "1e6", "--width", "8", "--height", "8", "--depth", "2", "-o",
                 str(tmp_path / "w.tif")])
    err = capsys.readouterr().err
    assert rc == 0 and "are --fwhm-z, --fwhm-xy and --slice-spacing, --pixel-spacing in one unit?" in err, err


def test_the_api_keeps_naming_python_parameters():
    from fijidecon.psf._commands import widefield_psf

    with pytest.raises(ValueError, match=r"^slice_spacing_nm: expected a spacing"):
        widefield_psf(8, 8, 2, slice_spacing_nm=1e308)
    with pytest.raises(ValueError, match=r"^fwhm_xy: expected a finite number > 0"):
        from fijidecon.psf._commands import gaussian_psf
        gaussian_psf(8, 8, 2, fwhm_xy=0)
