"""Saved run results (pipeline stages, report): numpy archives (never pickled) and JSON files inside the run folder."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from eventprop_core.atomic import atomic_write_text, save_npz
from eventprop_core.errors import RunDirError
from eventprop_core.npz_read import read_npz


def save_arrays(path, **arrays) -> Path:
    path = Path(path)
    return save_npz(path, compressed=True, **arrays)


def load_arrays(path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path}: result file not found; run `eventprop pipeline --resume` to (re)create it")
    return read_npz(path, RunDirError, "result file")


def save_json(path, obj) -> Path:
    path = Path(path)
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")
    return path


def load_json(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path}: result file not found; run `eventprop pipeline --resume` to (re)create it")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError) as exc:   # ValueError: invalid JSON or UTF-8
        raise RunDirError(f"{path}: unreadable JSON result ({exc})") from None


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
