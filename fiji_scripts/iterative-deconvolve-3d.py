#@script (label="Iterative Deconvolve 3D (script)", menuPath="Plugins>Deconvolution>Scripts>Iterative Deconvolve 3D")
#@ ij.ImagePlus (label="Image", description="The blurred image (2D or 3D).") image
#@ ij.ImagePlus (label="Point Spread Function (Kernel)", description="The PSF, centred at index n div 2 on every axis.") psf
#@ String (label="Output title", description="The result is named <title>_<iterations>.", value="Deconvolved", persist=false) output
#@ Boolean (label="Normalize PSF", description="Scale the result as if the PSF were divided by its sum (flux preserving).", value=false, persist=false) normalize
#@ Boolean (label="Data (image, psf and result) in dB", description="Inputs are 10*log10 values; the output is in dB.", value=false, persist=false) db
#@ Boolean (label="Show iteration", description="Display only.", value=true, persist=false) show
#@ Boolean (label="Log mean pixel value to track convergence", description="Print the per-iteration change figure to the Log window.", value=true, persist=false) log
#@ Boolean (label="Perform anti-ringing step", description="Blend the mirrored padding into its blurred copy.", value=true, persist=false) anti_ringing
#@ Boolean (label="Detect divergence", description="Stop when the change figure increases.", value=true, persist=false) detect_divergence
#@ Double (label="Wiener filter gamma (suggest 0 [< .0001] to turn off, 0.0001-0.1 as tests)", description="Wiener preconditioner regularization; <= 1e-4 turns it off.", value=0.0, min=0.0, persist=false) gamma
#@ Double (label="Low pass filter x and y, pixels (suggest 1, 0 to turn off)", description="Gaussian low-pass in x and y.", value=1.0, min=0.0, persist=false) lowpass_xy
#@ Double (label="Z_direction low pass filter z, pixels (suggest 1, 0 to turn off).", description="Gaussian low-pass in z.", value=1.0, min=0.0, persist=false) lowpass_z
#@ Integer (label="Maximum number of iterations (suggest 100, 0 for filters only)", description="Maximum number of iterations; 0 applies the filters only.", value=100, min=0, persist=false) max_iterations
#@ Double (label="Terminate iteration if mean delta < x% (suggest 0.01, 0 to turn off)", description="Stopping threshold in percent (see the README for each mode).", value=0.01, persist=false) terminate
#@ String (label="Mode (fijidecon: Compatible reproduces the original exactly)", description="Compatible reproduces the original plugin bit for bit; Improved is the accurate version.", choices={"Compatible", "Improved"}, value="Compatible", persist=false) compat
#@ String (label="Memory limit (auto, or a size such as 1GB, 512MiB; over it: bricks)", description="Memory budget of the run: auto = a safe fraction (70 %) of the memory available now (in ImageJ also what the Java heap needs for the result), or a size such as 1GB, 512MiB or a number of bytes. A volume whose memory estimate does not fit is deconvolved in bricks; when even one brick does not fit, the run stops with an error before computing.", value="auto", persist=false) memory_limit
#@output ij.ImagePlus result

"""Wiener-preconditioned, positivity-clipped Landweber deconvolution (port of OptiNav's Iterative Deconvolve 3D).

Generated from fijidecon.commands by `python -m fijidecon.fiji.scripts --write fiji_scripts`;
do not edit.  Needs a Fiji that runs Python 3 scripts with fijidecon installed.
"""

try:
    from fijidecon.fiji.scripts import run_script
except ImportError:
    raise ImportError("fijidecon is not importable: this script needs a Fiji that runs Python 3 "
                      "(pyimagej / scripting-python) with fijidecon installed; Jython cannot run it")

result = run_script('iterative-deconvolve-3d', globals())
