"""Deconvolution algorithms on one FFT core (numpy/scipy only, no Java)."""

from .iterative3d import IterativeResult, iterative_deconvolve_3d

__all__ = ["IterativeResult", "iterative_deconvolve_3d"]
