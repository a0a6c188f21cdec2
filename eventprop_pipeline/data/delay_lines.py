"""Delay-line input: the input channels plus copies of them delayed by fixed numbers of steps.

Copy j (j = 0..n_copies) holds channel c as channel j * n_base + c, delayed by j * step time steps;
spikes pushed past the last step are dropped. A network trained on such input has
n_base * (1 + n_copies) inputs, and it records the transform in its metadata
(`provenance["input_transform"]`), which the NetX export carries in its `eventprop/metadata` group.
Every backend applies the transform when it bins data for that network, so the fixed-point network,
the emulator and Lava just see a wider input layer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, DataError
from .events import SpikeDataset

METADATA_KEY = "input_transform"
KIND = "delay_lines"


@dataclass(frozen=True)
class DelayLines:
    copies: int = 0       # delayed copies added to the original input (0: no transform)
    step: int = 30        # time steps between consecutive copies

    def __post_init__(self):
        if not isinstance(self.copies, int) or self.copies < 0:
            raise ConfigError(f"delay lines: copies must be an integer >= 0, got {self.copies!r}")
        if not isinstance(self.step, int) or self.step < 1:
            raise ConfigError(f"delay lines: step must be an integer >= 1 (time steps), got {self.step!r}")

    @property
    def active(self) -> bool:
        return self.copies > 0

    def n_channels(self, n_base: int) -> int:
        return n_base * (1 + self.copies)

    def to_metadata(self) -> dict:
        return {"kind": KIND, "copies": self.copies, "step": self.step}

    @classmethod
    def from_metadata(cls, meta: dict | None, source: str = "network") -> "DelayLines":
        """The transform recorded in a network's provenance (or a NetX file's metadata); none if absent."""
        t = (meta or {}).get(METADATA_KEY)
        if not t:
            return cls()
        if t.get("kind") != KIND:
            raise DataError(f"{source}: unknown input transform {t.get('kind')!r} (this version knows {KIND!r})")
        return cls(int(t["copies"]), int(t["step"]))

    def apply(self, data: SpikeDataset) -> SpikeDataset:
        """The data set with the delayed copies appended as further channel blocks."""
        if not self.active:
            return data
        n_base, T = data.n_channels, data.timesteps
        per_sample = np.diff(data.offsets)
        sample = np.repeat(np.arange(len(data)), per_sample)
        parts = []
        for j in range(1 + self.copies):
            steps = data.steps.astype(np.int64) + j * self.step
            keep = steps < T
            parts.append((sample[keep], steps[keep], data.units[keep].astype(np.int64) + j * n_base,
                          data.counts[keep]))
        sample, steps, units, counts = (np.concatenate([p[i] for p in parts]) for i in range(4))
        order = np.lexsort((units, steps, sample))     # (sample, step, unit), as SpikeDataset keeps them
        offsets = np.zeros(len(data) + 1, np.int64)
        np.cumsum(np.bincount(sample, minlength=len(data)), out=offsets[1:])
        return SpikeDataset(steps[order].astype(np.int32), units[order].astype(np.int32), counts[order], offsets,
                            data.labels, self.n_channels(n_base), data.n_classes, T, data.dt,
                            f"{data.name}+delays{self.copies}x{self.step}", data.n_cropped, data.steps_needed)


def for_network(provenance_or_metadata: dict | None, source: str = "network") -> DelayLines:
    """The delay lines of a float network (its provenance) or of a NetX file (metadata['provenance'])."""
    meta = provenance_or_metadata or {}
    if METADATA_KEY not in meta and isinstance(meta.get("provenance"), dict):
        meta = meta["provenance"]
    return DelayLines.from_metadata(meta, source)
