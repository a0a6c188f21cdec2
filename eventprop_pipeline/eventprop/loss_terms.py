"""Cross-entropy losses and their derivatives with respect to the readout (numpy, float64)."""
from __future__ import annotations

import numpy as np


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    z = x - x.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-row softmax cross-entropy of logits (..., O) against integer labels (...)."""
    z = logits - logits.max(axis=-1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=-1))
    picked = np.take_along_axis(z, labels[..., None], axis=-1)[..., 0]
    return log_norm - picked


def avg_readout_error(v_avg: np.ndarray, labels: np.ndarray, batch_size: int | None = None
                      ) -> tuple[float, np.ndarray]:
    """Mean CE on VAvg (B, O) and dL/dVAvg = (softmax - onehot) / batch_size (default B; a data-parallel
    shard passes the global batch's size)."""
    B, O = v_avg.shape
    loss = float(cross_entropy(v_avg, labels).mean())
    grad = softmax(v_avg)
    grad[np.arange(B), labels] -= 1.0
    return loss, grad / (B if batch_size is None else batch_size)


def per_timestep_error(trace: np.ndarray, labels: np.ndarray, batch_size: int | None = None
                       ) -> tuple[float, np.ndarray]:
    """Mean over batch and steps of CE on the readout V of each step (B, T, O); dL/dV_k."""
    B, T, O = trace.shape
    n = B if batch_size is None else batch_size
    lab = np.broadcast_to(labels[:, None], (B, T))
    loss = float(cross_entropy(trace, lab).mean())
    grad = softmax(trace)
    grad[np.arange(B)[:, None], np.arange(T)[None, :], lab] -= 1.0
    return loss, grad / (n * T)
