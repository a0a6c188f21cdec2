"""`finetune`: continue training a float network with its fixed-point (Loihi 2) version in the loop.

Start: quantize the model (calibrate on training samples, or percentile); its steps, decays and
threshold stay fixed. Each batch: re-quantize the shadow weights (rint, saturate), run the batch
through the emulator's integer dynamics, Eventprop backward from that spike record, Adam on the
shadow weights (straight-through), clamp them to the representable range. After each epoch: the
emulator's accuracy on a validation hold-out; the best epoch (epoch 0 = the plain export included,
so fine-tuning never ends below it on validation) is written as a NetX file, and the emulator
accuracy of that file, read back, on the test split is what is reported.

Resumable like `train`: every random choice is a function of (seed, epoch) and the checkpoint after
each epoch holds the shadow weights and Adam state, so a resumed run ends with the same weights bit
for bit as an uninterrupted one.
"""
from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from eventprop_core.atomic import atomic_write_text
from ..data.batching import batch_indices
from ..run_folder import clear_run_files
from eventprop_core.errors import ConfigError, PipelineError
from eventprop_core.network import WEIGHT_NAMES, Network, load_network
from eventprop_core.provenance import sha256_file, utc_now
from ..training.adam import AdamState, adam_step
from ..training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from ..training.metrics import append_metrics, rewrite_metrics
from ..training.splits import holdout_indices
from .gradients import fixed_point_batch
from .grid import Grid

CHECKPOINT, CONFIG_FILE, INITIAL, NETX, MODEL, SUMMARY = ("checkpoint.npz", "config.json", "initial.net",
                                                         "network.net", "model.npz", "summary.json")
RUN_FILES = (CHECKPOINT, CONFIG_FILE, INITIAL, NETX, MODEL, SUMMARY, "metrics.csv", "metrics.jsonl")
KIND = "eventprop-finetune"
RESUMABLE_CHANGES = ("epochs",)


class FinetuneInterrupted(PipelineError):
    """Ctrl-C during fine-tuning; the checkpoint of the last completed epoch is intact."""


def default_lr(weight_bits: int) -> float:
    """0.02 of a 2-bit level, expressed in levels of this width: the same step in float terms at every
    width (a level halves per extra bit). Measured on the espeak set: 0.02 levels at 4 bits (4x
    smaller in float terms) recovered 3.8 points, 0.08 recovered 8.8 (README)."""
    return 0.02 * 2.0 ** (weight_bits - 2)


