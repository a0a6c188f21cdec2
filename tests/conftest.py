import os
from pathlib import Path

import pytest

DATA_DIR = Path(__file__).parent / "data"
FIXTURE_DIR = DATA_DIR / "mlgenn_hidden256"

# Keep tests reproducible and light on a 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture
def fixture_dir() -> Path:
    return FIXTURE_DIR
