"""The training loop: Eventprop gradients, Adam, validation, checkpoints, resumption.

Every random choice is a function of (seed, epoch, batch): the blend of epoch e draws from
rng([seed, e, 1]), the order of its samples from batch_indices(seed, e), the channel shifts of its
batch b from rng([seed, e, b, 2]). With deterministic gradients, a run resumed from the checkpoint
of epoch k therefore ends with the same weights, bit for bit, as a run that was never stopped.
"""
from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from eventprop_core.atomic import atomic_write_text
from ..data.batching import batch_indices
from ..data.events import SpikeDataset
from eventprop_core.errors import ConfigError, Interrupted, PipelineError
from ..interrupts import ignore_further_interrupts
from ..run_folder import RunFolder, clear_run_files
from eventprop_core.network import WEIGHT_NAMES, Network
from .adam import AdamState, adam_step
from .augment import Joined, draw_shifts, make_blended, shift_channels
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .config import TrainConfig, build_config
from . import data_parallel, distributed as dist_
from .shared_data import shared_run_data_loader
from .metrics import append_metrics, rewrite_metrics
from .schedule import LRSchedule
from ..devices import resolve_device_name
from eventprop_core.provenance import utc_now
from .splits import RunData, load_run_data
from .validation import validation_accuracy

CHECKPOINT, CONFIG_FILE, LAST, BEST, SUMMARY = "checkpoint.npz", "config.json", "last.npz", "best.npz", "summary.json"
RUN_FILES = (CHECKPOINT, CONFIG_FILE, LAST, BEST, SUMMARY, "metrics.csv", "metrics.jsonl")
# Settings that may change when a run is resumed: more epochs, another device.
RESUMABLE_CHANGES = ("optim.epochs", "device")
_BLEND_STREAM, _SHIFT_STREAM = 1, 2


class TrainingInterrupted(Interrupted):
    """Ctrl-C during training; the checkpoint of the last completed epoch is intact."""


@dataclass
class TrainSummary:
    run_dir: str
    epochs_completed: int
    epochs_planned: int
    finished: bool                    # all planned epochs done (and the test set evaluated)
    best_epoch: int
    best_valid_accuracy: float
    test_accuracy: float | None       # of best.npz on the test split; None until finished
    final_train_loss: float | None
    final_train_accuracy: float | None
    n_train: int
    n_valid: int
    n_test: int
    valid_source: str
    seconds: float                    # wall time of this call
    best_path: str
    last_path: str

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_device(device: str) -> str:
    """The training device; CUDA also needs numba's CUDA target (the fused engine), checked now."""
    name = resolve_device_name(device)
    if name.startswith("cuda"):
        from ..eventprop.cuda_engine import cuda_module
        cuda_module()
    return name


def blend_count(n_train: int, cfg: TrainConfig) -> int:
    a = cfg.augment
    return int(round(a.blend_fraction * n_train)) if a.blend else 0


def epoch_training_set(train: SpikeDataset, cfg: TrainConfig, epoch: int, wanted: np.ndarray | None = None
                       ) -> "SpikeDataset | Joined":
    """The training samples of one epoch: the originals plus this epoch's blended samples (joined
    without copying the originals). wanted: indices of the epoch's samples that will be read (a
    data-parallel rank's); other blended samples are left empty, the draws are the same."""
    n_blend = blend_count(len(train), cfg)
    if n_blend == 0:
        return train
    rng = np.random.default_rng([cfg.seed, epoch, _BLEND_STREAM])
    mask = None
    if wanted is not None:
        mask = np.zeros(n_blend, bool)
        wanted = np.asarray(wanted)
        mask[wanted[wanted >= len(train)] - len(train)] = True
    return Joined(train, make_blended(train, n_blend, cfg.augment.blend_probs, rng, wanted=mask,
                                      align=cfg.augment.blend_align))


