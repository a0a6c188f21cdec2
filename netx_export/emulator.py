"""Vectorised emulator, bit-exact to what Lava runs for a NetX file (lava-nc 0.10 `PyLifModelBitAcc` +
`PyDenseModelBitAcc`, wired by lava-dl 0.6 `netx.hdf5.Network`). Two engines with the same
arithmetic: "numba" (default; event-driven, int64, one sample per loop, threads over samples; see
emulator_kernel.py) and "numpy" (batched over samples, the readable reference below). Numpy only at
import: numba is imported when the numba engine first runs.

One Lava step j = 1..T+2 of a sample (fresh zero state, docs/fixed_point.md, docs/netx_runtime.md), for
every layer l = 1..L (layer 0 is the input x, played as column j - 1 at step j):
  a_j = sum over synapses and delays d of sh(W_d s_pre[j-1-d])   (a Dense adds one step, a delay d more)
  with s_pre the previous layer's spikes (input: x[j-2-d]) and, for dense_rec, also the layer's own
  u = rtz(u (4096 - iDecay) / 4096) + 64 a      wraps once at +-2^23 exactly as Lava does
  v = rtz(v (4096 - vDecay) / 4096) + u + 64 bias, clipped to +-(2^23 - 1); spike if v > 64 vThMant; v = 0
where W and sh() are the weights and power-of-two shifts Lava really uses after netx's
`optimize_weight_bits` and the Dense model's clip/truncate (`lava_synapses`); a DelayDense shifts each
delay's sum on its own. The numpy engine holds integer state in float64: every value stays below 2^53
and the 12-bit decays are exact binary fractions, so trunc(x * keep) is Lava's int64 round-toward-zero.

Lava local step j matches float-model step k = j - 1 (this project's two layers), so the readout score uses
the last layer's integer v of steps j = 1..T, weighted like the float `avg_var_exp_weight` readout.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from eventprop_core.errors import DataError, PipelineError
from eventprop_core.readout import readout_weights

from .fixed_point import READOUTS, DECAY_UNIT, STATE_SCALE, U_LIMIT, V_MAX, FixedPointLayer, FixedPointNetwork

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
    u_keep: np.ndarray | float   # (4096 - iDecay) / 4096, an exact binary fraction; scalar or (n,)
    v_keep: np.ndarray | float
    bias: np.ndarray     # 64 * bias, float64 (n,)
    threshold: np.ndarray | float  # 64 * vThMant; scalar or (n,)


class CubaState(NamedTuple):
    u: np.ndarray        # (B, n) float64 holding integers
    v: np.ndarray


def cuba_constants(layer: FixedPointLayer) -> CubaConstants:
    for name in ("i_decay", "v_decay"):
        value = np.asarray(getattr(layer, name), dtype=np.int64)
        if np.any(value < 0) or np.any(value > DECAY_UNIT):
            raise EmulatorError(f"{layer.kind} layer: {name} outside 0..{DECAY_UNIT}")
    # netx runs du = iDecay - 1 and Lava adds 1 back; iDecay 0 gives du = -1 -> no decay.
    bias = np.zeros(layer.size) if layer.bias is None else np.asarray(layer.bias, dtype=np.int64)

    def keep(x):
        k = (DECAY_UNIT - np.asarray(x, dtype=np.int64)) / DECAY_UNIT
        return float(k) if k.ndim == 0 else k

    th = STATE_SCALE * np.asarray(layer.vth_mant, dtype=np.int64)
    return CubaConstants(keep(layer.i_decay), keep(layer.v_decay), STATE_SCALE * bias.astype(np.float64),
                         float(th) if th.ndim == 0 else th.astype(np.float64))


def cuba_step(state: CubaState, a: np.ndarray, c: CubaConstants) -> tuple[CubaState, np.ndarray]:
    """One `PyLifModelBitAcc` step on a batch; returns the new state and the boolean spikes."""
    u = np.trunc(state.u * c.u_keep) + STATE_SCALE * a
    u = np.where(u > U_LIMIT, u - 2 * U_LIMIT, np.where(u <= -U_LIMIT, u + 2 * U_LIMIT, u))
    v = np.clip(np.trunc(state.v * c.v_keep) + u + c.bias, -V_MAX, V_MAX)
    spikes = v > c.threshold
    return CubaState(u, np.where(spikes, 0.0, v)), spikes


# ------------------------------------------------------------------------------------------ layers

RING = 64        # slots of pending synaptic input: delays 0..62 land 1..63 steps later


@dataclass
class LayerPlan:
    """One layer as Lava runs it: its synapses (with Lava's effective weights and shifts), the
    delays of each synapse (None: plain Dense, one step), and the neuron constants."""
    syn_in: Synapse
    syn_rec: Synapse | None
    delay: np.ndarray | None         # (n, n_pre) int64, shared by syn_in and syn_rec (lava-dl RecurrentDense)
    neuron: CubaConstants

    @property
    def size(self) -> int:
        return self.syn_in.weight.shape[0]


def plan_layers(fxnet: FixedPointNetwork) -> list[LayerPlan]:
    plans = []
    for k, layer in enumerate(fxnet.layers):
        if layer.kind == "dense_rec" and layer.weight_rec is None:
            raise EmulatorError(f"layer {k + 1}: a dense_rec layer without weight_rec")
        syn_in, syn_rec = lava_synapses(layer.weight, layer.weight_rec if layer.kind == "dense_rec" else None)
        delay = None if layer.delay is None or not np.any(layer.delay) else np.asarray(layer.delay, np.int64)
        plans.append(LayerPlan(syn_in, syn_rec, delay, cuba_constants(layer)))
    return plans


def _deliver(syn: Synapse, delay: np.ndarray | None, s: np.ndarray, ring: np.ndarray, i: int) -> None:
    """Spikes s (B, n_pre) sent at step i reach the neuron at step i + 1 + delay; Lava's DelayDense
    shifts each delay's sum on its own (`a_buff += accum >> shift` per delay column)."""
    if delay is None:
        ring[:, (i + 1) % RING] += _apply(syn, s)
        return
    for d in np.unique(delay):
        part = Synapse(np.where(delay == d, syn.weight, 0.0), syn.shift)
        ring[:, (i + 1 + int(d)) % RING] += _apply(part, s)


# ------------------------------------------------------------------------------------------ result

@dataclass
class EmulatorResult:
    pred: np.ndarray                         # (N,) int64, argmax of score
    score: np.ndarray                        # (N, n_out) float64, readout in float-model units (or spike counts)
    hidden_spike_counts: np.ndarray          # (N, n_hidden) int64: the layer before the readout
    readout_v: np.ndarray | None = None      # (N, T+2, n_out) int32, Lava steps 1..T+2
    readout_u: np.ndarray | None = None      # (N, T+2, n_out) int32
    hidden_spikes: np.ndarray | None = None  # (N, T+2, n_hidden) bool
    layer_spike_counts: list | None = None   # per layer, (N, n_layer) int64 (the last is the readout's)

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


# ------------------------------------------------------------------------------------------- run

def emulate(fxnet: FixedPointNetwork, data, *, batch_size: int = 256, record_trace: bool = False,
            record_hidden: bool = False, indices=None, progress: bool = False, engine: str = "numba",
            threads: int | None = None, readout: str | None = None) -> EmulatorResult:
    """Run every sample (fresh state, T + 2 Lava steps) exactly as Lava's fixed-point models would.

    data: a SpikeDataset or a dense (B, T, n_in) array; spikes are binary (a count > 0 is one spike,
    as Lava's Dense with binary input sees it). record_trace adds the last layer's readout_v and
    readout_u, record_hidden the raster of the layer before it. readout: "v" (score from the last
    layer's voltage; default: fxnet.readout_from) or "spikes" (its spike counts). engine "numba"
    (event-driven, compiled, threads over samples) or "numpy" (batched reference of the same
    arithmetic); both are bit-exact.
    """
    n_all, T = _check_data(fxnet, data)
    indices = np.arange(n_all) if indices is None else np.asarray(indices, dtype=np.int64)
    if engine not in ("numba", "numpy"):
        raise EmulatorError(f"unknown emulator engine {engine!r}; use 'numba' or 'numpy'")
    readout = readout or getattr(fxnet, "readout_from", "v")
    if readout not in READOUTS:
        raise EmulatorError(f"unknown readout {readout!r}; use one of {', '.join(READOUTS)}")
    plans = plan_layers(fxnet)
    n, S = len(indices), T + EXTRA_STEPS
    sizes = [p.size for p in plans]
    H, O = (sizes[-2] if len(sizes) > 1 else 0), sizes[-1]
    res = EmulatorResult(np.zeros(n, np.int64), np.zeros((n, O)), np.zeros((n, H), np.int64),
                         np.zeros((n, S, O), np.int32) if record_trace else None,
                         np.zeros((n, S, O), np.int32) if record_trace else None,
                         np.zeros((n, S, H), bool) if record_hidden else None,
                         [np.zeros((n, k), np.int64) for k in sizes])
    run = _run_numba if engine == "numba" else _run_numpy
    score_w = readout_score_weights(fxnet, T)
    from tqdm.auto import tqdm
    with tqdm(total=n, desc="emulate", unit="sample", disable=not progress) as bar:
        for b0 in range(0, n, batch_size):
            idx = indices[b0:b0 + batch_size]
            run(data, idx, slice(b0, b0 + len(idx)), res, plans, score_w, S, threads)
            bar.update(len(idx))
    if H:
        res.hidden_spike_counts[:] = res.layer_spike_counts[-2]
    if readout == "spikes":
        res.score[:] = res.layer_spike_counts[-1]
    res.pred[:] = np.argmax(res.score, axis=1)
    return res


def _run_numpy(data, idx, out_rows, res: EmulatorResult, plans: list[LayerPlan], score_w, S, threads) -> None:
    B, L = len(idx), len(plans)
    rows, steps, units = _input_events(data, idx)
    n_in = plans[0].syn_in.weight.shape[1]
    states = [CubaState(np.zeros((B, p.size)), np.zeros((B, p.size))) for p in plans]
    rings = [np.zeros((B, RING, p.size)) for p in plans]
    counts = [np.zeros((B, p.size)) for p in plans]
    acc = np.zeros((B, plans[-1].size))
    order = np.argsort(steps, kind="stable")
    rows, steps, units = rows[order], steps[order], units[order]
    bounds = np.searchsorted(steps, np.arange(S + 1))
    for i in range(S):
        spikes = []
        for k, p in enumerate(plans):
            a = rings[k][:, i % RING].copy()
            rings[k][:, i % RING] = 0.0
            states[k], s = cuba_step(states[k], a, p.neuron)
            spikes.append(s.astype(np.float64))
            counts[k] += spikes[-1]
        last = states[-1]
        acc += score_w[i] * last.v
        if res.readout_v is not None:
            res.readout_v[out_rows, i] = last.v
            res.readout_u[out_rows, i] = last.u
        if res.hidden_spikes is not None and L > 1:
            res.hidden_spikes[out_rows, i] = spikes[-2] > 0
        x = np.zeros((B, n_in))
        sel = slice(bounds[i], bounds[i + 1])
        x[rows[sel], units[sel]] = 1.0
        for k, p in enumerate(plans):
            _deliver(p.syn_in, p.delay, x if k == 0 else spikes[k - 1], rings[k], i)
            if p.syn_rec is not None:
                _deliver(p.syn_rec, p.delay, spikes[k], rings[k], i)
    res.score[out_rows] = acc
    for k in range(L):
        res.layer_spike_counts[k][out_rows] = counts[k].astype(np.int64)


def _run_numba(data, idx, out_rows, res: EmulatorResult, plans: list[LayerPlan], score_w, S, threads) -> None:
    import os
    from concurrent.futures import ThreadPoolExecutor

    from .emulator_kernel import pack_layers, run_samples

    B, L = len(idx), len(plans)
    rows, steps, units = _input_events(data, idx)
    offsets = np.searchsorted(rows, np.arange(B + 1)).astype(np.int64)
    packed = pack_layers(plans)
    sizes = packed[0]
    O = int(sizes[-1])
    H = int(sizes[-2]) if L > 1 else 0
    score = np.zeros((B, O))
    counts = np.zeros((B, int(sizes.sum())), np.int64)
    trace_v = np.zeros((B, S, O), np.int32) if res.readout_v is not None else np.zeros((1, 1, O), np.int32)
    trace_u = np.zeros_like(trace_v)
    raster = np.zeros((B, S, H), bool) if res.hidden_spikes is not None else np.zeros((1, 1, max(H, 1)), bool)
    args = (offsets, steps, units, S, *packed, np.ascontiguousarray(score_w), score, counts, trace_v, trace_u,
            raster, res.readout_v is not None, res.hidden_spikes is not None)
    workers = max(1, min(threads or os.cpu_count() or 1, B))
    bounds = np.linspace(0, B, workers + 1).astype(int)
    if workers == 1:
        run_samples(0, B, *args)
    else:
        with ThreadPoolExecutor(workers) as pool:
            for f in [pool.submit(run_samples, int(a), int(b), *args) for a, b in zip(bounds[:-1], bounds[1:])]:
                f.result()
    res.score[out_rows] = score
    starts = np.concatenate([[0], np.cumsum(sizes)])
    for k in range(L):
        res.layer_spike_counts[k][out_rows] = counts[:, starts[k]:starts[k + 1]]
    if res.readout_v is not None:
        res.readout_v[out_rows] = trace_v
        res.readout_u[out_rows] = trace_u
    if res.hidden_spikes is not None:
        res.hidden_spikes[out_rows] = raster
