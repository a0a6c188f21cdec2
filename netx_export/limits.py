"""Loihi 2 / Lava ranges of a fixed-point network, checked in one place (writer, reader, quantizer).

Ranges (lava-nc 0.10 `PyLifModelBitAcc`, lava-dl 0.6 netx):
- weights: signed `weight_bits`-bit integers (1..8 bits), always inside [-256, 254] where Lava's
  synapse is exact;
- iDecay 1..4096: netx passes `du = iDecay - 1` (12-bit, 0..4095) and Lava adds 1 back, so the
  file's iDecay is the effective current decay; vDecay 0..4095 (12-bit `dv`, used as is);
- spiking threshold mantissa 0..2^17 - 1; a non-spiking readout uses >= 2^17 (never crossed,
  since v saturates at 2^23 - 1 < 64 * 2^17);
- bias mantissa: 13-bit signed (-4096..4095), shifted left by 6.
"""
from __future__ import annotations

import math
from numbers import Integral

import numpy as np

from eventprop_core.errors import PipelineError

from .fixed_point import (DECAY_UNIT, MAX_WEIGHT_BITS, NON_SPIKING_VTH, STATE_SCALE, U_LIMIT,
                          VTH_MANT_MAX, FixedPointLayer, FixedPointNetwork)

LAVA_WEIGHT_MIN, LAVA_WEIGHT_MAX = -256, 254
I_DECAY_RANGE = (1, DECAY_UNIT)
V_DECAY_RANGE = (0, DECAY_UNIT - 1)
BIAS_RANGE = (-4096, 4095)
READOUT_VTH_MAX = 2**24 - 1   # keeps 64 * vThMant inside int32
LAYER_KINDS = {"hidden": "dense_rec", "readout": "dense"}


class NetxFileError(PipelineError):
    """A NetX HDF5 file (or the fixed-point network to be written) is invalid for Lava / Loihi 2."""


def weight_range(bits: int) -> tuple[int, int]:
    """Two's-complement range of a signed `bits`-bit weight."""
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def bits_needed(values: np.ndarray) -> int:
    """Smallest two's-complement width (>= 1) holding every value."""
    if values.size == 0:
        return 1
    lo, hi = int(values.min()), int(values.max())
    bits = 1
    while not (weight_range(bits)[0] <= lo and hi <= weight_range(bits)[1]):
        bits += 1
    return bits


def _is_int(x) -> bool:
    return isinstance(x, Integral) and not isinstance(x, (bool, np.bool_))


def _check_int_array(arr, where: str, shape: tuple[int, ...]) -> None:
    if not isinstance(arr, np.ndarray):
        raise NetxFileError(f"{where}: expected an integer numpy array, got {type(arr).__name__}")
    if arr.dtype.kind not in "iu":
        raise NetxFileError(f"{where}: dtype {arr.dtype}, expected an integer dtype "
                            f"(store rounded integers; netx truncates floats with astype(int))")
    if arr.shape != shape:
        raise NetxFileError(f"{where}: shape {arr.shape}, expected {shape}")


def _check_range(arr: np.ndarray, lo: int, hi: int, where: str, what: str, fix: str) -> None:
    bad = (arr < lo) | (arr > hi)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise NetxFileError(f"{where}: {int(bad.sum())} value(s) outside {what} [{lo}, {hi}] "
                            f"(first {list(idx)} = {int(arr[idx])}); {fix}")


def _check_scalar(value, lo: int, hi: int, where: str, fix: str) -> None:
    if not _is_int(value):
        raise NetxFileError(f"{where}: {value!r} ({type(value).__name__}) is not an integer")
    if not lo <= int(value) <= hi:
        raise NetxFileError(f"{where}: {int(value)} is outside [{lo}, {hi}]; {fix}")


