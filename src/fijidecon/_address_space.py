"""The process's address-space limit (``ulimit -v``, ``RLIMIT_AS``) and glibc's malloc arenas under it.

Light (no numpy): the console command caps the arenas before it imports anything else
(:func:`cap_malloc_arenas`), and :mod:`fijidecon.deconvolve._memory` reads the limit for its budget.
"""

from __future__ import annotations

import os

MiB = 1 << 20
#: Malloc arenas a process under an address-space limit keeps (:func:`cap_malloc_arenas`); each arena but
#: the main one reserves :data:`ARENA_BYTES` of address space (glibc's ``HEAP_MAX_SIZE`` on 64-bit systems).
ARENA_MAX, ARENA_BYTES = 2, 64 * MiB
_M_ARENA_MAX = -8  # mallopt's M_ARENA_MAX
_CAPPED = [False]


def address_space_limit() -> int | None:
    """The process's address-space limit (``RLIMIT_AS``, ``ulimit -v``) in bytes, or None when there is none."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (ImportError, ValueError, OSError, AttributeError):
        return None
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    return int(soft)


def cap_malloc_arenas() -> bool:
    """Under an address-space limit, cap glibc's malloc arenas at :data:`ARENA_MAX` for this process
    (``mallopt``) and its children (``MALLOC_ARENA_MAX`` in the environment: Dask's worker processes).

    Each thread that allocates may get an arena of its own, and each reserves 64 MiB of address space
    (up to 8 per core by default), which ``ulimit -v`` counts as if it were used.  Nothing is done
    without a limit.  Returns whether the cap is set.
    """
    if address_space_limit() is None:
        return False
    os.environ.setdefault("MALLOC_ARENA_MAX", str(ARENA_MAX))
    if not _CAPPED[0]:
        try:
            import ctypes

            _CAPPED[0] = ctypes.CDLL(None).mallopt(_M_ARENA_MAX, ARENA_MAX) == 1  # the process's libc
        except (OSError, AttributeError, TypeError):
            return False
    return _CAPPED[0]


def arenas_capped() -> bool:
    """Whether :func:`cap_malloc_arenas` has capped this process's arenas."""
    return _CAPPED[0]
