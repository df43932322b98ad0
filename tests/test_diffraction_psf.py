"""Diffraction PSF 3D: the originals' outputs reproduced, and the accurate mode's physics."""

import math

import numpy as np
import pytest

from conftest import load
from fijidecon.psf import diffraction_psf_3d

PSF_A = dict(width=32, height=32, depth=16, index=1.33, na=1.2, wavelength=520, spherical_aberration=0,
             pixel_spacing=100, slice_spacing=250, normalization="sum")
PSF_B = dict(width=33, height=31, depth=17, index=1.515, na=1.4, wavelength=510, spherical_aberration=400,
             pixel_spacing=80, slice_spacing=200, normalization="peak")


@pytest.mark.parametrize("params,ref", [(PSF_A, "psfA_32x32x16.npy"), (PSF_B, "psfB_33x31x17.npy")])
def test_compat_reproduces_original(params, ref):
    expected = load(ref)
    got = diffraction_psf_3d(**params)
    assert got.dtype == np.float32
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) <= 1e-6 * np.max(expected)


def test_negative_aberration_is_the_z_mirror_of_positive():
    # I(rho, -z; -SA) = I(rho, z; SA); with an odd depth the grid is symmetric, and the
    # node-count rule (Q1) is symmetric too, so the mirror is exact.
    got = diffraction_psf_3d(**{**PSF_B, "spherical_aberration": -400})
    expected = load("psfB_33x31x17.npy")[::-1]
    assert np.max(np.abs(got - expected)) <= 1e-6 * np.max(expected)
    # and the peak moves toward lower slice indices (positive SA moves it up)
    assert np.unravel_index(np.argmax(got), got.shape)[0] == PSF_B["depth"] // 2 - 1


def test_positive_aberration_moves_peak_to_higher_slices():
    got = load("psfB_33x31x17.npy")
    assert np.unravel_index(np.argmax(got), got.shape)[0] == PSF_B["depth"] // 2 + 1


