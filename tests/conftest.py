import re
from pathlib import Path

import numpy as np
import pytest

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
