"""stop="auto": the Richardson-Lucy count chosen by binomial-thinning cross-validation."""

from __future__ import annotations

import json
import logging
import time
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from fijidecon.deconvolve import convolve, richardson_lucy
from fijidecon.deconvolve import _autostop as A

SHAPE = (16, 64, 64)
MARGIN = 8
SIGMA = (2.0, 1.4, 1.4)
BG, RN, PEAK = 10.0, 2.0, 200.0


def _psf():
    shape = tuple(2 * int(np.ceil(4 * s)) + 1 for s in SIGMA)
    g = np.indices(shape, dtype=float)
    p = np.exp(-0.5 * sum(((gi - n // 2) / s) ** 2 for gi, n, s in zip(g, shape, SIGMA)))
    return (p / p.sum()).astype(np.float32)


@pytest.fixture(scope="module")
def bars():
    """Bars 2 voxels wide with 1-5 voxel gaps (benchmarks/quality.py's resolution target, smaller)."""
    rng = np.random.default_rng(3)
    big = np.zeros(tuple(n + 2 * MARGIN for n in SHAPE), np.float32)
    z0, x = MARGIN + SHAPE[0] // 2 - 3, MARGIN + 4
    for gap in (1, 2, 3, 4, 5):
        for _ in range(2):
            big[z0:z0 + 6, MARGIN + 8:MARGIN + 56, x:x + 2] = PEAK
            x += 2 + gap
        x += 3
    psf = _psf()
    fov = tuple(slice(MARGIN, MARGIN + n) for n in SHAPE)
    mean = np.clip(convolve(big, psf, edges="constant"), 0, None)[fov] + BG
    data = (rng.poisson(mean) + rng.normal(0, RN, mean.shape)).astype(np.float32)
    return data, psf, big[fov]


def _nmse_path(data, psf, truth, k, **kw):
    t2 = float(np.mean(truth.astype(np.float64) ** 2))
    path = []
    richardson_lucy(data, psf, k, callback=lambda f, e: path.append(float(np.mean((e - truth) ** 2) / t2)), **kw)
    return np.array(path)


@pytest.mark.parametrize("accel,k_max", [(None, 120), ("biggs-andrews", 60), ("momentum", 60),
                                         ("biggs-andrews-2", 60)])
def test_auto_lands_near_the_best_nmse(bars, accel, k_max):
    data, psf, truth = bars
    kw = dict(background=BG, read_noise=RN, acceleration=accel)
    path = _nmse_path(data, psf, truth, k_max, **kw)
    best = path.min()
    t0 = time.perf_counter()
    res = richardson_lucy(data, psf, k_max, stop="auto", gain=1.0, offset=0.0, **kw)
    wall = time.perf_counter() - t0
    k = res.iterations
    assert res.stop_reason == "auto" and res.auto_stop["iteration"] == k
    assert path[k - 1] <= max(1.05 * best, best + 0.02), (k, path[k - 1], int(path.argmin()) + 1, best)
    # the returned image is the full-data iterate k (the normal path)
    ref = richardson_lucy(data, psf, k, **kw)
    np.testing.assert_array_equal(res.image, ref.image)
    curve = np.array(res.auto_stop["curve"])
    assert curve[:, 0].min() == 1 and res.auto_stop["minimum"] == int(curve[np.argmin(curve[:, 1]), 0])
    assert res.auto_stop["minimum"] <= res.auto_stop["thinned_iteration"] <= A.LATE_CAP * res.auto_stop["minimum"]
    assert 0 < res.auto_stop["seconds"] < wall  # the choice's own time, within the whole call's

def test_auto_biggs_andrews_stops_before_overfitting(bars):
    """BA over-fits after its best iterate: auto must not take the maximum."""
    data, psf, truth = bars
    kw = dict(background=BG, read_noise=RN, acceleration="biggs-andrews")
    path = _nmse_path(data, psf, truth, 150, **kw)
    assert path[-1] > 1.2 * path.min()  # the case really over-fits
    res = richardson_lucy(data, psf, 150, stop="auto", **kw)
    assert res.iterations < 100 and path[res.iterations - 1] <= max(1.05 * path.min(), path.min() + 0.02)


def test_back_projector_variant(bars):
    data, psf, truth = bars
    try:
        res = richardson_lucy(data, psf, 15, stop="auto", back_projector="wiener-butterworth", background=BG,
                              read_noise=RN, gain=1.0, offset=0.0)
    except TypeError as e:  # the back projector is not in this build
        pytest.skip(str(e))
    path = _nmse_path(data, psf, truth, 15, back_projector="wiener-butterworth", background=BG, read_noise=RN)
    assert path[res.iterations - 1] <= max(1.05 * path.min(), path.min() + 0.02)


def test_logs_one_info_line_and_estimates_camera(bars, caplog):
    data, psf, _ = bars
    with caplog.at_level(logging.INFO, logger="fijidecon"):
        res = richardson_lucy(data, psf, 30, stop="auto", acceleration="biggs-andrews", background=BG, read_noise=RN)
    lines = [r.getMessage() for r in caplog.records if "stop=auto chose" in r.getMessage()]
    assert len(lines) == 1 and f"chose {res.iterations} iterations" in lines[0]
    assert res.auto_stop["camera"] == "estimated" and 0.7 < res.auto_stop["gain"] < 1.3


def test_estimate_camera_recovers_gain_and_offset():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:128]
    e = 5 + 400 * np.exp(-((yy - 64) ** 2 + (xx - 64) ** 2) / (2 * 30.0 ** 2))  # smooth, wide range
    e = np.broadcast_to(e, (6, 128, 128))
    adu = rng.poisson(e) / 2.5 + 100.0  # gain 2.5 e-/ADU, offset 100 ADU, no read noise
    cam = A.estimate_camera(adu)
    assert cam is not None and abs(cam.gain - 2.5) < 0.15 and abs(cam.offset - 100) < 3


def test_offset_data_without_camera_values_warn(bars):
    data, psf, _ = bars
    adu = data / 4.0 + 100.0  # gain 4 e-/ADU, offset 100: not photo-electrons
    with pytest.warns(UserWarning, match="does not look like photo-electrons.*gain=.*offset="):
        res = richardson_lucy(adu, psf, 20, stop="auto", background=100 + BG / 4)
    assert res.auto_stop["camera"] == "estimated" and 3 < res.auto_stop["gain"] < 5.5
    assert abs(res.auto_stop["offset"] - 100) < 5


def test_each_channel_gets_its_own_camera_model_named_in_warnings_and_result(bars):
    """A two-channel run printed two 'does not look like photo-electrons' warnings without
    saying which channel, and its result held channel 0's gain and offset only."""
    data, psf, _ = bars
    two = np.stack([data, data / 4.0 + 100.0])  # (C, Z, Y, X): photo-electrons, then gain 4 e-/ADU, offset 100
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = richardson_lucy(two, psf, 30, stop="auto", background=[BG, 100 + BG / 4], read_noise=RN)
    texts = [str(w.message) for w in caught if "photo-electrons" in str(w.message)]
    assert texts and all(t.startswith("stop='auto' (volume t=0, c=1): the image does not look like") for t in texts)
    a = res.auto_stop
    assert len(a["per_volume"]) == 2 and a["camera"] == ["estimated", "estimated"]
    assert 0.7 < a["gain"][0] < 1.45 and 3 < a["gain"][1] < 5.5 and abs(a["offset"][1] - 100) < 5
    assert "per volume (t, c): (0, 0) " in a["note"] and "; (0, 1) " in a["note"]
    # which count every volume ran (in memory: the median), not only each volume's own
    assert a["note"].startswith(f"richardson-lucy: stop=auto chose {res.iterations} iterations for every volume, the "
                                "median of their own counts (")


def test_background_below_offset_warns(bars):
    data, psf, _ = bars
    with pytest.warns(UserWarning, match=r"^background: 0 is below the camera offset 100 \(given; stop='auto'\).*"
                                         r"give background=100 or more \(CLI --background"):
        richardson_lucy(data + 100, psf, 10, stop="auto", gain=1.0, offset=100.0, background=0)


def test_flat_image_warns_and_assumes_gain_1():
    rng = np.random.default_rng(1)
    img = rng.poisson(50.0, (12, 12)).astype(np.float32)  # too small to measure the noise
    with pytest.warns(UserWarning, match="could not be measured"):
        res = richardson_lucy(img, np.ones((3, 3)), 5, stop="auto", edges="periodic")
    assert res.auto_stop["camera"] == "assumed" and res.auto_stop["gain"] == 1.0


@pytest.mark.parametrize("kw,match", [
    (dict(gain=0), "gain"), (dict(gain=-1.0), "gain"), (dict(gain="x"), "gain"), (dict(offset=float("nan")), "offset"),
    (dict(iterations=0), "iterations"), (dict(start=np.ones((16, 64, 64))), "start"),
])
def test_bad_parameters_one_line_errors(bars, kw, match):
    data, psf, _ = bars
    kw = dict(kw)
    its = kw.pop("iterations", 10)
    with pytest.raises((ValueError, TypeError), match=f"^{match}") as e:
        richardson_lucy(data, psf, its, stop="auto", **kw)
    assert "\n" not in str(e.value)


def test_gain_without_auto_is_refused(bars):
    data, psf, _ = bars
    with pytest.raises(ValueError, match="^gain: .*stop='auto'"):
        richardson_lucy(data, psf, 5, gain=2.0)


@pytest.mark.parametrize("kw,match", [(dict(fraction=1.0), "auto_fraction"), (dict(fraction=0), "auto_fraction"),
                                      (dict(criterion="gcv"), "criterion"), (dict(folds=0), "folds"),
                                      (dict(seed=-1), "seed")])
def test_choose_iterations_options_checked(bars, kw, match):
    data, psf, _ = bars
    with pytest.raises((ValueError, TypeError), match=f"^{match}"):
        A.choose_iterations(data, psf, 10, **kw)


def test_folds_average_and_likelihood_criterion(bars):
    data, psf, _ = bars
    kw = dict(background=BG, read_noise=RN, acceleration="biggs-andrews", gain=1.0, offset=0.0)
    one = A.choose_iterations(data, psf, 40, seed=5, **kw)
    two = A.choose_iterations(data, psf, 40, seed=5, folds=2, **kw)
    assert two["folds"] == 2 and two["curve"] != one["curve"]
    # the first fold of two is the single fold: same thinning, so the average differs from it only by fold 2
    lik = A.choose_iterations(data, psf, 40, seed=5, criterion="likelihood", **kw)
    assert lik["curve"][:5] == one["likelihood_curve"][:5] and lik["criterion"] == "likelihood"


def test_thin_halves_are_poisson_and_sum_back():
    rng = np.random.default_rng(0)
    y = rng.poisson(30.0, 200000).astype(np.float64)
    y1, y2 = A.thin(y, 0.8, rng)
    np.testing.assert_array_equal(y1 + y2, y)
    assert abs(y1.mean() - 24) < 0.1 and abs(y1.var() / y1.mean() - 1) < 0.03
    assert abs(np.corrcoef(y1, y2)[0, 1]) < 0.01  # independent parts


def test_hyperstack_gets_one_count(bars):
    data, psf, _ = bars
    stack = np.stack([data, data])
    res = richardson_lucy(stack, psf, 20, stop="auto", axes="CZYX", gain=1.0, offset=0.0, background=BG,
                          read_noise=RN, acceleration="biggs-andrews")
    assert res.image.shape == stack.shape and len(res.auto_stop["per_volume"]) == 2
    assert res.iterations == res.auto_stop["iteration"]


def test_each_volume_s_choice_is_its_own_whatever_comes_before_it(bars):
    """A 2-channel stack: numpy chose [40, 39] and Dask (each volume on its own) [40, 40] on the same
    data: one random stream thinned every volume in turn.  Each volume is thinned from the seed
    afresh now: its count is the one it gets alone, so the two paths and the order agree."""
    data, psf, _ = bars
    other = np.random.default_rng(11).poisson(np.clip(data - BG, 0, None) * 0.6 + BG).astype(np.float32)
    kw = dict(gain=1.0, offset=0.0, background=BG, read_noise=RN, acceleration="biggs-andrews")
    alone = [A.choose_iterations(v, psf, 40, **kw)["iteration"] for v in (data, other)]
    both = A.choose_iterations(np.stack([data, other]), psf, 40, axes="CZYX", **kw)
    flipped = A.choose_iterations(np.stack([other, data]), psf, 40, axes="CZYX", **kw)
    assert both["per_volume"] == alone and flipped["per_volume"] == alone[::-1], (alone, both["per_volume"])


def test_cli_stop_auto_records_choice(bars, tmp_path):
    import tifffile

    from fijidecon.cli import cli

    data, psf, _ = bars
    tifffile.imwrite(tmp_path / "img.tif", data[:, :48, :48])
    tifffile.imwrite(tmp_path / "psf.tif", psf)
    out = tmp_path / "out.tif"
    r = CliRunner().invoke(cli, ["deconvolve", "richardson-lucy", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"),
                                  "-o", str(out), "--iterations", "40", "--stop", "auto", "--acceleration",
                                  "biggs-andrews", "--background", "10", "--read-noise", "2", "--gain", "1",
                                  "--offset", "0"])
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "out.tif.json").read_text())
    auto = rec["result"]["auto_stop"]
    assert rec["result"]["iterations"] == auto["iteration"] and rec["result"]["stop_reason"] == "auto"
    assert len(auto["curve"]) >= min(auto["iteration"], 20) and auto["camera"] == "given"
    assert any("--stop auto chose" in n for n in rec["notes"])  # in the command's terms, as from main()
    assert "(auto)" in r.output
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert tifffile.imread(out).shape == (16, 48, 48)


@pytest.mark.parametrize("edges", ["non-circulant", "periodic", "reflect"])
def test_every_edge_mode(bars, edges):
    data, psf, _ = bars
    r = A.choose_iterations(data[:, :40, :40], psf, 25, edges=edges, gain=1.0, offset=0.0, background=BG,
                            read_noise=RN, acceleration="biggs-andrews")
    ks = [k for k, _ in r["curve"]]
    # 16 planes and a 17-plane PSF: no plane is exact from the image alone, the engine's grid is used
    assert r["scored"] == "whole image" and ks[0] == 1 and 1 <= r["iteration"] <= 25
    assert ks[-1] == 25 or ks[-1] >= 10 + A.PATIENCE * r["thinned_iteration"]  # the maximum is scored unless stopped


def test_interior_scored_when_the_psf_is_small(bars):
    data, psf, _ = bars
    r = A.choose_iterations(data, psf[4:-4], 10, gain=1.0, offset=0.0, background=BG, read_noise=RN)
    assert r["scored"] == "image interior"


def test_scorer_falls_back_to_the_interior_for_a_copy(bars):
    """An estimate that is not a view of the engine's grid is scored where H x is exact."""
    data, psf, truth = bars
    sc = A._Scorer(data, psf, 0.25, BG, "non-circulant", A.DEBLUR_EPS)
    deb, nll = sc(np.array(truth + 1, np.float32))
    assert sc.mode == "image" and np.isfinite(deb) and np.isfinite(nll)
    # Y, X: the image less the PSF's width; Z (16 planes, PSF 17): no voxel is exact, the central half is used
    assert sc.y2.shape == (8,) + tuple(n - k + 1 for n, k in zip(data.shape[1:], psf.shape[1:]))


def test_2d_image_and_estimated_camera(bars):
    data, psf, truth = bars
    img, p2 = data[8], psf[psf.shape[0] // 2]
    res = richardson_lucy(img, p2, 40, stop="auto", background=BG, read_noise=RN, acceleration="biggs-andrews")
    assert res.image.shape == img.shape and 1 <= res.iterations <= 40
    assert res.auto_stop["camera"] == "estimated" and 0.7 < res.auto_stop["gain"] < 1.45


def _beads(seed):
    """20 point sources of 400-2000 photons (sparse: the NMSE keeps falling long after the score's minimum)."""
    rng = np.random.default_rng(seed)
    shape = (16, 48, 48)
    big = np.zeros(tuple(n + 2 * MARGIN for n in shape), np.float32)
    idx = tuple(rng.integers(MARGIN + 2, MARGIN + s - 2, 20) for s in shape)
    big[idx] = rng.uniform(2, 10, 20) * PEAK
    psf = _psf()
    fov = tuple(slice(MARGIN, MARGIN + n) for n in shape)
    mean = np.clip(convolve(big, psf, edges="constant"), 0, None)[fov] + BG
    return (rng.poisson(mean) + rng.normal(0, RN, mean.shape)).astype(np.float32), psf, big[fov]


@pytest.mark.parametrize("seed", [0, 3])
def test_sparse_objects_go_past_the_minimum_within_one_standard_error(seed):
    """The score's minimum stops beads too early (momentum); the latest iterate within one SE lands near the best."""
    data, psf, truth = _beads(seed)
    kw = dict(background=BG, read_noise=RN, acceleration="momentum")
    path = _nmse_path(data, psf, truth, 80, **kw)
    best = path.min()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "chose the last iteration": the best is the last here
        res = richardson_lucy(data, psf, 80, stop="auto", gain=1.0, offset=0.0, **kw)
    a = res.auto_stop
    assert path[a["minimum"] - 1] > 1.15 * best  # the minimum alone misses (the case needs the rule)
    assert a["minimum"] < a["thinned_iteration"] <= A.LATE_CAP * a["minimum"]
    assert path[res.iterations - 1] <= max(1.05 * best, best + 0.02), (a["minimum"], res.iterations, best)
    assert "standard error" in a["rule"]


def test_standard_error_matches_fresh_poisson_draws(bars):
    """SE of D(k) - D(ref) from one held-out image equals the spread over independent held-out images."""
    data, psf, _ = bars
    p, rng = 0.8, np.random.default_rng(7)
    y1 = np.clip(data, 0, None) * p
    x_ref = richardson_lucy(y1, psf, 10, background=p * BG, acceleration=None).image
    x_k = richardson_lucy(y1, psf, 40, background=p * BG, acceleration=None).image
    scale = (1 - p) / p

    def scorer(y2):
        return A._Scorer(y2, psf, scale, p * BG, "non-circulant", A.DEBLUR_EPS)

    first = scorer(np.zeros_like(data))
    first(x_ref)
    mean_y2 = scale * first.last[0]  # the reference model, in held-out counts, over the scored box
    diffs, ses = [], []
    for _ in range(60):
        y2 = np.zeros_like(data)
        y2[first.box] = rng.poisson(mean_y2)
        s = scorer(y2)
        d_ref = s(x_ref)[0]
        ref = s.last
        diffs.append(s(x_k)[0] - d_ref)
        ses.append(s.standard_error(ref))
    assert abs(np.std(diffs) / np.median(ses) - 1) < 0.25, (np.std(diffs), np.median(ses))


def test_cli_stop_auto_without_iterations_chooses_up_to_200_and_says_so(bars, tmp_path):
    """The default --iterations (30) would cap the choice: auto alone raises the maximum, with a note."""
    import tifffile

    from fijidecon.cli import cli

    data, psf, _ = bars
    tifffile.imwrite(tmp_path / "img.tif", data[:, :48, :48])
    tifffile.imwrite(tmp_path / "psf.tif", psf)
    args = ["deconvolve", "richardson-lucy", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"), "--stop", "auto",
            "--background", "10", "--read-noise", "2", "--gain", "1", "--offset", "0"]
    r = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "a.tif")])
    assert r.exit_code == 0, r.output
    auto = json.loads((tmp_path / "a.tif.json").read_text())["result"]["auto_stop"]
    assert auto["maximum"] == 200 and "choosing the count up to 200" in r.output
    r = CliRunner().invoke(cli, [*args, "--iterations", "15", "-o", str(tmp_path / "b.tif")])
    assert r.exit_code == 0, r.output
    auto = json.loads((tmp_path / "b.tif.json").read_text())["result"]["auto_stop"]
    assert auto["maximum"] == 15 and "choosing the count up to" not in r.output


