"""One entry point for every data set: load_dataset(name, split, ...)."""
from __future__ import annotations

import warnings
from pathlib import Path

from ..errors import ConfigError, DataError
from .binning import CropWarning, crop_message
from .delay_lines import DelayLines
from .events import SpikeDataset
from .spike_files import SPEC, default_data_root, read_spike_file, spike_file_path
from .synthetic import SyntheticConfig, generate_split

DATASETS = ("synthetic", "shd", "ssc")


def load_dataset(name: str, split: str = "test", *, data_root=None, dt: float = 1.0, timesteps: int = 1000,
                 graded: bool = False, synthetic: SyntheticConfig | None = None, limit: int | None = None,
                 delays: DelayLines | None = None) -> SpikeDataset:
    """Load one split, binned at dt (ms) into `timesteps` bins.

    synthetic: generated in memory from `synthetic` (its own dt/timesteps are overridden by the
    arguments so that data and network always agree). shd/ssc: read from `data_root`.
    delays: the network's delay-line input transform (data.delay_lines.for_network), applied last.
    """
    data = _load_binned(name, split, data_root=data_root, dt=dt, timesteps=timesteps, graded=graded,
                        synthetic=synthetic, limit=limit)
    return delays.apply(data) if delays is not None else data


def _load_binned(name, split, *, data_root, dt, timesteps, graded, synthetic, limit) -> SpikeDataset:
    name = name.lower()
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {limit}")
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    if name == "synthetic":
        cfg = synthetic or SyntheticConfig()
        if cfg.dt != dt or cfg.timesteps != timesteps:
            cfg = SyntheticConfig(**{**cfg.to_dict(), "dt": dt, "timesteps": timesteps})
        data = generate_split(cfg, split)
        return data.subset(range(min(limit, len(data)))) if limit is not None else data
    root = Path(data_root) if data_root is not None else default_data_root()
    if not root.is_dir():
        raise DataError(f"data root {root} does not exist; create it and place {SPEC[name][0]}/ "
                        f"inside, or pass --data-root")
    path = spike_file_path(name, split, root)
    data = read_spike_file(path, name=name, dt=dt, timesteps=timesteps, graded=graded, limit=limit)
    if data.n_cropped:
        n_spikes = int(data.counts.sum()) + data.n_cropped if data.graded else len(data.steps) + data.n_cropped
        warnings.warn(crop_message(data.name, data.n_cropped, n_spikes, timesteps, dt, data.steps_needed),
                      CropWarning, stacklevel=2)
    return data
