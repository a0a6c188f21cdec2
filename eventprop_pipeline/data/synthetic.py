"""Built-in synthetic keyword-spotting set with SHD's shape; needs no download.

Every class is a sequence of three "syllables": frequency sweeps (a Gaussian band of channels whose
centre moves up or down over time). Classes come in pairs that use the same three syllables in
opposite orders, so the set of active channels alone cannot tell them apart: the temporal order
has to be learned. Per sample the timing, duration, channel position and loudness vary, and a
Poisson background fires on every channel.
"""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np

from eventprop_core.errors import ConfigError
from .events import SpikeDataset, from_events

SPLITS = ("train", "test")
# Each split draws from its own stream; "valid" exists only for files written in SSC's layout.
_STREAM = {"train": 0, "test": 1, "valid": 2}
CHUNK = 1024    # samples generated at a time (bounds the temporaries)


@dataclass(frozen=True)
class SyntheticConfig:
    n_channels: int = 700
    n_classes: int = 20
    timesteps: int = 1000
    dt: float = 1.0
    n_train: int = 2000
    n_test: int = 500
    seed: int = 0
    background_hz: float = 5.0
    peak_hz: float = 120.0
    band_sigma: float = 0.02        # channel spread, as a fraction of n_channels
    sweep: float = 0.12             # channel travel of one syllable, as a fraction of n_channels
    time_jitter: float = 0.03       # per-syllable onset jitter, fraction of the sample duration
    channel_jitter: float = 0.02    # per-sample channel shift, fraction of n_channels

    def __post_init__(self):
        for name in ("n_channels", "n_classes", "timesteps", "n_train", "n_test"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"synthetic {name} must be >= 1, got {getattr(self, name)}")
        if self.n_classes > 2 * _max_syllable_sets():
            raise ConfigError(f"synthetic n_classes must be <= {2 * _max_syllable_sets()}, got {self.n_classes}")
        if self.dt <= 0:
            raise ConfigError(f"synthetic dt must be > 0, got {self.dt}")

    def to_dict(self) -> dict:
        return asdict(self)


_VOCABULARY = [(band, direction) for band in (0.15, 0.38, 0.62, 0.85) for direction in (-1, 1)]


def _max_syllable_sets() -> int:
    return len(list(itertools.combinations(range(len(_VOCABULARY)), 3)))


def class_templates(n_classes: int) -> list[tuple[int, int, int]]:
    """Syllable sequence (indices into the vocabulary) of each class; fixed, not random."""
    sets = list(itertools.combinations(range(len(_VOCABULARY)), 3))
    # Spread the chosen sets over the vocabulary, then use each forwards and backwards.
    rng = np.random.default_rng(12345)
    order = rng.permutation(len(sets))
    templates = []
    for k in order:
        a, b, c = sets[k]
        templates += [(a, b, c), (c, b, a)]
        if len(templates) >= n_classes:
            break
    return templates[:n_classes]


def _sample_events(rng, label: int, cfg: SyntheticConfig, templates) -> tuple[np.ndarray, np.ndarray]:
    duration = cfg.timesteps * cfg.dt                     # ms
    C = cfg.n_channels
    gain = rng.uniform(0.6, 1.4)
    shift = rng.normal(0.0, cfg.channel_jitter) * C
    syl_len = duration * 0.22 * rng.uniform(0.85, 1.15)
    times, chans = [], []
    # background
    n_bg = rng.poisson(cfg.background_hz * 1e-3 * duration * C)
    times.append(rng.uniform(0, duration, n_bg))
    chans.append(rng.integers(0, C, n_bg).astype(np.float64))
    sigma = cfg.band_sigma * C
    for slot, syllable in enumerate(templates[label]):
        band, direction = _VOCABULARY[syllable]
        onset = duration * (0.08 + 0.27 * slot) + rng.normal(0.0, cfg.time_jitter * duration)
        expected = gain * cfg.peak_hz * 1e-3 * syl_len * sigma * np.sqrt(2 * np.pi)
        n = rng.poisson(expected)
        u = rng.uniform(0, 1, n)
        centre = band * C + shift + direction * (u - 0.5) * cfg.sweep * C
        times.append(onset + u * syl_len)
        chans.append(centre + rng.normal(0.0, sigma, n))
    t = np.concatenate(times)
    ch = np.rint(np.concatenate(chans))
    return np.floor(t / cfg.dt).astype(np.int64), ch.astype(np.int64)


def generate_split(cfg: SyntheticConfig, split: str) -> SpikeDataset:
    """Generate one split deterministically: the same (config, split) always gives the same data."""
    if split not in SPLITS:
        raise ConfigError(f"synthetic data has splits {', '.join(SPLITS)}, not {split!r}")
    n = cfg.n_train if split == "train" else cfg.n_test
    parts = list(iter_split(cfg, split, n))
    return parts[0] if len(parts) == 1 else concat_datasets(parts, f"synthetic-{split}")


def iter_split(cfg: SyntheticConfig, split: str, n: int, chunk: int = CHUNK):
    """The n samples of a split as consecutive SpikeDatasets of up to `chunk` samples each; the samples
    do not depend on `chunk` (one random stream, drawn in sample order)."""
    if split not in _STREAM:
        raise ConfigError(f"synthetic splits are {', '.join(_STREAM)}, not {split!r}")
    rng = np.random.default_rng([cfg.seed, _STREAM[split]])
    templates = class_templates(cfg.n_classes)
    labels = rng.integers(0, cfg.n_classes, n)
    for a in range(0, max(n, 1), chunk):
        part = labels[a:a + chunk]
        sample_idx, steps, units = [], [], []
        for i, label in enumerate(part):
            s, u = _sample_events(rng, int(label), cfg, templates)
            sample_idx.append(np.full(len(s), i, dtype=np.int64))
            steps.append(s)
            units.append(u)
        cat = (lambda xs: np.concatenate(xs) if xs else np.zeros(0, np.int64))
        yield from_events(cat(sample_idx), cat(steps), cat(units), part, n_channels=cfg.n_channels,
                          n_classes=cfg.n_classes, timesteps=cfg.timesteps, dt=cfg.dt, name=f"synthetic-{split}")


def concat_datasets(parts: list[SpikeDataset], name: str) -> SpikeDataset:
    first = parts[0]
    offsets = [np.zeros(1, np.int64)]
    end = 0
    for p in parts:
        offsets.append(p.offsets[1:] + end)
        end += p.offsets[-1]
    return SpikeDataset(np.concatenate([p.steps for p in parts]), np.concatenate([p.units for p in parts]),
                        np.concatenate([p.counts for p in parts]), np.concatenate(offsets),
                        np.concatenate([p.labels for p in parts]), first.n_channels, first.n_classes,
                        first.timesteps, first.dt, name)
