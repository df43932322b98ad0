import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Hypothesis profiles for tests/test_fuzz.py: "ci" (the default: 30 examples per function,
# derandomized so a run is repeatable) and "thorough" (600 per function, random), chosen
# with `pytest --hypothesis-profile thorough`.  No deadline: the first call of a function
# pays for imports and FFT plans.
_RELAXED = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
            HealthCheck.function_scoped_fixture]
settings.register_profile("ci", max_examples=30, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=_RELAXED)
settings.register_profile("thorough", max_examples=600, deadline=None, print_blob=True,
                          suppress_health_check=_RELAXED)
settings.load_profile("ci")

DATA = Path(__file__).parent / "data"
SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


def load(name: str) -> np.ndarray:
    return np.load(DATA / name)


def ij_logs() -> dict[str, list[float]]:
    """The per-iteration figures the original logged, keyed by run (R1, R2, R7)."""
    text = (DATA / "ijlog_R1_R2_R7.txt").read_text()
    out = {}
    for block in text.split("===")[1:]:
        name = block.split()[0].split("_")[0]
        out[name] = [float(x) for x in re.findall(r"^\s*(-?\d+\.\d+(?:[eE][-+]?\d+)?)\s*$", block, re.M)]
    return out
