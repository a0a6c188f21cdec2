"""Seeded shuffling and dense per-batch tensors; only one batch is ever dense in memory."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .events import SpikeDataset


def batch_indices(n: int, batch_size: int, *, shuffle: bool, seed: int | None = None,
                  epoch: int = 0) -> list[np.ndarray]:
    """Index arrays of each batch. Shuffling depends only on (seed, epoch): resumable."""
    if int(batch_size) < 1:
        from eventprop_core.errors import ConfigError
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    order = np.random.default_rng([seed or 0, epoch]).permutation(n) if shuffle else np.arange(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def iterate_batches(data: SpikeDataset, batch_size: int, *, shuffle: bool = False, seed: int | None = None,
                    epoch: int = 0, dtype=np.float32) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (indices, dense spikes (B, T, C), labels) batches."""
    for idx in batch_indices(len(data), batch_size, shuffle=shuffle, seed=seed, epoch=epoch):
        yield idx, data.dense(idx, dtype=dtype), data.labels[idx]
