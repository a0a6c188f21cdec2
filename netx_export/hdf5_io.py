"""NetX HDF5 writer and reader for the recurrent LIF network (docs/netx_format.md).

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

from eventprop_pipeline.atomic import atomic_write_bytes

from .fixed_point import FixedPointLayer, FixedPointNetwork
from .limits import NetxFileError, validate_network

__all__ = ["write_netx", "read_netx", "NetxFileError", "FORMAT_NAME", "FORMAT_VERSION", "METADATA_PATH"]

FORMAT_NAME = "eventprop-netx"
FORMAT_VERSION = 1
METADATA_PATH = "eventprop/metadata"
REF_DELAY = 1          # stored for completeness; Lava's CUBA model has no refractory period
TYPE_DTYPE = "S10"
INT_FIELDS = ("weight", "weight_rec", "bias", "shape")
NEURON_INT_FIELDS = ("iDecay", "vDecay", "vThMant", "refDelay")
LAYER_FIELDS = {"type", "shape", "weight", "weight_rec", "bias", "neuron"}
NEURON_FIELDS = {"type", *NEURON_INT_FIELDS, "gradedSpike"}


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
    """Read and validate a NetX HDF5 file written by `write_netx` (or a compatible exporter).

    Files without `/eventprop/metadata` are accepted: steps default to 1.0, weight bits to 8,
    timesteps to 1000 and dt to 1 ms.
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
    except Exception as exc:   # h5py raises OSError, RuntimeError, KeyError, ... on damaged files
        raise NetxFileError(f"{path}: unreadable NetX file (truncated or corrupt?): {' '.join(str(exc).split())}") from None
    validate_network(fxnet, source=str(path))
    return fxnet


def _read_open(f: h5py.File, path: Path) -> FixedPointNetwork:
    meta = _read_metadata(f, path)
    if "layer" not in f or not isinstance(f["layer"], h5py.Group):
        raise NetxFileError(f"{path}: missing group /layer; not a NetX network file")
    names = sorted(f["layer"].keys())
    if names != ["0", "1", "2"]:
        raise NetxFileError(f"{path}: /layer holds {names}, expected exactly layers 0 (input), "
                            f"1 (dense_rec hidden) and 2 (dense readout)")
    g0 = f["layer/0"]
    where0 = f"{path}: /layer/0"
    _expect_type(g0, "input", where0)
    if "neuron" in g0:
        raise NetxFileError(f"{where0}/neuron: the input layer must not have a neuron group "
                            f"(netx then builds an input neuron and the run hangs, lava-dl #298); delete it")
    extra = sorted(set(g0.keys()) - {"type", "shape"})
    if extra:
        raise NetxFileError(f"{where0}: unexpected field(s) {extra}; the input layer holds only 'type' and 'shape'")
    n_input = _read_shape(g0, where0)
    steps = meta.get("layers", {})
    hidden = _read_layer(f["layer/1"], "dense_rec", f"{path}: /layer/1", steps.get("1", {}))
    readout = _read_layer(f["layer/2"], "dense", f"{path}: /layer/2", steps.get("2", {}))
    return FixedPointNetwork(n_input, hidden, readout, timesteps=int(meta.get("timesteps", 1000)),
                             dt=float(meta.get("dt", 1.0)), metadata=meta.get("metadata", {}))


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
    for name in ("1", "2"):
        entry = layers.get(name) if isinstance(layers, dict) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("weight_bits"), int) \
                or not isinstance(entry.get("step"), (int, float)):
            raise NetxFileError(f"{where}: layers.{name} must hold 'step' (number) and 'weight_bits' (integer)")
    return meta


def _expect_type(g: h5py.Group, expected: str, where: str) -> None:
    if "type" not in g:
        raise NetxFileError(f"{where}/type: missing")
    ds = g["type"]
    raw = ds[()]
    if isinstance(raw, np.ndarray):
        raw = raw.reshape(-1)[0] if raw.size == 1 else None
    if not isinstance(raw, bytes):
        raise NetxFileError(f"{where}/type: expected one fixed-length byte string (netx decodes it as "
                            f"ASCII), got dtype {ds.dtype} shape {ds.shape}")
    value = raw.decode("ascii", errors="replace")
    if value != expected:
        raise NetxFileError(f"{where}/type: {value!r}, expected {expected!r}")


