"""Run a NetX HDF5 network in Lava (`Loihi2SimCfg(select_tag="fixed_pt")`, or Loihi 2 hardware) with an
exact per-sample reset (docs/lava.md). Lava is imported only inside `run_lava`.

Each sample runs T + 2 steps; then the run pauses and u, v of every layer and every synapse's a_buff
are zeroed, which reproduces an isolated run bit for bit (netx's reset_interval leaves the Dense
buffers alone). Input spikes are binary (lava-dl #372) and played from sparse events held by one
source process. Results go to an optional checkpoint .npz after every sample; a rerun with the same
checkpoint continues where the last one stopped.
"""
from __future__ import annotations

import hashlib
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eventprop_pipeline.atomic import atomic_path
from eventprop_pipeline.errors import DataError, PipelineError
from eventprop_pipeline.provenance import sha256_file

from .emulator import EXTRA_STEPS, EmulatorResult, readout_score_weights
from .fixed_point import FixedPointNetwork

SAVE_INTERVAL_S = 10.0   # how often a long Lava run rewrites its checkpoint


class LavaRunError(PipelineError):
    """Lava is missing, the hardware is not reachable, or a checkpoint does not fit this run."""


@dataclass
class LavaResult(EmulatorResult):
    indices: np.ndarray | None = None     # (N,) the data-set index of each row
    sample_seconds: np.ndarray | None = None   # wall time of each sample run here (the first includes compiling)


CHECKPOINT_KEYS = ("indices", "pred", "score", "hidden_spike_counts", "readout_v")


def import_lava() -> None:
    """Import Lava's runtime even if something (e.g. a tqdm bar) already fixed the multiprocessing
    start method: Lava calls mp.set_start_method('fork') without force=True at import."""
    import multiprocessing as mp
    import sys

    name = "lava.magma.runtime.message_infrastructure.multiprocessing"
    if name in sys.modules or mp.get_start_method(allow_none=True) is None:
        import lava.magma.core.process.process  # noqa: F401
        return
    if mp.get_start_method() != "fork":
        raise LavaRunError(f"Lava needs the 'fork' multiprocessing start method, but this process already "
                           f"uses {mp.get_start_method()!r}; run Lava in a fresh Python process")
    original = mp.set_start_method
    mp.set_start_method = lambda method=None, force=False: original(method, force=True)
    try:
        import lava.magma.core.process.process  # noqa: F401
    finally:
        mp.set_start_method = original


def check_hardware_available() -> None:
    import_lava()
    from lava.utils.loihi import is_installed

    if not is_installed():
        raise LavaRunError("--hardware needs Intel's lava-loihi extension (available to INRC members), "
                           "which is not installed; run without --hardware to use Lava's CPU simulator")


def _run_config(hardware: bool, model_map: dict):
    if hardware:
        check_hardware_available()
        from lava.magma.core.run_configs import Loihi2HwCfg
        return Loihi2HwCfg(exception_proc_model_map=model_map)
    from lava.magma.core.run_configs import Loihi2SimCfg
    return Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=model_map)


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
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


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


def run_lava(path_h5, data, *, indices=None, progress: bool = True, hardware: bool = False,
             record_trace: bool = True, checkpoint=None, record_hidden: bool = False) -> LavaResult:
    """Run samples of `data` (a SpikeDataset) through the NetX file in Lava, one isolated sample at a time.

    Returns pred, score (same float units as the emulator), hidden spike counts, and with
    record_trace the integer readout v of every Lava step (N, T+2, n_out). record_hidden adds the
    hidden raster and the readout u (read every step: slower; not checkpointed), for bit-exact checks.
    """
    from .hdf5_io import read_netx

    if hardware:
        check_hardware_available()
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
    sha = sha256_file(path_h5)
    ck_path = Path(checkpoint) if checkpoint is not None else None
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
    run = _Run(path_h5, fxnet, S, readout_score_weights(fxnet, T), hardware, progress, record_trace, record_hidden)
    rasters: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    seconds: list[float] = []
    if len(todo):
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
    path_h5: Path
    fxnet: FixedPointNetwork
    steps: int               # T + 2 Lava steps per sample
    score_w: np.ndarray
    hardware: bool
    progress: bool
    record_trace: bool
    record_hidden: bool


