"""Run a NetX HDF5 network in Lava (`Loihi2SimCfg(select_tag="fixed_pt")`, or Loihi 2 hardware) with an
exact per-sample reset (docs/lava.md), in Lava's own Python 3.10 environment (`lava_env`).

Lava runs in a worker subprocess (`lava_bridge.worker`); this side sends it the input events as a file,
collects each finished sample's result file, computes the scores, and keeps the checkpoint: a rerun
with the same checkpoint continues where the last one stopped. The worker is in its own process
group, which is killed on every exit path (error, Ctrl-C, watchdog), and it dies with this process.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eventprop_core.atomic import save_npz
from eventprop_core.errors import DataError, PipelineError
from eventprop_core.provenance import sha256_file

from .emulator import EXTRA_STEPS, EmulatorResult, readout_score_weights
from .fixed_point import FixedPointNetwork
from .lava_env import LavaNotFound, find_lava_python, run_in_lava
from .lava_bridge.worker import ERROR_FILE, JOB_FILE, ROWS_DIR, row_path

SAVE_INTERVAL_S = 10.0   # how often a long Lava run rewrites its checkpoint
# Watchdog: a sample that takes longer than this is a stuck run (the first includes Lava's compile).
STALL_ENV = "EVENTPROP_LAVA_STALL_S"
DEFAULT_STALL_S = 600.0


class LavaRunError(PipelineError):
    """Lava is missing, the hardware is not reachable, or a checkpoint does not fit this run."""


@dataclass
class LavaResult(EmulatorResult):
    indices: np.ndarray | None = None     # (N,) the data-set index of each row
    sample_seconds: np.ndarray | None = None   # wall time of each sample run here (the first includes compiling)


CHECKPOINT_KEYS = ("indices", "pred", "score", "hidden_spike_counts", "readout_v")


_SUMMARY = """
import sys
from lava.lib.dl.netx import hdf5
net = hdf5.Network(net_config=sys.argv[1])
print(net)
print("input shape", net.inp.shape, "-> output shape", net.out.shape)
"""


def lava_network_summary(path_h5) -> str:
    """lava-dl's own description of a NetX file (its layer table and shapes), loaded in Lava's environment."""
    try:
        return run_in_lava(_SUMMARY, str(Path(path_h5).resolve())).rstrip()
    except (LavaNotFound, RuntimeError) as exc:
        raise LavaRunError(f"{path_h5}: {exc}") from None


def data_fingerprint(data) -> str:
    """SHA-256 of the binary input events, labels, dt and T of a SpikeDataset: a checkpoint row is
    reused only for exactly the same samples."""
    h = hashlib.sha256()
    binary = data.counts > 0
    for arr in (data.offsets, data.steps[binary], data.units[binary], np.cumsum(binary), data.labels):
        h.update(np.ascontiguousarray(arr, dtype=np.int64).tobytes())
    h.update(f"{float(data.dt)!r}/{int(data.timesteps)}".encode())
    return h.hexdigest()


def _load_checkpoint(path: Path, sha: str, T: int, data_sha: str) -> dict[int, dict]:
    """Rows already done: {data index: {key: value}}; an unrelated checkpoint is an error."""
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            ck = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise LavaRunError(f"{path}: unreadable checkpoint ({exc}); delete it to start over") from None
    if str(ck.get("net_sha256")) != sha or int(ck.get("timesteps", -1)) != T:
        raise LavaRunError(f"{path}: checkpoint belongs to another network file or another T "
                           f"(timesteps {ck.get('timesteps')}); delete it or pass another --checkpoint")
    if str(ck.get("data_sha256")) != data_sha:
        raise LavaRunError(f"{path}: checkpoint was written for other input data (data set, split, dt or "
                           f"sample selection differ); delete it or pass another --checkpoint")
    keys = [k for k in CHECKPOINT_KEYS if k in ck]
    return {int(i): {k: ck[k][r] for k in keys if k != "indices"} for r, i in enumerate(ck["indices"])}


def _save_checkpoint(path: Path, done: dict[int, dict], sha: str, T: int, data_sha: str) -> None:
    order = list(done)
    arrays = {"indices": np.array(order, np.int64), "net_sha256": np.array(sha), "timesteps": np.array(T),
              "data_sha256": np.array(data_sha)}
    for k in CHECKPOINT_KEYS[1:]:
        if order and all(k in done[i] for i in order):
            arrays[k] = np.stack([done[i][k] for i in order])
    save_npz(path, **arrays)


def sequential_score(score_w: np.ndarray, v: np.ndarray) -> np.ndarray:
    """sum_j score_w[j] * v[j] accumulated step by step, in the emulator's order (identical floats)."""
    acc = np.zeros(v.shape[1])
    for j in range(len(score_w)):
        acc += score_w[j] * v[j]
    return acc


