"""A PSF of any size, parity, centre, offset and voxel size, for every method (issue: real data).

The cases of ``shared/cases/real-data`` (1-6, 8, 12, 16) and their kinds: a grid of PSF
sizes smaller / equal / larger than the image on each axis, even and odd; beads restored
at their voxel with even and odd PSFs; camera offsets; voxel sizes; hyperstack axes.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from fijidecon.deconvolve import _otf, convolve, iterative_deconvolve_3d, richardson_lucy, wiener
from fijidecon.psf import gaussian

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CASES = SHARED / "cases" / "real-data"
REAL = SHARED / "data" / "real"

METHODS = [
    ("rl-noncirculant", lambda im, p, **k: richardson_lucy(im, p, 3, **k).image),
    ("rl-periodic", lambda im, p, **k: richardson_lucy(im, p, 3, edges="periodic", **k).image),
    ("rl-reflect", lambda im, p, **k: richardson_lucy(im, p, 3, edges="reflect", **k).image),
    ("wiener-reflect", lambda im, p, **k: wiener(im, p, 1e-3, **k).image),
    ("wiener-periodic", lambda im, p, **k: wiener(im, p, 1e-3, edges="periodic", **k).image),
    ("convolve-reflect", lambda im, p, **k: convolve(im, p, **k)),
    ("convolve-constant", lambda im, p, **k: convolve(im, p, edges="constant", **k)),
    ("convolve-periodic", lambda im, p, **k: convolve(im, p, edges="periodic", **k)),
]


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> Path:
    """The case inputs, written by the cases' own script."""
    if not (CASES / "make_cases.py").exists():
        pytest.skip("shared/cases not present")
    out = tmp_path_factory.mktemp("cases")
    subprocess.run([sys.executable, str(CASES / "make_cases.py"), str(out)], check=True, capture_output=True)
    return out


