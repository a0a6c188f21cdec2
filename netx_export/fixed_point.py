"""The fixed-point network: what the quantizer produces, the HDF5 writer stores, the reader returns,
and the emulator and Lava runner execute. Numpy only (no torch, no Lava).

Lava's CUBA semantics per step (docs/fixed_point.md), decays in 1/4096 units:
  u = rtz(u * (4096 - i_decay) / 4096) + 64 * (W @ s_pre[t-1])    wraps at +-2^23
  v = rtz(v * (4096 - v_decay) / 4096) + u + 64 * bias             saturates at +-(2^23 - 1)
  spike = v > 64 * vth_mant, then v = 0
Weights are stored in Lava's (post, pre) orientation, as NetX expects.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DECAY_UNIT = 4096        # decays are in 1/4096
STATE_SCALE = 64         # weights, bias and threshold are shifted left by 6 bits in the neuron
U_WRAP_BITS = 24         # u wraps in 24-bit two's complement
U_LIMIT = 2**(U_WRAP_BITS - 1)  # Lava's max_uv_val: u wraps when it leaves (-2^23, 2^23]
V_MAX = 2**23 - 1        # v saturates at +-V_MAX
VTH_MANT_MAX = 2**17 - 1  # 17-bit threshold mantissa
NON_SPIKING_VTH = 2**17   # a readout threshold that can never be crossed (v <= 2^23 - 1 < 64 * 2^17)
MAX_WEIGHT_BITS = 8


@dataclass
class FixedPointLayer:
    """One NetX layer after the input: `dense_rec` (hidden, recurrent) or `dense` (readout)."""

    kind: str                          # "dense_rec" or "dense"
    weight: np.ndarray                 # int64 (n_out, n_in)
    i_decay: int                       # 0..4096
    v_decay: int                       # 0..4096
    vth_mant: int                      # 0..2^17 (2^17 only for a non-spiking readout)
    weight_rec: np.ndarray | None = None   # int64 (n, n), dense_rec only; [post, pre]
    bias: np.ndarray | None = None     # int64 (n,) or None
    step: float = 1.0                  # float value of one weight unit (q): w_float ~ step * w_int
    weight_bits: int = 8

    @property
    def size(self) -> int:
        return self.weight.shape[0]

    @property
    def spiking(self) -> bool:
        return self.vth_mant < NON_SPIKING_VTH


@dataclass
class FixedPointNetwork:
    n_input: int
    hidden: FixedPointLayer
    readout: FixedPointLayer
    timesteps: int = 1000
    dt: float = 1.0
    metadata: dict = field(default_factory=dict)   # float params, provenance, quantization choices

    @property
    def layers(self) -> list[FixedPointLayer]:
        return [self.hidden, self.readout]
