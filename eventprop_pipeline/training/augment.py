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


BLEND_ALIGN = ("first", "midpoint")


def blend_events(first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray],
                 keep_first: np.ndarray, keep_second: np.ndarray, align: str = "first"
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(steps, units) of the blend: kept spikes of `first` plus kept spikes of `second`, aligned by
    their centres of mass. align "first": second moves onto first's centre (offsets rounded to whole
    steps/channels); "midpoint" (the Eventprop paper's code): each moves half way towards the other,
    by int((other - own) / 2), truncated as there. Not clipped, not deduplicated."""
    (s1, u1), (s2, u2) = first, second
    t1, c1 = centre_of_mass(s1, u1)
    t2, c2 = centre_of_mass(s2, u2)
    both = bool(len(s1) and len(s2))
    if align == "midpoint":
        moves = ((int((t2 - t1) / 2), int((c2 - c1) / 2)), (int((t1 - t2) / 2), int((c1 - c2) / 2))) if both \
            else ((0, 0), (0, 0))
    else:
        moves = ((0, 0), (int(np.rint(t1 - t2)), int(np.rint(c1 - c2))) if both else (0, 0))
    (dt1, dc1), (dt2, dc2) = moves
    # int64 before the offsets: compact storage is unsigned 16-bit and the offsets may be negative
    steps = np.concatenate([s1[keep_first].astype(np.int64) + dt1, s2[keep_second].astype(np.int64) + dt2])
    units = np.concatenate([u1[keep_first].astype(np.int64) + dc1, u2[keep_second].astype(np.int64) + dc2])
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


BLEND_CHUNK = 1024    # blended samples binned at a time (bounds the temporaries at SSC's size)


def make_blended(data: SpikeDataset, n_new: int, probs: tuple[float, float], rng: np.random.Generator,
                 wanted: np.ndarray | None = None, align: str = "first") -> SpikeDataset:
    """n_new blended samples (labels of their class), drawn from `data` with `rng`; binned like
    from_events (merged, clipped to the grid), a chunk at a time. wanted: a mask of the samples to
    build; the others are left empty (every random draw is still made, so the built ones are the
    same)."""
    from ..data.compact import GrowingEvents, bin_chunk

    pairs = draw_blend_pairs(rng, data.labels, n_new)
    graded = data.graded
    out, offsets = None, np.zeros(n_new + 1, np.int64)
    for a in range(0, n_new, BLEND_CHUNK):
        steps, units, lengths = [], [], []
        for k, (i, j) in enumerate(pairs[a:a + BLEND_CHUNK], start=a):
            if wanted is not None and not wanted[k]:
                rng.random(int(data.offsets[i + 1] - data.offsets[i]))    # the same draws, not built
                rng.random(int(data.offsets[j + 1] - data.offsets[j]))
                steps.append(np.zeros(0, np.int64))
                units.append(np.zeros(0, np.int64))
                lengths.append(0)
                continue
            s1, u1, _ = data.events(int(i))
            s2, u2, _ = data.events(int(j))
            keep1 = rng.random(len(s1)) < probs[0]
            keep2 = rng.random(len(s2)) < probs[1]
            s, u = blend_events((s1, u1), (s2, u2), keep1, keep2, align)
            steps.append(s)
            units.append(u)
            lengths.append(len(s))
        raw = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        st, un, cn, per = bin_chunk(raw, np.concatenate(steps), np.concatenate(units), timesteps=data.timesteps,
                                    n_channels=data.n_channels, graded=graded)
        if out is None:
            out = GrowingEvents(int(1.25 * len(st) * n_new / len(lengths)) + 1024, (st.dtype, un.dtype, cn.dtype))
        out.append(st, un, cn)
        offsets[a + 1:a + 1 + len(per)] = offsets[a] + np.cumsum(per)
    if out is None:
        return from_events(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64),
                           data.labels[pairs[:, 0]], n_channels=data.n_channels, n_classes=data.n_classes,
                           timesteps=data.timesteps, dt=data.dt, graded=graded, name=f"{data.name}-blend")
    st, un, cn = out.result()
    return SpikeDataset(st, un, cn, offsets, data.labels[pairs[:, 0]], data.n_channels, data.n_classes,
                        data.timesteps, data.dt, f"{data.name}-blend")


class Joined:
    """The samples of a followed by those of b, without copying them: subset() gathers a batch."""

    def __init__(self, a: SpikeDataset, b: SpikeDataset):
        self.a, self.b = a, b
        self.labels = np.concatenate([a.labels, b.labels])

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices, name: str | None = None) -> SpikeDataset:
        """concat(a, b).subset(indices), bit for bit."""
        indices = np.asarray(indices, dtype=np.int64)
        in_a = indices < len(self.a)
        both = concat(self.a.subset(indices[in_a]), self.b.subset(indices[~in_a] - len(self.a)))
        order = np.concatenate([np.flatnonzero(in_a), np.flatnonzero(~in_a)])
        return both.subset(np.argsort(order, kind="stable"), name)


def concat(a: SpikeDataset, b: SpikeDataset) -> SpikeDataset:
    """Samples of a followed by samples of b."""
    offsets = np.concatenate([a.offsets, a.offsets[-1] + b.offsets[1:]])
    return SpikeDataset(np.concatenate([a.steps, b.steps]), np.concatenate([a.units, b.units]),
                        np.concatenate([a.counts, b.counts]), offsets, np.concatenate([a.labels, b.labels]),
                        a.n_channels, a.n_classes, a.timesteps, a.dt, a.name)
