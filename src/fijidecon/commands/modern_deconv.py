"""Descriptions of the modern deconvolution commands: Convolve, Wiener, Richardson-Lucy.

Imspector's three "Analysis/Deconvolution" operations on one FFT core
(:mod:`fijidecon.deconvolve`).  Each label's first word (its macro key) is unique within
its command: ``image``, ``psf`` (``kernel`` for Convolve), ``edges``, ``iterations``,
``acceleration``, ``initial``, ``exponent``, ``regularization``, ``weight``, ``background``, ``read``, ``stop``,
``snapshot``, ``recenter``, ``negative``, ``title``, ``memory``.

The core functions of Wiener and Richardson-Lucy return result objects whose
``.image`` is the output array (both also convert with ``numpy.asarray``).

Every default is the core function's (``API``); Richardson-Lucy's ``weight`` and Wiener's
``regularization`` are ``None`` there (automatic), shown as ``auto`` in every face; so is ``memory_limit`` (``auto``: the default budget, see
:func:`fijidecon.deconvolve.default_memory_limit`).
"""

from __future__ import annotations

from fijidecon.deconvolve import _background
from fijidecon.deconvolve._memory import parse_memory
from fijidecon.deconvolve.richardson_lucy import DEFAULT_WEIGHT

from .. import _validate
from ._model import API, Command, Param

_IMAGE = Param("image", "Image", "image", None,
               help="The image: 2D, 3D or a hyperstack (T, C, Z, Y, X in any order: axes from the file or "
                    "window); each (T, C) volume is deconvolved with its channel's PSF; computed in float32.")
_PSF = Param("psf", "PSF", "image", None,
             help="The PSF (Z, Y, X) or (Y, X), any size, centred at index n div 2 (moved only if off by more "
                  "than half a voxel); one for every channel, or one per channel (a PSF hyperstack, or several "
                  "files on the command line). Resampled to the image's voxel size when both are calibrated.")
_RECENTER = Param("recenter", "Recenter PSF on its centroid", "bool", API,
                  help="Move the PSF's centroid to its centre voxel when it is off by more than half a voxel.")
_TITLE = Param("title", "Title of the result", "string", "Deconvolved", api=False, help="Title of the result window.")
#: The memory budget (every deconvolution command; the last field of each dialog).
MEMORY_LIMIT = Param(
    "memory_limit", "Memory limit (auto, or a size such as 1GB, 512MiB; over it: bricks)", "string", API,
    none="auto", check=parse_memory,
    help="Memory budget of the run: auto = a safe fraction (70 %) of the memory available now (in ImageJ also "
         "what the Java heap needs for the result), or a size such as 1GB, 512MiB or a number of bytes. A volume "
         "whose memory estimate does not fit is deconvolved in bricks; when even one brick does not fit, the run "
         "stops with an error before computing.")

_NAMES = {"tv": "TV", "tikhonov": "Tikhonov"}
_AUTO_WEIGHT = ", ".join(f"{_NAMES.get(k, k)} {v:g}" for k, v in DEFAULT_WEIGHT.items())

CONVOLVE = Command(
    id="convolve",
    title="Convolve (FFT)",
    dialog_title="Convolve",
    function="fijidecon.deconvolve:convolve",
    menu="Plugins>Deconvolution",
    summary="Convolve an image with a PSF or smoothing kernel (Imspector's Linear ... convolve).",
    params=(
        _IMAGE,
        Param("psf", "Kernel (PSF or smoothing kernel, e.g. a Gaussian PSF)", "image", None,
              help="The kernel, same dimensionality, normalised to sum 1."),
        Param("edges", "Edges", "choice", API,
              choices=(("Mirror", "reflect"), ("Periodic", "periodic"), ("Zero", "constant")),
              help="How the image continues beyond its border."),
        _RECENTER,
        Param("title", "Title of the result", "string", "Convolved", api=False, help="Title of the result window."),
        MEMORY_LIMIT,
    ),
)

