"""Vectorised emulator, bit-exact to what Lava runs for a NetX file (lava-nc 0.10 `PyLifModelBitAcc` +
`PyDenseModelBitAcc`, wired by lava-dl 0.6 `netx.hdf5.Network`). Two engines with the same
arithmetic: "numba" (default; event-driven, int64, one sample per loop, threads over samples; see
emulator_kernel.py) and "numpy" (batched over samples, the readable reference below). Numpy only at
import: numba is imported when the numba engine first runs.

One Lava step j = 1..T+2 of a sample (fresh zero state, docs/fixed_point.md, docs/conventions.md):
  hidden  a_j = sh_in(W_in x[j-2]) + sh_rec(W_rec s[j-1])     (each Dense adds one step of delay)
  readout a_j = sh_out(W_out s[j-1])
  u = rtz(u (4096 - iDecay) / 4096) + 64 a      wraps once at +-2^23 exactly as Lava does
  v = rtz(v (4096 - vDecay) / 4096) + u + 64 bias, clipped to +-(2^23 - 1); spike if v > 64 vThMant; v = 0
where W and sh() are the weights and power-of-two shifts Lava really uses after netx's
`optimize_weight_bits` and the Dense model's clip/truncate (`lava_synapses`). The numpy engine holds
integer state in float64: every value stays below 2^53 and the 12-bit decays are exact binary fractions, so
trunc(x * keep) is Lava's int64 round-toward-zero, bit for bit.

Lava local step j matches float-model step k = j - 1 (both layers), so the readout score uses the
integer readout v of steps j = 1..T, weighted like the float `avg_var_exp_weight` readout.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from eventprop_core.errors import DataError, PipelineError
from eventprop_core.readout import readout_weights

from .fixed_point import DECAY_UNIT, STATE_SCALE, U_LIMIT, V_MAX, FixedPointLayer, FixedPointNetwork

EXTRA_STEPS = 2            # Lava needs T + 2 steps for the readout to see the last input bin


class EmulatorError(PipelineError):
    """The network cannot be emulated as Lava would run it (e.g. netx could not load it)."""


# --------------------------------------------------------------------------------------- synapses

class Synapse(NamedTuple):
    """A Lava Dense process: a = floor(weight @ s / 2^shift) (shift < 0 multiplies)."""
    weight: np.ndarray   # float64 (n_post, n_pre), integer values as Lava holds them
    shift: int


def lava_synapses(weight: np.ndarray, weight_rec: np.ndarray | None = None) -> tuple[Synapse, Synapse | None]:
    """The weights and shifts Lava's fixed-point Dense processes end up with for one NetX layer.

    netx (`utils.optimize_weight_bits`) rescales the in and recurrent weights together by 2^k and
    sets weight_exp = -k; each Dense model then clips to 8 bits (by its own sign mode) and drops
    low bits. For weights inside [-256, 254] this is exact (a = W @ s); outside it is what Lava does.
    """
    w = np.asarray(weight, dtype=np.int64)
    both = w if weight_rec is None else np.hstack([w, np.asarray(weight_rec, dtype=np.int64)])
    lo, hi = int(both.min()), int(both.max())
    if lo == hi == 0:
        raise EmulatorError("all weights of a layer are zero: netx's optimize_weight_bits cannot load "
                            "such a layer (log2 of an infinite scale); check the quantization")
    if (hi > 254 and lo < 0) or (lo < -256 and hi > 0):
        both = np.clip(both, -256, 254)          # netx clips mixed-sign weights (with a printed warning)
        lo, hi = int(both.min()), int(both.max())
    if hi < 0:
        signed, scale = 0, -256 / lo
    elif lo >= 0:
        signed, scale = 0, 255 / hi
    else:
        signed = 1
        scale = min(127 / hi if hi > 0 else math.inf, -128 / lo)
    scale_bits = int(math.floor(math.log2(scale))) + signed
    n = 8
    while n > 0 and np.any(both % (1 << n)):
        n -= 1
    n -= signed
    num_weight_bits = 8 - scale_bits - n
    if scale_bits < 0:
        raise EmulatorError(f"weights in [{lo}, {hi}] do not fit Loihi's 8-bit synapse; re-quantize")
    scaled = both << scale_bits
    n_in = w.shape[1]
    parts = [scaled[:, :n_in]] + ([] if weight_rec is None else [scaled[:, n_in:]])
    synapses = [_dense_model_weights(p, num_weight_bits, scale_bits) for p in parts]
    return synapses[0], (synapses[1] if weight_rec is not None else None)


def _dense_model_weights(w: np.ndarray, num_weight_bits: int, shift: int) -> Synapse:
    """`PyDenseModelBitAcc`: clip_weights(sign mode, 8 bits) then truncate_weights(num_weight_bits)."""
    mixed = int(w.min() < 0 < w.max())
    inhibitory = int(w.max() <= 0 and not mixed and w.min() < 0)
    x = -w if inhibitory else w.copy()
    x = np.clip(x, -256 * mixed, 255)
    drop = 8 - num_weight_bits + mixed
    if drop < 0:
        raise EmulatorError(f"netx computed {num_weight_bits} weight bits; Lava cannot run that layer")
    x = (x >> drop) << drop
    x = -x if inhibitory else x
    if shift > 0 and not np.any(x % (1 << shift)):
        return Synapse(np.ascontiguousarray(x >> shift, dtype=np.float64), 0)   # exact: no per-step shift
    return Synapse(np.ascontiguousarray(x, dtype=np.float64), shift)


def _apply(syn: Synapse, s: np.ndarray) -> np.ndarray:
    a = s @ syn.weight.T
    if syn.shift > 0:
        a = np.floor(a / (1 << syn.shift))       # arithmetic right shift
    return a


# ------------------------------------------------------------------------------------------ neuron

class CubaConstants(NamedTuple):
    u_keep: float        # (4096 - iDecay) / 4096, an exact binary fraction
    v_keep: float
    bias: np.ndarray     # 64 * bias, float64 (n,)
    threshold: float     # 64 * vThMant


class CubaState(NamedTuple):
    u: np.ndarray        # (B, n) float64 holding integers
    v: np.ndarray


def cuba_constants(layer: FixedPointLayer) -> CubaConstants:
    for name in ("i_decay", "v_decay"):
        value = int(getattr(layer, name))
        if not 0 <= value <= DECAY_UNIT:
            raise EmulatorError(f"{layer.kind} layer: {name} {value} outside 0..{DECAY_UNIT}")
    # netx runs du = iDecay - 1 and Lava adds 1 back; iDecay 0 gives du = -1 -> no decay.
    bias = np.zeros(layer.size) if layer.bias is None else np.asarray(layer.bias, dtype=np.int64)
    return CubaConstants((DECAY_UNIT - int(layer.i_decay)) / DECAY_UNIT,
                         (DECAY_UNIT - int(layer.v_decay)) / DECAY_UNIT,
                         STATE_SCALE * bias.astype(np.float64), float(STATE_SCALE * int(layer.vth_mant)))


def cuba_step(state: CubaState, a: np.ndarray, c: CubaConstants) -> tuple[CubaState, np.ndarray]:
    """One `PyLifModelBitAcc` step on a batch; returns the new state and the boolean spikes."""
    u = np.trunc(state.u * c.u_keep) + STATE_SCALE * a
    u = np.where(u > U_LIMIT, u - 2 * U_LIMIT, np.where(u <= -U_LIMIT, u + 2 * U_LIMIT, u))
    v = np.clip(np.trunc(state.v * c.v_keep) + u + c.bias, -V_MAX, V_MAX)
    spikes = v > c.threshold
    return CubaState(u, np.where(spikes, 0.0, v)), spikes


# ------------------------------------------------------------------------------------------ result

@dataclass
class EmulatorResult:
    pred: np.ndarray                         # (N,) int64, argmax of score
    score: np.ndarray                        # (N, n_out) float64, readout in float-model units
    hidden_spike_counts: np.ndarray          # (N, n_hidden) int64
    readout_v: np.ndarray | None = None      # (N, T+2, n_out) int32, Lava steps 1..T+2
    readout_u: np.ndarray | None = None      # (N, T+2, n_out) int32
    hidden_spikes: np.ndarray | None = None  # (N, T+2, n_hidden) bool

    def __len__(self) -> int:
        return len(self.pred)


def readout_score_weights(fxnet: FixedPointNetwork, timesteps: int) -> np.ndarray:
    """Per Lava step j = 1..T+2: the float readout's exp(-k/T)/T for k = j - 1 < T (0 after), times the
    float value of one readout v unit (step / 64), so that score ~ the float model's readout."""
    w = readout_weights(fxnet.timesteps, timesteps + EXTRA_STEPS)
    w[timesteps:] = 0.0
    return w * (float(fxnet.readout.step) / STATE_SCALE)


