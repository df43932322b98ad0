"""PSF models (numpy/scipy only, no Java)."""

from .diffraction import Normalization, diffraction_psf_3d

__all__ = ["Normalization", "diffraction_psf_3d"]
