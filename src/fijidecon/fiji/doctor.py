"""Checks behind ``fijidecon doctor``: Java, the Maven cache, the display, the bridge itself.

Each check returns a :class:`Check` with a status (``"ok"``, ``"warn"``, ``"fail"``), what
was found, and -- when not ok -- what to do about it.  Nothing here starts a JVM in this
process; ``run_checks(start=True)`` starts one in a child process to prove the whole
chain works.

Example
-------
>>> from fijidecon.fiji.doctor import run_checks, format_checks   # doctest: +SKIP
>>> print(format_checks(run_checks()))                             # doctest: +SKIP
[ ok ] python packages: scyjava 1.12.5, JPype 1.7.1
...
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from fijidecon.fiji import runtime

__all__ = ["Check", "run_checks", "format_checks"]


@dataclass
class Check:
    """Result of one check."""

    name: str
    status: str  # "ok" | "warn" | "fail"
    detail: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "fail"

    def as_dict(self) -> dict:
        return asdict(self)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_packages() -> Check:
    vs = {"scyjava": _version("scyjava"), "JPype": _version("JPype1"), "jgo": _version("jgo")}
    missing = [k for k, v in vs.items() if v is None]
    detail = ", ".join(f"{k} {v}" for k, v in vs.items() if v)
    if missing:
        return Check("python packages", "fail", f"missing: {', '.join(missing)}" + (f" (found {detail})" if detail else ""),
                     "pip install 'fijidecon[imagej]'")
    return Check("python packages", "ok", detail)


def _java_version(libjvm: str) -> tuple[str | None, str]:
    """Run the ``java`` next to libjvm (or on PATH); return (version, where)."""
    p = Path(libjvm)
    candidates = [parent / "bin" / "java" for parent in list(p.parents)[:4]]
    exe = next((str(c) for c in candidates if c.is_file()), None) or shutil.which("java")
    if exe is None:
        return None, "no java executable"
    try:
        r = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"{exe}: {e}"
    m = re.search(r'version "([^"]+)"', r.stderr + r.stdout)
    return (m.group(1) if m else None), exe


def check_java() -> Check:
    lib = runtime.find_java()
    if lib is None:
        return Check(
            "java",
            "fail",
            "no Java found (JAVA_HOME unset or wrong, no java on PATH)",
            "install a JDK 11+ (Debian/Ubuntu: apt-get install openjdk-17-jdk-headless; conda: conda install "
            "openjdk=17) and/or export JAVA_HOME=/path/to/jdk",
        )
    ver, exe = _java_version(lib)
    if ver is None:
        return Check("java", "warn", f"JVM library {lib}; version unknown ({exe})",
                     "check that JAVA_HOME points at a complete JDK/JRE 11+")
    major = int(ver.split(".")[0]) if not ver.startswith("1.") else int(ver.split(".")[1])
    if major < 11:
        return Check("java", "fail", f"Java {ver} at {exe} is too old (JPype needs 11+)",
                     "install OpenJDK 17 and set JAVA_HOME to it")
    return Check("java", "ok", f"Java {ver} ({lib})")


def _central_reachable(timeout: float = 5.0) -> tuple[bool, str]:
    g, a, v = runtime.COORDINATES[0].split(":")
    url = f"{runtime.MAVEN_CENTRAL}/{g.replace('.', '/')}/{a}/{v}/{a}-{v}.pom"
    try:
        req = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status == 200, f"HTTP {r.status}"
    except Exception as e:  # no network, proxy, DNS …
        return False, f"{type(e).__name__}: {e}"


def check_maven_cache(network: bool = True) -> Check:
    m2 = runtime.m2_repo()
    missing = [c for c in runtime.COORDINATES if not runtime.jar_path(c, m2).is_file()]
    if not missing:
        size = sum(runtime.jar_path(c, m2).stat().st_size for c in runtime.COORDINATES)
        return Check("maven cache", "ok",
                     f"{len(runtime.COORDINATES)} pinned jars in {m2} ({size / 1e6:.1f} MB); starts offline")
    detail = f"missing in {m2}: {', '.join(missing)}"
    if network:
        ok, why = _central_reachable()
        if ok:
            return Check("maven cache", "warn", detail + "; Maven Central is reachable, so the first start downloads them",
                         "optional: python -m fijidecon.fiji.runtime --fetch (downloads about 5 MB once)")
        detail += f"; Maven Central not reachable ({why})"
    return Check("maven cache", "fail", detail,
                 "run 'python -m fijidecon.fiji.runtime --fetch' once with network access to Maven Central, or set "
                 "FIJIDECON_M2 to a Maven repository folder that holds these jars")


def _x_socket(display: str) -> Path | None:
    m = re.fullmatch(r"(?:unix)?:(\d+)(?:\.\d+)?", display)
    return Path(f"/tmp/.X11-unix/X{m.group(1)}") if m else None


def check_display() -> Check:
    if sys.platform in ("win32", "darwin"):
        return Check("display", "ok", f"{sys.platform}: native windows")
    disp = os.environ.get("DISPLAY", "")
    xvfb = shutil.which("Xvfb") or shutil.which("xvfb-run")
    if not disp:
        fix = ("ImageJ windows and dialogs need a display: run under 'xvfb-run -a ...' or start 'Xvfb :99 &' and "
               "export DISPLAY=:99" + ("" if xvfb else " (Debian: apt-get install xvfb)")
               + "; conversions alone also work with runtime.start(headless=True)")
        return Check("display", "warn", "DISPLAY is not set" + (f"; Xvfb is installed ({xvfb})" if xvfb else "; Xvfb not installed"), fix)
    sock = _x_socket(disp)
    if sock is not None and not sock.exists():
        return Check("display", "fail", f"DISPLAY={disp} but no X server socket {sock}",
                     "start the X server (e.g. 'Xvfb " + disp.split(".")[0] + " &') or fix DISPLAY")
    return Check("display", "ok", f"DISPLAY={disp}" + (f" ({sock})" if sock else ""))


def check_start(timeout: float = 180.0) -> Check:
    """Start the JVM with ImageJ in a child process (headless if no display) and time it."""
    code = (
        "import json,time; t=time.perf_counter();"
        "from fijidecon.fiji import runtime as r; r.start(headless=not r.has_display(), heap='512m');"
        "v=str(r.jimport('ij.IJ').getVersion());"
        "ok=True\n"
        "if r.has_display():\n"
        "    r.imagej()\n"
        "print(json.dumps({'ij': v, 's': time.perf_counter()-t, 'gui': r.has_display()}))"
    )
    try:
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Check("imagej start", "fail", f"no answer within {timeout:.0f} s", "run 'python -m fijidecon.fiji.runtime --info' to see where it hangs")
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["?"])[-1]
        return Check("imagej start", "fail", last[:400], "fix the failures above, then run 'fijidecon doctor' again")
    info = json.loads(res.stdout.strip().splitlines()[-1])
    how = "with an ImageJ instance" if info["gui"] else "headless (no display)"
    return Check("imagej start", "ok", f"ImageJ {info['ij']} started {how} in {info['s']:.1f} s")


def run_checks(start: bool = False, network: bool = True) -> list[Check]:
    """Run every check; ``start=True`` also starts ImageJ in a child process.

    Example
    -------
    >>> checks = run_checks()                        # doctest: +SKIP
    >>> all(c.ok for c in checks)                    # doctest: +SKIP
    True
    """
    checks = [check_packages(), check_java(), check_maven_cache(network=network), check_display()]
    if start:
        if all(c.ok for c in checks[:3]):
            checks.append(check_start())
        else:
            checks.append(Check("imagej start", "fail", "skipped: fix the failures above first", ""))
    return checks


def format_checks(checks: list[Check]) -> str:
    """Human-readable report: one line per check, then what to fix."""
    mark = {"ok": "[ ok ]", "warn": "[warn]", "fail": "[FAIL]"}
    lines = [f"{mark[c.status]} {c.name}: {c.detail}" for c in checks]
    fixes = [c for c in checks if c.status != "ok" and c.fix]
    if fixes:
        lines.append("")
        lines.append("What to fix:")
        lines += [f"  - {c.name}: {c.fix}" for c in fixes]
    else:
        lines.append("")
        lines.append("Everything needed for the ImageJ bridge is in place.")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    cs = run_checks(start="--start" in sys.argv)
    print(format_checks(cs))
    sys.exit(0 if all(c.ok for c in cs) else 1)
