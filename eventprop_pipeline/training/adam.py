"""Adam (Kingma & Ba) in numpy, with its state as plain arrays so that a checkpoint stores it as data."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class AdamState:
    m: dict[str, np.ndarray]     # first moment per weight matrix (float64)
    v: dict[str, np.ndarray]     # second moment per weight matrix (float64)
    step: int = 0

    @classmethod
    def zeros_like(cls, weights: dict[str, np.ndarray]) -> "AdamState":
        return cls({k: np.zeros(w.shape, np.float64) for k, w in weights.items()},
                   {k: np.zeros(w.shape, np.float64) for k, w in weights.items()}, 0)


def adam_step(weights: dict[str, np.ndarray], grads: dict[str, np.ndarray], state: AdamState, lr: float, *,
              beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
    """One bias-corrected Adam step, in place: w -= lr * m_hat / (sqrt(v_hat) + eps).

    Moments are kept in float64; weights keep their own dtype (float32 in a Network).
    """
    state.step += 1
    first_scale = 1.0 / (1.0 - beta1 ** state.step)
    second_scale = 1.0 / (1.0 - beta2 ** state.step)
    for name, w in weights.items():
        g = np.asarray(grads[name], dtype=np.float64)
        if g.shape != w.shape:
            raise ValueError(f"gradient {name} has shape {g.shape}, weights {w.shape}")
        m, v = state.m[name], state.v[name]
        m *= beta1
        m += (1.0 - beta1) * g
        v *= beta2
        v += (1.0 - beta2) * g * g
        update = lr * (m * first_scale) / (np.sqrt(v * second_scale) + eps)
        w -= update.astype(w.dtype)
