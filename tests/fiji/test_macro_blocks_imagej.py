"""A command's error inside a macro block (if/for/function) reaches the caller with its own
message, not the interpreter's "'}' expected" left by the abort (real ImageJ 1.54p, Xvfb)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("clean_bridge")


@pytest.mark.parametrize("wrap", [
    "{}",
    "if (true) {{ {} }}",
    "for (i = 0; i < 1; i++) {{ if (i == 0) {{ {} }} }}",
    "function f() {{ {} }}\nf();",
])
def test_command_error_inside_a_block_keeps_its_message(bridge, wrap):
    from fijidecon.fiji import convert

    convert.to_imageplus(np.ones((4, 16, 16), np.float32), title="img").show()
    convert.to_imageplus(-np.ones((3, 5, 5), np.float32), title="negpsf").show()
    call = 'run("Richardson-Lucy Deconvolution", "image=img psf=negpsf iterations=2 title=R");'
    r = bridge.run_macro(wrap.format(call) + '\nprint("not reached");')
    assert not r.ok
    assert r.error.startswith("Richardson-Lucy Deconvolution: ") and "psf" in r.error, r.error
    assert "expected" not in r.error
    assert "not reached" not in r.log
