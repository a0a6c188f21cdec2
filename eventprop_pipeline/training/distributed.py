"""Processes of a data-parallel run (torch.distributed: gloo on CPUs, NCCL on GPUs): joining the
process group from torchrun's environment, numpy collectives with clear errors and timeouts, and
`--nproc N`'s local launcher. What the ranks compute is in data_parallel.py, shared data in
shared_data.py; the design is in docs/distributed.md.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from eventprop_core.errors import PipelineError

DEFAULT_TIMEOUT_S = 600.0
ENV_TIMEOUT = "EVENTPROP_DIST_TIMEOUT"


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


_lost_contact = False    # a collective failed: the backend's threads may abort a normal interpreter exit


def lost_contact() -> bool:
    """True once a collective failed in this process (then only os._exit ends it cleanly: gloo's
    threads call std::terminate when the interpreter tears them down)."""
    return _lost_contact


def shutdown(ctx: Context) -> None:
    if ctx.active:
        import torch.distributed as dist
        if dist.is_initialized():
            dist.destroy_process_group()


def _backend_reason(exc: Exception) -> str:
    """The backend's own words, without its source location and advice: e.g. 'Connection reset by peer'."""
    import re
    text = (str(exc).splitlines() or ["no details"])[0]
    text = re.sub(r"\[[^\]]*\.(cc|cpp|h):\d+\]\s*", "", text).split(" This is typically")[0]
    return f"{type(exc).__name__}: {text.strip()}"


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
            global _lost_contact
            _lost_contact = True
            raise DistributedError(f"rank {self.rank}: lost contact with the other ranks during {what} "
                                   f"({_backend_reason(exc)})") from None

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
    import logging

    import torch.multiprocessing as mp

    logging.getLogger("torch.multiprocessing.spawn").setLevel(logging.ERROR)   # our error says it
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