def _play_order_events(data, todo: np.ndarray):
    """CSR (offsets, steps, units) of the binary input of the samples to run, in play order."""
    starts, stops = data.offsets[todo], data.offsets[todo + 1]
    ev = np.concatenate([np.arange(a, b) for a, b in zip(starts, stops)]) if len(todo) else np.zeros(0, np.int64)
    keep = data.counts[ev] > 0
    sample_of_event = np.repeat(np.arange(len(todo)), stops - starts)
    per_sample = np.bincount(sample_of_event[keep], minlength=len(todo))
    offsets = np.zeros(len(todo) + 1, np.int64)
    np.cumsum(per_sample, out=offsets[1:])
    return offsets, data.steps[ev][keep].astype(np.int64), data.units[ev][keep].astype(np.int64)


def _check_checkpoint_path(path: Path) -> None:
    """Fail before any work when the checkpoint could never be written (so no run is lost at the end)."""
    if path.is_dir():
        raise LavaRunError(f"{path}: --checkpoint is a directory; give a file path such as {path / 'lava_checkpoint.npz'}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise LavaRunError(f"{path}: the checkpoint's folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise LavaRunError(f"{path}: the checkpoint cannot be written (read-only file or folder)")


def run_lava(path_h5, data, *, indices=None, progress: bool = True, hardware: bool = False,
             record_trace: bool = True, checkpoint=None, record_hidden: bool = False) -> LavaResult:
    """Run samples of `data` (a SpikeDataset) through the NetX file in Lava, one isolated sample at a time.

    Returns pred, score (same float units as the emulator), hidden spike counts, and with
    record_trace the integer readout v of every Lava step (N, T+2, n_out). record_hidden adds the
    hidden raster and the readout u (read every step: slower; not checkpointed), for bit-exact checks.
    """
    from .hdf5_io import read_netx

    path_h5 = Path(path_h5)
    fxnet = read_netx(path_h5)
    if not hasattr(data, "offsets"):
        raise DataError("run_lava: data must be a SpikeDataset")
    if data.n_channels != fxnet.n_input:
        raise DataError(f"{data.name}: {data.n_channels} input channels, but {path_h5} has {fxnet.n_input} inputs")
    T, S = int(data.timesteps), int(data.timesteps) + EXTRA_STEPS
    H, O = fxnet.hidden.size, fxnet.readout.size
    indices = np.arange(len(data)) if indices is None else np.asarray(indices, dtype=np.int64)
    if len(indices) and (indices.min() < 0 or indices.max() >= len(data)):
        raise DataError(f"{data.name}: sample indices must lie in 0..{len(data) - 1}")
    ck_path = Path(checkpoint) if checkpoint is not None else None
    if ck_path is not None:
        _check_checkpoint_path(ck_path)
    sha = sha256_file(path_h5)
    data_sha = data_fingerprint(data) if ck_path else ""
    done = _load_checkpoint(ck_path, sha, T, data_sha) if ck_path else {}
    without_trace = [int(i) for i in indices if int(i) in done and "readout_v" not in done[int(i)]]
    if record_trace and without_trace:
        raise LavaRunError(f"{ck_path}: checkpoint was written without readout traces; delete it or run "
                           f"without --trace")
    if record_hidden and any(int(i) in done for i in indices):
        raise LavaRunError(f"{ck_path}: record_hidden needs every sample run now (the hidden raster is not "
                           f"checkpointed); use another checkpoint file")
    todo = np.array([i for i in dict.fromkeys(indices.tolist()) if i not in done], np.int64)
    rasters: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    seconds: list[float] = []
    if len(todo):
        try:
            python = find_lava_python()
        except LavaNotFound as exc:
            raise LavaRunError(str(exc)) from None
        run = _Run(python, path_h5.resolve(), fxnet, S, readout_score_weights(fxnet, T), hardware, progress,
                   record_trace, record_hidden)
        _run_samples(run, data, todo, done, rasters, seconds,
                     save=lambda: _save_checkpoint(ck_path, done, sha, T, data_sha) if ck_path else None)

    rows = [done[int(i)] for i in indices]
    result = LavaResult(
        pred=np.array([r["pred"] for r in rows], np.int64).reshape(len(rows)),
        score=np.array([r["score"] for r in rows], np.float64).reshape(len(rows), O),
        hidden_spike_counts=np.array([r["hidden_spike_counts"] for r in rows], np.int64).reshape(len(rows), H),
        indices=indices, sample_seconds=np.array(seconds))
    if record_trace:
        result.readout_v = np.array([r["readout_v"] for r in rows], np.int32).reshape(len(rows), S, O)
    if record_hidden:
        result.hidden_spikes = np.array([rasters[int(i)][0] for i in indices], bool).reshape(len(rows), S, H)
        result.readout_u = np.array([rasters[int(i)][1] for i in indices], np.int32).reshape(len(rows), S, O)
    return result


@dataclass(frozen=True)
class _Run:
    python: str              # Lava's interpreter
    path_h5: Path
    fxnet: FixedPointNetwork
    steps: int               # T + 2 Lava steps per sample
    score_w: np.ndarray
    hardware: bool
    progress: bool
    record_trace: bool
    record_hidden: bool


def stall_seconds() -> float:
    value = os.environ.get(STALL_ENV)
    try:
        return float(value) if value else DEFAULT_STALL_S
    except ValueError:
        raise LavaRunError(f"{STALL_ENV}={value!r}: expected a number of seconds") from None


def _worker_failure(job: Path, log: Path, rc: int | None) -> str:
    err = job / ERROR_FILE
    if err.exists():
        return err.read_text().strip()
    tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-3:] if log.exists() else []
    return f"the Lava worker stopped (exit code {rc})" + (f"; its last output: {' | '.join(tail)}" if tail else "")


