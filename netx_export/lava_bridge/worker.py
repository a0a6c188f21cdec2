"""Lava worker: `python -m netx_export.lava_bridge.worker JOB_DIR`, run by `lava_runner` in Lava's own
Python 3.10 environment (docs/lava.md). Needs numpy and Lava only; no pickle crosses the boundary.

JOB_DIR/job.npz holds the request: `config` (JSON: NetX path, sizes, steps per sample, options) and
the input events of the samples to run, CSR in play order (`offsets`, `steps`, `units`). Sample k's
result goes to JOB_DIR/rows/k.npz (written atomically: readout (last layer) `v` per Lava step, hidden (the layer before it)
`spike_counts`, and with record_hidden the hidden `spikes` raster and readout `u`). A failure writes
a one-line JOB_DIR/error.txt and exits 2. Lava's own chatter goes to the log the parent gives it.

The worker leads its own process group (the parent starts it in a new session) and never outlives
the parent: a parent-death signal, and a thread that watches the parent's pid, kill the whole
group (the worker and every process Lava forked) after removing JOB_DIR.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

ERROR_FILE = "error.txt"
JOB_FILE = "job.npz"
ROWS_DIR = "rows"


def row_path(job_dir: Path, k: int) -> Path:
    return Path(job_dir) / ROWS_DIR / f"{k:07d}.npz"


def _die_with_parent(job_dir: Path, parent: int) -> None:
    def end_group(*_):
        shutil.rmtree(job_dir, ignore_errors=True)
        os.killpg(0, signal.SIGKILL)

    try:    # Linux: be told when the parent dies, even by SIGKILL
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)    # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    signal.signal(signal.SIGTERM, end_group)
    if os.getppid() != parent:
        end_group()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        end_group()

    threading.Thread(target=watch, daemon=True).start()


def _save_row(job_dir: Path, k: int, **arrays) -> None:
    path = row_path(job_dir, k)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)


def _run_config(hardware: bool, model_map: dict):
    if hardware:
        from lava.utils.loihi import is_installed

        if not is_installed():
            raise RuntimeError("--hardware needs Intel's lava-loihi extension (available to INRC members), which "
                               "is not installed in Lava's environment; run without --hardware for the CPU simulator")
        from lava.magma.core.run_configs import Loihi2HwCfg
        return Loihi2HwCfg(exception_proc_model_map=model_map)
    from lava.magma.core.run_configs import Loihi2SimCfg
    return Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=model_map)


def run_job(job_dir: Path) -> None:
    """Build the netx network (any number of dense / dense_rec layers) with an event source and a recorder
    of the last two layers, then run the samples one at a time with an exact reset in between
    (docs/lava.md): zero u, v of every layer and every synapse's a_buff."""
    with np.load(job_dir / JOB_FILE, allow_pickle=False) as z:
        cfg = json.loads(str(z["config"]))
        offsets, steps, units = z["offsets"], z["steps"], z["units"]
    from lava.lib.dl.netx import hdf5
    from lava.magma.core.run_conditions import RunSteps

    from .processes import (EventSource, FullStepRecorder, PyEventSourceModel, PyFullStepRecorderModel,
                                 PyStepRecorderModel, StepRecorder)

    S, H, O = cfg["steps_per_sample"], cfg["n_hidden"], cfg["n_out"]
    record_hidden = bool(cfg["record_hidden"])
    maps_dir = job_dir / "maps"
    maps_dir.mkdir()
    paths = {name: str(maps_dir / f"{name}.bin") for name in ("spikes", "u", "v")}
    maps = {"spikes": np.memmap(paths["spikes"], np.uint8, "w+", shape=(S, H)),
            "u": np.memmap(paths["u"], np.int32, "w+", shape=(S, O)),
            "v": np.memmap(paths["v"], np.int32, "w+", shape=(S, O))}
    net = hdf5.Network(net_config=cfg["net_path"], input_message_bits=0)
    if len(net.layers) < 2:
        raise RuntimeError(f"{cfg['net_path']}: the Lava runner records the layer before the readout; "
                           f"this network has {len(net.layers)} layer(s)")
    # Any number of dense / dense_rec layers: record the spikes of the layer before the readout and
    # the readout's state (what the runner compares and scores).
    hidden, readout = net.layers[-2], net.layers[-1]
    if tuple(hidden.shape) != (H,) or tuple(readout.shape) != (O,):
        raise RuntimeError(f"{cfg['net_path']}: netx built layers of {tuple(hidden.shape)} and {tuple(readout.shape)} "
                           f"neurons, the runner expected ({H},) and ({O},)")
    source = EventSource(n_input=cfg["n_input"], period=S, offsets=offsets, steps=steps, units=units)
    sizes = dict(n_hidden=H, n_out=O, period=S, spikes_path=paths["spikes"], v_path=paths["v"])
    recorder = FullStepRecorder(u_path=paths["u"], **sizes) if record_hidden else StepRecorder(**sizes)
    source.s_out.connect(net.inp)
    hidden.out.connect(recorder.spikes_in)
    if record_hidden:
        recorder.u_ref.connect_var(readout.neuron.u)
    recorder.v_ref.connect_var(readout.neuron.v)
    run_cfg = _run_config(cfg["hardware"], {EventSource: PyEventSourceModel, StepRecorder: PyStepRecorderModel,
                                            FullStepRecorder: PyFullStepRecorderModel})
    state = []
    for layer in net.layers:      # every neuron's u, v and every synapse's buffer (DelayDense: one per delay)
        state += [layer.neuron.u, layer.neuron.v, layer.synapse.a_buff]
        if getattr(layer, "synapse_rec", None) is not None:
            state.append(layer.synapse_rec.a_buff)
    reset = [(var, np.zeros(var.shape, np.int32)) for var in state]
    for k in range(len(offsets) - 1):
        if k:
            for var, zeros in reset:
                var.set(zeros)
        with warnings.catch_warnings():
            # Lava's model search imports every module next to lava_processes and warns.
            warnings.filterwarnings("ignore", message="Cannot import module")
            source.run(condition=RunSteps(num_steps=S), run_cfg=run_cfg)
        spikes = np.array(maps["spikes"], dtype=bool)
        row = {"v": np.array(maps["v"], dtype=np.int32), "spike_counts": spikes.sum(axis=0).astype(np.int64)}
        if record_hidden:
            row.update(spikes=spikes, u=np.array(maps["u"], dtype=np.int32))
        _save_row(job_dir, k, **row)
    # No source.stop(): it can hang on an error path; the parent ends this process group instead.


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    job_dir = Path(argv[0])
    _die_with_parent(job_dir, int(argv[1]) if len(argv) > 1 else os.getppid())
    try:
        run_job(job_dir)
    except BaseException as exc:       # noqa: BLE001 - reported to the parent as one line
        import traceback

        traceback.print_exc()          # into the worker log, for --debug
        msg = " ".join(f"{type(exc).__name__}: {exc}".split()) if not isinstance(exc, RuntimeError) else str(exc)
        (job_dir / ERROR_FILE).write_text(msg)
        sys.stdout.flush()
        os._exit(2)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)     # Lava's runtime threads may not let an ordinary exit finish


if __name__ == "__main__":
    main()
