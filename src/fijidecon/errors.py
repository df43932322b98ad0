"""The package's error types: every failure a user can cause is one of these.

Each is also the matching built-in type, so ``except ValueError`` keeps working::

    FijideconError
    ├── InputError(ValueError)       a bad value: names the parameter ("iterations: expected ...")
    ├── InputTypeError(TypeError)    a value of the wrong type
    ├── NumericalError(ValueError)   a result that would not be finite (names the likely cause)
    ├── ResourceError(MemoryError)   not enough memory for the run (estimate, budget, remedy)
    └── OutputExistsError(FileExistsError)  the output file exists and overwriting was not asked for

File problems are ``OSError`` subclasses raised by :mod:`fijidecon.io`.  The CLI prints
any of these as one line and exits 2 (``--debug`` shows the traceback), or 3 for
``OutputExistsError`` (nothing was done: a batch can tell "already done" from "failed").
"""

from __future__ import annotations

__all__ = ["FijideconError", "InputError", "InputTypeError", "NumericalError", "ResourceError", "OutputExistsError"]


class FijideconError(Exception):
    """Base class of the errors a user can cause."""


class InputError(FijideconError, ValueError):
    """A parameter has a bad value (the message starts with its name)."""


class InputTypeError(FijideconError, TypeError):
    """A parameter has the wrong type (the message starts with its name)."""


class NumericalError(FijideconError, ValueError):
    """A computation would give NaN or infinite values (the message names the likely cause)."""


class ResourceError(FijideconError, MemoryError):
    """The run does not fit the memory budget (the message gives the estimate and the remedy)."""


class OutputExistsError(FijideconError, FileExistsError):
    """The output (or its sidecar) exists and ``overwrite`` was not given; nothing was done."""
