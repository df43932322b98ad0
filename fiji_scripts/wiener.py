#@script (label="Wiener Deconvolution (script)", menuPath="Plugins>Deconvolution>Scripts>Wiener Deconvolution")
#@ ij.ImagePlus (label="Image", description="The image: 2D, 3D or a hyperstack (T, C, Z, Y, X in any order: axes from the file or window); each (T, C) volume is deconvolved with its channel's PSF; computed in float32.") image
#@ ij.ImagePlus (label="PSF", description="The PSF (Z, Y, X) or (Y, X), any size, centred at index n div 2 (moved only if off by more than half a voxel); one for every channel, or one per channel (a PSF hyperstack, or several files on the command line). Resampled to the image's voxel size when both are calibrated.") psf
#@ String (label="Regularization (auto, gcv, imspector, or a number such as 1e-4)", description="auto: wiener()'s default rule (the value chosen is printed and logged); imspector: smallest value whose most negative result stays within the negative fraction of the maximum; gcv: generalised cross-validation; or a number relative to |OTF(0)|^2 = 1.", value="auto", persist=false) regularization
#@ Double (label="Negative values allowed by the imspector rule (fraction of the maximum)", description="Tolerance of the Imspector rule.", value=0.1, min=0.001, max=0.999, persist=false) negative_fraction
#@ String (label="Edges", description="Mirror padding (less ringing) or periodic (Imspector's behaviour).", choices={"Mirror", "Periodic"}, value="Mirror", persist=false) edges
#@ Boolean (label="Recenter PSF on its centroid", description="Move the PSF's centroid to its centre voxel when it is off by more than half a voxel.", value=true, persist=false) recenter
#@ String (label="Title of the result", description="Title of the result window.", value="Deconvolved", persist=false) title
#@ String (label="Memory limit (auto, or a size such as 1GB, 512MiB; over it: bricks)", description="Memory budget of the run: auto = a safe fraction (70 %) of the memory available now (in ImageJ also what the Java heap needs for the result), or a size such as 1GB, 512MiB or a number of bytes. A volume whose memory estimate does not fit is deconvolved in bricks; when even one brick does not fit, the run stops with an error before computing.", value="auto", persist=false) memory_limit
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
