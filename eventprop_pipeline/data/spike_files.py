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
from .compact import GrowingEvents, bin_times_chunk, count_dtype, step_dtype, unit_dtype
from .events import SpikeDataset

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


READ_CHUNK = 512      # samples read and binned at a time: bounds the temporaries at any file size


def read_spike_file(path, *, name: str, dt: float = 1.0, timesteps: int = 1000, graded: bool = False,
                    n_channels: int | None = None, n_classes: int | None = None, limit: int | None = None,
                    samples: tuple[int, int] | None = None, progress: bool = False) -> SpikeDataset:
    """Read and bin one SHD/SSC-layout file. Spikes at or after timesteps*dt are cropped.

    Read READ_CHUNK samples at a time into compact storage (16-bit steps and units); `samples`
    = (start, stop) reads only that range (a data-parallel rank's share), `limit` the first N.
    """
    path = Path(path)
    dataset_key = name.lower()
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected the HDF5 spike file")
    if not path.is_file():
        raise DataError(missing_file_message(dataset_key, path) if dataset_key in SPEC
                        else f"spike file not found: {path}")
    spec = SPEC.get(dataset_key)
    try:
        with h5py.File(path, "r") as f:
            for key in ("spikes/times", "spikes/units", "labels"):
                if key not in f:
                    raise DataError(f"{path}: missing dataset '{key}' (expected tonic's SHD/SSC layout)")
            times_ds, units_ds, labels_ds = f["spikes/times"], f["spikes/units"], f["labels"]
            if labels_ds.ndim != 1:
                raise DataError(f"{path}: labels has shape {labels_ds.shape}, expected one label per sample (1-D)")
            if times_ds.ndim != 1 or units_ds.ndim != 1:
                raise DataError(f"{path}: spikes/times and spikes/units must be 1-D lists of per-sample arrays, "
                                f"got shapes {times_ds.shape} and {units_ds.shape}")
            if not (len(times_ds) == len(units_ds) == len(labels_ds)):
                raise DataError(f"{path}: spikes/times ({len(times_ds)}), spikes/units ({len(units_ds)}) and "
                                f"labels ({len(labels_ds)}) differ in length")
            start, stop = samples if samples is not None else (0, len(labels_ds))
            stop = min(stop, len(labels_ds), start + limit if limit is not None else stop)
            start = min(start, stop)
            if n_channels is None and not spec:      # a file of unknown layout: its own largest unit
                n_channels = _largest_unit(units_ds, start, stop) + 1
            labels = _integer_values(labels_ds[start:stop], path, "labels")
            n_channels = n_channels or spec[3]
            n_classes = n_classes or (spec[4] if spec else int(labels.max(initial=-1)) + 1)
            _check_range(labels, n_classes, path, "label", "classes", np.arange(start, stop))
            out, offsets = None, np.zeros(stop - start + 1, np.int64)
            crop = [0, 0]      # spikes at or after timesteps * dt, and the bins that would keep them all
            from tqdm.auto import tqdm
            with tqdm(total=stop - start, desc=f"read {path.name}", unit="sample", disable=not progress) as bar:
                for a in range(start, stop, READ_CHUNK):
                    b = min(stop, a + READ_CHUNK)
                    st, un, cn, per = _read_chunk(path, times_ds, units_ds, a, b, dt, timesteps, n_channels, graded,
                                                  crop)
                    if out is None:   # capacity from the first chunk's density, with room to spare
                        estimate = int(1.25 * len(st) * (stop - start) / (b - a)) + 1024
                        out = GrowingEvents(estimate, (st.dtype, un.dtype, cn.dtype))
                    out.append(st, un, cn)
                    np.cumsum(per, out=offsets[a - start + 1:b - start + 1])
                    offsets[a - start + 1:b - start + 1] += offsets[a - start]
                    bar.update(b - a)
    except DataError:
        raise
    except Exception as exc:   # h5py raises OSError, RuntimeError, KeyError, ... on damaged files
        raise DataError(f"{path}: cannot read HDF5 file (truncated or corrupt?): {' '.join(str(exc).split())}") from None
    if out is None:
        st, un, cn = (np.zeros(0, step_dtype(timesteps)), np.zeros(0, unit_dtype(n_channels)),
                      np.zeros(0, count_dtype(graded)))
    else:
        st, un, cn = out.result()
    return SpikeDataset(st, un, cn, offsets, labels, n_channels, n_classes, timesteps, dt, name=f"{path.name}",
                        n_cropped=crop[0], steps_needed=crop[1])


