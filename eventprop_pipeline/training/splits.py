"""The train / validation / test data of a training run, as binned events."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.delay_lines import DelayLines
from ..data.events import SpikeDataset
from ..data.registry import load_dataset
from eventprop_core.errors import ConfigError
from .config import VALID_SPLIT_AUTO, VALID_SPLIT_HOLDOUT, TrainConfig


@dataclass
class RunData:
    train: SpikeDataset
    valid: SpikeDataset
    test: SpikeDataset
    valid_source: str      # e.g. "ssc/valid" or "holdout 10% of train (seed 0)"
    delays: DelayLines = DelayLines()   # applied to valid/test here, to train per batch after augmentation


def holdout_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, valid) indices: a seeded random share `fraction` of range(n) for validation, at least one."""
    n_valid = min(max(1, int(round(fraction * n))), n - 1)
    order = np.random.default_rng([seed, 7]).permutation(n)
    return np.sort(order[n_valid:]), np.sort(order[:n_valid])


def load_run_data(cfg: TrainConfig, loader=None) -> RunData:
    """loader(split, limit) replaces load_dataset (data-parallel runs share one binned copy)."""
    d, net = cfg.data, cfg.network

    def load(split: str, limit: int) -> SpikeDataset:
        if loader is not None:
            return loader(split, limit)
        return load_dataset(d.dataset, split, data_root=d.data_root or None, dt=net.dt, timesteps=net.timesteps,
                            synthetic=cfg.synthetic, limit=limit or None)

    train = load(d.train_split, d.train_limit)
    test = load(d.test_split, d.test_limit)
    use_split = d.valid_split not in (VALID_SPLIT_AUTO, VALID_SPLIT_HOLDOUT) or (
        d.valid_split == VALID_SPLIT_AUTO and d.dataset == "ssc")
    if use_split:
        split = "valid" if d.valid_split == VALID_SPLIT_AUTO else d.valid_split
        valid = load(split, d.test_limit)
        source = f"{d.dataset}/{split}"
    else:
        if len(train) < 2:
            raise ConfigError(f"[data] the {d.dataset} train split has {len(train)} sample(s); "
                              "a hold-out validation set needs at least 2")
        tr, va = holdout_indices(len(train), d.valid_fraction, d.valid_seed)
        train, valid = train.subset(tr, name=f"{train.name}-train"), train.subset(va, name=f"{train.name}-valid")
        source = f"holdout {100 * d.valid_fraction:g}% of {d.dataset}/{d.train_split} (seed {d.valid_seed})"
    delays = net.input_delays()
    return RunData(train, delays.apply(valid), delays.apply(test), source, delays)
