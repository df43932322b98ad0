"""The ``fiji_scripts/`` SciJava scripts: generated from the descriptions, parsed by
scijava-common's real ``ScriptInfo``, registered in a real SciJava ``ModuleService`` and
run there (with a CPython script language) to the same result as the Python API."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fijidecon.commands import all_commands, get_command
from fijidecon.fiji import scripts

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "fiji_scripts"
DATA = Path(__file__).resolve().parents[1] / "data"


def test_committed_scripts_equal_the_generated_ones():
    assert scripts.check_scripts(FOLDER) == [], "run: python -m fijidecon.fiji.scripts --write fiji_scripts"
    assert sorted(p.stem for p in FOLDER.glob("*.py")) == sorted(c.id for c in all_commands())


def test_check_detects_drift(tmp_path):
    scripts.write_scripts(tmp_path)
    p = tmp_path / "diffraction-psf-3d.py"
    p.write_text(p.read_text().replace("value=256", "value=255"))
    (tmp_path / "stray.py").write_text("")
    assert scripts.check_scripts(tmp_path) == ["diffraction-psf-3d.py: differs from the generated script",
                                               "stray.py: no command with this id"]


@pytest.fixture(scope="module")
def ctx(jvm):
    context = scripts.new_context()
    scripts.python_language(context)
    infos = scripts.register(context, FOLDER)
    yield context, infos
    context.dispose()


_JTYPES = {"float": "java.lang.Double", "int": "java.lang.Integer", "bool": "java.lang.Boolean",
           "choice": "java.lang.String", "string": "java.lang.String", "image": "ij.ImagePlus"}


def test_scriptinfo_parses_every_header_as_described(ctx):
    context, infos = ctx
    assert set(infos) == {c.id for c in all_commands()}
    for cmd in all_commands():
        info = infos[cmd.id]
        inputs = {str(i.getName()): i for i in info.inputs()}
        assert list(inputs) == [p.name for p in cmd.params]
        for p in cmd.params:
            item = inputs[p.name]
            assert str(item.getType().getName()) == _JTYPES[p.kind], p.name
            assert str(item.getLabel()) == p.label.replace('"', "'")
            if p.kind in ("float", "int"):
                assert float(item.getDefaultValue()) == float(p.default)
                if p.minimum is not None:
                    assert float(item.getMinimumValue()) == float(p.minimum)
            elif p.kind == "bool":
                assert bool(item.getDefaultValue()) == bool(p.default)
            elif p.kind == "choice":
                assert [str(c) for c in item.getChoices()] == list(p.choice_labels)
                assert str(item.getDefaultValue()) == p.choice_label(p.default)
        outs = [(str(o.getName()), str(o.getType().getName())) for o in info.outputs()]
        assert outs == [("result", "ij.ImagePlus")]
        assert str(info.getMenuPath()).endswith(f"Scripts, {cmd.title}]")


def test_scripts_are_registered_modules(ctx, jvm):
    context, infos = ctx
    ms = context.getService(jvm.jimport("org.scijava.module.ModuleService"))
    modules = list(ms.getModules())
    for info in infos.values():
        assert any(m.equals(info) for m in modules)


def _run(context, jvm, info, **inputs):
    HashMap = jvm.jimport("java.util.HashMap")
    Integer = jvm.jimport("java.lang.Integer")
    Double = jvm.jimport("java.lang.Double")
    Boolean = jvm.jimport("java.lang.Boolean")
    m = HashMap()
    for k, v in inputs.items():
        if isinstance(v, bool):
            v = Boolean(v)
        elif isinstance(v, int):
            v = Integer(v)
        elif isinstance(v, float):
            v = Double(v)
        m.put(k, v)
    ms = context.getService(jvm.jimport("org.scijava.module.ModuleService"))
    return ms.run(info, True, m).get()


def test_psf_script_module_equals_api(ctx, jvm):
    from fijidecon.fiji import convert
    from fijidecon.psf import diffraction_psf_3d

    context, infos = ctx
    mod = _run(context, jvm, infos["diffraction-psf-3d"], index=1.515, na=1.4, wavelength=510.0,
               spherical_aberration=400.0, pixel_spacing=80.0, slice_spacing=200.0, width=33, height=31, depth=17,
               normalization="Peak = 1", title="scriptPSF")
    imp = mod.getOutput("result")
    assert str(imp.getTitle()) == "scriptPSF"
    got, cal = convert.from_imageplus(imp)
    want = diffraction_psf_3d(index=1.515, na=1.4, wavelength=510, spherical_aberration=400, pixel_spacing=80,
                              slice_spacing=200, width=33, height=31, depth=17, normalization="peak")
    assert np.max(np.abs(got - want)) <= 1e-6
    assert (cal.dx, cal.dz) == (80.0, 200.0)


def test_deconvolution_script_module_equals_api(ctx, jvm):
    from fijidecon.deconvolve import iterative_deconvolve_3d
    from fijidecon.calibration import Calibration
    from fijidecon.fiji import convert

    context, infos = ctx
    img = np.load(DATA / "input3d_40x36x12.npy")
    psf = np.load(DATA / "psfA_32x32x16.npy")
    cal = Calibration.make("ZYX", unit="micron", Z=0.25, Y=0.1, X=0.1)
    mod = _run(context, jvm, infos["iterative-deconvolve-3d"], image=convert.to_imageplus(img, cal, title="img"),
               psf=convert.to_imageplus(psf, title="psf"), output="S", normalize=True, gamma=0.001,
               max_iterations=12, terminate=-1000.0, compat="Compatible")
    imp = mod.getOutput("result")
    assert str(imp.getTitle()) == "S_12"
    got, gcal = convert.from_imageplus(imp)
    want = iterative_deconvolve_3d(img, psf, normalize=True, gamma=0.001, max_iterations=12, terminate=-1000)
    assert np.max(np.abs(got - want.image)) <= 1e-6 * np.max(np.abs(want.image))
    assert (gcal.dx, gcal.dz, gcal.unit) == (0.1, 0.25, "micron")


def test_every_generator_script_runs(ctx, jvm):
    """Each PSF-generating script (no image inputs) runs with small sizes and equals its core."""
    from fijidecon.fiji import convert

    context, infos = ctx
    n = 0
    for cmd in all_commands():
        names = {p.name for p in cmd.params}
        if any(p.kind == "image" for p in cmd.params) or not {"width", "height", "depth"} <= names:
            continue
        mod = _run(context, jvm, infos[cmd.id], width=12, height=10, depth=5)
        got, _ = convert.from_imageplus(mod.getOutput("result"))
        want = cmd.load()(**cmd.api_kwargs({"width": 12, "height": 10, "depth": 5}))
        want = want if isinstance(want, np.ndarray) else want.image
        assert np.max(np.abs(got - want)) <= 1e-6 * max(float(np.max(np.abs(want))), 1e-30), cmd.id
        n += 1
    assert n >= 1


def test_bad_value_in_a_script_gives_no_output_and_a_logged_error(ctx, jvm):
    context, infos = ctx
    mod = _run(context, jvm, infos["diffraction-psf-3d"], width=0, height=8, depth=4)
    assert mod.getOutput("result") is None


def test_header_is_derived_from_the_description():
    cmd = get_command("iterative-deconvolve-3d")
    h = scripts.header(cmd).splitlines()
    assert h[0].startswith("#@script")
    assert h[-1] == "#@output ij.ImagePlus result"
    assert [ln.rsplit(" ", 1)[1] for ln in h[1:-1]] == [p.name for p in cmd.params]
    assert '#@ Integer (label="Maximum number of iterations (suggest 100, 0 for filters only)"' in next(ln for ln in h if ln.endswith(" max_iterations"))
