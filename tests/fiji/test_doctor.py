"""fijidecon doctor: real checks of Java, the Maven cache and the display."""

from __future__ import annotations

import json

from click.testing import CliRunner

from fijidecon.fiji import doctor as doc
from fijidecon.fiji.cli_doctor import doctor as doctor_cmd


def _by_name(checks):
    return {c.name: c for c in checks}


def test_all_ok_here(display, jvm):
    checks = _by_name(doc.run_checks(network=False))
    assert checks["python packages"].status == "ok"
    assert checks["java"].status == "ok" and "Java 1" in checks["java"].detail
    assert checks["maven cache"].status == "ok" and "starts offline" in checks["maven cache"].detail
    assert checks["display"].status == "ok" and display in checks["display"].detail


def test_empty_maven_cache_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("FIJIDECON_M2", str(tmp_path / "empty"))
    c = doc.check_maven_cache(network=False)
    assert c.status == "fail"
    assert "net.imagej:ij:1.54p" in c.detail
    assert "--fetch" in c.fix and "FIJIDECON_M2" in c.fix


def test_no_display_is_a_warning_with_a_fix(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    c = doc.check_display()
    assert c.status == "warn" and "DISPLAY is not set" in c.detail
    assert "xvfb-run" in c.fix and "headless=True" in c.fix


def test_display_without_server_fails(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":4093")
    c = doc.check_display()
    assert c.status == "fail" and "X4093" in c.detail and "Xvfb" in c.fix


def test_cli_json_and_text(display, jvm, tmp_path, monkeypatch):
    r = CliRunner().invoke(doctor_cmd, ["--json", "--offline"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert {d["name"] for d in data} >= {"java", "maven cache", "display", "python packages"}
    # a failing check -> exit status 1 and a "What to fix" section
    monkeypatch.setenv("FIJIDECON_M2", str(tmp_path / "empty"))
    r = CliRunner().invoke(doctor_cmd, ["--offline"])
    assert r.exit_code == 1
    assert "[FAIL] maven cache" in r.output and "What to fix:" in r.output and "--fetch" in r.output


def test_start_check_starts_imagej_in_a_child(display, jvm):
    c = doc.check_start()
    assert c.status == "ok", c.detail
    assert "ImageJ 1.54p started with an ImageJ instance" in c.detail
