"""The Java runtime: pinned Maven Central artifacts, system JDK, heap option, offline warm cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from fijidecon.fiji import runtime


def _run_py(code: str, env_extra: dict | None = None, prefix: list[str] | None = None, timeout: float = 120):
    env = dict(os.environ)
    env.update(env_extra or {})
    cmd = (prefix or []) + [sys.executable, "-c", textwrap.dedent(code)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def _offline_prefix() -> tuple[list[str], dict]:
    """A way to run a child with no network: a new network namespace, or dead proxies."""
    if shutil.which("unshare") and subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-rn"], {}
    dead = "http://127.0.0.1:9"
    return [], {"http_proxy": dead, "https_proxy": dead, "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "no_proxy": ""}


def test_coordinates_are_pinned_maven_central():
    assert any(c.startswith("net.imagej:ij:1.54p") for c in runtime.COORDINATES)
    for c in runtime.COORDINATES:
        g, a, v = c.split(":")
        assert v and v not in ("RELEASE", "LATEST") and v[0].isdigit(), c


def test_start_is_idempotent_and_uses_pinned_jars(jvm, ij1):
    import scyjava

    assert jvm.is_started()
    jvm.start()  # second call: no-op
    jvm.ensure_started()
    assert jvm.imagej() is ij1 or ij1.equals(jvm.imagej())
    IJ = jvm.jimport("ij.IJ")
    assert str(IJ.getVersion()) == "1.54p"
    cp = str(jvm.jimport("java.lang.System").getProperty("java.class.path"))
    names = set()
    for entry in cp.split(os.pathsep):
        if entry.endswith("*"):
            d = os.path.dirname(entry)
            names.update(os.listdir(d) if os.path.isdir(d) else [])
        else:
            names.add(os.path.basename(entry))
    for c in runtime.COORDINATES:
        _, a, v = c.split(":")
        assert f"{a}-{v}.jar" in names, (c, sorted(names))
    # Maven Central only; the SciJava repository was removed
    assert "scijava.public" not in scyjava.config.get_repositories()
    # the system JDK, not a downloaded one
    home = str(jvm.jimport("java.lang.System").getProperty("java.home"))
    assert not home.startswith(os.path.expanduser("~/.cache")), home
    assert jvm.info()["imagej_version"].startswith("1.54p")
    assert not jvm.is_headless()


def test_imagej_class_usable(ij1):
    assert str(ij1.getClass().getName()) == "ij.ImageJ"


def test_heap_option_and_headless_in_fresh_process():
    r = _run_py(
        """
        import json
        from fijidecon.fiji import runtime
        runtime.start(heap="300m", headless=True)
        print(json.dumps(runtime.info()))
        try:
            runtime.imagej()
        except RuntimeError as e:
            print("NOWINDOW", e)
        """
    )
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout.splitlines()[0])
    assert 250 <= info["max_heap_mb"] <= 310, info
    assert info["headless"] is True
    assert "NOWINDOW" in r.stdout and "Xvfb" in r.stdout and "in a new Python process" in r.stdout


def test_a_second_start_asking_for_other_settings_warns_in_fresh_process():
    """start(heap="2g") then start(heap="8g") kept 2 GB silently; headless=True after a start
    with a display too.  The same settings, or none, stay silent."""
    r = _run_py(
        """
        import warnings
        from fijidecon.fiji import runtime
        runtime.start(heap="300m", headless=True)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            runtime.start()
            runtime.start(heap="300m", headless=True)
            runtime.ensure_started()
            print("QUIET", len(seen))
            runtime.start(heap="400m", headless=False)
            print("WARN", seen[-1].message)
        """
    )
    assert r.returncode == 0, r.stderr
    assert "QUIET 0" in r.stdout, r.stdout
    assert ("WARN start: the JVM is already running; heap='400m' (running with 300m), headless=False (running "
            "headless) cannot change in this process (one JVM per process)") in r.stdout, r.stdout


@pytest.mark.parametrize("heap", ["lots", "-1g", "4 g", 0])
def test_bad_heap_rejected(heap):
    with pytest.raises(ValueError, match="heap"):
        runtime._parse_heap(heap)


def test_warm_cache_starts_offline():
    """With the artifacts cached, a new process starts the JVM with no network at all."""
    runtime.fetch()  # warm (no-op when already cached)
    prefix, env = _offline_prefix()
    r = _run_py(
        """
        from fijidecon.fiji import runtime
        runtime.start(heap="256m", headless=True)
        print(runtime.jimport("ij.IJ").getVersion())
        """,
        env_extra=env,
        prefix=prefix,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().endswith("1.54p")


def test_clear_message_when_artifacts_missing_offline(tmp_path):
    prefix, env = _offline_prefix()
    env.update(FIJIDECON_M2=str(tmp_path / "m2"), FIJIDECON_JGO_CACHE=str(tmp_path / "jgo"))
    r = _run_py(
        """
        from fijidecon.fiji import runtime
        try:
            runtime.start(headless=True)
        except RuntimeError as e:
            print("ERR", e)
        print("STARTED", runtime.is_started())
        """,
        env_extra=env,
        prefix=prefix,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "ERR" in r.stdout and "--fetch" in r.stdout and "FIJIDECON_M2" in r.stdout, r.stdout
    assert "STARTED False" in r.stdout


def test_clear_message_when_java_missing():
    # Java cannot really be removed from this machine; JAVA_HOME points nowhere and the
    # finder reports nothing, as on a machine without Java.
    r = _run_py(
        """
        from fijidecon.fiji import runtime
        runtime.find_java = lambda: None
        try:
            runtime.start(headless=True)
        except RuntimeError as e:
            print("ERR", e)
        print("STARTED", runtime.is_started())
        """,
        env_extra={"JAVA_HOME": "/nonexistent"},
    )
    assert r.returncode == 0, r.stderr
    assert "ERR" in r.stdout and "no Java found" in r.stdout and "JAVA_HOME" in r.stdout
    assert "STARTED False" in r.stdout


def test_pinned_coordinates_are_closed_under_dependencies(tmp_path, monkeypatch):
    """jgo resolves exactly the pinned jars (nothing transitive is left out of COORDINATES)."""
    monkeypatch.setenv("FIJIDECON_JGO_CACHE", str(tmp_path / "jgo"))
    jars = runtime.fetch(update=True)  # raises if jgo needed a jar that is not pinned
    assert [j.name for j in jars] == [f"{c.split(':')[1]}-{c.split(':')[2]}.jar" for c in runtime.COORDINATES]
    envs = list((tmp_path / "jgo").rglob("*.jar"))
    assert sorted(p.name for p in envs) == sorted(j.name for j in jars)


def test_fetch_entry_point_reports_jars():
    r = subprocess.run(
        [sys.executable, "-m", "fijidecon.fiji.runtime", "--fetch"], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr
    assert "ij-1.54p.jar" in r.stdout and "imglib2-" in r.stdout and "scijava-common-" in r.stdout
