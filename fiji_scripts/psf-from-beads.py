#@script (label="PSF from Beads (script)", menuPath="Plugins>Deconvolution>Scripts>PSF from Beads")
#@ ij.ImagePlus (label="Beads image", description="Image (2D or 3D) of one or several beads.") image
#@ Double (label="Pixel size of the image (0 = from its calibration)", description="Lateral voxel size of the bead image (unit L); 0 = its calibration.", value=0.0, min=0.0, persist=false) pixel_size
#@ Double (label="Slice spacing of the image (0 = from its calibration)", description="Axial voxel size of the bead image (unit L); 0 = its calibration.", value=0.0, min=0.0, persist=false) slice_spacing
#@ Double (label="Target pixel size (0 = unchanged)", description="Resample the PSF to this lateral voxel size (that of the image to deconvolve).", value=0.0, min=0.0, persist=false) target_pixel_size
#@ Double (label="Z_target slice spacing (0 = unchanged)", description="Resample the PSF to this axial voxel size.", value=0.0, min=0.0, persist=false) target_slice_spacing
#@ Integer (label="Width, pixels (0 = automatic)", description="PSF width; 0 (with height and depth 0) = largest box around the brightest bead.", value=0, min=0, persist=false) width
#@ Integer (label="Height, pixels (0 = automatic)", description="PSF height.", value=0, min=0, persist=false) height
#@ Integer (label="Depth, slices (0 = automatic)", description="PSF depth.", value=0, min=0, persist=false) depth
#@ Double (label="Threshold (fraction of the brightest bead)", description="Keep local maxima of at least this fraction of the brightest one.", value=0.25, min=0.0, max=1.0, persist=false) threshold
#@ Integer (label="Maximum number of beads (0 = all)", description="Average at most this many (brightest) beads.", value=0, min=0, persist=false) max_beads
#@ Boolean (label="Reject saturated beads", description="Drop beads with saturated voxels when unsaturated ones exist (always warned).", value=false, persist=false) reject_saturated
#@ Boolean (label="Register beads (sub-pixel cross-correlation)", description="Refine bead positions by cross-correlation with the average.", value=true, persist=false) register
#@ Double (label="Diameter of the beads (0 = point-like)", description="Diameter of the beads (unit L); their size is removed from the average (10 Richardson-Lucy iterations with the bead as kernel). 0 = treat them as points.", value=0.0, min=0.0, persist=false) bead_diameter
#@ String (label="Normalization", description="Sum of voxels = 1 (for deconvolution) or maximum = 1.", choices={"Sum of pixel values = 1", "Peak = 1"}, value="Sum of pixel values = 1", persist=false) normalize
#@ String (label="Title", description="Title of the result window.", value="PSF", persist=false) title
#@output ij.ImagePlus result

"""Measure a PSF from an image of sub-resolution beads: detect, register, average, centre, resample.

Generated from fijidecon.commands by `python -m fijidecon.fiji.scripts --write fiji_scripts`;
do not edit.  Needs a Fiji that runs Python 3 scripts with fijidecon installed.
"""

try:
    from fijidecon.fiji.scripts import run_script
except ImportError:
    raise ImportError("fijidecon is not importable: this script needs a Fiji that runs Python 3 "
                      "(pyimagej / scripting-python) with fijidecon installed; Jython cannot run it")

result = run_script('psf-from-beads', globals())
