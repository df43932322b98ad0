"""Every default is defined once, in the core function's signature (case 13 of the real-data cases).

For every command and every parameter the core function takes, the default of each face -- the CLI
option, the ImageJ macro (an empty option string, and the recorder's default string), the dialog's
values (``Command.defaults()``, what the dialog builder is given; the JVM test in
``tests/fiji/test_defaults_dialog.py`` reads a real dialog back) and the ``#@`` header of
``fiji_scripts/`` -- converts to the value ``inspect.signature`` gives for the core function.
"""

import inspect
import json
import re
from pathlib import Path

import numpy as np
import pytest

from fijidecon.cli import cli, main
from fijidecon.commands import all_commands
from fijidecon.commands._model import API
from fijidecon.fiji import scripts
from fijidecon.io import read_image, write_image

ROOT = Path(__file__).resolve().parents[1]
#: Required in the core function (no signature default): the face default is the original plugin's.
REQUIRED_IN_API = {("diffraction-psf-3d", "width"), ("diffraction-psf-3d", "height"), ("diffraction-psf-3d", "depth")}
#: Face values the core function treats exactly like its ``None`` default (checked below by running it).
SAME_AS_NONE = {("richardson-lucy", "snapshot_every"): 0}


def _api_params():
    for cmd in all_commands():
        sig = inspect.signature(cmd.load())
        for p in cmd.params:
            if p.api and p.kind != "image":
                yield cmd, p, sig.parameters.get(p.name)


CASES = [pytest.param(c, p, s, id=f"{c.id}:{p.name}") for c, p, s in _api_params()]


def _expected(cmd, p, sig_param):
    if sig_param is None or sig_param.default is inspect.Parameter.empty:
        assert (cmd.id, p.name) in REQUIRED_IN_API, f"{cmd.id}: {p.name} is not a defaulted parameter of the API"
        pytest.skip("required in the API; the face default is the original plugin's")
    return sig_param.default


def _api(p, value, cmd):
    """A face value as the core function receives it, with the documented None-equivalents."""
    v = p.convert(value)
    return None if SAME_AS_NONE.get((cmd.id, p.name), object()) == v else v


@pytest.mark.parametrize("cmd,p,sig_param", CASES)
def test_description_default_is_the_signature_default(cmd, p, sig_param):
    want = _expected(cmd, p, sig_param)
    assert p.default is not API
    assert _api(p, p.default, cmd) == want
    assert _api(p, cmd.defaults()[p.name], cmd) == want  # what the ImageJ dialog builder is given
    assert cmd.api_kwargs({})[p.name] == p.default
    assert cmd.resolve({})[p.name] == p.default


def _click_command(cmd):
    group, name = cmd.extras.get("cli", ("psf" if not any(q.kind == "image" for q in cmd.params) else "deconvolve",
                                         cmd.id))
    return cli.commands[group].commands[name]


@pytest.mark.parametrize("cmd,p,sig_param", CASES)
def test_cli_option_default(cmd, p, sig_param):
    want = _expected(cmd, p, sig_param)
    (opt,) = [o for o in _click_command(cmd).params if o.name == p.name]
    assert _api(p, opt.default, cmd) == want


@pytest.mark.parametrize("cmd,p,sig_param", CASES)
def test_macro_defaults(cmd, p, sig_param):
    want = _expected(cmd, p, sig_param)
    if p.kind != "bool":  # ImageJ's rule: a checkbox missing from the options is false
        assert _api(p, cmd.parse_macro("")[p.name], cmd) == want
    recorded = cmd.to_macro({})  # what the recorder writes for an unchanged dialog
    assert _api(p, cmd.parse_macro(recorded)[p.name], cmd) == want


def _header_value(cmd, name):
    text = (ROOT / "fiji_scripts" / f"{cmd.id}.py").read_text(encoding="utf-8")
    (line,) = [ln for ln in text.splitlines() if ln.startswith("#@ ") and ln.endswith(f") {name}")]
    typ = line.split()[1]
    m = re.search(r'value=("(?:[^"\\]|\\.)*"|[^,)\s]+)', line)
    raw = m.group(1)
    if typ == "String":
        return raw[1:-1]
    if typ == "Boolean":
        return {"true": True, "false": False}[raw]
    return float(raw) if typ == "Double" else int(raw)


@pytest.mark.parametrize("cmd,p,sig_param", CASES)
def test_script_header_default(cmd, p, sig_param):
    want = _expected(cmd, p, sig_param)
    assert _api(p, _header_value(cmd, p.name), cmd) == want


def test_scripts_are_generated_from_the_descriptions():
    assert scripts.check_scripts(ROOT / "fiji_scripts") == []


