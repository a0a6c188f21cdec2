"""The framework-neutral network file: one `.npz` of float32 weights plus JSON metadata.

Weights are stored in mlGeNN's (pre, post) orientation:
  input_hidden (n_in, n_hidden), hidden_hidden (n_hidden, n_hidden), hidden_output (n_hidden, n_out).
Loading never unpickles (`allow_pickle=False`).
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import save_npz
from .errors import ConfigError, NetworkFileError
from .memory_check import check_memory_for_timesteps, require_memory
from .npz_read import read_npz
from .params import ModelParams
from .provenance import utc_now

FORMAT_NAME = "eventprop-network"
FORMAT_VERSION = 1
WEIGHT_NAMES = ("input_hidden", "hidden_hidden", "hidden_output")
METADATA_KEY = "metadata"


@dataclass
class Network:
    """Weights (float32, pre x post) and the parameters needed to simulate them."""

    weights: dict[str, np.ndarray]
    params: ModelParams = field(default_factory=ModelParams)
    provenance: dict = field(default_factory=dict)

    def __post_init__(self):
        self.weights = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in self.weights.items()}
        validate_weights(self.weights, source="network")

    @property
    def n_input(self) -> int:
        return self.weights["input_hidden"].shape[0]

    @property
    def n_hidden(self) -> int:
        return self.weights["input_hidden"].shape[1]

    @property
    def n_output(self) -> int:
        return self.weights["hidden_output"].shape[1]

    @classmethod
    def initialise(cls, n_input: int = 700, n_hidden: int = 256, n_output: int = 20,
                   params: ModelParams | None = None, seed: int = 0,
                   init: dict | None = None) -> "Network":
        """Random network with the paper's Normal initialisation (mean, sd) per connection."""
        init = {**DEFAULT_INIT, **(init or {})}
        n_weights = n_input * n_hidden + n_hidden * n_hidden + n_hidden * n_output
        # weights, best weights and Adam's two float64 moments, plus gradients: ~8 float32 copies
        require_memory(n_weights * 4 * 8, f"network {n_input} -> {n_hidden} -> {n_output} ({n_weights} weights)",
                       "use fewer hidden neurons (--hidden / [network] hidden)")
        rng = np.random.default_rng(seed)
        shapes = {"input_hidden": (n_input, n_hidden), "hidden_hidden": (n_hidden, n_hidden),
                  "hidden_output": (n_hidden, n_output)}
        weights = {k: rng.normal(init[k][0], init[k][1], size=s).astype(np.float32)
                   for k, s in shapes.items()}
        prov = {"created_by": "eventprop_pipeline.Network.initialise", "seed": seed,
                "init": {k: list(v) for k, v in init.items()}, "created_at": utc_now()}
        return cls(weights, params or ModelParams(), prov)

    def metadata(self) -> dict:
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "sizes": {"input": self.n_input, "hidden": self.n_hidden, "output": self.n_output},
            "params": self.params.to_dict(),
            "provenance": self.provenance,
        }

    def save(self, path) -> Path:
        """Write the network atomically (a crash mid-write leaves any old file intact)."""
        path = Path(path)
        arrays = {k: self.weights[k] for k in WEIGHT_NAMES}
        arrays[METADATA_KEY] = np.array(json.dumps(self.metadata(), sort_keys=True))
        return save_npz(path, **arrays)

    def copy(self) -> "Network":
        return Network({k: v.copy() for k, v in self.weights.items()}, self.params,
                       json.loads(json.dumps(self.provenance)))


DEFAULT_INIT = {"input_hidden": (0.03, 0.01), "hidden_hidden": (0.0, 0.02), "hidden_output": (0.0, 0.03)}


