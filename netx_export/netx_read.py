"""Reads any dense CUBA NetX file the way lava-dl 0.6's `netx.hdf5.Network` reads it (docs/netx_runtime.md).

Accepted: an optional `input` layer 0 (no neuron group), then any number of `dense` / `dense_rec`
layers with CUBA neurons. Values are taken as netx takes them: weights, weight_rec and bias through
`.astype(int)` (so integer-valued floats are fine), decays and thresholds as stored (scalar or one per
neuron), `delay` broadcast per synapse, per target or per source and clamped to 0..62. Datasets netx
never reads (`inFeatures`, `outFeatures`, `gradedSpike`, `refDelay`, ...) are ignored and listed in
`FixedPointNetwork.notes`. What netx would refuse, or would run differently from what the file says,
is a NetxFileError naming the file, the dataset and what to change.
"""
from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np

from .fixed_point import DECAY_UNIT, MAX_DELAY, FixedPointLayer
from .limits import BIAS_RANGE, NetxFileError, bits_needed

LAYER_TYPES = ("input", "dense", "dense_rec")
NEURON_TYPES = ("CUBA", "LOIHI")          # netx builds the same LIF for both
READ_LAYER_FIELDS = {"type", "shape", "weight", "weight_rec", "bias", "delay", "delay_rec", "neuron"}
READ_NEURON_FIELDS = {"type", "iDecay", "vDecay", "vThMant"}
VTH_MAX = 2**24 - 1                       # keeps Lava's 64 * vThMant inside int32
# netx's neuron for a dense layer without a neuron group (hdf5.py create_dense): a non-leaky integrator
# (iDecay 0 -> du = -1, i.e. no current decay; vDecay 4096) with threshold 1 << 17 (never crossed).
DEFAULT_NEURON = {"iDecay": 0, "vDecay": 4096, "vThMant": 1 << 17}


class LayerRead:
    """One layer as read, with where it came from (for messages) and the notes about it."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.notes: list[str] = []


def layer_names(f: h5py.File, path: Path) -> list[str]:
    if "layer" not in f or not isinstance(f["layer"], h5py.Group):
        raise NetxFileError(f"{path}: missing group /layer; not a NetX network file")
    names = list(f["layer"].keys())
    expected = [str(i) for i in range(len(names))]
    if sorted(names, key=lambda s: (len(s), s)) != expected or not names:
        raise NetxFileError(f"{path}: /layer holds {sorted(names)}, expected layers named 0, 1, ..., n-1 "
                            f"(netx reads /layer/0, /layer/1, ... in order)")
    return expected


def read_type(g: h5py.Group, where: str) -> str:
    """netx: `value[0]` if the dataset has a shape, else `value[()]`, decoded as ASCII."""
    if "type" not in g or not isinstance(g["type"], h5py.Dataset):
        raise NetxFileError(f"{where}/type: missing")
    ds = g["type"]
    if ds.shape and ds.size == 0:
        raise NetxFileError(f"{where}/type: empty; expected one byte string such as b'dense'")
    raw = ds[0] if ds.shape else ds[()]
    if isinstance(raw, np.ndarray) or not isinstance(raw, (bytes, np.bytes_)):
        raise NetxFileError(f"{where}/type: expected a byte string (netx decodes it as ASCII), got dtype {ds.dtype}")
    try:
        return bytes(raw).decode("ascii")
    except UnicodeDecodeError:
        raise NetxFileError(f"{where}/type: not ASCII ({bytes(raw)[:20]!r})") from None


def _dataset(g: h5py.Group, name: str, where: str) -> h5py.Dataset:
    ds = g[name]
    if not isinstance(ds, h5py.Dataset):
        raise NetxFileError(f"{where}/{name}: expected a dataset, found a group")
    return ds


def as_int_array(g: h5py.Group, name: str, where: str, what: str) -> np.ndarray:
    """A dataset netx reads with `.astype(int)`: integer dtypes, or floats/bools holding integers."""
    ds = _dataset(g, name, where)
    if ds.dtype.kind not in "iubf":
        raise NetxFileError(f"{where}/{name}: dtype {ds.dtype}; {what} must be numbers")
    raw = np.asarray(ds[()])
    if raw.dtype.kind == "f":
        if not np.all(np.isfinite(raw)):
            raise NetxFileError(f"{where}/{name}: dtype {ds.dtype} holds NaN or infinite values")
        if np.any(raw != np.trunc(raw)):
            bad = raw[raw != np.trunc(raw)].reshape(-1)[0]
            raise NetxFileError(f"{where}/{name}: dtype {ds.dtype} holds non-integer values (e.g. {bad}); netx "
                                f"truncates them with astype(int): store rounded integers")
        if np.any(np.abs(raw) > 2**31):
            raise NetxFileError(f"{where}/{name}: values beyond 2^31")
    return raw.astype(np.int64)


def neuron_int(g, name: str, where: str, n: int):
    """A neuron parameter as Lava's fixed-point LIF uses it: an integer scalar or one per neuron."""
    if isinstance(g, dict):
        return g[name]
    if name not in g:
        raise NetxFileError(f"{where}/{name}: missing (netx needs iDecay, vDecay and vThMant)")
    ds = _dataset(g, name, where)
    if ds.dtype.kind not in "iu":
        raise NetxFileError(f"{where}/{name}: dtype {ds.dtype}, expected an integer dtype (Lava's fixed-point "
                            f"neuron shifts it as an integer and fails on floats)")
    value = np.asarray(ds[()]).astype(np.int64)
    if value.ndim > 1 or value.size not in (1, n):
        raise NetxFileError(f"{where}/{name}: shape {value.shape}, expected a scalar or one value per neuron ({n},)")
    flat = value.reshape(-1)
    return int(flat[0]) if value.size == 1 or np.all(flat == flat[0]) else flat


