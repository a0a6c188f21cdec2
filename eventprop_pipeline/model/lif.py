"""Neuron dynamics as pure step functions over small typed states (mlGeNN semantics, scale_i=True).

Each function takes the state and this step's synaptic input and returns the new state; nothing is
mutated. They define the float reference model (`model.simulate`), against which the Eventprop
engines (numba and PyTorch, written for speed) are tested.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from eventprop_core.params import ModelParams


class Constants(NamedTuple):
    alpha: float
    beta: float
    i_scale: float
    v_thresh: float

    @classmethod
    def of(cls, p: ModelParams) -> "Constants":
        return cls(p.alpha, p.beta, p.i_scale, p.v_thresh)


class LIFState(NamedTuple):
    """Hidden layer: membrane voltage and synaptic input (the sum over incoming connections)."""
    v: torch.Tensor
    isyn: torch.Tensor


class LIState(NamedTuple):
    """Readout: leaky integrator voltage, synaptic input, and the running readout average."""
    v: torch.Tensor
    isyn: torch.Tensor
    v_avg: torch.Tensor


def lif_step(state: LIFState, syn_in: torch.Tensor, c: Constants) -> tuple[LIFState, torch.Tensor]:
    """One step: inSyn += input; I = IScale inSyn; inSyn *= beta; V = aV + (1-a)I; spike if V >= th."""
    isyn = state.isyn + syn_in
    current = c.i_scale * isyn
    v = c.alpha * state.v + (1.0 - c.alpha) * current
    spikes = v >= c.v_thresh
    v = torch.where(spikes, torch.zeros_like(v), v)
    return LIFState(v, isyn * c.beta), spikes.to(v.dtype)


def li_step(state: LIState, syn_in: torch.Tensor, c: Constants, readout_weight: float) -> LIState:
    """Readout step; v_avg accumulates readout_weight * V (avg_var_exp_weight: exp(-t/T)/T)."""
    isyn = state.isyn + syn_in
    v = c.alpha * state.v + (1.0 - c.alpha) * (c.i_scale * isyn)
    return LIState(v, isyn * c.beta, state.v_avg + readout_weight * v.to(state.v_avg.dtype))
