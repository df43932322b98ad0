#@script (label="Convolve (FFT) (script)", menuPath="Plugins>Deconvolution>Scripts>Convolve (FFT)")
#@ ij.ImagePlus (label="Image", description="The image: 2D, 3D or a hyperstack (T, C, Z, Y, X in any order: axes from the file or window); each (T, C) volume is deconvolved with its channel's PSF; computed in float32.") image
#@ ij.ImagePlus (label="Kernel (PSF or smoothing kernel, e.g. a Gaussian PSF)", description="The kernel, same dimensionality, normalised to sum 1.") psf
#@ String (label="Edges", description="How the image continues beyond its border.", choices={"Mirror", "Periodic", "Zero"}, value="Mirror", persist=false) edges
#@ Boolean (label="Recenter PSF on its centroid", description="Move the PSF's centroid to its centre voxel when it is off by more than half a voxel.", value=true, persist=false) recenter
#@ String (label="Title of the result", description="Title of the result window.", value="Convolved", persist=false) title
#@ String (label="Memory limit (auto, or a size such as 1GB, 512MiB; over it: bricks)", description="Memory budget of the run: auto = a safe fraction (70 %) of the memory available now (in ImageJ also what the Java heap needs for the result), or a size such as 1GB, 512MiB or a number of bytes. A volume whose memory estimate does not fit is deconvolved in bricks; when even one brick does not fit, the run stops with an error before computing.", value="auto", persist=false) memory_limit
#@output ij.ImagePlus result

"""Convolve an image with a PSF or smoothing kernel (Imspector's Linear ... convolve).

Generated from fijidecon.commands by `python -m fijidecon.fiji.scripts --write fiji_scripts`;
do not edit.  Needs a Fiji that runs Python 3 scripts with fijidecon installed.
"""

try:
    from fijidecon.fiji.scripts import run_script
except ImportError:
    raise ImportError("fijidecon is not importable: this script needs a Fiji that runs Python 3 "
                      "(pyimagej / scripting-python) with fijidecon installed; Jython cannot run it")

result = run_script('convolve', globals())