def _check_range(value, lo: int, hi: int, where: str, fix: str) -> None:
    arr = np.asarray(value)
    if np.any(arr < lo) or np.any(arr > hi):
        bad = arr[(arr < lo) | (arr > hi)].reshape(-1)[0]
        raise NetxFileError(f"{where}: {int(bad)} is outside [{lo}, {hi}]; {fix}")


def netx_scale_bits(weight: np.ndarray) -> int:
    """netx `optimize_weight_bits`: the power of two by which it multiplies the weights of a layer."""
    lo, hi = int(weight.min()), int(weight.max())
    if hi < 0:
        return int(math.floor(math.log2(-256 / lo)))
    if lo >= 0:
        return int(math.floor(math.log2(255 / hi)))
    return int(math.floor(math.log2(min(127 / hi if hi > 0 else math.inf, -128 / lo)))) + 1


def check_weights(w: np.ndarray, where: str) -> None:
    """Weights that Lava's 8-bit synapse holds exactly (netx clips beyond, with a printed warning)."""
    lo, hi = int(w.min()), int(w.max())
    if lo == hi == 0:
        raise NetxFileError(f"{where}: every weight is zero; netx cannot load such a layer (log2 of an infinite "
                            f"scale in optimize_weight_bits): give the layer a nonzero weight")
    if lo < -256 or hi > 255 or (lo < 0 and hi > 254):
        raise NetxFileError(f"{where}: weights span [{lo}, {hi}]; Loihi's synapse holds [-256, 254] "
                            f"([0, 255] if none is negative), netx clips the rest: rescale the layer's weights")


def read_delay(g: h5py.Group, where: str, shape: tuple[int, int], notes: list[str], name: str = "delay") -> np.ndarray:
    """netx `create_dense`: clamp to 0..62 when the maximum exceeds 62, broadcast a scalar to every synapse,
    a vector per target (length n_post, checked first) or per source (length n_pre), then astype(int)."""
    ds = _dataset(g, name, where)
    if ds.dtype.kind not in "iuf":
        raise NetxFileError(f"{where}/{name}: dtype {ds.dtype}; delays must be numbers of steps")
    d = np.asarray(ds[()], dtype=np.float64)
    if d.size == 0:
        raise NetxFileError(f"{where}/{name}: empty; netx needs one delay per synapse, target or source, "
                            f"or a scalar: delete the dataset for no delays")
    if not np.all(np.isfinite(d)) or np.any(d != np.trunc(d)):
        raise NetxFileError(f"{where}/{name}: holds non-integer values; netx truncates them with astype(int): "
                            f"store whole steps")
    if d.max() > MAX_DELAY:
        notes.append(f"{name}: values above {MAX_DELAY} clamped to {MAX_DELAY} (and below 0 to 0), as netx does")
        d = np.clip(d, 0, MAX_DELAY)
    if d.min() < 0:
        raise NetxFileError(f"{where}/{name}: negative delay {int(d.min())}; Lava's DelayDense refuses it: "
                            f"delays are 0..{MAX_DELAY} steps")
    n_post, n_pre = shape
    if d.ndim == 0:
        full = np.full(shape, d)
    elif d.ndim == 1 and d.size == n_post:
        full = np.repeat(d.reshape(-1, 1), n_pre, axis=1)
    elif d.ndim == 1 and d.size == n_pre:
        full = np.repeat(d.reshape(1, -1), n_post, axis=0)
    elif d.shape == shape:
        full = d
    else:
        raise NetxFileError(f"{where}/{name}: shape {d.shape} fits neither the weights {shape} nor one delay per "
                            f"target ({n_post}) or source ({n_pre}); netx refuses it")
    return full.astype(np.int64)


