"""The ImageJ dialogs show the core functions' defaults (see tests/test_defaults.py for the other faces).

Each command's real ``GenericDialog`` is built with the defaults the menu command uses and read back
field by field the way the command reads it (not shown): every parameter the core function takes
comes back as the function's signature default.
"""

import inspect

import pytest

from fijidecon.commands import all_commands

REQUIRED_IN_API = {("diffraction-psf-3d", "width"), ("diffraction-psf-3d", "height"), ("diffraction-psf-3d", "depth")}
SAME_AS_NONE = {("richardson-lucy", "snapshot_every"): 0}


@pytest.mark.parametrize("cmd", all_commands(), ids=lambda c: c.id)
def test_dialog_fields_hold_the_signature_defaults(bridge, cmd):
    from fijidecon.fiji import commands

    titles = ["image-a", "image-b"]
    gd = commands._build_dialog(cmd, dict(cmd.defaults()), titles)
    try:
        values = commands._read_dialog(cmd, gd)
    finally:
        gd.dispose()
    sig = inspect.signature(cmd.load())
    checked = 0
    for p in cmd.params:
        if not p.api or p.kind == "image":
            continue
        q = sig.parameters.get(p.name)
        if q is None or q.default is inspect.Parameter.empty:
            assert (cmd.id, p.name) in REQUIRED_IN_API
            continue
        got = values[p.name]
        if SAME_AS_NONE.get((cmd.id, p.name), object()) == got:
            got = None
        assert got == q.default, f"{cmd.id}: dialog field {p.label!r} = {got!r}, API default {q.default!r}"
        checked += 1
    assert checked > 0


@pytest.mark.parametrize("cid", ["richardson-lucy", "wiener"])
def test_a_dialog_shown_again_keeps_auto_in_its_fields(bridge, cid):
    """A fresh Fiji user: after OK, the dialog shown again had blank Alpha, Weight, Gain, Offset and Memory
    fields where it had shown 'auto' (the values remembered were the API's None), and the recorder then wrote
    alpha=[] ... memory=[]."""
    from fijidecon.fiji import commands

    cmd = next(c for c in all_commands() if c.id == cid)
    gd = commands._build_dialog(cmd, dict(cmd.defaults()), ["image-a", "image-b"])
    typed: dict = {}
    try:
        values = commands._read_dialog(cmd, gd, typed=typed)
    finally:
        gd.dispose()
    remembered = dict(cmd.defaults())
    remembered.update({p.name: typed.get(p.name, values[p.name]) for p in cmd.params if p.kind != "image"})
    gd = commands._build_dialog(cmd, remembered, ["image-a", "image-b"])
    try:
        fields = [str(f.getText()) for f in gd.getStringFields()]
        also = [str(p.face(None)) for p in cmd.params if p.kind == "string" and p.default is None
                and p.face(None) is not None]
    finally:
        gd.dispose()
    assert "" not in fields and also and all(a in fields for a in also), (fields, also)
    # the API values remembered as None are shown as the field's word for None, too
    gd = commands._build_dialog(cmd, dict(remembered, **{p.name: None for p in cmd.params
                                                         if p.kind == "string" and p.none}), ["a", "b"])
    try:
        assert "" not in [str(f.getText()) for f in gd.getStringFields()]
    finally:
        gd.dispose()
