#!/usr/bin/env bash
# Set everything up (Debian packages, ./.venv, the ImageJ jars from Maven Central) and run the main job end to
# end on a synthetic widefield sample with known truth (generated here, nothing downloaded), twice:
#  1. from Python (`fijidecon demo`): OUT/sample.tif (64x128x128 widefield stack: 150 beads and 60 filaments,
#     NA 1.3 widefield PSF, Poisson noise), OUT/truth.tif, OUT/psf.tif, OUT/deconvolved.tif (Richardson-Lucy with
#     momentum, the best method of benchmarks/quality.py; JSON sidecars) and OUT/demo.png (input / result / truth
#     side by side, scale bars);
#  2. through ImageJ: examples/main_job.ijm deconvolves the same files with the Richardson-Lucy command and shows
#     input, PSF, result and truth in titled, non-overlapping windows; the screenshot is
#     OUT/imagej/imagej_screen.png (result TIFF: OUT/imagej/deconvolved.tif).
# OUT is ./demo-output unless given; a previous demo's files there are replaced.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_setup.sh
setup_debian
setup_python ".[plot,imagej]"
setup_java
out=${1:-demo-output}
"$VENV/bin/fijidecon" demo -o "$out" --overwrite
"$VENV/bin/python" -m fijidecon.demo --imagej "$out"
echo "see $out/demo.png (Python) and $out/imagej/imagej_screen.png (ImageJ)"
