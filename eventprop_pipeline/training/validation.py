"""Accuracy of the network on the validation set after each epoch."""
from __future__ import annotations

from ..data.events import SpikeDataset
from eventprop_core.network import Network


def validation_accuracy(net: Network, data: SpikeDataset, *, device: str, batch_size: int = 64) -> float:
    if len(data) == 0:
        return float("nan")
    from ..evaluation import evaluate_float
    return evaluate_float(net, data, batch_size=batch_size, device=device).accuracy