def validate_layer(layer: FixedPointLayer, role: str, n_pre: int, where: str) -> None:
    """Check one layer; `where` names the file/layer in every message."""
    kind = LAYER_KINDS[role]
    if layer.kind != kind:
        raise NetxFileError(f"{where}: type {layer.kind!r}, expected {kind!r} for the {role} layer")
    if not isinstance(layer.weight, np.ndarray) or layer.weight.ndim != 2:
        raise NetxFileError(f"{where}/weight: expected a 2-D (post, pre) integer array")
    n = layer.weight.shape[0]
    if n < 1:
        raise NetxFileError(f"{where}/weight: the layer has no neurons")
    if not _is_int(layer.weight_bits) or not 1 <= layer.weight_bits <= MAX_WEIGHT_BITS:
        raise NetxFileError(f"{where}: weight_bits {layer.weight_bits!r} outside 1..{MAX_WEIGHT_BITS} "
                            f"(Loihi 2 synapses hold at most {MAX_WEIGHT_BITS}-bit weights)")
    lo, hi = weight_range(layer.weight_bits)
    fix = f"re-quantize with a larger step or clip to the {layer.weight_bits}-bit range"
    _check_int_array(layer.weight, f"{where}/weight", (n, n_pre))
    _check_range(layer.weight, lo, hi, f"{where}/weight", f"the declared {layer.weight_bits}-bit range", fix)
    if kind == "dense_rec":
        if layer.weight_rec is None:
            raise NetxFileError(f"{where}/weight_rec: missing (a dense_rec layer needs its recurrent weights)")
        _check_int_array(layer.weight_rec, f"{where}/weight_rec", (n, n))
        _check_range(layer.weight_rec, lo, hi, f"{where}/weight_rec",
                     f"the declared {layer.weight_bits}-bit range", fix)
    elif layer.weight_rec is not None:
        raise NetxFileError(f"{where}/weight_rec: a 'dense' layer has no recurrent weights")
    if not np.any(layer.weight) and (layer.weight_rec is None or not np.any(layer.weight_rec)):
        raise NetxFileError(f"{where}/weight: every weight is zero; netx cannot load such a layer "
                            f"(log2 of an infinite scale): the network is untrained or the step is far too large")
    if layer.bias is not None:
        _check_int_array(layer.bias, f"{where}/bias", (n,))
        _check_range(layer.bias, *BIAS_RANGE, f"{where}/bias", "Loihi's 13-bit bias mantissa",
                     "64 * bias must stay well inside the 24-bit state; rescale the layer")
    _check_scalar(layer.i_decay, *I_DECAY_RANGE, f"{where}/neuron/iDecay",
                  "netx runs du = iDecay - 1, a 12-bit value, so iDecay must be 1..4096")
    _check_scalar(layer.v_decay, *V_DECAY_RANGE, f"{where}/neuron/vDecay", "dv is a 12-bit value (0..4095)")
    if role == "hidden":
        _check_scalar(layer.vth_mant, 0, VTH_MANT_MAX, f"{where}/neuron/vThMant",
                      "the spiking threshold is a 17-bit mantissa; use a larger weight step")
    else:
        _check_scalar(layer.vth_mant, NON_SPIKING_VTH, READOUT_VTH_MAX, f"{where}/neuron/vThMant",
                      f"the readout must never spike: use vThMant >= 2^17 = {NON_SPIKING_VTH}")
    if not (isinstance(layer.step, (int, float)) and math.isfinite(layer.step) and layer.step > 0):
        raise NetxFileError(f"{where}: step {layer.step!r} must be a positive finite number")


def validate_network(fxnet: FixedPointNetwork, source: str) -> None:
    """Every structural and range check; raises NetxFileError naming `source` and the field."""
    if not _is_int(fxnet.n_input) or fxnet.n_input < 1:
        raise NetxFileError(f"{source}: /layer/0/shape: n_input {fxnet.n_input!r} must be a positive integer")
    if not _is_int(fxnet.timesteps) or fxnet.timesteps < 1:
        raise NetxFileError(f"{source}: timesteps {fxnet.timesteps!r} must be a positive integer")
    if not (isinstance(fxnet.dt, (int, float)) and math.isfinite(fxnet.dt) and fxnet.dt > 0):
        raise NetxFileError(f"{source}: dt {fxnet.dt!r} must be a positive finite number")
    if not fxnet.is_eventprop_layout:
        raise NetxFileError(f"{source}: {fxnet!r}: this project's writer stores its own layout only (a dense_rec "
                            f"hidden layer and a dense readout, no delays); other networks are read and run, "
                            f"not written")
    validate_layer(fxnet.hidden, "hidden", fxnet.n_input, f"{source}: /layer/1")
    validate_layer(fxnet.readout, "readout", fxnet.hidden.size, f"{source}: /layer/2")


def worst_case_u(layer: FixedPointLayer) -> np.ndarray:
    """Per neuron, the largest |u| (in state units) reachable if every positive (or every negative)
    synapse fired on every step: 64 * max(sum w+, sum |w-|) * the geometric accumulation 4096/iDecay."""
    w = layer.weight if layer.weight_rec is None else np.hstack([layer.weight, layer.weight_rec])
    w = w.astype(np.int64)
    per_step = np.maximum(np.clip(w, 0, None).sum(axis=1), np.clip(-w, 0, None).sum(axis=1))
    return STATE_SCALE * per_step * (DECAY_UNIT / max(int(layer.i_decay), 1))


def u_wrap_limit() -> int:
    return U_LIMIT
