"""The avg_var_exp_weight readout: VAvg = sum_k exp(-k dt / (T dt)) V_k / T (weights in eventprop_core)."""
from __future__ import annotations

import numpy as np

from eventprop_core.params import ModelParams
from eventprop_core.readout import readout_weights as _weights


def readout_weights(p: ModelParams, steps: int | None = None) -> np.ndarray:
    """Per-step weight exp(-t/(T dt))/T with t = k dt, float64, k = 0..steps-1 (default T)."""
    return _weights(p.timesteps, steps)
