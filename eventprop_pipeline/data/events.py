"""A data set held as binned spike events (compact), turned into dense tensors one batch at a time."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eventprop_core.errors import DataError


@dataclass(frozen=True)
class SpikeDataset:
    """Binned spike events of N samples, CSR-style.

    Sample i owns events offsets[i]:offsets[i+1] of `steps` (time bin), `units` (channel) and
    `counts` (spikes in that bin; all 1 unless graded counts were asked for). Events are unique
    per (step, unit) and sorted by (step, unit) within a sample.
    """

    steps: np.ndarray      # uint16 (int32 beyond 65536 steps); any integer dtype is accepted
    units: np.ndarray      # uint16 (int32 beyond 65536 channels)
    counts: np.ndarray     # uint8 (binary) or uint16 (graded)
    offsets: np.ndarray    # int64, N + 1
    labels: np.ndarray     # int64, N
    n_channels: int
    n_classes: int
    timesteps: int
    dt: float
    name: str = "dataset"
    n_cropped: int = 0       # spikes dropped when binning because they fell at or after timesteps * dt
    steps_needed: int = 0    # bins that would have kept every spike read (0: not known)

    def __post_init__(self):
        n = len(self.labels)
        if self.offsets.shape != (n + 1,) or self.offsets[0] != 0 or self.offsets[-1] != len(self.steps):
            raise DataError(f"{self.name}: inconsistent event offsets")
        if len(self.units) != len(self.steps) or len(self.counts) != len(self.steps):
            raise DataError(f"{self.name}: steps, units and counts differ in length")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def graded(self) -> bool:
        return bool(len(self.counts)) and int(self.counts.max()) > 1

    def events(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.steps[a:b], self.units[a:b], self.counts[a:b]

    def dense(self, indices, dtype=np.float32) -> np.ndarray:
        """Dense (len(indices), timesteps, n_channels) array of spike counts for these samples."""
        indices = np.asarray(indices, dtype=np.int64)
        out = np.zeros((len(indices), self.timesteps, self.n_channels), dtype=dtype)
        starts, stops = self.offsets[indices], self.offsets[indices + 1]
        lengths = stops - starts
        if lengths.sum() == 0:
            return out
        event_idx = np.concatenate([np.arange(a, b) for a, b in zip(starts, stops)])
        row = np.repeat(np.arange(len(indices)), lengths)
        out[row, self.steps[event_idx], self.units[event_idx]] = self.counts[event_idx]
        return out

    def subset(self, indices, name: str | None = None) -> "SpikeDataset":
        """A new data set holding the given samples, in the given order."""
        indices = np.asarray(indices, dtype=np.int64)
        starts, stops = self.offsets[indices], self.offsets[indices + 1]
        lengths = stops - starts
        event_idx = (np.concatenate([np.arange(a, b) for a, b in zip(starts, stops)])
                     if len(indices) else np.zeros(0, np.int64))
        offsets = np.zeros(len(indices) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return SpikeDataset(self.steps[event_idx], self.units[event_idx], self.counts[event_idx], offsets,
                            self.labels[indices], self.n_channels, self.n_classes, self.timesteps, self.dt,
                            name or self.name)

    def spikes_per_sample(self) -> np.ndarray:
        sample_of_event = np.repeat(np.arange(len(self)), np.diff(self.offsets))
        return np.bincount(sample_of_event, weights=self.counts, minlength=len(self)).astype(np.int64)


def from_events(sample_index: np.ndarray, steps: np.ndarray, units: np.ndarray, labels: np.ndarray, *,
                n_channels: int, n_classes: int, timesteps: int, dt: float, graded: bool = False,
                name: str = "dataset") -> SpikeDataset:
    """Build a data set from unsorted events (sample, step, unit), merging duplicates.

    Events outside [0, timesteps) or [0, n_channels) are dropped. Without `graded` every
    (sample, step, unit) holds at most one spike.
    """
    n = len(labels)
    in_range = (steps >= 0) & (units >= 0) & (units < n_channels)
    keep = in_range & (steps < timesteps)
    n_cropped = int(in_range.sum() - keep.sum())
    steps_needed = int(steps[in_range].max()) + 1 if in_range.any() else 0
    sample_index, steps, units = sample_index[keep], steps[keep], units[keep]
    key = (sample_index.astype(np.int64) * timesteps + steps) * n_channels + units
    key, counts = np.unique(key, return_counts=True)
    from .compact import count_dtype, step_dtype, unit_dtype
    units_out = (key % n_channels).astype(unit_dtype(n_channels))
    rest = key // n_channels
    steps_out = (rest % timesteps).astype(step_dtype(timesteps))
    sample_out = rest // timesteps
    offsets = np.searchsorted(sample_out, np.arange(n + 1)).astype(np.int64)
    counts = (np.minimum(counts, np.iinfo(np.uint16).max).astype(np.uint16) if graded
              else np.ones(len(key), count_dtype(False)))
    return SpikeDataset(steps_out, units_out, counts, offsets, np.asarray(labels, dtype=np.int64),
                        n_channels, n_classes, timesteps, dt, name, n_cropped, steps_needed)
