"""benchmarks/quality.py, the scoreboard of issue 10: its bookkeeping (time to quality, best iterate,
the must-show verdicts) on made-up curves, and a quick run on one phantom that prints every method and
writes both plots."""

from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest

PATH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "quality.py"


@pytest.fixture(scope="module")
def q():
    spec = importlib.util.spec_from_file_location("fijidecon_quality_scoreboard", PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _curve(q, nmse, seconds, setup=0.5):
    c = q.Curve(np.ones((2, 2, 2)))
    c.nmse = list(nmse)
    c.sec = [seconds] * len(nmse)
    k = int(np.nanargmin(nmse))
    c.best = (k + 1, float(nmse[k]), None)
    return c.finish(setup + seconds * len(nmse))


def test_time_to_quality_counts_set_up_and_iterations(q):
    c = _curve(q, [0.9, 0.7, 0.5, 0.6], seconds=0.1, setup=0.5)
    assert c.time_to(0.7) == (2, pytest.approx(0.7))
    assert c.time_to(0.5) == (3, pytest.approx(0.8))
    assert c.time_to(0.4) is None
    assert c.best[:2] == (3, 0.5)


def test_must_show_verdicts(q):
    slow = np.linspace(1, 0.3, 100)  # plain RL: best at 100 iterations
    boards = {"ph": ({"RL": _curve(q, slow, 0.1), "fast": _curve(q, [0.8, 0.4, 0.29], 0.1)}, None, None)}
    # the re-measured times: (iterations, median seconds, ratio to plain RL in each round)
    timings = {"ph": {"RL": (100, 10.0, [1.0] * 5), "fast": (3, 0.8, [0.07, 0.08, 0.08, 0.09, 0.12])}}
    lines, ok = q.must_show(boards, timings)
    assert ok and "PASS" in lines[0] and "fast at 3: 0.080x (median of 5, 0.070-0.120)" in lines[0]
    timings["ph"]["fast"] = (3, 1.2, [0.11, 0.12, 0.12, 0.09, 0.13])
    lines, ok = q.must_show(boards, timings)
    assert not ok and "FAIL" in lines[0]
    early = {"ph": ({"RL": _curve(q, [0.5, 0.4, 0.45], 0.1)}, None, None)}
    lines, ok = q.must_show(early, {})
    assert ok and "no speed-up target" in lines[0]


def test_timed_ratios_time_whole_calls_to_each_methods_hit(q):
    rng = np.random.default_rng(0)
    truth = np.zeros((8, 24, 24))
    truth[4, 8:16, 12] = 200.0
    psf = q.gaussian_psf((1.0, 1.0, 1.0))
    data = rng.poisson(q.convolve(truth, psf, edges="constant") + 5).astype(np.float32)
    curves = {"RL": _curve(q, [0.9, 0.8, 0.7], 0.1), "RL + momentum": _curve(q, [0.8, 0.7, 0.6], 0.1)}
    tm = q.timed_ratios((data, psf, dict(background=5.0)), curves, repeats=2)
    assert tm["RL"][0] == 3 and tm["RL + momentum"][0] == 2  # each to its first iterate at plain RL's best
    assert tm["RL"][2] == [1.0, 1.0] and len(tm["RL + momentum"][2]) == 2 and tm["RL"][1] > 0


@pytest.mark.slow
def test_quick_scoreboard_prints_every_method_plots_and_meets_the_harness_targets(q, tmp_path, capsys):
    """--quick on bars and the near-edge cubes: every method, both plots, and the two checks of issue 3
    (Biggs-Andrews reaches plain RL's NMSE after 100 iterations within 60; non-circulant edges keep the
    border cubes within 1.5x the interior's error)."""
    import re

    out = tmp_path / "q.png"
    q.main(["--quick", "--only", "bars", "near-edge", "--no-hollow-bars", "--out", str(out)])
    text = capsys.readouterr().out
    for label in list(q.METHODS) + ["Wiener default (reference)"]:
        assert label in text
    assert "== bars: NMSE / PSNR (dB) / SSIM at 1, 2, 5, 10, 20, 50, 100, 200 iterations ==" in text
    assert "time to RL best" in text and "Must show" in text
    assert out.stat().st_size > 10_000 and (tmp_path / "q_time.png").stat().st_size > 10_000
    m = re.search(r"bars\s+plain@100: NMSE [0-9.]+\s+-> accelerated reaches it at iteration (\d+)", text)
    assert m and int(m.group(1)) <= 60
    m = re.search(r"non-circulant\s+\(a\) border [0-9.]+ interior [0-9.]+ ratio ([0-9.]+)", text)
    assert m and float(m.group(1)) <= 1.5


def test_stop_limits_weightings_and_quick_run(capsys):
    """benchmarks/stop_limits.py: the weightings (1 at the OTF's peak, all 1 for eps 0, falling where the
    OTF is small) and a short run on bars that prints one line per method and the hit counts."""
    spec = importlib.util.spec_from_file_location("fijidecon_stop_limits", PATH.parent / "stop_limits.py")
    sl = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sl)
    psf = sl.Q.gaussian_psf((1.0, 1.4, 1.4))
    ws = sl.weights(psf, (12, 32, 32))
    assert [w[0, 0, 0] for w in ws] == pytest.approx([1.0] * len(ws), abs=2e-3)
    assert np.all(ws[-1] == 1.0)
    high = ws[0][6, 16, 16]  # Nyquist in every axis: the PSF passes almost nothing there
    assert high < 1e-3 and ws[0].min() <= ws[2].min()
    sl.main(["--only", "bars", "--iterations", "6"])
    out = capsys.readouterr().out
    assert out.count("bars ") == 3 and "held-out 0.001:" in out and "held-out 1e-05:" in out
    assert "oracle NMSE 3," in out  # the NMSE's own minimum is always the best
