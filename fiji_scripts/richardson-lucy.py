#@script (label="Richardson-Lucy Deconvolution (script)", menuPath="Plugins>Deconvolution>Scripts>Richardson-Lucy Deconvolution")
#@ ij.ImagePlus (label="Image", description="The image: 2D, 3D or a hyperstack (T, C, Z, Y, X in any order: axes from the file or window); each (T, C) volume is deconvolved with its channel's PSF; computed in float32.") image
#@ ij.ImagePlus (label="PSF", description="The PSF (Z, Y, X) or (Y, X), any size, centred at index n div 2 (moved only if off by more than half a voxel); one for every channel, or one per channel (a PSF hyperstack, or several files on the command line). Resampled to the image's voxel size when both are calibrated.") psf
#@ Integer (label="Iterations (maximum if a stop rule is set)", description="Number of iterations (0: the initial estimate, with a warning); the maximum with a stop rule (CLI: with --stop auto and no --iterations, 200). Imspector: normally not above 100.", value=30, min=0, persist=false) iterations
#@ String (label="Edges", description="Non-circulant: no ringing at borders (default); periodic: fastest; mirror: padding.", choices={"Non-circulant (Bertero-Boccacci)", "Periodic", "Mirror"}, value="Non-circulant (Bertero-Boccacci)", persist=false) edges
#@ String (label="Acceleration", description="Extrapolation: several times fewer iterations for the same result. Momentum keeps improving for longer before fitting noise; Biggs-Andrews is best earlier; its 2nd order is fastest and best, then over-fits soonest (use a stop rule).", choices={"None", "Biggs-Andrews", "Momentum (scaled heavy-ball)", "Biggs-Andrews, 2nd order"}, value="Momentum (scaled heavy-ball)", persist=false) acceleration
#@ String (label="Initial estimate", description="Flat: the classical start. The image: keeps its detail from the first iteration, many fewer iterations on data with little noise and a broad PSF, but it keeps the noise too. Wiener: the linear Wiener estimate (rho 1e-2), a few iterations fewer with Biggs-Andrews 2nd order.", choices={"Flat (the data's mean)", "The image", "Wiener estimate"}, value="Flat (the data's mean)", persist=false) initial
#@ Double (label="Exponent of the correction (1 = plain; 2.5 = fewer iterations on sparse samples)", description="The multiplicative correction raised to this power (Meinel 1986), 1 to 3, at the plain update's flux: with Biggs-Andrews 2nd order, 2.5 takes about 40 % fewer iterations on sparse samples (beads, filaments); it falls back to 1 when the Poisson deviance rises by more than 1 % or successive steps zig-zag (within a few iterations on dense samples). Not for bricked runs.", value=1.0, min=1.0, max=3.0, persist=false) exponent
#@ String (label="Back projector", description="Unmatched back projectors do most of Richardson-Lucy's work in 2-5 iterations; they are not maximum likelihood and over-iterating amplifies noise (it can diverge): use 2-5 iterations.", choices={"Matched (plain Richardson-Lucy)", "Wiener-Butterworth", "OTF-masked Wiener"}, value="Matched (plain Richardson-Lucy)", persist=false) back_projector
#@ String (label="Alpha of the back projector's Wiener filter (auto = 0.001 WB, 0.005 OTF-masked)", description="Wiener parameter of the back projector; larger is smoother.", value="auto", persist=false) bp_alpha
#@ Double (label="Beta of the Wiener-Butterworth (gain at the cutoff)", description="Wiener-Butterworth only, in (0, 1): larger passes more high frequencies (sharper, noisier).", value=0.001, min=0.0, persist=false) bp_beta
#@ Integer (label="Order of the Wiener-Butterworth filter", description="Wiener-Butterworth only: order of the Butterworth filter.", value=10, min=1, persist=false) bp_order
#@ String (label="Regularization", description="Smooths the result; TV keeps edges.", choices={"None", "Total variation", "Tikhonov (intensity)"}, value="None", persist=false) regularization
#@ String (label="Weight of the regularization (auto = TV 0.002, Tikhonov 0.01)", description="Regularization weight (dimensionless); auto = the default of the chosen regularization (TV 0.002, Tikhonov 0.01).", value="auto", persist=false) weight
#@ String (label="Background (same units as the image; one per channel, or auto)", description="Constant background in the data (camera offset plus the sample's uniform level), added to the model: one value, one per channel (e.g. 600,400), or auto (each volume's lowest local mean).", value="0.0", persist=false) background
#@ Double (label="Read noise (standard deviation, same units)", description="Gaussian camera read noise; allows negative pixel values.", value=0.0, min=0.0, persist=false) read_noise
#@ String (label="Stop rule", description="Discrepancy: stop when the Poisson deviance reaches its expected value (needs data in photo-electrons: offset subtracted, divided by the gain). Automatic: the count is chosen by splitting the photons in two (binomial thinning) and scoring RL on one half with the other; the iterations are the maximum.", choices={"None (run all iterations)", "Discrepancy principle (data in photons)", "Automatic (cross-validation on thinned photons)"}, value="None (run all iterations)", persist=false) stop
#@ String (label="Gain of the camera (e-/ADU, auto = from the noise; stop auto)", description="With stop auto: photo-electrons per image unit; auto = estimated from the image's noise.", value="auto", persist=false) gain
#@ String (label="Offset of the camera (ADU, auto = from the noise; stop auto)", description="With stop auto: the camera offset in the image; auto = estimated from the image's noise.", value="auto", persist=false) offset
#@ Integer (label="Snapshot every N iterations (0 = off)", description="Keep intermediate results every N iterations (CLI: files NAME_iterK beside the output; ImageJ: windows TITLE_iterK; Imspector: save every 10 and choose).", value=0, min=0, persist=false) snapshot_every
#@ Boolean (label="Recenter PSF on its centroid", description="Move the PSF's centroid to its centre voxel when it is off by more than half a voxel.", value=true, persist=false) recenter
#@ String (label="Title of the result", description="Title of the result window.", value="Deconvolved", persist=false) title
#@ String (label="Memory limit (auto, or a size such as 1GB, 512MiB; over it: bricks)", description="Memory budget of the run: auto = a safe fraction (70 %) of the memory available now (in ImageJ also what the Java heap needs for the result), or a size such as 1GB, 512MiB or a number of bytes. A volume whose memory estimate does not fit is deconvolved in bricks; when even one brick does not fit, the run stops with an error before computing.", value="auto", persist=false) memory_limit
#@output ij.ImagePlus result

"""Richardson-Lucy with non-circulant edges, momentum (default) or Biggs-Andrews (1st or 2nd order) acceleration, a flat, image or Wiener initial estimate, an exponent on the correction (Meinel), unmatched (Wiener-Butterworth, OTF-masked Wiener) back projectors, TV or Tikhonov regularization, a Poisson discrepancy stopping rule and an automatic (cross-validated) iteration count.

Generated from fijidecon.commands by `python -m fijidecon.fiji.scripts --write fiji_scripts`;
do not edit.  Needs a Fiji that runs Python 3 scripts with fijidecon installed.
"""

try:
    from fijidecon.fiji.scripts import run_script
except ImportError:
    raise ImportError("fijidecon is not importable: this script needs a Fiji that runs Python 3 "
                      "(pyimagej / scripting-python) with fijidecon installed; Jython cannot run it")

result = run_script('richardson-lucy', globals())
