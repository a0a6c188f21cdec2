"""Training-set augmentation on binned spike events (the Eventprop SHD recipe).

- channel shift: every spike of a sample moves by the same whole number of channels, drawn
  uniformly from [-shift_max, shift_max); spikes pushed off either edge are dropped.
- blend: a new sample from two samples of the same class. The second sample is moved so that its
  centre of mass (mean step, mean channel) lands on the first's; then each spike of the first is
  kept with probability p1 and each of the second with p2, and coincident spikes merge.

The random draws are separated from the transforms so that the transforms can be checked by hand.
"""
from __future__ import annotations

import numpy as np

from ..data.events import SpikeDataset, from_events


def draw_shifts(rng: np.random.Generator, n: int, shift_max: int, probability: float = 1.0) -> np.ndarray:
    """Per-sample channel shifts: uniform in [-shift_max, shift_max) with the given probability, else 0."""
    if shift_max <= 0 or probability <= 0:
        return np.zeros(n, np.int64)
    shifts = rng.integers(-shift_max, shift_max, size=n)
    applied = rng.random(n) < probability
    return np.where(applied, shifts, 0).astype(np.int64)


def shift_channels(data: SpikeDataset, shifts: np.ndarray) -> SpikeDataset:
    """Move every spike of sample i by shifts[i] channels; spikes outside [0, n_channels) are dropped."""
    shifts = np.asarray(shifts, dtype=np.int64)
    if shifts.shape != (len(data),):
        raise ValueError(f"need one shift per sample ({len(data)}), got shape {shifts.shape}")
    if not shifts.any():
        return data
    sample = np.repeat(np.arange(len(data)), np.diff(data.offsets))
    units = data.units.astype(np.int64) + shifts[sample]
    keep = (units >= 0) & (units < data.n_channels)
    lengths = np.bincount(sample[keep], minlength=len(data))
    offsets = np.zeros(len(data) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    # A uniform shift keeps the (step, unit) order within a sample, so the events stay sorted.
    return SpikeDataset(data.steps[keep], units[keep].astype(np.int32), data.counts[keep], offsets,
                        data.labels, data.n_channels, data.n_classes, data.timesteps, data.dt, data.name)


def centre_of_mass(steps: np.ndarray, units: np.ndarray) -> tuple[float, float]:
    if len(steps) == 0:
        return 0.0, 0.0
    return float(np.mean(steps)), float(np.mean(units))


def blend_events(first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray],
                 keep_first: np.ndarray, keep_second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(steps, units) of the blend: kept spikes of `first` plus kept spikes of `second` moved onto
    first's centre of mass (offsets rounded to whole steps/channels). Not clipped, not deduplicated."""
    (s1, u1), (s2, u2) = first, second
    t1, c1 = centre_of_mass(s1, u1)
    t2, c2 = centre_of_mass(s2, u2)
    dt = int(np.rint(t1 - t2)) if len(s1) and len(s2) else 0
    dc = int(np.rint(c1 - c2)) if len(s1) and len(s2) else 0
    # int64 before the offsets: compact storage is unsigned 16-bit and the offsets may be negative
    steps = np.concatenate([s1[keep_first].astype(np.int64), s2[keep_second].astype(np.int64) + dt])
    units = np.concatenate([u1[keep_first].astype(np.int64), u2[keep_second].astype(np.int64) + dc])
    return steps, units


def draw_blend_pairs(rng: np.random.Generator, labels: np.ndarray, n_new: int) -> np.ndarray:
    """(n_new, 2) sample indices: a uniformly drawn sample and a different sample of the same class
    (the same sample when it is alone in its class)."""
    labels = np.asarray(labels)
    first = rng.integers(0, len(labels), size=n_new)
    by_class = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    second = np.empty(n_new, np.int64)
    for k, i in enumerate(first):
        members = by_class[labels[i]]
        if len(members) == 1:
            second[k] = i
            continue
        j = members[rng.integers(0, len(members) - 1)]
        second[k] = j if j != i else members[-1]   # uniform over the class without i
    return np.stack([first, second], axis=1)


def make_blended(data: SpikeDataset, n_new: int, probs: tuple[float, float], rng: np.random.Generator
                 ) -> SpikeDataset:
    """n_new blended samples (labels of their class), drawn from `data` with `rng`."""
    pairs = draw_blend_pairs(rng, data.labels, n_new)
    sample_idx, steps, units = [], [], []
    for k, (i, j) in enumerate(pairs):
        s1, u1, _ = data.events(int(i))
        s2, u2, _ = data.events(int(j))
        keep1 = rng.random(len(s1)) < probs[0]
        keep2 = rng.random(len(s2)) < probs[1]
        s, u = blend_events((s1, u1), (s2, u2), keep1, keep2)
        sample_idx.append(np.full(len(s), k, np.int64))
        steps.append(s)
        units.append(u)
    cat = (lambda parts: np.concatenate(parts) if parts else np.zeros(0, np.int64))
    return from_events(cat(sample_idx), cat(steps), cat(units), data.labels[pairs[:, 0]],
                       n_channels=data.n_channels, n_classes=data.n_classes, timesteps=data.timesteps,
                       dt=data.dt, graded=data.graded, name=f"{data.name}-blend")


def concat(a: SpikeDataset, b: SpikeDataset) -> SpikeDataset:
    """Samples of a followed by samples of b."""
    offsets = np.concatenate([a.offsets, a.offsets[-1] + b.offsets[1:]])
    return SpikeDataset(np.concatenate([a.steps, b.steps]), np.concatenate([a.units, b.units]),
                        np.concatenate([a.counts, b.counts]), offsets, np.concatenate([a.labels, b.labels]),
                        a.n_channels, a.n_classes, a.timesteps, a.dt, a.name)
