"""Scaled heavy-ball momentum for Richardson-Lucy (issue 10): keeps improving past the iteration
where Biggs-Andrews starts to degrade, on the bars phantom of ``benchmarks/quality.py``."""

from __future__ import annotations

import numpy as np
import pytest

from fijidecon.deconvolve import convolve, richardson_lucy

SHAPE, MARGIN, SIGMA, BACKGROUND, READ_NOISE, PEAK = (24, 96, 96), 10, (2.0, 1.4, 1.4), 10.0, 2.0, 200.0


def _psf():
    shape = tuple(2 * int(np.ceil(4 * s)) + 1 for s in SIGMA)
    g = np.indices(shape, dtype=float)
    p = np.exp(-0.5 * sum(((gi - n // 2) / s) ** 2 for gi, n, s in zip(g, shape, SIGMA)))
    return (p / p.sum()).astype(np.float32)


def _bars():
    """The bars phantom of benchmarks/quality.py (2-voxel bars, gaps 1-5), Poisson + read noise."""
    t = np.zeros(tuple(n + 2 * MARGIN for n in SHAPE), np.float32)
    z0, y0, x = MARGIN + SHAPE[0] // 2 - 3, MARGIN + 12, MARGIN + 8
    for gap in (1, 2, 3, 4, 5):
        for _ in range(3):
            t[z0:z0 + 6, y0:y0 + 72, x:x + 2] = PEAK
            x += 2 + gap
        x += 6
    rng = np.random.default_rng(7)
    blurred = np.clip(convolve(t, _psf(), edges="constant"), 0, None)
    fov = tuple(slice(MARGIN, MARGIN + n) for n in SHAPE)
    data = rng.poisson(blurred[fov] + BACKGROUND).astype(np.float32)
    data += rng.normal(0, READ_NOISE, data.shape).astype(np.float32)
    return t[fov].astype(np.float64), data


def _curve(data, truth, acceleration, n):
    t2 = float(np.sum(truth ** 2))
    curve = []
    r = richardson_lucy(data, _psf(), n, background=BACKGROUND, read_noise=READ_NOISE, acceleration=acceleration,
                        callback=lambda f, e: curve.append(float(np.sum((e - truth) ** 2)) / t2))
    return np.array(curve), r


def test_momentum_keeps_improving_where_biggs_andrews_degrades():
    truth, data = _bars()
    ba, _ = _curve(data, truth, "biggs-andrews", 60)
    mo, r = _curve(data, truth, "momentum", 60)
    kb = int(np.argmin(ba)) + 1  # Biggs-Andrews' best iteration (~30)
    assert ba[kb + 9] > ba[kb - 1] * 1.05  # Biggs-Andrews degrades after its best ...
    assert mo[kb + 4] < mo[kb - 1]  # ... where momentum still improves
    assert mo[kb + 9] < ba[kb + 9]
    assert mo.min() <= ba.min() * 1.1
    alphas = r.figures("acceleration")
    assert alphas[0] == 0 and 0 < alphas[1] <= 0.95 and alphas.max() <= 0.95


@pytest.mark.parametrize("kw", [dict(), dict(regularization="tv")])
def test_momentum_factor_follows_k_over_k_plus_3_without_restarts(kw):
    """deconwolf's schedule, no restart (on these beads with TV a restart rule fired 16 times in 40 iterations)."""
    r = richardson_lucy(_beads(), _psf(), 40, background=5, **kw)
    a = r.figures("acceleration")
    k = np.arange(len(a))
    np.testing.assert_allclose(a, np.minimum(k / (k + 3.0), 0.95), rtol=1e-12)


def _beads():
    rng = np.random.default_rng(1)
    obj = np.zeros((20, 40, 44), np.float32)
    obj[tuple(rng.integers(0, s, 40) for s in obj.shape)] = rng.uniform(100, 900, 40)
    return rng.poisson(convolve(obj, _psf(), edges="constant") + 5).astype(np.float32)


@pytest.mark.parametrize("kw", [dict(), dict(edges="periodic"), dict(regularization="tv"),
                                dict(edges="reflect", read_noise=1.0)])
def test_prefetched_extrapolation_equals_the_step_by_step_iteration(kw):
    """The default (momentum) computes the next extrapolation and its FFT inside the update pass;
    resuming one iteration at a time recomputes them in a pass of their own: the same numbers,
    with TV as without."""
    img = _beads()
    full = richardson_lucy(img, _psf(), 25, background=5, **kw)
    assert full.acceleration == "momentum"
    r = richardson_lucy(img, _psf(), 1, background=5, **kw)
    for _ in range(24):
        r = richardson_lucy(img, _psf(), 1, background=5, start=r, **kw)
    np.testing.assert_array_equal(r.image, full.image)
    assert [h.acceleration for h in r.history] == [h.acceleration for h in full.history[-1:]]


def test_default_is_momentum_on_every_face():
    """The scoreboard's best method is the default of the API, and so of the CLI, the ImageJ
    dialog, macro keys and #@ scripts (all read the API's signature)."""
    import inspect

    from fijidecon.commands import all_commands
    assert inspect.signature(richardson_lucy).parameters["acceleration"].default == "momentum"
    cmd = next(c for c in all_commands() if c.id == "richardson-lucy")
    assert dict(cmd.defaults())["acceleration"] == "momentum"
    assert dict(cmd.defaults())["initial"] == "flat"


def test_second_order_biggs_andrews_reaches_plain_rl_sooner_and_better():
    """``"biggs-andrews-2"``: second-order term and the factor ``a_BA ** (1/4)``."""
    truth, data = _bars()
    plain, _ = _curve(data, truth, None, 150)
    ba, rb = _curve(data, truth, "biggs-andrews", 40)
    ba2, r2 = _curve(data, truth, "biggs-andrews-2", 40)
    target = plain.min()  # plain RL's best (~0.15 at ~140)

    def first(c):
        hit = np.flatnonzero(c <= target)
        return int(hit[0]) + 1 if hit.size else 10 ** 6
    assert first(ba2) < first(ba) and first(ba2) <= 150 // 6, (first(ba2), first(ba))
    assert ba2.min() < target  # and gets better than plain RL's best
    a2 = r2.figures("acceleration")
    assert a2[:2].max() == 0 and 0.5 < a2.max() <= 0.95 ** 0.25  # bolder than BA's factors
    assert a2[a2 > 0].mean() > rb.figures("acceleration")[a2 > 0].mean()