def read_input_layer(g: h5py.Group, where: str, notes: list[str]) -> int | None:
    if "neuron" in g:
        raise NetxFileError(f"{where}/neuron: the input layer must not have a neuron group (netx then builds "
                            f"an input neuron and the run hangs, lava-dl #298); delete it")
    ignored = sorted(set(g.keys()) - {"type", "shape"})
    if ignored:
        notes.append(f"{where.split(': ')[-1]}: {', '.join(ignored)} ignored (netx reads only the input's shape)")
    if "shape" not in g:
        return None
    shape = as_int_array(g, "shape", where, "shape")
    if shape.size == 0 or np.any(shape < 1):
        raise NetxFileError(f"{where}/shape: {shape.tolist()}, expected positive sizes")
    return int(np.prod(shape))


def read_dense_layer(g: h5py.Group, kind: str, where: str, n_pre: int, layer_meta: dict,
                     notes: list[str]) -> FixedPointLayer:
    local = where.split(": ")[-1]
    if "weight" not in g:
        raise NetxFileError(f"{where}/weight: missing")
    if isinstance(g["weight"], h5py.Group):
        raise NetxFileError(f"{where}/weight: a group (complex weights, 'dense_comp'); only real dense weights "
                            f"are supported")
    if "shape" not in g:
        raise NetxFileError(f"{where}/shape: missing (netx sizes the layer from it)")
    shape = as_int_array(g, "shape", where, "shape")
    if shape.size == 0 or np.any(shape < 1):
        raise NetxFileError(f"{where}/shape: {shape.tolist()}, expected positive sizes")
    n = int(np.prod(shape))
    weight = as_int_array(g, "weight", where, "weights")
    was_flat = weight.ndim == 1
    if was_flat:
        if weight.size % n:
            raise NetxFileError(f"{where}/weight: {weight.size} values cannot be reshaped to ({n}, n_pre)")
        weight = weight.reshape(n, -1)
    if weight.ndim != 2 or weight.shape[0] != n:
        raise NetxFileError(f"{where}/weight: shape {weight.shape} does not match shape [{n}] "
                            f"(expected ({n}, n_pre))")
    if weight.shape[1] != n_pre:
        raise NetxFileError(f"{where}/weight: shape {weight.shape}, expected ({n}, {n_pre}): the previous layer "
                            f"has {n_pre} outputs")
    weight_rec = None
    if kind == "dense_rec":
        if "weight_rec" not in g:
            raise NetxFileError(f"{where}/weight_rec: missing (a dense_rec layer needs its recurrent weights)")
        weight_rec = as_int_array(g, "weight_rec", where, "weights")
        if was_flat and weight_rec.ndim == 1 and weight_rec.size == n * n:
            weight_rec = weight_rec.reshape(n, n)
        if weight_rec.shape != (n, n):
            raise NetxFileError(f"{where}/weight_rec: shape {weight_rec.shape}, expected ({n}, {n})")
        check_weights(np.hstack([weight, weight_rec]), f"{where}/weight and weight_rec")
    else:
        if "weight_rec" in g:
            raise NetxFileError(f"{where}/weight_rec: a 'dense' layer's recurrent weights are never read by netx; "
                                f"change its type to 'dense_rec' or delete weight_rec")
        check_weights(weight, f"{where}/weight")
    bias = None
    if "bias" in g:
        b = as_int_array(g, "bias", where, "biases")
        if b.size not in (1, n) or b.ndim > 1:
            raise NetxFileError(f"{where}/bias: shape {b.shape}, expected a scalar or ({n},)")
        _check_range(b, *BIAS_RANGE, f"{where}/bias", "Loihi's bias mantissa is 13-bit; rescale the layer")
        bias = np.broadcast_to(b.reshape(-1), (n,)).astype(np.int64)
    delay = None
    if "delay" in g:
        delay = read_delay(g, where, weight.shape, notes)
        if not delay.any():
            delay = None                 # netx's DelayDense with all delays 0 is the plain Dense
    if kind == "dense_rec":
        delay = _rec_delay(g, where, weight, weight_rec, delay, notes)
    elif "delay_rec" in g:
        notes.append(f"{local}/delay_rec ignored (netx reads no recurrent delays for a 'dense' layer)")
    neuron = read_neuron(g, where, n, notes)
    ignored = sorted(set(g.keys()) - READ_LAYER_FIELDS)
    if ignored:
        notes.append(f"{local}: {', '.join(ignored)} ignored (netx never reads them)")
    step, bits = 1.0, max(8, bits_needed(weight if weight_rec is None else np.hstack([weight, weight_rec])))
    if layer_meta:
        step, bits = float(layer_meta["step"]), int(layer_meta["weight_bits"])
    return FixedPointLayer(kind=kind, weight=weight, weight_rec=weight_rec, bias=bias, delay=delay,
                           step=step, weight_bits=bits, **neuron)


