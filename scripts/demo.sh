#!/usr/bin/env bash
# Set everything up (Debian packages, ./.venv, the ImageJ jars from Maven Central) and run
# the main job end to end on the bundled sample, twice:
#  1. through ImageJ: a macro builds a PSF with "Diffraction PSF 3D", deconvolves the sample
#     with "Iterative Deconvolve 3D", saves the result TIFF and a screenshot of the ImageJ
#     windows (OUT/imagej/deconvolved.tif, OUT/imagej/imagej_screen.png);
#  2. from Python: the same job with the API, writing OUT/psf.tif, OUT/deconvolved.tif (+ JSON
#     sidecars) and OUT/demo.png (input / PSF / result / truth side by side).
# OUT is ./demo-output unless given; a previous demo's files there are replaced.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_setup.sh
setup_debian
setup_python ".[plot,imagej]"
setup_java
out=${1:-demo-output}
mkdir -p "$out/imagej"
"$VENV/bin/fijidecon" macro --show-imagej examples/main_job.ijm "outdir=$out/imagej"
"$VENV/bin/fijidecon" demo -o "$out" --overwrite
echo "see $out/imagej/imagej_screen.png (ImageJ) and $out/demo.png (Python)"
