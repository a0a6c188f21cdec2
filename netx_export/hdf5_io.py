"""NetX HDF5 writer (this project's recurrent LIF network) and reader (any dense CUBA network that
lava-dl 0.6 loads, via netx_read.py; docs/netx_format.md, docs/netx_runtime.md).

Layout (what `lava.lib.dl.netx.hdf5.Network` reads; it ignores everything outside `/layer`):
  /layer/0  type b"input"      shape [n_in]                       (no neuron group: lava-dl #298)
  /layer/1  type b"dense_rec"  shape [H], weight (H, n_in), weight_rec (H, H), [bias (H,)],
            neuron/{type b"CUBA", iDecay, vDecay, vThMant, refDelay, gradedSpike}
  /layer/2  type b"dense"      shape [O], weight (O, H), [bias (O,)], neuron/... with vThMant >= 2^17
  /eventprop/metadata          JSON bytes: format, timesteps, dt, per-layer step and weight bits,
                               and FixedPointNetwork.metadata (float params, provenance, quantization)
Integers are stored with integer dtypes, `type` as fixed bytes (netx decodes it as ASCII). The
writer is deterministic (no HDF5 timestamps, fixed creation order), so export -> read -> export
gives a byte-identical file.
"""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

import h5py
import numpy as np

from eventprop_core.atomic import atomic_write_bytes

from .fixed_point import FixedPointLayer, FixedPointNetwork
from . import netx_read
from .limits import NetxFileError, validate_network, weight_range

__all__ = ["write_netx", "read_netx", "NetxFileError", "FORMAT_NAME", "FORMAT_VERSION", "METADATA_PATH"]

FORMAT_NAME = "eventprop-netx"
FORMAT_VERSION = 1
METADATA_PATH = "eventprop/metadata"
REF_DELAY = 1          # stored for completeness; Lava's CUBA model has no refractory period
TYPE_DTYPE = "S10"


# ----------------------------------------------------------------------------------------------- write

def write_netx(fxnet: FixedPointNetwork, path) -> Path:
    """Validate `fxnet` and write it atomically as a NetX HDF5 file; returns the path."""
    path = Path(path)
    validate_network(fxnet, source=str(path))
    meta = _metadata_json(fxnet, path)
    # Built in memory, then one atomic write: HDF5 never writes into a full or read-only disk
    # (where its close-time flush fails inside the library), and a failure names `path`.
    buf = io.BytesIO()
    # libver pinned and timestamps off: the same network always gives the same bytes.
    with h5py.File(buf, "w", libver=("earliest", "v110"), track_order=False) as f:
        layers = f.create_group("layer")
        inp = layers.create_group("0")
        _put_type(inp, "input")
        _put(inp, "shape", np.array([fxnet.n_input], np.int64))
        _write_layer(layers.create_group("1"), fxnet.hidden)
        _write_layer(layers.create_group("2"), fxnet.readout)
        extra = f.create_group("eventprop")
        _put(extra, "metadata", np.bytes_(meta.encode("utf-8")))
    atomic_write_bytes(path, buf.getvalue())
    return path


def _put(group: h5py.Group, name: str, data) -> None:
    group.create_dataset(name, data=data, track_times=False)


def _put_type(group: h5py.Group, value: str) -> None:
    group.create_dataset("type", (1,), TYPE_DTYPE, [value.encode("ascii")], track_times=False)


def _write_layer(g: h5py.Group, layer: FixedPointLayer) -> None:
    _put_type(g, layer.kind)
    _put(g, "shape", np.array([layer.size], np.int64))
    _put(g, "weight", np.ascontiguousarray(layer.weight, dtype=np.int16))
    if layer.weight_rec is not None:
        _put(g, "weight_rec", np.ascontiguousarray(layer.weight_rec, dtype=np.int16))
    if layer.bias is not None:
        _put(g, "bias", np.ascontiguousarray(layer.bias, dtype=np.int16))
    n = g.create_group("neuron")
    _put_type(n, "CUBA")
    _put(n, "iDecay", np.int32(layer.i_decay))
    _put(n, "vDecay", np.int32(layer.v_decay))
    _put(n, "vThMant", np.int32(layer.vth_mant))
    _put(n, "refDelay", np.int32(REF_DELAY))
    _put(n, "gradedSpike", np.int8(0))


