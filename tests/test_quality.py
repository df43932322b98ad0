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
    slow = np.linspace(1, 0.3, 100)  # plain RL: best at 100 iterations, 0.1 s each
    boards = {"ph": ({"RL": _curve(q, slow, 0.1), "fast": _curve(q, [0.8, 0.4, 0.29], 0.1)}, None, None)}
    lines, ok = q.must_show(boards)
    assert ok and "PASS" in lines[0] and "fast" in lines[0]
    boards = {"ph": ({"RL": _curve(q, slow, 0.1), "slow": _curve(q, np.linspace(1, 0.29, 60), 0.1)}, None, None)}
    lines, ok = q.must_show(boards)
    assert not ok and "FAIL" in lines[0]
    early = {"ph": ({"RL": _curve(q, [0.5, 0.4, 0.45], 0.1)}, None, None)}
    lines, ok = q.must_show(early)
    assert ok and "no speed-up target" in lines[0]


@pytest.mark.slow
def test_quick_scoreboard_prints_every_method_and_plots(q, tmp_path, capsys):
    out = tmp_path / "q.png"
    q.main(["--quick", "--only", "bars", "--no-hollow-bars", "--out", str(out)])
    text = capsys.readouterr().out
    for label in list(q.METHODS) + ["Wiener default (reference)"]:
        assert label in text
    assert "== bars: NMSE / PSNR (dB) / SSIM at 1, 2, 5, 10, 20, 50, 100, 200 iterations ==" in text
    assert "time to RL best" in text and "Must show" in text
    assert out.stat().st_size > 10_000 and (tmp_path / "q_time.png").stat().st_size > 10_000