def test_snapshot_every_zero_is_the_apis_none():
    from fijidecon.deconvolve import richardson_lucy

    img = np.random.default_rng(0).poisson(50, (6, 16, 16)).astype(np.float32)
    psf = np.zeros((3, 5, 5), np.float32)
    psf[1, 2, 2], psf[1, 2, 3], psf[0, 2, 2] = 0.6, 0.2, 0.2
    a = richardson_lucy(img, psf, iterations=3, snapshot_every=0)
    b = richardson_lucy(img, psf, iterations=3)
    np.testing.assert_array_equal(a.image, b.image)
    assert not a.snapshots and not b.snapshots


# ---------------------------------------------------------------------------------------------
# the same default gives the same result in every face (case 13; Wiener's rule may change: derived)
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_pair(tmp_path_factory):
    from fijidecon.deconvolve import convolve
    from fijidecon.psf import gaussian

    d = tmp_path_factory.mktemp("pair")
    psf = gaussian((9, 15, 15), fwhm=(600.0, 250.0, 250.0), voxel_size=(200.0, 65.0, 65.0))
    obj = np.zeros((12, 32, 32), np.float32)
    obj[6, 10, 12], obj[5, 20, 22] = 4e3, 2e3
    obj[3:9, 14:18, 4:28] = 60
    img = np.random.default_rng(1).poisson(np.clip(convolve(obj, psf), 0, None) + 5).astype(np.float32)
    write_image(d / "img.tif", img)
    write_image(d / "psf.tif", psf.astype(np.float32))
    return d, img, psf


@pytest.mark.parametrize("regularization", ["tikhonov", "tv"])
def test_cli_rl_regularization_default_weight_is_the_apis(small_pair, tmp_path, regularization):
    from fijidecon.deconvolve import richardson_lucy

    d, img, psf = small_pair
    out = tmp_path / "r.tif"
    assert main(["deconvolve", "richardson-lucy", str(d / "img.tif"), str(d / "psf.tif"), "-o", str(out),
                 "--iterations", "5", "--regularization", regularization, "-q"]) == 0
    want = richardson_lucy(img, psf, iterations=5, regularization=regularization).image
    got, _ = read_image(out)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(want.max()))
    rec = json.loads((tmp_path / "r.tif.json").read_text())
    assert rec["parameters"]["weight"] is None  # automatic: the API's per-regularization default


def test_cli_wiener_default_is_the_apis(small_pair, tmp_path, capsys):
    from fijidecon.deconvolve import wiener

    d, img, psf = small_pair
    out = tmp_path / "w.tif"
    assert main(["deconvolve", "wiener", str(d / "img.tif"), str(d / "psf.tif"), "-o", str(out)]) == 0
    want = wiener(img, psf)
    got, _ = read_image(out)
    np.testing.assert_allclose(got, want.image, rtol=1e-5, atol=1e-5 * float(np.abs(want.image).max()))
    err = capsys.readouterr().err
    assert f"{want.regularization:.4g}" in err and str(want.rule) in err


def test_auto_fields_take_numbers_words_and_auto():
    from fijidecon.commands import get_command

    rl, wn = get_command("richardson-lucy"), get_command("wiener")
    weight, reg = rl.param("weight"), wn.param("regularization")
    for text in ("auto", "AUTO", "", " auto ", None):
        assert weight.convert(text) is None and reg.convert(text) is None
    assert weight.convert("0.05") == 0.05 and weight.convert(0.05) == 0.05 and weight.convert("0") == 0.0
    assert reg.convert("1e-4") == 1e-4 and reg.convert("gcv") == "gcv" and reg.convert("imspector") == "imspector"
    for bad, needle in (("abc", "expected a number or 'auto'"), ("-1", r"expected a finite number >= 0, got -1"), ("nan", "finite number"),
                        (True, "expected a number")):
        with pytest.raises(ValueError, match=needle):
            weight.convert(bad)
    assert rl.parse_macro("weight=0.05")["weight"] == 0.05 and rl.parse_macro("weight=[]")["weight"] is None
    assert rl.to_macro({}).count("weight=auto") == 1 and rl.to_macro({"weight": 0.05}).count("weight=0.05") == 1
    assert wn.to_macro({}).count("regularization=auto") == 1


def test_cli_auto_field_errors_are_one_line(small_pair, tmp_path, capsys):
    d, _, _ = small_pair
    assert main(["deconvolve", "richardson-lucy", str(d / "img.tif"), str(d / "psf.tif"), "-o", str(tmp_path / "r.tif"),
                 "--regularization", "tv", "--weight", "abc"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "weight: expected a number or 'auto', got 'abc'" in err
    assert not (tmp_path / "r.tif").exists()