# ------------------------------------------------------------------------------------------- input

def _input_events(data, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(batch row, step, unit) of the binary input spikes of these samples."""
    if isinstance(data, np.ndarray):
        x = data[indices]
        b, t, i = np.nonzero(x)
        return b.astype(np.int64), t.astype(np.int64), i.astype(np.int64)
    starts, stops = data.offsets[indices], data.offsets[indices + 1]
    lengths = stops - starts
    ev = (np.concatenate([np.arange(a, z) for a, z in zip(starts, stops)]) if len(indices)
          else np.zeros(0, np.int64))
    rows = np.repeat(np.arange(len(indices)), lengths)
    keep = data.counts[ev] > 0
    return rows[keep], data.steps[ev][keep].astype(np.int64), data.units[ev][keep].astype(np.int64)


def _check_data(fxnet: FixedPointNetwork, data) -> tuple[int, int]:
    if isinstance(data, np.ndarray):
        if data.ndim != 3:
            raise DataError(f"emulator input: expected dense spikes (B, T, n_in), got shape {data.shape}")
        n, T, c = data.shape
    elif hasattr(data, "offsets") and hasattr(data, "n_channels"):
        n, T, c = len(data), data.timesteps, data.n_channels
    else:
        raise DataError(f"emulator input: expected a SpikeDataset or a (B, T, n_in) array, got {type(data).__name__}")
    if c != fxnet.n_input:
        raise DataError(f"{getattr(data, 'name', 'input')}: {c} input channels, but the network has "
                        f"{fxnet.n_input} inputs")
    return n, T


def _input_drive(syn: Synapse, rows, steps, units, B: int, t0: int, t1: int) -> np.ndarray:
    """Hidden input a of local Lava steps (0-based index i = j - 1) t0..t1-1: input column i - 1."""
    sel = (steps >= t0 - 1) & (steps < t1 - 1)
    x = np.zeros((B, t1 - t0, syn.weight.shape[1]), dtype=np.float32)
    x[rows[sel], steps[sel] + 1 - t0, units[sel]] = 1.0
    return _apply(syn, x.astype(np.float64))


# ------------------------------------------------------------------------------------------- run

def emulate(fxnet: FixedPointNetwork, data, *, batch_size: int = 256, record_trace: bool = False,
            record_hidden: bool = False, indices=None, progress: bool = False, engine: str = "numba",
            threads: int | None = None) -> EmulatorResult:
    """Run every sample (fresh state, T + 2 Lava steps) exactly as Lava's fixed-point models would.

    data: a SpikeDataset or a dense (B, T, n_in) array; spikes are binary (a count > 0 is one spike,
    as Lava's Dense with binary input sees it). record_trace adds readout_v and readout_u,
    record_hidden the hidden spike raster. engine "numba" (event-driven, compiled, threads over
    samples) or "numpy" (batched reference of the same arithmetic); both are bit-exact.
    """
    n_all, T = _check_data(fxnet, data)
    indices = np.arange(n_all) if indices is None else np.asarray(indices, dtype=np.int64)
    if engine not in ("numba", "numpy"):
        raise EmulatorError(f"unknown emulator engine {engine!r}; use 'numba' or 'numpy'")
    hid, out = fxnet.hidden, fxnet.readout
    if hid.weight_rec is None:
        raise EmulatorError("hidden layer: missing weight_rec (a dense_rec layer)")
    syn_in, syn_rec = lava_synapses(hid.weight, hid.weight_rec)
    syn_out, _ = lava_synapses(out.weight)
    ch, co = cuba_constants(hid), cuba_constants(out)
    n, H, O, S = len(indices), hid.size, out.size, T + EXTRA_STEPS
    res = EmulatorResult(np.zeros(n, np.int64), np.zeros((n, O)), np.zeros((n, H), np.int64),
                         np.zeros((n, S, O), np.int32) if record_trace else None,
                         np.zeros((n, S, O), np.int32) if record_trace else None,
                         np.zeros((n, S, H), bool) if record_hidden else None)
    run = _run_numba if engine == "numba" else _run_numpy
    from tqdm.auto import tqdm
    with tqdm(total=n, desc="emulate", unit="sample", disable=not progress) as bar:
        for b0 in range(0, n, batch_size):
            idx = indices[b0:b0 + batch_size]
            run(data, idx, slice(b0, b0 + len(idx)), res, (syn_in, syn_rec, syn_out), (ch, co),
                readout_score_weights(fxnet, T), S, threads)
            bar.update(len(idx))
    res.pred[:] = np.argmax(res.score, axis=1)
    return res


def _run_numpy(data, idx, out_rows, res: EmulatorResult, syns, consts, score_w, S, threads, chunk=64) -> None:
    syn_in, syn_rec, syn_out = syns
    ch, co = consts
    B, H, O = len(idx), syn_rec.weight.shape[0], syn_out.weight.shape[0]
    rows, steps, units = _input_events(data, idx)
    hs, rs = CubaState(np.zeros((B, H)), np.zeros((B, H))), CubaState(np.zeros((B, O)), np.zeros((B, O)))
    s = np.zeros((B, H))
    acc, cnt = np.zeros((B, O)), np.zeros((B, H))
    for t0 in range(0, S, chunk):
        t1 = min(S, t0 + chunk)
        drive = _input_drive(syn_in, rows, steps, units, B, t0, t1)
        for i in range(t0, t1):
            a_out = _apply(syn_out, s)
            a_hid = drive[:, i - t0] + _apply(syn_rec, s)
            rs, _ = cuba_step(rs, a_out, co)
            hs, spikes = cuba_step(hs, a_hid, ch)
            s = spikes.astype(np.float64)
            cnt += s
            acc += score_w[i] * rs.v
            if res.readout_v is not None:
                res.readout_v[out_rows, i] = rs.v
                res.readout_u[out_rows, i] = rs.u
            if res.hidden_spikes is not None:
                res.hidden_spikes[out_rows, i] = spikes
    res.score[out_rows] = acc
    res.hidden_spike_counts[out_rows] = cnt.astype(np.int64)


def _run_numba(data, idx, out_rows, res: EmulatorResult, syns, consts, score_w, S, threads) -> None:
    import os
    from concurrent.futures import ThreadPoolExecutor

    from .emulator_kernel import run_samples

    syn_in, syn_rec, syn_out = syns
    ch, co = consts
    B, H, O = len(idx), syn_rec.weight.shape[0], syn_out.weight.shape[0]
    rows, steps, units = _input_events(data, idx)
    offsets = np.searchsorted(rows, np.arange(B + 1)).astype(np.int64)
    score = np.zeros((B, O))
    counts = np.zeros((B, H), np.int64)
    trace_v = np.zeros((B, S, O), np.int32) if res.readout_v is not None else np.zeros((1, 1, O), np.int32)
    trace_u = np.zeros_like(trace_v)
    raster = np.zeros((B, S, H), bool) if res.hidden_spikes is not None else np.zeros((1, 1, H), bool)

    def as_int(x):
        return np.ascontiguousarray(x, dtype=np.int64)

    def keep(c: CubaConstants):
        return np.array([round(c.u_keep * DECAY_UNIT), round(c.v_keep * DECAY_UNIT)], np.int64)

    args = (offsets, steps, units, S, as_int(syn_in.weight.T), syn_in.shift, as_int(syn_rec.weight.T),
            syn_rec.shift, as_int(syn_out.weight.T), syn_out.shift,
            keep(ch), as_int(ch.bias), int(ch.threshold), keep(co), as_int(co.bias), int(co.threshold),
            np.ascontiguousarray(score_w), score, counts, trace_v, trace_u, raster,
            res.readout_v is not None, res.hidden_spikes is not None)
    workers = max(1, min(threads or os.cpu_count() or 1, B))
    bounds = np.linspace(0, B, workers + 1).astype(int)
    if workers == 1:
        run_samples(0, B, *args)
    else:
        with ThreadPoolExecutor(workers) as pool:
            for f in [pool.submit(run_samples, int(a), int(b), *args) for a, b in zip(bounds[:-1], bounds[1:])]:
                f.result()
    res.score[out_rows] = score
    res.hidden_spike_counts[out_rows] = counts
    if res.readout_v is not None:
        res.readout_v[out_rows] = trace_v
        res.readout_u[out_rows] = trace_u
    if res.hidden_spikes is not None:
        res.hidden_spikes[out_rows] = raster