def _end_group(proc: subprocess.Popen) -> None:
    """Kill the worker and every process Lava forked (one process group); never waits forever."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


JOB_PREFIX = "eventprop_lava_"
MAX_JOB_PATH = 40      # Lava's sockets live under TMPDIR: a Unix socket path has at most 107 bytes


def _job_base() -> str:
    """Folder for the job folder: the usual temporary folder, or /tmp or /dev/shm where that path is
    too long for Lava's Unix sockets (a deep TMPDIR made Lava fail with a bare EOFError)."""
    room = MAX_JOB_PATH - len(JOB_PREFIX) - 9          # "/" + mkdtemp's 8 random characters
    for base in (tempfile.gettempdir(), "/tmp", "/dev/shm"):
        if len(base) <= room and os.path.isdir(base) and os.access(base, os.W_OK):
            return base
    raise LavaRunError(f"Lava needs a temporary folder with a path of at most {room} characters (its "
                       f"Unix sockets live there); TMPDIR={tempfile.gettempdir()} is longer and /tmp is not "
                       "writable: set TMPDIR to a short folder")


def _worker_tmpdir(job: Path) -> dict:
    """Lava's multiprocessing files go into the job folder, so they vanish with it."""
    return {"TMPDIR": str(job)}


def _run_samples(run: _Run, data, todo, done: dict, rasters: dict, seconds: list, save) -> None:
    """Start the worker on `todo` and collect its results one sample at a time; finished samples go
    into `done` and are saved periodically and on every exit."""
    from tqdm.auto import tqdm

    stall = stall_seconds()
    offsets, steps, units = _play_order_events(data, todo)
    H, O = run.fxnet.hidden.size, run.fxnet.readout.size
    config = {"net_path": str(run.path_h5), "n_input": run.fxnet.n_input, "n_hidden": H, "n_out": O,
              "steps_per_sample": run.steps, "hardware": run.hardware, "record_hidden": run.record_hidden}
    with tempfile.TemporaryDirectory(prefix=JOB_PREFIX, dir=_job_base(), ignore_cleanup_errors=True) as tmp:
        job = Path(tmp)      # the worker removes it if it outlives this process
        (job / ROWS_DIR).mkdir()
        with open(job / JOB_FILE, "wb") as fh:
            np.savez(fh, config=np.array(json.dumps(config)), offsets=offsets, steps=steps, units=units)
        log = job / "worker.log"
        with open(log, "wb") as log_fh:
            proc = subprocess.Popen([run.python, "-m", "netx_export.lava_bridge.worker", str(job), str(os.getpid())],
                                    stdin=subprocess.DEVNULL, stdout=log_fh, stderr=subprocess.STDOUT,
                                    start_new_session=True, cwd=job,
                                    env={**os.environ, "PYTHONNOUSERSITE": "1", **_worker_tmpdir(job)})
        last_save = last_row = time.monotonic()
        try:
            with tqdm(total=len(todo), desc="lava", unit="sample", disable=not run.progress) as bar:
                for k, index in enumerate(todo):
                    path = row_path(job, k)
                    t0 = time.perf_counter()
                    while not path.exists():
                        rc = proc.poll()
                        if rc is not None and not path.exists():
                            raise LavaRunError(_worker_failure(job, log, rc))
                        if time.monotonic() - last_row > stall:
                            raise LavaRunError(f"Lava made no progress for {stall:.0f} s on test sample {int(index)} "
                                               f"(stuck?); stopped it. Set {STALL_ENV} to allow longer samples")
                        time.sleep(0.02)
                    with np.load(path, allow_pickle=False) as z:
                        v, counts = z["v"], z["spike_counts"]
                        if run.record_hidden:
                            rasters[int(index)] = (z["spikes"].astype(bool), z["u"].astype(np.int32))
                    path.unlink()
                    last_row = time.monotonic()
                    score = sequential_score(run.score_w, v)
                    row = {"pred": np.int64(np.argmax(score)), "score": score, "hidden_spike_counts": counts}
                    if run.record_trace:
                        row["readout_v"] = v
                    done[int(index)] = row
                    seconds.append(time.perf_counter() - t0)
                    # The checkpoint holds every finished row: rewriting it after each sample would
                    # cost O(N^2) I/O on a long run, so save at most every SAVE_INTERVAL_S seconds.
                    if time.monotonic() - last_save >= SAVE_INTERVAL_S:
                        save()
                        last_save = time.monotonic()
                    bar.update(1)
        finally:
            _end_group(proc)   # first: nothing below may wait on Lava
            save()             # also on Ctrl-C or an error: finished samples are never lost
