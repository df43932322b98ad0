"""``initial="image"``: Richardson-Lucy started from the data instead of a flat estimate (issue 10).

The scoreboard (``benchmarks/quality.py``) measured it on flowdec's Hollow Bars: plain RL's best
NMSE reached in about 25 Biggs-Andrews iterations, best 0.444 (flat start: 51, 0.470).  Here: the
start is what it says, it saves iterations on bright data with a broad PSF, every path (bricks,
stop="auto", CLI) takes it, and a bad value is one clear error.
"""

from __future__ import annotations

import json
import warnings

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


@pytest.mark.parametrize("initial", ["image", "wiener"])
@pytest.mark.parametrize("acceleration", [None, "biggs-andrews", "momentum", "biggs-andrews-2"])
def test_image_and_wiener_starts_save_iterations_on_bright_data_with_a_broad_psf(acceleration, initial):
    truth, data = _bright()
    kw = dict(background=20, acceleration=acceleration)
    flat = _nmse(richardson_lucy(data, PSF, 10, **kw).image, truth)
    start = _nmse(richardson_lucy(data, PSF, 10, initial=initial, **kw).image, truth)
    # measured, image: 0.716 vs 0.774 (plain), 0.660 vs 0.705 (BA); wiener: 0.679 (plain), 0.616 vs 0.661 (2nd order)
    assert start < 0.95 * flat, (start, flat)


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


# -- initial="wiener" ------------------------------------------------------------------------

def _gaussian_psf():
    z, y, x = np.mgrid[-4:5, -4:5, -4:5]
    g = np.exp(-(z ** 2 / (2 * 1.6 ** 2) + (y ** 2 + x ** 2) / (2 * 1.2 ** 2)))
    return (g / g.sum()).astype(np.float32)


def test_zero_iterations_give_the_wiener_estimate():
    """Periodic edges: the start is max(F^-1[conj(H) F(image - background) / (|H|^2 + 1e-2)], floor),
    computed here with numpy's FFT from the PSF itself."""
    from fijidecon.deconvolve.richardson_lucy import INITIAL_FLOOR, WIENER_START_RHO
    psf = _gaussian_psf()
    rng = np.random.default_rng(5)
    t = np.zeros((16, 32, 32), np.float32)
    t[rng.integers(0, 16, 40), rng.integers(0, 32, 40), rng.integers(0, 32, 40)] = 400
    data = rng.poisson(convolve(t, psf, edges="periodic") + 20).astype(np.float32)
    r = richardson_lucy(data, psf, 0, background=20, initial="wiener", edges="periodic", psf_threshold=0)
    k = np.zeros(data.shape)
    k[:9, :9, :9] = psf
    H = np.fft.rfftn(np.roll(k, (-4, -4, -4), axis=(0, 1, 2)))
    assert WIENER_START_RHO == 1e-2
    x = np.fft.irfftn(np.conj(H) * np.fft.rfftn(data - 20.0) / (np.abs(H) ** 2 + 1e-2), data.shape, axes=(0, 1, 2))
    expected = np.maximum(x, INITIAL_FLOOR * data.mean())
    np.testing.assert_allclose(r.image, expected, rtol=2e-4, atol=2e-3 * data.mean())
    # sharper than the image start: the beads' peaks are higher
    assert r.image.max() > 1.5 * richardson_lucy(data, psf, 0, background=20, initial="image").image.max()


def test_the_wiener_start_continues_the_data_beyond_the_border():
    """Non-circulant edges: the margins of the work grid continue the data smoothly (its mirror at
    the end fading into its mirror at the start, which the periodic grid puts after the margin), so
    a bright object cut by the border starts as bright as it is, where a periodic start rings."""
    from fijidecon.deconvolve import _edges
    geo = _edges.geometry("non-circulant", (3,), (5,))
    assert geo.work_shape == (8,)  # 3 + 5 - 1 = 7, rounded up to a fast FFT length
    np.testing.assert_allclose(geo.extend(np.array([1.0, 2, 3])), [1, 2, 3, 3, 7 / 3, 2, 5 / 3, 1])
    geo2 = _edges.geometry("non-circulant", (2, 3), (9, 1))  # a margin wider than the data: edge repeated
    out = geo2.extend(np.array([[1.0, 2, 3], [4, 5, 6]]))
    assert out.shape == (geo2.work_shape[0], 3) and out.min() == 1 and out.max() == 6
    psf = _gaussian_psf()
    big = np.zeros((16, 32, 48), np.float32)
    big[:, :, :24] = 200  # a slab from beyond the border (x < 0) to x = 8
    data = (convolve(big, psf, edges="periodic")[:, :, 16:] + 20).astype(np.float32)
    start = {e: richardson_lucy(data, psf, 0, background=20, initial="wiener", edges=e).image[:, :, :4]
             for e in ("non-circulant", "periodic")}
    assert np.abs(start["non-circulant"] / 200 - 1).max() < 0.1  # measured 7 %
    assert np.abs(start["periodic"] / 200 - 1).max() > 0.3  # measured 46 %


def test_wiener_start_in_bricks_auto_stop_and_the_cli(tmp_path):
    truth, data = _bright()
    whole = richardson_lucy(data, PSF, 8, background=20, initial="wiener")
    with pytest.warns(RuntimeWarning, match=r"^initial: 'wiener' in bricks starts each brick from its own Wiener"):
        bricked = richardson_lucy(data, PSF, 8, background=20, initial="wiener", bricks=(12, 24, 24))
    assert any("bricked" in n for n in bricked.notes)
    rel = np.linalg.norm(bricked.image - whole.image) / np.linalg.norm(whole.image)
    flat = richardson_lucy(data, PSF, 8, background=20)
    with warnings.catch_warnings():  # neither the flat start in bricks nor the Wiener start whole warns
        warnings.simplefilter("error")  # (of the layout: these small test bricks' cost is said, and allowed)
        warnings.filterwarnings("ignore", message=r"bricks: richardson-lucy in \d+ bricks computes")
        richardson_lucy(data, PSF, 2, background=20, bricks=(12, 24, 24))
        richardson_lucy(data, PSF, 2, background=20, initial="wiener")
    assert rel < 0.1 * np.linalg.norm(flat.image - whole.image) / np.linalg.norm(whole.image), rel
    auto = richardson_lucy(data, PSF, 30, background=20, initial="wiener", stop="auto", gain=1.0, offset=0.0)
    assert 1 <= auto.auto_stop["iteration"] <= 30
    write_image(tmp_path / "img.tif", data)
    write_image(tmp_path / "psf.tif", PSF)
    assert main(["deconvolve", "richardson-lucy", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"),
                 "--iterations", "0", "--background", "20", "--initial", " Wiener ",  # blanks and case, as the API
                 "-o", str(tmp_path / "w.tif")]) == 0
    w, _ = read_image(tmp_path / "w.tif")
    np.testing.assert_allclose(w, richardson_lucy(data, PSF, 0, background=20, initial="wiener").image, rtol=1e-5)
    assert json.loads((tmp_path / "w.tif.json").read_text())["parameters"]["initial"] == "wiener"
