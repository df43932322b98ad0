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
