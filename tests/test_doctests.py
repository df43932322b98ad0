"""The Examples sections of the core's docstrings run and print what they say."""

import doctest
import importlib

import pytest

MODULES = [
    "fijidecon.psf.diffraction",
    "fijidecon.psf.idealized",
    "fijidecon.psf.widefield",
    "fijidecon.psf.beads",
    "fijidecon.deconvolve.iterative3d",
    "fijidecon.deconvolve.convolve",
    "fijidecon.deconvolve.wiener",
    "fijidecon.deconvolve.richardson_lucy",
    "fijidecon.io",
    "fijidecon.commands._model",
    "fijidecon.commands.run",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(name)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
