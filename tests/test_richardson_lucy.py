"""richardson_lucy(): shapes, dtypes, flux, symmetry, resume, snapshots, stopping, edges,
acceleration, regularisation, the Gaussian (x) Gaussian case and bad input."""

import re

import numpy as np
import pytest

from fijidecon.deconvolve import RichardsonLucyResult, convolve, richardson_lucy


def gauss(shape, sigma, centre=None):
    centre = [n // 2 for n in shape] if centre is None else centre
    sigma = np.broadcast_to(np.asarray(sigma, float), (len(shape),))
    g = np.indices(shape, dtype=float)
    return np.exp(-0.5 * sum(((gi - c) / s) ** 2 for gi, c, s in zip(g, centre, sigma)))


PSF2 = gauss((13, 13), 1.8)
PSF3 = gauss((7, 11, 11), (1.6, 1.2, 1.2))


def bars2d(shape=(48, 56)):
    obj = np.zeros(shape, np.float32)
    for i, x in enumerate(range(10, 46, 6)):
        obj[12:36, x:x + 2] = 80 + 10 * i
    obj[40, 8] = 600
    return obj


def poisson(obj, psf, bg, seed=0, edges="constant"):
    m = np.clip(convolve(obj, psf, edges=edges), 0, None) + bg
    return np.random.default_rng(seed).poisson(m).astype(np.float32)


@pytest.fixture(scope="module")
def data2():
    return poisson(bars2d(), PSF2, 5.0)


def nmse(a, truth):
    return float(np.mean((a - truth) ** 2) / np.mean(truth ** 2))


def test_shapes_dtypes_and_input_untouched(data2):
    before = data2.copy()
    r = richardson_lucy(data2, PSF2, 5, background=5)
    assert isinstance(r, RichardsonLucyResult)
    assert r.image.shape == data2.shape and r.image.dtype == np.float32
    assert r.iterations == 5 and len(r.history) == 5 and r.stop_reason == "iterations"
    np.testing.assert_array_equal(data2, before)
    r16 = richardson_lucy(data2.astype(np.uint16), PSF2, 2)
    assert r16.image.dtype == np.float32
    obj3 = np.zeros((12, 20, 22), np.float32)
    obj3[4:8, 5:15, 6:16] = 40
    r3 = richardson_lucy(poisson(obj3, PSF3, 2.0), PSF3, 4, background=2, voxel_size=(0.3, 0.1, 0.1))
    assert r3.image.shape == obj3.shape and r3.image.dtype == np.float32
    assert (r.image >= 0).all() and (r3.image >= 0).all()
    assert np.asarray(r).shape == data2.shape


def test_restores_better_than_data(data2):
    truth = bars2d()
    r = richardson_lucy(data2, PSF2, 40, background=5)
    assert nmse(r.image, truth) < 0.7 * nmse(data2 - 5, truth)


def test_flux_periodic_exact_and_noncirculant_identity(data2):
    # periodic, b = 0: the estimate's sum equals the data's after every iteration
    r = richardson_lucy(data2, PSF2, 15, edges="periodic")
    assert float(r.image.sum()) == pytest.approx(float(data2.sum()), rel=2e-4)
    assert np.allclose(r.figures("flux"), data2.sum(), rtol=2e-4)
    # non-circulant, b = 0: sum over the data box of H x equals the data's sum after every iteration
    r = richardson_lucy(data2, PSF2, 15)
    x = r._state["x"]
    hx = convolve(x, PSF2, edges="periodic")[: data2.shape[0], : data2.shape[1]]
    assert float(hx.sum()) == pytest.approx(float(data2.sum()), rel=1e-3)


def test_object_inside_keeps_its_flux():
    obj = np.zeros((40, 40), np.float32)
    obj[15:25, 18:22] = 100
    data = convolve(obj, PSF2, edges="constant")
    r = richardson_lucy(data + 1e-3, PSF2, 30)
    assert float(r.image.sum()) == pytest.approx(float(obj.sum()), rel=1e-2)


@pytest.mark.parametrize("edges", ["non-circulant", "periodic", "reflect"])
def test_symmetry(edges):
    obj = np.zeros((33, 41), np.float32)
    obj[10:23, 12:15] = 50
    obj[10:23, 26:29] = 50
    obj[16, 20] = 300
    data = convolve(obj, PSF2, edges="constant") + 1
    r = richardson_lucy(data, PSF2, 20, edges=edges, background=1)
    np.testing.assert_allclose(r.image, r.image[::-1, ::-1], atol=2e-4 * r.image.max())


@pytest.mark.parametrize("edges,acc,reg", [("non-circulant", None, None),
                                           ("non-circulant", "biggs-andrews", None),
                                           ("non-circulant", "biggs-andrews-2", None),
                                           ("reflect", "biggs-andrews-2", "tv"),
                                           ("periodic", None, "tv"),
                                           ("reflect", "biggs-andrews", "tikhonov")])
def test_resume_30_plus_30_equals_60(data2, edges, acc, reg):
    kw = dict(edges=edges, acceleration=acc, regularization=reg, background=5)
    full = richardson_lucy(data2, PSF2, 60, **kw)
    half = richardson_lucy(data2, PSF2, 30, **kw)
    again = richardson_lucy(data2, PSF2, 30, start=half, **kw)
    assert again.iterations == 60 and again.history[0].iteration == 31
    np.testing.assert_allclose(again.image, full.image, rtol=1e-5, atol=1e-5 * full.image.max())
    # the first result is still valid and resumable
    again2 = richardson_lucy(data2, PSF2, 30, start=half, **kw)
    np.testing.assert_array_equal(again2.image, again.image)


def test_resume_from_an_array_periodic(data2):
    # from an array the acceleration's history is not known: the plain iteration resumes exactly
    full = richardson_lucy(data2, PSF2, 20, edges="periodic", acceleration=None)
    half = richardson_lucy(data2, PSF2, 10, edges="periodic", acceleration=None)
    again = richardson_lucy(data2, PSF2, 10, edges="periodic", start=half.image, acceleration=None)
    np.testing.assert_allclose(again.image, full.image, rtol=1e-5, atol=1e-5 * full.image.max())


def test_resume_with_other_settings_is_refused(data2):
    half = richardson_lucy(data2, PSF2, 3)
    with pytest.raises(ValueError, match="start"):
        richardson_lucy(data2, PSF2, 3, start=half, edges="periodic")
    # the message names what differs, not the internal key
    with pytest.raises(ValueError, match=r"\(acceleration 'momentum' -> 'biggs-andrews-2'\);"):
        richardson_lucy(data2, PSF2, 3, start=half, acceleration="biggs-andrews-2")
    half.drop_state()
    with pytest.raises(ValueError, match="start"):
        richardson_lucy(data2, PSF2, 3, start=half)


def test_resume_on_another_psf_or_image_of_the_same_shape_is_refused(data2):
    """A fresh user resumed with a PSF of another NA, and with the image flipped: both ran, 15 iterations,
    no word (the settings and shapes agreed)."""
    half = richardson_lucy(data2, PSF2, 3)
    other_psf = np.roll(PSF2, 1, axis=-1) + 0.01 * PSF2.max()
    with pytest.raises(ValueError, match=r"^start: the previous result was computed with another PSF \(the same "):
        richardson_lucy(data2, other_psf, 3, start=half, recenter=False)
    with pytest.raises(ValueError, match=r"^start: the previous result was computed with another image "):
        richardson_lucy(np.ascontiguousarray(data2[..., ::-1]), PSF2, 3, start=half)
    assert richardson_lucy(data2.copy(), PSF2.copy(), 3, start=half).iterations == 6  # equal copies resume


def test_snapshots(data2):
    r = richardson_lucy(data2, PSF2, 25, snapshot_every=10, background=5)
    assert sorted(r.snapshots) == [10, 20]
    ten = richardson_lucy(data2, PSF2, 10, background=5)
    np.testing.assert_array_equal(r.snapshots[10], ten.image)
    r = richardson_lucy(data2, PSF2, 20, snapshot_every=10, background=5)
    np.testing.assert_array_equal(r.snapshots[20], r.image)
    assert r.snapshots[10] is not r.snapshots[20]


def test_figures_are_recorded(data2):
    r = richardson_lucy(data2, PSF2, 12, background=5, acceleration="biggs-andrews", track_deviance=True)
    dev = r.figures("deviance")
    assert dev.shape == (12,) and np.all(np.isfinite(dev))
    assert dev[-1] < dev[0]
    assert r.figures("acceleration")[0] == 0 and r.figures("acceleration").max() > 0
    assert np.all(r.figures("relative_change") > 0) and np.all(r.figures("seconds") >= 0)
    # without tracking (the default) the deviance is not computed, and nothing else changes
    r2 = richardson_lucy(data2, PSF2, 12, background=5, acceleration="biggs-andrews")
    assert np.isnan(r2.figures("deviance")).all()
    np.testing.assert_array_equal(r2.image, r.image)


def test_gaussian_analytic_case():
    """Noise-free Gaussian (x) Gaussian: RL recovers the narrower Gaussian."""
    obj = (gauss((64, 64), 2.0) * 1000).astype(np.float32)
    psf = gauss((25, 25), 2.5)
    data = convolve(obj, psf, edges="periodic") + 0.01
    r = richardson_lucy(data, psf, 60, edges="periodic", background=0.01, acceleration=None)
    np.testing.assert_allclose(r.image, obj, atol=2e-3 * obj.max())


def test_discrepancy_stop_rule():
    truth = bars2d()
    data = poisson(truth, PSF2, 5.0, seed=4)
    r = richardson_lucy(data, PSF2, 500, background=5, stop="discrepancy")
    assert r.stop_reason == "stop" and r.iterations < 500
    last, prev = r.history[-1], r.history[-2]
    assert last.deviance <= last.deviance_expected and prev.deviance > prev.deviance_expected
    assert 1.0 < last.deviance_expected < 1.1
    # the result it stops at is a real restoration
    assert nmse(r.image, truth) < 0.7 * nmse(data - 5, truth)


def test_tolerance_callable_and_callback_stops(data2):
    r = richardson_lucy(data2, PSF2, 300, background=5, stop=1e-2)
    assert r.stop_reason == "stop" and r.history[-1].relative_change < 1e-2
    assert all(f.relative_change >= 1e-2 for f in r.history[:-1])
    r = richardson_lucy(data2, PSF2, 50, stop=lambda f: f.iteration == 7)
    assert r.iterations == 7
    seen = []
    r = richardson_lucy(data2, PSF2, 50, callback=lambda f, est: seen.append(est.shape) or f.iteration >= 4)
    assert r.iterations == 4 and r.stop_reason == "callback" and seen == [data2.shape] * 4


def test_acceleration_reaches_lower_error_sooner(data2):
    truth = bars2d()
    plain = richardson_lucy(data2, PSF2, 15, background=5)
    fast = richardson_lucy(data2, PSF2, 15, background=5, acceleration="biggs-andrews")
    assert nmse(fast.image, truth) < nmse(plain.image, truth)


def test_noncirculant_restores_near_edge_objects_better():
    obj = np.zeros((48, 48), np.float32)
    obj[2:20, 1:4] = 100  # a bar touching the left border
    obj[30:33, 30:33] = 300
    data = poisson(obj, PSF2, 2.0, seed=1, edges="constant")
    err = {}
    for e in ("non-circulant", "periodic"):
        r = richardson_lucy(data, PSF2, 40, edges=e, background=2)
        err[e] = nmse(r.image[:, :8], obj[:, :8])
    assert err["non-circulant"] < 0.8 * err["periodic"]


def test_regularisation_smooths(data2):
    def tv(a):
        return float(np.abs(np.diff(a, axis=0)).sum() + np.abs(np.diff(a, axis=1)).sum())
    plain = richardson_lucy(data2, PSF2, 40, background=5)
    rtv = richardson_lucy(data2, PSF2, 40, background=5, regularization="tv", weight=0.01)
    assert tv(rtv.image) < tv(plain.image)
    rtk = richardson_lucy(data2, PSF2, 40, background=5, regularization="tikhonov", weight=0.5)
    assert float((rtk.image ** 2).sum()) < float((plain.image ** 2).sum())
    assert rtv.regularization == "tv" and rtk.weight == 0.5


def test_channels_one_psf_each():
    obj = np.zeros((2, 8, 20, 20), np.float32)
    obj[:, 3:5, 8:12, 8:12] = 50
    psfs = [gauss((5, 7, 7), 1.0), gauss((5, 7, 7), (1.5, 1.0, 1.0))]
    data = np.stack([convolve(obj[i], psfs[i]) for i in range(2)]) + 1
    r = richardson_lucy(data, psfs, 6, snapshot_every=3)
    assert r.image.shape == data.shape and r.iterations == 6
    assert sorted(r.snapshots) == [3, 6] and r.snapshots[3].shape == data.shape
    one = richardson_lucy(data[1], psfs[1], 6)
    np.testing.assert_allclose(r.image[1], one.image, rtol=1e-6, atol=1e-6)
    again = richardson_lucy(data, psfs, 6, start=r)
    assert again.iterations == 12


def test_read_noise_allows_small_negatives():
    data = poisson(bars2d(), PSF2, 1.0) - 1.5
    with pytest.raises(ValueError, match="non-negative"):
        richardson_lucy(data, PSF2, 2)
    r = richardson_lucy(data, PSF2, 5, read_noise=2.0)
    assert np.isfinite(r.image).all()


def test_zero_iterations_returns_start_with_a_warning(data2, tmp_path, capsys):
    with pytest.warns(RuntimeWarning, match=r"^iterations: 0, so the result is the initial estimate "
                                            r"\(initial='flat': the image's mean everywhere\), not a deconvolution"):
        r = richardson_lucy(data2, PSF2, 0, edges="periodic")
    assert r.iterations == 0 and np.allclose(r.image, data2.mean())
    with pytest.warns(RuntimeWarning, match="initial='image': the image"):
        richardson_lucy(data2, PSF2, 0, initial="image")
    # the CLI says it too (a user's --iterations 0 wrote a constant image without a word)
    from fijidecon.cli import main
    from fijidecon.io import write_image
    write_image(tmp_path / "in.tif", data2.astype(np.float32))
    write_image(tmp_path / "psf.tif", PSF2.astype(np.float32))
    assert main(["deconvolve", "richardson-lucy", str(tmp_path / "in.tif"), str(tmp_path / "psf.tif"),
                 "--iterations", "0", "-o", str(tmp_path / "out.tif")]) == 0
    assert "Warning: --iterations: 0, so the result is the initial estimate" in capsys.readouterr().err


def test_bad_input(data2):
    # a PSF bigger than the image is used, not refused (see tests/test_psf_matching.py)
    assert richardson_lucy(data2[:8, :8], PSF2, 2).image.shape == (8, 8)
    bad = data2.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="image.*NaN"):
        richardson_lucy(bad, PSF2, 2)
    with pytest.raises(ValueError, match="psf.*zero"):
        richardson_lucy(data2, np.zeros((5, 5)), 2)
    with pytest.raises(ValueError, match="psf.*NaN"):
        richardson_lucy(data2, np.full((5, 5), np.nan), 2)
    with pytest.raises(ValueError, match="image.*non-negative"):
        richardson_lucy(data2 - 10, PSF2, 2)
    with pytest.raises(ValueError, match="dimensionality"):
        richardson_lucy(data2, PSF3, 2)
    with pytest.raises(ValueError, match="iterations"):
        richardson_lucy(data2, PSF2, -1)
    with pytest.raises(TypeError, match="iterations"):
        richardson_lucy(data2, PSF2, 2.5)
    with pytest.raises(ValueError, match="edges"):
        richardson_lucy(data2, PSF2, 2, edges="zero")
    with pytest.raises(ValueError, match="acceleration"):
        richardson_lucy(data2, PSF2, 2, acceleration="nesterov")
    with pytest.raises(ValueError, match="regularization"):
        richardson_lucy(data2, PSF2, 2, regularization="l1")
    with pytest.raises(ValueError, match="start"):
        richardson_lucy(data2, PSF2, 2, start=np.ones((5, 5)))
    with pytest.raises(ValueError, match="stop"):
        richardson_lucy(data2, PSF2, 2, stop="never")
    with pytest.raises(ValueError, match="voxel_size"):
        richardson_lucy(data2, PSF2, 2, voxel_size=(1.0,))
    with pytest.raises(ValueError, match="snapshot_every"):
        richardson_lucy(data2, PSF2, 2, snapshot_every=-1)


