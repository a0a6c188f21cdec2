import os
from pathlib import Path

import pytest

DATA_DIR = Path(__file__).parent / "data"
FIXTURE_DIR = DATA_DIR / "mlgenn_hidden256"

# Keep tests reproducible and light on a 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "2")

# numba.cuda is numba's CUDA simulator in test sessions, so the gpu_sim tests run the fused GPU
# kernels on any machine (nothing else here uses numba.cuda; numba's CPU kernels are unaffected).
# EVENTPROP_REAL_CUDA=1 keeps the real CUDA target for the gpu tests (benchmarks/gpu_check.sh).
if os.environ.get("EVENTPROP_REAL_CUDA") != "1":
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    import sys
    if "numba" in sys.modules and "numba.cuda" not in sys.modules:
        from numba.core import config as _numba_config
        _numba_config.reload_config()


@pytest.fixture
def fixture_dir() -> Path:
    return FIXTURE_DIR


def _lava_available() -> bool:
    # Package metadata only: importing Lava here would fix multiprocessing's start method early.
    from importlib import metadata
    try:
        metadata.version("lava-nc")
        metadata.version("lava-dl")
    except metadata.PackageNotFoundError:
        return False
    return True


def pytest_collection_modifyitems(config, items):
    """Without the lava extra (e.g. on Python >= 3.11) Lava tests are skipped and reported as such."""
    if _lava_available():
        return
    skip = pytest.mark.skip(reason="Lava is not installed (pip install '.[lava]' on Python 3.10)")
    for item in items:
        if "lava" in item.keywords:
            item.add_marker(skip)
