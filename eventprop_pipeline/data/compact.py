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
def _bin_samples(offsets, steps, units, T, C, out_key, out_count, n_unique):
    """Per sample: sorted unique keys step*C + unit (written at the sample's raw offset) and counts."""
    for s in prange(len(offsets) - 1):
        a, b = offsets[s], offsets[s + 1]
        n = 0
        ordered = True
        last = -1
        for e in range(a, b):
            st, u = steps[e], units[e]
            if st >= 0 and st < T and u >= 0 and u < C:
                out_key[a + n] = st * C + u
                n += 1
                if st < last:
                    ordered = False
                last = st
        keys = out_key[a:a + n]
        _sort_keys(keys, ordered)
        m = 0
        for i in range(n):
            if m > 0 and keys[i] == out_key[a + m - 1]:
                out_count[a + m - 1] += 1
            else:
                out_key[a + m] = keys[i]
                out_count[a + m] = 1
                m += 1
        n_unique[s] = m


def bin_chunk(offsets: np.ndarray, steps: np.ndarray, units: np.ndarray, *, timesteps: int, n_channels: int,
              graded: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(steps, units, counts, per-sample event counts) of a chunk of samples given as raw events
    (CSR over samples, any order): compact dtypes, sorted by (step, unit) within each sample."""
    n = len(offsets) - 1
    key = np.empty(len(steps), np.int64)
    count = np.empty(len(steps), np.int64)
    n_unique = np.zeros(n, np.int64)
    _bin_samples(offsets.astype(np.int64), steps.astype(np.int64, copy=False), units.astype(np.int64, copy=False),
                 int(timesteps), int(n_channels), key, count, n_unique)
    keep = np.repeat(offsets[:-1], n_unique) + (np.arange(int(n_unique.sum())) -
                                               np.repeat(np.cumsum(n_unique) - n_unique, n_unique))
    key, count = key[keep], count[keep]
    counts = np.minimum(count, U16).astype(count_dtype(graded)) if graded else np.ones(len(key), np.uint8)
    return ((key // n_channels).astype(step_dtype(timesteps)), (key % n_channels).astype(unit_dtype(n_channels)),
            counts, n_unique)


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
