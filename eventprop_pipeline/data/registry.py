"""One entry point for every data set: load_dataset(name, split, ...)."""
from __future__ import annotations

import warnings
from pathlib import Path

from eventprop_core.errors import ConfigError, DataError
from eventprop_core.memory_check import check_memory_for_timesteps

from .binning import CropWarning, crop_message
from .delay_lines import DelayLines
from .events import SpikeDataset
from .spike_files import SPEC, default_data_root, read_spike_file, spike_file_path
from .synthetic import SyntheticConfig, generate_split

DATASETS = ("synthetic", "shd", "ssc")


def load_dataset(name: str, split: str = "test", *, data_root=None, dt: float = 1.0, timesteps: int = 1000,
                 graded: bool = False, synthetic: SyntheticConfig | None = None, limit: int | None = None,
                 samples: tuple[int, int] | None = None, delays: DelayLines | None = None) -> SpikeDataset:
    """Load one split, binned at dt (ms) into `timesteps` bins.

    synthetic: generated in memory from `synthetic` (its own dt/timesteps are overridden by the
    arguments so that data and network always agree). shd/ssc: read from `data_root`.
    samples: (start, stop) loads only those samples (after `limit`); a file is read and binned only there.
    delays: the network's delay-line input transform (data.delay_lines.for_network), applied last.
    """
    data = _load_binned(name, split, data_root=data_root, dt=dt, timesteps=timesteps, graded=graded,
                        synthetic=synthetic, limit=limit, samples=samples)
    return delays.apply(data) if delays is not None else data


def _load_binned(name, split, *, data_root, dt, timesteps, graded, synthetic, limit, samples) -> SpikeDataset:
    name = name.lower()
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {limit}")
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    channels = (synthetic or SyntheticConfig()).n_channels if name == "synthetic" else SPEC[name][3]
    check_memory_for_timesteps(timesteps, channels, f"{name}/{split}: timesteps = {timesteps} (dt {dt} ms) x "
                               f"{channels} channels", "use fewer timesteps (the network's timesteps, or "
                               "--timesteps for a NetX file)")
    if name == "synthetic":
        cfg = synthetic or SyntheticConfig()
        if cfg.dt != dt or cfg.timesteps != timesteps:
            cfg = SyntheticConfig(**{**cfg.to_dict(), "dt": dt, "timesteps": timesteps})
        data = generate_split(cfg, split)
        n = len(data) if limit is None else min(limit, len(data))
        start, stop = (0, n) if samples is None else (min(samples[0], n), min(samples[1], n))
        return data if (start, stop) == (0, len(data)) else data.subset(range(start, stop))
    root = Path(data_root) if data_root is not None else default_data_root()
    if root.exists() and not root.is_dir():
        raise DataError(f"data root {root} is a file, not a folder; pass --data-root FOLDER (the one holding "
                        f"{SPEC[name][0]}/)")
    if not root.is_dir():
        raise DataError(f"data root {root} does not exist; create it and place {SPEC[name][0]}/ "
                        f"inside, or pass --data-root")
    path = spike_file_path(name, split, root)
    if samples is not None and limit is not None:
        samples = (min(samples[0], limit), min(samples[1], limit))
    data = read_spike_file(path, name=name, dt=dt, timesteps=timesteps, graded=graded, limit=limit, samples=samples)
    if data.n_cropped:
        n_spikes = int(data.counts.sum()) + data.n_cropped if data.graded else len(data.steps) + data.n_cropped
        warnings.warn(crop_message(data.name, data.n_cropped, n_spikes, timesteps, dt, data.steps_needed),
                      CropWarning, stacklevel=2)
    return data


def split_size(name: str, split: str = "test", *, data_root=None, synthetic: SyntheticConfig | None = None,
               limit: int | None = None) -> int:
    """Number of samples load_dataset would return, without binning them (reads only the labels)."""
    name = name.lower()
    if name == "synthetic":
        from .synthetic import SPLITS
        if split not in SPLITS:
            raise ConfigError(f"synthetic data has splits {', '.join(SPLITS)}, not {split!r}")
        cfg = synthetic or SyntheticConfig()
        n = cfg.n_train if split == "train" else cfg.n_test
    else:
        if name not in DATASETS:
            raise DataError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
        import h5py
        root = Path(data_root) if data_root is not None else default_data_root()
        path = spike_file_path(name, split, root)
        if not path.is_file():
            from .spike_files import missing_file_message
            raise DataError(missing_file_message(name, path))
        try:
            with h5py.File(path, "r") as f:
                n = len(f["labels"])
        except (OSError, KeyError) as exc:
            raise DataError(f"{path}: cannot read HDF5 file (truncated or corrupt?): {exc}") from None
    return min(n, limit) if limit is not None else n