def validate_weights(weights: dict, source: str) -> None:
    """Check names, 2-D shapes that chain together, and finite values."""
    missing = [k for k in WEIGHT_NAMES if k not in weights]
    if missing:
        raise NetworkFileError(f"{source}: missing weight matrix {', '.join(missing)} "
                               f"(expected {', '.join(WEIGHT_NAMES)})")
    for k in WEIGHT_NAMES:
        w = weights[k]
        if w.ndim != 2 or 0 in w.shape:
            raise NetworkFileError(f"{source}: {k} must be a non-empty 2-D (pre, post) matrix, got shape {w.shape}")
        bad = ~np.isfinite(w)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise NetworkFileError(f"{source}: {k} has {int(bad.sum())} NaN/inf values (first at [{i}, {j}] = {w[i, j]})")
    n_in, n_hid = weights["input_hidden"].shape
    if weights["hidden_hidden"].shape != (n_hid, n_hid):
        raise NetworkFileError(f"{source}: hidden_hidden has shape {weights['hidden_hidden'].shape}, "
                               f"expected ({n_hid}, {n_hid}) to match input_hidden {weights['input_hidden'].shape}")
    if weights["hidden_output"].shape[0] != n_hid:
        raise NetworkFileError(f"{source}: hidden_output has shape {weights['hidden_output'].shape}, "
                               f"expected ({n_hid}, n_out) to match input_hidden {weights['input_hidden'].shape}")


NETX_SUFFIXES = (".h5", ".hdf5", ".net")


def check_network_file(path) -> None:
    """Missing, a folder, empty, or a NetX name that is not HDF5: one clear NetworkFileError."""
    import h5py

    path = Path(path)
    if path.is_dir():
        raise NetworkFileError(f"{path}: is a directory, expected a network file (.npz or NetX .h5/.net)")
    if not path.exists():
        raise NetworkFileError(f"{path}: network file not found")
    if not path.is_file():
        raise NetworkFileError(f"{path}: not a regular file")
    try:
        size = path.stat().st_size
        if size == 0:
            raise NetworkFileError(f"{path}: empty file (0 bytes; an interrupted copy or export?); re-create it")
        if path.suffix.lower() in NETX_SUFFIXES and not h5py.is_hdf5(path) and not zipfile.is_zipfile(path):
            raise NetworkFileError(f"{path}: not an HDF5 file ({size} bytes, truncated or corrupt?); "
                                   f"re-export it with `eventprop export`")
    except OSError as exc:
        raise NetworkFileError(f"{path}: cannot read ({exc.strerror or exc})") from None


def load_network(path) -> Network:
    """Load and validate a network file; every problem is a NetworkFileError naming the file."""
    path = Path(path)
    check_network_file(path)
    contents = read_npz(path, NetworkFileError, "network .npz file (for mlGeNN weight files use "
                        "`eventprop import-mlgenn`)")
    if METADATA_KEY not in contents:
        raise NetworkFileError(f"{path}: missing '{METADATA_KEY}' entry; not an eventprop network file")
    try:
        meta = json.loads(str(contents.pop(METADATA_KEY)))
    except json.JSONDecodeError as exc:
        raise NetworkFileError(f"{path}: metadata is not valid JSON: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise NetworkFileError(f"{path}: metadata 'format' is {meta.get('format') if isinstance(meta, dict) else meta!r}, "
                               f"expected {FORMAT_NAME!r}")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise NetworkFileError(f"{path}: unsupported format_version {version!r} (this version reads {FORMAT_VERSION})")
    for k in WEIGHT_NAMES:
        if k in contents and not np.issubdtype(contents[k].dtype, np.floating):
            raise NetworkFileError(f"{path}: {k} has dtype {contents[k].dtype}, expected float32")
    validate_weights(contents, source=str(path))
    sizes = meta.get("sizes", {})
    if not isinstance(sizes, dict):
        raise NetworkFileError(f"{path}: metadata 'sizes' is {sizes!r}, expected a table of input, hidden, output")
    if not isinstance(meta.get("provenance", {}), dict):
        raise NetworkFileError(f"{path}: metadata 'provenance' is {meta['provenance']!r}, expected a table")
    actual = {"input": contents["input_hidden"].shape[0], "hidden": contents["input_hidden"].shape[1],
              "output": contents["hidden_output"].shape[1]}
    for key, value in actual.items():
        if key in sizes and (isinstance(sizes[key], bool) or sizes[key] != value):
            raise NetworkFileError(f"{path}: metadata says {key} size {sizes[key]} but the weights have {value}")
    try:
        params = ModelParams.from_dict(meta.get("params", {}))
    except ConfigError as exc:
        raise NetworkFileError(f"{path}: invalid params in metadata: {exc}") from None
    check_memory_for_timesteps(params.timesteps, max(contents["input_hidden"].shape[0], 1),
                               f"{path}: metadata timesteps = {params.timesteps}",
                               "re-export the network with a sensible timesteps value")
    return Network({k: contents[k] for k in WEIGHT_NAMES}, params, meta.get("provenance", {}))
