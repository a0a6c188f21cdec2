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


def pytest_collection_modifyitems(config, items):
    """Lava runs in its own Python 3.10 environment (.venv-lava, or $EVENTPROP_LAVA_PYTHON); without
    one, the Lava tests are skipped, and the reason (how to enable them) is shown in the summary."""
    if not any("lava" in item.keywords for item in items):
        return
    from netx_export.lava_env import lava_unavailable_reason

    reason = lava_unavailable_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "lava" in item.keywords:
            item.add_marker(skip)


def run_in_lava(code: str, *args: str) -> str:
    """Run Python code in Lava's environment (for tests that load files with lava-dl itself); its stdout."""
    from netx_export.lava_env import run_in_lava as run

    return run(code, *args)
