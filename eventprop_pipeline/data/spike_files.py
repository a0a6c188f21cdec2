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
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected the HDF5 spike file")
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
            raw_labels = np.asarray(f["labels"][sel])
    except DataError:
        raise
    except Exception as exc:   # h5py raises OSError, RuntimeError, KeyError, ... on damaged files
        raise DataError(f"{path}: cannot read HDF5 file (truncated or corrupt?): {' '.join(str(exc).split())}") from None
    labels = _integer_values(raw_labels, path, "labels")
    if labels.ndim != 1:
        raise DataError(f"{path}: labels has shape {labels.shape}, expected one label per sample (1-D)")
    if times.ndim != 1 or units.ndim != 1:
        raise DataError(f"{path}: spikes/times and spikes/units must be 1-D lists of per-sample arrays, "
                        f"got shapes {times.shape} and {units.shape}")
    if not (len(times) == len(units) == len(labels)):
        raise DataError(f"{path}: spikes/times ({len(times)}), spikes/units ({len(units)}) and labels "
                        f"({len(labels)}) differ in length")
    try:
        lengths = np.fromiter((len(t) for t in times), dtype=np.int64, count=len(times))
        unit_lengths = np.fromiter((len(u) for u in units), dtype=np.int64, count=len(units))
    except TypeError:
        raise DataError(f"{path}: spikes/times and spikes/units must hold one array per sample "
                        f"(variable-length datasets)") from None
    bad = np.nonzero(lengths != unit_lengths)[0]
    if len(bad):
        raise DataError(f"{path}: sample {bad[0]} has {lengths[bad[0]]} spike times but {unit_lengths[bad[0]]} units")
    # Widened, never re-rounded: SHD/SSC store float16, other files keep their own precision.
    try:
        all_times = np.concatenate(times).astype(np.float64) if len(times) else np.zeros(0)
        all_units_raw = np.concatenate(units) if len(units) else np.zeros(0, np.int64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: spikes/times and spikes/units must hold numbers: {exc}") from None
    all_units = _integer_values(all_units_raw, path, "spikes/units")
    spec = SPEC.get(dataset_key)
    n_channels = n_channels or (spec[3] if spec else int(all_units.max(initial=-1)) + 1)
    n_classes = n_classes or (spec[4] if spec else int(labels.max(initial=-1)) + 1)
    _check_range(all_units, n_channels, path, "unit index", "channels", np.repeat(np.arange(len(labels)), lengths))
    _check_range(labels, n_classes, path, "label", "classes", np.arange(len(labels)))
    if len(all_times) and not np.isfinite(all_times).all():
        raise DataError(f"{path}: spikes/times contains NaN or inf")
    if len(all_times) and all_times.min() < 0:
        i = int(np.argmin(all_times))
        sample = int(np.searchsorted(np.cumsum(lengths), i, side="right"))
        raise DataError(f"{path}: negative spike time {all_times[i]:g} s (sample {sample}); times must be >= 0")
    sample_index = np.repeat(np.arange(len(labels)), lengths)
    steps = time_to_step(all_times, dt)
    return from_events(sample_index, steps, all_units, labels, n_channels=n_channels, n_classes=n_classes,
                       timesteps=timesteps, dt=dt, graded=graded, name=f"{path.name}")


def write_spike_file(path, times_s: list, units: list, labels, *, extra_keys: bool = True) -> None:
    """Write samples in tonic's SHD layout (used by tests and by the synthetic-to-file exporter)."""
    import io

    from eventprop_core.atomic import atomic_write_bytes

    vt = h5py.vlen_dtype(np.dtype("float16"))
    vu = h5py.vlen_dtype(np.dtype("uint16"))
    buf = io.BytesIO()   # built in memory: HDF5 never writes into a full disk (see atomic.py)
    with h5py.File(buf, "w") as f:
        t = f.create_dataset("spikes/times", (len(times_s),), dtype=vt)
        u = f.create_dataset("spikes/units", (len(units),), dtype=vu)
        for i, (ts, us) in enumerate(zip(times_s, units)):
            t[i] = np.asarray(ts, dtype=np.float16)
            u[i] = np.asarray(us, dtype=np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16))
        if extra_keys:
            f.create_dataset("extra/speaker", data=np.zeros(len(labels), dtype=np.uint16))
    atomic_write_bytes(path, buf.getvalue())


def _integer_values(values: np.ndarray, path: Path, what: str) -> np.ndarray:
    """Signed int64 copy of integer-valued data; fractional, non-numeric or NaN values are errors."""
    values = np.asarray(values)
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    if values.dtype.kind == "b":
        raise DataError(f"{path}: {what} are booleans (dtype {values.dtype}), expected integers")
    if values.dtype.kind != "f":
        raise DataError(f"{path}: {what} have dtype {values.dtype}, expected integers")
    bad = ~np.isfinite(values) | (values != np.round(values))
    if bad.any():
        i = np.argwhere(bad)[0]
        raise DataError(f"{path}: {what} must be whole numbers, found {values[tuple(i)].item()!r} at {tuple(int(x) for x in i)}")
    return values.astype(np.int64)


def _check_range(values: np.ndarray, n: int, path: Path, what: str, of: str, sample_of: np.ndarray) -> None:
    if not len(values):
        return
    bad = np.nonzero((values < 0) | (values >= n))[0]
    if len(bad):
        i = int(bad[0])
        raise DataError(f"{path}: {what} {int(values[i])} out of range (sample {int(sample_of[i])}): "
                        f"expected 0..{n - 1} for {n} {of}")
