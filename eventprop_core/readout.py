"""The avg_var_exp_weight readout's per-step weights, the one definition that the float model, the
Eventprop engines and the fixed-point emulator all use (docs/float_model.md, docs/conventions.md)."""
from __future__ import annotations

import numpy as np


def readout_weights(timesteps: int, steps: int | None = None) -> np.ndarray:
    """exp(-t/(T dt))/T for model step k = 0..steps-1 with t = k dt (dt cancels), float64, T = timesteps."""
    T = int(timesteps)
    k = np.arange(T if steps is None else int(steps), dtype=np.float64)
    return np.exp(-k / T) / T
