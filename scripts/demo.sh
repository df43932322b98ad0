#!/usr/bin/env bash
# Set everything up in ./.venv and run the main job end to end on the bundled sample:
# make a PSF, deconvolve the sample stack, write TIFFs (+ JSON sidecars) and a PNG panel.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_setup.sh
setup_python ".[plot]"
out=${1:-demo-output}
"$VENV/bin/fijidecon" demo -o "$out" --overwrite
echo "open $out/demo.png to see input / PSF / result / truth"
