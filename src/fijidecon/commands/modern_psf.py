"""Descriptions of the modern PSF commands: Gaussian, Lorentzian, Widefield, PSF from Beads.

Each label's first word (its macro key) is unique within its command.  Lengths of the
idealized PSFs are in any one unit (written as ``nm`` into the calibration by default,
``--unit`` on the CLI); the widefield model is in nm.  The core entry points are the
flat-argument wrappers of :mod:`fijidecon.psf._commands`.
"""

from __future__ import annotations

from ._model import API, Command, Param

_NORMALIZATION = Param(
    "normalize", "Normalization", "choice", API,
    choices=(("Sum of pixel values = 1", "sum"), ("Peak = 1", "peak")),
    help="Sum of voxels = 1 (for deconvolution) or maximum = 1.",
)
_CENTRE = Param(
    "centre", "Centre of the PSF", "choice", API,
    choices=(("n/2 (FFT centre, like Diffraction PSF 3D)", "fft"), ("Middle (n-1)/2", "middle")),
    help="Peak at index n div 2 (what the deconvolution commands expect) or at (n-1)/2.",
)
_TITLE = Param("title", "Title", "string", "PSF", api=False, help="Title of the result window.")


def _size_params(default_depth: int = 32) -> tuple[Param, ...]:
    return (
        Param("width", "Width, pixels", "int", API, unit="px", decimals=0, minimum=1, help="PSF width W."),
        Param("height", "Height, pixels", "int", API, unit="px", decimals=0, minimum=1, help="PSF height H."),
        Param("depth", "Depth, slices", "int", API, unit="slices", decimals=0, minimum=1,
              help="PSF depth D (1 gives a 2-D PSF)."),
    )


def _idealized(kind: str, formula: str) -> Command:
    return Command(
        id=f"{kind}-psf",
        title=f"{kind.capitalize()} PSF",
        dialog_title=f"{kind.capitalize()} PSF",
        function=f"fijidecon.psf._commands:{kind}_psf",
        menu="Plugins>Deconvolution",
        extras={"cli": ("psf", kind), "spacing": ("slice_spacing", "pixel_spacing", "pixel_spacing"), "unit": "nm"},
        summary=f"Idealized {kind} PSF {formula} of given FWHM (Imspector recipe).",
        params=(
            Param("fwhm_xy", "Lateral FWHM (x, y)", "float", API, unit="L", decimals=1, positive=True,
                  help="Full width at half maximum in x and y, same length unit L as the spacings."),
            Param("fwhm_z", "Axial FWHM (z)", "float", API, unit="L", decimals=1, positive=True,
                  help="Full width at half maximum in z (ignored for depth 1)."),
            Param("pixel_spacing", "Pixel spacing (x, y)", "float", API, unit="L", decimals=2, positive=True,
                  help="Lateral voxel size, unit L."),
            Param("slice_spacing", "Slice spacing (z)", "float", API, unit="L", decimals=2, positive=True,
                  help="Axial voxel size, unit L."),
            *_size_params(),
            Param("oversample", "Oversampling per pixel (odd, 1 = point samples)", "int", API, decimals=0, minimum=1,
                  help="Sub-samples per voxel and axis averaged into each voxel."),
            _CENTRE,
            _NORMALIZATION,
            _TITLE,
        ),
    )


GAUSSIAN_PSF = _idealized("gaussian", "2^(-r²/(FWHM/2)²)")
LORENTZIAN_PSF = _idealized("lorentzian", "1/(r²/(FWHM/2)²+1)")

