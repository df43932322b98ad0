"""Every user-facing command, described once (see :mod:`fijidecon.commands._model`).

``all_commands()`` collects the descriptions from the modules listed in ``_MODULES``;
the CLI, the ImageJ bridge and the ``fiji_scripts/`` files are all generated from them.
"""

from __future__ import annotations

import importlib

from ._model import Command, Param, macro_key

_MODULES = ("dougherty", "modern_psf", "modern_deconv")


def all_commands() -> tuple[Command, ...]:
    out: list[Command] = []
    for name in _MODULES:
        try:
            mod = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:  # a module not written yet
            if exc.name == f"{__name__}.{name}":
                continue
            raise
        out.extend(mod.COMMANDS)
    return tuple(out)


def get_command(id_or_title: str) -> Command:
    for c in all_commands():
        if id_or_title in (c.id, c.title):
            return c
    raise KeyError(f"no command {id_or_title!r}")


__all__ = ["Command", "Param", "macro_key", "all_commands", "get_command"]
