"""attach(ij): fijidecon commands as SciJava modules in a real scijava-common context.

pyimagej's ImageJ2 gateway cannot be downloaded here (SciJava repository only), so the
gateway is a small object exposing ``context()`` -- the public pyimagej API that attach
uses -- around a real ``org.scijava.Context`` with the real ScriptService and
ModuleService of scijava-common.
"""

from __future__ import annotations

import numpy as np
import pytest

from fijidecon.commands import all_commands, get_command


class Gateway:
    """The part of pyimagej's gateway that ``attach`` uses: ``context()``."""

    def __init__(self, ctx):
        self._ctx = ctx

    def context(self):
        return self._ctx


@pytest.fixture(scope="module")
def scijava(jvm):
    import jpype

    Context = jpype.JClass("org.scijava.Context")
    services = [
        jpype.JClass(n).class_
        for n in (
            "org.scijava.script.ScriptService",
            "org.scijava.module.ModuleService",
            "org.scijava.command.CommandService",
            "org.scijava.convert.ConvertService",
        )
    ]
    ctx = Context(*services)
    yield ctx
    ctx.dispose()


@pytest.fixture(scope="module")
def gateway(scijava):
    return Gateway(scijava)


@pytest.fixture(scope="module")
def attached(gateway):
    from fijidecon.fiji.attach import attach

    return attach(gateway)


def _module_service(ctx):
    import jpype

    return ctx.getService(jpype.JClass("org.scijava.module.ModuleService"))


def test_all_commands_registered_as_modules(scijava, attached):
    from fijidecon.fiji.attach import module_id

    ms = _module_service(scijava)
    assert set(attached) == {c.id for c in all_commands()}
    for cmd in all_commands():
        info = ms.getModuleById(module_id(cmd))
        assert info is not None, cmd.id
        assert info.equals(attached[cmd.id])
        assert str(info.getTitle()) == cmd.title
        assert str(info.getMenuPath().getMenuString()).replace(" ", "") == (cmd.menu + ">" + cmd.title).replace(" ", "")
        # inputs derived from the one command description
        names = [str(i.getName()) for i in info.inputs()]
        assert names == [p.name for p in cmd.params]
        for p in cmd.params:
            item = info.getInput(p.name)
            assert str(item.getLabel()) == p.label
            jt = str(item.getType().getName())
            expected = {"float": "java.lang.Double", "int": "java.lang.Integer", "bool": "java.lang.Boolean",
                        "choice": "java.lang.String", "string": "java.lang.String", "image": "ij.ImagePlus"}[p.kind]
            assert jt == expected, (p.name, jt)
            if p.kind == "choice":
                assert [str(c) for c in item.getChoices()] == list(p.choice_labels)
            if p.kind in ("float", "int") and p.minimum is not None:
                assert float(item.getMinimumValue()) == p.minimum
        assert [str(o.getName()) for o in info.outputs()] == ["result"]


def test_attach_is_idempotent(gateway, scijava, attached):
    from fijidecon.fiji.attach import attach

    ms = _module_service(scijava)
    n = int(ms.getModules().size())
    again = attach(gateway)
    assert int(ms.getModules().size()) == n
    assert all(again[k].equals(v) for k, v in attached.items())
    # the bare context is accepted too
    assert set(attach(scijava)) == set(attached)


def test_run_psf_through_module_service_matches_core(scijava, attached, convert_mod):
    import jpype

    from fijidecon.psf import diffraction_psf_3d

    ms = _module_service(scijava)
    inputs = jpype.JClass("java.util.HashMap")()
    cmd = get_command("diffraction-psf-3d")
    vals = dict(cmd.defaults())
    vals.update(width=24, height=20, depth=9, na=1.2, index=1.33, wavelength=520.0,
                pixel_spacing=65.0, slice_spacing=200.0, normalization="peak", title="psf via scijava")
    for p in cmd.params:
        v = vals[p.name]
        if p.kind == "choice":
            v = p.choice_label(v)
        inputs.put(p.name, {"float": jpype.java.lang.Double, "int": jpype.java.lang.Integer,
                            "bool": jpype.java.lang.Boolean}.get(p.kind, jpype.JString)(v))
    module = ms.run(attached["diffraction-psf-3d"], True, inputs).get()
    imp = module.getOutput("result")
    assert imp is not None
    assert str(imp.getTitle()) == "psf via scijava"
    arr, cal = convert_mod.from_imageplus(imp)
    expected = diffraction_psf_3d(**cmd.api_kwargs(vals))
    assert arr.dtype == np.float32 and arr.shape == (9, 20, 24)
    np.testing.assert_array_equal(arr, expected)
    assert cal.unit == "nm" and cal.voxel_size("ZYX") == pytest.approx((200.0, 65.0, 65.0))


