"""Public entry points: compute_batch (forward + Eventprop backward) and loss_and_gradients."""
from __future__ import annotations

import numpy as np

from ..data.events import SpikeDataset
from ..devices import resolve_device_name
from eventprop_core.errors import ConfigError
from eventprop_core.network import Network
from .inputs import to_events
from .options import BatchResult, LossOptions, ShardSpec


def _resolve(device) -> str:
    return resolve_device_name(device)


def compute_batch(net: Network, inputs, labels, options: LossOptions = LossOptions(),
                  device="cpu", shard: ShardSpec | None = None) -> BatchResult:
    """Loss, gradients, readout and hidden spike counts of one batch.

    inputs: dense (B, T, n_in) spikes (numpy or torch) or a SpikeDataset holding exactly the batch.
    device: "cpu" (numba, event-driven), "cuda[:N]" (the fused CUDA kernels, cuda_engine.py),
    "torch-cpu" (the unfused torch engine on the CPU, kept as a reference for tests) or "auto" (CUDA
    when present).
    """
    if not isinstance(options, LossOptions):
        raise ConfigError(f"options must be a LossOptions, got {type(options).__name__}")
    dev = _resolve(device)
    if dev == "cpu":
        from . import cpu_engine
        ev, labels = to_events(net, inputs, labels)
        return cpu_engine.compute(net, ev, labels, options, shard)
    if dev == "torch-cpu":
        from . import torch_engine
        return torch_engine.compute(net, inputs, labels, options, device="cpu", shard=shard)
    from . import cuda_engine
    ev, labels = to_events(net, inputs, labels)
    with cuda_engine.on_device(dev):
        return cuda_engine.compute(net, ev, labels, options, shard=shard)


def loss_and_gradients(net: Network, spikes, labels, device="cpu", **loss_options) -> tuple[float, dict[str, np.ndarray]]:
    """(mean cross-entropy, {weight name: dL/dW float32}) of a batch; keyword options as in LossOptions."""
    result = compute_batch(net, spikes, labels, LossOptions(**loss_options), device=device)
    return result.loss, result.grads


def predict(net: Network, inputs, device="cpu") -> tuple[np.ndarray, np.ndarray]:
    """Forward pass only: (readout VAvg (B, O) float64, hidden spike counts (B, H) int64).

    On "cpu" this is the engine's event-driven forward (fast, float64 state), on "cuda[:N]" the
    fused CUDA forward kernel (float32 state), on "torch-cpu" the PyTorch float model
    (`model.simulate`). Tests check them against each other.
    """
    dev = _resolve(device)
    if dev != "torch-cpu":
        B = len(inputs) if isinstance(inputs, SpikeDataset) else np.shape(inputs)[0]
        ev, _ = to_events(net, inputs, np.zeros(B, dtype=np.int64))
        if dev == "cpu":
            from . import cpu_engine
            v_avg, counts, _, _ = cpu_engine.forward(net, ev)
            return v_avg, counts
        from . import cuda_engine
        with cuda_engine.on_device(dev):
            return cuda_engine.predict(net, ev)
    from ..model.forward import simulate
    dense = inputs.dense(np.arange(len(inputs))) if isinstance(inputs, SpikeDataset) else inputs
    r = simulate(net, dense, device="cpu")
    return r.readout.astype(np.float64), r.hidden_spike_counts
