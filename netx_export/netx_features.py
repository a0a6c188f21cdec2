"""Which NetX runtime features a network uses, in words (for `eventprop evaluate`, docs/netx_runtime.md)."""
from __future__ import annotations

import numpy as np

from .fixed_point import FixedPointNetwork


def network_features(fxnet: FixedPointNetwork) -> list[str]:
    """One line per feature the network uses, then what netx ignores in its file (fxnet.notes)."""
    layers = fxnet.layers
    sizes = " -> ".join([str(fxnet.n_input)] + [f"{layer.size}{' rec' if layer.kind == 'dense_rec' else ''}"
                                                for layer in layers])
    out = [f"{len(layers)} dense layer(s): {sizes}"]

    def which(pred) -> str:
        return ", ".join(str(k + 1) for k, layer in enumerate(layers) if pred(layer))

    if which(lambda layer: layer.kind == "dense_rec"):
        out.append(f"recurrent layers: {which(lambda layer: layer.kind == 'dense_rec')}")
    if which(lambda layer: layer.delay is not None):
        top = max(int(layer.delay.max()) for layer in layers if layer.delay is not None)
        out.append(f"synaptic delays (up to {top} steps) in layers: {which(lambda layer: layer.delay is not None)}")
    if which(lambda layer: layer.bias is not None and np.any(layer.bias)):
        out.append(f"biases in layers: {which(lambda layer: layer.bias is not None and np.any(layer.bias))}")
    per_neuron = which(lambda layer: any(np.ndim(getattr(layer, f)) for f in ("i_decay", "v_decay", "vth_mant")))
    if per_neuron:
        out.append(f"per-neuron decays or thresholds in layers: {per_neuron}")
    if not which(lambda layer: layer.spiking):
        out.append("no layer can spike")
    readout = fxnet.readout
    if readout.spiking:
        out.append(f"the last layer spikes (vThMant {np.min(readout.vth_mant)} < 2^17), and its v resets to 0")
    else:
        out.append("the last layer never spikes (vThMant >= 2^17)")
    out.append(f"score from the last layer's {'spike counts' if fxnet.readout_from == 'spikes' else 'voltage'}")
    out += [f"ignored: {note}" for note in getattr(fxnet, "notes", [])]
    return out