def _run_samples(run: _Run, data, todo, done: dict, rasters: dict, seconds: list, save) -> None:
    """Build the netx network with an event source and a recorder, then run `todo` one sample at a
    time (reset between samples); finished samples go into `done` and are saved periodically and
    on exit."""
    import time

    import_lava()
    from lava.lib.dl.netx import hdf5
    from lava.magma.core.run_conditions import RunSteps
    from tqdm.auto import tqdm

    from .lava_processes import (EventSource, FullStepRecorder, PyEventSourceModel, PyFullStepRecorderModel,
                                 PyStepRecorderModel, StepRecorder)

    S, H, O = run.steps, run.fxnet.hidden.size, run.fxnet.readout.size
    offsets, steps, units = _play_order_events(data, todo)
    with tempfile.TemporaryDirectory(prefix="lava_run_") as tmp:
        paths = {name: str(Path(tmp) / f"{name}.bin") for name in ("spikes", "u", "v")}
        maps = {"spikes": np.memmap(paths["spikes"], np.uint8, "w+", shape=(S, H)),
                "u": np.memmap(paths["u"], np.int32, "w+", shape=(S, O)),
                "v": np.memmap(paths["v"], np.int32, "w+", shape=(S, O))}
        net = hdf5.Network(net_config=str(run.path_h5), input_message_bits=0)
        hidden, readout = net.layers[0], net.layers[1]
        source = EventSource(n_input=run.fxnet.n_input, period=S, offsets=offsets, steps=steps, units=units)
        sizes = dict(n_hidden=H, n_out=O, period=S, spikes_path=paths["spikes"], v_path=paths["v"])
        recorder = FullStepRecorder(u_path=paths["u"], **sizes) if run.record_hidden else StepRecorder(**sizes)
        source.s_out.connect(net.inp)
        hidden.out.connect(recorder.spikes_in)
        if run.record_hidden:
            recorder.u_ref.connect_var(readout.neuron.u)
        recorder.v_ref.connect_var(readout.neuron.v)
        cfg = _run_config(run.hardware, {EventSource: PyEventSourceModel, StepRecorder: PyStepRecorderModel,
                                     FullStepRecorder: PyFullStepRecorderModel})
        reset = [(var, np.zeros(var.shape, np.int32)) for var in
                 (hidden.neuron.u, hidden.neuron.v, readout.neuron.u, readout.neuron.v,
                  hidden.synapse.a_buff, hidden.synapse_rec.a_buff, readout.synapse.a_buff)]
        last_save = time.monotonic()
        try:
            with tqdm(total=len(todo), desc="lava", unit="sample", disable=not run.progress) as bar:
                for k, index in enumerate(todo):
                    t0 = time.perf_counter()
                    if k:
                        for var, zeros in reset:
                            var.set(zeros)
                    with warnings.catch_warnings():
                        # Lava's model search imports every module next to lava_processes and warns.
                        warnings.filterwarnings("ignore", message="Cannot import module")
                        source.run(condition=RunSteps(num_steps=S), run_cfg=cfg)
                    spikes = np.array(maps["spikes"], dtype=bool)
                    v = np.array(maps["v"], dtype=np.int32)
                    score = sequential_score(run.score_w, v)
                    row = {"pred": np.int64(np.argmax(score)), "score": score,
                           "hidden_spike_counts": spikes.sum(axis=0).astype(np.int64)}
                    if run.record_trace:
                        row["readout_v"] = v
                    if run.record_hidden:
                        rasters[int(index)] = (spikes, np.array(maps["u"], dtype=np.int32))
                    done[int(index)] = row
                    seconds.append(time.perf_counter() - t0)
                    # The checkpoint holds every finished row: rewriting it after each sample would
                    # cost O(N^2) I/O on a long run, so save at most every SAVE_INTERVAL_S seconds.
                    if time.monotonic() - last_save >= SAVE_INTERVAL_S:
                        save()
                        last_save = time.monotonic()
                    bar.update(1)
        finally:
            save()   # also on Ctrl-C or an error: finished samples are never lost
            if source.runtime is not None:
                source.stop()