def test_cli_prints_each_camera_warning_once(bars, tmp_path):
    import tifffile

    from fijidecon.cli import cli

    data, psf, _ = bars
    tifffile.imwrite(tmp_path / "img.tif", (data / 4.0 + 100.0)[:, :48, :48])  # gain 4 e-/ADU, offset 100
    tifffile.imwrite(tmp_path / "psf.tif", psf)
    r = CliRunner().invoke(cli, ["deconvolve", "richardson-lucy", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"),
                                 "--stop", "auto", "--iterations", "20", "--background", "102.5",
                                 "-o", str(tmp_path / "o.tif")])
    assert r.exit_code == 0, r.output
    lines = [ln for ln in r.output.splitlines() if "does not look like photo-electrons" in ln]
    assert len(lines) == 1 and lines[0].startswith("Warning:")


def test_offset_at_or_above_the_maximum_is_refused(bars):
    data, psf, _ = bars
    with pytest.raises(ValueError, match=r"^offset: the camera offset \(500\) is at or above the image's maximum"):
        richardson_lucy(data, psf, 10, stop="auto", gain=1.0, offset=500.0, background=BG)


def test_the_choice_is_in_result_notes(bars):
    data, psf, _ = bars
    res = richardson_lucy(data, psf, 20, stop="auto", gain=1.0, offset=0.0, background=BG, read_noise=RN)
    assert res.auto_stop["note"] in res.notes and f"chose {res.iterations} iterations" in res.auto_stop["note"]


