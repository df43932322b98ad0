"""``initial="image"``: Richardson-Lucy started from the data instead of a flat estimate (issue 10).

The scoreboard (``benchmarks/quality.py``) measured it on flowdec's Hollow Bars: plain RL's best
NMSE reached in about 25 Biggs-Andrews iterations, best 0.444 (flat start: 51, 0.470).  Here: the
start is what it says, it saves iterations on bright data with a broad PSF, every path (bricks,
stop="auto", CLI) takes it, and a bad value is one clear error.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from fijidecon.cli import main
from fijidecon.deconvolve import convolve, richardson_lucy
from fijidecon.io import read_image, write_image
from fijidecon.psf import widefield


PSF = widefield((24, 48, 48), voxel_size_nm=(200, 65, 65), na=1.3, wavelength_nm=520)  # broad, long tails


def _bright():
    """Thin-walled hollow boxes, many photons (little noise), blurred by a widefield PSF."""
    t = np.zeros((24, 48, 48), np.float32)
    for z0, y0, x0 in ((6, 8, 8), (10, 26, 24)):
        t[z0:z0 + 6, y0:y0 + 14, x0:x0 + 14] = 5000
        t[z0 + 1:z0 + 5, y0 + 1:y0 + 13, x0 + 1:x0 + 13] = 0
    data = np.random.default_rng(3).poisson(convolve(t, PSF, edges="constant") + 20).astype(np.float32)
    return t.astype(np.float64), data


def _nmse(est, truth):
    return float(np.mean((est - truth) ** 2) / np.mean(truth ** 2))


def test_zero_iterations_return_the_image_less_the_background():
    _, data = _bright()
    r = richardson_lucy(data, PSF, 0, background=20, initial="image")
    expected = np.maximum(data - 20, np.float32(1e-3 * data.mean()))
    np.testing.assert_allclose(r.image, expected, rtol=1e-6)
    flat = richardson_lucy(data, PSF, 0, background=20)
    assert np.ptp(flat.image) == 0  # the classical flat start


@pytest.mark.parametrize("acceleration", [None, "biggs-andrews", "momentum", "biggs-andrews-2"])
def test_image_start_saves_iterations_on_bright_data_with_a_broad_psf(acceleration):
    truth, data = _bright()
    kw = dict(background=20, acceleration=acceleration)
    flat = _nmse(richardson_lucy(data, PSF, 10, **kw).image, truth)
    image = _nmse(richardson_lucy(data, PSF, 10, initial="image", **kw).image, truth)
    assert image < 0.95 * flat, (image, flat)  # measured: 0.716 vs 0.774 (plain), 0.660 vs 0.705 (BA)


def test_bricks_and_auto_stop_take_it():
    truth, data = _bright()
    whole = richardson_lucy(data, PSF, 8, background=20, initial="image")
    bricked = richardson_lucy(data, PSF, 8, background=20, initial="image", bricks=(12, 24, 24))
    assert any("bricked" in n for n in bricked.notes)
    assert np.linalg.norm(bricked.image - whole.image) / np.linalg.norm(whole.image) < 1e-3
    flat_bricked = richardson_lucy(data, PSF, 8, background=20, bricks=(12, 24, 24))
    assert np.linalg.norm(flat_bricked.image - bricked.image) / np.linalg.norm(whole.image) > 1e-2
    auto = richardson_lucy(data, PSF, 30, background=20, initial="image", stop="auto", gain=1.0, offset=0.0)
    assert 1 <= auto.auto_stop["iteration"] <= 30


def test_bad_value_is_one_clear_error():
    _, data = _bright()
    with pytest.raises(ValueError, match=r"^initial: expected one of .*'flat'.*'image'"):
        richardson_lucy(data, PSF, 3, initial="data")


def test_cli_option_reaches_the_core_and_the_sidecar(tmp_path):
    _, data = _bright()
    write_image(tmp_path / "img.tif", data)
    write_image(tmp_path / "psf.tif", PSF)
    args = ["deconvolve", "richardson-lucy", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"),
            "--iterations", "0", "--background", "20"]
    assert main(args + ["--initial", "image", "-o", str(tmp_path / "a.tif")]) == 0
    assert main(args + ["-o", str(tmp_path / "b.tif")]) == 0
    a, _ = read_image(tmp_path / "a.tif")  # the data less 20
    b, _ = read_image(tmp_path / "b.tif")
    assert np.ptp(b) == 0 and np.ptp(a) > 100
    rec = json.loads((tmp_path / "a.tif.json").read_text())
    assert rec["parameters"]["initial"] == "image"


@pytest.mark.parametrize("name", ["initial", "acceleration", "regularization", "edges", "back_projector"])
def test_an_array_for_a_choice_is_one_clear_error(name):
    """The kind of fault a new user hit (``initial=image_array``): an array where a choice is
    expected is a one-line error naming the parameter, not numpy's "truth value is ambiguous"."""
    _, data = _bright()
    value = data if name != "back_projector" else np.array(["matched"])
    with pytest.raises((TypeError, ValueError), match=rf"^{name}: expected") as e:
        richardson_lucy(data, PSF, 2, **{name: value})
    assert "ambiguous" not in str(e.value) and "\n" not in str(e.value)