@dataclass(frozen=True)
class FinetuneConfig:
    model: str                         # float network file (.npz)
    weight_bits: int = 2
    scale: str = "calibrate"           # initial steps: calibrate (agreement with the float model) | percentile
    calibration_samples: int = 256
    epochs: int = 20
    batch_size: int = 32
    lr: float | None = None            # Adam step in quantization levels; None: default_lr(weight_bits)
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    seed: int = 0                      # batch order
    dataset: str = "synthetic"
    data_root: str | None = None
    synthetic: dict = field(default_factory=dict)   # SyntheticConfig fields (dataset synthetic)
    train_split: str = "train"
    test_split: str = "test"
    valid_fraction: float = 0.1        # hold-out of train for choosing the epoch (as `train` does)
    valid_seed: int = 0
    train_limit: int = 0
    test_limit: int = 0
    reg_lambda_upper: float = 2.5e-10  # spike-count regulariser (as `train`)
    reg_nu_upper: float = 14.0
    clip: bool = False

    def __post_init__(self):
        if not isinstance(self.weight_bits, int) or not 1 <= self.weight_bits <= 8:
            raise ConfigError(f"--weight-bits must be an integer in 1..8, got {self.weight_bits!r}")
        if self.scale not in ("calibrate", "percentile"):
            raise ConfigError(f"--scale must be calibrate or percentile, got {self.scale!r}")
        for name in ("epochs", "calibration_samples"):
            if getattr(self, name) < (0 if name == "epochs" else 1):
                raise ConfigError(f"--{name.replace('_', '-')} must be {'>= 0' if name == 'epochs' else '>= 1'}, "
                                  f"got {getattr(self, name)}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"--lr must be > 0, got {self.lr}")

    @property
    def adam_lr(self) -> float:
        return default_lr(self.weight_bits) if self.lr is None else float(self.lr)
        if not 0 < self.valid_fraction < 1:
            raise ConfigError(f"valid_fraction must be in (0, 1), got {self.valid_fraction}")

    def to_json(self) -> str:
        return json.dumps({"kind": KIND, **asdict(self)}, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str) -> "FinetuneConfig":
        d = json.loads(text)
        if d.pop("kind", None) != KIND:
            raise ConfigError(f"{source}: not a fine-tuning run (its checkpoint belongs to another command)")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class FinetuneSummary:
    run_dir: str
    epochs_completed: int
    epochs_planned: int
    finished: bool
    weight_bits: int
    steps: dict
    best_epoch: int
    valid_accuracy_before: float       # emulator, epoch 0 (the plain export)
    best_valid_accuracy: float
    float_test_accuracy: float | None
    emulator_test_accuracy_before: float | None   # the plain export
    emulator_test_accuracy: float | None          # network.net read back, in the emulator
    agreement_before: float | None     # with the float model's test predictions
    agreement: float | None
    n_train: int
    n_valid: int
    n_test: int
    seconds: float
    netx_path: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Data:
    train: object
    valid: object
    test: object


def _load_data(cfg: FinetuneConfig, net: Network) -> _Data:
    from ..data.registry import load_dataset
    from ..data.synthetic import SyntheticConfig

    p = net.params

    def load(split: str, limit: int):
        return load_dataset(cfg.dataset, split, data_root=cfg.data_root, dt=p.dt, timesteps=p.timesteps,
                            synthetic=SyntheticConfig(**cfg.synthetic) if cfg.dataset == "synthetic" else None,
                            limit=limit or None)

    train, test = load(cfg.train_split, cfg.train_limit), load(cfg.test_split, cfg.test_limit)
    for d in (train, test):
        if d.n_channels != net.n_input:
            raise ConfigError(f"{d.name}: {d.n_channels} channels, but {cfg.model} has {net.n_input} inputs")
    if len(train) < 2:
        raise ConfigError(f"{train.name}: {len(train)} training sample(s); fine-tuning needs at least 2")
    tr, va = holdout_indices(len(train), cfg.valid_fraction, cfg.valid_seed)
    return _Data(train.subset(tr, name=f"{train.name}-train"), train.subset(va, name=f"{train.name}-valid"), test)


def _emulator_accuracy(fx, data) -> tuple[float, np.ndarray]:
    from netx_export.emulator import emulate
    pred = emulate(fx, data).pred
    return float(np.mean(pred == data.labels)), pred


def _emulator_validation(fx, data) -> tuple[float, float]:
    """(accuracy, mean cross-entropy of the emulator's readout score): the epoch choice ranks by
    accuracy, then loss (a few dozen validation samples tie often)."""
    from netx_export.emulator import emulate

    from ..eventprop.loss_terms import cross_entropy
    r = emulate(fx, data)
    return float(np.mean(r.pred == data.labels)), float(cross_entropy(r.score, data.labels).mean())


def _initial_fixed_point(cfg: FinetuneConfig, net: Network, data: _Data):
    from netx_export.quantize import quantize

    from ..evaluation import evaluate_float

    calibration, scores = None, None
    if cfg.scale == "calibrate":
        calibration = data.train.subset(np.arange(min(cfg.calibration_samples, len(data.train))))
        scores = evaluate_float(net, calibration, device="cpu").score
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fx, report = quantize(net, weight_bits=cfg.weight_bits, strategy=cfg.scale, calibration=calibration,
                              float_scores=scores, clip=cfg.clip)
    return fx, report


def _prepare_run_dir(run_dir: Path, force: bool) -> None:
    clear_run_files(run_dir, RUN_FILES, force, "run", "finetune")


class _State:
    def __init__(self, shadow, adam, best, epoch, best_epoch, best_valid, history):
        self.shadow, self.adam, self.best, self.epoch = shadow, adam, best, epoch
        self.best_epoch, self.best_valid, self.history = best_epoch, best_valid, history

    def checkpoint(self, cfg: FinetuneConfig) -> Checkpoint:
        state = {"epoch": self.epoch, "best_epoch": self.best_epoch, "best_valid": self.best_valid,
                 "history": self.history}
        return Checkpoint(self.shadow, self.best, self.adam, state, cfg.to_json())


def finetune(config: FinetuneConfig | None, run_dir, *, resume: bool = False, force: bool = False,
             epochs: int | None = None, progress: bool = True, log=print,
             max_epochs_this_call: int | None = None) -> FinetuneSummary:
    """Fine-tune (or with resume, continue fine-tuning) with the fixed-point network in the loop.

    epochs (resume only): a new total. max_epochs_this_call stops after that many epochs, as a kill
    would, leaving a resumable run (finished=False)."""
    from netx_export.hdf5_io import read_netx, write_netx

    started = time.perf_counter()
    run_dir = Path(run_dir)
    if resume:
        ckpt = load_checkpoint(run_dir / CHECKPOINT, training_state=False)
        cfg = FinetuneConfig.from_json(ckpt.config_json, str(run_dir / CHECKPOINT))
        if epochs is not None:
            cfg = FinetuneConfig(**{**asdict(cfg), "epochs": epochs})
        if not (run_dir / INITIAL).is_file():
            raise ConfigError(f"{run_dir / INITIAL} is missing: the run cannot be resumed (start it again with --force)")
    elif config is None:
        raise ConfigError("finetune: a config is needed to start a new run")
    else:
        cfg = config
    net = load_network(cfg.model)
    data = _load_data(cfg, net)
    if resume:
        template = read_netx(run_dir / INITIAL)
    else:
        _prepare_run_dir(run_dir, force)
        template, report = _initial_fixed_point(cfg, net, data)
        template.metadata["exported_from"] = str(cfg.model)
        write_netx(template, run_dir / INITIAL)
        log("  " + report.table().replace("\n", "\n  "))
    grid = Grid(template, (1.0 - net.params.alpha) * net.params.i_scale)
    if resume:
        st = _State(ckpt.weights, ckpt.adam, ckpt.best_weights, ckpt.state["epoch"], ckpt.state["best_epoch"],
                    ckpt.state["best_valid"], ckpt.state["history"])
        rewrite_metrics(run_dir, st.history)
        log(f"resuming {run_dir} after epoch {st.epoch} of {cfg.epochs}")
    else:
        shadow = grid.shadow_of(net)
        grid.clamp(shadow)
        valid0 = _emulator_validation(template, data.valid)
        st = _State(shadow, AdamState.zeros_like(shadow), {k: v.copy() for k, v in shadow.items()}, 0, 0,
                    list(valid0), [])
        save_checkpoint(run_dir / CHECKPOINT, st.checkpoint(cfg))
    atomic_write_text(run_dir / CONFIG_FILE, cfg.to_json() + "\n")
    valid_before = st.history[0]["valid_accuracy_before"] if st.history else st.best_valid[0]
    log(f"fine-tuning {cfg.model} at {cfg.weight_bits}-bit weights (steps hidden {template.hidden.step:.4g}, "
        f"readout {template.readout.step:.4g}): {len(data.train)} train, {len(data.valid)} validation, "
        f"{len(data.test)} test; emulator validation accuracy before: {100 * valid_before:.2f}%")
    epochs_run = 0
    try:
        while st.epoch < cfg.epochs:
            if max_epochs_this_call is not None and epochs_run >= max_epochs_this_call:
                break
            _epoch(st, cfg, grid, net, data, progress, log, valid_before)
            save_checkpoint(run_dir / CHECKPOINT, st.checkpoint(cfg))
            append_metrics(run_dir, st.history[-1])
            epochs_run += 1
    except KeyboardInterrupt:
        raise FinetuneInterrupted(f"interrupted; {run_dir / CHECKPOINT} holds epoch {st.epoch}. "
                                  f"Continue with: eventprop finetune --resume {run_dir}") from None
    finished = st.epoch >= cfg.epochs
    summary = FinetuneSummary(
        run_dir=str(run_dir), epochs_completed=st.epoch, epochs_planned=cfg.epochs, finished=finished,
        weight_bits=cfg.weight_bits, steps={"hidden": template.hidden.step, "readout": template.readout.step},
        best_epoch=st.best_epoch, valid_accuracy_before=valid_before, best_valid_accuracy=st.best_valid[0],
        float_test_accuracy=None, emulator_test_accuracy_before=None, emulator_test_accuracy=None,
        agreement_before=None, agreement=None, n_train=len(data.train), n_valid=len(data.valid),
        n_test=len(data.test), seconds=0.0, netx_path=str(run_dir / NETX))
    if finished:
        _finish(summary, cfg, grid, net, st, data, run_dir, log)
    summary.seconds = time.perf_counter() - started
    if finished:
        atomic_write_text(run_dir / SUMMARY, json.dumps(summary.to_dict(), indent=2, sort_keys=True) + "\n")
    return summary


def _epoch(st: _State, cfg: FinetuneConfig, grid: Grid, net: Network, data: _Data, progress: bool, log,
           valid_before: float) -> None:
    from tqdm.auto import tqdm

    from ..eventprop.options import LossOptions

    epoch = st.epoch + 1
    t0 = time.perf_counter()
    options = LossOptions(reg_lambda_upper=cfg.reg_lambda_upper, reg_nu_upper=cfg.reg_nu_upper)
    train = data.train
    H = net.n_hidden
    spikes = np.zeros(H)
    loss_sum, correct, seen = 0.0, 0, 0
    with tqdm(total=len(train), desc=f"finetune epoch {epoch}/{cfg.epochs}", unit="sample", disable=not progress,
              leave=False) as bar:
        for idx in batch_indices(len(train), cfg.batch_size, shuffle=True, seed=cfg.seed, epoch=epoch):
            fx = grid.fixed(st.shadow)
            r = fixed_point_batch(grid, fx, net.params, train, idx, train.labels[idx], options)
            adam_step(st.shadow, r.grads, st.adam, cfg.adam_lr, beta1=cfg.adam_beta1, beta2=cfg.adam_beta2,
                      eps=cfg.adam_eps)
            grid.clamp(st.shadow)
            spikes += r.counts.sum(axis=0)
            loss_sum += r.loss * len(idx)
            correct += int((np.argmax(r.score, axis=1) == train.labels[idx]).sum())
            seen += len(idx)
            bar.update(len(idx))
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.3f}")
    valid, valid_loss = _emulator_validation(grid.fixed(st.shadow), data.valid)
    st.epoch = epoch
    if (valid, -valid_loss) > (st.best_valid[0], -st.best_valid[1]):
        st.best_valid, st.best_epoch = [valid, valid_loss], epoch
        st.best = {k: v.copy() for k, v in st.shadow.items()}
    row = {"epoch": epoch, "train_loss": loss_sum / seen, "train_accuracy": correct / seen, "valid_accuracy": valid,
           "lr": cfg.adam_lr, "spikes_per_neuron": float(spikes.sum() / (seen * H)), "silent_neurons": int((spikes == 0).sum()),
           "seconds": time.perf_counter() - t0, "valid_loss": valid_loss, "valid_accuracy_before": valid_before}
    st.history.append(row)
    log(f"epoch {epoch}/{cfg.epochs}: loss {row['train_loss']:.4f}, train acc (fixed point) "
        f"{100 * row['train_accuracy']:.1f}%, valid acc (emulator) {100 * valid:.1f}% (loss {valid_loss:.4f}), "
        f"{row['spikes_per_neuron']:.1f} spikes/neuron, {row['seconds']:.1f} s")


