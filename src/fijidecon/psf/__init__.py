"""PSF models (numpy/scipy only, no Java)."""

from .diffraction import Normalization, diffraction_psf_3d
from .idealized import gaussian, lorentzian
from .widefield import focal_shift, widefield
from .beads import BeadPSF, SaturationWarning, psf_from_beads

__all__ = [
    "Normalization",
    "diffraction_psf_3d",
    "gaussian",
    "lorentzian",
    "widefield",
    "focal_shift",
    "BeadPSF",
    "psf_from_beads",
    "SaturationWarning",
]
