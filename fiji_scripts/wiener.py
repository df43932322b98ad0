#@script (label="Wiener Deconvolution (script)", menuPath="Plugins>Deconvolution>Scripts>Wiener Deconvolution")
#@ ij.ImagePlus (label="Image", description="The image (2D, 3D, or 4D C-Z-Y-X); any pixel type, computed in float32.") image
#@ ij.ImagePlus (label="PSF (same voxel size as the image)", description="The PSF, centred near index n div 2; normalised to sum 1, cropped to its support and re-centred by its centroid.") psf
#@ String (label="Regularization (auto = Imspector 10% rule, gcv, or a number such as 1e-4)", description="auto: smallest value whose most negative result stays within 10% of the maximum; gcv: generalised cross-validation; or a number relative to |OTF(0)|^2 = 1.", value="auto", persist=false) regularization
#@ Double (label="Negative values allowed by auto (fraction of the maximum)", description="Tolerance of the automatic (Imspector) rule.", value=0.1, min=0.001, max=0.999, persist=false) negative_fraction
#@ String (label="Edges", description="Mirror padding (less ringing) or periodic (Imspector's behaviour).", choices={"Mirror", "Periodic"}, value="Mirror", persist=false) edges
#@ Boolean (label="Recenter PSF on its centroid", description="Move the PSF's centroid to its centre voxel (sub-voxel) so the result is not shifted.", value=true, persist=false) recenter
#@ String (label="Title of the result", description="Title of the result window.", value="Deconvolved", persist=false) title
#@output ij.ImagePlus result

"""Linear (Wiener) deconvolution; the regularization is chosen automatically and reported.

Generated from fijidecon.commands by `python -m fijidecon.fiji.scripts --write fiji_scripts`;
do not edit.  Needs a Fiji that runs Python 3 scripts with fijidecon installed.
"""

try:
    from fijidecon.fiji.scripts import run_script
except ImportError:
    raise ImportError("fijidecon is not importable: this script needs a Fiji that runs Python 3 "
                      "(pyimagej / scripting-python) with fijidecon installed; Jython cannot run it")

result = run_script('wiener', globals())
