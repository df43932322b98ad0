"""What a notebook user is told: faults a fresh user found on the real files (2026-12-02).

A file name where an array belongs, a PSF made mostly negative by an over-subtracted
background, Iterative Deconvolve 3D stopped by its divergence test, ``stop="auto"`` with
almost nothing to choose from, Wiener's most negative value named as such, and no
third-party deprecation warning on an OME-Zarr write."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pytest

from fijidecon.deconvolve import convolve, iterative_deconvolve_3d, richardson_lucy, wiener
from fijidecon.errors import InputTypeError

DAPI = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "deconwolf_demo" / "dapi_001.tif"


def _gauss(shape=(9, 15, 15), sigma=(1.5, 2.0, 2.0)):
    g = np.indices(shape, dtype=float)
    p = np.exp(-0.5 * sum(((gi - n // 2) / s) ** 2 for gi, n, s in zip(g, shape, sigma)))
    return (p / p.sum()).astype(np.float32)


@pytest.mark.parametrize("call, name", [
    (lambda: richardson_lucy("img.tif", _gauss(), 2), "image"),
    (lambda: richardson_lucy(np.ones((8, 16, 16), np.float32), Path("psf.tif"), 2), "psf"),
    (lambda: wiener("img.tif", _gauss()), "image"),
    (lambda: convolve(np.ones((8, 16, 16), np.float32), "psf.tif"), "psf"),
    (lambda: iterative_deconvolve_3d("img.tif", _gauss()), "image"),
    (lambda: iterative_deconvolve_3d(np.ones((8, 16, 16), np.float32), Path("psf.tif")), "psf"),
])
def test_a_file_name_instead_of_an_array_says_read_it_first(call, name):
    """richardson_lucy("img.tif", ...) said 'expected a 2D (Y, X) to 5D ... array, got shape ()'."""
    with pytest.raises(InputTypeError, match=rf"^{name}: expected an array, got the path '(img|psf)\.tif'; read the "
                                             r"file first \(fijidecon\.io\.read_image\)$"):
        call()


def test_a_mostly_negative_psf_is_warned_about_not_only_noted():
    """A PSF with too much background subtracted was cut to a 3x1x1 core with only a note
    ('negative values (down to 1 of the maximum) set to 0')."""
    rng = np.random.default_rng(0)
    img = np.zeros((12, 32, 32), np.float32)
    img[6, 10:20, 12:22] = 400
    img = rng.poisson(convolve(img, _gauss()) + 1).astype(np.float32)
    psf = _gauss()
    with pytest.warns(RuntimeWarning, match=r"^psf: its negative values sum to \S+ times its positive ones and are "
                                            r"set to 0, which leaves only its brightest core"):
        res = richardson_lucy(img, psf - psf.max() / 2, 2)
    assert any("negative values (down to -1 x the maximum" in n for n in res.notes), res.notes
    # a PSF with a little negative ringing (a measured PSF after background subtraction) is only noted
    mild = psf.copy()
    mild[0, 0, :4] = -0.01 * psf.max()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        res = richardson_lucy(img, mild, 2)
    assert any("negative values (down to -0.01 x the maximum; their sum 0 % of the positive ones)" in n
               for n in res.notes), res.notes


@pytest.mark.skipif(not DAPI.is_file(), reason="the real DAPI file is not there")
def test_iterative_deconvolve_3d_says_when_its_divergence_test_stopped_it(caplog):
    """On a DAPI crop with a widefield PSF the improved mode stopped at 8 of 10 ('diverged')
    with neither a warning nor a note."""
    import tifffile

    from fijidecon.psf import widefield

    img = tifffile.imread(DAPI)[:, 40:168]
    psf = widefield((31, 63, 63), voxel_size_nm=(200, 130, 130), na=1.4, wavelength_nm=460, immersion_index=1.515)
    with caplog.at_level(logging.INFO, logger="fijidecon"), pytest.warns(
            RuntimeWarning, match=r"^iterative-deconvolve-3d: stopped after 8 of 10 iterations: the change figure "
                                  r"rose \(3\.099 % -> 3\.106 %; detect_divergence\); the estimate before that "
                                  r"step is returned"):
        res = iterative_deconvolve_3d(img, psf, max_iterations=10, compat=False)
    assert res.stop_reason == "diverged" and res.iterations == 8
    assert res.notes == ["iterative-deconvolve-3d: stopped after 8 of 10 iterations: the change figure rose "
                         "(3.099 % -> 3.106 %; detect_divergence); the estimate before that step is returned"]
    assert res.notes[0] in caplog.text
    # a hyperstack names the volume(s); without the test it runs on, without a word
    with pytest.warns(RuntimeWarning, match=r"^iterative-deconvolve-3d: volume\(s\) 0, 1: stopped after 8, 8 of 10"):
        two = iterative_deconvolve_3d(np.stack([img, img], 1), psf, axes="ZCYX", max_iterations=10, compat=False)
    assert two.notes[-1].startswith("iterative-deconvolve-3d: volume(s) 0, 1: stopped after 8, 8 of 10")
    with pytest.warns(RuntimeWarning, match=r"^iterative-deconvolve-3d: volume\(s\) 0: stopped after 8 of 10 "
                                            r"iterations: the change figure rose \(3\.099 % -> 3\.106 %"):
        iterative_deconvolve_3d(img[:, None], psf, axes="ZCYX", max_iterations=10, compat=False)  # one channel
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        free = iterative_deconvolve_3d(img, psf, max_iterations=10, compat=False, detect_divergence=False)
    assert free.iterations == 10 and free.notes == []


def test_stop_auto_with_a_tiny_maximum_warns():
    """richardson_lucy(img, psf, 2, stop='auto') chose 1 of 2 without a word about the maximum."""
    rng = np.random.default_rng(1)
    img = rng.poisson(80, (8, 32, 32)).astype(np.float32)
    with pytest.warns(UserWarning, match=r"^iterations: stop='auto' chooses at most iterations=2, which leaves "
                                         r"little to choose from .* e\.g\. 200$"):
        richardson_lucy(img, _gauss(), 2, stop="auto", gain=1.0, offset=0.0)


def test_wiener_names_its_most_negative_value_not_a_share_of_voxels(caplog):
    """The log said 'negative fraction 1.272' (-min/max), read as a share of negative voxels."""
    rng = np.random.default_rng(2)
    img = rng.poisson(30, (12, 32, 32)).astype(np.float32)
    with caplog.at_level(logging.INFO, logger="fijidecon"):
        res = wiener(img, _gauss(), 1e-4)
    line = [r.getMessage() for r in caplog.records if "regularization" in r.getMessage()][-1]
    assert f"most negative value {-res.negative_fraction:.3g} x the maximum (negative_fraction)" in line
    assert "negative fraction" not in line
    assert res.negative_fraction == pytest.approx(-float(res.image.min()) / float(res.image.max()), rel=1e-5)
    # a result without negative values said 'most negative value 0.17 x the maximum' (a fresh user, a 2D plane)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fijidecon"):
        res = wiener(img + 2000, _gauss(), 1.0)
    line = [r.getMessage() for r in caplog.records if "regularization" in r.getMessage()][-1]
    assert float(res.image.min()) > 0 and "most negative" not in line
    assert f"no negative values (the lowest is {float(res.image.min()) / float(res.image.max()):.3g} x the " \
           "maximum)" in line
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fijidecon"):  # an all-zero image said 'most negative value -inf'
        wiener(np.zeros_like(img), _gauss(), 1e-3)
    line = [r.getMessage() for r in caplog.records if "regularization" in r.getMessage()][-1]
    assert "no positive values (the result's maximum is 0 or below)" in line and "inf" not in line


def test_an_ome_zarr_write_shows_no_third_party_deprecation_warning(tmp_path):
    """ome-zarr 0.14+ warned 'Call to deprecated class Scaler' on every write (its own default argument)."""
    pytest.importorskip("ome_zarr")
    import subprocess
    import sys

    code = ("import numpy as np; from fijidecon.io import write_image; "
            f"write_image({str(tmp_path / 'x.ome.zarr')!r}, np.ones((4, 8, 8), np.float32))")
    p = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "Scaler" not in p.stderr and "DeprecationWarning" not in p.stderr, p.stderr


@pytest.mark.skipif(not DAPI.is_file(), reason="the real DAPI file is not there")
def test_an_image_given_as_the_psf_is_named():
    """Image and a same-size PSF swapped (the README's `psf --like` recipe makes them the same size)
    ran without a word but a re-centring note."""
    import tifffile

    from fijidecon.psf import diffraction_psf_3d

    img = tifffile.imread(DAPI).astype(np.float32)
    psf = diffraction_psf_3d(index=1.512, na=1.45, wavelength=461, pixel_spacing=130, slice_spacing=300,
                             width=101, height=201, depth=40)
    # the check is in the PSF's preparation, which every method shares: convolution is the cheapest to run
    with pytest.warns(RuntimeWarning, match=r"^psf: its peak is only 3\.2x its mean, .* is it an image, given as "
                                            r"the PSF \(arguments swapped\)\?"):
        convolve(psf * 1e4, img)
    with warnings.catch_warnings():  # the right order, and RedLionfish's broad 8-bit PSF (14x): no word about it
        warnings.simplefilter("error")
        convolve(img, psf)
        rfi = DAPI.parents[1] / "redlionfish_rfi_psf" / "PSF_RFI_8bit.tif"
        wiener(np.ones((64, 64, 64), np.float32), tifffile.imread(rfi), 0.01)


@pytest.mark.skipif(not DAPI.is_file(), reason="the real DAPI file is not there")
def test_a_lazy_wiener_run_names_the_rule_the_in_memory_run_names():
    """A lazy (Dask / OME-Zarr) Wiener run said 'rule snr' where the in-memory run said 'snr->fwhm',
    for the same regularization and an identical result."""
    da = pytest.importorskip("dask.array")
    import tifffile

    from fijidecon.psf import diffraction_psf_3d

    img = tifffile.imread(DAPI).astype(np.float32)
    psf = diffraction_psf_3d(width=31, height=31, depth=15, index=1.33, na=1.2, wavelength=520, pixel_spacing=130,
                             slice_spacing=300)
    whole = wiener(img, psf)
    lazy = wiener(da.from_array(img, chunks=img.shape), psf)
    assert whole.rule == "snr->fwhm" and lazy.rule == whole.rule
    assert lazy.regularization == pytest.approx(whole.regularization, rel=1e-6)


def _bad_inputs():
    img = np.random.default_rng(0).random((12, 32, 32), dtype=np.float32) + 1
    nan = img.copy()
    nan[3, 4, 5] = np.nan
    psf = _gauss()
    return [
        (lambda: richardson_lucy(nan, psf, 2), "image"),
        (lambda: wiener(nan, psf), "image"),
        (lambda: convolve(nan, psf), "image"),
        (lambda: richardson_lucy(img - 5, psf, 2), "image"),
        (lambda: richardson_lucy(img, psf[4], 2), "psf"),
        (lambda: richardson_lucy(img, psf, 2, axes="XYZ"), "axes"),
        (lambda: wiener(img, np.zeros_like(psf)), "psf"),
        (lambda: richardson_lucy(img, psf, 2, background=1e6), "background"),
        (lambda: wiener(img, psf, "abc"), "regularization"),
    ]


@pytest.mark.parametrize("case", range(9))
def test_every_input_fault_is_the_package_s_own_error_type(case):
    """README: 'the API raises the package's own types'; a fresh user's `except FijideconError`
    missed NaN data, negative data, a 2D PSF for 3D data, axes='XYZ', an all-zero PSF, a background
    above the data and regularization='abc' (plain ValueError)."""
    from fijidecon.errors import FijideconError

    call, name = _bad_inputs()[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(FijideconError, match=rf"^{name}: "):
            call()


def test_warnings_point_at_the_user_s_line(tmp_path):
    """Warnings pointed inside the package (_hyper.py:315, _autostop.py:717, io.py:754) or one frame
    too high ('sys:1' at a script's top level): each now names the line that called the package."""
    from fijidecon.io import write_image

    img = np.random.default_rng(0).poisson(2000, (12, 32, 32)).astype(np.float32)
    psf = np.ones((3, 5, 5), np.float32)

    def helper():
        return richardson_lucy(img, psf, 2)  # the user's own function: its line

    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        richardson_lucy(img, psf, 2, psf_voxel_size=(1, 1, 1)); line = _line()  # noqa: E702
        helper()
        write_image(tmp_path / "a.tif", img.astype(np.float64)); line3 = _line()  # noqa: E702
    places = {(Path(w.filename).name, w.lineno, str(w.message)[:20]) for w in got}
    here = Path(__file__).name
    assert {p[:2] for p in places} == {(here, line), (here, helper.__code__.co_firstlineno + 1), (here, line3)}, places
    assert len(places) == 4  # the offset warning twice, psf_voxel_size, float64


def test_a_warning_said_as_a_context_ends_points_at_the_user_s_line():
    """stop='auto''s photo-electron warning, held and said as the run's warnings context ended, pointed at
    contextlib.py:144 (a fresh user, 2026-12-03); it names the caller's line."""
    from fijidecon.deconvolve import convolve
    from fijidecon.psf import gaussian

    obj = np.zeros((24, 64, 64), np.float32)
    obj[8:16, 20:44, 20:44] = 200
    psf = gaussian((7, 11, 11), (1.5, 2.0, 2.0))
    blurred = np.clip(convolve(obj, psf), 0, None) + 20
    img = (np.random.default_rng(0).poisson(blurred) * 5.0 + 100).astype(np.float32)  # gain 0.2 e-/ADU
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        richardson_lucy(img, psf, 20, stop="auto", background=200); line = _line()  # noqa: E702
    said = [(Path(w.filename).name, w.lineno) for w in got if "photo-electrons" in str(w.message)]
    assert said == [(Path(__file__).name, line)], [(w.filename, w.lineno, str(w.message)[:60]) for w in got]


def _line() -> int:
    import sys

    return sys._getframe(1).f_lineno


def test_iterative3d_warns_about_a_psf_on_a_camera_offset():
    """A raw bead PSF on a camera offset of 2000: RL and Wiener remove it with a note; Iterative
    Deconvolve 3D used it as given without a word (result max 5.6e4 against 3.7e4 with the clean PSF).
    It still uses it as given (the original's numbers), and now warns, in both modes; a clean PSF
    does not."""
    from fijidecon.psf import widefield

    p = widefield((31, 63, 63), voxel_size_nm=(250, 100, 100), na=1.2, wavelength_nm=520, immersion_index=1.33)
    raw = np.random.default_rng(0).poisson(p / p.max() * 3000 + 2000).astype(np.float32)
    img = np.random.default_rng(1).random((16, 48, 48), dtype=np.float32) + 1
    for compat in (False, True):
        with pytest.warns(RuntimeWarning, match=r"^psf: it sits on a flat level of about 2\d\d\d \(the median of its "
                                                r"border voxels, 39.6 % of its peak; over its 123039 voxels that level "
                                                r"is 100 % of its sum: a camera offset\?\); Iterative "):
            iterative_deconvolve_3d(img, raw, compat=compat, max_iterations=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        iterative_deconvolve_3d(img, p, compat=False, max_iterations=1)
    # a real raw bead: its border at 2.8 % of its peak, but that level is 99 % of its sum (a verifier: no word)
    gfp = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "boulanger_bead_psf" / "psf-gfp.tif"
    if gfp.exists():
        import tifffile

        bead = tifffile.imread(gfp).astype(np.float32)
        with pytest.warns(RuntimeWarning, match=r"^psf: it sits on a flat level of about 11\d \(the median of its "
                                                r"border voxels, 2.8 % of its peak; over its 2000000 voxels that level "
                                                r"is 99 % of its sum"):
            iterative_deconvolve_3d(bead[:, 80:180, 70:170], bead, compat=False, max_iterations=1)
        crop = bead[5:26, 103:144, 97:138]  # the README's 21x41x41 box around the bead: 73 % of its sum
        with pytest.warns(RuntimeWarning, match=r"^psf: it sits on a flat level of about 1\d\d .* that level is 7\d % "):
            iterative_deconvolve_3d(bead[:, 80:180, 70:170], crop, compat=False, max_iterations=1)


@pytest.mark.parametrize("kw, psf_value", [(dict(recenter="False"), 1.0), (dict(voxel_size=0.13), 1.0), ({}, 0.0)])
def test_a_bad_parameter_is_refused_before_any_warning_about_the_data(kw, psf_value):
    """recenter='False', voxel_size=0.13 or an all-zero PSF came after a 'background: 0, but ...'
    warning about the data: the error is now the only thing said."""
    img = np.random.default_rng(0).poisson(2000, (8, 32, 32)).astype(np.float32)
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        with pytest.raises((ValueError, TypeError)):
            richardson_lucy(img, np.full((3, 5, 5), psf_value), 2, **kw)
    assert not got, [str(w.message) for w in got]


@pytest.mark.skipif(not DAPI.exists(), reason="needs shared/data/real")
def test_swapped_image_and_psf_are_refused_by_every_method():
    """A verifier's swaps that still ran: a 32x64x64 PSF given as the image with dapi_001 as the 'PSF'
    (only 16 % of its flux cropped, under the warning's 50 %) ran RL, Wiener and convolve; Iterative
    Deconvolve 3D ran every swap without a word; it also took axes='XYZ' as ZYX."""
    import tifffile

    from fijidecon.errors import InputError
    from fijidecon.psf import widefield

    img = tifffile.imread(DAPI).astype(np.float32)
    psf = widefield((32, 64, 64), voxel_size_nm=(250, 130, 130), na=1.4, wavelength_nm=461, immersion_index=1.515)
    swapped = r"^psf: \(40, 201, 101\) is bigger than the image \(32, 64, 64\) on every axis and its peak is only "
    for call in (lambda: richardson_lucy(psf, img, 2), lambda: wiener(psf, img), lambda: convolve(psf, img),
                 lambda: iterative_deconvolve_3d(psf, img, max_iterations=2),
                 lambda: iterative_deconvolve_3d(psf, img, compat=False, max_iterations=2)):
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            with pytest.raises(InputError, match=swapped):
                call()
        # the refusal alone: its 'peak only 3.2x its mean ... (arguments swapped)?' warning came first (a batch
        # user read two lines for one bad input)
        assert not [str(w.message) for w in got if "its peak is only" in str(w.message)]
    with pytest.raises(InputError, match=r"^axes: the spatial axes of 'XYZ' are in XYZ order"):
        iterative_deconvolve_3d(img, psf, axes="XYZ", max_iterations=1)
    # a sparse image (RedLionfish's 160³, peak 57x its mean) given as the PSF of its own 61x32x32 PSF ran every method
    rfi = DAPI.parents[1] / "redlionfish_rfi_psf"
    data = tifffile.imread(rfi / "gendata_psfconv_poiss.tif").astype(np.float32)
    small = tifffile.imread(rfi / "PSF_RFI_8bit.tif").astype(np.float32)
    for call in (lambda: richardson_lucy(small, data, 1), lambda: wiener(small, data),
                 lambda: iterative_deconvolve_3d(small, data, compat=False, max_iterations=1)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(InputError, match=r"^psf: \(160, 160, 160\) is at least 2x the image \(61, 32, 32\) on "
                                                 r"every axis.*the image and the PSF look swapped"):
                call()


def test_compat_memory_refusal_names_a_budget_that_runs():
    """'needs about 238 MiB, over the budget of 238 MiB' (238 MiB refused, 239 ran): the need is
    rounded up, the budget down, and the budget named runs; one MiB less does not."""
    import re

    img = np.random.default_rng(0).random((40, 200, 100), dtype=np.float32) + 1
    psf = _gauss((15, 31, 31), (2.0, 3.0, 3.0))
    with pytest.raises(MemoryError, match=r"^memory_limit: compat mode .* needs (\d+) MiB, over the budget of "
                                          r"47\.6 MiB; use compat=False \(processed in bricks\) or give "
                                          r"memory_limit of at least \1 MiB$") as e:
        iterative_deconvolve_3d(img, psf, memory_limit="50MB")
    least = int(re.search(r"at least (\d+) MiB", str(e.value)).group(1))
    assert iterative_deconvolve_3d(img, psf, max_iterations=1, memory_limit=f"{least}MiB").image.shape == img.shape
    with pytest.raises(MemoryError):
        iterative_deconvolve_3d(img, psf, max_iterations=1, memory_limit=f"{least - 1}MiB")


@pytest.mark.parametrize("call, want", [
    (lambda: richardson_lucy(np.ones((8, 16, 16), np.float32), _gauss(), 2, start="prev"),
     r"^start: expected a previous result or an array of the image's shape \(8, 16, 16\), got 'prev' \(str\)"),
    (lambda: iterative_deconvolve_3d(np.zeros((0, 24, 24), np.float32), _gauss()),
     r"^image: empty array of shape \(0, 24, 24\)$"),
    (lambda: richardson_lucy(np.ones((8, 16, 16), np.float32), _gauss(), 2, bp_beta=0.2),
     r"^bp_beta: only used with back_projector='wiener-butterworth'$"),
])
def test_messages_name_the_parameter_given(call, want):
    """A fresh notebook user: start='prev' said 'start: shape () differs'; an empty image for Iterative
    Deconvolve 3D was named 'image_shape' (the memory estimate's); bp_beta alone named 'bp_beta, bp_order'."""
    with pytest.raises((ValueError, TypeError), match=want):
        call()
