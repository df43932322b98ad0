"""How much Java heap an ImageJ command needs, checked before the command starts.

A command run from ImageJ copies its input windows into numpy (Python memory, counted by
:func:`fijidecon.deconvolve.estimate_memory` and the ``memory`` field's budget) and puts its
result back into a new float32 ``ImagePlus`` (Java heap).  Iterative Deconvolve 3D with
*Show iteration* (outside batch mode) also shows the estimate on its padded FFT grid after
each iteration, a second ``ImagePlus`` as big as that grid, built before the previous one is
dropped.  When the Java heap cannot hold that, the JVM spends its time in garbage collection
and ends with an ``OutOfMemoryError`` in some thread, so :func:`check_command` refuses the run
first, with one line::

    Diffraction PSF 3D: not enough memory: its result (256x256x256 float32) needs 64 MB of
    Java heap, heap 12 MB (3.3 MB free); give ImageJ more memory ...

Sizes are in MiB, written "MB" as ImageJ writes them (Edit > Options > Memory & Threads).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from fijidecon.fiji import runtime

__all__ = ["JavaHeapError", "command_needs", "check_command", "check_bytes", "margin"]

MiB = 1 << 20


class JavaHeapError(MemoryError):
    """A command's images do not fit ImageJ's Java heap (the message gives both figures and the remedy)."""


def margin(max_heap: int) -> int:
    """Bytes kept free for ImageJ itself (windows, Log, status bar, garbage not yet collected):
    5 % of the maximum heap, at least 2 MiB and at most 64 MiB."""
    return int(min(max(2 * MiB, 0.05 * max_heap), 64 * MiB))


def _shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(int(n)) for n in reversed(tuple(shape)))  # ImageJ's order: width x height x depth


def command_needs(cmd: Any, values: Mapping[str, Any], image_shapes: Mapping[str, Sequence[int]],
                  show_iterations: bool = False) -> list[tuple[str, int]]:
    """What a command allocates on the Java heap, as ``(what, bytes)`` pairs.

    Parameters
    ----------
    cmd : fijidecon.commands.Command
        The command.
    values : mapping
        Its resolved parameter values (``width``, ``height``, ``depth`` of a PSF command).
    image_shapes : mapping
        Shape of each input image (numpy order, e.g. (z, y, x) or (c, z, y, x)), by parameter name.
    show_iterations : bool
        Iterative Deconvolve 3D will show the estimate after each iteration.

    Returns
    -------
    list of (str, int)
        The result ``ImagePlus`` (float32, the input image's shape, or width x height x depth
        for a PSF), and the iteration window: two padded grids (float32).  Empty when the
        result's size is not known before the run (PSF from Beads with an automatic size).
    """
    needs: list[tuple[str, int]] = []
    first = next(iter(image_shapes.values()), None)
    size = [values.get(n) for n in ("depth", "height", "width")]
    if all(isinstance(n, (int, np.integer)) and n > 0 for n in size):
        shape: tuple[int, ...] | None = tuple(int(n) for n in size)
    elif first is not None and cmd.id != "psf-from-beads":
        shape = tuple(int(n) for n in first)
    else:
        shape = None
    if shape is not None:
        needs.append((f"its result ({_shape_text(shape)} float32)", int(np.prod(shape, dtype=np.int64)) * 4))
    if show_iterations and cmd.id == "iterative-deconvolve-3d" and first is not None and "psf" in image_shapes:
        from fijidecon.deconvolve._memory import _id3d_shape

        grid = _id3d_shape(tuple(first)[-3:], tuple(image_shapes["psf"])[-3:], values)
        needs.append((f"Show iteration ({_shape_text(grid)} padded grid, twice)",
                      2 * int(np.prod(grid, dtype=np.int64)) * 4))
    return needs


def check_bytes(need: int, label: str, what: str) -> None:
    """Refuse ``need`` bytes of new Java objects when the heap cannot take them.

    The heap's free room is measured (after a garbage collection when it looks too small)
    and must hold ``need`` plus :func:`margin`.

    Raises
    ------
    JavaHeapError
        "not enough memory: <what> needs N MB of Java heap, heap M MB (F MB free); ..." (``label``,
        the command's name, is not repeated: ImageJ's message starts with it).
    """
    if need <= 0 or not runtime.is_started():
        return
    free, mx = runtime.java_heap(collect=False)
    if need + margin(mx) > free:
        free, mx = runtime.java_heap(collect=True)
    if need + margin(mx) > free:
        raise JavaHeapError(
            f"not enough memory: {what} needs {_mb(need)} MB of Java heap, heap {_mb(mx)} MB "
            f"({_mb(free)} MB free); give ImageJ more memory (Edit > Options > Memory & Threads, "
            "fijidecon macro --heap, $FIJIDECON_HEAP), close images, or use a smaller image")


def check_command(cmd: Any, label: str, values: Mapping[str, Any], image_shapes: Mapping[str, Sequence[int]],
                  show_iterations: bool = False) -> None:
    """Refuse a command whose largest Java heap need (:func:`command_needs`; the iteration
    window is closed before the result is made) does not fit.

    Raises
    ------
    JavaHeapError
        See :func:`check_bytes`.
    """
    needs = command_needs(cmd, values, image_shapes, show_iterations)
    if needs:
        what, need = max(needs, key=lambda n: n[1])
        check_bytes(need, label, what)


def _mb(n: int) -> str:
    return f"{n / MiB:,.0f}" if n >= 10 * MiB else f"{n / MiB:.1f}"
