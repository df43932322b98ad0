"""wiener(): automatic regularisation (Imspector's rule, GCV), flux, symmetry, analytic case, bad input."""

import numpy as np
import pytest

from fijidecon.deconvolve import convolve, wiener
from fijidecon.deconvolve.wiener import WienerResult


def gauss(shape, sigma, centre=None):
    centre = [n // 2 for n in shape] if centre is None else centre
    sigma = np.broadcast_to(np.asarray(sigma, float), (len(shape),))
    g = np.indices(shape, dtype=float)
    return np.exp(-0.5 * sum(((gi - c) / s) ** 2 for gi, c, s in zip(g, centre, sigma)))


PSF = gauss((15, 15), 2.0)


def bars(shape=(64, 64)):
    obj = np.zeros(shape, np.float32)
    for i, x in enumerate(range(12, 52, 8)):
        obj[16:48, x:x + 2 + i % 2] = 100
    return obj


def noisy(obj, psf=PSF, bg=10.0, seed=0):
    blurred = convolve(obj, psf, edges="periodic") + bg
    return np.random.default_rng(seed).poisson(np.clip(blurred, 0, None)).astype(np.float32)


def test_imspector_rule_is_the_smallest_rho_meeting_10_percent():
    data = noisy(bars())
    res = wiener(data, PSF, edges="periodic")
    assert isinstance(res, WienerResult) and res.rule == "imspector"
    assert res.image.dtype == np.float32 and res.image.shape == data.shape
    assert res.negative_fraction <= 0.10 + 1e-6
    # a clearly smaller rho breaks the rule, so the one chosen is (close to) the smallest
    smaller = wiener(data, PSF, regularization=res.regularization / 1.5, edges="periodic")
    assert smaller.negative_fraction > 0.10
    assert smaller.rule == "given" and smaller.regularization == pytest.approx(res.regularization / 1.5)


def test_gcv_beats_extreme_choices():
    obj = bars()
    data = noisy(obj, bg=0.0, seed=2)
    def err(r):
        return float(np.mean((r.image - obj) ** 2))
    g = wiener(data, PSF, "gcv", edges="periodic")
    assert g.rule == "gcv" and 1e-12 <= g.regularization <= 10
    assert err(g) < err(wiener(data, PSF, 1e-7, edges="periodic"))
    assert err(g) < err(wiener(data, PSF, 3.0, edges="periodic"))


def test_flux_scaled_by_one_over_one_plus_rho():
    data = noisy(bars())
    r = wiener(data, PSF, 0.01, edges="periodic")
    assert float(r.image.sum()) == pytest.approx(float(data.sum()) / 1.01, rel=1e-4)


def test_gaussian_analytic_case_recovers_object():
    shape = (64, 64)
    obj = gauss(shape, 2.5).astype(np.float32) * 1000
    data = convolve(obj, gauss((31, 31), 2.0), edges="periodic")  # = wider Gaussian, noise-free
    r = wiener(data, gauss((31, 31), 2.0), 1e-6, edges="periodic")
    np.testing.assert_allclose(r.image, obj, atol=2e-3 * obj.max())


def test_symmetry_3d_reflect_and_anisotropic_psf():
    obj = np.zeros((16, 24, 24), np.float32)
    obj[6:10, 8:16, 10:14] = 50
    psf = gauss((9, 9, 9), (2.0, 1.0, 1.0))  # anisotropic voxels: wider in z
    data = convolve(obj, psf) + 5
    r = wiener(data, psf, 1e-3)
    np.testing.assert_allclose(r.image, r.image[::-1, ::-1, ::-1], atol=1e-3 * r.image.max())
    assert r.image.shape == obj.shape


def test_channels_report_one_rho_each():
    data = np.stack([noisy(bars(), seed=s) for s in (0, 1)])
    r = wiener(data[:, None], [PSF[None], PSF[None]], edges="periodic")
    assert r.image.shape == (2, 1, 64, 64)
    assert len(r.regularization) == 2 and all(v > 0 for v in r.regularization)


def test_input_not_modified_and_negatives_allowed():
    data = noisy(bars()) - 20
    before = data.copy()
    wiener(data, PSF, 1e-2)
    np.testing.assert_array_equal(data, before)


def test_bad_input():
    data = noisy(bars())
    with pytest.raises(ValueError, match="regularization"):
        wiener(data, PSF, -1.0)
    with pytest.raises(ValueError, match="regularization"):
        wiener(data, PSF, "lcurve")
    assert wiener(data, PSF, "1e-2").regularization == pytest.approx(1e-2)  # as typed in a dialog
    assert wiener(data, PSF, "auto").rule == "imspector"
    assert wiener(data[:10, :10], PSF).image.shape == (10, 10)  # a bigger PSF is used, not refused
    with pytest.raises(ValueError, match="psf.*zero"):
        wiener(data, np.zeros((5, 5)))
    with pytest.raises(ValueError, match="dimensionality"):
        wiener(data, np.ones((3, 3, 3)))
    bad = data.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="image"):
        wiener(bad, PSF)
    with pytest.raises(ValueError, match="edges"):
        wiener(data, PSF, edges="non-circulant")
