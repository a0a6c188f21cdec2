"""The fixed-point network: what the quantizer produces, the HDF5 writer stores, the reader returns,
and the emulator and Lava runner execute. Numpy only (no torch, no Lava).

Lava's CUBA semantics per step (docs/fixed_point.md), decays in 1/4096 units:
  u = rtz(u * (4096 - i_decay) / 4096) + 64 * (W @ s_pre[t-1-delay])    wraps at +-2^23
  v = rtz(v * (4096 - v_decay) / 4096) + u + 64 * bias                   saturates at +-(2^23 - 1)
  spike = v > 64 * vth_mant, then v = 0
Weights are stored in Lava's (post, pre) orientation, as NetX expects. A network is an input of
`n_input` units followed by any number of `dense` / `dense_rec` layers (docs/netx_runtime.md); this
project's exporter writes two: a recurrent hidden layer and a readout that never spikes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DECAY_UNIT = 4096        # decays are in 1/4096
STATE_SCALE = 64         # weights, bias and threshold are shifted left by 6 bits in the neuron
U_WRAP_BITS = 24         # u wraps in 24-bit two's complement
U_LIMIT = 2**(U_WRAP_BITS - 1)  # Lava's max_uv_val: u wraps when it leaves (-2^23, 2^23]
V_MAX = 2**23 - 1        # v saturates at +-V_MAX
VTH_MANT_MAX = 2**17 - 1  # 17-bit threshold mantissa
NON_SPIKING_VTH = 2**17   # a readout threshold that can never be crossed (v <= 2^23 - 1 < 64 * 2^17)
MAX_WEIGHT_BITS = 8
MAX_DELAY = 62           # lava-dl's DelayDense holds delays 0..62 (Loihi 2: 6 bits)
READOUTS = ("v", "spikes")   # the score of the last layer: its voltage trace or its spike counts


@dataclass
class FixedPointLayer:
    """One NetX layer after the input: `dense` or `dense_rec` (dense plus recurrent weights).

    i_decay, v_decay and vth_mant are ints, or int64 arrays (n,) when the file gives one per neuron.
    delay, when present, is the full (n, n_pre) int64 matrix of synaptic delays (0..62 steps) that
    Lava's DelayDense runs; a `dense_rec` layer's recurrent synapse uses the same matrix (n_pre == n),
    as lava-dl's RecurrentDense does.
    """

    kind: str                          # "dense_rec" or "dense"
    weight: np.ndarray                 # int64 (n_out, n_in)
    i_decay: int | np.ndarray          # 0..4096
    v_decay: int | np.ndarray          # 0..4096
    vth_mant: int | np.ndarray         # 0..2^24 - 1 (>= 2^17: never spikes)
    weight_rec: np.ndarray | None = None   # int64 (n, n), dense_rec only; [post, pre]
    bias: np.ndarray | None = None     # int64 (n,) or None
    step: float = 1.0                  # float value of one weight unit (q): w_float ~ step * w_int
    weight_bits: int = 8
    delay: np.ndarray | None = None    # int64 (n, n_pre) or None (no delays: Lava's plain Dense)

    @property
    def size(self) -> int:
        return self.weight.shape[0]

    @property
    def spiking(self) -> bool:
        """Whether any neuron can spike (v saturates at 2^23 - 1, so vth_mant >= 2^17 never fires)."""
        return bool(np.any(np.asarray(self.vth_mant) < NON_SPIKING_VTH))


class FixedPointNetwork:
    """`n_input` inputs, then `layers` in order; the last layer is the readout.

    `FixedPointNetwork(n_input, hidden, readout, timesteps=..., dt=..., metadata=...)` builds this
    project's two-layer network; any number of layers may be given. `.hidden` is the layer before
    the readout (the last hidden layer) and `.readout` the last one.
    readout_from: "v" (score from the last layer's voltage) or "spikes" (from its spike counts).
    """

    def __init__(self, n_input: int, *layers: FixedPointLayer, timesteps: int = 1000, dt: float = 1.0,
                 metadata: dict | None = None, readout_from: str = "v", notes: list[str] | None = None) -> None:
        if not layers:
            raise ValueError("FixedPointNetwork needs at least one layer")
        self.n_input = n_input
        self.layers: list[FixedPointLayer] = list(layers)
        self.timesteps = timesteps
        self.dt = dt
        self.metadata = {} if metadata is None else metadata
        self.readout_from = readout_from
        self.notes: list[str] = [] if notes is None else notes    # what the reader ignored, in words

    @property
    def hidden(self) -> FixedPointLayer | None:
        return self.layers[-2] if len(self.layers) >= 2 else None

    @hidden.setter
    def hidden(self, layer: FixedPointLayer) -> None:
        if len(self.layers) < 2:
            raise ValueError("a one-layer network has no hidden layer")
        self.layers[-2] = layer

    @property
    def readout(self) -> FixedPointLayer:
        return self.layers[-1]

    @readout.setter
    def readout(self, layer: FixedPointLayer) -> None:
        self.layers[-1] = layer

    @property
    def is_eventprop_layout(self) -> bool:
        """This project's exporter's shape: dense_rec hidden -> dense readout, no delays."""
        return (len(self.layers) == 2 and self.layers[0].kind == "dense_rec" and self.layers[1].kind == "dense"
                and all(layer.delay is None for layer in self.layers))

    def __repr__(self) -> str:
        sizes = " -> ".join(f"{layer.size} {layer.kind}" for layer in self.layers)
        return f"FixedPointNetwork({self.n_input} -> {sizes}, T={self.timesteps}, dt={self.dt})"
