"""Descriptions of the two ported OptiNav commands, with the originals' dialog labels.

The labels are the originals' exactly (spec ``dougherty-plugins.md`` §2.1 and §3.1), so
the macro keys derived from them (``index``, ``numerical``, ``width,`` …, ``image``,
``point``, ``wiener`` …) are the keys recorded macros already use.  One field is added
at the end of each dialog: ``mode`` (Compatible / Improved), and Iterative Deconvolve 3D
has a second one after it, ``memory`` (the memory budget; Improved mode deconvolves a
volume over it in bricks, Compatible mode refuses it).  A macro written for the original
plugin contains neither and therefore gets the defaults, Compatible and ``auto``.
"""

from __future__ import annotations

from ._model import API, Command, Param
from .modern_deconv import MEMORY_LIMIT

MODE = Param(
    "compat",
    "Mode (fijidecon: Compatible reproduces the original exactly)",
    "choice",
    API,
    choices=(("Compatible", True), ("Improved", False)),
    flag="mode",
    help="Compatible reproduces the original plugin bit for bit; Improved is the accurate version.",
)

DIFFRACTION_PSF_3D = Command(
    id="diffraction-psf-3d",
    title="Diffraction PSF 3D",
    dialog_title="Specify psf",
    function="fijidecon.psf:diffraction_psf_3d",
    menu="Plugins>Deconvolution",
    extras={"cli": ("psf", "diffraction"), "spacing": ("slice_spacing", "pixel_spacing", "pixel_spacing"),
            "unit": "nm"},
    summary="Scalar diffraction PSF of a widefield microscope (port of OptiNav's Diffraction PSF 3D).",
    params=(
        Param("index", "Index of refraction of the media", "float", API, decimals=3, positive=True,
              help="Refractive index n of the immersion/sample medium."),
        Param("na", "Numerical Aperture, n*sin(theta)", "float", API, decimals=2, positive=True,
              help="Numerical aperture; must be smaller than the index."),
        Param("wavelength", "Wavelength (perhaps in nm)", "float", API, unit="L", decimals=1,
              help="Vacuum wavelength, in any length unit L (the same for every length)."),
        Param("spherical_aberration", "Longitudinal Spherical Aberration at max. aperture, same units", "float",
              API, unit="L", decimals=2,
              help="Axial focal shift of the marginal zone, same unit L; may be negative."),
        Param("pixel_spacing", "Image pixel spacing, same units (ccd cell spacing / magnification)", "float",
              API, unit="L", decimals=2, help="Lateral sampling, same unit L."),
        Param("slice_spacing", "Slice spacing (z), same units", "float", API, unit="L", decimals=2,
              help="Axial sampling, same unit L."),
        Param("width", "Width, pixels", "int", 256, unit="px", decimals=0, minimum=1, help="PSF width W."),
        Param("height", "Height, pixels", "int", 256, unit="px", decimals=0, minimum=1, help="PSF height H."),
        Param("depth", "Depth, slices", "int", 256, unit="slices", decimals=0, minimum=1, help="PSF depth D."),
        Param("normalization", "Normalization", "choice", API,
              choices=(("Peak = 1", "peak"), ("Peak = 255", "peak255"), ("Sum of pixel values = 1", "sum")),
              help="Sum of voxels = 1, peak = 1 or peak = 255."),
        Param("title", "Title", "string", "PSF", api=False, help="Title of the result window."),
        Param("db", "PSF in dB", "bool", API, help="Output 10*log10 of the PSF (floor -90 dB)."),
        MODE,
    ),
)

ITERATIVE_DECONVOLVE_3D = Command(
    id="iterative-deconvolve-3d",
    title="Iterative Deconvolve 3D",
    dialog_title="Deconvlove 3D (DAMAS3)",
    function="fijidecon.deconvolve:iterative_deconvolve_3d",
    menu="Plugins>Deconvolution",
    extras={"cli": ("deconvolve", "iterative3d"), "progress": "max_iterations"},
    summary="Wiener-preconditioned, positivity-clipped Landweber deconvolution "
    "(port of OptiNav's Iterative Deconvolve 3D).",
    params=(
        Param("image", "Image", "image", None, help="The blurred image (2D or 3D)."),
        Param("psf", "Point Spread Function (Kernel)", "image", None,
              help="The PSF, centred at index n div 2 on every axis."),
        Param("output", "Output title", "string", "Deconvolved", api=False,
              help="The result is named <title>_<iterations>."),
        Param("normalize", "Normalize PSF", "bool", API,
              help="Scale the result as if the PSF were divided by its sum (flux preserving)."),
        Param("db", "Data (image, psf and result) in dB", "bool", API,
              help="Inputs are 10*log10 values; the output is in dB."),
        Param("show", "Show iteration", "bool", True, api=False, help="Display only."),
        Param("log", "Log mean pixel value to track convergence", "bool", True, api=False,
              help="Print the per-iteration change figure to the Log window."),
        Param("anti_ringing", "Perform anti-ringing step", "bool", API,
              help="Blend the mirrored padding into its blurred copy."),
        Param("detect_divergence", "Detect divergence", "bool", API,
              help="Stop when the change figure increases."),
        Param("gamma", "Wiener filter gamma (suggest 0 [< .0001] to turn off, 0.0001-0.1 as tests)", "float",
              API, decimals=3, minimum=0.0, help="Wiener preconditioner regularization; <= 1e-4 turns it off."),
        Param("lowpass_xy", "Low pass filter x and y, pixels (suggest 1, 0 to turn off)", "float", API,
              unit="px", decimals=1, minimum=0.0, help="Gaussian low-pass in x and y."),
        Param("lowpass_z", "Z_direction low pass filter z, pixels (suggest 1, 0 to turn off).", "float", API,
              unit="slices", decimals=1, minimum=0.0, help="Gaussian low-pass in z."),
        Param("max_iterations", "Maximum number of iterations (suggest 100, 0 for filters only)", "int", API,
              decimals=0, minimum=0, help="Maximum number of iterations; 0 applies the filters only."),
        Param("terminate", "Terminate iteration if mean delta < x% (suggest 0.01, 0 to turn off)", "float",
              API, unit="%", decimals=3, help="Stopping threshold in percent (see the README for each mode)."),
        MODE,
        MEMORY_LIMIT,
    ),
)

COMMANDS = (DIFFRACTION_PSF_3D, ITERATIVE_DECONVOLVE_3D)
