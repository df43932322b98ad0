"""The memory model (``estimate_memory``) against the real peak memory of each method.

Every measurement runs the method in a child process and reads its peak resident set
size (``fijidecon.deconvolve._memory.measure_peak``); the estimate must be within 25 %.
Sizes are small enough that the whole file runs in well under a minute on 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import psutil
import pytest

from fijidecon.deconvolve import _memory, available_memory, default_memory_limit, estimate_memory, parse_memory

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS measured through /proc (Linux)")

SHAPE, PSF = (32, 128, 128), (15, 31, 31)
#: Measured on volumes whose buffers outweigh the per-thread blocks (a few MiB that vary
#: with how the threads' malloc arenas are shared); Iterative Deconvolve 3D's compat grid
#: is already 64x256x256 for the small volume.
BIG = (48, 192, 192)
CASES = [
    ("richardson-lucy", BIG, PSF, {}),
    ("richardson-lucy", BIG, PSF, {"acceleration": "biggs-andrews"}),
    ("richardson-lucy", BIG, PSF, {"acceleration": "momentum"}),
    ("richardson-lucy", BIG, PSF, {"acceleration": "biggs-andrews-2"}),
    ("richardson-lucy", BIG, PSF, {"acceleration": "biggs-andrews-2", "initial": "wiener"}),
    ("richardson-lucy", BIG, PSF, {"back_projector": "wiener-butterworth"}),
    ("richardson-lucy", BIG, PSF, {"regularization": "tv"}),
    ("richardson-lucy", BIG, PSF, {"edges": "periodic"}),
    ("richardson-lucy", BIG, PSF, {"edges": "reflect"}),
    ("richardson-lucy", BIG, PSF, {"track_deviance": True}),
    ("richardson-lucy", BIG, PSF, {"dtype": "uint16"}),
    ("richardson-lucy", BIG, PSF, {"iterations": 4, "snapshot_every": 1}),
    ("richardson-lucy", (1024, 1024), (31, 31), {}),
    ("richardson-lucy", (16, 3, 128, 128), PSF, {"axes": "ZCYX"}),
    ("wiener", BIG, PSF, {}),
    ("wiener", BIG, PSF, {"regularization": 1e-3}),
    ("wiener", BIG, PSF, {"regularization": "gcv"}),
    ("wiener", BIG, PSF, {"edges": "periodic", "regularization": 1e-3}),
    ("convolve", BIG, PSF, {}),
    ("convolve", BIG, PSF, {"edges": "periodic"}),
    ("convolve", (4, 32, 128, 128), PSF, {"axes": "TZYX"}),
    ("convolve", (64, 256, 256), (64, 256, 256), {"edges": "periodic"}),  # the PSF preparation is the peak
    ("iterative-deconvolve-3d", SHAPE, PSF, {}),
    ("iterative-deconvolve-3d", BIG, PSF, {"compat": False}),
]


def _id(case) -> str:
    method, shape, _, opts = case
    return f"{method}-{'x'.join(map(str, shape))}-" + ("-".join(f"{k}={v}" for k, v in opts.items()) or "defaults")


@linux
@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_estimate_within_25_percent_of_measured_peak(case):
    method, shape, psf, opts = case
    est = estimate_memory(method, shape, psf, **opts)
    got = _memory.measure_peak(method, shape, psf, **opts)
    assert 0.75 <= est / got <= 1.25, (f"{method} {shape} {opts}: estimate {est / 2**20:.1f} MiB, "
                                       f"measured {got / 2**20:.1f} MiB\n"
                                       + _memory.memory_model(method, shape, psf, **opts).table())


@pytest.mark.parametrize("method", _memory.METHODS)
def test_monotone_in_size(method):
    base = estimate_memory(method, (32, 128, 128), (15, 31, 31))
    for ax in range(3):
        bigger = [32, 128, 128]
        bigger[ax] *= 2
        assert estimate_memory(method, tuple(bigger), (15, 31, 31)) > base
    sizes = [16, 32, 48, 64, 96, 128, 200, 256]
    est = [estimate_memory(method, (n, 2 * n, 2 * n), (9, 17, 17)) for n in sizes]
    assert est == sorted(est)
    assert estimate_memory(method, (128, 128), (15, 15)) < estimate_memory(method, (256, 256), (15, 15))


def test_options_that_allocate_cost_more():
    rl = estimate_memory("richardson-lucy", SHAPE, PSF)  # the default: momentum acceleration
    plain = estimate_memory("richardson-lucy", SHAPE, PSF, acceleration=None)
    assert estimate_memory("richardson-lucy", SHAPE, PSF, acceleration="biggs-andrews") == rl > plain
    assert estimate_memory("richardson-lucy", SHAPE, PSF, acceleration="Biggs-Andrews-2") > rl
    with pytest.raises(ValueError, match="acceleration"):
        estimate_memory("richardson-lucy", SHAPE, PSF, acceleration="biggs-andrews-3")
    assert estimate_memory("richardson-lucy", SHAPE, PSF, regularization="tv") > rl
    assert estimate_memory("richardson-lucy", SHAPE, PSF, edges="periodic") < rl
    assert estimate_memory("richardson-lucy", SHAPE, PSF, dtype=np.uint16) == rl + 4 * int(np.prod(SHAPE))
    snaps = estimate_memory("richardson-lucy", SHAPE, PSF, iterations=10, snapshot_every=2)
    assert snaps == rl + 5 * 4 * int(np.prod(SHAPE))
    assert estimate_memory("iterative-deconvolve-3d", SHAPE, PSF, compat=False) < \
        estimate_memory("iterative-deconvolve-3d", SHAPE, PSF)


def test_model_is_a_sum_of_named_buffers():
    m = _memory.memory_model("richardson-lucy", (64, 256, 256), (31, 63, 63))
    assert m.work_shape == (96, 320, 320)  # non-circulant grid: fast lengths of 64+31-1, 256+63-1
    names = [n for n, _ in m.buffers]
    assert any("otf" in n for n in names) and any("estimate x" in n for n in names)
    assert m.total == sum(b for _, b in m.buffers) + _memory.OVERHEAD
    assert 20 < m.per_work_voxel() < 30  # momentum (the default) keeps x_k-1 and g_k-1: 8 bytes more
    assert 15 < _memory.memory_model("richardson-lucy", (64, 256, 256), (31, 63, 63),
                                     acceleration=None).per_work_voxel() < 25
    assert "total" in m.table()


def test_kernel_is_cropped_as_the_method_crops_it():
    # a PSF larger than 2n-1 is cropped to 2n-1 (n for periodic edges): the grid stops growing
    a = _memory.memory_model("richardson-lucy", (32, 64, 64), (63, 127, 127))
    b = _memory.memory_model("richardson-lucy", (32, 64, 64), (101, 301, 301))
    assert a.work_shape == b.work_shape
    p = _memory.memory_model("richardson-lucy", (32, 64, 64), (101, 301, 301), edges="periodic")
    assert p.work_shape == (32, 64, 64)


def test_hyperstack_counts_the_other_volumes():
    one = estimate_memory("convolve", SHAPE, PSF)
    four = estimate_memory("convolve", (4,) + SHAPE, PSF, axes="TZYX")
    n4 = 4 * int(np.prod(SHAPE))
    assert four >= one + 3 * n4  # the results of the volumes done
    rl1 = estimate_memory("richardson-lucy", SHAPE, PSF)
    rl4 = estimate_memory("richardson-lucy", (4,) + SHAPE, PSF, axes="TZYX")
    w = int(np.prod(_memory.memory_model("richardson-lucy", SHAPE, PSF).work_shape))
    assert rl4 >= rl1 + 3 * (n4 + 4 * w)  # each result keeps its work grid (resume state)
    moved = estimate_memory("convolve", (32, 4, 128, 128), PSF, axes="ZTYX")
    assert moved > four  # volumes are copied out of the interleaved stack


def test_unknown_method_names_method():
    with pytest.raises(ValueError, match=r"^method: .*'deblur'") as e:
        estimate_memory("deblur", SHAPE, PSF)
    assert "\n" not in str(e.value)


def test_unknown_option_names_it():
    with pytest.raises(ValueError, match=r"^wobble: not an option of richardson-lucy") as e:
        estimate_memory("richardson-lucy", SHAPE, PSF, wobble=3)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match=r"^compat: not an option of wiener"):
        estimate_memory("wiener", SHAPE, PSF, compat=True)
    with pytest.raises(ValueError, match="^edges"):
        estimate_memory("wiener", SHAPE, PSF, edges="non-circulant")
    # every keyword of the method itself is accepted
    estimate_memory("richardson-lucy", SHAPE, PSF, iterations=5, background=2.0, stop="discrepancy", weight=0.01)
    estimate_memory("iterative-deconvolve-3d", SHAPE, PSF, compat=False, gamma=0.01, max_iterations=9)


def test_bad_shapes():
    with pytest.raises(ValueError, match="^image_shape"):
        estimate_memory("convolve", (0, 10, 10), (3, 3, 3))
    with pytest.raises(ValueError, match="^psf_shape"):
        estimate_memory("convolve", (10, 10, 10), (3, 3))
    with pytest.raises(ValueError, match="^image_shape: 4 axes"):
        estimate_memory("convolve", (2, 10, 10, 10), (3, 3, 3))
    with pytest.raises(ValueError, match="^axes"):
        estimate_memory("convolve", (2, 10, 10, 10), (3, 3, 3), axes="QZYX")


@pytest.mark.parametrize("text, expected", [
    ("1GB", 10**9), ("1 GB", 10**9), ("512MiB", 512 * 2**20), ("2.5G", 2_500_000_000), ("100k", 100_000),
    ("3gib", 3 * 2**30), ("1e9", 10**9), ("4096", 4096), (4096, 4096), (np.int64(7), 7), (1.5e9, 1_500_000_000),
])
def test_parse_memory(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize("bad", ["lots", "1 GBs", "-1GB", "", 0, -5, True, None, [1], "nanGB", float("inf")])
def test_parse_memory_rejects(bad):
    with pytest.raises(ValueError, match="^memory_limit: ") as e:
        parse_memory(bad)
    assert "\n" not in str(e.value)


def test_available_memory_and_default_limit():
    avail = available_memory()
    assert 0 < avail <= psutil.virtual_memory().total
    assert abs(avail - psutil.virtual_memory().available) < 0.2 * psutil.virtual_memory().total or avail < \
        psutil.virtual_memory().available
    lim = default_memory_limit()
    assert 0 < lim < avail
    assert abs(lim - _memory.DEFAULT_FRACTION * available_memory()) < 0.05 * avail


@linux
def test_available_memory_follows_the_address_space_limit():
    code = ("import json, resource\n"
            "from fijidecon.deconvolve import _memory, available_memory\n"
            "resource.setrlimit(resource.RLIMIT_AS, (8 * 2**30, resource.RLIM_INFINITY))\n"
            "_memory.cap_malloc_arenas()\n"
            "reserve = _memory.thread_reserve()  # once the arenas are capped (under a limit)\n"
            "vms = _memory.vm_size()\n"
            "resource.setrlimit(resource.RLIMIT_AS, (vms + reserve + 300 * 2**20, resource.RLIM_INFINITY))\n"
            "print(json.dumps([available_memory(), reserve]))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    room, reserve = json.loads(p.stdout)  # the limit less the address space mapped and the threads' reserve
    assert 250 * 2**20 < room <= 300 * 2**20
    cores = os.cpu_count() or 1
    # stacks of 3 threads per core and 8 more (8 MiB each by default), one malloc arena beside the main one
    assert (3 * cores + 8) * 2**20 < reserve <= (3 * cores + 8) * 64 * 2**20 + 64 * 2**20


def test_cgroup_limit_files(tmp_path):
    assert _memory._cgroup_limit(str(tmp_path)) is None  # no cgroup files
    (tmp_path / "memory.max").write_text("max\n")
    assert _memory._cgroup_limit(str(tmp_path)) is None  # v2 without a limit
    (tmp_path / "memory.max").write_text(f"{4 * 2**30}\n")
    (tmp_path / "memory.current").write_text(f"{2**30}\n")
    assert _memory._cgroup_limit(str(tmp_path)) == 3 * 2**30
    v1 = tmp_path / "v1"
    (v1 / "memory").mkdir(parents=True)
    (v1 / "memory" / "memory.limit_in_bytes").write_text(f"{2**31}\n")
    (v1 / "memory" / "memory.usage_in_bytes").write_text(f"{2**30}\n")
    assert _memory._cgroup_limit(str(v1)) == 2**30
    (v1 / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1's "no limit"
    assert _memory._cgroup_limit(str(v1)) is None
