"""fijidecon: microscopy PSF generation and deconvolution in Python.

The numerical core lives in :mod:`fijidecon.psf` and :mod:`fijidecon.deconvolve`
(numpy/scipy only).  :mod:`fijidecon.io` reads and writes TIFF with calibration,
:mod:`fijidecon.commands` describes every user-facing command once, and
:mod:`fijidecon.fiji` (optional, needs a JVM) puts those commands into ImageJ.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
