"""Start-up time of the ImageJ bridge runtime: a cold JVM with a warm Maven cache.

Each measurement is a fresh Python process (one JVM per process), so every start is a
cold JVM start; the pinned jars are already in the local Maven repository and the jgo
environment cache ("warm cache", no network needed).  Printed: medians over ``--repeat``
runs of

* ``python baseline``   -- ``python -c "import numpy"`` (interpreter start-up),
* ``runtime.start``     -- resolve from cache + start the JVM (headless), as measured in-process,
* ``+ ij.ImageJ``       -- the same plus creating the ImageJ 1.x instance (needs a display;
  Xvfb is started for it when DISPLAY is unset and Xvfb is installed),
* ``whole process``     -- wall time of the child process that starts the JVM + ImageJ.

``--download`` also measures the first download into an empty temporary Maven
repository (needs network access to Maven Central) and reports the cache size.

Usage::

    python benchmarks/imagej_startup.py [--repeat 5] [--download]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, time
t0 = time.perf_counter()
from fijidecon.fiji import runtime
t1 = time.perf_counter()
runtime.start(heap="1g", headless=not runtime.has_display())
t2 = time.perf_counter()
gui = runtime.has_display()
if gui:
    runtime.imagej()
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "start": t2 - t1, "imagej": t3 - t2, "gui": gui}))
"""


def _run(code: str, env: dict) -> tuple[float, dict | None]:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"child failed:\n{r.stderr[-3000:]}")
    line = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    return wall, (json.loads(line) if line.startswith("{") else None)


def _dir_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def _start_xvfb():
    exe = shutil.which("Xvfb")
    if exe is None:
        return None, None
    r, w = os.pipe()
    proc = subprocess.Popen([exe, "-displayfd", str(w), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        num = f.readline().decode().strip()
    return proc, f":{num}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--download", action="store_true", help="also time the first download into an empty cache")
    a = ap.parse_args()

    from fijidecon.fiji import runtime

    env = dict(os.environ)
    xvfb = None
    if not env.get("DISPLAY"):
        xvfb, disp = _start_xvfb()
        if disp:
            env["DISPLAY"] = disp
    try:
        if a.download:
            with tempfile.TemporaryDirectory() as tmp:
                denv = dict(env, FIJIDECON_M2=str(Path(tmp) / "m2"), FIJIDECON_JGO_CACHE=str(Path(tmp) / "jgo"))
                t = time.perf_counter()
                r = subprocess.run([sys.executable, "-m", "fijidecon.fiji.runtime", "--fetch"], env=denv,
                                   capture_output=True, text=True, timeout=600)
                dt = time.perf_counter() - t
                if r.returncode != 0:
                    print(f"first download failed (network?): {r.stderr.strip().splitlines()[-1:]}")
                else:
                    m2 = _dir_size(Path(tmp) / "m2")
                    jgo = _dir_size(Path(tmp) / "jgo")
                    print(f"first download (empty cache, {len(runtime.COORDINATES)} pinned coordinates): "
                          f"{dt:.2f} s wall incl. Python start; Maven cache {m2 / 1e6:.1f} MB, "
                          f"jgo environment {jgo / 1e6:.1f} MB")
        runtime.fetch()  # make sure the cache is warm

        base = [_run("import numpy", env)[0] for _ in range(a.repeat)]
        walls, starts, ijs, imports = [], [], [], []
        gui = False
        for _ in range(a.repeat):
            wall, d = _run(CHILD, env)
            walls.append(wall)
            starts.append(d["start"])
            ijs.append(d["start"] + d["imagej"])
            imports.append(d["import"])
            gui = d["gui"]
        med = statistics.median
        print(f"runs: {a.repeat} fresh processes, warm Maven cache, {os.cpu_count()} cores, "
              f"display: {env.get('DISPLAY') or 'none (headless)'}")
        print(f"python baseline (import numpy)     median {med(base):6.2f} s")
        print(f"import fijidecon.fiji.runtime      median {med(imports):6.3f} s")
        print(f"runtime.start (cache -> JVM up)    median {med(starts):6.2f} s   "
              f"(min {min(starts):.2f}, max {max(starts):.2f})")
        if gui:
            print(f"runtime.start + ij.ImageJ instance median {med(ijs):6.2f} s   "
                  f"(min {min(ijs):.2f}, max {max(ijs):.2f})")
        print(f"whole child process                median {med(walls):6.2f} s   "
              f"= {med(walls) / med(base):.1f}x the Python baseline")
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(5)


if __name__ == "__main__":
    main()