def _finish(summary: FinetuneSummary, cfg: FinetuneConfig, grid: Grid, net: Network, st: _State, data: _Data,
            run_dir: Path, log) -> None:
    """Write the best epoch's NetX file (and its float twin), read it back, report its emulator accuracy."""
    from netx_export.hdf5_io import read_netx, write_netx

    from ..evaluation import evaluate_float

    meta = dict(grid.template.metadata)
    meta["finetune"] = {"config": json.loads(cfg.to_json()), "best_epoch": st.best_epoch,
                        "best_valid_accuracy": st.best_valid[0], "model_sha256": sha256_file(cfg.model),
                        "date": utc_now()}
    fx = grid.fixed(st.best, metadata=meta)
    write_netx(fx, run_dir / NETX)
    Network({k: v.astype(np.float32) for k, v in grid.effective_weights(fx).items()}, net.params,
            {"kind": "finetuned (on the fixed-point grid)", **meta["finetune"]}).save(run_dir / MODEL)
    back = read_netx(run_dir / NETX)
    float_result = evaluate_float(net, data.test, device="cpu")
    before, pred_before = _emulator_accuracy(grid.template, data.test)
    after, pred_after = _emulator_accuracy(back, data.test)
    summary.float_test_accuracy = float_result.accuracy
    summary.emulator_test_accuracy_before = before
    summary.emulator_test_accuracy = after
    summary.agreement_before = float(np.mean(pred_before == float_result.pred))
    summary.agreement = float(np.mean(pred_after == float_result.pred))
    log(f"test ({len(data.test)} samples): float {100 * float_result.accuracy:.2f}%, emulator {cfg.weight_bits}-bit "
        f"before fine-tuning {100 * before:.2f}%, after {100 * after:.2f}% (epoch {st.best_epoch}, {run_dir / NETX})")


__all__ = ["FinetuneConfig", "FinetuneSummary", "FinetuneInterrupted", "finetune", "WEIGHT_NAMES"]
