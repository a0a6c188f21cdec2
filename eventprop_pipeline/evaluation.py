"""Data-set level evaluation of the float model, in memory-bounded batches with a progress bar."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eventprop_core.atomic import save_npz
from .data.batching import batch_indices
from .data.events import SpikeDataset
from eventprop_core.errors import DataError
from eventprop_core.network import Network


@dataclass
class EvaluationResult:
    pred: np.ndarray          # (N,) int64
    label: np.ndarray         # (N,) int64
    score: np.ndarray         # (N, n_out) readout values
    hidden_spikes: np.ndarray  # (N,) total hidden spikes per sample
    backend: str = "float"

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.pred == self.label)) if len(self.label) else float("nan")

    def summary(self) -> dict:
        return {"accuracy": self.accuracy, "n": int(len(self.label)), "correct": int((self.pred == self.label).sum()),
                "backend": self.backend, "mean_hidden_spikes": float(np.mean(self.hidden_spikes)) if len(self.label) else 0.0}

    def save_predictions(self, path) -> None:
        save_npz(path, pred=self.pred, label=self.label, score=self.score, hidden_spikes=self.hidden_spikes)


def check_compatible(net: Network, data: SpikeDataset) -> None:
    from .eventprop.inputs import check_dataset
    check_dataset(net, data)
    if data.n_classes > net.n_output:
        raise DataError(f"{data.name}: {data.n_classes} classes, but the network has only {net.n_output} outputs")
    if len(data) == 0:
        raise DataError(f"{data.name}: no samples to evaluate")


def evaluate_float(net: Network, data: SpikeDataset, *, batch_size: int = 64, device="auto",
                   progress: bool = False) -> EvaluationResult:
    """Float evaluation, every sample from a fresh state: the engine's event-driven forward pass
    on the CPU, the fused CUDA forward kernel on CUDA (`eventprop.predict`)."""
    from tqdm.auto import tqdm

    from .eventprop import predict

    check_compatible(net, data)
    n = len(data)
    pred = np.zeros(n, np.int64)
    score = np.zeros((n, net.n_output), np.float32)
    spikes = np.zeros(n, np.int64)
    with tqdm(total=n, desc="evaluate (float)", unit="sample", disable=not progress) as bar:
        for idx in batch_indices(n, batch_size, shuffle=False):
            readout, counts = predict(net, data.subset(idx), device=device)
            score[idx] = readout
            pred[idx] = np.argmax(readout, axis=1)
            spikes[idx] = counts.sum(axis=1)
            bar.update(len(idx))
    return EvaluationResult(pred, data.labels.copy(), score, spikes, "float")
