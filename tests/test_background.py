"""Richardson-Lucy's background per channel and ``background="auto"``: API, bricks, Dask, stop="auto",
CLI and the command description (a two-channel stack whose channels sit on 600 and 100 counts)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fijidecon.calibration import Calibration
from fijidecon.deconvolve import convolve, richardson_lucy
from fijidecon.deconvolve import _background
from fijidecon.errors import InputError
from fijidecon.io import read_image, write_image

LEVELS = (600.0, 100.0)


def _gauss(shape, sigma):
    grids = np.indices(shape, dtype=float)
    r2 = sum(((g - n // 2) / s) ** 2 for g, n, s in zip(grids, shape, sigma))
    p = np.exp(-r2 / 2)
    return (p / p.sum()).astype(np.float32)


PSF = _gauss((9, 13, 13), (1.6, 1.4, 1.4))


def _two_channels(seed=0, shape=(16, 40, 40)):
    """(C, Z, Y, X) Poisson counts: the same beads in both channels on backgrounds 600 and 100."""
    rng = np.random.default_rng(seed)
    obj = np.zeros(shape, np.float32)
    obj[tuple(rng.integers(3, n - 3, 8) for n in shape)] = rng.uniform(3000, 6000, 8)
    blur = convolve(obj, PSF, edges="constant")
    return np.stack([rng.poisson(blur + b) for b in LEVELS]).astype(np.float32), obj


def test_one_background_per_channel_is_each_channel_run_with_its_own():
    img, _ = _two_channels()
    both = richardson_lucy(img, PSF, 8, background=list(LEVELS))
    for c, b in enumerate(LEVELS):
        alone = richardson_lucy(img[c], PSF, 8, background=b).image
        np.testing.assert_allclose(both.image[c], alone, rtol=1e-5, atol=1e-3)
    assert both.background == list(LEVELS)
    same = richardson_lucy(img, PSF, 8, background=LEVELS[1])  # one value: the 600 channel keeps 500 of haze
    assert same.background == LEVELS[1] and not np.allclose(same.image[0], both.image[0], rtol=1e-2)


def test_auto_estimates_each_volume_as_a_lower_bound_close_to_the_truth():
    img, _ = _two_channels()
    res = richardson_lucy(img, PSF, 5, background="auto")
    assert len(res.background) == 2
    for got, true in zip(res.background, LEVELS):
        assert true - 6 * np.sqrt(true / 243) <= got <= true, res.background  # a few SD of a 243-voxel mean
    assert res.background == [_background.estimate(img[c]) for c in range(2)]
    assert any(n.startswith("richardson-lucy: background estimated as") and "(c=1)" in n for n in res.notes)
    # a hot and a dead pixel do not decide it
    spoilt = img[1].copy()
    spoilt[8, 20, 20], spoilt[3, 5, 5] = 60000, 0
    assert abs(_background.estimate(spoilt) - res.background[1]) < 0.5
    # the estimate is computed in slabs of planes: the same value whatever the slab
    old = _background.SLAB_VOXELS
    try:
        _background.SLAB_VOXELS = 2 * 40 * 40
        assert _background.estimate(img[0]) == pytest.approx(res.background[0], rel=1e-6)
    finally:
        _background.SLAB_VOXELS = old


@pytest.mark.parametrize("bad, said", [([600, 100, 3], "3 values for an image with 2 channel(s)"),
                                       ("abc", "expected a number >= 0, one per channel"),
                                       ([], "empty list"), ([600, -1], "background: expected")])
def test_bad_backgrounds_are_refused_naming_the_parameter(bad, said):
    img, _ = _two_channels()
    with pytest.raises((InputError, TypeError), match=r"^background: .*" if said != "empty list" else said) as e:
        richardson_lucy(img, PSF, 5, background=bad)
    assert said in str(e.value)


def test_a_per_channel_value_at_or_above_its_channels_maximum_is_refused_naming_the_volume():
    img, _ = _two_channels()
    with pytest.raises(ValueError, match=r"background: \S+ is at or above the image's maximum of volume t=0, c=1"):
        richardson_lucy(img, PSF, 5, background=[600, float(img[1].max()) + 1])


def test_bricked_and_dask_runs_give_each_volume_its_background():
    da = pytest.importorskip("dask.array")
    img, _ = _two_channels(shape=(20, 48, 48))
    whole = richardson_lucy(img, PSF, 6, background=list(LEVELS), acceleration=None)
    halo = PSF.shape  # one PSF width (the default is 1.5: too thick for these 10-plane Dask bricks)
    for res in (richardson_lucy(img, PSF, 6, background=list(LEVELS), acceleration=None, bricks=(10, 24, 24)),
                richardson_lucy(da.from_array(img, chunks=(1, 10, 24, 24)), PSF, 6, background=list(LEVELS),
                                acceleration=None, bricks=(10, 24, 24), halo=halo)):
        out = np.asarray(res.image)
        assert res.background == list(LEVELS)
        for c in range(2):  # bricks with the PSF's halo: the whole volume's result
            assert np.linalg.norm(out[c] - whole.image[c]) / np.linalg.norm(whole.image[c]) < 0.01
    # 'auto' is estimated on the whole volume whatever the bricks (on the central brick it moved with the budget)
    for chunks, bricks in (((1, 20, 48, 48), None), ((1, 10, 24, 24), (10, 24, 24))):
        auto = richardson_lucy(da.from_array(img, chunks=chunks), PSF, 3, background="auto", bricks=bricks,
                               halo=halo)
        assert auto.background == pytest.approx([_background.estimate(img[c]) for c in range(2)], rel=1e-6)


@pytest.mark.filterwarnings("ignore:stop. 'auto' chose the last iteration")
def test_stop_auto_takes_each_channels_background():
    from fijidecon.deconvolve._autostop import choose_iterations

    img, _ = _two_channels()
    res = richardson_lucy(img, PSF, 30, stop="auto", background=list(LEVELS), gain=1.0, offset=0.0)
    assert res.stop_reason == "auto" and 1 <= res.iterations <= 30 and res.background == list(LEVELS)
    both = choose_iterations(img, PSF, 30, background=list(LEVELS), gain=1.0, offset=0.0, seed=0)
    first = choose_iterations(img[0], PSF, 30, background=LEVELS[0], gain=1.0, offset=0.0, seed=0)
    assert both["curve"][0] == first["curve"]  # channel 0 scored with its own background (the same thinning)
    other = choose_iterations(img[0], PSF, 30, background=LEVELS[1], gain=1.0, offset=0.0, seed=0)
    assert other["curve"] != first["curve"]


@pytest.mark.parametrize("text, value", [("600", 600.0), ("600, 100", (600.0, 100.0)), ("600;100", (600.0, 100.0)),
                                         (" AUTO ", "auto"), ("0", 0.0)])
def test_the_faces_text_is_parsed_by_the_command_description(text, value):
    from fijidecon.commands import get_command

    p = {q.name: q for q in get_command("richardson-lucy").params}["background"]
    assert p.convert(text) == value
    for bad in ("600,x", "600,", ",600", "600,,400", "", "auto,auto"):  # an empty item is not "one for all"
        with pytest.raises(ValueError, match="^background: expected a number >= 0, one per channel"):
            p.convert(bad)


def test_cli_background_per_channel_and_auto(tmp_path, capsys):
    from fijidecon.cli import main

    img, _ = _two_channels()
    cal = Calibration.make("CZYX", "micron", Z=0.3, Y=0.1, X=0.1)
    write_image(tmp_path / "two.ome.tif", img.astype(np.uint16), cal)
    write_image(tmp_path / "psf.tif", PSF, Calibration.make("ZYX", "micron", Z=0.3, Y=0.1, X=0.1))
    args = ["deconvolve", "richardson-lucy", str(tmp_path / "two.ome.tif"), str(tmp_path / "psf.tif"),
            "--iterations", "6", "--acceleration", "none", "-o"]
    assert main([*args, str(tmp_path / "per.ome.tif"), "--background", "600,100"]) == 0
    out, _ = read_image(tmp_path / "per.ome.tif")
    want = richardson_lucy(img, PSF, 6, background=list(LEVELS), acceleration=None).image
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-2)
    side = json.loads((tmp_path / "per.ome.tif.json").read_text())
    assert side["result"]["background"] == list(LEVELS)
    capsys.readouterr()
    assert main([*args, str(tmp_path / "auto.ome.tif"), "--background", "auto"]) == 0
    err = capsys.readouterr().err
    assert "Note: richardson-lucy: background estimated as" in err and "(c=1)" in err, err
    side = json.loads((tmp_path / "auto.ome.tif.json").read_text())
    assert side["result"]["background"] == [_background.estimate(img[c].astype(np.uint16)) for c in range(2)]
    assert main([*args, str(tmp_path / "bad.ome.tif"), "--background", "600,100,5"]) == 2
    assert "background: 3 values for an image with 2 channel(s)" in capsys.readouterr().err
    assert not (tmp_path / "bad.ome.tif").exists()


def test_a_background_far_above_the_darkest_part_warns_naming_its_level():
    img, _ = _two_channels()
    with pytest.warns(RuntimeWarning, match=r"^background: 700 is far above the darkest part of the image "
                                            r"\(volume t=0, c=0\), whose lowest local mean is 59\d"):
        richardson_lucy(img, PSF, 2, background=[700, 100])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        richardson_lucy(img, PSF, 2, background=list(LEVELS))  # the true levels: silent
        richardson_lucy(img, PSF, 2, background=np.array(600.0)[()] * 0 + np.array(100.0))  # a 0-d array


def test_a_lazy_run_warns_about_a_background_far_above_too():
    da = pytest.importorskip("dask.array")
    img, _ = _two_channels(shape=(20, 48, 48))
    with pytest.warns(RuntimeWarning, match=r"^background: 700 is far above the darkest part of the image "
                                            r"\(volume t=0, c=0\)"):
        richardson_lucy(da.from_array(img, chunks=(1, 10, 24, 24)), PSF, 2, background=[700, 100],
                        bricks=(10, 24, 24), halo=PSF.shape)


def test_the_note_gives_each_channels_range_over_time_points():
    assert _background.describe([2194.0, 486.4, 2494.0, 786.0], 2) == "2194-2494 (c=0), 486.4-786 (c=1)"
    assert _background.describe([5.0, 5.0], 1) == "5"
    assert _background.estimate(np.full((4, 12, 12), 7, np.uint16)) == 7.0


def test_auto_on_a_blank_frame_of_a_time_series_warns_and_runs_the_rest():
    """A fresh batch user: a TZCYX file whose t=1 is constant was refused whole with 'background: 7 is at or above
    the image's maximum', as if 7 had been given; an estimate at the maximum means a flat volume."""
    import warnings

    from fijidecon.deconvolve import richardson_lucy

    rng = np.random.default_rng(0)
    img = rng.poisson(50, (2, 1, 8, 32, 32)).astype(np.float32)
    img[0, 0, 4, 10:20, 16] += 500
    img[1] = 7
    z, y, x = np.mgrid[-2:3, -3:4, -3:4]
    psf = np.exp(-(x ** 2 + y ** 2 + z ** 2) / 3.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = richardson_lucy(img, psf, 5, background="auto", axes="TCZYX")
    said = [str(w.message) for w in caught]
    assert "background: 'auto' found the image of volume t=1, c=0 flat (its level 7 is its maximum): no signal to " \
           "deconvolve, so its result is about 0" in said, said
    assert res.image[1].max() < 0.01 and res.image[0].max() > 50
    with pytest.raises(ValueError, match=r"^background: 7 is at or above the image's maximum of volume t=1"):
        richardson_lucy(img, psf, 5, background=7, axes="TCZYX")  # given, it is still refused