def test_single_slice_is_the_focal_plane():
    stack = diffraction_psf_3d(**{**PSF_A, "normalization": "peak"})
    plane = diffraction_psf_3d(**{**PSF_A, "depth": 1, "normalization": "peak"})
    assert plane.shape == (1, 32, 32)
    np.testing.assert_array_equal(plane[0], stack[PSF_A["depth"] // 2])


def test_normalizations_agree_with_each_other():
    s = diffraction_psf_3d(**{**PSF_A, "normalization": "sum"})
    p = diffraction_psf_3d(**{**PSF_A, "normalization": "peak"})
    p255 = diffraction_psf_3d(**{**PSF_A, "normalization": "peak255"})
    assert p.max() == pytest.approx(1.0, abs=1e-7)
    assert p255.max() == pytest.approx(255.0, abs=1e-4)
    np.testing.assert_allclose(p * 255, p255, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(s / s.max(), p, rtol=1e-5, atol=1e-7)
    assert float(s.sum(dtype=np.float64)) == pytest.approx(1.0, abs=1e-5)


def test_db_output():
    lin = diffraction_psf_3d(**PSF_A)
    db = diffraction_psf_3d(**PSF_A, db=True)
    mask = lin > 1e-9
    np.testing.assert_array_equal(db[~mask], -90.0)
    np.testing.assert_allclose(db[mask], 10 * np.log10(lin[mask].astype(np.float64)), atol=1e-4)


def test_odd_sizes_centre_at_n_div_2():
    psf = diffraction_psf_3d(width=15, height=12, depth=9, index=1.0, na=0.5, wavelength=500,
                             pixel_spacing=100, slice_spacing=200, normalization="peak")
    assert np.unravel_index(np.argmax(psf), psf.shape) == (4, 6, 7)
    # rotational symmetry about (jc, ic): a pixel and its mirror through the centre
    assert psf[4, 6, 7 + 3] == psf[4, 6, 7 - 3]
    assert psf[4, 6 + 2, 7] == psf[4, 6 - 2, 7]


# -- accurate mode ------------------------------------------------------------------------

def test_accurate_mode_agrees_with_compat_where_compat_is_exact():
    # On the pixel rows through the centre the original evaluates the profile at exact
    # (integer) radii, so only its quadrature error (~2e-4 of the peak) remains.
    comp = diffraction_psf_3d(**PSF_B)
    acc = diffraction_psf_3d(**PSF_B, compat=False)
    jc, ic = PSF_B["height"] // 2, PSF_B["width"] // 2
    row_diff = np.abs(acc[:, jc, :] - comp[:, jc, :]).max()
    col_diff = np.abs(acc[:, :, ic] - comp[:, :, ic]).max()
    assert max(row_diff, col_diff) < 1e-3
    # off the axes, the original's integer-radius interpolation (Q2) is off by up to ~11 %
    assert np.abs(acc - comp).max() > 0.05


def test_accurate_mode_is_z_symmetric_without_aberration():
    acc = diffraction_psf_3d(**{**PSF_A, "depth": 17}, compat=False)
    np.testing.assert_allclose(acc, acc[::-1], rtol=0, atol=1e-7 * acc.max())


def test_accurate_mode_lateral_fwhm_matches_airy_at_low_na():
    lam, na, dx = 500.0, 0.2, 25.0
    psf = diffraction_psf_3d(width=129, height=129, depth=1, index=1.0, na=na, wavelength=lam,
                             pixel_spacing=dx, slice_spacing=100, normalization="peak", compat=False)
    row = psf[0, 64].astype(np.float64)
    # half-maximum crossing by linear interpolation
    right = row[64:]
    k = int(np.argmax(right < 0.5))
    x_half = (k - 1) + (right[k - 1] - 0.5) / (right[k - 1] - right[k])
    fwhm = 2 * x_half * dx
    assert fwhm == pytest.approx(0.514 * lam / na, rel=0.02)


def test_accurate_mode_sums_to_one_in_float64():
    acc = diffraction_psf_3d(**PSF_A, compat=False)
    assert acc.dtype == np.float32
    assert float(acc.sum(dtype=np.float64)) == pytest.approx(1.0, abs=1e-6)


# -- bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize("bad,match", [
    (dict(width=0), "width"),
    (dict(height=-3), "height"),
    (dict(depth=2.5), "depth"),
    (dict(pixel_spacing=0), "pixel_spacing"),
    (dict(slice_spacing=-1), "slice_spacing"),
    (dict(wavelength=float("nan")), "wavelength"),
    (dict(index=0), "index"),
    (dict(na=-0.1), "na"),
    (dict(normalization="max"), "normalization"),
])
def test_bad_input_names_the_parameter(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        diffraction_psf_3d(**{**PSF_A, **bad})


@pytest.mark.parametrize("compat", [True, False])
@pytest.mark.parametrize("na", [1.33, 1.4])
def test_na_not_below_index_is_an_error_in_both_modes(compat, na):
    # the original silently returns NaN/Inf here
    with pytest.raises(ValueError,
                       match=r"^na: expected a numerical aperture smaller than the refractive index, got "
                             r"na=[\d.]+ with index=1\.\d+$"):
        diffraction_psf_3d(**{**PSF_A, "na": na}, compat=compat)


@pytest.mark.parametrize("compat", [True, False])
@pytest.mark.parametrize("lam,dxy,dz,word", [(0.52, 8.0, 250.0, "pixel_spacing=8 is 37x"),
                                             (520.0, 0.065, 0.25, "pixel_spacing=0.065 is"),
                                             (520.0, 65.0, 0.25, "slice_spacing=0.25 is"), (520.0, 65.0, 250.0, None)])
def test_lengths_in_different_units_warn(compat, lam, dxy, dz, word):
    """'Any length unit, the same for all': a wavelength in µm with spacings in nm (a one-voxel PSF) or the
    reverse (a flat one) warn, naming the length; the PSF is still what the original computes."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p = diffraction_psf_3d(**{**PSF_A, "wavelength": lam, "pixel_spacing": dxy, "slice_spacing": dz,
                                  "width": 16, "height": 16, "depth": 4}, compat=compat)
    msgs = [str(w.message) for w in caught if "in one unit?" in str(w.message)]
    assert (len(msgs) == 1 and word in msgs[0] and msgs[0].startswith("psf: ")) if word else not msgs
    assert np.isfinite(p).all()


def test_lengths_in_different_units_that_would_take_minutes_are_refused():
    """A fresh batch user: --wavelength 0.52 with the default 30-unit spacings and 256^3 stack warned, then ran
    for many minutes (about 16 min projected); a unit mix-up that long is refused before any computation."""
    import time

    t = time.perf_counter()
    with pytest.raises(ValueError, match=r"^wavelength: pixel_spacing=30 is \S+x the lateral resolution .* in one "
                                         r"unit\? \(refused: this PSF would take about \d+ min to compute\)$"):
        diffraction_psf_3d(index=1.515, na=1.4, wavelength=0.52, pixel_spacing=30, slice_spacing=30, width=256,
                           height=256, depth=256)
    assert time.perf_counter() - t < 5
