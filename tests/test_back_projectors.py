"""Unmatched back projectors for Richardson-Lucy (issue 10): Wiener-Butterworth (Guo et al. 2020),
OTF-masked Wiener (PetaKit5D) and a user kernel; every edge mode, resume, snapshots, bricks, errors."""

from __future__ import annotations

import numpy as np
import pytest

from fijidecon.deconvolve import convolve, richardson_lucy
from fijidecon.deconvolve import _backproject
from fijidecon.psf import gaussian

PSF = gaussian((11, 21, 21), fwhm=(700, 250, 250), voxel_size=(200, 65, 65))
KINDS = ("wiener-butterworth", "otf-masked-wiener")


def _data(shape=(20, 96, 96), seed=0, n=150):
    rng = np.random.default_rng(seed)
    obj = np.zeros(shape, np.float32)
    obj[tuple(rng.integers(0, s, n) for s in shape)] = rng.uniform(200, 2000, n)
    obj[shape[0] // 2, 10:60, 30:34] = 300
    return obj, rng.poisson(convolve(obj, PSF, edges="constant") + 5).astype(np.float32)


def _blobs(shape=(16, 64, 64), seed=1):
    """Smooth Gaussian blobs (sigma 2-3 voxels) on a dim background: Poisson data, peak ~ 300 counts."""
    rng = np.random.default_rng(seed)
    g = np.indices(shape, dtype=np.float32)
    obj = np.zeros(shape, np.float32)
    for _ in range(25):
        c = [rng.uniform(2, s - 2) for s in shape]
        s = rng.uniform(2, 3)
        obj += rng.uniform(100, 400) * np.exp(-sum((gi - ci) ** 2 for gi, ci in zip(g, c)) / (2 * s * s))
    return obj, rng.poisson(convolve(obj, PSF, edges="constant") + 5).astype(np.float32)


@pytest.mark.parametrize("edges", ["non-circulant", "periodic", "reflect"])
def test_the_flipped_psf_as_back_projector_is_plain_rl(edges):
    """With every edge mode (non-circulant: the flipped PSF was taken as an unmatched back projector, the
    ratio set to 1 outside the data box: 5.9e-2 rel L2 from plain RL on a DAPI crop, a fresh user)."""
    _, img = _data()
    plain = richardson_lucy(img, PSF, 8, background=5, edges=edges, recenter=False, psf_threshold=0)
    flipped = richardson_lucy(img, PSF, 8, background=5, edges=edges, recenter=False, psf_threshold=0,
                              back_projector=PSF[::-1, ::-1, ::-1].copy())
    assert flipped.back_projector == "array"
    np.testing.assert_allclose(flipped.image, plain.image, rtol=2e-4, atol=2e-4 * float(plain.image.max()))


def test_a_kernel_with_negative_lobes_back_projects_the_ratio_minus_one_outside_the_box():
    """Non-circulant edges: B^T 1 of a kernel with negative values rings, so it is not the normaliser
    (the ratio is taken as 1 outside the data box); the result stays finite and close to the flipped PSF's
    away from the border."""
    _, img = _data()
    plain = richardson_lucy(img, PSF, 8, background=5, recenter=False, psf_threshold=0).image
    ringing = PSF[::-1, ::-1, ::-1].astype(np.float64)
    ringing[:, 8:13, 8:13] -= 0.02 * float(PSF.max())  # negative values beside the core, in every plane
    out = richardson_lucy(img, PSF, 8, background=5, recenter=False, psf_threshold=0, back_projector=ringing).image
    assert np.all(np.isfinite(out)) and out.min() >= 0
    inner = (slice(6, -6), slice(12, -12), slice(12, -12))
    rel = np.linalg.norm(out[inner] - plain[inner]) / np.linalg.norm(plain[inner])
    assert 1e-4 < rel < 0.2, rel


def test_spectra_are_normalised_and_the_cutoff_follows_the_fwhm():
    w = _backproject.fwhm(PSF)
    np.testing.assert_allclose(w, (700 / 200, 250 / 65, 250 / 65), rtol=0.05)
    from fijidecon.deconvolve import _otf
    work = (32, 64, 64)
    H = _otf.otf(PSF / PSF.sum(), work)
    for kind in KINDS:
        B = _backproject.spectrum(_backproject.check(kind, None, 1e-3, 10), H, work, PSF)
        assert B.dtype == np.complex64 and B.shape == H.shape
        assert abs(B.flat[0] - 1) < 1e-6
        # beyond 1.5 times the lateral cutoff the back projector passes (almost) nothing
        fx = np.fft.rfftfreq(64)
        assert np.abs(B[0, 0, fx > 1.5 / w[2]]).max() < 1e-2


@pytest.mark.parametrize("kind,its,plain_its", [("wiener-butterworth", 5, 100), ("otf-masked-wiener", 2, 2)])
def test_back_projected_rl_reaches_plain_rl_in_a_few_iterations(kind, its, plain_its):
    # Wiener-Butterworth reaches plain RL-100 within 5 iterations (0.012 at 3 vs 0.019); the OTF-masked
    # Wiener (alpha 5e-3) is best at its first iteration (0.043) and then amplifies noise: it beats
    # plain RL at the same count only
    obj, img = _blobs()
    t = obj.astype(np.float64)

    def nmse(x):
        return float(np.sum((x - t) ** 2) / np.sum(t ** 2))

    target = nmse(richardson_lucy(img, PSF, plain_its, background=5).image)
    curve = []
    richardson_lucy(img, PSF, its, background=5, back_projector=kind,
                    callback=lambda f, e: curve.append(nmse(e)))
    assert min(curve) <= target, (kind, curve, target)


@pytest.mark.parametrize("edges", ["non-circulant", "periodic", "reflect"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_edge_mode_keeps_positivity(kind, edges):
    _, img = _data()
    r = richardson_lucy(img, PSF, 3, background=5, edges=edges, back_projector=kind)
    assert r.image.min() >= 0 and np.isfinite(r.image).all()
    assert r.back_projector == kind and any(n.startswith("back projector: " + kind) for n in r.notes)


def test_2d_and_channels():
    _, img = _data(shape=(1, 96, 96))
    psf2 = PSF[5]
    r2 = richardson_lucy(img[0], psf2, 3, back_projector="wiener-butterworth")
    assert r2.image.shape == (96, 96) and r2.image.min() >= 0
    _, a = _data(seed=1)
    _, b = _data(seed=2)
    r = richardson_lucy(np.stack([a, b]), PSF, 3, background=5, back_projector="otf-masked-wiener")
    one = richardson_lucy(b, PSF, 3, background=5, back_projector="otf-masked-wiener")
    np.testing.assert_allclose(r.image[1], one.image, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("kw", [dict(back_projector="wiener-butterworth"), dict(back_projector="otf-masked-wiener"),
                                dict(back_projector="wiener-butterworth", acceleration="momentum"),
                                dict(back_projector="otf-masked-wiener", acceleration="biggs-andrews"),
                                dict(acceleration="momentum")])
def test_resume_and_snapshots(kw):
    _, img = _data(shape=(12, 64, 64))
    full = richardson_lucy(img, PSF, 6, background=5, snapshot_every=3, **kw)
    first = richardson_lucy(img, PSF, 3, background=5, **kw)
    again = richardson_lucy(img, PSF, 3, background=5, start=first, **kw)
    assert again.iterations == 6
    np.testing.assert_array_equal(again.image, full.image)
    np.testing.assert_array_equal(full.snapshots[3], first.image)
    with pytest.raises(ValueError, match="start: the previous result was computed with other settings"):
        richardson_lucy(img, PSF, 3, background=5, start=first, back_projector="wiener-butterworth", bp_alpha=0.01)


@pytest.mark.parametrize("kw", [dict(back_projector="wiener-butterworth"), dict(acceleration="momentum")])
def test_bricks(kw):
    _, img = _data()
    whole = richardson_lucy(img, PSF, 3, background=5, **kw).image
    bricked = richardson_lucy(img, PSF, 3, background=5, bricks=(20, 48, 48), **kw)
    assert any("bricked: 4 brick(s)" in n for n in bricked.notes)
    assert bricked.back_projector == kw.get("back_projector", "matched")
    rel = np.linalg.norm(bricked.image - whole) / np.linalg.norm(whole)
    assert rel < 3e-2, rel


@pytest.mark.parametrize("kw,match", [
    (dict(back_projector="butterworth"), "back_projector: expected None, 'matched'"),
    (dict(back_projector="wiener-butterworth", bp_alpha=-1), "bp_alpha"),
    (dict(back_projector="wiener-butterworth", bp_alpha=0), "bp_alpha"),
    (dict(back_projector="wiener-butterworth", bp_beta=1.5), "bp_beta"),
    (dict(back_projector="wiener-butterworth", bp_order=0), "bp_order"),
    (dict(bp_alpha=0.01), "bp_alpha: only used with"),
    (dict(back_projector="otf-masked-wiener", bp_order=4), "^bp_order: only used with"),
    (dict(back_projector=np.ones((3, 3))), "back_projector: a 2D kernel for 3D volumes"),
    (dict(back_projector=np.zeros((3, 3, 3))), "back_projector: its sum must be > 0"),
    (dict(back_projector=np.full((3, 3, 3), np.nan)), "back_projector: contains NaN"),
    (dict(acceleration="nesterov"), "acceleration"),
])
def test_bad_parameters_give_one_line_errors(kw, match):
    _, img = _data(shape=(12, 32, 32))
    with pytest.raises((ValueError, TypeError), match=match) as e:
        richardson_lucy(img, PSF, 2, **kw)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("kw", [dict(back_projector="otf-masked-wiener"),
                                dict(back_projector="wiener-butterworth", acceleration="momentum")])
def test_dask_input_equals_numpy(kw):
    da = pytest.importorskip("dask.array")
    _, img = _data()
    res = richardson_lucy(da.from_array(img, chunks=(5, 32, 32)), PSF, 3, background=5, bricks=(20, 48, 48), **kw)
    assert isinstance(res.image, da.Array) and res.back_projector == kw["back_projector"]
    np.testing.assert_array_equal(res.image.compute(scheduler="synchronous"),
                                  richardson_lucy(img, PSF, 3, background=5, bricks=(20, 48, 48), **kw).image)


def test_memory_estimate_counts_the_back_projector_spectrum():
    from fijidecon.deconvolve import estimate_memory
    from fijidecon.deconvolve._memory import memory_model
    plain = estimate_memory("richardson-lucy", (32, 256, 256), (11, 21, 21), edges="periodic")
    wb = estimate_memory("richardson-lucy", (32, 256, 256), (11, 21, 21), edges="periodic",
                         back_projector="wiener-butterworth")
    spec = 32 * 256 * 129 * 8  # the half spectrum, complex64: 4 bytes per work voxel
    assert wb - plain == spec
    assert "back projector" in memory_model("richardson-lucy", (32, 256, 256), (11, 21, 21),
                                            back_projector="otf-masked-wiener").table()
