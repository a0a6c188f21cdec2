"""Compact per-event storage built chunk by chunk: a step and a unit in 16 bits each, a count in 8
(16 when graded), so SSC's 75,466 training samples fit in a few GB and load without sorting
everything at once.

bin_chunk mirrors from_events (events.py, the reference: np.unique over (sample, step, unit) keys)
sample by sample: keys sorted within a sample, duplicates merged, out-of-range events dropped.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

U16 = np.iinfo(np.uint16).max


def step_dtype(timesteps: int):
    return np.uint16 if timesteps <= U16 + 1 else np.int32


def unit_dtype(n_channels: int):
    return np.uint16 if n_channels <= U16 + 1 else np.int32


def count_dtype(graded: bool):
    return np.uint16 if graded else np.uint8


@njit(cache=True, nogil=True)
def _sort_keys(keys, steps_sorted):
    if steps_sorted:   # time-ordered input: only a few events per step are out of order
        for i in range(1, len(keys)):
            k = keys[i]
            j = i - 1
            while j >= 0 and keys[j] > k:
                keys[j + 1] = keys[j]
                j -= 1
            keys[j + 1] = k
    else:
        keys[:] = np.sort(keys)


@njit(parallel=True, cache=True, nogil=True)
def _keys_from_steps(offsets, steps, units, T, C, key, n_valid, ordered):
    """Per sample: keys step*C + unit of the events inside the grid, at the sample's raw offset."""
    for s in prange(len(offsets) - 1):
        a, b = offsets[s], offsets[s + 1]
        n, last, ok = 0, -1, True
        for e in range(a, b):
            st, u = np.int64(steps[e]), np.int64(units[e])
            if st >= 0 and st < T and u >= 0 and u < C:
                key[a + n] = st * C + u
                n += 1
                ok = ok and st >= last
                last = st
        n_valid[s], ordered[s] = n, ok


@njit(parallel=True, cache=True, nogil=True)
def _keys_from_times(offsets, times, units, dt, T, C, key, n_valid, ordered):
    """_keys_from_steps with the step of each time computed as binning.time_to_step does (same
    float64 operations, so the same bins)."""
    for s in prange(len(offsets) - 1):
        a, b = offsets[s], offsets[s + 1]
        n, last, ok = 0, -1, True
        for e in range(a, b):
            t_ms = np.float64(times[e]) * 1000.0
            k = np.floor(t_ms / dt)
            if (k + 1) * dt <= t_ms:
                k += 1
            if k * dt > t_ms:
                k -= 1
            u = np.int64(units[e])
            if k >= 0 and k < T and u >= 0 and u < C:
                st = np.int64(k)
                key[a + n] = st * C + u
                n += 1
                ok = ok and st >= last
                last = st
        n_valid[s], ordered[s] = n, ok


@njit(parallel=True, cache=True, nogil=True)
def _sort_and_merge(offsets, key, n_valid, ordered, count, n_unique):
    """Per sample: sort its keys, merge duplicates (count), in place at the raw offset."""
    for s in prange(len(offsets) - 1):
        a = offsets[s]
        n = n_valid[s]
        keys = key[a:a + n]
        _sort_keys(keys, ordered[s])
        m = 0
        for i in range(n):
            if m > 0 and keys[i] == key[a + m - 1]:
                count[a + m - 1] += 1
            else:
                key[a + m] = keys[i]
                count[a + m] = 1
                m += 1
        n_unique[s] = m


@njit(parallel=True, cache=True, nogil=True)
def _compact(offsets, key, count, n_unique, starts, C, graded, cap, steps_out, units_out, counts_out):
    for s in prange(len(offsets) - 1):
        a, o = offsets[s], starts[s]
        for i in range(n_unique[s]):
            k = key[a + i]
            steps_out[o + i] = k // C
            units_out[o + i] = k % C
            counts_out[o + i] = min(count[a + i], cap) if graded else 1


def _finish(offsets, key, n_valid, ordered, timesteps, n_channels, graded):
    n = len(offsets) - 1
    count = np.empty(len(key), np.int64)
    n_unique = np.zeros(n, np.int64)
    _sort_and_merge(offsets, key, n_valid, ordered, count, n_unique)
    starts = np.zeros(n, np.int64)
    np.cumsum(n_unique[:-1], out=starts[1:])
    total = int(n_unique.sum())
    steps = np.empty(total, step_dtype(timesteps))
    units = np.empty(total, unit_dtype(n_channels))
    counts = np.empty(total, count_dtype(graded))
    _compact(offsets, key, count, n_unique, starts, int(n_channels), bool(graded), U16, steps, units, counts)
    return steps, units, counts, n_unique


def bin_chunk(offsets: np.ndarray, steps: np.ndarray, units: np.ndarray, *, timesteps: int, n_channels: int,
              graded: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(steps, units, counts, per-sample event counts) of a chunk of samples given as raw events
    (CSR over samples, any order): compact dtypes, sorted by (step, unit) within each sample."""
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    n = len(offsets) - 1
    key = np.empty(len(steps), np.int64)
    n_valid, ordered = np.zeros(n, np.int64), np.zeros(n, np.bool_)
    _keys_from_steps(offsets, np.ascontiguousarray(steps), np.ascontiguousarray(units), int(timesteps),
                     int(n_channels), key, n_valid, ordered)
    return _finish(offsets, key, n_valid, ordered, timesteps, n_channels, graded)


def bin_times_chunk(offsets: np.ndarray, times_s: np.ndarray, units: np.ndarray, *, dt: float, timesteps: int,
                    n_channels: int, graded: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """bin_chunk of spike times in seconds (any float dtype), binned as binning.time_to_step does."""
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    n = len(offsets) - 1
    key = np.empty(len(times_s), np.int64)
    n_valid, ordered = np.zeros(n, np.int64), np.zeros(n, np.bool_)
    times = times_s if times_s.dtype in (np.float32, np.float64) else times_s.astype(np.float64)
    _keys_from_times(offsets, np.ascontiguousarray(times), np.ascontiguousarray(units), float(dt), int(timesteps),
                     int(n_channels), key, n_valid, ordered)
    return _finish(offsets, key, n_valid, ordered, timesteps, n_channels, graded)


class GrowingEvents:
    """Event arrays appended chunk by chunk into one allocation sized from an estimate; pages past the
    end are never touched, so an over-estimate costs address space, not memory."""

    def __init__(self, capacity: int, dtypes):
        self.arrays = [np.empty(max(1, capacity), dt) for dt in dtypes]
        self.size = 0

    def append(self, *parts: np.ndarray) -> None:
        n = len(parts[0])
        if self.size + n > len(self.arrays[0]):   # estimate too low: grow (copies once)
            new = max(self.size + n, int(1.5 * len(self.arrays[0])))
            grown = []
            for a in self.arrays:
                b = np.empty(new, a.dtype)
                b[:self.size] = a[:self.size]
                grown.append(b)
            self.arrays = grown
        for a, p in zip(self.arrays, parts):
            a[self.size:self.size + n] = p
        self.size += n

    def result(self) -> list[np.ndarray]:
        return [a[:self.size] for a in self.arrays]
