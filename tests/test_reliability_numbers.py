"""Numbers that cannot go silently wrong (reliability cases 7 and 15).

* data or PSFs beyond float32's range in the FFTs are computed scaled and scaled back;
* every method checks its result is finite and raises ``NumericalError`` naming the cause;
* results are bit-identical with 1 or 2 FFT/element-wise worker threads.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from fijidecon.deconvolve import convolve, iterative_deconvolve_3d, richardson_lucy, wiener
from fijidecon.errors import FijideconError, NumericalError
from fijidecon.psf import diffraction_psf_3d, gaussian

PSF = gaussian((5, 9, 9), fwhm=(700, 250, 250), voxel_size=(200, 65, 65))


@pytest.mark.parametrize("level", [1e36, 1e25, 1e-36])
def test_extreme_values_come_back_scaled_not_nan(level):
    """Case 7: np.full((8, 8, 8), 1e36) gave all-NaN output from RL, convolve and Wiener."""
    img = np.full((8, 8, 8), level, np.float32)
    for out in (richardson_lucy(img, PSF, 3).image, convolve(img, PSF), wiener(img, PSF, 1e-3).image):
        assert np.isfinite(out).all()
        np.testing.assert_allclose(out, level, rtol=5e-3)  # Wiener rho=1e-3: 0.1 % at corners
    rng = np.random.default_rng(0)
    small = rng.random((8, 16, 16)).astype(np.float32) + 1
    ref = richardson_lucy(small, PSF, 5, background=0.5).image
    got = richardson_lucy(small * np.float32(level), PSF, 5, background=0.5 * level).image
    np.testing.assert_allclose(got / np.float32(level), ref, rtol=1e-4)


def test_iterative_deconvolve_beyond_float32_range():
    """Case 7: Iterative Deconvolve 3D from 1e35 data, and a PSF times 1e20 with the Wiener step."""
    psf = diffraction_psf_3d(width=16, height=16, depth=8, index=1.33, na=1.2, wavelength=520, pixel_spacing=100,
                             slice_spacing=250)
    img = np.random.default_rng(0).random((10, 24, 24)).astype(np.float32) + 1
    for compat in (True, False):
        ref = iterative_deconvolve_3d(img, psf, max_iterations=3, gamma=0.1, compat=compat).image
        big_psf = iterative_deconvolve_3d(img, psf * 1e20, max_iterations=3, gamma=0.1, compat=compat).image
        np.testing.assert_allclose(big_psf * 1e20, ref, rtol=1e-3, atol=1e-4 * ref.max())
        big_img = iterative_deconvolve_3d(img * 1e35, psf, max_iterations=3, compat=compat).image
        want = iterative_deconvolve_3d(img, psf, max_iterations=3, compat=compat).image
        np.testing.assert_allclose(big_img / 1e35, want, rtol=1e-3, atol=1e-4 * want.max())


def test_a_non_finite_result_raises_naming_the_cause():
    from fijidecon.deconvolve import _hyper

    with pytest.raises(NumericalError, match="^wiener: 1 of 4 result values are NaN or infinite; the likely cause"):
        _hyper.check_finite(np.array([1, 2, np.inf, 3], np.float32), "wiener")
    assert issubclass(NumericalError, ValueError) and issubclass(NumericalError, FijideconError)


_DETERMINISM = """
import sys, numpy as np
from fijidecon.deconvolve import richardson_lucy, convolve, wiener
from fijidecon.psf import gaussian
rng = np.random.default_rng(0)
psf = gaussian((11, 21, 21), (700, 250, 250), (200, 65, 65))
obj = np.zeros((24, 96, 96), np.float32)
obj[tuple(rng.integers(0, n, 150) for n in obj.shape)] = 1000
img = rng.poisson(convolve(obj, psf, edges="constant") + 5).astype(np.float32)
outs = [richardson_lucy(img, psf, 8, acceleration="biggs-andrews", background=5).image,
        richardson_lucy(img, psf, 4, regularization="tv", background=5).image,
        wiener(img, psf).image, convolve(img, psf)]
np.save(sys.argv[1], np.stack(outs))
"""


def test_results_are_bit_identical_with_one_or_two_threads(tmp_path):
    """Case 15: Biggs-Andrews RL differed by 1.6e-5 of the max between FIJIDECON_FFT_WORKERS=1 and 2."""
    outs = []
    for workers in ("1", "2"):
        path = tmp_path / f"w{workers}.npy"
        env = dict(os.environ, FIJIDECON_FFT_WORKERS=workers)
        subprocess.run([sys.executable, "-c", _DETERMINISM, str(path)], check=True, env=env, timeout=300)
        outs.append(np.load(path))
    np.testing.assert_array_equal(outs[0], outs[1])


_UNDER_LIMIT = """
import sys, numpy as np
from fijidecon.deconvolve import richardson_lucy
from fijidecon.psf import gaussian
img = np.random.default_rng(0).poisson(10, (64, 768, 768)).astype(np.float32)
psf = gaussian((11, 21, 21), (700, 250, 250), (200, 65, 65))
kw = {} if sys.argv[1] == "auto" else {"memory_limit": sys.argv[1]}
try:
    r = richardson_lucy(img, psf, 2, **kw)
    print("OK", " | ".join(n for n in r.notes if "bricked" in n))
