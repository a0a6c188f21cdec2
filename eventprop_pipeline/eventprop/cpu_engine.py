"""CPU engine: event-driven forward and Eventprop backward in numba, parallel over the batch."""
from __future__ import annotations

import numpy as np

from ..model.readout import readout_weights
from eventprop_core.network import Network
from . import numba_kernels as K
from . import regulariser
from .adjoint_units import jump_ratio
from .inputs import EventBatch
from .loss_terms import avg_readout_error, per_timestep_error
from .options import BatchResult, LossOptions, ShardSpec


class SpikeRecord:
    """Hidden spikes of a batch as events: per sample, neuron ids ordered by step, step offsets
    (T + 1), and I - V at each spike (the Eventprop jump's denominator)."""

    def __init__(self, B: int, T: int, capacity: int):
        self.neuron = np.empty((B, capacity), dtype=np.int32)
        self.den = np.empty((B, capacity), dtype=np.float64)
        self.offsets = np.zeros((B, T + 1), dtype=np.int32)


# Gradient accumulators per batch: a fixed number (not the thread count) keeps results bit-identical
# on any machine's thread count; more than the cores only costs memory.
GRADIENT_CHUNKS = 8


# Below this many neuron-steps (B T H) a batch runs on one thread: waking the pool costs more.
PARALLEL_MIN_WORK = 2_000_000


def _parallel(B: int, T: int, H: int) -> bool:
    return B > 1 and B * T * H >= PARALLEL_MIN_WORK


def _weights32(net: Network, name: str) -> np.ndarray:
    return np.ascontiguousarray(net.weights[name], dtype=np.float32)


# Largest number of spikes one sample needed so far, per (H, T): a batch that overflows its spike
# record is run again, and the next batches start with enough room.
_capacity_seen: dict[tuple[int, int], int] = {}


def _capacity_guess(H: int, T: int) -> int:
    return max(1024, min(H * T, 32 * H), _capacity_seen.get((H, T), 0))


def forward(net: Network, ev: EventBatch, *, record_trace: bool = False, capacity: int | None = None):
    """Run the batch; returns (v_avg (B, O) float64, spike counts (B, H) int64, SpikeRecord, trace)."""
    p = net.params
    B, T = ev.batch_size, ev.timesteps
    # float32 weights widen exactly to float64 inside the kernels, at half the memory traffic.
    w_ih, w_hh, w_ho = (_weights32(net, k) for k in ("input_hidden", "hidden_hidden", "hidden_output"))
    H, O = w_ih.shape[1], w_ho.shape[1]
    rw = readout_weights(p, T)
    capacity = capacity or _capacity_guess(H, T)
    while True:
        rec = SpikeRecord(B, T, capacity)
        v_avg = np.zeros((B, O))
        counts = np.zeros((B, H), dtype=np.int64)
        trace = np.zeros((B, T if record_trace else 0, O))
        n_spikes = np.zeros(B, dtype=np.int64)
        run = K.forward_batch if _parallel(B, T, H) else K.forward_batch_serial
        run(ev.steps, ev.units, ev.counts, ev.offsets, T, w_ih, w_hh, w_ho, p.alpha, p.beta,
            p.i_scale, p.v_thresh, rw, rec.neuron, rec.den, rec.offsets, v_avg, counts,
            trace if record_trace else np.zeros((B, 1, O)), record_trace, n_spikes)
        needed = int(n_spikes.max()) if B else 0
        if needed <= capacity:
            return v_avg, counts, rec, (trace if record_trace else None)
        capacity = needed + needed // 4
        _capacity_seen[H, T] = max(_capacity_seen.get((H, T), 0), capacity)


def compute(net: Network, ev: EventBatch, labels: np.ndarray, opts: LossOptions,
            shard: ShardSpec | None = None) -> BatchResult:
    p = net.params
    B, T = ev.batch_size, ev.timesteps
    per_step = opts.loss == "per_timestep"
    v_avg, counts, rec, trace = forward(net, ev, record_trace=per_step)
    H, O = counts.shape[1], v_avg.shape[1]
    B_all = B if shard is None else shard.global_size
    if per_step:
        loss, err_trace = per_timestep_error(trace, labels, B_all)
        err_coef = np.zeros((B, O))
    else:
        loss, err_coef = avg_readout_error(v_avg, labels, B_all)
        err_trace = np.zeros((B, 1, O))
    batch_counts = counts.sum(axis=0)
    if shard is not None:
        batch_counts = np.asarray(shard.reduce_counts(batch_counts), dtype=np.int64)
    reg_jump = regulariser.adjoint_jumps(batch_counts, B_all, opts, p)
    w_hh, w_ho = _weights32(net, "hidden_hidden"), _weights32(net, "hidden_output")
    n_in = net.n_input
    n_chunks = max(1, min(B, GRADIENT_CHUNKS)) if shard is None else shard.n_chunks
    g_ih = np.zeros((n_chunks, n_in, H))
    g_hh = np.zeros((n_chunks, H, H))
    g_ho = np.zeros((n_chunks, H, O))
    c = (1.0 - p.alpha) * p.i_scale
    run = K.backward_batch if _parallel(B, T, H) else K.backward_batch_serial
    run(ev.steps, ev.units, ev.counts, ev.offsets, T, w_hh, w_ho, p.alpha, p.beta, c,
        jump_ratio(p), p.v_thresh, rec.neuron, rec.den, rec.offsets, err_coef,
        readout_weights(p, T), err_trace, per_step, reg_jump, g_ih, g_hh, g_ho)
    chunks = {"input_hidden": g_ih, "hidden_hidden": g_hh, "hidden_output": g_ho}
    extras = {"n_hidden_spikes": int(counts.sum())}
    if shard is None:
        grads = {name: sum_chunks(g, parallel=_parallel(B, T, H)) for name, g in chunks.items()}
    else:
        grads, extras["v_avg"] = chunks, v_avg
    return BatchResult(loss, grads, v_avg.astype(np.float32), counts,
                       reg_loss=regulariser.penalty(batch_counts, B_all, opts, p), extras=extras)


def sum_chunks(g: np.ndarray, *, parallel: bool) -> np.ndarray:
    """float32 gradient from float64 chunk accumulators (n_chunks, rows, cols), summed in chunk order."""
    out = np.empty(g.shape[1:])
    if parallel:
        K.sum_chunks(g, out)
    else:
        np.sum(g, axis=0, out=out)
    return out.astype(np.float32)
