#@script (label="Widefield PSF (script)", menuPath="Plugins>Deconvolution>Scripts>Widefield PSF")
#@ Double (label="Numerical aperture", description="Numerical aperture; must be smaller than the immersion index. Must be > 0.", value=1.4, persist=false) na
#@ Double (label="Wavelength (emission)", description="Emission wavelength in vacuum. Must be > 0.", value=520.0, persist=false) wavelength_nm
#@ Double (label="Immersion refractive index", description="Refractive index of the immersion medium (objective design medium). Must be > 0.", value=1.515, persist=false) immersion_index
#@ Double (label="Sample refractive index", description="Refractive index of the sample (= immersion index: no mismatch). Must be > 0.", value=1.515, persist=false) sample_index
#@ Double (label="Source depth below the coverslip", description="Depth of the emitter in the sample (matters only with an index mismatch).", value=0.0, min=0.0, persist=false) depth_nm
#@ Double (label="Pixel size (x, y)", description="Lateral voxel size in the sample. Must be > 0.", value=65.0, persist=false) pixel_size_nm
#@ Double (label="Slice spacing (z)", description="Axial step. Must be > 0.", value=200.0, persist=false) slice_spacing_nm
#@ Integer (label="Width, pixels", description="PSF width W.", value=64, min=1, persist=false) width
#@ Integer (label="Height, pixels", description="PSF height H.", value=64, min=1, persist=false) height
#@ Integer (label="Depth, slices", description="PSF depth D (1 gives a 2-D PSF).", value=32, min=1, persist=false) depth
#@ String (label="Pupil apodization", description="Richards-Wolf aplanatic pupil or the uniform pupil of the Gibson-Lanni scalar model.", choices={"Aplanatic (sqrt cos)", "Uniform (Gibson-Lanni)"}, value="Aplanatic (sqrt cos)", persist=false) apodization
#@ Integer (label="Oversampling per pixel (odd, 1 = point samples)", description="Lateral sub-samples per pixel and axis (camera pixel integration).", value=3, min=1, persist=false) oversample
#@ String (label="Axial origin (z = 0)", description="Which focal position lies at the centre plane when there is an index mismatch.", choices={"Nominal focus", "Paraxial focus", "Intensity peak"}, value="Nominal focus", persist=false) axial_origin
#@ String (label="Centre of the PSF", description="Peak at index n div 2 (what the deconvolution commands expect) or at (n-1)/2.", choices={"n/2 (FFT centre, like Diffraction PSF 3D)", "Middle (n-1)/2"}, value="n/2 (FFT centre, like Diffraction PSF 3D)", persist=false) centre
#@ String (label="Normalization", description="Sum of voxels = 1 (for deconvolution) or maximum = 1.", choices={"Sum of pixel values = 1", "Peak = 1"}, value="Sum of pixel values = 1", persist=false) normalize
#@ String (label="Title", description="Title of the result window.", value="PSF", persist=false) title
#@output ij.ImagePlus result

"""Scalar Richards-Wolf widefield PSF with refractive-index mismatch and pixel integration.

Generated from fijidecon.commands by `python -m fijidecon.fiji.scripts --write fiji_scripts`;
do not edit.  Needs a Fiji that runs Python 3 scripts with fijidecon installed.
"""

try:
    from fijidecon.fiji.scripts import run_script
except ImportError:
    raise ImportError("fijidecon is not importable: this script needs a Fiji that runs Python 3 "
                      "(pyimagej / scripting-python) with fijidecon installed; Jython cannot run it")

result = run_script('widefield-psf', globals())
