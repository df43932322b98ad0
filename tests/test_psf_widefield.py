"""Tests of the scalar aplanatic widefield PSF (Richards–Wolf + Gibson–Lanni mismatch)."""


import numpy as np
import pytest
from scipy.special import j1

from fijidecon.psf import focal_shift, widefield


def _fwhm_1d(profile, step):
    """FWHM of a peak-centred 1-D profile (from its centre outwards), linear interpolation."""
    c = int(np.argmax(profile))
    half = profile[c] / 2
    right = profile[c:]
    i = int(np.argmax(right < half))
    x = i - 1 + (right[i - 1] - half) / (right[i - 1] - right[i])
    return 2 * x * step


def test_shape_dtype_normalization():
    p = widefield((16, 32, 30), voxel_size_nm=(200, 65, 65), na=1.4, wavelength_nm=520)
    assert p.shape == (16, 32, 30) and p.dtype == np.float32
    assert abs(float(p.sum(dtype=np.float64)) - 1) < 1e-5
    assert p.min() >= 0
    assert tuple(np.unravel_index(p.argmax(), p.shape)) == (8, 16, 15)
    pk = widefield((16, 32, 30), voxel_size_nm=(200, 65, 65), na=1.4, wavelength_nm=520, normalize="peak",
                   dtype=np.float64)
    assert pk.dtype == np.float64 and pk.max() == 1.0
    np.testing.assert_allclose(pk / pk.sum(), p, rtol=2e-5, atol=1e-9)
    # a 2-D shape is the in-focus plane
    p2 = widefield((32, 30), voxel_size_nm=65, na=1.4, wavelength_nm=520, normalize="peak", dtype=np.float64)
    np.testing.assert_allclose(p2, pk[8] / pk[8].max(), rtol=1e-10, atol=1e-14)


def test_lateral_fwhm_low_na_is_airy():
    lam, na = 500.0, 0.2
    p = widefield((257, 257), voxel_size_nm=10.0, na=na, wavelength_nm=lam, immersion_index=1.0,
                  oversample=1, normalize="peak", dtype=np.float64)
    fwhm = _fwhm_1d(p[128], 10.0)
    # Airy disc: FWHM = 0.5145 λ/NA (Born & Wolf §8.5.2)
    assert fwhm / (lam / na) == pytest.approx(0.5145, abs=0.003)
    # whole radial profile = (2 J1(v)/v)^2, v = k NA r (paraxial, NA 0.2)
    r = np.arange(1, 129) * 10.0
    v = 2 * np.pi / lam * na * r
    airy = (2 * j1(v) / v) ** 2
    np.testing.assert_allclose(p[128, 129:], airy, atol=3e-3)


