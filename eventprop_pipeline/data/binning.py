"""Explicit time binning: bin k holds spike times t with k*dt <= t < (k+1)*dt, starting at 0."""
from __future__ import annotations

import numpy as np


def time_to_step(times_s: np.ndarray, dt_ms: float) -> np.ndarray:
    """Bin index of each spike time (seconds, any float dtype) for a bin width of dt_ms.

    The value stored in the file is taken as exact (float16 times are widened, not re-rounded);
    the floor is corrected so that a time exactly on an edge k*dt lands in bin k.
    """
    t_ms = np.asarray(times_s, dtype=np.float64) * 1000.0
    k = np.floor(t_ms / dt_ms)
    k += (k + 1) * dt_ms <= t_ms
    k -= k * dt_ms > t_ms
    return k.astype(np.int64)