def _gauss(shape, sigma, centre=None):
    centre = centre or [n // 2 for n in shape]
    grids = np.indices(shape, dtype=float)
    r2 = sum(((g - c) / s) ** 2 for g, c, s in zip(grids, centre, np.broadcast_to(sigma, len(shape))))
    return np.exp(-r2 / 2)


# -- any size, any parity ---------------------------------------------------------------------

IMAGE = (10, 12, 14)
SIZES = {"smaller-odd": lambda n: n - 3 if (n - 3) % 2 else n - 4, "smaller-even": lambda n: n - 2 if n % 2 == 0 else n - 3,
         "equal": lambda n: n, "larger-odd": lambda n: n + 1 if n % 2 == 0 else n + 2,
         "larger-even": lambda n: n + 2 if n % 2 == 0 else n + 1, "beyond-2n": lambda n: 2 * n + 4}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("method", [m for m, _ in METHODS])
def test_psf_of_any_size_and_parity_on_each_axis_is_used(method, axis, size):
    """Smaller, equal or larger than the image, even or odd, on each axis: the method runs, a
    point source comes back at its voxel, and a crop that drops flux is reported."""
    fn = dict(METHODS)[method]
    shape = list(IMAGE)
    shape[axis] = SIZES[size](IMAGE[axis])
    psf = _gauss(tuple(shape), (1.5, 1.5, 1.5))
    obj = np.zeros(IMAGE, np.float32)
    src = (5, 6, 7)
    obj[src] = 1000
    img = convolve(obj, psf, edges="constant") + 1
    out = fn(img, psf)
    assert out.shape == IMAGE and out.dtype == np.float32 and np.isfinite(out).all()
    sl = tuple(slice(c - 2, c + 3) for c in src)
    w = np.clip(out[sl] - np.median(out), 0, None)
    assert np.abs(np.array(ndimage.center_of_mass(w)) - 2).max() < 0.25
    prep = _otf.prepare_psf(psf, max_shape=(IMAGE if "periodic" in method else [2 * n - 1 for n in IMAGE]))
    limit = IMAGE[axis] if "periodic" in method else 2 * IMAGE[axis] - 1
    assert prep.kernel.shape[axis] <= limit
    if prep.report["flux_dropped"] > 1e-4:
        assert any("cropped" in n for n in prep.notes)


def test_what_each_edge_model_keeps_of_a_big_psf():
    """Non-circulant edges keep the PSF up to 2n-1 voxels; periodic edges crop it to the image."""
    psf = _gauss((41, 31, 31), (6.0, 4.0, 4.0))
    img = np.ones((12, 20, 20), np.float32)
    nc = richardson_lucy(img, psf, 1, psf_threshold=0)
    per = richardson_lucy(img, psf, 1, edges="periodic", psf_threshold=0)
    assert nc.psf_report["kernel_shape"] == [23, 31, 31]  # 2*12-1 planes; y, x whole (31 <= 39)
    assert per.psf_report["kernel_shape"] == [12, 20, 20]
    assert any("cropped" in n and "%" in n for n in per.notes)
    assert per.psf_report["flux_dropped"] > nc.psf_report["flux_dropped"] > 0


# -- centre: a PSF at n // 2 is used as it is -------------------------------------------------------

@pytest.mark.parametrize("psf_file", ["case01_psf_widefield_32x64x64.npy", "case01_psf_diffraction_32x64x64.npy"])
def test_beads_restored_at_their_voxel_with_even_psfs(cases, psf_file):
    """Case 5: even-sized PSFs centred at n // 2 are not moved; beads come back within 0.05 voxel
    (RL 100 iterations, Wiener 1e-4, convolve).  Before: up to -0.24 (RL) and -0.43 (Wiener) in z."""
    psf = np.load(cases / psf_file)
    beads = np.load(cases / "case05_beads_truth_48x96x96.npy")
    pos = [tuple(int(i) for i in p) for p in np.argwhere(beads > 0)]
    img = convolve(beads, psf, edges="constant") + 1.0
    rl = richardson_lucy(img, psf, 100, background=1.0)
    assert rl.psf_shift == (0.0, 0.0, 0.0) and not any("re-centred" in n for n in rl.notes)
    outs = {"rl": rl.image, "wiener": wiener(img - 1, psf, 1e-4).image, "convolve": convolve(beads, psf)}
    for name, out in outs.items():
        for p in pos:
            sl = tuple(slice(c - 3, c + 4) for c in p)
            w = np.clip(out[sl], 0, None)
            err = np.abs(np.array(ndimage.center_of_mass(w)) - 3).max()
            assert err < 0.05, (name, p, err)


@pytest.mark.parametrize("shape", [(15, 16, 16), (16, 17, 18), (9, 20, 21)])
def test_centred_psf_is_not_moved_and_off_centre_psf_is(shape):
    centred = _gauss(shape, (1.5, 2.0, 2.0))
    p = _otf.prepare_psf(centred)
    assert p.shift == (0.0,) * 3 and not p.notes
    off = _gauss(shape, (1.5, 2.0, 2.0), centre=[n // 2 + d for n, d in zip(shape, (0, 2.4, -1.3))])
    q = _otf.prepare_psf(off)
    assert q.report["recentred"] and any("re-centred" in n for n in q.notes)
    np.testing.assert_allclose(q.shift, (0, -2.4, 1.3), atol=0.05)
    np.testing.assert_allclose(q.kernel, _otf.prepare_psf(centred).kernel[tuple(
        slice((a - b) // 2, (a - b) // 2 + b) for a, b in zip(_otf.prepare_psf(centred).kernel.shape, q.kernel.shape))]
        if q.kernel.size <= _otf.prepare_psf(centred).kernel.size else q.kernel, atol=3e-3 * q.kernel.max())
    # half a voxel off or less: used as given (the convention is the array centre)
    half = _gauss(shape, (1.5, 2.0, 2.0), centre=[n // 2 + 0.4 for n in shape])
    assert _otf.prepare_psf(half).shift == (0.0,) * 3


# -- camera offsets --------------------------------------------------------------------------------

def test_raw_bead_psf_offset_is_removed_and_flux_kept(cases):
    """Case 16: a widefield PSF on a camera offset of a third of its peak (Poisson noise).
    Before: accepted as is; restored flux 1.62 instead of 1.37 of the data."""
    raw = np.load(cases / "case16_raw_psf_offset.npy")
    clean = raw.astype(float) - 142
    p = _otf.prepare_psf(raw)
    assert 130 < p.report["offset"] < 155 and any("offset" in n for n in p.notes)
    obj = np.zeros((20, 48, 48), np.float32)
    obj[10, 24, 24] = 1e4
    ideal = _otf.prepare_psf(np.clip(clean, 0, None)).kernel
    img = convolve(obj, ideal, edges="constant") + 5
    a = richardson_lucy(img, raw, 30, background=5).image
    b = richardson_lucy(img, np.clip(clean, 0, None), 30, background=5).image
    assert abs(a.sum() / b.sum() - 1) < 0.03
    assert abs(a.sum() / (img - 5).sum() - 1) < 0.1


def test_psf_that_is_mostly_background_warns():
    rng = np.random.default_rng(1)
    weak = _gauss((21, 31, 31), 2.0) * 40 + 1000
    with pytest.warns(RuntimeWarning, match="mostly background"):
        _otf.prepare_psf(rng.poisson(weak).astype(np.uint16))


def test_small_kernels_and_theoretical_psfs_are_not_taken_for_offsets():
    for k in (np.ones((15, 15)), _gauss((5, 7, 7), (1.5, 2.0, 2.0)), _gauss((9, 9), 4.0),
              gaussian((32, 64, 64), fwhm=(900, 250, 250), voxel_size=(250, 100, 100))):
        assert _otf.prepare_psf(k, flat_ok=True).report["offset"] == 0.0  # a box kernel: convolve's


# -- voxel sizes -------------------------------------------------------------------------------------

def test_psf_of_another_voxel_size_is_resampled(cases, caplog):
    """Case 6: image at 200x65x65 nm, PSF made at 300x100x100 nm.  Before: the bead peak came back
    at 117 instead of ~1365 (the PSF was taken at the image's voxel size)."""
    import tifffile

    img = tifffile.imread(cases / "case06_image_200x65x65nm.tif").astype(np.float32)
    psf_img = gaussian((15, 31, 31), fwhm=(700, 250, 250), voxel_size=(200, 65, 65))
    psf_other = gaussian((11, 21, 21), fwhm=(700, 250, 250), voxel_size=(300, 100, 100))
    want = richardson_lucy(img, psf_img, 30, background=10).image
    with caplog.at_level(logging.INFO, logger="fijidecon"):
        got = richardson_lucy(img, psf_other, 30, background=10, voxel_size=(200, 65, 65),
                              psf_voxel_size=(300, 100, 100))
    assert any("resampled from voxel size (300, 100, 100)" in n for n in got.notes)
    assert any("resampled" in r.getMessage() for r in caplog.records)
    assert got.image.max() == pytest.approx(want.max(), rel=0.1)
    wrong = richardson_lucy(img, psf_other, 30, background=10).image
    assert wrong.max() < 0.6 * want.max()
    # the same through Wiener, convolve and Iterative Deconvolve 3D
    for fn in (lambda **k: wiener(img, psf_other, 1e-3, **k).notes,
               lambda **k: iterative_deconvolve_3d(img, psf_other, max_iterations=2, **k).notes):
        assert any("resampled" in n for n in fn(voxel_size=(200, 65, 65), psf_voxel_size=(300, 100, 100)))
    c = convolve(img, psf_other, voxel_size=(200, 65, 65), psf_voxel_size=(300, 100, 100))
    np.testing.assert_allclose(c, convolve(img, psf_img), atol=0.02 * c.max())


def test_resample_keeps_centre_and_flux():
    psf = _gauss((21, 41, 41), (2.0, 4.0, 4.0))
    out = _otf.resample(psf, (300, 100, 100), (200, 50, 50))
    assert out.shape == (32, 82, 82)
    c = np.array(ndimage.center_of_mass(out))
    np.testing.assert_allclose(c, [16, 41, 41], atol=0.02)


def test_bad_voxel_sizes_name_the_parameter():
    img = np.ones((8, 16, 16), np.float32)
    psf = _gauss((5, 7, 7), 1.0)
    with pytest.raises(ValueError, match="psf_voxel_size"):
        richardson_lucy(img, psf, 1, voxel_size=(1, 1, 1), psf_voxel_size=(1, 0, 1))
    with pytest.raises(ValueError, match="voxel_size: expected 3"):
        wiener(img, psf, voxel_size=(1, 1), psf_voxel_size=(1, 1, 1))
    with pytest.raises(TypeError, match="psf_voxel_size"):
        convolve(img, psf, voxel_size=(1, 1, 1), psf_voxel_size=5)


# -- the real files ----------------------------------------------------------------------------------

def _real(name):
    p = REAL / name
    if not p.exists():
        pytest.skip(f"{p} not present")
    import tifffile
    return tifffile.imread(p)


def test_light_sheet_psf_larger_than_the_image_and_off_centre():
    """Case 3: the 61-plane measured LLS PSF (background ~140, peak at y=71 of 128) with a
    40-plane image: non-circulant RL uses up to 79 planes, periodic crops to 40; the offset is
    removed and the PSF re-centred, each with a note."""
    psf = _real("pycudadecon_lls_psf/psf.tif")
    obj = np.zeros((40, 64, 64), np.float32)
    obj[20, 32, 32] = 1e5
    prep = _otf.prepare_psf(psf)
    assert 130 < prep.report["offset"] < 160 and prep.report["recentred"]
    img = convolve(obj, psf, edges="constant") + 1
    for edges in ("non-circulant", "periodic"):
        r = richardson_lucy(img, psf, 5, edges=edges, background=1)
        assert r.image.shape == obj.shape and np.isfinite(r.image).all()
        assert any("offset" in n for n in r.notes) and any("re-centred" in n for n in r.notes)
        peak = np.unravel_index(np.argmax(r.image), r.image.shape)
        assert np.abs(np.array(peak) - (20, 32, 32)).max() <= 1


def test_deep_psf_with_a_thin_image():
    """Case 4: a 12-plane image with a 41-plane PSF runs with every method."""
    img = np.random.default_rng(0).poisson(50, (12, 32, 32)).astype(np.float32)
    psf = gaussian((41, 31, 31), fwhm=(900, 250, 250), voxel_size=(200, 65, 65))
    for _, fn in METHODS:
        assert fn(img, psf).shape == img.shape


def test_iterative_deconvolve_stop_reason_says_the_change_increased():
    """Case 12: the compat stopping test also ends a run whose change figure rose; the reason
    says so ("change_increased"), not "converged"."""
    img = _real("deconwolf_demo/dapi_001.tif")[:, 60:124, 20:84].astype(np.float32)
    from fijidecon.psf import diffraction_psf_3d
    psf = diffraction_psf_3d(width=64, height=64, depth=40, index=1.512, na=1.45, wavelength=461,
                             pixel_spacing=130, slice_spacing=300)
    res = iterative_deconvolve_3d(img, psf, max_iterations=30)
    rose = len(res.log) >= 2 and res.log[-1] > res.log[-2]
    assert res.stop_reason == ("change_increased" if rose else "converged") or res.stop_reason == "max_iterations"
    assert rose == (res.stop_reason == "change_increased")


def test_a_thousandfold_voxel_size_difference_is_a_unit_mix_up_not_a_resampling():
    """A PSF labelled nm with µm numbers (or the reverse) must not be shrunk 1000x to one voxel."""
    img = np.ones((8, 32, 32), np.float32)
    psf = _gauss((9, 15, 15), (1.5, 2.0, 2.0))
    for fn in (lambda **k: richardson_lucy(img, psf, 1, **k).notes, lambda **k: wiener(img, psf, 1e-3, **k).notes,
               lambda **k: iterative_deconvolve_3d(img, psf, max_iterations=1, **k).notes):
        with pytest.warns(RuntimeWarning, match=r"\(both in the image.s length unit\) differ about 1000x: "
                                                r"probably a unit mix-up"):
            notes = fn(voxel_size=(250, 100, 100), psf_voxel_size=(0.25, 0.1, 0.1))
        assert not any("resampled" in n for n in notes)


def test_a_unit_mix_up_of_a_psf_sampled_otherwise_is_read_in_the_image_unit_and_resampled():
    """A notebook user gave the image's voxel size in µm (0.25, 0.13, 0.13) and a PSF sampled 2x finer in nm
    (125, 65, 65): the mix-up was warned about and the PSF used at the image's sampling, not resampled (RL
    74 % of the maximum off the right result).  It is now read in the image's unit and resampled, as if
    given right; the warning says how it was read."""
    rng = np.random.default_rng(2)
    img = rng.poisson(50, (12, 32, 32)).astype(np.float32)
    psf = _gauss((17, 29, 29), (3.0, 4.0, 4.0))  # sampled 2x finer than the image
    for fn in (lambda **k: richardson_lucy(img, psf, 3, **k), lambda **k: wiener(img, psf, 1e-3, **k),
               lambda **k: iterative_deconvolve_3d(img, psf, max_iterations=2, **k)):
        right = fn(voxel_size=(0.25, 0.13, 0.13), psf_voxel_size=(0.125, 0.065, 0.065))
        with pytest.warns(RuntimeWarning, match=r"differ about 500x: probably a unit mix-up \(nm vs µm\); the "
                                                r"PSF's is read as \(0\.125, 0\.065, 0\.065\)") as rec:
            mixed = fn(voxel_size=(0.25, 0.13, 0.13), psf_voxel_size=(125, 65, 65))
        said = [str(w.message) for w in rec if "voxel size" in str(w.message)]
        assert len(said) == 1, said  # not also 'no microscope samples a PSF and its image that differently'
        assert any("resampled" in n for n in mixed.notes), mixed.notes
        np.testing.assert_array_equal(mixed.image, right.image)


def test_round_off_negatives_of_a_computed_image_are_accepted_by_richardson_lucy():
    """A convolved image has negatives of FFT round-off (-8e-7); RL takes it, real negatives are refused."""
    img = np.zeros((8, 32, 32), np.float32)
    img[4, 16, 16] = 1000
    blurred = convolve(img, _gauss((5, 9, 9), 1.5), edges="periodic")
    blurred[0, 0, 0] = -1e-4
    before = blurred.copy()
    assert richardson_lucy(blurred, _gauss((5, 9, 9), 1.5), 2).image.min() >= 0
    np.testing.assert_array_equal(blurred, before)  # the input is not clipped in place
    blurred[0, 0, 0] = -1.0
    with pytest.raises(ValueError, match="non-negative"):
        richardson_lucy(blurred, _gauss((5, 9, 9), 1.5), 2)


def test_a_psf_in_fft_order_is_warned_about():
    """np.fft.ifftshift(psf) (peak at index 0) was re-centred on one corner with only a note: the
    result was 69 % off (rel L2)."""
    import warnings

    from fijidecon.deconvolve import convolve
    from fijidecon.psf import gaussian

    psf = gaussian((9, 13, 13), (2, 2, 2))
    img = np.random.default_rng(0).random((16, 32, 32))
    with pytest.warns(RuntimeWarning, match=r"its peak \(0, 0, 0\) is at a corner .* FFT order .*fftshift"):
        convolve(img, np.fft.ifftshift(psf))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        convolve(img, psf)  # a centred PSF: no warning


def test_one_voxel_size_alone_is_said_in_the_api():
    """The API with ``voxel_size=`` alone took the PSF at the image's voxel size without a word
    (a 65 nm bead PSF on a 130 nm image: 37 % of the maximum off); ``psf_voxel_size=`` alone was
    dropped silently."""
    import warnings

    from fijidecon.psf import gaussian

    img = np.random.default_rng(0).random((16, 32, 32)).astype(np.float32) + 1
    psf = gaussian((9, 15, 15), (2.0, 2.0, 2.0))
    r = richardson_lucy(img, psf, 2, voxel_size=(0.2, 0.1, 0.1))
    assert "psf: taken to be sampled at the image's voxel size (no psf_voxel_size given; give it to have the PSF " \
           "resampled)" in r.notes
    with pytest.warns(RuntimeWarning, match=r"^psf_voxel_size: not used without the image's voxel_size"):
        wiener(img, psf, 1e-3, psf_voxel_size=(0.2, 0.1, 0.1))
    id3 = iterative_deconvolve_3d(img, psf, compat=False, max_iterations=2, voxel_size=(0.2, 0.1, 0.1))
    assert any("taken to be sampled at the image's voxel size" in n for n in id3.notes), id3.notes
    with pytest.warns(RuntimeWarning, match=r"^psf_voxel_size: not used without the image's voxel_size"):
        iterative_deconvolve_3d(img, psf, compat=False, max_iterations=2, psf_voxel_size=(0.2, 0.1, 0.1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        both = richardson_lucy(img, psf, 2, voxel_size=(0.2, 0.1, 0.1), psf_voxel_size=(0.2, 0.1, 0.1), background=1.0)
    assert not any("taken to be sampled" in n for n in both.notes)
    # stop="auto" runs RL on the kernel prepared (resampled) already: not a PSF without a voxel size
    auto = richardson_lucy(img, psf, 10, stop="auto", gain=1.0, offset=0.0, voxel_size=(0.2, 0.1, 0.1),
                           psf_voxel_size=(0.1, 0.05, 0.05))
    assert any("resampled" in n for n in auto.notes) and not any("taken to be sampled" in n for n in auto.notes)


def test_image_and_psf_swapped_is_refused_and_a_big_real_psf_is_not():
    """``deconvolve PSF IMAGE``: the 'PSF' (the data) is bigger than the 'image' on every axis, most
    of its flux is cropped away and it has no peak to speak of: refused (a batch run wrote a result of
    the PSF's shape and exited 0 after two warnings).  A wide PSF cropped as much but concentrated
    only warns; a measured PSF bigger than the image whose flux is all usable (case 3) gets no word."""
    import warnings as w

    from fijidecon.deconvolve import richardson_lucy, wiener
    from fijidecon.errors import InputError
    from fijidecon.psf import gaussian

    rng = np.random.default_rng(1)
    data = rng.poisson(30, (40, 96, 96)).astype(np.float32)
    psf = gaussian((9, 15, 15), (1.5, 1.5, 1.5))
    for fn in (lambda a, b: richardson_lucy(a, b, 1), lambda a, b: wiener(a, b)):
        with w.catch_warnings():
            w.simplefilter("ignore")
            with pytest.raises(InputError, match=r"^psf: \(40, 96, 96\) is bigger than the image \(9, 15, 15\) on "
                                                 r"every axis and its peak is only [\d.]+x its mean: the image and "
                                                 r"the PSF look swapped \(the image comes first\)$"):
                fn(psf, data)
    # bigger on every axis, less than 2x on some, peak 10x its mean, half its flux cropped away: a warning only
    wide = gaussian((41, 61, 61), (40.0, 20.0, 20.0))
    with pytest.warns(RuntimeWarning, match=r"bigger than the image \(9, 40, 40\) on every axis.*swapped"):
        richardson_lucy(rng.random((9, 40, 40)).astype(np.float32) + 1, wide, 1, background=1)
    big_psf = gaussian((61, 127, 127), (2.0, 1.5, 1.5))  # bigger than the image on every axis, compact
    with w.catch_warnings():
        w.simplefilter("error", RuntimeWarning)
        richardson_lucy(data, big_psf, 1, background=15)


@pytest.mark.parametrize("vs", [(0.2, 0.1, 4.0), (0.2, 0.1, 25.0)])
def test_voxel_sizes_far_apart_warn_and_absurdly_far_apart_are_refused(vs):
    """A PSF at 0.1 µm for an image 'at' 1e5 µm (metres read as µm) or 1e-10 µm became 1x1x1 (the
    output equalled the input) or a flat result, with a note only; a nm/µm mix-up (1000x) was
    the only ratio warned about."""
    import warnings as w

    from fijidecon.psf import gaussian

    img = np.random.default_rng(0).poisson(20, (16, 32, 32)).astype(np.float32)
    psf = gaussian((7, 11, 11), (1.5, 1.5, 1.5))
    with pytest.warns(RuntimeWarning, match=r"^psf: its voxel size \(0.2, 0.1, 0.1\) and the image's .* differ "
                                            r".*x: no microscope samples"):
        richardson_lucy(img, psf, 1, background=10, voxel_size=vs, psf_voxel_size=(0.2, 0.1, 0.1))
    for absurd in ((0.2e6, 0.1e6, 0.1e6), (0.2e-9, 0.1e-9, 0.1e-9)):  # metres as µm: constant or unchanged output
        with pytest.raises(ValueError, match=r"^psf: its voxel size .* differ 1e\+0[69]x; no microscope"):
            richardson_lucy(img, psf, 1, background=10, voxel_size=absurd, psf_voxel_size=(0.2, 0.1, 0.1))
    with w.catch_warnings():
        w.simplefilter("error", RuntimeWarning)
        richardson_lucy(img, psf, 1, background=10, voxel_size=(0.6, 0.05, 0.05), psf_voxel_size=(0.2, 0.1, 0.1))


def test_voxel_sizes_given_in_x_y_z_order_are_warned_about():
    """`--psf-voxel-size '0.13,0.13,0.3 um'` (Z and X swapped) resampled a 15x31x31 PSF to 7x31x72 with
    only a note; a PSF finer in Z than in X for an image coarser in Z is named now."""
    img = np.zeros((8, 32, 32), np.float32)
    img[4, 16, 16] = 100
    psf = _gauss((9, 15, 15), (1.5, 2.0, 2.0))
    with pytest.warns(RuntimeWarning, match=r"^psf: its voxel size \(0\.13, 0\.13, 0\.3\) is finer in Z than in X "
                                            r"while the image's \(0\.3, 0\.13, 0\.13\) is coarser .* given in X, Y, "
                                            r"Z order\?"):
        richardson_lucy(img, psf, 1, voxel_size=(0.3, 0.13, 0.13), psf_voxel_size=(0.13, 0.13, 0.3))
    import warnings

    with warnings.catch_warnings():  # both coarser in Z (a PSF sampled finer than the image): no word
        warnings.simplefilter("error")
        richardson_lucy(img, psf, 1, voxel_size=(0.3, 0.13, 0.13), psf_voxel_size=(0.2, 0.1, 0.1))


# -- a correctness trial on the real files (2026-12-02) ------------------------------------------------

def test_a_bright_bead_whose_offset_is_under_one_percent_of_its_peak_is_cleaned():
    """A fresh user: the light-sheet bead made brighter (peak 26397 on the same camera offset, 0.56 % of the
    peak) kept its offset, which held 98 % of the kernel's flux: RL gave 0.0005 where the points were 6998."""
    lls = _real("pycudadecon_lls_psf/psf.tif").astype(np.float32)
    g = ndimage.gaussian_filter(lls, 1)
    bright = lls + 4 * np.clip(g - 147, 0, None) * (g > 187)
    assert np.median(lls[0]) < 0.01 * bright.max()
    prep = _otf.prepare_psf(bright)
    assert 130 < prep.report["offset"] < 160 and any("camera offset" in n for n in prep.notes)
    k = prep.kernel
    c = [n // 2 for n in k.shape]
    assert k[c[0] - 3:c[0] + 4, c[1] - 3:c[1] + 4, c[2] - 3:c[2] + 4].sum() > 0.3  # was 0.016


def test_smooth_faint_tails_of_a_computed_psf_are_not_an_offset():
    """The flux rule for offsets needs camera noise: a computed PSF's smooth border is never subtracted."""
    from fijidecon.psf import widefield

    for a in (widefield((64, 128, 128), voxel_size_nm=(200, 100, 100), na=1.2, wavelength_nm=520,
                        immersion_index=1.33), _gauss((31, 64, 64), (6.0, 2.0, 2.0)) + 1e-3):
        assert _otf.prepare_psf(a).report["offset"] == 0.0


def test_a_psf_resampled_to_coarser_voxels_loses_no_plane_and_is_integrated_over_the_pixel():
    """A fresh user: 21 planes at 100 nm became 8 at 250 nm with the +1000 nm plane lost (10 % of the flux, not
    reported), and 65 nm pixels point-sampled to 130 nm gave a PSF too narrow (neighbour 0.128 of the peak
    against 0.195 computed at 130 nm)."""
    from fijidecon.psf import widefield

    kw = dict(na=1.45, wavelength_nm=461, immersion_index=1.515, sample_index=1.515)
    fine = widefield((21, 63, 63), voxel_size_nm=(100, 65, 65), **kw)
    prep = _otf.prepare_psf(fine, voxel_size=(250, 130, 130), psf_voxel_size=(100, 65, 65))
    k = prep.kernel
    assert k.shape == (9, 31, 31)
    axial = k[:, 15, 15]
    np.testing.assert_allclose(axial, axial[::-1], rtol=1e-3)  # symmetric: no plane lost
    direct = widefield((9, 31, 31), voxel_size_nm=(250, 130, 130), **kw)
    direct /= direct.sum()
    assert np.linalg.norm(k - direct) / np.linalg.norm(direct) < 0.06  # 0.22 sampled without the integration
    assert 0.17 < k[4, 15, 16] / k[4, 15, 15] < 0.21
    assert _otf.resample(np.ones((20, 8, 8)), (100, 1, 1), (250, 1, 1)).shape == (8, 8, 8)  # even: 4 + 3 + 1


def test_the_crop_to_the_support_is_reported_with_the_flux_it_leaves_out():
    """A fresh user: a same-size widefield PSF lost 4.9 % of its flux to the psf_threshold crop without a note
    (the README promises one above 1e-4)."""
    core, wide = _gauss((31, 95, 95), (1.0, 1.5, 1.5)), _gauss((31, 95, 95), (8.0, 30.0, 30.0))
    psf = core / core.max() + 5e-5 * wide / wide.max()
    prep = _otf.prepare_psf(psf)  # faint wide light under 1e-4 of the peak, as a widefield PSF's out of focus
    assert prep.report["flux_dropped"] > 0.05
    line = [n for n in prep.notes if "support" in n]
    assert line and "psf_threshold=0.0001 of its peak" in line[0] and "psf_threshold=0 uses it all" in line[0]
    assert not any("support" in n for n in _otf.prepare_psf(psf, threshold=0.0).notes)


def test_one_bead_cropped_about_its_peak_or_given_whole_puts_objects_in_one_place():
    """A fresh user: the whole bead file was moved onto the centroid of its voxels above 2 % of the peak, 0.6-1.3
    voxels from the peak where a crop about the peak is used as it is: objects landed 145 nm apart in Z."""
    b = _real("boulanger_bead_psf/psf-gfp.tif").astype(np.float32)
    cores = []
    for sl in ((slice(6, 27), slice(104, 145), slice(97, 138)), (slice(None),) * 3):
        k = _otf.prepare_psf(b[sl]).kernel.astype(np.float64)
        core = np.where(k > 0.5 * k.max(), k, 0)
        cores.append(np.array(ndimage.center_of_mass(core)) - [n // 2 for n in k.shape])
    apart = np.abs(cores[0] - cores[1])
    assert apart[0] < 0.15 and apart.max() < 0.4  # was (0.98, 0.37, 0.95) with the centroid above 2 %


def test_convolve_warns_when_it_moves_a_kernel_and_keeps_a_shift_kernel_with_no_recenter(tmp_path):
    """A fresh user's one-voxel shift kernel returned the image unshifted, with only a logged note."""
    from fijidecon.io import write_image

    d = np.random.default_rng(0).random((8, 16, 16)).astype(np.float32)
    k = np.zeros((3, 3, 3), np.float32)
    k[1, 1, 2] = 1
    with pytest.warns(UserWarning, match=r"^psf: re-centred: .* moved by \(\+0\.00, \+0\.00, -1\.00\) voxels before "
                                         r"convolving; give recenter=False"):
        convolve(d, k)
    np.testing.assert_allclose(convolve(d, k, recenter=False)[..., 1:], d[..., :-1], atol=1e-5)
    write_image(tmp_path / "d.tif", d)
    write_image(tmp_path / "k.tif", k)
    r = subprocess.run([sys.executable, "-m", "fijidecon", "deconvolve", "convolve", tmp_path / "d.tif",
                        tmp_path / "k.tif", "-o", tmp_path / "o.tif"], capture_output=True, text=True)
    assert r.returncode == 0 and "give --no-recenter to convolve with the kernel as given" in r.stderr, r.stderr


def test_wiener_regularization_line_is_in_the_result_notes():
    """The API's result.notes lacked the line the CLI's sidecar and ImageJ's Log have."""
    img = np.random.default_rng(1).poisson(50, (12, 40, 40)).astype(np.float32)
    res = wiener(img, _gauss((7, 11, 11), (2.0, 1.5, 1.5)))
    assert any(n.startswith("wiener: regularization ") and "chosen by" in n for n in res.notes)


@pytest.mark.parametrize("value", [65535, 1.0])
def test_a_flat_psf_is_refused_for_deconvolution_and_kept_by_convolve(value):
    """A fresh batch user: a saturated bead crop (every voxel 65535) ran Wiener (result -7.9e5 to 6.8e5 for data
    up to 2e4) and RL without a word, even with --strict.  A box kernel still smooths with convolve."""
    img = np.random.default_rng(0).poisson(100, (12, 40, 40)).astype(np.float32)
    flat = np.full((15, 31, 31), value, np.float32)
    for method in (lambda: richardson_lucy(img, flat, 2, background=0), lambda: wiener(img, flat)):
        with pytest.raises(ValueError, match=r"^psf: every voxel of its 15x31x31 array is \S+: a saturated or blank "
                                             r"crop, not a PSF"):
            method()
    assert np.isfinite(convolve(img, flat)).all()
    flat.flat[[5, 500, 5000]] = 0.9999 * value  # a few voxels off the level (a verifier): as flat
    with pytest.raises(ValueError, match=r"^psf: its 15x31x31 array is flat \(its peak \S+ is within 0\.1 % of its "
                                         r"mean\): a saturated or blank crop"):
        wiener(img, flat)


def test_a_widefield_bead_on_an_offset_under_one_percent_of_its_peak_is_cleaned():
    """A verifier: a simulated widefield bead (out-of-focus light on its border) on offsets of 0.05-0.8 % of its peak,
    61-89 % of its sum, kept them: the border's noise test wanted it rougher than such a border is (0.22-0.27 of its
    spread against 0.5 asked; computed PSFs 0.01-0.02)."""
    from fijidecon.psf import widefield

    w = widefield((32, 64, 64), voxel_size_nm=(200, 100, 100), na=1.4, wavelength_nm=520, normalize="peak")
    rng = np.random.default_rng(0)
    for off in (100, 500):
        q = np.clip((rng.poisson(w * 60000) + off + rng.normal(0, 5, w.shape)).round(), 0, 65535).astype(np.uint16)
        prep = _otf.prepare_psf(q)
        assert off <= prep.report["offset"] < off + 40, (off, prep.report["offset"])  # + the border's own light
    assert _otf.prepare_psf(w).report["offset"] == 0.0


def test_a_support_longer_than_the_psf_says_why():
    """'cropped from (40, 201, 101) to its support (41, 179, 101)' read oddly to a fresh user: an even side
    with light at both ends, centred on its centre voxel, gains a voxel of zeros; the note says so."""
    from fijidecon.deconvolve import _otf

    a = np.full((4, 21, 21), 1e-5, np.float32)
    a[:, 8:13, 8:13] = 1.0
    a[2, 10, 10] = 5.0
    note = _otf.prepare_psf(a, name="psf").notes[0]
    assert note.startswith("psf: cropped from (4, 21, 21) to its support (5, 5, 5) (") and \
        "a side with light at both ends gains a voxel of zeros" in note, note
    a = np.full((5, 21, 21), 1e-5, np.float32)
    a[:, 8:13, 8:13] = 1.0
    assert "gains a voxel" not in _otf.prepare_psf(a, name="psf").notes[0]