def test_axial_profile_low_na_is_sinc2():
    lam, na, n = 500.0, 0.15, 1.0
    dz = 500.0
    p = widefield((257, 3, 3), voxel_size_nm=(dz, 20, 20), na=na, wavelength_nm=lam, immersion_index=n,
                  oversample=1, normalize="peak", dtype=np.float64)
    z = (np.arange(257) - 128) * dz
    # paraxial: I(0, z) = sinc^2(u / 4 pi), u = 2π/λ · NA²/n · z, first zero at 2 n λ / NA²
    u = 2 * np.pi / lam * na**2 / n * z
    ref = np.sinc(u / (4 * np.pi)) ** 2
    np.testing.assert_allclose(p[:, 1, 1], ref, atol=0.01)
    zero = 2 * n * lam / na**2
    iz = int(round(zero / dz))
    assert p[128 + iz, 1, 1] < 2e-3 and p[128 - iz, 1, 1] < 2e-3
    assert p[128 + iz // 2, 1, 1] > 0.3


@pytest.mark.parametrize("nz", [16, 17])
def test_axial_symmetry_without_aberration(nz):
    kw = dict(voxel_size_nm=(150, 70, 70), na=1.4, wavelength_nm=520)
    p = widefield((nz, 24, 24), **kw, dtype=np.float64)
    c = nz // 2
    k = min(c, nz - 1 - c)
    np.testing.assert_array_equal(p[c - k : c], p[c + 1 : c + k + 1][::-1])
    # lateral symmetry: x <-> y and about the centre pixel
    np.testing.assert_allclose(p, np.swapaxes(p, 1, 2), rtol=1e-12, atol=1e-18)
    np.testing.assert_allclose(p[:, 1:, 1:], p[:, 1:, 1:][:, ::-1, ::-1], rtol=1e-12, atol=1e-18)
    # a depth without index mismatch changes nothing
    q = widefield((nz, 24, 24), **kw, depth_nm=8000, sample_index=1.515, dtype=np.float64)
    np.testing.assert_array_equal(p, q)
    # "middle" centre of an even stack is symmetric in every axis
    m = widefield((16, 24, 24), **kw, centre="middle", dtype=np.float64)
    np.testing.assert_allclose(m, m[::-1, ::-1, ::-1], rtol=1e-12, atol=1e-18)


def test_index_mismatch_breaks_symmetry_and_shifts_focus():
    kw = dict(voxel_size_nm=(100, 80, 80), na=1.3, wavelength_nm=520, immersion_index=1.515,
              sample_index=1.33, depth_nm=5000, dtype=np.float64)
    p = widefield((81, 16, 16), **kw)
    c = 40
    ax = p[:, 8, 8]
    assert np.abs(ax[c - 20 : c] - ax[c + 1 : c + 21][::-1]).max() > 0.1 * ax.max()
    # oil -> water: the image of the source lies deeper than the nominal focus
    zpk = (int(np.argmax(ax)) - c) * 100.0
    assert zpk > 0
    shift = focal_shift(na=1.3, wavelength_nm=520, immersion_index=1.515, sample_index=1.33, depth_nm=5000)
    assert abs(zpk - shift) <= 100.0
    # axial_origin="peak" puts the on-axis maximum on the centre plane
    q = widefield((81, 16, 16), **kw, axial_origin="peak")
    assert int(np.argmax(q[:, 8, 8])) == c
    # paraxial limit of the focal shift: d (n_i / n_s - 1)
    low = focal_shift(na=0.25, wavelength_nm=520, immersion_index=1.515, sample_index=1.33, depth_nm=50000)
    assert low == pytest.approx(50000 * (1.515 / 1.33 - 1), rel=0.02)
    assert focal_shift(na=1.3, wavelength_nm=520, sample_index=1.515, depth_nm=5000) == 0.0


def test_pixel_integration():
    kw = dict(voxel_size_nm=(200, 100, 100), na=1.4, wavelength_nm=520, normalize="peak", dtype=np.float64)
    point = widefield((5, 33, 33), oversample=1, **kw)
    o3 = widefield((5, 33, 33), oversample=3, **kw)
    o9 = widefield((5, 33, 33), oversample=9, **kw)
    o11 = widefield((5, 33, 33), oversample=11, **kw)
    # integrating over the pixel flattens the peak relative to its neighbours
    assert o3[2, 16, 17] > point[2, 16, 17]
    # the average over sub-samples converges
    assert np.abs(o9 - o11).max() < np.abs(o3 - o11).max() / 5
    assert np.abs(o9 - o11).max() < 2e-3


def test_quadrature_converged():
    kw = dict(voxel_size_nm=(250, 65, 65), na=1.4, wavelength_nm=520, sample_index=1.33, depth_nm=10000,
              dtype=np.float64, normalize="peak")
    auto = widefield((40, 96, 96), **kw)
    fine = widefield((40, 96, 96), **kw, quadrature_nodes=1500)
    assert np.abs(auto - fine).max() < 1e-5


def test_matches_psfmodels_scalar_gibson_lanni():
    psfmodels = pytest.importorskip("psfmodels")
    zv = np.arange(-60, 61) * 0.025  # µm
    for pz, ns in ((0.0, 1.515), (2.0, 1.33)):
        ref = psfmodels.scalar_psf(zv + pz, nx=31, dxy=0.05, pz=pz, wvl=0.6, params=dict(NA=1.2, ns=ns, ni=1.515))
        ours = widefield((121, 31, 31), voxel_size_nm=(25, 50, 50), na=1.2, wavelength_nm=600,
                         immersion_index=1.515, sample_index=ns, depth_nm=pz * 1000, apodization="uniform",
                         axial_origin="paraxial", normalize="peak")
        assert np.abs(ours - ref).max() < 5e-3, pz
    # the default aplanatic apodization is a different, also sensible, model: same width within 3 %
    apl = widefield((121, 31, 31), voxel_size_nm=(25, 50, 50), na=1.2, wavelength_nm=600, sample_index=1.515,
                    normalize="peak")
    ref0 = psfmodels.scalar_psf(zv, nx=31, dxy=0.05, pz=0, wvl=0.6, params=dict(NA=1.2, ns=1.515, ni=1.515))
    assert _fwhm_1d(apl[60, 15], 50) == pytest.approx(_fwhm_1d(ref0[60, 15], 50), rel=0.03)


def test_higher_na_is_narrower():
    widths = []
    for na in (0.8, 1.1, 1.4):
        p = widefield((1, 65, 65), voxel_size_nm=20, na=na, wavelength_nm=520, oversample=1, normalize="peak")
        widths.append(_fwhm_1d(p[0, 32], 20))
    assert widths[0] > widths[1] > widths[2]
    assert widths[2] < 0.51 * 520 / 1.4 * 1.05  # high NA: at most ~ the paraxial Airy width


@pytest.mark.parametrize(
    "kwargs, exc, word",
    [
        (dict(na=1.6), ValueError, "na"),
        (dict(na=1.515), ValueError, "na"),
        (dict(na=0.0), ValueError, "na"),
        (dict(wavelength_nm=-500), ValueError, "wavelength_nm"),
        (dict(voxel_size_nm=(0, 65, 65)), ValueError, "voxel_size_nm"),
        (dict(voxel_size_nm=(65, 65)), ValueError, "voxel_size_nm"),
        (dict(immersion_index=0), ValueError, "immersion_index"),
        (dict(sample_index=-1.3), ValueError, "sample_index"),
        (dict(depth_nm=-10), ValueError, "depth_nm"),
        (dict(oversample=2), ValueError, "oversample"),
        (dict(apodization="gaussian"), ValueError, "apodization"),
        (dict(axial_origin="top"), ValueError, "axial_origin"),
        (dict(centre="corner"), ValueError, "centre"),
        (dict(normalize="total"), ValueError, "normalize"),
        (dict(shape=(64,)), ValueError, "shape"),
        (dict(quadrature_nodes=2), ValueError, "quadrature_nodes"),
        (dict(dtype=np.uint16), TypeError, "dtype"),
    ],
)
def test_bad_input(kwargs, exc, word):
    args = dict(shape=(4, 8, 8), voxel_size_nm=(200, 65, 65), na=1.4, wavelength_nm=520)
    args.update(kwargs)
    shape = args.pop("shape")
    with pytest.raises(exc, match=word):
        widefield(shape, **args)


def test_command_description_calls_core():
    from fijidecon.commands import modern_psf

    cmd = modern_psf.WIDEFIELD_PSF
    keys = [p.key for p in cmd.params]
    assert len(keys) == len(set(keys))
    values = cmd.parse_macro("numerical=1.2 wavelength=600 immersion=1.515 sample=1.33 source=3000 pixel=80 "
                             "slice=150 width,=24 height,=24 depth,=20 axial=[Intensity peak]")
    out = cmd.load()(**cmd.api_kwargs(values))
    ref = widefield((20, 24, 24), voxel_size_nm=(150, 80, 80), na=1.2, wavelength_nm=600, sample_index=1.33,
                    depth_nm=3000, axial_origin="peak")
    np.testing.assert_array_equal(out, ref)
    with pytest.raises(ValueError, match="na"):
        cmd.load()(**cmd.api_kwargs(dict(na=1.6)))


@pytest.mark.parametrize("lam,hint", [(0.52, "if that is in µm, pass 520"), (520000, "if that is in pm, pass 520"),
                                      (99, None), (1e-12, None)])
def test_wavelength_in_another_unit_is_refused_with_the_unit_suggested(lam, hint):
    with pytest.raises(ValueError, match=r"^wavelength_nm: expected a wavelength of light in nm") as e:
        widefield((4, 8, 8), voxel_size_nm=100, na=1.0, wavelength_nm=lam)
    assert (hint in str(e.value)) if hint else "pass" not in str(e.value)
    assert "\n" not in str(e.value)


def test_cli_wavelength_in_micrometres_is_one_line(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "fijidecon.cli", "psf", "widefield", "--wavelength-nm", "0.52", "-o",
                        str(tmp_path / "p.tif")], capture_output=True, text=True)
    assert r.returncode == 2 and "--wavelength-nm:" in r.stderr and "pass 520" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "p.tif").exists()


