"""The pipeline stages. Each takes the run context, writes its files under the run folder (atomically)
and returns (outputs {label: path}, info {JSON-able summary})."""
from __future__ import annotations

import os
import platform
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path

import numpy as np

from eventprop_core.errors import DataError
from eventprop_core.network import Network, load_network
from ..run_files import save_arrays, save_json
from .errors import RunDirError
from .options import DataSpec, DeployOptions, ModelSource

MODEL_FILE = "model.npz"
NETX_FILE = "network.net"
NIR_FILE = "network.nir"          # the float network for other simulators (docs/nir.md)
QUANT_REPORT_FILE = "quantization.json"
RESULTS = "results"


@dataclass
class RunContext:
    run_dir: Path
    source: ModelSource
    data: DataSpec
    deploy: DeployOptions
    train_config: object = None    # TrainConfig when source.kind == "train"
    progress: bool = True
    log: object = print
    fingerprint: str = ""          # inputs of the stage being run (set by the runner)
    lava_skip_reason: str | None = None   # why Lava cannot run here (no Lava environment), else None

    def path(self, *parts) -> Path:
        return self.run_dir.joinpath(*parts)

    def network(self) -> Network:
        return load_network(self.path(MODEL_FILE))

    def fixed_point(self):
        from netx_export.hdf5_io import read_netx
        return read_netx(self.path(NETX_FILE))


def to_jsonable(obj):
    """Dataclass / object with to_dict() -> plain dict (for reports written by other modules)."""
    if obj is None:
        return None
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if is_dataclass(obj):
        return asdict(obj)
    if isinstance(obj, dict):
        return obj
    return {"repr": repr(obj)}


def lava_unavailable_reason() -> str | None:
    """None when Lava's environment is there, else why not and how to enable it (one line)."""
    from netx_export.lava_env import lava_unavailable_reason as reason

    return reason()


# --- stage 1: the float model ---------------------------------------------------------------------

def stage_model(ctx: RunContext):
    src = ctx.source
    info = {"source": src.kind}
    if src.kind == "train":
        from ..training import TrainingInterrupted, train

        train_dir = ctx.path("train")
        resume = (train_dir / "checkpoint.npz").is_file()
        if train_dir.exists() and not resume:
            shutil.rmtree(train_dir)    # our own sub-folder, interrupted before its first checkpoint
        try:
            summary = train(ctx.train_config, train_dir, resume=resume, progress=ctx.progress, log=ctx.log)
        except TrainingInterrupted:
            raise TrainingInterrupted(f"training interrupted; {train_dir / 'checkpoint.npz'} holds the last "
                                      f"completed epoch. Continue with: eventprop pipeline --resume --out "
                                      f"{ctx.run_dir} (and the same options)") from None
        net = load_network(train_dir / "best.npz")
        info["train_summary"] = to_jsonable(summary)
        info["resumed_training"] = resume
    elif src.kind == "model":
        net = load_network(src.path)
        info["model"] = str(src.path)
    else:
        from ..mlgenn_import import import_mlgenn
        net = import_mlgenn(src.path, src.epoch)
        info.update(mlgenn=str(src.path), epoch=str(src.epoch))
    net.save(ctx.path(MODEL_FILE))
    info["sizes"] = {"input": net.n_input, "hidden": net.n_hidden, "output": net.n_output}
    info["params"] = net.params.to_dict()
    return {"model": MODEL_FILE}, info


# --- stage 2: quantize + export -------------------------------------------------------------------

