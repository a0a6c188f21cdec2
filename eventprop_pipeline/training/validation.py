"""Accuracy of the network on the validation set after each epoch (engine forward pass)."""
from __future__ import annotations

import numpy as np

from ..data.events import SpikeDataset
from ..network import Network


def validation_accuracy(net: Network, data: SpikeDataset, *, device: str, batch_size: int = 64) -> float:
    if len(data) == 0:
        return float("nan")
    from ..eventprop import predict

    correct = 0
    for start in range(0, len(data), batch_size):
        batch = data.subset(np.arange(start, min(start + batch_size, len(data))))
        v_avg, _ = predict(net, batch, device=device)
        correct += int((np.argmax(v_avg, axis=1) == batch.labels).sum())
    return correct / len(data)
