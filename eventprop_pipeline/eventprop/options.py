"""Loss options and the result of one batch (the contract the trainer codes against)."""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from eventprop_core.errors import ConfigError

LOSSES = ("avg_var_exp_weight", "per_timestep")


@dataclass(frozen=True)
class LossOptions:
    """What is optimised.

    loss: "avg_var_exp_weight" (softmax cross-entropy on VAvg once per trial, mlGeNN's default for SHD)
      or "per_timestep" (cross-entropy on the readout V of every step, averaged uniformly over the T
      steps: mlGeNN's per-timestep SparseCategoricalCrossentropy has no time weighting).
    reg_*: mlGeNN's spike-count regulariser on the hidden layer. With N the spike count of a hidden
      neuron summed over the batch of B samples, every spike of that neuron subtracts
      lambda (N - nu B) / B^2 from mlGeNN's LambdaV (lambda_upper when N > nu_upper B, else lambda_lower).
      reg_nu_lower=None is mlGeNN's rule (the lower branch also pulls towards nu_upper); a number
      instead gives a dead zone: the lower branch acts only while N < nu_lower B, towards nu_lower.
    """

    loss: str = "avg_var_exp_weight"
    reg_lambda_upper: float = 2.5e-10
    reg_lambda_lower: float = 0.0
    reg_nu_upper: float = 14.0
    reg_nu_lower: float | None = None

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ConfigError(f"loss {self.loss!r} is not supported; choose one of {', '.join(LOSSES)}")
        for name in ("reg_lambda_upper", "reg_lambda_lower", "reg_nu_upper"):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Real) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.reg_nu_lower is not None and not (isinstance(self.reg_nu_lower, numbers.Real)
                                                  and math.isfinite(self.reg_nu_lower) and self.reg_nu_lower >= 0):
            raise ConfigError(f"reg_nu_lower must be None or a finite number >= 0, got {self.reg_nu_lower!r}")

    @property
    def regularised(self) -> bool:
        return self.reg_lambda_upper != 0.0 or self.reg_lambda_lower != 0.0


@dataclass
class BatchResult:
    loss: float                        # mean cross-entropy over the batch (the optimised data term)
    grads: dict[str, np.ndarray]       # input_hidden, hidden_hidden, hidden_output; float32, net.weights' shapes
    readout: np.ndarray                # (B, O) float32: VAvg (avg_var_exp_weight readout)
    hidden_spike_counts: np.ndarray    # (B, H) int64
    reg_loss: float = 0.0              # nominal regulariser value, see regulariser.py (not part of `loss`)
    extras: dict = field(default_factory=dict)

    @property
    def prediction(self) -> np.ndarray:
        return np.argmax(self.readout, axis=1)


@dataclass(frozen=True)
class ShardSpec:
    """One process's part of a data-parallel global batch (training/distributed.py builds it).

    global_size: samples in the whole global batch (loss normalisation and regulariser);
    n_chunks: gradient accumulators; chunk q sums the local samples q, q + n_chunks, ... in order;
    reduce_counts: maps this part's per-neuron hidden spike counts (H,) to the global batch's.
    With a ShardSpec the engine returns float64 per-chunk gradients (n_chunks, rows, cols), unsummed,
    and the readout VAvg in float64 as extras["v_avg"].
    """

    global_size: int
    n_chunks: int
    reduce_counts: Callable[[np.ndarray], np.ndarray]