def _literal_rl(g, kernel, work, n, b=0.0):
    """Textbook RL written out with whole-array numpy FFTs (float64), data at the origin
    of the work grid, the kernel's centre at the origin, w = H^T 1 over the data box."""
    K = np.zeros(work)
    K[tuple(slice(0, m) for m in kernel.shape)] = kernel / kernel.sum()
    K = np.roll(K, [-(m // 2) for m in kernel.shape], axis=tuple(range(K.ndim)))
    F = np.fft.rfftn(K)
    H = lambda v: np.fft.irfftn(np.fft.rfftn(v) * F, work, axes=range(len(work)))  # noqa: E731
    Ht = lambda v: np.fft.irfftn(np.fft.rfftn(v) * np.conj(F), work, axes=range(len(work)))  # noqa: E731
    box = tuple(slice(0, m) for m in g.shape)
    mask = np.zeros(work)
    mask[box] = 1
    w = Ht(mask)
    ok = w >= 1e-3
    scale = g.mean()
    x = np.where(ok, max(scale - b, 1e-6 * scale), 0.0)
    for _ in range(n):
        m = np.abs(H(x)[box]) + b + 1e-6 * scale
        r = np.zeros(work)
        r[box] = g / m
        x = np.where(ok, np.abs(x * Ht(r) / np.where(ok, w, 1)), 0.0)
    return x[box]


@pytest.mark.parametrize("backend", ["scipy", "pyfftw"])
@pytest.mark.parametrize("edges", ["periodic", "non-circulant"])
@pytest.mark.parametrize("shape", [(40, 46), (12, 20, 18)])
def test_fused_engine_equals_literal_richardson_lucy(monkeypatch, backend, edges, shape):
    """The fused plane-by-plane engine (blocks of one plane, spread over threads) gives
    the textbook iteration to float32 round-off, periodic and non-circulant, 2D and 3D,
    with pocketfft and with pyFFTW's plans."""
    from fijidecon.deconvolve import _fft, _par
    if backend == "pyfftw" and not _fft.pyfftw_available():
        pytest.skip("pyFFTW not installed")
    monkeypatch.setattr(_fft, "_BACKEND", _fft._BACKEND)  # restored after the test
    monkeypatch.setattr(_fft, "_BACKEND_NAME", _fft._BACKEND_NAME)
    _fft.use_pyfftw(backend == "pyfftw")
    monkeypatch.setattr(_par, "PLANE_BLOCK", 1)  # one plane per block: many blocks, all threads
    kernel = gauss((5, 7) if len(shape) == 2 else (5, 7, 7), (1.5, 2.0) if len(shape) == 2 else (1.5, 2.0, 2.0))
    assert kernel.min() / kernel.max() > 1e-3  # nothing cropped by the support threshold
    rng = np.random.default_rng(3)
    obj = np.zeros(shape, np.float32)
    obj[tuple(rng.integers(0, n, 30) for n in shape)] = rng.uniform(200, 900, 30)
    g = poisson(obj, kernel, 4.0, edges="constant" if edges == "non-circulant" else "periodic")
    res = richardson_lucy(g, kernel, 12, edges=edges, background=4.0, recenter=False, acceleration=None)
    work = shape if edges == "periodic" else _fft.fast_shape([n + k - 1 for n, k in zip(shape, kernel.shape)])
    ref = _literal_rl(g.astype(np.float64), kernel, work, 12, b=4.0)
    np.testing.assert_allclose(res.image, ref, rtol=0, atol=2e-4 * ref.max())


def test_values_no_camera_gives_are_refused_by_name():
    """read_noise 1e200: OverflowError as an 'internal error'; stop='auto' with gain 1e17: numpy's
    'n < 0' (int64 counts overflowed); background above the data: a result of about 0, exit 0."""
    img = np.random.default_rng(0).poisson(50, (8, 24, 24)).astype(np.float32)
    psf = np.ones((3, 3, 3))
    with pytest.raises(ValueError, match=r"^read_noise: expected a finite number in \[0, 1e\+15\], got 1e\+200"):
        richardson_lucy(img, psf, 2, read_noise=1e200)
    with pytest.raises(ValueError, match=r"^gain: \(image - offset\) x gain is .* photo-electrons in a voxel"):
        richardson_lucy(img, psf, 5, stop="auto", gain=1e17, offset=0)
    with pytest.raises(ValueError, match=r"^gain: \(image - offset\) x gain is at most .* \(less than one\)"):
        richardson_lucy(img, psf, 5, stop="auto", gain=1e-300, offset=0)
    with pytest.raises(ValueError, match=r"^background: 500 is at or above the image's maximum \("):
        richardson_lucy(img, psf, 2, background=500)


def test_a_background_above_one_channel_is_refused_naming_it():
    """Checked against the whole image's maximum, a background above channel 1's ran: its result ~3e-5."""
    da = pytest.importorskip("dask.array")
    img = np.random.default_rng(0).poisson(50, (2, 8, 24, 24)).astype(np.float32)
    img[1] *= 0.3
    for image in (img, da.from_array(img)):
        with pytest.raises(ValueError, match=r"^background: 40 is at or above the image's maximum of volume "
                                             r"t=0, c=1 \("):
            richardson_lucy(image, np.ones((3, 3, 3)), 2, axes="CZYX", background=40)


def test_a_regularization_weight_that_drains_the_result_is_warned_about():
    """Tikhonov at weight 100 kept 0.13 of the data's sum, TV at 10 kept 0.26: silently."""
    import warnings

    img = np.random.default_rng(0).poisson(50, (8, 24, 24)).astype(np.float32)
    with pytest.warns(RuntimeWarning, match=r"^weight: the result keeps 0.1\d of the data's sum: tikhonov weight 100"):
        richardson_lucy(img, np.ones((3, 3, 3)), 10, regularization="tikhonov", weight=100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message="background: 0, but")  # flat noise: all of it looks like offset
        richardson_lucy(img, np.ones((3, 3, 3)), 10, regularization="tikhonov")  # the default weight


def test_options_that_need_another_are_said_to_have_no_effect():
    """--weight without --regularization and --negative-fraction without the Imspector rule were
    silently ignored (--bp-alpha and --gain without their modes are refused)."""
    from fijidecon.deconvolve import wiener

    img = np.random.default_rng(0).poisson(50, (8, 24, 24)).astype(np.float32)
    with pytest.warns(RuntimeWarning, match=r"^weight: 0.5 is used only with a regularization"):
        richardson_lucy(img, np.ones((3, 3, 3)), 1, weight=0.5)
    with pytest.warns(RuntimeWarning, match=r"^negative_fraction: 0.3 is used only by regularization='imspector'"):
        wiener(img, np.ones((3, 3, 3)), negative_fraction=0.3)


def test_data_on_a_camera_offset_without_background_is_warned_about():
    """DAPI (min 1758, offset ~2000) ran with background 0 and no word: a dark moat around the
    nucleus.  Data whose 1st percentile is above 5 % of the maximum now warn, naming the level;
    data near 0, or with background= given, do not."""
    import warnings

    rng = np.random.default_rng(3)
    obj = np.zeros((16, 48, 48), np.float32)
    obj[6:10, 20:28, 20:28] = 400.0
    blurred = convolve(obj, np.ones((3, 5, 5)) / 75.0, edges="constant")
    psf = np.ones((3, 5, 5))
    with pytest.warns(RuntimeWarning, match=r"^background: 0, but the image.s lowest values are about (9\d|1\d\d) "):
        richardson_lucy(rng.poisson(blurred + 120).astype(np.float32), psf, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        richardson_lucy(rng.poisson(blurred + 120).astype(np.float32), psf, 2, background=110)
        richardson_lucy(rng.poisson(blurred + 1).astype(np.float32), psf, 2)
    da = pytest.importorskip("dask.array")  # lazy runs (OME-Zarr output, --workers) said nothing
    lazy = da.from_array(rng.poisson(blurred + 120).astype(np.float32), chunks=(16, 24, 24))
    with pytest.warns(RuntimeWarning, match=r"^background: 0, but the image's lowest values are about (9\d|1\d\d) "):
        richardson_lucy(lazy, psf, 2, bricks=(16, 24, 24))


def test_offset_level_is_the_volumes_whatever_the_bricks():
    """A fresh user (2026-12-03) read 2102, 2109 and 2126 as the offset level of one DAPI stack run in
    three brick layouts: each lazy run took its central brick's 1st percentile.  The level is now the
    volume's (an even lattice of it, read in the run's one pass over the data): the same in memory and
    in every layout, on a background that rises across the field."""
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(8)
    obj = np.zeros((16, 48, 96), np.float32)
    obj[6:10, 20:28, 40:56] = 400.0
    ramp = np.linspace(100.0, 300.0, 96, dtype=np.float32)  # a field brighter on one side
    img = rng.poisson(convolve(obj, np.ones((3, 5, 5)) / 75.0, edges="constant") + ramp).astype(np.float32)
    psf = np.ones((3, 5, 5))
    levels = []
    for bricks in (None, (16, 24, 24), (16, 48, 32), (8, 16, 48)):
        data = img if bricks is None else da.from_array(img, chunks=(16, 24, 24))
        with pytest.warns(RuntimeWarning, match="lowest values are about") as rec:
            richardson_lucy(data, psf, 1, bricks=bricks)
        said = next(str(w.message) for w in rec if "lowest values are about" in str(w.message))
        levels.append(re.search(r"lowest values are about ([\d.]+) ", said).group(1))
    assert len(set(levels)) == 1, levels
    assert levels[0] == f"{np.percentile(img, 1):.4g}", levels


def test_offset_warning_names_every_volume_on_an_offset():
    """A 2-channel stack on two camera offsets, background 0: the warning named only channel 0's
    level; it now gives each volume's (whole and lazy), and a channel near 0 is not named."""
    rng = np.random.default_rng(5)
    obj = np.zeros((16, 48, 48), np.float32)
    obj[6:10, 20:28, 20:28] = 400.0
    blurred = convolve(obj, np.ones((3, 5, 5)) / 75.0, edges="constant")
    psf = np.ones((3, 5, 5))
    both = np.stack([rng.poisson(blurred + 120), rng.poisson(blurred + 300)]).astype(np.float32)
    pattern = (r"lowest values are about (9\d|1\d\d) \(\d+ % of its maximum\) in volume t=0, c=0; "
               r"(2[6-9]\d|3[0-3]\d) \(\d+ % of its maximum\) in volume t=0, c=1: a camera offset")
    with pytest.warns(RuntimeWarning, match=pattern):
        richardson_lucy(both, psf, 2)
    da = pytest.importorskip("dask.array")
    with pytest.warns(RuntimeWarning, match=r"(9\d|1\d\d) \(\d+ % of its maximum\) in channel 0; "
                                            r"(2[6-9]\d|3[0-3]\d) \(\d+ % of its maximum\) in channel 1: "):
        richardson_lucy(da.from_array(both, chunks=(1, 16, 24, 24)), psf, 2, bricks=(16, 24, 24))
    one = np.stack([rng.poisson(blurred + 1), rng.poisson(blurred + 300)]).astype(np.float32)
    with pytest.warns(RuntimeWarning, match=r"lowest values are about (2[6-9]\d|3[0-3]\d) \(\d+ % of its "
                                            r"maximum\) in volume t=0, c=1: a camera") as rec:
        richardson_lucy(one, psf, 2)
    assert not any("c=0" in str(w.message) for w in rec)


def test_stop_auto_on_channels_does_not_warn_about_a_background_the_user_gave():
    """2 channels, background given, stop='auto': the thinned runs (photo-electrons, background
    converted) warned 'background: 0, but ...' although the user gave 500."""
    import warnings

    rng = np.random.default_rng(4)
    obj = np.zeros((2, 12, 32, 32), np.float32)
    obj[:, 5:8, 12:20, 12:20] = 300.0
    img = np.stack([convolve(o, np.ones((3, 5, 5)) / 75.0, edges="constant") for o in obj]) + 500
    img = rng.poisson(img).astype(np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        richardson_lucy(img, np.ones((3, 5, 5)), 20, background=295, stop="auto", gain=1.0, offset=300.0,
                        axes="CZYX")
    assert not [str(w.message) for w in caught if "background: 0" in str(w.message)]


def test_a_stopping_rule_says_where_it_stopped_and_warns_when_it_never_did(data2):
    """A fresh user: stop='discrepancy' never met in 500 iterations gave stop_reason 'iterations' and no word
    (a Fiji user: no Log line either); the rule's stop is now a note, its absence a warning."""
    met = richardson_lucy(data2, PSF2, 300, stop="discrepancy")
    assert met.stop_reason == "stop" and any(
        n == f"richardson-lucy: stopped by the discrepancy principle after {met.iterations} iteration(s)"
        for n in met.notes), met.notes
    with pytest.warns(RuntimeWarning, match=r"^stop: the discrepancy principle was not met within iterations=1; "
                                            r"the result is the last iterate"):
        missed = richardson_lucy(data2, PSF2, 1, stop="discrepancy")
    assert missed.stop_reason == "iterations"


def test_a_snapshot_interval_beyond_the_iterations_warns(data2):
    """A fresh batch user: --snapshot-every 100 --iterations 10 wrote no snapshot, without a word."""
    with pytest.warns(RuntimeWarning, match=r"^snapshot_every: 100 is more than iterations=10: no snapshot is kept"):
        res = richardson_lucy(data2, PSF2, 10, snapshot_every=100)
    assert res.snapshots == {}


def test_a_tv_weight_far_too_large_warns_before_the_run_whatever_the_iterations():
    """A fresh batch user: --weight 1e9 for 3 iterations gave a result 115x the data's maximum and 4x its sum,
    exit 0 even with --strict; the too-large check fired only when the flux drained (10 iterations)."""
    rng = np.random.default_rng(0)
    img = rng.poisson(5, (8, 32, 32)).astype(np.float32)
    img[4, 10:20, 16] += 500
    z, y, x = np.mgrid[-2:3, -3:4, -3:4]
    psf = np.exp(-(x ** 2 + y ** 2 + z ** 2) / 3.0)
    for its in (3, 10):
        with pytest.warns(RuntimeWarning, match=r"^weight: 1e\+09 is above 0\.05, where Richardson-Lucy with TV "
                                                r"turns unstable"):
            richardson_lucy(img, psf, its, regularization="tv", weight=1e9)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        richardson_lucy(img, psf, 3, regularization="tv", weight=0.002)
