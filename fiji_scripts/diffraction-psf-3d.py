#@script (label="Diffraction PSF 3D (script)", menuPath="Plugins>Deconvolution>Scripts>Diffraction PSF 3D")
#@ Double (label="Index of refraction of the media", description="Refractive index n of the immersion/sample medium. Must be > 0.", value=1.0, persist=false) index
#@ Double (label="Numerical Aperture, n*sin(theta)", description="Numerical aperture; must be smaller than the index. Must be > 0.", value=0.6, persist=false) na
#@ Double (label="Wavelength (perhaps in nm)", description="Vacuum wavelength, in any length unit L (the same for every length).", value=510.0, persist=false) wavelength
#@ Double (label="Longitudinal Spherical Aberration at max. aperture, same units", description="Axial focal shift of the marginal zone, same unit L; may be negative.", value=0.0, persist=false) spherical_aberration
#@ Double (label="Image pixel spacing, same units (ccd cell spacing / magnification)", description="Lateral sampling, same unit L.", value=30.0, persist=false) pixel_spacing
#@ Double (label="Slice spacing (z), same units", description="Axial sampling, same unit L.", value=30.0, persist=false) slice_spacing
#@ Integer (label="Width, pixels", description="PSF width W.", value=256, min=1, persist=false) width
#@ Integer (label="Height, pixels", description="PSF height H.", value=256, min=1, persist=false) height
#@ Integer (label="Depth, slices", description="PSF depth D.", value=256, min=1, persist=false) depth
#@ String (label="Normalization", description="Sum of voxels = 1, peak = 1 or peak = 255.", choices={"Peak = 1", "Peak = 255", "Sum of pixel values = 1"}, value="Sum of pixel values = 1", persist=false) normalization
#@ String (label="Title", description="Title of the result window.", value="PSF", persist=false) title
#@ Boolean (label="PSF in dB", description="Output 10*log10 of the PSF (floor -90 dB).", value=false, persist=false) db
#@ String (label="Mode (fijidecon: Compatible reproduces the original exactly)", description="Compatible reproduces the original plugin bit for bit; Improved is the accurate version.", choices={"Compatible", "Improved"}, value="Compatible", persist=false) compat
#@output ij.ImagePlus result

"""Scalar diffraction PSF of a widefield microscope (port of OptiNav's Diffraction PSF 3D).

Generated from fijidecon.commands by `python -m fijidecon.fiji.scripts --write fiji_scripts`;
do not edit.  Needs a Fiji that runs Python 3 scripts with fijidecon installed.
"""

try:
    from fijidecon.fiji.scripts import run_script
except ImportError:
    raise ImportError("fijidecon is not importable: this script needs a Fiji that runs Python 3 "
                      "(pyimagej / scripting-python) with fijidecon installed; Jython cannot run it")

result = run_script('diffraction-psf-3d', globals())