WIDEFIELD_PSF = Command(
    id="widefield-psf",
    title="Widefield PSF",
    dialog_title="Widefield PSF (scalar, aplanatic, Gibson-Lanni mismatch)",
    function="fijidecon.psf._commands:widefield_psf",
    menu="Plugins>Deconvolution",
    extras={"cli": ("psf", "widefield"), "spacing": ("slice_spacing_nm", "pixel_size_nm", "pixel_size_nm"),
            "unit": "nm"},
    summary="Scalar Richards-Wolf widefield PSF with refractive-index mismatch and pixel integration.",
    params=(
        Param("na", "Numerical aperture", "float", API, decimals=3, positive=True,
              help="Numerical aperture; must be smaller than the immersion index."),
        Param("wavelength_nm", "Wavelength (emission)", "float", API, unit="nm", decimals=1, positive=True,
              help="Emission wavelength in vacuum."),
        Param("immersion_index", "Immersion refractive index", "float", API, decimals=3, positive=True,
              help="Refractive index of the immersion medium (objective design medium)."),
        Param("sample_index", "Sample refractive index", "float", API, decimals=3, positive=True,
              help="Refractive index of the sample (= immersion index: no mismatch)."),
        Param("depth_nm", "Source depth below the coverslip", "float", API, unit="nm", decimals=1, minimum=0.0,
              help="Depth of the emitter in the sample (matters only with an index mismatch)."),
        Param("pixel_size_nm", "Pixel size (x, y)", "float", API, unit="nm", decimals=2, positive=True,
              help="Lateral voxel size in the sample."),
        Param("slice_spacing_nm", "Slice spacing (z)", "float", API, unit="nm", decimals=2, positive=True,
              help="Axial step."),
        *_size_params(),
        Param("apodization", "Pupil apodization", "choice", API,
              choices=(("Aplanatic (sqrt cos)", "aplanatic"), ("Uniform (Gibson-Lanni)", "uniform")),
              help="Richards-Wolf aplanatic pupil or the uniform pupil of the Gibson-Lanni scalar model."),
        Param("oversample", "Oversampling per pixel (odd, 1 = point samples)", "int", API, decimals=0, minimum=1,
              help="Lateral sub-samples per pixel and axis (camera pixel integration)."),
        Param("axial_origin", "Axial origin (z = 0)", "choice", API,
              choices=(("Nominal focus", "nominal"), ("Paraxial focus", "paraxial"), ("Intensity peak", "peak")),
              help="Which focal position lies at the centre plane when there is an index mismatch."),
        _CENTRE,
        _NORMALIZATION,
        _TITLE,
    ),
)

PSF_FROM_BEADS = Command(
    id="psf-from-beads",
    title="PSF from Beads",
    dialog_title="PSF from Beads",
    function="fijidecon.psf._commands:beads_psf",
    menu="Plugins>Deconvolution",
    extras={"cli": ("psf", "beads")},
    summary="Measure a PSF from an image of sub-resolution beads: detect, register, average, centre, resample.",
    params=(
        Param("image", "Beads image", "image", None, help="Image (2D or 3D) of one or several beads."),
        Param("pixel_size", "Pixel size of the image (0 = from its calibration)", "float", API, unit="L",
              decimals=3, minimum=0.0, help="Lateral voxel size of the bead image (unit L); 0 = its calibration."),
        Param("slice_spacing", "Slice spacing of the image (0 = from its calibration)", "float", API, unit="L",
              decimals=3, minimum=0.0, help="Axial voxel size of the bead image (unit L); 0 = its calibration."),
        Param("target_pixel_size", "Target pixel size (0 = unchanged)", "float", API, unit="L", decimals=3,
              minimum=0.0, help="Resample the PSF to this lateral voxel size (that of the image to deconvolve)."),
        Param("target_slice_spacing", "Z_target slice spacing (0 = unchanged)", "float", API, unit="L",
              decimals=3, minimum=0.0, help="Resample the PSF to this axial voxel size."),
        Param("width", "Width, pixels (0 = automatic)", "int", API, unit="px", decimals=0, minimum=0,
              help="PSF width; 0 (with height and depth 0) = largest box around the brightest bead."),
        Param("height", "Height, pixels (0 = automatic)", "int", API, unit="px", decimals=0, minimum=0,
              help="PSF height."),
        Param("depth", "Depth, slices (0 = automatic)", "int", API, unit="slices", decimals=0, minimum=0,
              help="PSF depth."),
        Param("threshold", "Threshold (fraction of the brightest bead)", "float", API, decimals=2, minimum=0.0,
              maximum=1.0, help="Keep local maxima of at least this fraction of the brightest one."),
        Param("max_beads", "Maximum number of beads (0 = all)", "int", API, decimals=0, minimum=0,
              help="Average at most this many (brightest) beads."),
        Param("reject_saturated", "Reject saturated beads", "bool", API,
              help="Drop beads with saturated voxels when unsaturated ones exist (always warned)."),
        Param("register", "Register beads (sub-pixel cross-correlation)", "bool", API,
              help="Refine bead positions by cross-correlation with the average."),
        Param("bead_diameter", "Diameter of the beads (0 = point-like)", "float", API, unit="L", decimals=3, minimum=0.0,
              help="Diameter of the beads (unit L); their size is removed from the average (10 Richardson-Lucy "
                   "iterations with the bead as kernel). 0 = treat them as points."),
        _NORMALIZATION,
        _TITLE,
    ),
)

COMMANDS = (GAUSSIAN_PSF, LORENTZIAN_PSF, WIDEFIELD_PSF, PSF_FROM_BEADS)