def _largest_unit(units_ds, start: int, stop: int) -> int:
    most = -1
    for a in range(start, stop, READ_CHUNK):
        for u in units_ds[a:min(stop, a + READ_CHUNK)]:
            if len(u):
                most = max(most, int(_integer_values(u, "spike file", "spikes/units").max()))
    return most


def _read_chunk(path, times_ds, units_ds, a: int, b: int, dt: float, timesteps: int, n_channels: int,
                graded: bool, crop: list):
    times, units = times_ds[a:b], units_ds[a:b]
    try:
        lengths = np.fromiter((len(t) for t in times), dtype=np.int64, count=len(times))
        unit_lengths = np.fromiter((len(u) for u in units), dtype=np.int64, count=len(units))
    except TypeError:
        raise DataError(f"{path}: spikes/times and spikes/units must hold one array per sample "
                        f"(variable-length datasets)") from None
    bad = np.nonzero(lengths != unit_lengths)[0]
    if len(bad):
        i = bad[0]
        raise DataError(f"{path}: sample {a + i} has {lengths[i]} spike times but {unit_lengths[i]} units")
    # Widened, never re-rounded: SHD/SSC store float16, other files keep their own precision.
    try:
        all_times = np.concatenate(times) if len(times) else np.zeros(0)
        all_units = np.concatenate(units) if len(units) else np.zeros(0, np.int64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: spikes/times and spikes/units must hold numbers: {exc}") from None
    del times, units
    if all_times.dtype.kind not in "fiu":
        raise DataError(f"{path}: spikes/times have dtype {all_times.dtype}, expected numbers (seconds)")
    all_units = _integer_values(all_units, path, "spikes/units")
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    sample_of = a + np.repeat(np.arange(len(lengths)), lengths)
    _check_range(all_units, n_channels, path, "unit index", "channels", sample_of)
    if len(all_times) and not np.isfinite(all_times).all():
        raise DataError(f"{path}: spikes/times contains NaN or inf")
    if len(all_times) and all_times.min() < 0:
        i = int(np.argmin(all_times))
        raise DataError(f"{path}: negative spike time {float(all_times[i]):g} s (sample {int(sample_of[i])}); "
                        f"times must be >= 0")
    if len(all_times):   # counted as from_events counts them (the binner itself only drops them)
        steps = time_to_step(all_times, dt)
        crop[0] += int(np.count_nonzero(steps >= timesteps))
        crop[1] = max(crop[1], int(steps.max()) + 1)
    return bin_times_chunk(offsets, all_times, all_units, dt=dt, timesteps=timesteps, n_channels=n_channels,
                           graded=graded)


def write_spike_file(path, times_s: list, units: list, labels, *, extra_keys: bool = True) -> None:
    """Write samples in tonic's SHD layout (used by tests and by the synthetic-to-file exporter)."""
    write_spike_chunks(path, len(labels), [(times_s, units, labels)], extra_keys=extra_keys)


def write_spike_chunks(path, n: int, chunks, *, extra_keys: bool = True) -> None:
    """Write n samples in tonic's SHD layout from an iterable of (times_s, units, labels) chunks, one
    chunk in memory at a time; the file appears (atomically) only when complete."""
    from eventprop_core.atomic import atomic_path

    vt = h5py.vlen_dtype(np.dtype("float16"))
    vu = h5py.vlen_dtype(np.dtype("uint16"))
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            t = f.create_dataset("spikes/times", (n,), dtype=vt)
            u = f.create_dataset("spikes/units", (n,), dtype=vu)
            lab = f.create_dataset("labels", (n,), dtype=np.uint16)
            if extra_keys:
                f.create_dataset("extra/speaker", data=np.zeros(n, dtype=np.uint16))
            at = 0
            for times_s, units, labels in chunks:
                k = len(labels)
                tt, uu = np.empty(k, dtype=object), np.empty(k, dtype=object)
                for i in range(k):
                    tt[i] = np.asarray(times_s[i], dtype=np.float16)
                    uu[i] = np.asarray(units[i], dtype=np.uint16)
                if len({len(x) for x in tt}) > 1:
                    t[at:at + k], u[at:at + k] = tt, uu
                else:   # h5py would read equal lengths as one 2-D array
                    for i in range(k):
                        t[at + i], u[at + i] = tt[i], uu[i]
                lab[at:at + k] = np.asarray(labels, dtype=np.uint16)
                at += k
            if at != n:
                raise ValueError(f"write_spike_chunks: {at} samples given, {n} announced")


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
