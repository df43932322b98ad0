"""The Java side of fijidecon: one JVM per process, started from pinned Maven Central artifacts.

:func:`fetch` downloads :data:`COORDINATES` once with jgo (the pure-Python Maven
resolver that comes with scyjava; no ``mvn`` needed) from **Maven Central only** into a
local Maven repository.  :func:`start` then puts those cached jars on the classpath and
starts the JVM with `scyjava <https://github.com/scijava/scyjava>`_, using the system JDK
(``JAVA_HOME`` or ``java`` on ``PATH``; no JRE download; scyjava's SciJava repository is
removed).  Every version is pinned, so a warm cache starts offline without resolving
anything.

Settings (environment variables, read when :func:`start` runs):

``FIJIDECON_M2``
    Local Maven repository (default: ``$M2_REPO`` or ``~/.m2/repository``).
``FIJIDECON_JGO_CACHE``
    jgo environment cache (default: ``~/.cache/fijidecon/jgo``).
``FIJIDECON_HEAP``
    Default maximum heap (``-Xmx``), e.g. ``"4g"`` (default ``"4g"``).

Nothing here starts a JVM on import.  The first download can be done ahead of time with
``python -m fijidecon.fiji.runtime --fetch`` (or ``scripts/fetch_java_artifacts.py``).

Example
-------
>>> from fijidecon.fiji import runtime            # doctest: +SKIP
>>> runtime.start(heap="2g")                      # doctest: +SKIP
>>> ij = runtime.imagej()                         # the running ij.ImageJ  # doctest: +SKIP
>>> runtime.is_started()                          # doctest: +SKIP
True
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Iterable, Sequence

from fijidecon import _validate
from fijidecon.errors import InputError, InputTypeError

__all__ = [
    "COORDINATES",
    "IJ_VERSION",
    "SCIJAVA_COMMON_VERSION",
    "IMGLIB2_VERSION",
    "m2_repo",
    "jgo_cache",
    "find_java",
    "has_display",
    "fetch",
    "jar_path",
    "cached_jars",
    "start",
    "ensure_started",
    "is_started",
    "is_headless",
    "imagej",
    "jimport",
    "java_heap",
]

IJ_VERSION = "1.54p"
SCIJAVA_COMMON_VERSION = "2.99.2"
IMGLIB2_VERSION = "7.1.4"
#: scijava-common's own dependency, pinned explicitly: left to jgo, the dependency
#: management of another coordinate's parent POM picks parsington 2.0.0, which lacks
#: classes scijava-common 2.99 needs (``#@`` parameter parsing fails).
PARSINGTON_VERSION = "3.1.0"

#: Pinned Maven Central coordinates put on the classpath.
COORDINATES: tuple[str, ...] = (
    f"net.imagej:ij:{IJ_VERSION}",
    f"org.scijava:scijava-common:{SCIJAVA_COMMON_VERSION}",
    f"org.scijava:parsington:{PARSINGTON_VERSION}",
    f"net.imglib2:imglib2:{IMGLIB2_VERSION}",
)

MAVEN_CENTRAL = "https://repo.maven.apache.org/maven2"

_lock = threading.RLock()
_state: dict = {"started_by_us": False, "headless": None, "heap": None, "startup_s": None}


# ---------------------------------------------------------------------------------------
# settings and checks (no JVM needed)
# ---------------------------------------------------------------------------------------
def m2_repo() -> Path:
    """Local Maven repository used for the artifacts (``FIJIDECON_M2``, ``M2_REPO`` or ``~/.m2/repository``)."""
    val = os.environ.get("FIJIDECON_M2") or os.environ.get("M2_REPO")
    return Path(val).expanduser() if val else Path.home() / ".m2" / "repository"


def jgo_cache() -> Path:
    """jgo environment cache (``FIJIDECON_JGO_CACHE`` or ``~/.cache/fijidecon/jgo``)."""
    val = os.environ.get("FIJIDECON_JGO_CACHE")
    return Path(val).expanduser() if val else Path.home() / ".cache" / "fijidecon" / "jgo"


def find_java() -> str | None:
    """Path of the JVM library that will be used, or ``None`` when no Java is installed.

    Looks where JPype looks (``JAVA_HOME``, then ``java`` on ``PATH`` and the usual
    system locations).
    """
    try:
        import jpype
    except ImportError:
        return None
    try:
        return str(jpype.getDefaultJVMPath())
    except Exception:  # jpype.JVMNotFoundException and friends
        return None


def has_display() -> bool:
    """True when an X display (or a non-X11 desktop: Windows, macOS) is available for AWT."""
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


#: The smallest maximum heap accepted: ImageJ 1.x with its windows takes about 5 MiB by itself;
#: below this the JVM fails to start, crashes or only collects garbage.
MIN_HEAP_BYTES = 10 * 2**20


def _heap_bytes(h: str) -> int:
    """``"512m"`` (a validated heap size) in bytes."""
    return int(h[:-1]) * {"k": 2**10, "m": 2**20, "g": 2**30}[h[-1]] if h[-1] in "kmg" else int(h)


def _parse_heap(heap: str | int) -> str:
    """A heap size (``"4g"``, ``"512m"``, an int in MiB) as a ``-Xmx`` value; at least 10m.

    Raises
    ------
    TypeError, ValueError
        Not a size, or smaller than :data:`MIN_HEAP_BYTES` (the message names ``heap``).
    """
    h = _heap_text(heap)
    if _heap_bytes(h) < MIN_HEAP_BYTES:
        raise InputError(f"heap: {heap!r} is too small for ImageJ (at least {MIN_HEAP_BYTES // 2**20}m; "
                         "ImageJ itself takes about 5 MB)")
    return h


def _heap_text(heap: str | int) -> str:
    if isinstance(heap, bool):
        raise InputTypeError("heap: expected a size such as '4g' or '512m', got a bool")
    if isinstance(heap, int):
        if heap <= 0:
            raise InputError(f"heap: must be positive, got {heap}")
        return f"{heap}m"
    if not isinstance(heap, str):
        raise InputTypeError(f"heap: expected a size such as '4g' or '512m', got {type(heap).__name__}")
    h = heap.strip().lower()
    if not re.fullmatch(r"[1-9][0-9]*[kmg]?", h):
        raise InputError(f"heap: expected a size such as '4g' or '512m', got {heap!r}")
    return h


def _missing_java_message() -> str:
    return (
        "fijidecon.fiji: no Java found. The ImageJ bridge needs a Java 11+ JDK or JRE "
        "(OpenJDK 17 recommended). Install one (Debian/Ubuntu: 'apt-get install "
        "openjdk-17-jdk-headless'; conda: 'conda install openjdk=17') and/or set JAVA_HOME "
        "to its folder, then try again. 'fijidecon doctor' checks the setup."
    )


def _missing_maven_message(err: BaseException) -> str:
    return (
        "fijidecon.fiji: could not get the Java artifacts "
        f"{', '.join(COORDINATES)} from Maven Central nor from the local cache "
        f"{m2_repo()} ({type(err).__name__}: {err}). Run "
        "'python -m fijidecon.fiji.runtime --fetch' once with network access to Maven "
        "Central, or point FIJIDECON_M2 at a Maven repository folder that holds them. "
        "'fijidecon doctor' checks the setup."
    )


def _configure_scyjava() -> None:
    """Maven Central only (no SciJava repository), the system JDK, our caches."""
    import scyjava

    os.environ["M2_REPO"] = str(m2_repo())  # read by jgo's GlobalSettings
    scyjava.config.set_m2_repo(str(m2_repo()))
    scyjava.config.set_cache_dir(jgo_cache())
    scyjava.config.set_java_constraints(fetch="auto")
    scyjava.config.get_repositories().pop("scijava.public", None)


def jar_path(coordinate: str, repo: Path | None = None) -> Path:
    """Where the jar of a pinned ``group:artifact:version`` lives in the local Maven repository."""
    parts = coordinate.split(":")
    if len(parts) < 3 or not parts[2]:
        raise InputError(f"coordinate: {coordinate!r} is not group:artifact:version")
    g, a, v = parts[:3]
    return (repo or m2_repo()).joinpath(*g.split("."), a, v, f"{a}-{v}.jar")


def cached_jars(coordinates: Sequence[str] = COORDINATES) -> list[Path] | None:
    """The jars of *coordinates* in the local Maven repository, or ``None`` if one is missing."""
    paths = [jar_path(c) for c in coordinates]
    return paths if all(p.is_file() for p in paths) else None


class _FileLock:
    """Inter-process lock (POSIX ``flock``; a no-op elsewhere) around downloads."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.fh = None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "a+")
        try:
            import fcntl

            fcntl.flock(self.fh, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - Windows
            pass
        return self

    def __exit__(self, *exc):
        try:
            import fcntl

            fcntl.flock(self.fh, fcntl.LOCK_UN)
        except ImportError:  # pragma: no cover
            pass
        self.fh.close()


def fetch(coordinates: Sequence[str] = COORDINATES, update: bool = False) -> list[Path]:
    """Download the pinned artifacts into the local Maven repository (if needed); no JVM.

    jgo (installed with scyjava) resolves and downloads them from Maven Central only.
    When every jar is already cached and ``update`` is false, nothing is resolved and
    no network is used.

    Parameters
    ----------
    coordinates:
        Maven coordinates ``group:artifact:version``; all must be pinned.  The list must
        be closed under dependencies (:data:`COORDINATES` is: jgo resolves exactly these
        four jars; a test checks it).
    update:
        Resolve again even when the jars are cached.

    Returns
    -------
    list of pathlib.Path
        The jars, in the local Maven repository.

    Raises
    ------
    RuntimeError
        When the artifacts can be neither downloaded nor found in the cache.

    Example
    -------
    >>> [p.name for p in fetch()]          # doctest: +SKIP
    ['ij-1.54p.jar', 'scijava-common-2.99.2.jar', 'parsington-3.1.0.jar', 'imglib2-7.1.4.jar']
    """
    for c in coordinates:
        parts = c.split(":")
        if len(parts) < 3 or parts[2] in ("", "RELEASE", "LATEST"):
            raise InputError(f"coordinates: {c!r} is not pinned to a version")
    if not update:
        jars = cached_jars(coordinates)
        if jars is not None:
            return jars
    with _FileLock(jgo_cache() / "fetch.lock"):
        if not update:
            jars = cached_jars(coordinates)
            if jars is not None:  # another process fetched them meanwhile
                return jars
        env_path = _jgo_resolve(coordinates)
        jars = cached_jars(coordinates)
        if jars is None:
            missing = [c for c in coordinates if not jar_path(c).is_file()]
            raise RuntimeError(_missing_maven_message(FileNotFoundError(f"not in {m2_repo()} after resolving: {missing}")))
        extra = sorted({p.name for p in _env_jars(env_path)} - {p.name for p in jars})
        if extra:  # the pinned list is not closed under dependencies
            raise RuntimeError(f"fijidecon.fiji: coordinates need further jars {extra}: pin them in COORDINATES")
        return jars


def _jgo_resolve(coordinates: Sequence[str]) -> Path:
    try:
        import jgo
        from jgo.maven import PythonResolver
    except ImportError as e:  # pragma: no cover - scyjava depends on jgo
        raise RuntimeError("fijidecon.fiji: jgo (installed with scyjava) is missing: pip install 'fijidecon[imagej]'") from e
    os.environ["M2_REPO"] = str(m2_repo())  # jgo's local repository
    try:
        env = jgo.build(
            endpoint="+".join(coordinates),
            update=True,
            cache_dir=jgo_cache(),
            repositories={},  # Maven Central only (jgo always adds it)
            resolver=PythonResolver(lenient=False),
        )
    except Exception as e:
        raise RuntimeError(_missing_maven_message(e)) from e
    return Path(env.path)


def _env_jars(path: Path) -> list[Path]:
    path = Path(path)
    return sorted(p for sub in ("jars", "modules") for p in (path / sub).glob("*.jar"))


# ---------------------------------------------------------------------------------------
# the JVM
# ---------------------------------------------------------------------------------------
def is_started() -> bool:
    """True when a JVM is running in this process (started by us or by anyone else)."""
    try:
        import jpype
    except ImportError:
        return False
    return bool(jpype.isJVMStarted())


def is_headless() -> bool:
    """True when the running JVM is headless (AWT windows impossible)."""
    ensure_started()
    GraphicsEnvironment = jimport("java.awt.GraphicsEnvironment")
    return bool(GraphicsEnvironment.isHeadless())


def start(
    heap: str | int | None = None,
    headless: bool | None = None,
    options: Iterable[str] = (),
    extra_coordinates: Iterable[str] = (),
) -> None:
    """Start the JVM with ImageJ 1.x, scijava-common and ImgLib2 on the classpath.

    Idempotent: a second call does nothing (a JVM's classpath and options are frozen at
    start, and there is one JVM per process).  If a JVM was already started by someone
    else (e.g. pyimagej), it is used when it has ImageJ 1.x on its classpath.

    Parameters
    ----------
    heap:
        Maximum Java heap, e.g. ``"4g"``, ``"512m"`` or an int in MiB (default
        ``$FIJIDECON_HEAP`` or ``"4g"``).
    headless:
        Start with ``-Djava.awt.headless=true``: conversions work, ImageJ windows and
        dialogs do not.  With ``False`` (the default, ``None``) on Linux a ``DISPLAY`` is
        needed (Xvfb will do).  Once the JVM runs, a later call asking for another heap or
        headless mode warns (they cannot change in the process).
    options:
        Extra JVM options.
    extra_coordinates:
        Extra pinned Maven coordinates for the classpath.

    Raises
    ------
    RuntimeError
        Java is missing, the artifacts cannot be had, or a foreign JVM lacks ImageJ 1.x.

    Example
    -------
    >>> from fijidecon.fiji import runtime   # doctest: +SKIP
    >>> runtime.start(heap="2g")             # doctest: +SKIP
    """
    with _lock:
        if is_started():
            _check_foreign_jvm()
            _warn_ignored(heap, headless, options, extra_coordinates)
            return
        heap_s = _parse_heap(heap if heap is not None else os.environ.get("FIJIDECON_HEAP", "4g"))
        headless = False if headless is None else headless
        if not isinstance(headless, bool):
            raise InputTypeError(f"headless: expected a bool, got {type(headless).__name__}")
        opts = [str(o) for o in options]
        extra = [str(c) for c in extra_coordinates]
        try:
            import scyjava
            import jpype  # noqa: F401
        except ImportError as e:
            raise RuntimeError(
                "fijidecon.fiji: scyjava and JPype are needed for the ImageJ bridge: "
                "pip install 'fijidecon[imagej]'"
            ) from e
        if find_java() is None:
            raise RuntimeError(_missing_java_message())
        t0 = time.perf_counter()
        # The jars come straight from the local Maven repository (downloaded once by
        # fetch); scyjava gets them as a plain classpath, not as jgo endpoints: jgo 3.2
        # rebuilds an environment whose jars are all modular (ours are) at every start,
        # which is slow and races with other processes starting at the same time.
        jars = fetch(tuple(COORDINATES) + tuple(extra))
        _configure_scyjava()
        scyjava.config.add_classpath(*[str(j) for j in jars])
        jvm_opts = [f"-Xmx{heap_s}"]
        if headless:
            jvm_opts.append("-Djava.awt.headless=true")
        jvm_opts += opts
        existing = set(scyjava.config.get_options())
        for o in jvm_opts:
            if o not in existing:
                scyjava.config.add_option(o)
        try:
            scyjava.start_jvm()
        except Exception as e:
            if find_java() is None:
                raise RuntimeError(_missing_java_message()) from e
            raise RuntimeError(f"fijidecon.fiji: the JVM did not start: {type(e).__name__}: {e}") from e
        _state.update(started_by_us=True, headless=headless, heap=heap_s, startup_s=time.perf_counter() - t0)
        scyjava.when_jvm_stops(close_image_windows)


def _warn_ignored(heap, headless, options, extra_coordinates) -> None:
    """A warning naming what a second :func:`start` asked for that the running JVM cannot change."""
    if not _state["started_by_us"]:
        return
    asked = []
    if heap is not None and _heap_bytes(_parse_heap(heap)) != _heap_bytes(_state["heap"]):
        asked.append(f"heap={heap!r} (running with {_state['heap']})")
    if headless is not None and bool(headless) != bool(_state["headless"]):
        asked.append(f"headless={headless!r} (running {'headless' if _state['headless'] else 'with a display'})")
    if list(options) or list(extra_coordinates):
        asked.append("options/extra_coordinates")
    if asked:
        _validate.warn(f"start: the JVM is already running; {', '.join(asked)} cannot change in this process (one JVM "
                       "per process): start a new Python process for other settings", RuntimeWarning)


def _check_foreign_jvm() -> None:
    if _state["started_by_us"]:
        return
    import jpype

    try:
        jpype.JClass("ij.ImageJ")
    except Exception as e:
        raise RuntimeError(
            "fijidecon.fiji: a JVM is already running in this process without ImageJ 1.x "
            f"({COORDINATES[0]}) on its classpath; one JVM per process: start fijidecon's "
            "runtime (or pyimagej) before anything else starts Java."
        ) from e


def ensure_started(**kwargs) -> None:
    """Start the JVM with :func:`start` unless it is already running."""
    if not is_started():
        start(**kwargs)
    else:
        _check_foreign_jvm()


def startup_seconds() -> float | None:
    """Seconds :func:`start` took (resolution + JVM start) in this process, or ``None``."""
    return _state["startup_s"]


def jimport(name: str):
    """Import a Java class (starting the JVM with the defaults if needed)."""
    ensure_started()
    import jpype

    return jpype.JClass(name)


def imagej(show: bool = False):
    """Return the running ``ij.ImageJ`` instance, creating one if needed.

    Parameters
    ----------
    show:
        Show the ImageJ main window (menu bar + toolbar).  By default it is created with
        ``ImageJ.NO_SHOW``: menus and commands exist, images can still be shown.

    Raises
    ------
    RuntimeError
        In a headless JVM, or on Linux without a display (start Xvfb or set DISPLAY).

    Example
    -------
    >>> ij = imagej()                       # doctest: +SKIP
    >>> ij.getClass().getName()             # doctest: +SKIP
    'ij.ImageJ'
    """
    ensure_started()
    with _lock:
        IJ = jimport("ij.IJ")
        inst = IJ.getInstance()
        if inst is None:
            if is_headless() or not has_display():
                raise RuntimeError(
                    "fijidecon.fiji: ImageJ's window needs a display: this JVM is headless or "
                    "DISPLAY is unset. Run under Xvfb (e.g. 'xvfb-run -a python ...' or "
                    "'Xvfb :99 & export DISPLAY=:99') and start without headless=True (in a new Python "
                    "process if this one started headless: one JVM per process)."
                )
            ImageJ = jimport("ij.ImageJ")
            inst = ImageJ(ImageJ.NO_SHOW)
        if show and not inst.isVisible():
            inst.pack()
            inst.setLocation(0, 0)
            inst.setVisible(True)
        return inst


def java_heap(collect: bool = False) -> tuple[int, int]:
    """The Java heap's free room and its maximum, in bytes.

    Parameters
    ----------
    collect:
        Run a garbage collection first (``System.gc()``: up to a second on a big, full
        heap), so that garbage no longer referenced counts as free.

    Returns
    -------
    (int, int)
        What new objects can still take (the maximum ``-Xmx`` less the bytes in use) and
        the maximum.
    """
    ensure_started()
    rt = jimport("java.lang.Runtime").getRuntime()
    if collect:
        jimport("java.lang.System").gc()
    mx = int(rt.maxMemory())
    used = int(rt.totalMemory()) - int(rt.freeMemory())
    return max(mx - used, 0), mx


def close_image_windows() -> int:
    """Close every ImageJ image window without "save changes?" prompts; return how many.

    Registered to run when the JVM stops: an open ``StackWindow`` keeps a non-daemon
    thread (``zSelector``) alive that would otherwise make the interpreter hang at exit.
    """
    if not is_started():
        return 0
    try:
        WindowManager = jimport("ij.WindowManager")
        ids = WindowManager.getIDList()
    except Exception:
        return 0
    n = 0
    for i in list(ids) if ids is not None else []:
        imp = WindowManager.getImage(int(i))
        if imp is None:
            continue
        try:
            imp.changes = False
            imp.close()
            n += 1
        except Exception:
            pass
    return n


def info() -> dict:
    """What the runtime uses: coordinates, caches, Java, display, and (if started) JVM facts."""
    d = {
        "coordinates": list(COORDINATES),
        "m2_repo": str(m2_repo()),
        "jgo_cache": str(jgo_cache()),
        "java": find_java(),
        "display": os.environ.get("DISPLAY"),
        "started": is_started(),
    }
    if is_started():
        System = jimport("java.lang.System")
        Runtime = jimport("java.lang.Runtime")
        d["java_version"] = str(System.getProperty("java.version"))
        d["max_heap_mb"] = int(Runtime.getRuntime().maxMemory()) // (1024 * 1024)
        d["headless"] = is_headless()
        d["startup_s"] = _state["startup_s"]
        try:
            d["imagej_version"] = str(jimport("ij.IJ").getFullVersion())
        except Exception:
            pass
    return d


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m fijidecon.fiji.runtime", description=__doc__.split("\n\n")[0])
    p.add_argument("--fetch", action="store_true", help="download the pinned Java artifacts from Maven Central")
    p.add_argument("--update", action="store_true", help="with --fetch: resolve again even if cached")
    p.add_argument("--info", action="store_true", help="start the JVM and print what it uses")
    a = p.parse_args(argv)
    if a.fetch:
        t0 = time.perf_counter()
        jars = fetch(update=a.update)
        dt = time.perf_counter() - t0
        size = sum(j.stat().st_size for j in jars)
        print(f"fetched {len(COORDINATES)} pinned coordinates in {dt:.2f} s into {m2_repo()}")
        for j in jars:
            print(f"  {j.name}")
        print(f"jars: {len(jars)}, {size / 1e6:.1f} MB")
    if a.info or not a.fetch:
        start(headless=not has_display())
        for k, v in info().items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