def _metadata_json(fxnet: FixedPointNetwork, path: Path) -> str:
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "timesteps": int(fxnet.timesteps),
        "dt": float(fxnet.dt),
        "layers": {"1": _layer_meta(fxnet.hidden), "2": _layer_meta(fxnet.readout)},
        "metadata": fxnet.metadata,
    }
    try:
        return json.dumps(meta, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise NetxFileError(f"{path}: FixedPointNetwork.metadata is not plain JSON "
                            f"(dicts, lists, str, finite numbers): {exc}") from None


def _layer_meta(layer: FixedPointLayer) -> dict:
    return {"step": float(layer.step), "weight_bits": int(layer.weight_bits)}


# ------------------------------------------------------------------------------------------------ read

def read_netx(path) -> FixedPointNetwork:
    """Read a NetX HDF5 file as lava-dl 0.6 reads it (netx_read.py, docs/netx_runtime.md): any number of
    dense / dense_rec CUBA layers. Notes on what netx ignores are in `.notes`.

    Files without `/eventprop/metadata` (other exporters) are accepted: steps default to 1.0, weight
    bits to the width the weights need (at least 8), timesteps to 1000 and dt to 1 ms. With the
    metadata, the weights must also fit its declared weight bits.
    """
    path = Path(path)
    if not path.is_file():
        raise NetxFileError(f"{path}: NetX file not found")
    try:
        f = h5py.File(path, "r")
    except Exception as exc:
        raise NetxFileError(f"{path}: not a readable HDF5 file (truncated or corrupt?): "
                            f"{' '.join(str(exc).split())}") from None
    try:
        with f:
            fxnet = _read_open(f, path)
    except NetxFileError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError, AttributeError, OverflowError) as exc:
        raise NetxFileError(f"{path}: unreadable NetX file (truncated or corrupt?): {' '.join(str(exc).split())}") from None
    return fxnet


def _read_open(f: h5py.File, path: Path) -> FixedPointNetwork:
    meta = _read_metadata(f, path)
    names = netx_read.layer_names(f, path)
    steps = meta.get("layers", {})
    notes: list[str] = []
    n_input, layers = None, []
    for name in names:
        g, where = f["layer"][name], f"{path}: /layer/{name}"
        if not isinstance(g, h5py.Group):
            raise NetxFileError(f"{where}: expected a group")
        kind = netx_read.read_type(g, where)
        if kind not in netx_read.LAYER_TYPES:
            raise NetxFileError(f"{where}/type: {kind!r}; this runtime runs 'input', 'dense' and 'dense_rec' "
                                f"layers (convolutions, pooling, flatten and sigma-delta are not supported)")
        if kind == "input":
            if name != "0":
                raise NetxFileError(f"{where}/type: 'input' is only allowed as layer 0")
            n_input = netx_read.read_input_layer(g, where, notes)
            continue
        n_pre = (layers[-1].size if layers else n_input)
        if n_pre is None:        # no input layer: the first dense layer's weights give the input size
            n_pre = _first_weight_columns(g, where)
        layers.append(netx_read.read_dense_layer(g, kind, where, n_pre, steps.get(name, {}), notes))
        if steps.get(name):
            lo, hi = weight_range(layers[-1].weight_bits)
            for field, w in (("weight", layers[-1].weight), ("weight_rec", layers[-1].weight_rec)):
                if w is not None and (w.min() < lo or w.max() > hi):
                    bad = int(((w < lo) | (w > hi)).sum())
                    raise NetxFileError(f"{where}/{field}: {bad} value(s) outside the declared "
                                        f"{layers[-1].weight_bits}-bit range [{lo}, {hi}] (/{METADATA_PATH})")
    if not layers:
        raise NetxFileError(f"{path}: /layer holds no dense or dense_rec layer; nothing to run")
    if n_input is None:
        n_input = layers[0].weight.shape[1]
        notes.append("no input layer: the input size comes from the first layer's weights")
    fxnet = FixedPointNetwork(n_input, *layers, timesteps=int(meta.get("timesteps", 1000)),
                              dt=float(meta.get("dt", 1.0)), metadata=meta.get("metadata", {}), notes=notes)
    return fxnet


def _first_weight_columns(g: h5py.Group, where: str) -> int:
    w = g["weight"] if "weight" in g else None
    if not isinstance(w, h5py.Dataset) or len(w.shape) != 2:
        raise NetxFileError(f"{where}/weight: without an input layer the first layer needs 2-D weights "
                            f"(n, n_input); add /layer/0 of type 'input' with its shape")
    return int(w.shape[1])


def _read_metadata(f: h5py.File, path: Path) -> dict:
    if METADATA_PATH not in f:
        return {}
    where = f"{path}: /{METADATA_PATH}"
    raw = f[METADATA_PATH][()]
    if isinstance(raw, np.ndarray) or not isinstance(raw, (bytes, str)):
        raise NetxFileError(f"{where}: expected a scalar JSON string")
    try:
        meta = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NetxFileError(f"{where}: not valid JSON: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise NetxFileError(f"{where}: 'format' is not {FORMAT_NAME!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise NetxFileError(f"{where}: unsupported format_version {meta.get('format_version')!r} "
                            f"(this version reads {FORMAT_VERSION})")
    for key in ("timesteps", "dt"):
        value = meta.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
            raise NetxFileError(f"{where}: '{key}' is {value!r}, expected a positive number")
    if not isinstance(meta["timesteps"], int):
        raise NetxFileError(f"{where}: 'timesteps' is {meta['timesteps']!r}, expected an integer")
    layers = meta.get("layers", {})
    if not isinstance(layers, dict):
        raise NetxFileError(f"{where}: 'layers' must be an object keyed by layer number")
    for name, entry in layers.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("weight_bits"), int) \
                or not isinstance(entry.get("step"), (int, float)) or not 1 <= entry["weight_bits"] <= 9 \
                or not (math.isfinite(entry["step"]) and entry["step"] > 0):
            raise NetxFileError(f"{where}: layers.{name} must hold 'step' (a positive number) and "
                                f"'weight_bits' (an integer 1..9)")
    return meta
