#@script (label="Gaussian PSF (script)", menuPath="Plugins>Deconvolution>Scripts>Gaussian PSF")
#@ Double (label="Lateral FWHM (x, y)", description="Full width at half maximum in x and y, same length unit L as the spacings. Must be > 0.", value=250.0, persist=false) fwhm_xy
#@ Double (label="Axial FWHM (z)", description="Full width at half maximum in z (ignored for depth 1). Must be > 0.", value=700.0, persist=false) fwhm_z
#@ Double (label="Pixel spacing (x, y)", description="Lateral voxel size, unit L. Must be > 0.", value=65.0, persist=false) pixel_spacing
#@ Double (label="Slice spacing (z)", description="Axial voxel size, unit L. Must be > 0.", value=200.0, persist=false) slice_spacing
#@ Integer (label="Width, pixels", description="PSF width W.", value=64, min=1, persist=false) width
#@ Integer (label="Height, pixels", description="PSF height H.", value=64, min=1, persist=false) height
#@ Integer (label="Depth, slices", description="PSF depth D (1 gives a 2-D PSF).", value=32, min=1, persist=false) depth
#@ Integer (label="Oversampling per pixel (odd, 1 = point samples)", description="Sub-samples per voxel and axis averaged into each voxel.", value=1, min=1, persist=false) oversample
#@ String (label="Centre of the PSF", description="Peak at index n div 2 (what the deconvolution commands expect) or at (n-1)/2.", choices={"n/2 (FFT centre, like Diffraction PSF 3D)", "Middle (n-1)/2"}, value="n/2 (FFT centre, like Diffraction PSF 3D)", persist=false) centre
#@ String (label="Normalization", description="Sum of voxels = 1 (for deconvolution) or maximum = 1.", choices={"Sum of pixel values = 1", "Peak = 1"}, value="Sum of pixel values = 1", persist=false) normalize
#@ String (label="Title", description="Title of the result window.", value="PSF", persist=false) title
#@output ij.ImagePlus result

"""Idealized gaussian PSF 2^(-r²/(FWHM/2)²) of given FWHM (Imspector recipe).

Generated from fijidecon.commands by `python -m fijidecon.fiji.scripts --write fiji_scripts`;
do not edit.  Needs a Fiji that runs Python 3 scripts with fijidecon installed.
"""

try:
    from fijidecon.fiji.scripts import run_script
except ImportError:
    raise ImportError("fijidecon is not importable: this script needs a Fiji that runs Python 3 "
                      "(pyimagej / scripting-python) with fijidecon installed; Jython cannot run it")

result = run_script('gaussian-psf', globals())
