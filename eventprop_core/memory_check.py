"""Refuse allocations that cannot fit before making them: an estimate, what it is for, and the
option that changes it, instead of a MemoryError (or the OOM killer) minutes later."""
from __future__ import annotations

import os

from .errors import ConfigError

# One sample's dense input (timesteps x channels float32) is the smallest block every simulator
# builds; evaluation batches hold 64 of them, and the float model keeps several such tensors.
SAMPLE_COPIES = 8


def available_bytes() -> int:
    """MemAvailable from /proc/meminfo, else physical memory (0 if unknown)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return 0


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def require_memory(nbytes: int, what: str, fix: str) -> None:
    avail = available_bytes()
    if avail and nbytes > avail:
        raise ConfigError(f"{what}: needs about {human_bytes(nbytes)} of memory, but {human_bytes(avail)} is "
                          f"available; {fix}")


def check_memory_for_timesteps(timesteps: int, n_channels: int, what: str, fix: str) -> None:
    """A few samples of dense input (timesteps x channels float32) must fit in memory."""
    require_memory(int(timesteps) * int(n_channels) * 4 * SAMPLE_COPIES, what, fix)