def quantize_network(ctx: RunContext, net: Network, weight_bits: int):
    """-> (FixedPointNetwork, QuantizationReport, [warning messages]); warnings are logged, not printed twice.

    scale "auto" calibrates on the training split when there is one (steps chosen to agree with the
    float model's predictions there), else falls back to "percentile", saying so."""
    from netx_export.quantize import quantize

    scale, calibration, notes = ctx.deploy.scale, None, []
    if scale in ("calibrate", "auto"):
        try:
            calibration = ctx.data.load(net.params, split="train", limit=ctx.deploy.calibration_samples,
                                         metadata=net.provenance)
            scale = "calibrate"
        except DataError as exc:
            if scale == "calibrate":
                raise
            scale = "percentile"
            notes.append(f"scale auto: no training split to calibrate on, using percentile ({exc})")
    float_scores = None
    if calibration is not None:   # the float model's readout: what a faithful conversion reproduces
        from ..evaluation import evaluate_float
        float_scores = evaluate_float(net, calibration, batch_size=ctx.deploy.batch_size,
                                      device=ctx.deploy.device).score.astype(np.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fx, report = quantize(net, weight_bits=weight_bits, strategy=scale, calibration=calibration,
                              clip=ctx.deploy.clip, float_scores=float_scores)
    return fx, report, notes + [str(w.message) for w in caught]


def stage_export(ctx: RunContext):
    from netx_export.hdf5_io import write_netx

    net = ctx.network()
    fx, report, caught = quantize_network(ctx, net, ctx.deploy.weight_bits)
    ctx.log("  " + report.table().replace("\n", "\n  "))
    for message in caught:
        ctx.log(f"  warning: {message}")
    fx.metadata["exported_from"] = str(ctx.path(MODEL_FILE))
    finetuned = None
    if ctx.deploy.finetune_epochs > 0:
        fx, finetuned = finetune_export(ctx, fx.metadata["quantization"]["strategy"])
    write_netx(fx, ctx.path(NETX_FILE))
    from ..nir_io import write_nir
    write_nir(net, ctx.path(NIR_FILE))
    report_dict = to_jsonable(report)
    save_json(ctx.path(QUANT_REPORT_FILE), report_dict)
    info = {"weight_bits": ctx.deploy.weight_bits, "scale": fx.metadata["quantization"]["strategy"],
            "steps": {"hidden": fx.hidden.step, "readout": fx.readout.step},
            "vth_mant": fx.hidden.vth_mant, "i_decay": fx.hidden.i_decay, "v_decay": fx.hidden.v_decay,
            "warnings": caught}
    if finetuned is not None:
        info["finetune"] = finetuned
    return {"network": NETX_FILE, "nir": NIR_FILE, "quantization": QUANT_REPORT_FILE}, info


def finetune_export(ctx: RunContext, scale: str):
    """[pipeline] finetune_epochs > 0: fine-tune the export with the fixed-point network in the loop
    (eventprop finetune, in RUN_DIR/finetune, resumed if interrupted) on the training split; the
    fine-tuned network replaces the plain export. quantization.json still describes the plain export."""
    from netx_export.hdf5_io import read_netx

    from ..finetune import FinetuneConfig, finetune

    d, ft_dir = ctx.data, ctx.path("finetune")
    cfg = FinetuneConfig(model=str(ctx.path(MODEL_FILE)), weight_bits=ctx.deploy.weight_bits, scale=scale,
                         calibration_samples=ctx.deploy.calibration_samples, clip=ctx.deploy.clip,
                         epochs=ctx.deploy.finetune_epochs, lr=float(ctx.deploy.finetune_lr) or None, dataset=d.dataset,
                         data_root=d.data_root, synthetic=dict(d.synthetic), test_split=d.split,
                         test_limit=d.limit or 0)
    resume = (ft_dir / "checkpoint.npz").is_file() and (ft_dir / "initial.net").is_file()
    if resume:
        import json
        stored = json.loads((ft_dir / "config.json").read_text()) if (ft_dir / "config.json").is_file() else {}
        resume = stored == json.loads(cfg.to_json())
    summary = finetune(cfg, ft_dir, resume=resume, force=not resume, progress=ctx.progress, log=ctx.log)
    return read_netx(ft_dir / "network.net"), summary.to_dict()


# --- stage 3: float and emulator on the whole test split -------------------------------------------

def machine_description(device: str) -> str:
    import torch

    from ..model.forward import resolve_device
    dev = resolve_device(device)
    if dev.type == "cuda":
        return f"CUDA {torch.cuda.get_device_name(dev)}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numba
    return f"CPU {cpu} ({os.cpu_count()} cores, numba {numba.get_num_threads()} threads)"


def measure_float_latency(net: Network, data, device: str, n: int) -> dict:
    """Batch-1 wall time of the float forward pass used for evaluation (`eventprop.predict`: the
    event-driven engine on the CPU, the fused CUDA kernel on CUDA), after one warm-up run; median over n samples."""
    from ..eventprop import predict

    n = min(n, len(data))
    if n == 0:
        return {"batch1_ms_median": None, "latency_n": 0}
    predict(net, data.subset([0]), device=device)
    times = []
    for i in range(n):
        sample = data.subset([i])
        t0 = time.perf_counter()
        predict(net, sample, device=device)
        times.append(time.perf_counter() - t0)
    return {"batch1_ms_median": 1e3 * float(np.median(times)), "batch1_ms_min": 1e3 * float(np.min(times)), "latency_n": n}


def stage_evaluate(ctx: RunContext):
    from netx_export.emulator import emulate

    from ..evaluation import evaluate_float
    from ..model.forward import simulate

    net = ctx.network()
    fx = ctx.fixed_point()
    test = ctx.data.load(net.params, metadata=net.provenance)
    if len(test) == 0:
        raise RunDirError(f"{ctx.data.dataset}/{ctx.data.split}: no samples to evaluate")
    input_spikes = test.spikes_per_sample()
    t0 = time.perf_counter()
    fl = evaluate_float(net, test, batch_size=ctx.deploy.batch_size, device=ctx.deploy.device, progress=ctx.progress)
    float_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    em = emulate(fx, test, batch_size=max(ctx.deploy.batch_size, 64))
    emulator_s = time.perf_counter() - t0
    res = ctx.path(RESULTS)
    save_arrays(res / "float.npz", pred=fl.pred, label=fl.label, score=fl.score, hidden_spikes=fl.hidden_spikes,
                input_spikes=input_spikes)
    counts = np.asarray(em.hidden_spike_counts)
    save_arrays(res / "emulator.npz", pred=em.pred, label=test.labels, score=em.score,
                hidden_spikes=counts.reshape(len(test), -1).sum(axis=1), input_spikes=input_spikes)

    i = min(ctx.deploy.inspect_sample, len(test) - 1)
    fr = simulate(net, test.dense([i]), device=ctx.deploy.device, record=True)
    one = test.subset([i])
    er = emulate(fx, one, record_trace=True, record_hidden=True)
    inspect = {"sample": np.int64(i), "label": np.int64(test.labels[i]), "float_trace": fr.readout_trace[0],
               "float_raster": fr.hidden_spikes[0], "fixed_v": np.asarray(er.readout_v)[0],
               "input_steps": one.steps, "input_units": one.units}
    inspect["fixed_raster"] = np.asarray(er.hidden_spikes)[0].astype(bool)
    save_arrays(res / "inspect.npz", **inspect)

    timing = {"machine": machine_description(ctx.deploy.device), "n": len(test),
              "float_seconds": float_s, "float_samples_per_s": len(test) / float_s if float_s > 0 else None,
              "float_batch_size": ctx.deploy.batch_size, "emulator_seconds": emulator_s,
              "emulator_samples_per_s": len(test) / emulator_s if emulator_s > 0 else None,
              **measure_float_latency(net, test, ctx.deploy.device, ctx.deploy.latency_samples)}
    save_json(res / "timing.json", timing)
    info = {"n": len(test), "float_accuracy": fl.accuracy, "emulator_accuracy": float(np.mean(em.pred == test.labels)),
            "float_seconds": float_s, "emulator_seconds": emulator_s}
    return {"float": res / "float.npz", "emulator": res / "emulator.npz", "inspect": res / "inspect.npz",
            "timing": res / "timing.json"}, info


# --- stage 3b: accuracy vs weight bits (emulator) ---------------------------------------------------

def stage_sweep(ctx: RunContext):
    from netx_export.emulator import emulate

    from eventprop_core.errors import PipelineError

    net = ctx.network()
    test = ctx.data.load(net.params, metadata=net.provenance)
    if ctx.deploy.sweep_samples is not None:
        test = test.subset(range(min(ctx.deploy.sweep_samples, len(test))))
    rows = []
    for bits in ctx.deploy.sweep_bits:
        try:
            # The exported network already is the quantization at weight_bits (same settings).
            fx = ctx.fixed_point() if bits == ctx.deploy.weight_bits else quantize_network(ctx, net, bits)[0]
        except PipelineError as exc:    # e.g. out of range at very few bits without --clip
            rows.append({"weight_bits": bits, "accuracy": None, "error": str(exc)})
            ctx.log(f"  {bits} bits: {exc}")
            continue
        em = emulate(fx, test, batch_size=max(ctx.deploy.batch_size, 64))
        acc = float(np.mean(em.pred == test.labels))
        rows.append({"weight_bits": bits, "accuracy": acc, "n": len(test),
                     "steps": {"hidden": fx.hidden.step, "readout": fx.readout.step}})
        ctx.log(f"  {bits} bits: emulator accuracy {100 * acc:.2f}% (n={len(test)})")
    path = save_json(ctx.path(RESULTS, "sweep.json"), {"scale": ctx.deploy.scale, "clip": ctx.deploy.clip, "rows": rows})
    return {"sweep": path}, {"rows": rows}


# --- stage 4: Lava on a subset, compared with the emulator bit for bit -------------------------------

def lava_subset(n_test: int, n: int, seed: int) -> np.ndarray:
    n = min(n, n_test)
    return np.sort(np.random.default_rng(seed).choice(n_test, size=n, replace=False)).astype(np.int64)


def stage_lava(ctx: RunContext):
    from netx_export.emulator import emulate
    from netx_export.lava_runner import run_lava

    from .trace_check import compare_traces

    net = ctx.network()
    fx = ctx.fixed_point()
    test = ctx.data.load(net.params, metadata=net.provenance)
    idx = lava_subset(len(test), ctx.deploy.lava_samples, ctx.deploy.lava_seed)
    t0 = time.perf_counter()
    # The checkpoint keeps the samples already run if the stage is interrupted (--resume continues);
    # it is tied to this stage's inputs (network, data, subset), so a stale one is never reused.
    checkpoint = ctx.path(RESULTS, f"lava_checkpoint_{ctx.fingerprint[:16]}.npz")
    for old in ctx.path(RESULTS).glob("lava_checkpoint_*.npz"):
        if old != checkpoint:
            old.unlink()
    with warnings.catch_warnings():
        # Lava's compiler warns once per module it cannot scan for process models: noise, not a problem.
        warnings.filterwarnings("ignore", message="Cannot import module", category=UserWarning)
        lv = run_lava(ctx.path(NETX_FILE), test, indices=idx, progress=ctx.progress, checkpoint=checkpoint)
    lava_s = time.perf_counter() - t0
    em = emulate(fx, test.subset(idx), record_trace=True)
    cmp = compare_traces(idx, lv.readout_v, em.readout_v, lv.hidden_spike_counts, em.hidden_spike_counts,
                         lv.pred, em.pred)
    res = ctx.path(RESULTS)
    save_arrays(res / "lava.npz", indices=idx, pred=lv.pred, label=test.labels[idx], score=lv.score,
                hidden_spikes=np.asarray(lv.hidden_spike_counts).reshape(len(idx), -1).sum(axis=1),
                readout_v=lv.readout_v, emulator_readout_v=em.readout_v, emulator_pred=em.pred)
    save_json(res / "lava_check.json", {**cmp.to_dict(), "seconds": lava_s,
                                        "seconds_per_sample": lava_s / max(len(idx), 1)})
    checkpoint.unlink(missing_ok=True)      # everything it held is in lava.npz now
    outputs = {"lava": res / "lava.npz", "lava_check": res / "lava_check.json"}
    info = {"n": len(idx), "identical": cmp.identical, "accuracy": float(np.mean(lv.pred == test.labels[idx])),
            "seconds": lava_s, "summary": cmp.describe()}
    return outputs, info, cmp


def skipped_lava(ctx: RunContext, reason: str):
    save_json(ctx.path(RESULTS, "lava_check.json"), {"skipped": True, "reason": reason})
    for stale in (ctx.path(RESULTS, "lava.npz"),):
        stale.unlink(missing_ok=True)      # results of an earlier run with Lava would no longer match
    return {"lava_check": ctx.path(RESULTS, "lava_check.json")}, {"skipped": True, "reason": reason}
