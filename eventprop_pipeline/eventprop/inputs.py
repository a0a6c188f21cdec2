"""Turn a batch (dense (B, T, n_in) spikes or a SpikeDataset) into what an engine needs."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.events import SpikeDataset
from eventprop_core.errors import DataError
from eventprop_core.network import Network


@dataclass(frozen=True)
class EventBatch:
    """Input spikes of B samples as events sorted by (sample, step, unit), CSR over samples."""

    steps: np.ndarray     # int32
    units: np.ndarray     # int32
    counts: np.ndarray    # float64 (spikes in the bin; 1 for binary input)
    offsets: np.ndarray   # int64, B + 1
    timesteps: int

    @property
    def batch_size(self) -> int:
        return len(self.offsets) - 1

    def dense(self, n_in: int) -> np.ndarray:
        out = np.zeros((self.batch_size, self.timesteps, n_in), dtype=np.float32)
        sample = np.repeat(np.arange(self.batch_size), np.diff(self.offsets))
        out[sample, self.steps, self.units] = self.counts
        return out


def check_labels(labels, B: int, n_out: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (B,):
        raise DataError(f"labels have shape {labels.shape}, expected ({B},) to match the batch")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.equal(np.mod(labels, 1), 0)):
            raise DataError(f"labels must be integers, got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n_out):
        bad = labels[(labels < 0) | (labels >= n_out)][0]
        raise DataError(f"label {bad} is outside [0, {n_out}) for a network with {n_out} outputs")
    return labels


def check_dataset(net: Network, data: SpikeDataset) -> None:
    """Data binned for another network (channels, dt, T) would give silently wrong readouts."""
    if data.n_channels != net.n_input:
        raise DataError(f"{data.name}: {data.n_channels} channels but the network expects {net.n_input}")
    if abs(data.dt - net.params.dt) > 1e-9 * net.params.dt:
        raise DataError(f"{data.name}: binned with dt={data.dt} ms but the network uses dt={net.params.dt} ms")
    check_timesteps(net, int(data.timesteps), data.name)


def check_timesteps(net: Network, T: int, what: str = "input") -> None:
    if T != net.params.timesteps:
        raise DataError(f"{what}: {T} time steps but the network's readout is defined over "
                        f"{net.params.timesteps} (bin the data with timesteps={net.params.timesteps})")


def to_events(net: Network, inputs, labels) -> tuple[EventBatch, np.ndarray]:
    """Events and validated labels of a batch given densely or as a SpikeDataset."""
    if len(inputs) == 0:
        raise DataError("the batch is empty: give at least one sample")
    if isinstance(inputs, SpikeDataset):
        check_dataset(net, inputs)
        ev = EventBatch(inputs.steps.astype(np.int32, copy=False), inputs.units.astype(np.int32, copy=False),
                        inputs.counts.astype(np.float64), inputs.offsets.astype(np.int64, copy=False),
                        int(inputs.timesteps))
        return ev, check_labels(labels, len(inputs), net.n_output)
    x = inputs
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.ndim != 3:
        raise DataError(f"input spikes must be a (batch, timesteps, channels) array, got shape {x.shape}")
    B, T, n_in = x.shape
    if n_in != net.n_input:
        raise DataError(f"input has {n_in} channels but the network expects {net.n_input}")
    check_timesteps(net, T)
    from . import numba_kernels as K
    if x.dtype == np.bool_:
        x = x.view(np.uint8)
    x = np.ascontiguousarray(x)
    per_sample = np.zeros(B, dtype=np.int64)
    K.count_nonzero_per_sample(x, per_sample)
    offsets = np.zeros(B + 1, dtype=np.int64)
    np.cumsum(per_sample, out=offsets[1:])
    n = int(offsets[-1])
    steps, units, counts = np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n, np.float64)
    K.dense_to_events(x, offsets, steps, units, counts)
    if n and not np.all(np.isfinite(counts)):
        raise DataError("input spikes contain NaN or inf")
    if n and counts.min() < 0:
        raise DataError(f"input spike counts must be >= 0, found {counts.min()}")
    ev = EventBatch(steps, units, counts, offsets, T)
    return ev, check_labels(labels, B, net.n_output)
