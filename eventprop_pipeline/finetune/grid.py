"""The quantization grid fine-tuning trains on: fixed steps, decays and threshold; shadow weights.

The shadow weights are float64, in the network's (pre, post) orientation and in units of the layer's
step (W (1 - alpha) IScale / q), so that the fixed-point weight is simply clip(rint(shadow)) and one
learning rate suits every layer (it is a fraction of a quantization level per Adam step).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from netx_export.fixed_point import FixedPointNetwork
from netx_export.limits import weight_range

from eventprop_core.network import WEIGHT_NAMES, Network

LAYER_OF = {"input_hidden": "hidden", "hidden_hidden": "hidden", "hidden_output": "readout"}


@dataclass
class Grid:
    template: FixedPointNetwork      # the exported network: its steps, decays and threshold stay fixed
    weight_scale: float              # (1 - alpha) IScale: float weight W -> scaled weight

    @property
    def bits(self) -> int:
        return int(self.template.hidden.weight_bits)

    def step(self, name: str) -> float:
        layer = self.template.hidden if LAYER_OF[name] == "hidden" else self.template.readout
        return float(layer.step)

    def shadow_of(self, net: Network) -> dict[str, np.ndarray]:
        """Float weights in grid units (not rounded): rint of them is what quantize() stored."""
        return {k: np.asarray(net.weights[k], np.float64) * self.weight_scale / self.step(k) for k in WEIGHT_NAMES}

    def shadow_of_fixed(self, fx: FixedPointNetwork) -> dict[str, np.ndarray]:
        """Grid units of a fixed-point network's integer weights (exactly on the grid)."""
        return {"input_hidden": fx.hidden.weight.T.astype(np.float64),
                "hidden_hidden": fx.hidden.weight_rec.T.astype(np.float64),
                "hidden_output": fx.readout.weight.T.astype(np.float64)}

    def clamp(self, shadow: dict[str, np.ndarray]) -> None:
        """Keep the shadow inside the representable range (saturated weights would drift without bound)."""
        lo, hi = weight_range(self.bits)
        for w in shadow.values():
            np.clip(w, lo, hi, out=w)

    def integers(self, shadow: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        lo, hi = weight_range(self.bits)
        return {k: np.clip(np.rint(w), lo, hi).astype(np.int64) for k, w in shadow.items()}

    def fixed(self, shadow: dict[str, np.ndarray], metadata: dict | None = None) -> FixedPointNetwork:
        """The fixed-point network of the shadow weights: the template with re-quantized weights."""
        ints = self.integers(shadow)
        fx = copy.deepcopy(self.template)
        fx.hidden.weight = np.ascontiguousarray(ints["input_hidden"].T)
        fx.hidden.weight_rec = np.ascontiguousarray(ints["hidden_hidden"].T)
        fx.readout.weight = np.ascontiguousarray(ints["hidden_output"].T)
        if metadata is not None:
            fx.metadata = metadata
        return fx

    def effective_weights(self, fx: FixedPointNetwork) -> dict[str, np.ndarray]:
        """Float weights (pre, post) the fixed-point network realises: q w_int / ((1 - alpha) IScale)."""
        ints = self.shadow_of_fixed(fx)
        return {k: ints[k] * (self.step(k) / self.weight_scale) for k in WEIGHT_NAMES}
