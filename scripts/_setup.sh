# shellcheck shell=bash
# Shared set-up steps for scripts/demo.sh and scripts/test.sh (sourced, not run).
VENV=${FIJIDECON_VENV:-.venv}
PYTHON=${PYTHON:-python3}

setup_debian() {
  # Xvfb (a real X display for ImageJ's windows in tests) and a JDK for the ImageJ bridge.
  local need=()
  command -v Xvfb >/dev/null 2>&1 || need+=(xvfb)
  command -v javac >/dev/null 2>&1 || need+=(default-jdk-headless)
  fc-list >/dev/null 2>&1 || need+=(fontconfig)
  if ((${#need[@]})); then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    else
      sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    fi
  fi
}

setup_python() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e "$1"
}

setup_java() {
  # Download the pinned ImageJ 1.x / scijava-common / imglib2 jars once (Maven Central only);
  # later runs use the local Maven cache, offline.
  if "$VENV/bin/python" -c "import fijidecon.fiji.runtime" >/dev/null 2>&1; then
    "$VENV/bin/python" -m fijidecon.fiji.runtime --fetch
  fi
}
