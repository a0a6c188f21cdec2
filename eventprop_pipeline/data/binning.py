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


class CropWarning(UserWarning):
    """Spikes fall at or after timesteps * dt and are dropped by the binning."""


def crop_message(name: str, n_cropped: int, n_spikes: int, timesteps: int, dt_ms: float, steps_needed: int) -> str:
    """One line naming the file, the share of spikes dropped and the --timesteps that keeps them all."""
    return (f"{name}: T = {timesteps} steps of {dt_ms:g} ms crops {n_cropped} of {n_spikes} spikes "
            f"({100 * n_cropped / max(n_spikes, 1):.1f} %, those at or after {timesteps * dt_ms:g} ms); "
            f"--timesteps {steps_needed} keeps them all")
