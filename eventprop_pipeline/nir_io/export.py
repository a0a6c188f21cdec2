"""Network -> NIR graph: Input -> Linear -> CubaLIF (+ recurrent Linear, a cycle) -> Linear -> CubaLI -> Output.

NIR's Linear weight is (out, in), the transpose of this project's (pre, post) matrices. The graph's
metadata records what NIR itself does not: the convention (docs/nir.md), dt and the time unit, the spike
and threshold conventions, the one-step synaptic delays, and the readout rule, plus this model's exact
parameters so that `eventprop import-nir` restores them bit for bit.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from eventprop_core.atomic import atomic_path
from eventprop_core.network import Network
from .mapping import layer_to_nir

FORMAT_NAME = "eventprop-nir"
FORMAT_VERSION = 1
NODE_NAMES = ("input", "input_hidden", "hidden", "hidden_hidden", "hidden_output", "readout", "output")
EDGES = [("input", "input_hidden"), ("input_hidden", "hidden"), ("hidden", "hidden_hidden"),
         ("hidden_hidden", "hidden"), ("hidden", "hidden_output"), ("hidden_output", "readout"),
         ("readout", "output")]
SPIKE_CONVENTION = {"discrete": "a spike is 1 in the step it occurs (input S = spike count per step)",
                    "continuous": "a spike is a Dirac delta of area 1"}


def graph_metadata(net: Network, convention: str, time_unit: str) -> dict:
    from .mapping import MS_PER_UNIT
    p = net.params
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "producer": "eventprop-loihi (eventprop export --format nir)",
        "convention": convention,
        "time_unit": time_unit,
        "dt": p.dt / MS_PER_UNIT[time_unit],
        "timesteps": p.timesteps,
        "spike_convention": SPIKE_CONVENTION[convention],
        "threshold_comparison": ">=",
        "reset": "v = 0 in the step of the spike, no refractory period",
        "synapse_delay_steps": 1,
        "readout": p.readout,
        "readout_rule": "prediction = argmax_j sum_k exp(-k/T) V_j[k] / T over steps k = 0..T-1 (T = timesteps)",
        "eventprop_params": json.dumps(p.to_dict(), sort_keys=True),
        "provenance": json.dumps(net.provenance, sort_keys=True, default=str),
    }


def network_to_graph(net: Network, convention: str = "discrete", time_unit: str = "s"):
    """The NIR graph of `net` in the given convention (see mapping.py)."""
    import nir

    n = layer_to_nir(net.params, convention, time_unit)
    H, O = net.n_hidden, net.n_output

    def per_neuron(value, size):
        return np.full(size, value, dtype=np.float64)

    def cuba(cls, size, **extra):
        return cls(tau_syn=per_neuron(n.tau_syn, size), tau_mem=per_neuron(n.tau_mem, size),
                   r=per_neuron(n.r, size), v_leak=per_neuron(0.0, size), w_in=per_neuron(n.w_in, size), **extra)

    w = net.weights
    nodes = {
        "input": nir.Input(input_type={"input": np.array([net.n_input])}),
        "input_hidden": nir.Linear(weight=np.ascontiguousarray(w["input_hidden"].T)),
        "hidden": cuba(nir.CubaLIF, H, v_threshold=per_neuron(net.params.v_thresh, H),
                       v_reset=per_neuron(0.0, H)),
        "hidden_hidden": nir.Linear(weight=np.ascontiguousarray(w["hidden_hidden"].T)),
        "hidden_output": nir.Linear(weight=np.ascontiguousarray(w["hidden_output"].T)),
        "readout": cuba(nir.CubaLI, O),
        "output": nir.Output(output_type={"output": np.array([O])}),
    }
    return nir.NIRGraph(nodes=nodes, edges=list(EDGES), metadata=graph_metadata(net, convention, time_unit))


def write_nir(net: Network, path, convention: str = "discrete", time_unit: str = "s") -> Path:
    """Write `net` as a NIR file atomically (nir.write: HDF5)."""
    import nir

    path = Path(path)
    graph = network_to_graph(net, convention, time_unit)
    with atomic_path(path) as tmp:
        nir.write(tmp, graph)
    return path
