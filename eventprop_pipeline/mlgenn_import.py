"""Import an mlGeNN checkpoint written by its Numpy serialiser (`<epoch>-<connection>-g.npy`).

Each file is a 1-D float32 array in row-major (n_pre, n_post) order. Neuron parameters are not
saved by mlGeNN, so they come from the caller.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from eventprop_core.errors import NetworkFileError
from eventprop_core.network import Network
from eventprop_core.npz_read import read_npy
from eventprop_core.params import ModelParams
from eventprop_core.provenance import utc_now

DEFAULT_CONNECTIONS = {"input_hidden": "input_hidden", "hidden_hidden": "hidden_hidden",
                       "hidden_output": "hidden_output"}


def _load_flat(path: Path) -> np.ndarray:
    if not path.is_file():
        siblings = sorted(p.name for p in path.parent.glob("*-g.npy"))[:6]
        hint = f" (files present: {', '.join(siblings)})" if siblings else " (no *-g.npy files in that folder)"
        raise NetworkFileError(f"{path}: mlGeNN weight file not found{hint}; check --epoch and the connection names")
    arr = read_npy(path, NetworkFileError, ".npy file")
    if not np.issubdtype(arr.dtype, np.floating):
        raise NetworkFileError(f"{path}: dtype {arr.dtype}, expected float32 weights")
    if arr.size == 0:
        raise NetworkFileError(f"{path}: empty weight array (0 values)")
    return arr.reshape(-1).astype(np.float32)


def import_mlgenn(directory, epoch, *, connections: dict | None = None, params: ModelParams | None = None
                  ) -> Network:
    """Read the three weight files of `epoch` and infer the layer sizes from their lengths."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise NetworkFileError(f"{directory}: is a file; give the mlGeNN checkpoint folder that holds it")
    if not directory.is_dir():
        raise NetworkFileError(f"{directory}: mlGeNN checkpoint folder not found")
    names = {**DEFAULT_CONNECTIONS, **(connections or {})}
    files = {k: directory / f"{epoch}-{names[k]}-g.npy" for k in names}
    flat = {k: _load_flat(p) for k, p in files.items()}
    n_rec = math.isqrt(flat["hidden_hidden"].size)
    if n_rec * n_rec != flat["hidden_hidden"].size:
        raise NetworkFileError(f"{files['hidden_hidden']}: {flat['hidden_hidden'].size} values is not a square "
                               f"(n_hidden x n_hidden) matrix")
    for key in ("input_hidden", "hidden_output"):
        if flat[key].size % n_rec:
            raise NetworkFileError(f"{files[key]}: {flat[key].size} values is not a multiple of n_hidden={n_rec} "
                                   f"(from {files['hidden_hidden'].name})")
    weights = {"input_hidden": flat["input_hidden"].reshape(-1, n_rec),
               "hidden_hidden": flat["hidden_hidden"].reshape(n_rec, n_rec),
               "hidden_output": flat["hidden_output"].reshape(n_rec, -1)}
    prov = {"created_by": "eventprop import-mlgenn", "source": str(directory.resolve()), "epoch": str(epoch),
            "connections": names, "created_at": utc_now()}
    try:
        return Network(weights, params or ModelParams(), prov)
    except NetworkFileError as exc:
        raise NetworkFileError(f"{directory} epoch {epoch}: {exc}") from None