def _reject_unknown(g: h5py.Group, known: set, where: str, why: str) -> None:
    extra = sorted(set(g.keys()) - known)
    if extra:
        raise NetxFileError(f"{where}: unsupported field(s) {extra}; {why}")


def _read_int_dataset(g: h5py.Group, name: str, where: str, *, required: bool = True):
    if name not in g:
        if required:
            raise NetxFileError(f"{where}/{name}: missing")
        return None
    ds = g[name]
    if not isinstance(ds, h5py.Dataset):
        raise NetxFileError(f"{where}/{name}: expected a dataset, found a group")
    if ds.dtype.kind not in "iu":
        raise NetxFileError(f"{where}/{name}: dtype {ds.dtype}, expected an integer dtype (netx truncates "
                            f"floats with astype(int); store rounded integers)")
    return ds[()]


def _read_scalar(g: h5py.Group, name: str, where: str) -> int:
    value = _read_int_dataset(g, name, where)
    arr = np.asarray(value)
    if arr.size != 1:
        raise NetxFileError(f"{where}/{name}: expected a scalar, got shape {arr.shape}")
    return int(arr.reshape(-1)[0])


def _read_shape(g: h5py.Group, where: str) -> int:
    shape = np.asarray(_read_int_dataset(g, "shape", where))
    if shape.ndim != 1 or shape.size != 1 or int(shape[0]) < 1:
        raise NetxFileError(f"{where}/shape: {shape.tolist()}, expected one positive size [n]")
    return int(shape[0])


def _read_layer(g: h5py.Group, kind: str, where: str, layer_meta: dict) -> FixedPointLayer:
    _expect_type(g, kind, where)
    _reject_unknown(g, LAYER_FIELDS, where, "netx would read it (e.g. 'delay' adds synaptic delays) "
                    "but this pipeline does not model it")
    n = _read_shape(g, where)
    weight = np.asarray(_read_int_dataset(g, "weight", where), dtype=np.int64)
    if weight.ndim != 2 or weight.shape[0] != n:
        raise NetxFileError(f"{where}/weight: shape {weight.shape} does not match shape [{n}] "
                            f"(expected ({n}, n_pre))")
    weight_rec = _read_int_dataset(g, "weight_rec", where, required=(kind == "dense_rec"))
    if weight_rec is not None:
        if kind != "dense_rec":
            raise NetxFileError(f"{where}/weight_rec: a 'dense' layer must not have recurrent weights")
        weight_rec = np.asarray(weight_rec, dtype=np.int64)
        if weight_rec.shape != (n, n):
            raise NetxFileError(f"{where}/weight_rec: shape {weight_rec.shape}, expected ({n}, {n})")
    bias = _read_int_dataset(g, "bias", where, required=False)
    if bias is not None:
        bias = np.asarray(bias, dtype=np.int64)
        if bias.shape != (n,):
            raise NetxFileError(f"{where}/bias: shape {bias.shape}, expected ({n},)")
    if "neuron" not in g or not isinstance(g["neuron"], h5py.Group):
        raise NetxFileError(f"{where}/neuron: missing neuron group")
    ng, nwhere = g["neuron"], f"{where}/neuron"
    _expect_type(ng, "CUBA", nwhere)
    _reject_unknown(ng, NEURON_FIELDS, nwhere, "e.g. 'messageBits' makes spikes graded; only binary "
                    "CUBA neurons are supported")
    values = {name: _read_scalar(ng, name, nwhere) for name in NEURON_INT_FIELDS}
    if "gradedSpike" in ng:
        graded = ng["gradedSpike"]
        if graded.dtype.kind not in "iub" or np.asarray(graded[()]).size != 1:
            raise NetxFileError(f"{nwhere}/gradedSpike: expected a scalar integer or bool")
        if bool(np.asarray(graded[()]).reshape(-1)[0]):
            raise NetxFileError(f"{nwhere}/gradedSpike: graded spikes are not supported (binary spikes only)")
    layer_kw = {}
    if layer_meta:
        layer_kw = {"step": float(layer_meta["step"]), "weight_bits": int(layer_meta["weight_bits"])}
    return FixedPointLayer(kind=kind, weight=weight, i_decay=values["iDecay"], v_decay=values["vDecay"],
                           vth_mant=values["vThMant"], weight_rec=weight_rec, bias=bias, **layer_kw)