def batch_shifts(cfg: TrainConfig, epoch: int, batch: int, n: int) -> np.ndarray:
    a = cfg.augment
    if not a.shift:
        return np.zeros(n, np.int64)
    return draw_shifts(np.random.default_rng([cfg.seed, epoch, batch, _SHIFT_STREAM]), n, a.shift_max,
                       a.shift_probability)


def _loss_options(cfg: TrainConfig):
    from ..eventprop import LossOptions
    lc = cfg.loss
    return LossOptions(loss=lc.loss, reg_lambda_upper=lc.reg_lambda_upper, reg_lambda_lower=lc.reg_lambda_lower,
                       reg_nu_upper=lc.reg_nu_upper,
                       reg_nu_lower=None if lc.reg_nu_lower < 0 else lc.reg_nu_lower)


def _provenance(cfg: TrainConfig, data: RunData, epoch: int, extra: dict) -> dict:
    if data.delays.active:   # read back by every backend that bins data for this network
        extra = {**extra, "input_transform": data.delays.to_metadata()}
    return {"trainer": "eventprop_pipeline.training", "config": cfg.to_dict(), "dataset": cfg.data.dataset,
            "valid_source": data.valid_source, "epochs": epoch, "date": utc_now(), "seed": cfg.seed, **extra}


def _prepare_run_dir(run_dir: Path, force: bool) -> None:
    clear_run_files(run_dir, RUN_FILES, force, "training run", "train")


def _resumed_config(stored: TrainConfig, given: TrainConfig | None, source: str) -> TrainConfig:
    if given is None:
        return stored
    a, b = _flatten(stored.to_dict()), _flatten(given.to_dict())
    changed = [k for k in a if a[k] != b.get(k) and k not in RESUMABLE_CHANGES]
    if changed:
        k = changed[0]
        raise ConfigError(f"{source}: cannot resume with a different {k} ({a[k]!r} in the run, {b.get(k)!r} given); "
                          f"only {', '.join(RESUMABLE_CHANGES)} may change on resume")
    return stored.with_changes(**{k: b[k] for k in RESUMABLE_CHANGES})


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


class _Run:
    """Mutable state of a run between epochs; exactly what the checkpoint stores."""

    def __init__(self, net: Network, adam: AdamState, schedule: LRSchedule, best_weights: dict, epoch: int,
                 best_epoch: int, best_valid_accuracy: float, history: list[dict]):
        self.net, self.adam, self.schedule = net, adam, schedule
        self.best_weights, self.epoch = best_weights, epoch
        self.best_epoch, self.best_valid_accuracy, self.history = best_epoch, best_valid_accuracy, history

    def checkpoint(self, cfg: TrainConfig) -> Checkpoint:
        state = {"epoch": self.epoch, "schedule": self.schedule.to_dict(), "best_epoch": self.best_epoch,
                 "best_valid_accuracy": self.best_valid_accuracy, "history": self.history}
        return Checkpoint(self.net.weights, self.best_weights, self.adam, state, cfg.to_json())


