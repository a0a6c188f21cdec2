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

from eventprop_core.atomic import atomic_path
from eventprop_core.errors import PipelineError
from eventprop_core.network import WEIGHT_NAMES
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
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def load_checkpoint(path) -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint here; is this a training run folder?")
    try:
        with np.load(path, allow_pickle=False) as npz:
            c = {k: npz[k] for k in npz.files}
        state = json.loads(str(c["state"]))
        get = (lambda prefix: {n: c[f"{prefix}/{n}"] for n in WEIGHT_NAMES})
        weights, best = get("weights"), get("best")
        adam = AdamState(get("adam_m"), get("adam_v"), int(c["adam_step"]))
        config_json = str(c["config"])
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable training checkpoint (truncated or corrupt?): {exc}") from None
    if state.get("format") != FORMAT or state.get("version") != VERSION:
        raise CheckpointError(f"{path}: not a version-{VERSION} {FORMAT} file")
    return Checkpoint(weights, best, adam, state, config_json)
