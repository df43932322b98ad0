#!/usr/bin/env bash
# Set everything up (Debian packages, ./.venv with the package and test tools, the Java
# artifacts from Maven Central) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_setup.sh
setup_debian
setup_python ".[test,fast]"
setup_java
"$VENV/bin/python" -m pytest -ra "$@"
