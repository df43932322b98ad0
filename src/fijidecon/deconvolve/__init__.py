"""Deconvolution algorithms on one FFT core (numpy/scipy only, no Java).

* :func:`iterative_deconvolve_3d` — the port of OptiNav's Iterative Deconvolve 3D
* :func:`convolve`, :func:`wiener`, :func:`richardson_lucy` — the modern engine
"""

from ._bricks import BrickFigures, CancelledError
from ._fft import use_pyfftw
from ._memory import available_memory, default_memory_limit, estimate_memory, parse_memory
from .convolve import convolve
from .iterative3d import IterativeResult, iterative_deconvolve_3d
from .richardson_lucy import IterationFigures, RichardsonLucyResult, richardson_lucy
from .wiener import WienerResult, wiener

__all__ = [
    "IterativeResult",
    "iterative_deconvolve_3d",
    "convolve",
    "wiener",
    "WienerResult",
    "richardson_lucy",
    "RichardsonLucyResult",
    "IterationFigures",
    "use_pyfftw",
    "BrickFigures",
    "CancelledError",
    "estimate_memory",
    "available_memory",
    "default_memory_limit",
    "parse_memory",
]
