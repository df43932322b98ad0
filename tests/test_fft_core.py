"""The FFT/OTF core: fast sizes, real FFTs, backends, PSF preparation, edge geometry."""

import warnings

import numpy as np
import pytest

from fijidecon.deconvolve import _edges, _fft, _otf


def gauss(shape, sigma, centre=None):
    centre = [n // 2 for n in shape] if centre is None else centre
    sigma = np.broadcast_to(np.asarray(sigma, float), (len(shape),))
    g = np.indices(shape, dtype=float)
    r2 = sum(((gi - c) / s) ** 2 for gi, c, s in zip(g, centre, sigma))
    return np.exp(-0.5 * r2)


def _is_5_smooth(n):
    for p in (2, 3, 5):
        while n % p == 0:
            n //= p
    return n == 1


def test_fast_len_and_shape():
    for n in [1, 7, 97, 127, 159, 319, 1000]:
        m = _fft.fast_len(n)
        assert m >= n and _is_5_smooth(m)
    assert _fft.fast_shape((1, 159, 319)) == (1, _fft.fast_len(159), _fft.fast_len(319))
    assert _fft.rfft_shape((4, 6, 10)) == (4, 6, 6)


def test_rfftn_roundtrip_float32():
    a = np.random.default_rng(0).random((6, 10, 12)).astype(np.float32)
    f = _fft.rfftn(a)
    assert f.dtype == np.complex64 and f.shape == (6, 10, 7)
    b = _fft.irfftn(f, a.shape, overwrite_x=True)
    assert b.dtype == np.float32
    np.testing.assert_allclose(b, a, atol=1e-6)


@pytest.mark.skipif(not _fft.pyfftw_available(), reason="pyFFTW not installed")
def test_pyfftw_backend_agrees_within_float32_roundoff():
    from fijidecon.deconvolve import richardson_lucy
    a = np.random.default_rng(1).random((16, 20, 24)).astype(np.float32)
    ref = _fft.rfftn(a)
    psf = gauss((7, 7, 7), 1.2)
    r_ref = richardson_lucy(a * 100, psf, 5).image
    with _fft.backend("pyfftw"):
        assert _fft.backend_name() == "pyfftw"
        f = _fft.rfftn(a)
        r_fftw = richardson_lucy(a * 100, psf, 5).image
    assert _fft.backend_name() == "scipy"
    assert f.dtype == np.complex64
    np.testing.assert_allclose(f, ref, rtol=0, atol=1e-5 * np.abs(ref).max())
    np.testing.assert_allclose(r_fftw, r_ref, rtol=1e-4, atol=1e-4 * r_ref.max())


BACKENDS = ["scipy"] + (["pyfftw"] if _fft.pyfftw_available() else [])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape, box", [((9, 12), (5, 7)), ((6, 10, 12), (4, 7, 9)), ((3, 4, 6, 8), (2, 3, 5, 6))])
def test_plane_wise_ffts_compose_to_rfftn(backend, shape, box):
    """rfft_planes + FFT along axis 0 == rfftn, for a full block and for a zero-padded
    data box; irfft_planes inverts it, pruned to the rows asked for."""
    rng = np.random.default_rng(2)
    x = rng.random(shape, dtype=np.float32)
    with _fft.backend(backend):
        P = np.empty(_fft.rfft_shape(shape), np.complex64)
        for a, b in ((0, 2), (2, shape[0])):  # two blocks of planes
            _fft.rfft_planes(x[a:b], P[a:b], shape[-1])
        _fft.fft_axis0(P)
        ref = _fft.rfftn(x)
        np.testing.assert_allclose(P, ref, atol=2e-5 * np.abs(ref).max())
        # data box at the origin, zero-padded to the work grid
        xb = x[tuple(slice(0, n) for n in box)].copy()
        padded = np.zeros(shape, np.float32)
        padded[tuple(slice(0, n) for n in box)] = xb
        Pb = np.empty_like(P)
        Pb[box[0]:] = 12345  # must not leak: planes beyond the box are not written here
        _fft.rfft_planes(xb, Pb[:box[0]], shape[-1])
        Pb[box[0]:] = 0
        _fft.fft_axis0(Pb)
        refb = _fft.rfftn(padded)
        np.testing.assert_allclose(Pb, refb, atol=2e-5 * np.abs(refb).max())
        # inverse: axis 0 first, then the planes, pruned to the box rows
        _fft.fft_axis0(P, inverse=True)
        back = _fft.irfft_planes(P, shape[-1], rows=box[1:-1])
        assert back.dtype == np.float32
        assert back.shape == (shape[0],) + tuple(box[1:-1]) + (shape[-1],)
        np.testing.assert_allclose(back, x[(slice(None),) + tuple(slice(0, n) for n in box[1:-1])], atol=1e-5)


@pytest.mark.skipif(not _fft.pyfftw_available(), reason="pyFFTW not installed")
def test_pyfftw_plans_keep_no_caller_array_alive():
    """The cached per-thread FFTW plans are pointed back at their own arrays after each
    run, so a big work array is freed when its owner drops it."""
    x = np.random.default_rng(4).random((4, 8, 10), dtype=np.float32)
    P = np.empty(_fft.rfft_shape(x.shape), np.complex64)
    with _fft.backend("pyfftw"):
        _fft.rfft_planes(x, P, 10)
        _fft.fft_axis0(P)
        _fft.fft_axis0(P, inverse=True)
        back = _fft.irfft_planes(P, 10)
    np.testing.assert_allclose(back, x, atol=1e-5)
    plans = _fft._TLS.plans
    assert plans
    for plan, pi, po in plans.values():
        for arr in (plan.input_array, plan.output_array):
            assert not any(np.shares_memory(arr, a) for a in (x, P, back))
    with _fft.reuse_memory():  # the end of a run releases the plans and their arrays
        assert plans
    assert not plans


def test_backend_rejects_unknown():
    with pytest.raises(ValueError, match="backend"):
        with _fft.backend("cufft"):
            pass


def test_prepare_psf_normalises_crops_and_is_float32():
    psf = np.zeros((40, 40))
    psf[10:31, 10:31] = gauss((21, 21), 2.0)  # centred at 20 = 40 // 2
    p = _otf.prepare_psf(psf)
    assert p.kernel.dtype == np.float32
    assert abs(float(p.kernel.sum()) - 1) < 1e-6
    assert all(n % 2 == 1 for n in p.kernel.shape)
    assert p.kernel.shape[0] <= 21  # cropped to the support, not 40
    c = np.array(np.unravel_index(np.argmax(p.kernel), p.kernel.shape))
    assert tuple(c) == p.centre


def test_prepare_psf_recentres_subvoxel_with_a_note():
    shape = (31, 31)
    centred = _otf.prepare_psf(gauss(shape, 2.0)).kernel
    p = _otf.prepare_psf(gauss(shape, 2.0, centre=(15 + 2.3, 15 - 1.6)))
    assert any("re-centred" in n and "centroid" in n for n in p.notes) and p.report["recentred"]
    assert any("by (+2.3, -1.6) voxels (per axis)" in n for n in p.notes), p.notes  # the offset, not its largest axis
    np.testing.assert_allclose(p.shift, (-2.3, 1.6), atol=0.02)
    # the re-centred kernel equals the centred one (cropped to the same size)
    k = p.kernel
    big, small = (centred, k) if centred.size >= k.size else (k, centred)
    sl = tuple(slice((a - b) // 2, (a - b) // 2 + b) for a, b in zip(big.shape, small.shape))
    np.testing.assert_allclose(big[sl] / big.max(), small / small.max(), atol=5e-3)


def test_prepare_psf_no_warning_when_centred():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _otf.prepare_psf(gauss((15, 16, 16), 1.5))


def test_prepare_psf_bad_input():
    with pytest.raises(ValueError, match="psf.*zero"):
        _otf.prepare_psf(np.zeros((5, 5)))
    with pytest.raises(ValueError, match="psf.*NaN"):
        _otf.prepare_psf(np.full((5, 5), np.nan))
    with pytest.raises(TypeError, match="psf"):
        _otf.prepare_psf(np.ones((5, 5), complex))
    p = _otf.prepare_psf(gauss((9, 9), 1.5) - 0.01)
    assert p.kernel.min() >= 0 and any("negative" in n for n in p.notes)


def test_otf_of_centred_symmetric_psf_is_real_and_unit_dc():
    k = _otf.prepare_psf(gauss((9, 11, 11), (1.5, 2.0, 2.0))).kernel
    H = _otf.otf(k, (16, 20, 24))
    assert H.dtype == np.complex64
    assert abs(H.flat[0] - 1) < 1e-5
    assert np.abs(H.imag).max() < 1e-5


def test_geometry_modes():
    g = _edges.geometry("non-circulant", (128, 256, 256), (31, 63, 63))
    assert g.work_shape == (_fft.fast_len(158), _fft.fast_len(318), _fft.fast_len(318))
    assert not g.full_box and g.crop == (slice(0, 128), slice(0, 256), slice(0, 256))
    g = _edges.geometry("periodic", (97, 50), (7, 7))
    assert g.work_shape == (97, 50) and g.full_box
    g = _edges.geometry("reflect", (97, 50), (7, 7))
    assert all(_is_5_smooth(n) for n in g.work_shape)
    assert all(a >= 3 and b >= 3 for a, b in g.pad)
    img = np.arange(97 * 50, dtype=np.float32).reshape(97, 50)
    np.testing.assert_array_equal(g.data(img)[g.crop], img)


def test_hyper_split_pairs_volumes_with_channel_psfs():
    from fijidecon.deconvolve import _hyper
    img4 = np.zeros((2, 4, 8, 8), np.float32)
    lay, vols = _hyper.split(img4, np.ones((3, 3, 3)))
    assert len(vols) == 2 and lay.axes == "CZYX" and not lay.single
    lay, vols = _hyper.split(img4, [np.ones((3, 3, 3)), np.ones((1, 3, 3))])
    assert vols[1].psf.shape == (1, 3, 3)
    with pytest.raises(ValueError, match="dimensionality"):
        _hyper.split(np.zeros((8, 8, 8), np.float32), np.ones((3, 3)))
    with pytest.raises(ValueError, match="channel"):
        _hyper.split(img4, [np.ones((3, 3, 3))])
    with pytest.raises(ValueError, match="image"):
        _hyper.split(np.zeros(8, np.float32), np.ones(3))
    # ImageJ order (Z, C, Y, X): volumes are per channel, merged back in the same order
    zc = np.arange(4 * 2 * 3 * 5, dtype=np.float32).reshape(4, 2, 3, 5)
    lay, vols = _hyper.split(zc, np.ones((1, 1, 1)), "ZCYX")
    np.testing.assert_array_equal(vols[1].data, zc[:, 1])
    np.testing.assert_array_equal(lay.merge([v.data for v in vols]), zc)

def test_reuse_memory_nests_and_restores():
    with _fft.reuse_memory() as on:
        with _fft.reuse_memory() as on2:
            a = _fft.rfftn(np.ones((64, 64, 64), np.float32))
        assert on == on2
        assert _fft._MALLOC_DEPTH == (1 if on else 0)
    assert _fft._MALLOC_DEPTH == 0
    assert a.shape == (64, 64, 33)