def test_mostly_zero_simulated_data_warns_to_pass_the_camera(bars):
    """Poisson counts without background (most voxels exactly 0): the noise estimate is unreliable, say so."""
    _, psf, truth = bars
    rng = np.random.default_rng(2)
    data = rng.poisson(np.clip(convolve(truth.astype(np.float32), psf), 0, None) * 0.02).astype(np.float32)
    assert np.mean(data == 0) > 0.5
    with pytest.warns(UserWarning, match=r"of the voxels equal the image's minimum .* pass gain= and offset="):
        richardson_lucy(data, psf, 5, stop="auto")


def test_auto_in_bricks_and_on_dask_chooses_on_the_central_brick(bars):
    """stop='auto' with bricks (or a Dask image, or a choice that does not fit memory_limit) was
    refused or ran whole: each volume's count is now chosen on its central brick (halo included)
    by choose_iterations, and every brick runs to it; a Dask image gives the same numbers."""
    da = pytest.importorskip("dask.array")
    data, psf, _ = bars
    kw = dict(background=BG, read_noise=RN, acceleration="momentum", bricks=(16, 32, 32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the costly-bricks warning of these small bricks
        res = richardson_lucy(data, psf, 60, stop="auto", **kw)
        lazy = richardson_lucy(da.from_array(data, chunks=(16, 32, 32)), psf, 60, stop="auto", **kw)
        pilot = res.auto_stop["brick"]
        k = res.auto_stop["iteration"]
        fixed = richardson_lucy(data, psf, k, **kw)
    assert res.stop_reason == "auto" and res.auto_stop["on"] == "central brick" and res.iterations == k
    assert 1 <= k <= 60 and pilot[0] == 16 and pilot[1] < 64  # a brick with its halo, not the whole image
    np.testing.assert_array_equal(res.image, fixed.image)  # the count applied to every brick
    assert lazy.auto_stop["iteration"] == k and lazy.stop_reason == "auto"
    np.testing.assert_allclose(np.asarray(lazy.image), res.image, rtol=0, atol=1e-5 * float(res.image.max()))
    assert any("decided by the stopping rule on the central brick" in n for n in res.notes), res.notes


def test_auto_memory_is_counted_and_a_choice_over_the_budget_goes_to_bricks(bars):
    """The choice holds about 11 image volumes more than the run (measured 10.7-11.5): counted in
    estimate_memory(stop='auto'); under a memory_limit the whole choice would exceed, the count is
    chosen on the central brick instead of risking an out-of-memory kill."""
    from fijidecon.deconvolve import estimate_memory
    from fijidecon.deconvolve._memory import AUTO_IMAGE_VOLUMES

    data, psf, _ = bars
    plain = estimate_memory("richardson-lucy", data.shape, psf.shape, acceleration="momentum")
    auto = estimate_memory("richardson-lucy", data.shape, psf.shape, acceleration="momentum", stop="auto")
    assert auto - plain >= (AUTO_IMAGE_VOLUMES - 1) * data.nbytes
    limit = plain + 2 * data.nbytes + (auto - plain) // 2  # the run fits whole, its choice does not
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = richardson_lucy(data, psf, 40, stop="auto", background=BG, read_noise=RN, acceleration="momentum",
                              memory_limit=limit)
    assert res.auto_stop["on"] == "central brick"
    whole = richardson_lucy(data, psf, 40, stop="auto", background=BG, read_noise=RN, acceleration="momentum")
    assert "on" not in whole.auto_stop


def test_too_few_photo_electrons_names_the_camera_model_used(bars):
    """A fresh batch user's --gain 100 with an estimated offset: 'at most 0 photo-electrons' pointed at the gain,
    while the estimated offset (not printed) was the cause."""
    data, psf, _ = bars
    with pytest.raises(ValueError, match=r"^gain: \(image - offset\) x gain is at most .* \(here gain 0\.001 "
                                         r"e-/image unit, offset 0, given\)$"):
        richardson_lucy(data, psf, 10, stop="auto", gain=1e-3, offset=0.0, background=BG)
