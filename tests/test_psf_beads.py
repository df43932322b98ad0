"""Tests of psf_from_beads: synthetic multi-bead images with known PSF, and real bead stacks."""

import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from fijidecon.psf import gaussian, psf_from_beads, widefield
from fijidecon.deconvolve import convolve
from fijidecon.psf.beads import SaturationWarning, bead_kernel

REAL = Path("/work/shared/data/real")
VOX = (150.0, 65.0, 65.0)
KW = dict(na=1.3, wavelength_nm=520.0, immersion_index=1.515)


@pytest.fixture(scope="module")
def truth():
    """A widefield PSF, peak 1, centred at n // 2 (no aberration: unambiguous centre)."""
    return widefield((25, 45, 45), voxel_size_nm=VOX, normalize="peak", dtype=np.float64, **KW)


def _crop_centre(a, shape):
    sl = tuple(slice(n // 2 - s // 2, n // 2 - s // 2 + s) for n, s in zip(a.shape, shape))
    return a[sl]


def _beads_image(truth, positions, peaks, bg=100.0, shape=(40, 200, 200), seed=0):
    """Sub-voxel shifted copies of truth (Fourier shift) at float positions, plus Poisson noise."""
    rng = np.random.default_rng(seed)
    img = np.full(shape, bg)
    c = np.array([n // 2 for n in truth.shape])
    for pos, pk in zip(positions, peaks):
        ip = np.round(pos).astype(int)
        frac = np.asarray(pos) - ip
        shifted = np.fft.ifftn(ndimage.fourier_shift(np.fft.fftn(truth), frac)).real
        sl = tuple(slice(i - cc, i - cc + n) for i, cc, n in zip(ip, c, truth.shape))
        img[sl] += pk * np.clip(shifted, 0, None)
    return rng.poisson(img).astype(np.uint16)


def _half_width(psf, axis):
    """Half width at half maximum (voxels) of a peak-1 PSF centred at n // 2, along one axis."""
    centre = tuple(n // 2 for n in psf.shape)
    idx = list(centre)
    idx[axis] = slice(centre[axis], None)
    prof = psf[tuple(idx)]  # from the peak outwards
    i = int(np.argmax(prof < 0.5))  # first sample below half maximum
    return i - 1 + (prof[i - 1] - 0.5) / (prof[i - 1] - prof[i])


def _positions(n, seed=1):
    rng = np.random.default_rng(seed)
    grid = [(20, 40 + 60 * (i % 3), 40 + 60 * (i // 3)) for i in range(n)]
    return [np.array(g, float) + rng.uniform(-0.5, 0.5, 3) for g in grid]


def test_several_beads_average_recovers_psf(truth):
    pos = _positions(6)
    peaks = [3000] * 6
    img = _beads_image(truth, pos, peaks)
    before = img.copy()
    res = psf_from_beads(img, VOX, shape=(15, 31, 31))
    np.testing.assert_array_equal(img, before)  # input untouched
    assert res.psf.shape == (15, 31, 31) and res.psf.dtype == np.float32
    assert abs(float(res.psf.sum(dtype=np.float64)) - 1) < 1e-5
    assert res.voxel_size == VOX
    assert len(res.beads) == 6 and not res.warnings
    assert res.background == pytest.approx(100, abs=3)
    assert res.noise == pytest.approx(10, rel=0.2)  # Poisson: sqrt(100)
    # sub-voxel positions: found = true (+ one common offset at most, the centring convention)
    found = res.beads[np.lexsort(res.beads.T[::-1])]
    true = np.array(pos)[np.lexsort(np.array(pos).T[::-1])]
    err = found - true
    assert np.abs(err - err.mean(axis=0)).max() < 0.12
    assert np.abs(err.mean(axis=0)).max() < 0.1
    # the average is the PSF
    ref = _crop_centre(truth, (15, 31, 31))
    ref = ref / ref.sum()
    rel = np.linalg.norm(res.psf - ref) / np.linalg.norm(ref)
    assert rel < 0.05
    assert tuple(np.unravel_index(np.argmax(res.psf), res.psf.shape)) == (7, 15, 15)
    np.testing.assert_allclose(res.fwhm, [_half_width(truth, k) * 2 * VOX[k] for k in range(3)], rtol=0.05)
    # averaging six beads beats one bead
    one = psf_from_beads(img, VOX, shape=(15, 31, 31), max_beads=1)
    rel_one = np.linalg.norm(one.psf - ref) / np.linalg.norm(ref)
    assert len(one.beads) == 1 and any("max_beads" in r for _, r in one.rejected)
    assert rel < rel_one / 1.8  # noise-limited: ~1/sqrt(6) expected
    # median of the normalized crops also works
    med = psf_from_beads(img, VOX, shape=(15, 31, 31), average="median")
    assert np.linalg.norm(med.psf - ref) / np.linalg.norm(ref) < 0.08


def test_registration_helps_for_asymmetric_psf():
    # an axially asymmetric (index-mismatched) PSF, beads at sub-voxel offsets
    t = widefield((25, 45, 45), voxel_size_nm=VOX, normalize="peak", sample_index=1.33, depth_nm=4000,
                  axial_origin="peak", dtype=np.float64, **KW)
    pos = _positions(6, seed=3)
    img = _beads_image(t, pos, [5000] * 6, seed=4)
    ref = _crop_centre(t, (15, 31, 31))
    ref = ref / ref.sum()
    out = {}
    for reg in (True, False):
        res = psf_from_beads(img, VOX, shape=(15, 31, 31), register=reg)
        out[reg] = res
        found = res.beads[np.lexsort(res.beads.T[::-1])]
        true = np.array(pos)[np.lexsort(np.array(pos).T[::-1])]
        err = found - true
        out[reg, "spread"] = np.abs(err - err.mean(axis=0)).max()
    assert out[True, "spread"] < 0.15
    assert out[True, "spread"] <= out[False, "spread"] + 0.02
    corr = np.sum(out[True].psf * ref) / np.linalg.norm(out[True].psf) / np.linalg.norm(ref)
    assert corr > 0.97


def test_resampling_to_target_voxel():
    kw = dict(na=1.3, wavelength_nm=520.0)
    t = widefield((33, 65, 65), voxel_size_nm=(100, 50, 50), normalize="peak", dtype=np.float64, **kw)
    img = np.full((45, 90, 90), 10.0)
    img[6:39, 12:77, 12:77] += 1000 * t
    for tv, tol in (((200, 100, 100), 0.02), ((100, 40, 40), 0.02), ((150, 75, 75), 0.04)):
        res = psf_from_beads(img, (100, 50, 50), target_voxel_size=tv, shape=(15, 31, 31), local_background=False)
        ref = widefield((15, 31, 31), voxel_size_nm=tv, **kw)
        assert res.voxel_size == tuple(float(v) for v in tv)
        assert np.abs(res.psf - ref).max() / ref.max() < tol, tv
        np.testing.assert_allclose(res.beads[0], (22, 44, 44), atol=0.01)


def test_2d_image_and_default_shape():
    img = np.full((64, 80), 50.0)
    img[10:41, 20:51] += 1e4 * gaussian((31, 31), 3.0, normalize="peak", dtype=np.float64)
    res = psf_from_beads(img, 0.1)
    # default shape: the largest box around the bead that fits, odd, centred
    assert res.psf.shape == (51, 71)
    assert tuple(np.unravel_index(np.argmax(res.psf), res.psf.shape)) == (25, 35)
    np.testing.assert_allclose(res.beads[0], (25, 35), atol=0.02)
    ref = gaussian((51, 71), 3.0, dtype=np.float64)
    assert np.abs(res.psf - ref).max() < 1e-3 * ref.max() + 1e-6
    # measured FWHM (physical units): the Gaussian's 0.3, within linear-interpolation error
    np.testing.assert_allclose(res.fwhm, (0.3, 0.3), rtol=0.03)
    with pytest.warns(UserWarning, match="bead_diameter"):  # bead size kept, and big: warned
        big = psf_from_beads(img, 0.1, bead_diameter=0.2, bead_iterations=0)
    assert any("bead_diameter" in w for w in big.warnings)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        psf_from_beads(img, 0.1, bead_diameter=0.1, bead_iterations=0)
        psf_from_beads(img, 0.1, bead_diameter=0.2)  # removed: no warning
    with pytest.warns(UserWarning, match="larger than the lateral FWHM"):
        psf_from_beads(img, 0.1, bead_diameter=0.4)
    with pytest.raises(ValueError, match="bead_diameter"):
        psf_from_beads(img, 0.1, bead_diameter=-1)
    with pytest.raises(ValueError, match="bead_iterations"):
        psf_from_beads(img, 0.1, bead_diameter=0.2, bead_iterations=-1)
    pk = psf_from_beads(img, 0.1, normalize="peak", centre="middle", shape=(20, 20))
    assert pk.psf.max() == pytest.approx(1.0) and pk.psf.shape == (20, 20)
    np.testing.assert_allclose(pk.psf, pk.psf[::-1, ::-1], atol=2e-3)


def test_rejections_edge_and_neighbours(truth):
    pos = [np.array(p, float) for p in [(20, 40, 40), (20, 40, 52), (20, 140, 140)]]
    img = _beads_image(truth, pos, [3000] * 3, seed=5).astype(float)
    # a fourth bead 7 voxels from the right edge (a Gaussian blob rolled there)
    img += np.roll(3000 * gaussian((40, 200, 200), (4.0, 4.0, 4.0), normalize="peak", dtype=np.float64), 92, axis=2)
    with pytest.warns(UserWarning, match="leaves the image"):
        res = psf_from_beads(img, VOX, shape=(15, 31, 31))
    assert len(res.beads) == 1
    np.testing.assert_allclose(res.beads[0], (20, 140, 140), atol=0.3)
    reasons = sorted(r for _, r in res.rejected)
    assert reasons == ["another bead inside its crop box"] * 2 + ["crop box leaves the image"]


def test_saturation_warning_and_rejection(truth):
    pos = _positions(3, seed=7)
    img = _beads_image(truth, pos, [2000, 8000, 2500], seed=8).astype(np.int64)
    img = np.minimum(img, 4095).astype(np.uint16)  # a 12-bit camera clips the bright bead
    with pytest.warns(SaturationWarning, match="saturated"):
        res = psf_from_beads(img, VOX, shape=(15, 31, 31))
    assert res.saturated > 1 and len(res.beads) == 3
    assert any("saturated" in w for w in res.warnings)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clean = psf_from_beads(img, VOX, shape=(15, 31, 31), reject_saturated=True)
    assert len(clean.beads) == 2 and clean.saturated == 0
    assert any("saturated voxels" in r for _, r in clean.rejected)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        psf_from_beads(img, VOX, shape=(15, 31, 31), saturation=None)


@pytest.mark.parametrize(
    "kwargs, exc, word",
    [
        (dict(image=np.zeros((2, 3, 4, 5))), ValueError, "image"),
        (dict(image=[[1, 2], [3, 4]]), TypeError, "image"),
        (dict(image=np.zeros((8, 8), complex)), TypeError, "image"),
        (dict(image=np.full((9, 20, 20), np.nan)), ValueError, "image"),
        (dict(voxel_size=(1, 1)), ValueError, "voxel_size"),
        (dict(voxel_size=-1), ValueError, "voxel_size"),
        (dict(target_voxel_size=0), ValueError, "target_voxel_size"),
        (dict(threshold=1.5), ValueError, "threshold"),
        (dict(shape=(5, 5)), ValueError, "shape"),
        (dict(max_beads=0), ValueError, "max_beads"),
        (dict(average="mean"), ValueError, "average"),
        (dict(background="median"), ValueError, "background"),
        (dict(saturation="yes"), ValueError, "saturation"),
        (dict(centre="peak"), ValueError, "centre"),
        (dict(image=np.full((9, 20, 20), 7.0)), ValueError, "no bead"),
    ],
)
def test_bad_input(kwargs, exc, word):
    img = np.full((9, 20, 20), 10.0)
    img[4, 10, 10] = 1000
    args = dict(image=img, voxel_size=(200, 65, 65))
    args.update(kwargs)
    with pytest.raises(exc, match=word):
        psf_from_beads(args.pop("image"), args.pop("voxel_size"), **args)


# -- real data (GPL/MIT/Apache files read from /work/shared only) -----------------------------
def _read(rel):
    path = REAL / rel
    if not path.exists():
        pytest.skip(f"real data file {path} is not available on this machine")
    tifffile = pytest.importorskip("tifffile")
    if rel.endswith("psf-gfp.tif"):
        pytest.importorskip("imagecodecs", reason="psf-gfp.tif is LZW-compressed")
    return tifffile.imread(path)


def test_real_boulanger_bead_saturated():
    img = _read("boulanger_bead_psf/psf-gfp.tif")
    with pytest.warns(SaturationWarning, match="26 saturated voxels"):
        res = psf_from_beads(img, (200, 65, 65), shape=(25, 61, 61))
    assert res.saturated == 26
    np.testing.assert_allclose(res.beads[0], (15, 123, 117), atol=1.5)
    assert res.background == pytest.approx(112, abs=3)
    assert abs(float(res.psf.sum(dtype=np.float64)) - 1) < 1e-5 and res.psf.min() >= 0
    sm = ndimage.gaussian_filter(res.psf.astype(float), 1)
    pk = np.unravel_index(np.argmax(sm), sm.shape)
    assert np.abs(np.array(pk) - (12, 30, 30)).max() <= 1  # flat saturated top: +-1 voxel
    # resampled to 100 nm isotropic: same physical lateral width (second moment), centred
    with pytest.warns(SaturationWarning):
        rs = psf_from_beads(img, (200, 65, 65), target_voxel_size=100, shape=(49, 41, 41))
    assert rs.psf.shape == (49, 41, 41) and rs.voxel_size == (100.0, 100.0, 100.0)

    def lateral_sigma(p, d):
        plane = p[p.shape[0] // 2].astype(float)
        x = (np.arange(plane.shape[1]) - plane.shape[1] // 2) * d
        prof = plane.sum(axis=0)
        core = np.abs(x) <= 400
        return np.sqrt(np.sum(prof[core] * x[core] ** 2) / np.sum(prof[core]))

    assert lateral_sigma(rs.psf, 100) == pytest.approx(lateral_sigma(res.psf, 65), rel=0.1)
    # the README's box at 250x100x100 nm needs 39 planes: the refusal says how big the box is
    with pytest.raises(ValueError, match=r"^image: 1 maxima found but none usable \(crop box leaves the image\); "
                                         r"the 31x41x41 box spans 38.5x62.54x62.54 input voxels around a bead, the "
                                         r"image is 32x250x250: give a smaller shape$"):
        psf_from_beads(img, (200, 65, 65), target_voxel_size=(250, 100, 100), shape=(31, 41, 41))


def test_real_lls_bead_off_centre():
    img = _read("pycudadecon_lls_psf/psf.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = psf_from_beads(img, (100, 101.1, 101.1))
    assert res.background == pytest.approx(140, abs=5)
    np.testing.assert_allclose(res.beads[0], (30, 71, 64), atol=1.0)
    # default shape: the largest box around the bead that fits, centred at n // 2
    assert res.psf.shape == (61, 113, 127)
    assert tuple(np.unravel_index(np.argmax(res.psf), res.psf.shape)) == (30, 56, 63)
    assert res.saturated == 0 and abs(float(res.psf.sum(dtype=np.float64)) - 1) < 1e-5
    rs = psf_from_beads(img, (100, 101.1, 101.1), target_voxel_size=(200, 202.2, 202.2), shape=(31, 31, 31))
    assert rs.psf.shape == (31, 31, 31)
    assert tuple(np.unravel_index(np.argmax(rs.psf), rs.psf.shape)) == (15, 15, 15)


def test_real_redlionfish_cropped_psf():
    img = _read("redlionfish_rfi_psf/PSF_RFI_8bit.tif")
    res = psf_from_beads(img, 300.0, shape=(41, 21, 21))
    assert res.psf.shape == (41, 21, 21) and res.saturated == 0
    np.testing.assert_allclose(res.beads[0], (30, 15, 15), atol=1.0)
    assert tuple(np.unravel_index(np.argmax(res.psf), res.psf.shape))[1:] == (10, 10)


def test_command_description_calls_core(truth):
    from fijidecon.commands import modern_psf

    cmd = modern_psf.PSF_FROM_BEADS
    keys = [p.key for p in cmd.params]
    assert len(keys) == len(set(keys))
    img = _beads_image(truth, _positions(2, seed=11), [3000, 3000], seed=12)
    values = cmd.parse_macro("beads=stack pixel=65 slice=150 target=100 z_target=0 width,=21 height,=21 "
                             "depth,=11 threshold=0.25 maximum=0 register")
    res = cmd.load()(img, **cmd.api_kwargs(values))
    ref = psf_from_beads(img, VOX, target_voxel_size=(150, 100, 100), shape=(11, 21, 21))
    np.testing.assert_array_equal(res.image, ref.psf)
    assert res.voxel_size == (150.0, 100.0, 100.0) and len(res.beads) == 2
    with pytest.raises(ValueError, match="width"):
        cmd.load()(img, **cmd.api_kwargs(dict(width=21, pixel_size=65, slice_spacing=150)))


def test_command_spacing_from_calibration(truth):
    from fijidecon.calibration import Calibration
    from fijidecon.commands import modern_psf

    cmd = modern_psf.PSF_FROM_BEADS
    img = _beads_image(truth, _positions(1, seed=13), [3000], seed=14)
    cal = Calibration.make("ZYX", unit="nm", Z=150, Y=65, X=65)
    kw = cmd.api_kwargs(dict(width=21, height=21, depth=11))
    res = cmd.load()(img, calibration=cal, **kw)
    assert res.voxel_size == VOX
    with pytest.raises(ValueError, match="pixel_size"):
        cmd.load()(img, **kw)  # 0 = from the calibration, and there is none


def test_command_on_an_uncalibrated_image_says_the_psf_has_no_unit(truth):
    """pixel=65 slice=150 on an uncalibrated bead image made a PSF calibrated 65 x 65 x 150 *pixels*:
    later taken at its image's voxel size (not resampled) with only a note then; now said here."""
    from fijidecon.calibration import Calibration
    from fijidecon.commands import modern_psf

    cmd = modern_psf.PSF_FROM_BEADS
    img = _beads_image(truth, _positions(1, seed=13), [3000], seed=14)
    kw = cmd.api_kwargs(dict(width=21, height=21, depth=11, pixel_size=65, slice_spacing=150))
    with pytest.warns(RuntimeWarning, match=r"^image: no length unit \(uncalibrated\): the PSF's voxel size "
                                            r"\(150 x 65 x 65\) has none either"):
        cmd.load()(img, calibration=Calibration.default(3), **kw)


@pytest.mark.parametrize("vox", [(100.0, 40.0, 40.0), (50.0, 50.0)])
def test_bead_kernel_is_a_centred_sphere(vox):
    k = bead_kernel(500.0, vox)
    assert k.ndim == len(vox) and all(n % 2 == 1 for n in k.shape)
    assert k.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(k, k[(slice(None, None, -1),) * k.ndim], atol=1e-12)
    # a uniform sphere (and its projection) has variance r^2 / 5 along every axis; binned
    # into voxels of width v, Sheppard's correction adds v^2 / 12
    for ax, v in enumerate(vox):
        x = (np.arange(k.shape[ax]) - k.shape[ax] // 2) * v
        other = tuple(a for a in range(k.ndim) if a != ax)
        var = float((k.sum(axis=other) * x ** 2).sum())
        assert var == pytest.approx(250.0 ** 2 / 5 + v ** 2 / 12, rel=0.02)
    assert bead_kernel(1.0, vox).size == 1  # far below a voxel: a point
    with pytest.raises(ValueError, match="bead_diameter"):
        bead_kernel(0.0, vox)


def test_bead_size_is_removed():
    """250 nm beads imaged with a 250 nm (lateral) / 700 nm (axial) FWHM PSF: the plain
    average is 10-20 % too wide laterally; with bead_diameter it is within 4 %."""
    vox = (100.0, 40.0, 40.0)
    truth = gaussian((25, 41, 41), (700.0, 250.0, 250.0), vox, dtype=np.float64)
    obj = np.zeros((36, 120, 120), np.float32)
    for p in [(18, 30, 30), (18, 30, 90), (17, 90, 35), (18, 88, 88)]:
        obj[p] = 1.0
    obj = convolve(obj, bead_kernel(250.0, vox).astype(np.float32), edges="constant")
    img = convolve(obj, truth.astype(np.float32), edges="constant") * 2e5 + 100
    img = np.random.default_rng(5).poisson(np.clip(img, 0, None)).astype(np.float32)
    res = psf_from_beads(img, vox, shape=(25, 41, 41), bead_diameter=250.0)
    lateral_avg = np.array(res.fwhm_average[1:]) / 250.0 - 1
    lateral = np.array(res.fwhm[1:]) / 250.0 - 1
    assert np.all(lateral_avg > 0.10), res.fwhm_average
    assert np.all(np.abs(lateral) < 0.04), res.fwhm
    assert abs(res.fwhm[0] / 700.0 - 1) < 0.05
    assert res.psf.sum() == pytest.approx(1.0, rel=1e-5)
    kept = psf_from_beads(img, vox, shape=(25, 41, 41))
    np.testing.assert_allclose(kept.fwhm, res.fwhm_average)


def test_target_and_image_voxel_sizes_in_two_units_are_refused_at_once():
    """A fresh notebook user: voxel_size in µm with target_voxel_size in nm gave a 'bead rejected' warning and
    then 'the 21x41x41 box spans 2.5e+04x8e+04x8e+04 input voxels … give a smaller shape'."""
    img = np.zeros((16, 32, 32), np.float32)
    img[8, 16, 16] = 100.0
    with pytest.raises(ValueError, match=r"^target_voxel_size: 250x130x130 and voxel_size 0\.2x0\.065x0\.065 differ "
                                         r"about \d+x on every axis: probably a unit mix-up"):
        psf_from_beads(img, (0.2, 0.065, 0.065), target_voxel_size=(250, 130, 130), shape=(21, 41, 41))
