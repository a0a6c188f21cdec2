"""Data-parallel training and evaluation with torch.distributed (gloo on CPUs, NCCL on GPUs).

Why the weights do not depend on the number of processes N: the CPU engine sums a batch's
per-sample gradients into n = min(B, 8) float64 accumulators, accumulator q holding samples
q, q + n, q + 2n, ... in that order, and then adds the accumulators in the order q = 0, 1, ...
A data-parallel run splits the global batch along exactly these accumulators ("chunks"): rank r
computes chunks [n r / N, n (r + 1) / N), each summed over the same samples in the same order as in
a single process, all ranks gather every chunk, and every rank adds them in the order q = 0, 1, ...
The regulariser sees the global batch's per-neuron spike counts (an integer all-reduce between the
forward and backward passes, exact in any order) and the loss is normalised by the global batch
size; so every float operation is the single process's, and the weights are bit-identical for any
N <= 8 (ranks beyond the batch's chunk count get no samples). The torch engine (CUDA) sums a
batch with matmuls, so there the result depends on N within float rounding (about 1e-7 relative).
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from ..errors import PipelineError

DEFAULT_TIMEOUT_S = 600.0
ENV_TIMEOUT = "EVENTPROP_DIST_TIMEOUT"
WEIGHT_ORDER = ("input_hidden", "hidden_hidden", "hidden_output")


class DistributedError(PipelineError):
    """Another rank failed or stopped answering (its own message says why)."""


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = "none"

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_root(self) -> bool:
        return self.rank == 0


SINGLE = Context()


def env_context() -> Context:
    """The rank read from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK); SINGLE without it."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return SINGLE
    return Context(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")), "pending")


def connect(device: str, timeout_s: float | None = None) -> "tuple[Comm | None, str]":
    """(Comm, this rank's device) when the environment describes a data-parallel run, else (None, device)."""
    ctx, device = init_from_env(device, timeout_s)
    return (Comm(ctx) if ctx.active else None), device


def init_from_env(device: str, timeout_s: float | None = None) -> tuple[Context, str]:
    """Join the process group described by the environment; returns (context, this rank's device).

    gloo for the CPU engine, NCCL for CUDA (one GPU per local rank). Collectives time out after
    timeout_s (default $EVENTPROP_DIST_TIMEOUT or 600 s), so a stopped rank ends the run.
    """
    ctx = env_context()
    if not ctx.active:
        return ctx, device
    import torch
    import torch.distributed as dist

    timeout_s = float(timeout_s or os.environ.get(ENV_TIMEOUT, DEFAULT_TIMEOUT_S))
    cuda = device.startswith("cuda")
    backend = "nccl" if cuda else "gloo"
    if cuda:
        torch.cuda.set_device(ctx.local_rank)
        device = f"cuda:{ctx.local_rank}"
    _share_cores()
    if not dist.is_initialized():
        try:
            dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
        except Exception as exc:   # missing MASTER_ADDR, unreachable rank 0, timeout, ...
            raise DistributedError(
                f"rank {ctx.rank} of {ctx.world_size}: cannot join the {backend} process group ({exc}); start "
                f"the ranks with torchrun (or --nproc), which sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT"
            ) from None
    return Context(ctx.rank, ctx.world_size, ctx.local_rank, backend), device


def _share_cores() -> None:
    """N local processes split the cores instead of each starting one thread per core."""
    local = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
    threads = max(1, (os.cpu_count() or 1) // max(1, local))
    import numba
    import torch
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    torch.set_num_threads(threads)


def shutdown(ctx: Context) -> None:
    if ctx.active:
        import torch.distributed as dist
        if dist.is_initialized():
            dist.destroy_process_group()


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


class Comm:
    """Collectives of one rank (thin wrappers over torch.distributed, numpy in and out)."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.tensor_device = f"cuda:{ctx.local_rank}" if ctx.backend == "nccl" else "cpu"

    @property
    def rank(self) -> int:
        return self.ctx.rank

    @property
    def world(self) -> int:
        return self.ctx.world_size

    def _collective(self, what: str, fn):
        try:
            return fn()
        except DistributedError:
            raise
        except Exception as exc:  # gloo/NCCL raise RuntimeError subclasses with the backend's text
            raise DistributedError(
                f"rank {self.rank}: lost contact with the other ranks during {what} "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no details'})") from None

    def _tensor(self, a: np.ndarray):
        import torch
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.tensor_device)

    def sum(self, a: np.ndarray, what: str = "an all-reduce") -> np.ndarray:
        import torch.distributed as dist
        t = self._tensor(a)
        self._collective(what, lambda: dist.all_reduce(t))
        return t.cpu().numpy()

    def gather_rows(self, rows: np.ndarray, counts: list[int], what: str) -> np.ndarray:
        """Every rank's rows (counts[r] of them, same width) stacked in rank order, on every rank."""
        import torch
        import torch.distributed as dist
        width = rows.shape[1]
        most = max(counts)
        padded = np.zeros((most, width), rows.dtype)
        padded[:len(rows)] = rows
        t = self._tensor(padded)
        parts = [torch.empty_like(t) for _ in range(self.world)]
        self._collective(what, lambda: dist.all_gather(parts, t))
        return np.concatenate([p.cpu().numpy()[:c] for p, c in zip(parts, counts)])

    def agree(self, ok: bool, what: str) -> None:
        """Raise on every rank when `ok` is False on any (rank 0 alone may have failed a check)."""
        failed = self.sum(np.array([0 if ok else 1], np.int64), what)
        if failed[0] and ok:
            raise DistributedError(f"rank {self.rank}: stopping, another rank failed while {what} "
                                   "(its message says why)")

    def barrier(self, what: str) -> None:
        self.agree(True, what)


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


# ---------------------------------------------------------------- `--nproc N`: local processes

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rank_main(local_rank: int, nproc: int, port: int, timeout_s: float | None, args) -> None:
    """One spawned rank: torchrun's environment, then the command itself (errors print as `error: ...`)."""
    os.environ.update({"RANK": str(local_rank), "LOCAL_RANK": str(local_rank), "WORLD_SIZE": str(nproc),
                       "LOCAL_WORLD_SIZE": str(nproc), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    if timeout_s:
        os.environ[ENV_TIMEOUT] = str(timeout_s)
    from ..cli.main import dispatch
    code = dispatch(args)
    if code:
        raise SystemExit(code)


def launch_local(nproc: int, args, *, what: str, timeout_s: float | None = None) -> None:
    """Run `args.func(args)` in nproc local processes as ranks 0..nproc-1 (what torchrun would do on
    one machine). When a rank fails or is killed the others are stopped and a DistributedError says
    which rank and how."""
    import torch.multiprocessing as mp

    args.nproc = None
    try:
        mp.start_processes(_rank_main, args=(nproc, free_port(), timeout_s, args), nprocs=nproc, join=True,
                           start_method="spawn")
    except mp.ProcessExitedException as exc:
        how = (f"was killed by signal {exc.signal_name}" if getattr(exc, "signal_name", None)
               else f"exited with code {exc.exit_code}")
        raise DistributedError(f"rank {exc.error_index} of {nproc} {how} (its message, if any, is above); "
                               f"the other ranks were stopped. {what}") from None
    except mp.ProcessRaisedException as exc:
        last = [line for line in str(exc).strip().splitlines() if line.strip()][-1:]
        raise DistributedError(f"rank {exc.error_index} of {nproc} failed: {last[0] if last else exc}. "
                               f"{what}") from None


# ---------------------------------------------------------------- one binned copy per machine

def single_node() -> bool:
    return int(os.environ.get("LOCAL_WORLD_SIZE", "0") or 0) == int(os.environ.get("WORLD_SIZE", "1") or 1)


def load_shared(comm: Comm, n_total: int, load_part, what: str):
    """A split that every rank needs whole (training: each batch draws from all of it), binned once:
    rank r reads and bins only samples [n r / N, n (r + 1) / N) (load_part((start, stop))), writes
    them into memory-mapped files, and every rank maps the whole; the pages are shared, so the
    machine holds one copy. The files are unlinked once mapped (nothing is left on disk). One
    machine only: the files live in its temporary folder."""
    import tempfile
    from pathlib import Path

    from ..data.events import SpikeDataset

    start, stop = sample_range(n_total, comm.rank, comm.world)
    part = load_part((start, stop))
    events = np.zeros(comm.world, np.int64)
    events[comm.rank] = len(part.steps)
    events = comm.sum(events, f"sharing out {what}")
    first = int(events[:comm.rank].sum())
    total = int(events.sum())
    folder = Path(tempfile.gettempdir()) / (f"eventprop-shared-{os.environ.get('MASTER_PORT', 'x')}-"
                                            f"{os.environ.get('TORCHELASTIC_RUN_ID', os.getppid())}-{what}")
    fields = {"steps": (part.steps.dtype, total), "units": (part.units.dtype, total),
              "counts": (part.counts.dtype, total), "offsets": (np.int64, n_total + 1), "labels": (np.int64, n_total)}
    from numpy.lib.format import open_memmap
    ok = True
    if comm.ctx.is_root:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for name, (dtype, n) in fields.items():
                open_memmap(folder / f"{name}.npy", mode="w+", dtype=dtype, shape=(max(n, 1),)).flush()
        except OSError:
            ok = False
    comm.agree(ok, f"creating the shared copy of {what} in {folder}")
    arrays = {name: open_memmap(folder / f"{name}.npy", mode="r+") for name in fields}
    arrays["steps"][first:first + len(part.steps)] = part.steps
    arrays["units"][first:first + len(part.steps)] = part.units
    arrays["counts"][first:first + len(part.steps)] = part.counts
    arrays["offsets"][start + 1:stop + 1] = part.offsets[1:] + first
    arrays["labels"][start:stop] = part.labels
    if comm.ctx.is_root:
        arrays["offsets"][0] = 0
    for a in arrays.values():
        a.flush()
    del arrays, part
    comm.barrier(f"writing the shared copy of {what}")
    mapped = {name: np.load(folder / f"{name}.npy", mmap_mode="r")[:n] for name, (_, n) in fields.items()}
    comm.barrier(f"mapping the shared copy of {what}")
    if comm.ctx.is_root:
        for name in fields:
            (folder / f"{name}.npy").unlink(missing_ok=True)
        folder.rmdir()
    meta = load_part((0, 0))
    return SpikeDataset(mapped["steps"], mapped["units"], mapped["counts"], mapped["offsets"], mapped["labels"],
                        meta.n_channels, meta.n_classes, meta.timesteps, meta.dt, meta.name)


def shared_run_data_loader(comm: Comm, cfg):
    """load_run_data's loader for SHD/SSC files on one machine (see load_shared); None otherwise
    (synthetic data is generated by every rank; across machines every rank loads its own copy)."""
    d, net = cfg.data, cfg.network
    if d.dataset not in ("shd", "ssc") or not single_node():
        return None
    from ..data.registry import load_dataset, split_size
    root = d.data_root or None

    def load(split: str, limit: int):
        n = split_size(d.dataset, split, data_root=root, limit=limit or None)
        return load_shared(comm, n, lambda samples: load_dataset(
            d.dataset, split, data_root=root, dt=net.dt, timesteps=net.timesteps, limit=limit or None,
            samples=samples), f"{d.dataset}-{split}")
    return load