def test_na_above_the_immersion_index_reads_like_diffraction_psf():
    with pytest.raises(ValueError, match=r"^na: expected a numerical aperture smaller than the immersion medium's "
                                         r"refractive index, got na=1\.6 with immersion_index=1\.515$"):
        widefield((4, 8, 8), voxel_size_nm=100, na=1.6, wavelength_nm=500, immersion_index=1.515)


@pytest.mark.parametrize("vox,lam,word", [((0.3, 0.13, 0.13), 461, "voxel_size_nm (y, x)=0.13 is"),
                                          ((0.3, 130, 130), 461, "voxel_size_nm (z)=0.3 is"), ((200, 65, 65), 0.0, None),
                                          ((300, 130, 130), 0.0, None), ((20000, 6500, 6500), 461, "=6500 is 39x")])
def test_lengths_in_different_units_warn(vox, lam, word):
    """Voxels ~1000x from the resolution: lengths in different units (nm and µm)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        widefield((4, 8, 8), voxel_size_nm=vox, na=1.4, wavelength_nm=lam or 461, immersion_index=1.515)
    msgs = [str(w.message) for w in caught if "in one unit?" in str(w.message)]
    assert (len(msgs) == 1 and word in msgs[0]) if word else not msgs


def test_deep_emitters_use_a_composite_angular_rule_as_accurate_as_gauss_legendre(tmp_path):
    """`psf widefield --depth-nm 1e6 --sample-index 1.33` took 25 s for a 16x16x4 PSF and 1e7 more than
    280 s: scipy's Gauss-Legendre nodes cost O(n²) (19 300 and 222 000 nodes).  Above 2048 nodes the
    angular integral is a composite rule in φ (θ ∝ 1 - cos φ), built in O(n), whose nodes cluster at the
    square-root edge of the mismatch term as Gauss-Legendre's do."""
    import subprocess
    import sys

    mod = sys.modules[widefield.__module__]
    x, w = mod._angular_rule(5000)
    assert len(x) >= 5000 and w.sum() == pytest.approx(2.0, rel=1e-12)
    # the square-root edge: ∫ sqrt(1 - x) dx over [-1, 1] = 4 sqrt(2) / 3
    assert (w * np.sqrt(1.0 - x)).sum() == pytest.approx(4.0 * np.sqrt(2.0) / 3.0, rel=1e-9)
    kw = dict(voxel_size_nm=(200, 65, 65), na=1.4, wavelength_nm=520, immersion_index=1.515, sample_index=1.33,
              depth_nm=3e5)  # 5 840 nodes
    composite = widefield((8, 32, 32), **kw)
    gl = mod.GLOBAL_RULE_NODES
    try:
        mod.GLOBAL_RULE_NODES = 10**9  # one Gauss-Legendre rule of the same count
        single = widefield((8, 32, 32), **kw)
    finally:
        mod.GLOBAL_RULE_NODES = gl
    assert np.linalg.norm(composite - single) / np.linalg.norm(single) < 1e-5
    # the Bessel table is made in blocks (1 cm deep, 64x64 pixels: 6.1 GB in one table), the same PSF
    blocks = mod.BESSEL_BLOCK_BYTES
    try:
        mod.BESSEL_BLOCK_BYTES = 2**20
        blocked = widefield((8, 32, 32), **kw)
    finally:
        mod.BESSEL_BLOCK_BYTES = blocks
    np.testing.assert_allclose(blocked, composite, rtol=1e-9, atol=1e-12 * float(composite.max()))
    # 10 cm deep: 3.8e9 Bessel evaluations (142 s) are refused before computing, naming the depth
    with pytest.raises(ValueError, match=r"^depth_nm: the Bessel evaluations of the pupil integral"):
        widefield((32, 64, 64), **dict(kw, depth_nm=1e8))
    # an emitter 1 cm deep (222 000 nodes) is computed, not left running for minutes
    r = subprocess.run([sys.executable, "-m", "fijidecon.cli", "psf", "widefield", "--depth-nm", "1e7",
                        "--sample-index", "1.33", "--width", "16", "--height", "16", "--depth", "4", "-o",
                        str(tmp_path / "deep.tif")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and (tmp_path / "deep.tif").exists(), r.stderr
