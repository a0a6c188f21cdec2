"""This model's neuron parameters <-> NIR's CubaLIF/CubaLI parameters (tau_syn, tau_mem, r, w_in).

This model (docs/float_model.md), per step of dt: J = beta J + W s (J is mlGeNN's inSyn),
V = alpha V + c J with alpha = exp(-dt/tau_mem), beta = exp(-dt/tau_syn), c = (1 - alpha) IScale.
NIR describes the continuous CubaLIF: tau_syn dI/dt = -I + w_in S, tau_mem dv/dt = (v_leak - v) + r I.
The file does not say how to discretise that, so a graph is written in one of two conventions:

* ``discrete`` (default): one forward-Euler step of length dt of the NIR equations, with a spike
  counting 1 in the step it occurs (how Norse and snnTorch step a NIR graph), is exactly one step of
  this model: tau' = dt / (1 - decay), r = tau_mem'/dt, w_in = c tau_syn'/dt. Then I = c J and v = V.
* ``continuous``: the ODE whose mlGeNN discretisation this model is: tau_* unchanged, r = 1,
  w_in = tau_syn (a spike of weight w makes I jump by w; Dirac spikes). A simulator that integrates
  the ODE accurately approaches this model as dt -> 0 but does not equal it at dt.

`nir_to_layer` reads either convention back as (tau_mem, tau_syn, dt in ms) and the factor by which
the layer's incoming weights must be multiplied so that this model reproduces the graph exactly (for
`discrete`) or as the same ODE (for `continuous`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from eventprop_core.params import ModelParams

CONVENTIONS = ("discrete", "continuous")
MS_PER_UNIT = {"s": 1000.0, "ms": 1.0}


@dataclass(frozen=True)
class NirNeuron:
    """The per-layer NIR parameters (NIR stores one value per neuron; this model shares them)."""
    tau_syn: float
    tau_mem: float
    r: float
    w_in: float


@dataclass(frozen=True)
class LayerMapping:
    """One imported layer in this model's terms."""
    tau_mem_ms: float
    tau_syn_ms: float
    dt_ms: float
    weight_gain: float   # multiply the layer's incoming weights by this


def check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown NIR convention {convention!r}; choose one of {', '.join(CONVENTIONS)}")


def layer_to_nir(p: ModelParams, convention: str, time_unit: str = "s") -> NirNeuron:
    """NIR parameters of a layer of this model (hidden and readout share them)."""
    check_convention(convention)
    unit = 1.0 / MS_PER_UNIT[time_unit]
    if convention == "continuous":
        return NirNeuron(tau_syn=p.tau_syn * unit, tau_mem=p.tau_mem * unit, r=1.0, w_in=p.tau_syn * unit)
    one_minus_alpha = -math.expm1(-p.dt / p.tau_mem)
    one_minus_beta = -math.expm1(-p.dt / p.tau_syn)
    c = one_minus_alpha * p.i_scale
    dt = p.dt * unit
    return NirNeuron(tau_syn=dt / one_minus_beta, tau_mem=dt / one_minus_alpha,
                     r=1.0 / one_minus_alpha, w_in=c / one_minus_beta)


def nir_to_layer(n: NirNeuron, convention: str, dt: float, time_unit: str = "s") -> LayerMapping:
    """This model's layer for NIR parameters `n` stepped at `dt` (in `time_unit`).

    Raises ValueError (the importer adds the node's name) where no layer of this model matches."""
    check_convention(convention)
    to_ms = MS_PER_UNIT[time_unit]
    dt_ms = dt * to_ms
    if convention == "continuous":
        return LayerMapping(n.tau_mem * to_ms, n.tau_syn * to_ms, dt_ms, n.r * n.w_in / n.tau_syn)
    step_syn, step_mem = dt / n.tau_syn, dt / n.tau_mem
    for name, step in (("tau_syn", step_syn), ("tau_mem", step_mem)):
        if not 0.0 < step < 1.0:
            raise ValueError(f"dt/{name} = {step:.6g}: a forward-Euler step needs 0 < dt < {name} "
                             f"(dt = {dt:g} {time_unit}; is the time unit or --dt right?)")
    tau_syn_ms = -dt_ms / math.log1p(-step_syn)    # exp(-dt/tau) equals Euler's 1 - dt/tau'
    tau_mem_ms = -dt_ms / math.log1p(-step_mem)
    c = step_mem * (tau_syn_ms / dt_ms) * step_syn   # (1 - alpha) IScale with the decays above
    euler_gain = step_syn * n.w_in * step_mem * n.r  # v per unit of synaptic input in the Euler reading
    return LayerMapping(tau_mem_ms, tau_syn_ms, dt_ms, euler_gain / c)
