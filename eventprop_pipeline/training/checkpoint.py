"""The resumable training checkpoint: one .npz of plain arrays plus JSON text (never pickled).

Entries: weights/<name>, best/<name>, adam_m/<name>, adam_v/<name> (arrays), adam_step (int64),
state (JSON: epoch, lr schedule, best-so-far, metrics history) and config (the resolved config JSON).
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eventprop_core.atomic import save_npz
from eventprop_core.errors import PipelineError
from eventprop_core.network import WEIGHT_NAMES
from eventprop_core.npz_read import read_npz
from .adam import AdamState

FORMAT = "eventprop-train-checkpoint"
VERSION = 1


class CheckpointError(PipelineError):
    """A training checkpoint is missing, corrupt or from another run."""


@dataclass
class Checkpoint:
    weights: dict[str, np.ndarray]
    best_weights: dict[str, np.ndarray]
    adam: AdamState
    state: dict          # epoch (completed), schedule, best_val_accuracy, best_epoch, history
    config_json: str


def save_checkpoint(path, ckpt: Checkpoint) -> None:
    arrays = {}
    for name in WEIGHT_NAMES:
        arrays[f"weights/{name}"] = ckpt.weights[name]
        arrays[f"best/{name}"] = ckpt.best_weights[name]
        arrays[f"adam_m/{name}"] = ckpt.adam.m[name]
        arrays[f"adam_v/{name}"] = ckpt.adam.v[name]
    arrays["adam_step"] = np.array(ckpt.adam.step, np.int64)
    arrays["state"] = np.array(json.dumps({"format": FORMAT, "version": VERSION, **ckpt.state}))
    arrays["config"] = np.array(ckpt.config_json)
    save_npz(path, **arrays)


def load_checkpoint(path, training_state: bool = True) -> Checkpoint:
    """training_state=False: another run type (finetune) keeps its own state; only arrays, epoch and
    config are checked here."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint here; is this a training run folder?")
    try:
        c = read_npz(path, CheckpointError, "training checkpoint")
        state = json.loads(str(c["state"]))
        get = (lambda prefix: {n: c[f"{prefix}/{n}"] for n in WEIGHT_NAMES})
        weights, best = get("weights"), get("best")
        step = c["adam_step"]
        if step.shape != () or step.dtype.kind not in "iu":
            raise ValueError(f"adam_step must be one integer, got dtype {step.dtype} shape {step.shape}")
        adam = AdamState(get("adam_m"), get("adam_v"), int(step))
        config_json = str(c["config"])
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable training checkpoint (truncated or corrupt?): "
                              f"{' '.join(str(exc).split())}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or state.get("version") != VERSION:
        raise CheckpointError(f"{path}: not a version-{VERSION} {FORMAT} file")
    _validate(path, weights, best, adam, state, config_json, training_state)
    return Checkpoint(weights, best, adam, state, config_json)


def _validate(path: Path, weights, best, adam: AdamState, state: dict, config_json: str,
              training_state: bool = True) -> None:
    """A hand-edited or foreign checkpoint fails here, naming the field, not later in training."""
    from eventprop_core.errors import NetworkFileError
    from eventprop_core.network import validate_weights
    from .metrics import COLUMNS
    from .schedule import LRSchedule

    def bad(what: str):
        return CheckpointError(f"{path}: {what} (hand-edited or from another version?); restart the run")

    for label, arrays in (("weights", weights), ("best", best), ("adam_m", adam.m), ("adam_v", adam.v)):
        if any(not np.issubdtype(a.dtype, np.floating) for a in arrays.values()):
            raise bad(f"{label}/* must be float arrays")
        try:
            validate_weights(arrays, source=f"{label}")
        except NetworkFileError as exc:
            raise bad(str(exc)) from None
        shapes = {k: a.shape for k, a in arrays.items()}
        if shapes != {k: a.shape for k, a in weights.items()}:
            raise bad(f"{label}/* shapes {shapes} differ from the weights'")
    if adam.step < 0:
        raise bad(f"adam_step = {adam.step} is negative")
    for key in ("epoch", "best_epoch"):
        v = state.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise bad(f"state '{key}' is {v!r}, expected an integer >= 0")
    if not training_state:
        return _validate_config(bad, config_json)
    v = state.get("best_valid_accuracy")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise bad(f"state 'best_valid_accuracy' is {v!r}, expected a number")
    history = state.get("history")
    if (not isinstance(history, list) or len(history) != state["epoch"]
            or any(not isinstance(r, dict) or any(c not in r for c in COLUMNS) for r in history)):
        raise bad(f"state 'history' must list one metrics row ({', '.join(COLUMNS)}) per completed epoch "
                  f"({state['epoch']})")
    schedule = state.get("schedule")
    fields = LRSchedule.__dataclass_fields__
    if (not isinstance(schedule, dict) or set(schedule) != set(fields)
            or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in schedule.values())):
        raise bad(f"state 'schedule' must hold the numbers {', '.join(fields)}, got {schedule!r}")
    _validate_config(bad, config_json)


def _validate_config(bad, config_json: str) -> None:
    try:
        config = json.loads(config_json)
    except json.JSONDecodeError as exc:
        raise bad(f"config is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise bad("config is not a table of settings")
