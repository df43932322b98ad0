#!/usr/bin/env bash
# Set everything up (Debian packages, ./.venv with the package and test tools, the Java
# artifacts from Maven Central) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_setup.sh
setup_debian
setup_python ".[test,fast]"
setup_java
# test files run in parallel worker processes (pytest-xdist), one per core, at most 4 (each may start its own
# JVM, Xvfb and Dask cluster); a file's tests stay in one worker. FIJIDECON_TEST_WORKERS=0 runs them in this process.
cores=$(nproc 2>/dev/null || echo 1)
workers=${FIJIDECON_TEST_WORKERS:-$(( cores < 4 ? cores : 4 ))}
"$VENV/bin/python" -m pytest -ra -n "$workers" --dist loadfile "$@"