def _rec_delay(g, where, weight, weight_rec, delay, notes) -> np.ndarray | None:
    """lava-dl's RecurrentDense gives its recurrent synapse the same `delay` matrix and never reads
    `delay_rec`; it also builds both DelayDense synapses without the weight exponent."""
    n = weight.shape[0]
    if delay is not None:
        if weight.shape[1] != n:
            raise NetxFileError(f"{where}/delay: a dense_rec layer with {weight.shape[1]} inputs and {n} neurons "
                                f"cannot have delays: netx gives the recurrent synapse the same ({n}, "
                                f"{weight.shape[1]}) delay matrix and Lava refuses it; delete 'delay'")
        k = netx_scale_bits(np.hstack([weight, weight_rec]))
        if k:
            raise NetxFileError(f"{where}/delay: lava-dl 0.6 builds a dense_rec layer's delayed synapses without "
                                f"the weight exponent, so Lava would run these weights x2^{k}: scale weight and "
                                f"weight_rec by 2^{k} (and vThMant and bias with them), or delete 'delay'")
    if "delay_rec" in g:
        rec = read_delay(g, where, (n, n), [], "delay_rec")
        used = np.zeros((n, n), np.int64) if delay is None else delay
        if not np.array_equal(rec, used):
            raise NetxFileError(f"{where}/delay_rec: lava-dl 0.6 never reads delay_rec; its recurrent synapse "
                                f"uses 'delay' ({'absent: no delays' if delay is None else 'a different matrix'}): "
                                f"make delay_rec equal to what netx uses, or delete it")
        notes.append(f"{where.split(': ')[-1]}/delay_rec ignored (netx never reads it; it equals the delays netx uses)")
    return delay


def read_neuron(g: h5py.Group, where: str, n: int, notes: list[str]) -> dict:
    local = where.split(": ")[-1]
    if "neuron" not in g:
        notes.append(f"{local}: no neuron group, so netx's default neuron (iDecay 0, vDecay 4096, "
                     f"vThMant 2^17: a current integrator that never spikes)")
        ng, nwhere = DEFAULT_NEURON, f"{where}/neuron"
    else:
        ng, nwhere = g["neuron"], f"{where}/neuron"
        if not isinstance(ng, h5py.Group):
            raise NetxFileError(f"{nwhere}: expected a group")
        kind = read_type(ng, nwhere)
        if kind not in NEURON_TYPES:
            raise NetxFileError(f"{nwhere}/type: {kind!r}; only CUBA (LIF) neurons are supported")
        if "messageBits" in ng:
            raise NetxFileError(f"{nwhere}/messageBits: netx 0.6 passes this dataset object on as the next layer's "
                                f"message bits and Lava fails; delete it (CUBA spikes are binary)")
        ignored = sorted(set(ng.keys()) - READ_NEURON_FIELDS)
        if ignored:
            notes.append(f"{local}/neuron: {', '.join(ignored)} ignored (netx never reads them)")
    i_decay = neuron_int(ng, "iDecay", nwhere, n)
    v_decay = neuron_int(ng, "vDecay", nwhere, n)
    vth = neuron_int(ng, "vThMant", nwhere, n)
    _check_range(i_decay, 0, DECAY_UNIT, f"{nwhere}/iDecay",
                 "netx runs du = iDecay - 1 and Lava decays u by (4096 - iDecay)/4096: use 0..4096")
    _check_range(v_decay, 0, DECAY_UNIT, f"{nwhere}/vDecay", "Lava decays v by (4096 - vDecay)/4096: use 0..4096")
    _check_range(vth, 0, VTH_MAX, f"{nwhere}/vThMant", "Lava shifts it left by 6 bits in a 32-bit integer")
    return {"i_decay": i_decay, "v_decay": v_decay, "vth_mant": vth}
