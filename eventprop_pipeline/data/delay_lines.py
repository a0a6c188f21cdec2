"""Delay-line input: the input channels plus copies of them delayed by fixed numbers of steps.

Optionally the channels are first pooled: channel c becomes c // pool (spikes that meet in one
(step, channel) merge into one, or add up with graded input), n_base = ceil(n_in / pool). Copy j
(j = 0..n_copies) then holds channel c as channel j * n_base + c, delayed by j * step time steps;
spikes pushed past the last step are dropped. A network trained on such input has
n_base * (1 + n_copies) inputs, and it records the transform in its metadata
(`provenance["input_transform"]`), which the NetX export carries in its `eventprop/metadata` group.
Every backend applies the transform when it bins data for that network, so the fixed-point network,
the emulator and Lava just see a wider input layer.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from eventprop_core.errors import ConfigError, DataError
from .events import SpikeDataset, from_events

METADATA_KEY = "input_transform"
KIND = "delay_lines"


@dataclass(frozen=True)
class DelayLines:
    copies: int = 0       # delayed copies added to the original input (0: no transform)
    step: int = 30        # time steps between consecutive copies
    pool: int = 1         # adjacent channels merged into one before copying (1: none)

    def __post_init__(self):
        if not isinstance(self.pool, int) or self.pool < 1:
            raise ConfigError(f"input transform: pool must be an integer >= 1 (channels), got {self.pool!r}")
        if not isinstance(self.copies, int) or self.copies < 0:
            raise ConfigError(f"delay lines: copies must be an integer >= 0, got {self.copies!r}")
        if not isinstance(self.step, int) or self.step < 1:
            raise ConfigError(f"delay lines: step must be an integer >= 1 (time steps), got {self.step!r}")

    @property
    def active(self) -> bool:
        return self.copies > 0 or self.pool > 1

    def n_channels(self, n_in: int) -> int:
        return -(-n_in // self.pool) * (1 + self.copies)

    def to_metadata(self) -> dict:
        return {"kind": KIND, "copies": self.copies, "step": self.step, "pool": self.pool}

    @classmethod
    def from_metadata(cls, meta: dict | None, source: str = "network") -> "DelayLines":
        """The transform recorded in a network's provenance (or a NetX file's metadata); none if absent."""
        t = (meta or {}).get(METADATA_KEY)
        if not t:
            return cls()
        if t.get("kind") != KIND:
            raise DataError(f"{source}: unknown input transform {t.get('kind')!r} (this version knows {KIND!r})")
        return cls(int(t["copies"]), int(t["step"]), int(t.get("pool", 1)))

    def apply(self, data: SpikeDataset) -> SpikeDataset:
        """The data set pooled, with the delayed copies appended as further channel blocks."""
        if not self.active:
            return data
        n_base = -(-data.n_channels // self.pool)
        sample = np.repeat(np.arange(len(data)), np.diff(data.offsets))
        units = data.units.astype(np.int64) // self.pool
        steps = data.steps.astype(np.int64)
        reps = data.counts.astype(np.int64) if data.graded else None
        if reps is not None:   # graded input: a bin's count becomes that many events, summed again below
            sample, steps, units = (np.repeat(a, reps) for a in (sample, steps, units))
        copies = np.arange(1 + self.copies)
        out = from_events(np.tile(sample, len(copies)), (steps[None, :] + self.step * copies[:, None]).ravel(),
                          (units[None, :] + n_base * copies[:, None]).ravel(), data.labels,
                          n_channels=self.n_channels(data.n_channels), n_classes=data.n_classes,
                          timesteps=data.timesteps, dt=data.dt, graded=data.graded,
                          name=f"{data.name}+{self.describe()}")
        return replace(out, n_cropped=data.n_cropped, steps_needed=data.steps_needed)

    def describe(self) -> str:
        return (f"pool{self.pool}" if self.pool > 1 else "") + (f"delays{self.copies}x{self.step}" if self.copies else "")


def for_network(provenance_or_metadata: dict | None, source: str = "network") -> DelayLines:
    """The delay lines of a float network (its provenance) or of a NetX file (metadata['provenance'])."""
    meta = provenance_or_metadata or {}
    if METADATA_KEY not in meta and isinstance(meta.get("provenance"), dict):
        meta = meta["provenance"]
    return DelayLines.from_metadata(meta, source)