def test_run_helper_with_images_matches_core(gateway, attached, convert_mod):
    from fijidecon.calibration import Calibration
    from fijidecon.deconvolve import iterative_deconvolve_3d
    from fijidecon.fiji.attach import run
    from fijidecon.psf import gaussian

    rng = np.random.default_rng(1)
    img = (rng.random((8, 24, 24)) * 100 + 10).astype(np.float32)
    psf = np.zeros((8, 24, 24), np.float32)
    psf[4, 12, 12] = 1.0
    psf[4, 11:14, 11:14] += 0.1
    psf /= psf.sum()
    cal = Calibration.make("ZYX", "micron", Z=0.3, Y=0.1, X=0.1)
    out = run(gateway, "iterative-deconvolve-3d", image=convert_mod.to_imageplus(img, cal),
              psf=convert_mod.to_imageplus(psf), max_iterations=3, output="decon", show=False)
    res, rcal = convert_mod.from_imageplus(out["result"])
    ref = iterative_deconvolve_3d(img, psf, max_iterations=3)
    np.testing.assert_allclose(res, ref.image, rtol=1e-6, atol=1e-6)
    assert str(out["result"].getTitle()) == f"decon_{ref.iterations}"
    assert rcal.unit == "micron" and rcal.dz == pytest.approx(0.3)
    del gaussian


def test_bad_value_names_the_parameter(gateway, attached):
    from fijidecon.fiji.attach import run

    with pytest.raises(ValueError, match="width"):
        run(gateway, "diffraction-psf-3d", width=0)
    with pytest.raises(ValueError, match="normalization"):
        run(gateway, "diffraction-psf-3d", normalization="brightest")
    with pytest.raises(ValueError, match="image"):
        run(gateway, "iterative-deconvolve-3d")


def test_error_inside_the_module_reaches_python(gateway, attached, convert_mod):
    """A core-function error raised while SciJava runs the module comes back to the caller."""
    from fijidecon.fiji.attach import run

    # NA larger than the index: the core function rejects it (checked in the core, not the dialog)
    with pytest.raises(ValueError, match="na"):
        run(gateway, "diffraction-psf-3d", width=8, height=8, depth=2, na=1.5, index=1.0, compat=False)


def test_bad_input_in_a_module_is_one_line_not_a_java_stack_trace(gateway, attached, convert_mod, capfd):
    """A fresh Fiji user: a bad value printed '[ERROR] javax.script.ScriptException: InputError: …' and 12 'at
    org.jpype…/org.scijava…' lines on stderr before the Python error; iterations=-3 did not name the command."""
    from fijidecon.fiji.attach import run

    capfd.readouterr()
    with pytest.raises(ValueError, match="na"):
        run(gateway, "diffraction-psf-3d", width=8, height=8, depth=2, na=1.5, index=1.0, compat=False)
    err = capfd.readouterr().err
    assert "ScriptException" not in err and "\tat " not in err and "org.scijava" not in err, err
    with pytest.raises(ValueError, match=r"^Diffraction PSF 3D: width: "):
        run(gateway, "diffraction-psf-3d", width=-3)


def test_not_a_gateway(jvm):
    from fijidecon.fiji.attach import attach

    with pytest.raises(TypeError, match="ij"):
        attach(object())


@pytest.fixture(scope="module")
def convert_mod(jvm):
    from fijidecon.fiji import convert

    return convert
