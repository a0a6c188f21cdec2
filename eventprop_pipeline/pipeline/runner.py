"""`run_pipeline`: train (or load) -> quantize + export -> evaluate float and emulator -> weight-bits
sweep -> Lava check -> report. Each stage records itself in RUN_DIR/stages.json; `resume=True` skips
stages whose inputs and outputs are unchanged."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..devices import resolve_device_name
from eventprop_core.errors import ConfigError, Interrupted
from ..interrupts import ignore_further_interrupts
from ..run_folder import RunFolder
from eventprop_core.provenance import sha256_file
from ..report import build_report, load_summary
from . import stages as st
from .manifest import MANIFEST_NAME, StageManifest, fingerprint
from .options import DataSpec, DeployOptions, ModelSource

STAGES = ("model", "export", "evaluate", "sweep", "lava", "report")


@dataclass
class PipelineResult:
    run_dir: Path
    ran: list[str]          # stages executed in this call
    skipped: list[str]      # stages already done (resume)
    summary: dict           # the report's numbers (accuracy table, agreement, ...)
    report_path: Path


def run_folder(run_dir: Path, resume: bool) -> RunFolder:
    """The run folder, claimed (marker + lock) for the whole run; see run_folder.py."""
    return RunFolder(run_dir, "pipeline", mode="new_or_resume" if resume else "new", legacy=(MANIFEST_NAME,),
                     hint="; pass --resume to continue it, or choose another --out")


def check_run_dir(run_dir: Path, resume: bool) -> None:
    run_folder(run_dir, resume).check()


def stage_fingerprints(ctx: st.RunContext, manifest: StageManifest) -> dict:
    """Inputs of each stage; computed lazily because downstream ones use upstream output hashes."""
    d, data = ctx.deploy, ctx.data.to_dict()
    src = {"kind": ctx.source.kind, "path": ctx.source.path, "epoch": ctx.source.epoch}
    if ctx.source.kind == "model" and ctx.source.path and Path(ctx.source.path).is_file():
        src["sha256"] = sha256_file(ctx.source.path)
    if ctx.source.kind == "mlgenn" and ctx.source.path and Path(ctx.source.path).is_dir():
        # rewritten checkpoint files (same folder, same epoch key) must trigger a new import
        files = sorted(Path(ctx.source.path).glob(f"{ctx.source.epoch}-*-g.npy"))
        src["sha256"] = {f.name: sha256_file(f) for f in files}
    quant = {"scale": d.scale, "clip": d.clip,
             "calibration": {"samples": d.calibration_samples, "data": data} if d.scale != "percentile" else None}
    return {
        "model": lambda: fingerprint({"source": src, "train_config": st.to_jsonable(ctx.train_config)}),
        "export": lambda: fingerprint({"in": manifest.output_hashes("model"), "bits": d.weight_bits, **quant,
                                       **({"finetune": {"epochs": d.finetune_epochs, "lr": d.finetune_lr,
                                                        "data": data}} if d.finetune_epochs else {})}),
        "evaluate": lambda: fingerprint({"in": manifest.output_hashes("model", "export"), "data": data,
                                         "batch_size": d.batch_size, "device": d.device,
                                         "inspect": d.inspect_sample, "latency": d.latency_samples}),
        "sweep": lambda: fingerprint({"in": manifest.output_hashes("model", "export"), "bits": list(d.sweep_bits),
                                      "samples": d.sweep_samples, "data": data, **quant}),
        "lava": lambda: fingerprint({"in": manifest.output_hashes("export"), "lava": d.lava, "n": d.lava_samples,
                                     "seed": d.lava_seed, "data": data, "skip": ctx.lava_skip_reason}),
        "report": lambda: fingerprint({"in": manifest.output_hashes("model", "export", "evaluate", "sweep", "lava")}),
    }


def run_pipeline(source: ModelSource, run_dir, *, data: DataSpec | None = None, deploy: DeployOptions | None = None,
                 train_config=None, resume: bool = False, progress: bool = True, log=print) -> PipelineResult:
    """Run every stage not already done; raise a PipelineError (e.g. TraceMismatchError) on failure."""
    run_dir = Path(run_dir).absolute()  # stage outputs are recorded relative to it
    deploy = deploy or DeployOptions()
    data = data or DataSpec()
    check_run_dir(run_dir, resume)
    resolve_device_name(deploy.device)   # a bad or missing device fails now, not after training
    if train_config is not None:
        resolve_device_name(train_config.device)
    lava_skip = None
    if deploy.lava and deploy.lava_samples > 0:
        lava_skip = st.lava_unavailable_reason()     # said now, not after hours of training
        if lava_skip:
            log(f"note: the Lava check will be skipped: {lava_skip}")
    if source.kind == "train" and train_config is None:
        raise ConfigError("training needs a training configuration (--config FILE)")
    with run_folder(run_dir, resume):
        return _run_stages(run_dir, source, data, deploy, train_config, resume, progress, log, lava_skip)


def _run_stages(run_dir, source, data, deploy, train_config, resume, progress, log, lava_skip) -> PipelineResult:
    manifest = StageManifest.load(run_dir)
    ctx = st.RunContext(run_dir, source, data, deploy, train_config, progress, log)
    ctx.lava_skip_reason = lava_skip
    prints = stage_fingerprints(ctx, manifest)
    ran, skipped = [], []
    report_path = run_dir / "report.md"
    for number, name in enumerate(STAGES, 1):
        fp = prints[name]()
        label = f"[{number}/{len(STAGES)}] {name}"
        if resume and manifest.is_done(name, fp):
            log(f"{label}: already done, skipped")
            skipped.append(name)
            continue
        log(f"{label}: running")
        manifest.start(name, fp)
        ctx.fingerprint = fp
        t0 = time.perf_counter()
        try:
            status, outputs, info, message = _run_stage(name, ctx)
        except BaseException as exc:
            interrupted = isinstance(exc, (KeyboardInterrupt, Interrupted))
            if interrupted:
                ignore_further_interrupts()
            manifest.finish(name, "interrupted" if interrupted else "failed",
                            message=f"{type(exc).__name__}: {exc}")
            raise
        comparison = info.pop("_comparison", None)
        info["seconds"] = round(time.perf_counter() - t0, 3)
        manifest.finish(name, status, outputs=outputs, info=info, message=message)
        ran.append(name)
        log(f"{label}: {status} ({info['seconds']:.1f} s){': ' + message if message else ''}")
        if comparison is not None:
            comparison.raise_if_different()
    return PipelineResult(run_dir, ran, skipped, load_summary(run_dir), report_path)


def _run_stage(name: str, ctx: st.RunContext):
    """-> (status, outputs, info, message)."""
    if name == "model":
        return ("done", *st.stage_model(ctx), None)
    if name == "export":
        return ("done", *st.stage_export(ctx), None)
    if name == "evaluate":
        return ("done", *st.stage_evaluate(ctx), None)
    if name == "sweep":
        return ("done", *st.stage_sweep(ctx), None)
    if name == "lava":
        if not ctx.deploy.lava or ctx.deploy.lava_samples == 0 or ctx.lava_skip_reason:
            reason = ("--no-lava" if not ctx.deploy.lava else "lava_samples = 0" if ctx.deploy.lava_samples == 0
                      else ctx.lava_skip_reason)
            return ("skipped", *st.skipped_lava(ctx, reason), f"Lava check skipped ({reason}); NOT verified in Lava")
        outputs, info, cmp = st.stage_lava(ctx)
        if cmp.identical:
            return "done", outputs, info, cmp.describe()
        info["_comparison"] = cmp
        return "failed", outputs, info, cmp.describe()
    if name == "report":
        summary = build_report(ctx.run_dir)
        return "done", {"report": ctx.run_dir / "report.md", "summary": ctx.path(st.RESULTS, "summary.json")}, \
            {"accuracy": summary["accuracy"]}, None
    raise ValueError(name)
