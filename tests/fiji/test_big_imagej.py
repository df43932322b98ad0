"""ImageJ and the memory budget (issue 9), with a real JVM under Xvfb.

* the ``memory`` macro key (the dialogs' last field) reaches the core: a volume over it is
  deconvolved in bricks, equal to the API's bricked run, and the status bar shows bricks
  done and the time left;
* Esc during a bricked run cancels it (no result window, status "cancelled");
* a result image that cannot fit ImageJ's free Java heap is refused before computing, with
  a message naming ``memory_limit``;
* a bad ``memory`` value is a macro error naming the parameter.
"""

import threading
import time

import numpy as np
import pytest

from fijidecon.deconvolve import richardson_lucy
from fijidecon.psf import gaussian

SHAPE = (24, 160, 160)


def _wait_for(pred, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out")


def _titles(jvm):
    return [str(x) for x in jvm.jimport("ij.WindowManager").getImageTitles()]


def _inputs(shape=SHAPE):
    from fijidecon.fiji import convert

    rng = np.random.default_rng(2)
    img = (rng.random(shape, dtype=np.float32) * 50 + 5).astype(np.float32)
    psf = gaussian((9, 15, 15), (4.0, 2.0, 2.0))
    convert.to_imageplus(img, title="bigimg").show()
    convert.to_imageplus(psf, title="bigpsf").show()
    return img, psf


def test_memory_key_bricks_the_run_with_bricks_and_eta_in_the_status_bar(clean_bridge, jvm):
    bridge = clean_bridge
    img, psf = _inputs()
    bridge.state.last_progress = None
    r = bridge.run_macro('run("Richardson-Lucy Deconvolution", "image=bigimg psf=bigpsf iterations=3 '
                         'title=bricked memory=20MB");', clear_log=True)
    assert r.ok, r.error
    assert "bricked" in r.log  # the core's note, in the Log window
    status = bridge.state.last_progress
    assert status and "brick " in status and "/" in status and "left" in status, status
    from fijidecon.fiji import convert

    got = convert.from_imageplus(jvm.jimport("ij.WindowManager").getImage("bricked"))[0]
    want = richardson_lucy(img, psf, 3, memory_limit="20MB").image
    np.testing.assert_allclose(np.asarray(got).reshape(want.shape), want, rtol=1e-5, atol=1e-5)


def test_escape_cancels_a_bricked_run(clean_bridge, jvm):
    bridge = clean_bridge
    _inputs((32, 256, 256))
    IJ = jvm.jimport("ij.IJ")
    KeyEvent = jvm.jimport("java.awt.event.KeyEvent")
    bridge.state.iteration = 0
    bridge.state.last_progress = None
    box = {}
    th = threading.Thread(target=lambda: box.setdefault("r", bridge.run_macro(
        'run("Richardson-Lucy Deconvolution", "image=bigimg psf=bigpsf iterations=40 title=never memory=40MB"); '
        'print("after");', clear_log=True)))
    th.start()
    _wait_for(lambda: bridge.state.last_progress)  # a brick is done
    ij = IJ.getInstance()
    ij.keyPressed(KeyEvent(ij, KeyEvent.KEY_PRESSED, 0, 0, KeyEvent.VK_ESCAPE, chr(27)))  # the Esc key
    th.join(120)
    assert not th.is_alive()
    done, total = map(int, bridge.state.last_progress.split("brick ")[1].split(",")[0].split()[0].split("/"))
    assert done < total  # stopped before the end
    assert bridge.state.last_status == "cancelled"
    assert "never" not in _titles(jvm)
    IJ.resetEscape()


def test_a_result_bigger_than_the_java_heap_is_refused_before_computing(clean_bridge, jvm):
    bridge = clean_bridge
    IJ = jvm.jimport("ij.IJ")
    room = int(IJ.maxMemory()) - int(IJ.currentMemory())
    n = room // 4 // (2048 * 2048) + 2  # 8-bit slices whose float32 result does not fit the free heap
    if n * 2048 * 2048 > 0.6 * room:
        pytest.skip("the JVM's free heap is too small to open the input itself")
    imp = IJ.createImage("hugeimg", "8-bit black", 2048, 2048, int(n))
    imp.show()
    _inputs((4, 32, 32))
    t0 = time.perf_counter()
    r = bridge.run_macro('run("Wiener Deconvolution", "image=hugeimg psf=bigpsf title=nothere");')
    assert not r.ok
    assert "(memory): " in r.error and "Java heap" in r.error and "memory_limit" not in r.error, r.error
    assert time.perf_counter() - t0 < 10  # refused before copying or computing
    assert "nothere" not in _titles(jvm)


def test_a_bad_memory_value_is_a_macro_error(clean_bridge, jvm):
    bridge = clean_bridge
    _inputs((4, 32, 32))
    r = bridge.run_macro('run("Convolve (FFT)", "image=bigimg kernel=bigpsf memory=lots");')
    assert not r.ok
    assert "memory=lots" in r.error and "expected a size such as '1GB'" in r.error