except MemoryError as e:
    print("ERR", type(e).__name__, e)
"""


@pytest.mark.slow
def test_a_run_over_the_address_space_limit_is_bricked_or_refused_before_allocating():
    """Case 17: under `prlimit --as=1.5G` a run needing ~1.3 GB stopped with numpy's 'Unable to allocate';
    now the default budget (which reads RLIMIT_AS) bricks it, and an impossible budget is one line with the
    estimate, the budget and the remedy."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (1_500_000_000, 1_500_000_000))

    outs = [subprocess.run([sys.executable, "-c", _UNDER_LIMIT, arg], capture_output=True, text=True, timeout=600,
                           preexec_fn=limit) for arg in ("auto", "200MB")]
    assert outs[0].returncode == 0, outs[0].stderr[-500:]
    assert outs[0].stdout.startswith("OK richardson-lucy: bricked:"), outs[0].stdout
    assert outs[1].stdout.startswith("ERR ResourceError memory_limit: 190 MiB is too small for richardson-lucy on "
                                     "64x768x768: the input and output hold 288 MiB, and even the smallest brick ")
    assert re.search(r"give memory_limit of at least (29|30)\d MiB; or, from a file, use the CLI", outs[1].stdout)


def test_messages_say_what_was_wrong_not_a_consequence():
    """float64 data beyond float32 said 'contains NaN or infinite values'; a PSF path said
    'psf: 0D PSF (shape ())'; read_image(None) gave Python's bare 'expected str, bytes or os.PathLike'."""
    from fijidecon.deconvolve import richardson_lucy
    from fijidecon.io import read_image

    with pytest.raises(ValueError, match=r"^image: values up to 1e\+300 do not fit float32"):
        richardson_lucy(np.full((4, 8, 8), 1e300), np.ones((3, 3, 3)), 1)
    with pytest.raises(TypeError, match=r"^psf: expected an array, got the path 'psf.tif'"):
        richardson_lucy(np.ones((4, 8, 8)), "psf.tif", 1)
    with pytest.raises(TypeError, match=r"^path: expected a file path"):
        read_image(None)


@pytest.mark.parametrize("kw, name", [({"sample_index": 1e-300}, "sample_index"), ({"sample_index": 1e-9}, "sample_index"),
                                      ({"sample_index": 0.5}, "sample_index"), ({"immersion_index": 40.0},
                                                                                "immersion_index")])
def test_refractive_indices_outside_any_medium_are_refused(kw, name):
    """sample_index 1e-300 was an internal ZeroDivisionError; 1e-9 gave a flat PSF with a warning."""
    from fijidecon.psf import widefield

    with pytest.raises(ValueError, match=rf"^{name}: expected a refractive index from 1 \(air, vacuum\) to 3, got"):
        widefield((4, 16, 16), voxel_size_nm=100, na=0.9, wavelength_nm=500, **kw)


def test_an_infinite_bead_diameter_is_refused_by_name():
    """bead_diameter 1e308 overflowed (OverflowError: cannot convert float infinity to integer)."""
    import warnings

    from fijidecon.psf import psf_from_beads

    beads = np.random.default_rng(0).random((16, 32, 32)).astype(np.float32)
    beads[8, 16, 16] = 50
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ValueError, match=r"^bead_diameter: the bead"):
            psf_from_beads(beads, (0.2, 0.1, 0.1), bead_diameter=1e308)


def test_counts_and_regularizations_no_run_can_use_are_refused():
    """--iterations 2147483648 was taken (and ran past a 2-minute timeout); Wiener at 1e308 wrote an
    all-zero image with an overflow warning and 'negative fraction inf'."""
    from fijidecon.deconvolve import iterative_deconvolve_3d, richardson_lucy, wiener

    img = np.random.default_rng(0).poisson(20, (8, 16, 16)).astype(np.float32)
    psf = np.ones((3, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"^iterations: expected a whole number in \[0, 100000\], got 2147483648"):
        richardson_lucy(img, psf, 2**31)
    with pytest.raises(ValueError, match=r"^max_iterations: expected a whole number in \[0, 100000\]"):
        iterative_deconvolve_3d(img, psf, max_iterations=10**6)
    with pytest.raises(ValueError, match=r"^regularization: expected at most 10000 .* got 1e\+308"):
        wiener(img, psf, 1e308)