WIENER = Command(
    id="wiener",
    title="Wiener Deconvolution",
    dialog_title="Wiener deconvolution",
    function="fijidecon.deconvolve:wiener",
    menu="Plugins>Deconvolution",
    summary="Linear (Wiener) deconvolution; the regularization is chosen automatically and reported.",
    params=(
        _IMAGE,
        _PSF,
        Param("regularization", "Regularization (auto, gcv, imspector, or a number such as 1e-4)",
              "string", API, none="auto",
              help="auto: wiener()'s default rule (the value chosen is printed and logged); imspector: smallest "
                   "value whose most negative result stays within the negative fraction of the maximum; gcv: "
                   "generalised cross-validation; or a number relative to |OTF(0)|^2 = 1."),
        Param("negative_fraction", "Negative values allowed by the imspector rule (fraction of the maximum)",
              "float", API, decimals=3, minimum=0.001, maximum=0.999,
              help="Tolerance of the Imspector rule."),
        Param("edges", "Edges", "choice", API, choices=(("Mirror", "reflect"), ("Periodic", "periodic")),
              help="Mirror padding (less ringing) or periodic (Imspector's behaviour)."),
        _RECENTER,
        _TITLE,
        MEMORY_LIMIT,
    ),
)

RICHARDSON_LUCY = Command(
    id="richardson-lucy",
    title="Richardson-Lucy Deconvolution",
    dialog_title="Richardson-Lucy deconvolution",
    function="fijidecon.deconvolve:richardson_lucy",
    menu="Plugins>Deconvolution",
    extras={"progress": "iterations"},
    summary="Richardson-Lucy with non-circulant edges, momentum (default) or Biggs-Andrews (1st or 2nd order) "
            "acceleration, a flat, image or "
            "Wiener initial estimate, an exponent on the correction (Meinel), "
            "unmatched (Wiener-Butterworth, OTF-masked Wiener) back projectors, TV or Tikhonov "
            "regularization, a Poisson discrepancy stopping rule and an automatic (cross-validated) iteration count.",
    params=(
        _IMAGE,
        _PSF,
        Param("iterations", "Iterations (maximum if a stop rule is set)", "int", API, decimals=0, minimum=0,
              help="Number of iterations (0: the initial estimate, with a warning); the maximum with a stop rule "
                   "(CLI: with --stop auto and no --iterations, 200). Imspector: normally not above 100."),
        Param("edges", "Edges", "choice", API,
              choices=(("Non-circulant (Bertero-Boccacci)", "non-circulant"), ("Periodic", "periodic"),
                       ("Mirror", "reflect")),
              help="Non-circulant: no ringing at borders (default); periodic: fastest; mirror (reflect): the image "
                   "mirrored at its borders."),
        Param("acceleration", "Acceleration", "choice", API,
              choices=(("None", None), ("Biggs-Andrews", "biggs-andrews"),
                       ("Momentum (scaled heavy-ball)", "momentum"),
                       ("Biggs-Andrews, 2nd order", "biggs-andrews-2")),
              help="Extrapolation: several times fewer iterations for the same result. Momentum keeps improving "
                   "for longer before fitting noise; Biggs-Andrews is best earlier; its 2nd order is fastest and "
                   "best, then over-fits soonest (use a stop rule)."),
        Param("initial", "Initial estimate", "choice", API,
              choices=(("Flat (the data's mean)", "flat"), ("The image", "image"),
                       ("Wiener estimate", "wiener")),
              help="Flat: the classical start. The image: keeps its detail from the first iteration, many fewer "
                   "iterations on data with little noise and a broad PSF, but it keeps the noise too. Wiener: "
                   "the linear Wiener estimate (rho 1e-2), a few iterations fewer with Biggs-Andrews 2nd order."),
        Param("exponent", "Exponent of the correction (1 = plain; 2.5 = fewer iterations on sparse samples)",
              "float", API, decimals=2, minimum=1.0, maximum=3.0,
              help="The multiplicative correction raised to this power (Meinel 1986), 1 to 3, at the plain "
                   "update's flux: with Biggs-Andrews 2nd order, 2.5 takes about 40 % fewer iterations on sparse "
                   "samples (beads, filaments); it falls back to 1 when the Poisson deviance rises by more than 1 % "
                   "or successive steps zig-zag (within a few iterations on dense samples). Not for bricked runs."),
        Param("back_projector", "Back projector", "choice", API,
              choices=(("Matched (plain Richardson-Lucy)", None), ("Wiener-Butterworth", "wiener-butterworth"),
                       ("OTF-masked Wiener", "otf-masked-wiener")),
              help="Unmatched back projectors do most of Richardson-Lucy's work in 2-5 iterations; they are not "
                   "maximum likelihood and over-iterating amplifies noise (it can diverge): use 2-5 iterations."),
        Param("bp_alpha", "Alpha of the back projector's Wiener filter (auto = 0.001 WB, 0.005 OTF-masked)", "string", API,
              none="auto", numeric=True, minimum=0.0,
              help="Wiener parameter of the back projector; larger is smoother."),
        Param("bp_beta", "Beta of the Wiener-Butterworth (gain at the cutoff)", "float", API, decimals=4, minimum=0.0,
              help="Wiener-Butterworth only, in (0, 1): larger passes more high frequencies (sharper, noisier)."),
        Param("bp_order", "Order of the Wiener-Butterworth filter", "int", API, decimals=0, minimum=1,
              help="Wiener-Butterworth only: order of the Butterworth filter."),
        Param("regularization", "Regularization", "choice", API,
              choices=(("None", None), ("Total variation", "tv"), ("Tikhonov (intensity)", "tikhonov")),
              help="Smooths the result; TV keeps edges."),
        Param("weight", "Weight of the regularization (auto = " + _AUTO_WEIGHT + ")", "string", API,
              none="auto", numeric=True, minimum=0.0,
              help="Regularization weight (dimensionless); auto = the default of the chosen regularization (" +
                   _AUTO_WEIGHT + ")."),
        Param("background", "Background (same units as the image; one per channel, or auto)", "string", API,
              parse=_background.parse,
              help="Constant background in the data (camera offset plus the sample's uniform level), added to the "
                   "model: one value, one per channel (e.g. 600,400), or auto (each volume's lowest local mean)."),
        Param("read_noise", "Read noise (standard deviation, same units)", "float", API, decimals=2, minimum=0.0,
              help="Gaussian camera read noise; allows negative pixel values."),
        Param("stop", "Stop rule", "choice", API,
              choices=(("None (run all iterations)", None),
                       ("Discrepancy principle (data in photons)", "discrepancy"),
                       ("Automatic (cross-validation on thinned photons)", "auto")),
              help="Discrepancy: stop when the Poisson deviance reaches its expected value (needs data in "
                   "photo-electrons: offset subtracted, divided by the gain). Automatic: the count is chosen "
                   "by splitting the photons in two (binomial thinning) and scoring RL on one half with the "
                   "other; the iterations are the maximum."),
        Param("gain", "Gain of the camera (e-/ADU, auto = from the noise; stop auto)", "string", API, none="auto",
              numeric=True, check=lambda v: _validate.check_float("gain", v, positive=True),
              help="With stop auto: photo-electrons per image unit; auto = estimated from the image's noise."),
        Param("offset", "Offset of the camera (ADU, auto = from the noise; stop auto)", "string", API, none="auto",
              numeric=True,
              help="With stop auto: the camera offset in the image; auto = estimated from the image's noise."),
        Param("snapshot_every", "Snapshot every N iterations (0 = off)", "int", 0, decimals=0, minimum=0,
              help="Keep intermediate results every N iterations (CLI: files NAME_iterK beside the output; ImageJ: "
                   "windows TITLE_iterK; "
                   "Imspector: save every 10 and choose)."),
        _RECENTER,
        _TITLE,
        MEMORY_LIMIT,
    ),
)

COMMANDS = (CONVOLVE, WIENER, RICHARDSON_LUCY)
