"""SHD and SSC read straight from the HDF5 files in tonic's layout (no download, no tonic import).

Layout: spikes/times (vlen float16, seconds), spikes/units (vlen uint16), labels.
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from eventprop_core.errors import DataError
from .binning import time_to_step
from .events import SpikeDataset, from_events

DOWNLOAD_BASE = "https://zenkelab.org/datasets/"
SPEC = {
    # name: (folder, file prefix, splits, channels, classes)
    "shd": ("SHD", "shd", ("train", "test"), 700, 20),
    "ssc": ("SSC", "ssc", ("train", "valid", "test"), 700, 35),
}
DATA_ROOT_ENV = "EVENTPROP_DATA_ROOT"


def default_data_root() -> Path:
    """$EVENTPROP_DATA_ROOT, else `datasets/` in the current directory."""
    return Path(os.environ.get(DATA_ROOT_ENV, "datasets"))


def spike_file_path(name: str, split: str, data_root) -> Path:
    folder, prefix, splits, _, _ = SPEC[name]
    if split not in splits:
        raise DataError(f"{name.upper()} has no split {split!r}; choose one of {', '.join(splits)}")
    return Path(data_root) / folder / f"{prefix}_{split}.h5"


def missing_file_message(name: str, path: Path) -> str:
    folder, prefix, splits, _, _ = SPEC[name]
    urls = " ".join(f"{DOWNLOAD_BASE}{prefix}_{s}.h5.zip" for s in splits)
    return (f"{name.upper()} file not found: {path}. Download and unzip the official files ({urls}) "
            f"into {path.parent}/, or point --data-root (or ${DATA_ROOT_ENV}) at the folder holding {folder}/")


def read_spike_file(path, *, name: str, dt: float = 1.0, timesteps: int = 1000, graded: bool = False,
                    n_channels: int | None = None, n_classes: int | None = None, limit: int | None = None
                    ) -> SpikeDataset:
    """Read and bin one SHD/SSC-layout file. Spikes at or after timesteps*dt are cropped."""
    path = Path(path)
    dataset_key = name.lower()
    if not path.is_file():
        raise DataError(missing_file_message(dataset_key, path) if dataset_key in SPEC
                        else f"spike file not found: {path}")
    try:
        with h5py.File(path, "r") as f:
            for key in ("spikes/times", "spikes/units", "labels"):
                if key not in f:
                    raise DataError(f"{path}: missing dataset '{key}' (expected tonic's SHD/SSC layout)")
            sel = slice(None) if limit is None else slice(0, limit)
            times = f["spikes/times"][sel]
            units = f["spikes/units"][sel]
            labels = np.asarray(f["labels"][sel], dtype=np.int64)
    except DataError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise DataError(f"{path}: cannot read HDF5 file (truncated or corrupt?): {exc}") from None
    if not (len(times) == len(units) == len(labels)):
        raise DataError(f"{path}: spikes/times ({len(times)}), spikes/units ({len(units)}) and labels "
                        f"({len(labels)}) differ in length")
    lengths = np.fromiter((len(t) for t in times), dtype=np.int64, count=len(times))
    unit_lengths = np.fromiter((len(u) for u in units), dtype=np.int64, count=len(units))
    bad = np.nonzero(lengths != unit_lengths)[0]
    if len(bad):
        raise DataError(f"{path}: sample {bad[0]} has {lengths[bad[0]]} spike times but {unit_lengths[bad[0]]} units")
    # Widened, never re-rounded: SHD/SSC store float16, other files keep their own precision.
    all_times = np.concatenate(times).astype(np.float64) if len(times) else np.zeros(0)
    all_units = np.concatenate(units).astype(np.int64) if len(units) else np.zeros(0, np.int64)
    spec = SPEC.get(dataset_key)
    n_channels = n_channels or (spec[3] if spec else int(all_units.max(initial=-1)) + 1)
    n_classes = n_classes or (spec[4] if spec else int(labels.max(initial=-1)) + 1)
    if len(all_units) and (all_units.min() < 0 or all_units.max() >= n_channels):
        raise DataError(f"{path}: unit index {int(all_units.max())} out of range for {n_channels} channels")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(f"{path}: label {int(labels.max())} out of range for {n_classes} classes")
    if len(all_times) and not np.isfinite(all_times).all():
        raise DataError(f"{path}: spikes/times contains NaN or inf")
    sample_index = np.repeat(np.arange(len(labels)), lengths)
    steps = time_to_step(all_times, dt)
    return from_events(sample_index, steps, all_units, labels, n_channels=n_channels, n_classes=n_classes,
                       timesteps=timesteps, dt=dt, graded=graded, name=f"{path.name}")


def write_spike_file(path, times_s: list, units: list, labels, *, extra_keys: bool = True) -> None:
    """Write samples in tonic's SHD layout (used by tests and by the synthetic-to-file exporter)."""
    from eventprop_core.atomic import atomic_path

    vt = h5py.vlen_dtype(np.dtype("float16"))
    vu = h5py.vlen_dtype(np.dtype("uint16"))
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            t = f.create_dataset("spikes/times", (len(times_s),), dtype=vt)
            u = f.create_dataset("spikes/units", (len(units),), dtype=vu)
            for i, (ts, us) in enumerate(zip(times_s, units)):
                t[i] = np.asarray(ts, dtype=np.float16)
                u[i] = np.asarray(us, dtype=np.uint16)
            f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16))
            if extra_keys:
                f.create_dataset("extra/speaker", data=np.zeros(len(labels), dtype=np.uint16))
