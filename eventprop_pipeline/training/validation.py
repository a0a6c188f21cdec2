"""Accuracy of the network on the validation set after each epoch.

On the CPU this uses the Eventprop engine's event-driven forward pass (about 50x faster than the
dense PyTorch pass on 2 busy cores; the engine's tests check it against `model.simulate`). On CUDA
it uses the float evaluation (`evaluation.evaluate_float`). The final test accuracy always comes
from `evaluate_float`.
"""
from __future__ import annotations

import numpy as np

from ..data.events import SpikeDataset
from ..network import Network


def validation_accuracy(net: Network, data: SpikeDataset, *, device: str, batch_size: int = 64) -> float:
    if len(data) == 0:
        return float("nan")
    if device != "cpu":
        from ..evaluation import evaluate_float
        return evaluate_float(net, data, batch_size=batch_size, device=device).accuracy
    from ..eventprop import cpu_engine
    from ..eventprop.inputs import to_events

    correct = 0
    for start in range(0, len(data), batch_size):
        batch = data.subset(np.arange(start, min(start + batch_size, len(data))))
        events, labels = to_events(net, batch, batch.labels)
        v_avg = cpu_engine.forward(net, events)[0]
        correct += int((np.argmax(v_avg, axis=1) == labels).sum())
    return correct / len(data)
