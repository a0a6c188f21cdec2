"""The avg_var_exp_weight readout: VAvg = sum_k exp(-k dt / (T dt)) V_k / T."""
from __future__ import annotations

import numpy as np

from eventprop_core.params import ModelParams


def readout_weights(p: ModelParams, steps: int | None = None) -> np.ndarray:
    """Per-step weight exp(-t/(T dt))/T with t = k dt, float64, k = 0..T-1."""
    T = p.timesteps
    k = np.arange(T if steps is None else steps, dtype=np.float64)
    return np.exp(-(k * p.dt) / (T * p.dt)) / T