def train(config: TrainConfig | None, run_dir, *, resume: bool = False, force: bool = False, progress: bool = True,
          max_epochs_this_call: int | None = None, log=print, overrides: dict | None = None,
          comm: "dist_.Comm | None" = None) -> TrainSummary:
    """Train (or, with resume, continue training) a network; everything is written under run_dir.

    config may be None when resuming (the run's own config is used; `overrides`, e.g.
    {"epochs": 80}, change what may change). max_epochs_this_call stops after that many epochs,
    as a kill would, leaving a resumable run (finished=False). comm: this process is one rank of a
    data-parallel run (training/distributed.py); rank 0 alone writes files, logs and progress, and
    every rank ends with the weights of a single-process run.
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    if resume:
        ckpt = load_checkpoint(run_dir / CHECKPOINT)
        stored = build_config(json.loads(ckpt.config_json), str(run_dir / CHECKPOINT))
        given = config
        if overrides:
            given = (config or stored).with_changes(**{k: v for k, v in overrides.items() if v is not None})
        cfg = _resumed_config(stored, given, str(run_dir))
    else:
        if config is None:
            raise ConfigError("train: a config is needed to start a new run")
        cfg = config
    # Check the device and load the data before touching the run folder: a bad option must not
    # leave (or, with --force, delete) a run behind.
    device = resolve_device(cfg.device)
    if comm is None:   # under torchrun (or `--nproc`): join the process group
        comm, device = dist_.connect(device)
    root = comm is None or comm.ctx.is_root
    if not root:
        log, progress = (lambda *a, **k: None), False
    shared = shared_run_data_loader(comm, cfg) if comm is not None else None
    data = load_run_data(cfg, shared)
    with contextlib.ExitStack() as folder:
        if root:   # rank 0 alone claims (marker + lock) and writes the run folder
            try:
                folder.enter_context(RunFolder(run_dir, "training", mode="resume" if resume else "force",
                                               legacy=(CHECKPOINT,)))
                if not resume:
                    _prepare_run_dir(run_dir, force)
            except PipelineError:
                if comm is not None:
                    comm.agree(False, "preparing the run folder")
                raise
        if comm is not None:
            comm.agree(True, "preparing the run folder")
        return _train_in_folder(cfg, data, device, run_dir, ckpt if resume else None, progress,
                                max_epochs_this_call, log, started, comm, root, shared is not None)


def _train_in_folder(cfg: TrainConfig, data: RunData, device: str, run_dir: Path, ckpt: Checkpoint | None,
                     progress: bool, max_epochs_this_call: int | None, log, started: float,
                     comm: "dist_.Comm | None", root: bool, shared: bool) -> TrainSummary:
    """train() once the run folder is claimed (locked by rank 0); ckpt is the checkpoint to resume from."""
    resume = ckpt is not None
    params = cfg.network.model_params()
    n_in, n_out = data.delays.n_channels(data.train.n_channels), data.train.n_classes

    if resume:
        net = Network(ckpt.weights, params)
        run = _Run(net, ckpt.adam, LRSchedule.from_dict(ckpt.state["schedule"]), ckpt.best_weights,
                   ckpt.state["epoch"], ckpt.state["best_epoch"], ckpt.state["best_valid_accuracy"],
                   ckpt.state["history"])
        if net.n_input != n_in or net.n_output != n_out:
            raise ConfigError(f"{run_dir}: the checkpoint's network is {net.n_input} -> {net.n_output}, "
                              f"but the data has {n_in} channels and {n_out} classes")
        rewrite_metrics(run_dir, run.history)
        log(f"resuming {run_dir} after epoch {run.epoch} of {cfg.optim.epochs}")
    else:
        net = Network.initialise(n_in, cfg.network.hidden, n_out, params=params, seed=cfg.seed, init=cfg.network.init())
        run = _Run(net, AdamState.zeros_like(net.weights), LRSchedule.from_optim(cfg.optim),
                   {k: v.copy() for k, v in net.weights.items()}, 0, 0, float("-inf"), [])
        if root:
            save_checkpoint(run_dir / CHECKPOINT, run.checkpoint(cfg))
    if root:
        atomic_write_text(run_dir / CONFIG_FILE, cfg.to_json() + "\n")
    ranks = (f", {comm.world} data-parallel ranks ({comm.ctx.backend})"
             + (", each split binned once (every rank its share) and shared" if shared else "")) if comm else ""
    log(f"training {n_in} -> {cfg.network.hidden} (recurrent) -> {n_out} on {cfg.data.dataset}: "
        f"{len(data.train)} train, {len(data.valid)} validation ({data.valid_source}), {len(data.test)} test; "
        f"device {device}{ranks}")

    epochs_run, saved_epoch = 0, run.epoch
    test_accuracy = None
    try:
        while run.epoch < cfg.optim.epochs:
            if max_epochs_this_call is not None and epochs_run >= max_epochs_this_call:
                break
            _train_epoch(run, cfg, data, device, progress, log, comm)
            if root:
                save_checkpoint(run_dir / CHECKPOINT, run.checkpoint(cfg))   # alone enough to resume
            saved_epoch = run.epoch
            if root:
                _save_epoch_files(run, cfg, data, run_dir)
            epochs_run += 1
        finished = run.epoch >= cfg.optim.epochs
        if finished:
            from ..evaluation import evaluate_float
            best = Network(run.best_weights, params)
            if comm is None:
                test_accuracy = evaluate_float(best, data.test, batch_size=cfg.eval_batch_size, device=device,
                                               progress=progress).accuracy
            else:
                test_accuracy = data_parallel.evaluate_float(comm, best, data.test, batch_size=cfg.eval_batch_size,
                                                     device=device, progress=progress).accuracy
            log(f"test accuracy of best.npz (epoch {run.best_epoch}): {100 * test_accuracy:.2f}% "
                f"on {len(data.test)} samples")
    except KeyboardInterrupt:
        ignore_further_interrupts()
        doing = (f"during epoch {saved_epoch + 1}" if saved_epoch < cfg.optim.epochs
                 else "while evaluating the test set")
        raise TrainingInterrupted(
            f"interrupted {doing}; {run_dir / CHECKPOINT} holds epoch {saved_epoch}. "
            f"Continue with: eventprop train --resume {run_dir}") from None
    except dist_.DistributedError as exc:
        raise dist_.DistributedError(
            f"{exc}; {run_dir / CHECKPOINT} holds epoch {saved_epoch}. Continue with: "
            f"eventprop train --resume {run_dir} (any number of processes)") from None
    last = run.history[-1] if run.history else {}
    summary = TrainSummary(
        run_dir=str(run_dir), epochs_completed=run.epoch, epochs_planned=cfg.optim.epochs, finished=finished,
        best_epoch=run.best_epoch, best_valid_accuracy=run.best_valid_accuracy, test_accuracy=test_accuracy,
        final_train_loss=last.get("train_loss"), final_train_accuracy=last.get("train_accuracy"),
        n_train=len(data.train), n_valid=len(data.valid), n_test=len(data.test), valid_source=data.valid_source,
        seconds=time.perf_counter() - started, best_path=str(run_dir / BEST), last_path=str(run_dir / LAST))
    if finished and root:
        atomic_write_text(run_dir / SUMMARY, json.dumps(summary.to_dict(), indent=2, sort_keys=True) + "\n")
    return summary


def _train_epoch(run: _Run, cfg: TrainConfig, data: RunData, device: str, progress: bool, log,
                 comm: "dist_.Comm | None" = None) -> None:
    from tqdm.auto import tqdm

    from ..eventprop import compute_batch

    epoch = run.epoch + 1
    t0 = time.perf_counter()
    o = cfg.optim
    options = _loss_options(cfg)
    n_samples = len(data.train) + blend_count(len(data.train), cfg)
    batches = batch_indices(n_samples, o.batch_size, shuffle=True, seed=cfg.seed, epoch=epoch)
    wanted = None
    if comm is not None:   # build only the blended samples this rank simulates
        wanted = np.concatenate([idx[data_parallel.batch_share(len(idx), comm.rank, comm.world, device)[0]]
                                 for idx in batches])
    samples = epoch_training_set(data.train, cfg, epoch, wanted)
    H = run.net.n_hidden
    neuron_spikes = np.zeros(H, np.float64)
    loss_sum, correct, seen = 0.0, 0, 0
    lr_used = run.schedule.lr
    with tqdm(total=len(samples), desc=f"epoch {epoch}/{o.epochs}", unit="sample", disable=not progress,
              leave=False) as bar:
        for b, idx in enumerate(batches):
            shifts = batch_shifts(cfg, epoch, b, len(idx))
            if comm is None:
                batch = data.delays.apply(shift_channels(samples.subset(idx), shifts))
                result = compute_batch(run.net, batch, batch.labels, options=options, device=device)
                grads, loss, readout = result.grads, result.loss, result.readout
                batch_spikes = np.asarray(result.hidden_spike_counts, dtype=np.float64).sum(axis=0)
            else:   # this rank's part of the global batch, reduced to the single-process result
                pos, m = data_parallel.batch_share(len(idx), comm.rank, comm.world, device)
                part = data.delays.apply(shift_channels(samples.subset(idx[pos]), shifts[pos]))
                step = data_parallel.global_step(comm, run.net, part, part.labels, pos, m, samples.labels[idx],
                                         options, device)
                grads, loss, readout = step.grads, step.loss, step.v_avg.astype(np.float32)
                batch_spikes = step.neuron_counts.astype(np.float64)
            lr_used = run.schedule.lr
            adam_step(run.net.weights, grads, run.adam, lr_used, beta1=o.adam_beta1, beta2=o.adam_beta2,
                      eps=o.adam_eps)
            run.schedule.after_batch()
            neuron_spikes += batch_spikes
            loss_sum += float(loss) * len(idx)
            correct += int((np.argmax(readout, axis=1) == samples.labels[idx]).sum())
            seen += len(idx)
            bar.update(len(idx))
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.3f}",
                            spk=f"{neuron_spikes.sum() / (seen * H):.1f}")
    if not all(np.isfinite(w).all() for w in run.net.weights.values()):
        raise PipelineError(f"epoch {epoch}: the weights became NaN/inf (lower the learning rate, optim.lr = {o.lr})")
    silent = neuron_spikes == 0
    if cfg.silent_fix.enabled and silent.any():
        run.net.weights["input_hidden"][:, silent] += np.float32(cfg.silent_fix.amount)
    if comm is None or len(data.valid) == 0:
        valid_accuracy = validation_accuracy(run.net, data.valid, device=device, batch_size=cfg.eval_batch_size)
    else:
        valid_accuracy = data_parallel.evaluate_float(comm, run.net, data.valid, batch_size=cfg.eval_batch_size,
                                              device=device).accuracy
    reduced = run.schedule.after_epoch(valid_accuracy)
    run.epoch = epoch
    if valid_accuracy > run.best_valid_accuracy:
        run.best_valid_accuracy, run.best_epoch = valid_accuracy, epoch
        run.best_weights = {k: v.copy() for k, v in run.net.weights.items()}
    row = {"epoch": epoch, "train_loss": loss_sum / seen, "train_accuracy": correct / seen,
           "valid_accuracy": valid_accuracy, "lr": lr_used, "spikes_per_neuron": neuron_spikes.sum() / (seen * H),
           "silent_neurons": int(silent.sum()), "seconds": time.perf_counter() - t0}
    run.history.append(row)
    log(f"epoch {epoch}/{o.epochs}: loss {row['train_loss']:.4f}, train acc {100 * row['train_accuracy']:.1f}%, "
        f"valid acc {100 * valid_accuracy:.1f}%, lr {lr_used:.2e}, {row['spikes_per_neuron']:.1f} spikes/neuron, "
        f"{row['silent_neurons']} silent, {row['seconds']:.1f} s" + (" (lr reduced)" if reduced else ""))


def _save_epoch_files(run: _Run, cfg: TrainConfig, data: RunData, run_dir: Path) -> None:
    """After the checkpoint: the network files and the metrics row (rebuilt from it on resume)."""
    params = run.net.params
    Network({k: run.net.weights[k].copy() for k in WEIGHT_NAMES}, params,
            _provenance(cfg, data, run.epoch, {"kind": "last"})).save(run_dir / LAST)
    Network(run.best_weights, params, _provenance(cfg, data, run.best_epoch,
            {"kind": "best", "valid_accuracy": run.best_valid_accuracy})).save(run_dir / BEST)
    append_metrics(run_dir, run.history[-1])
