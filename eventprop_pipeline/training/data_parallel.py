"""What the ranks of a data-parallel run compute: their share of each batch and of each split, and
the reductions that give every rank the single-process result.

Why the weights do not depend on the number of processes N: the CPU engine sums a batch's
per-sample gradients into n = min(B, 8) float64 accumulators, accumulator q holding samples
q, q + n, q + 2n, ... in that order, and then adds the accumulators in the order q = 0, 1, ...
A data-parallel run splits the global batch along exactly these accumulators ("chunks"): rank r
computes chunks [n r / N, n (r + 1) / N), each summed over the same samples in the same order as in
a single process, all ranks gather every chunk, and every rank adds them in the order q = 0, 1, ...
The regulariser sees the global batch's per-neuron spike counts (an integer all-reduce between the
forward and backward passes, exact in any order) and the loss is normalised by the global batch
size; so every float operation is the single process's, and the weights are bit-identical for any
N (ranks beyond the batch's chunk count get no samples). The torch engine (CUDA) sums a batch
with matmuls, so there the batch is shared evenly and the result depends on N within float rounding.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .distributed import Comm

WEIGHT_ORDER = ("input_hidden", "hidden_hidden", "hidden_output")

# ---------------------------------------------------------------- how a global batch is split

def n_chunks(batch_size: int) -> int:
    """Gradient accumulators of a batch in the CPU engine (the unit that ranks share out)."""
    from ..eventprop.cpu_engine import GRADIENT_CHUNKS
    return max(1, min(batch_size, GRADIENT_CHUNKS))


def chunk_range(n: int, rank: int, world: int) -> tuple[int, int]:
    """Chunks [q0, q1) of rank `rank`: contiguous, as even as possible, in rank order."""
    return n * rank // world, n * (rank + 1) // world


def local_positions(batch_size: int, rank: int, world: int) -> tuple[np.ndarray, int]:
    """(positions in the global batch of this rank's samples, in the order the engine needs, number
    of local chunks). Global chunk q holds positions q, q + n, ...; locally, chunk q - q0 must hold
    local samples q - q0, q - q0 + m, ... (m local chunks), so the rows are interleaved."""
    n = n_chunks(batch_size)
    q0, q1 = chunk_range(n, rank, world)
    rows = -(-batch_size // n)
    pos = [q + j * n for j in range(rows) for q in range(q0, q1) if q + j * n < batch_size]
    return np.asarray(pos, dtype=np.int64), q1 - q0


def batch_share(batch_size: int, rank: int, world: int, device: str) -> tuple[np.ndarray, int]:
    """This rank's positions in a global batch and its number of gradient chunks. The CPU engine
    splits along its chunks (bit-identical for any N; at most 8 ranks busy per batch); the torch
    engine (CUDA) sums with matmuls anyway, so there the samples are shared evenly over all ranks."""
    if device == "cpu":
        return local_positions(batch_size, rank, world)
    start, stop = sample_range(batch_size, rank, world)
    return np.arange(start, stop), 1


@dataclass
class StepResult:
    """What the trainer needs from one global batch, identical on every rank."""
    grads: dict[str, np.ndarray]      # float32, the global batch's gradient
    v_avg: np.ndarray                 # (B, O) float64 readout of every sample, global order
    neuron_counts: np.ndarray         # (H,) int64 hidden spikes of the global batch per neuron
    loss: float                       # mean loss over the global batch


def global_step(comm: Comm, net, samples_local, labels_local: np.ndarray, positions: np.ndarray,
                m_local: int, global_labels: np.ndarray, options, device: str) -> StepResult:
    """Forward + Eventprop backward of this rank's part of a global batch, and the reductions that
    give every rank the single-process result (see the module doc)."""
    from ..eventprop import compute_batch
    from ..eventprop.cpu_engine import sum_chunks
    from ..eventprop.loss_terms import avg_readout_error
    from ..eventprop.options import ShardSpec

    B = len(global_labels)
    H, O = net.n_hidden, net.n_output
    cpu = device == "cpu"
    if cpu:
        chunk_counts = [q1 - q0 for q0, q1 in (chunk_range(n_chunks(B), r, comm.world) for r in range(comm.world))]
    else:   # the torch engine gives one float64 sum per rank that has samples
        chunk_counts = [int(stop > start) for start, stop in (sample_range(B, r, comm.world) for r in range(comm.world))]
    reduced = {}

    def reduce_counts(local: np.ndarray) -> np.ndarray:
        reduced["counts"] = comm.sum(np.asarray(local, np.int64), "the spike-count all-reduce")
        return reduced["counts"]

    spec = ShardSpec(B, m_local, reduce_counts)
    G = sum(net.weights[k].size for k in WEIGHT_ORDER)
    if len(positions):
        result = compute_batch(net, samples_local, labels_local, options=options, device=device, shard=spec)
        flat = np.concatenate([result.grads[k].reshape(len(result.grads[k]), -1) for k in WEIGHT_ORDER], axis=1)
        v_local, loss_local = result.extras["v_avg"], result.loss
    else:   # no samples in this batch: take part in the collectives with nothing
        reduce_counts(np.zeros(H, np.int64))
        flat, v_local, loss_local = np.zeros((0, G)), np.zeros((0, O)), 0.0
    chunks = comm.gather_rows(flat, [int(c) for c in chunk_counts], "the gradient all-gather")
    grads, start = {}, 0
    for k in WEIGHT_ORDER:
        shape = net.weights[k].shape
        size = int(np.prod(shape))
        g = np.ascontiguousarray(chunks[:, start:start + size]).reshape(len(chunks), *shape)
        grads[k] = sum_chunks(g, parallel=False)
        start += size
    v_avg = np.zeros((B, O))
    v_avg[positions] = v_local
    extra = np.array([loss_local * len(positions)])
    packed = comm.sum(np.concatenate([v_avg.ravel(), extra]), "the readout all-reduce")
    v_avg = packed[:-1].reshape(B, O)
    if options.loss == "per_timestep":
        loss = float(packed[-1] / B)    # metric only: not bit-identical to one process (see docs)
    else:
        loss = avg_readout_error(v_avg, global_labels)[0]
    return StepResult(grads, v_avg, reduced["counts"], loss)


# ---------------------------------------------------------------- evaluation

def sample_range(n: int, rank: int, world: int) -> tuple[int, int]:
    """Samples [start, stop) of a split that rank `rank` evaluates: contiguous, in rank order."""
    return n * rank // world, n * (rank + 1) // world


def gather_evaluation(comm: Comm, local, start: int, n: int):
    """The whole split's EvaluationResult on every rank, from each rank's result for samples
    [start, start + len(local)); every value has exactly one contributor, so the sums are exact."""
    from ..evaluation import EvaluationResult

    O = local.score.shape[1]
    stop = start + len(local.label)
    ints = np.zeros((n, 3), np.int64)
    ints[start:stop] = np.stack([local.pred, local.label, local.hidden_spikes], axis=1)
    scores = np.zeros((n, O), np.float64)
    scores[start:stop] = local.score
    ints = comm.sum(ints, "the evaluation all-reduce")
    scores = comm.sum(scores, "the evaluation all-reduce")
    return EvaluationResult(ints[:, 0], ints[:, 1], scores.astype(local.score.dtype), ints[:, 2], local.backend)


def evaluate_float(comm: Comm, net, data, *, batch_size: int, device: str, progress: bool = False):
    """evaluate_float over a split that every rank holds, each rank simulating its own range."""
    from ..evaluation import evaluate_float as evaluate_one

    start, stop = sample_range(len(data), comm.rank, comm.world)
    local = evaluate_one(net, data.subset(np.arange(start, stop)), batch_size=batch_size, device=device,
                         progress=progress) if stop > start else empty_result(net.n_output, "float")
    return gather_evaluation(comm, local, start, len(data))


def empty_result(n_output: int, backend: str):
    """The EvaluationResult of a rank with no samples (more ranks than samples)."""
    from ..evaluation import EvaluationResult
    z = np.zeros(0, np.int64)
    return EvaluationResult(z, z, np.zeros((0, n_output), np.float32), z, backend)
