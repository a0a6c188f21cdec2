"""Loss and gradients of one batch with the fixed-point network in the loop (docs/finetune.md).

Forward: `fixed_forward.run_fixed` (the emulator's integer dynamics). Backward: the CPU engine's
Eventprop kernel (`eventprop.numba_kernels.backward_batch`), unchanged, run from the fixed-point
spike record with the float values the fixed-point network realises: weights q w_int / c, decays
(4096 - decay) / 4096, threshold q (vThMant + 1/64). Gradients are then taken with respect to the
shadow weights in grid units (straight-through: d w_int / d shadow = 1).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netx_export.fixed_point import DECAY_UNIT, STATE_SCALE, FixedPointNetwork

from ..eventprop import numba_kernels as K
from ..eventprop.adjoint_units import jump_ratio
from ..eventprop import regulariser
from ..eventprop.cpu_engine import GRADIENT_CHUNKS
from ..eventprop.loss_terms import avg_readout_error
from ..eventprop.options import LossOptions
from ..model.readout import readout_weights
from eventprop_core.params import ModelParams
from .fixed_forward import run_fixed
from .grid import Grid


@dataclass
class FixedBatch:
    loss: float
    grads: dict[str, np.ndarray]     # dL / d shadow (grid units), (pre, post)
    score: np.ndarray                # (B, O): the emulator's readout score
    counts: np.ndarray               # (B, H) hidden spikes


def fixed_point_batch(grid: Grid, fx: FixedPointNetwork, params: ModelParams, data, indices, labels,
                      options: LossOptions = LossOptions()) -> FixedBatch:
    p = params
    T = int(data.timesteps)
    fw = run_fixed(fx, data, indices, p.i_scale, p.alpha)
    B = len(indices)
    loss, err_coef = avg_readout_error(fw.score, np.asarray(labels, np.int64))
    w = grid.effective_weights(fx)
    H, O = fx.hidden.size, fx.readout.size
    alpha = (DECAY_UNIT - fx.hidden.v_decay) / DECAY_UNIT
    beta = (DECAY_UNIT - fx.hidden.i_decay) / DECAY_UNIT
    v_th = fx.hidden.step * (fx.hidden.vth_mant + 1.0 / STATE_SCALE)
    reg_jump = regulariser.adjoint_jumps(fw.counts.sum(axis=0), B, options, p)
    n_chunks = max(1, min(B, GRADIENT_CHUNKS))
    g = {k: np.zeros((n_chunks,) + w[k].shape) for k in w}
    K.backward_batch_serial(fw.ev_steps, fw.ev_units, np.ones(len(fw.ev_steps)), fw.ev_offsets, T,
                            np.ascontiguousarray(w["hidden_hidden"], np.float32),
                            np.ascontiguousarray(w["hidden_output"], np.float32), alpha, beta,
                            grid.weight_scale, jump_ratio(p), v_th, fw.spk_neuron, fw.spk_den, fw.spk_off,
                            err_coef, readout_weights(p, T), np.zeros((B, 1, O)), False, reg_jump,
                            g["input_hidden"], g["hidden_hidden"], g["hidden_output"])
    grads = {k: v.sum(axis=0) * (grid.step(k) / grid.weight_scale) for k, v in g.items()}
    return FixedBatch(loss, grads, fw.score, fw.counts)
