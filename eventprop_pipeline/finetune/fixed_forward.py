"""The fine-tuning forward pass: the emulator's integer dynamics, plus the spike record Eventprop needs.

A fast twin of `netx_export.emulator_kernel.run_samples` (the reference: same synapses, decays,
wrap-around, saturation, reset and readout score, through the same helper functions), which in
addition records, for every hidden spike of float-model step k < T, the neuron and Eventprop's jump
denominator I - V mapped back to float units (docs/finetune.md):
  isyn = u q / (64 (1 - alpha) IScale),   V = v_pre q / 64      (q: the hidden layer's step)
so that `eventprop.numba_kernels.backward_batch` runs unchanged from the fixed-point spike record.
tests/test_finetune.py checks spikes, spike counts and scores against `emulate()` bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from netx_export.emulator import EXTRA_STEPS, _input_events, cuba_constants, lava_synapses, readout_score_weights
from netx_export.emulator_kernel import shift_down, u_update, v_update
from netx_export.fixed_point import DECAY_UNIT, STATE_SCALE, FixedPointNetwork


@njit(cache=True, nogil=True)
def _sample(e0, e1, ev_steps, ev_units, n_steps, T, w_in_t, sh_in, w_rec_t, sh_rec, w_out_t, sh_out,
            keep_h, bias_h, th_h, keep_o, bias_o, th_o, score_w, u_to_isyn, v_to_float,
            score, counts, spk_neuron, spk_den, spk_off):
    """One sample; the arithmetic of emulator_kernel.run_samples line for line. Returns the number of
    spikes of steps < T (the record holds at most len(spk_neuron) of them)."""
    H = w_rec_t.shape[0]
    O = w_out_t.shape[1]
    cap = spk_neuron.shape[0]
    u_h = np.zeros(H, np.int64)
    v_h = np.zeros(H, np.int64)
    u_o = np.zeros(O, np.int64)
    v_o = np.zeros(O, np.int64)
    prev = np.zeros(H, np.int64)
    n_prev = 0
    cur = np.zeros(H, np.int64)
    a_in = np.zeros(H, np.int64)
    a_rec = np.zeros(H, np.int64)
    a_o = np.zeros(O, np.int64)
    n_rec = 0
    spk_off[0] = 0
    e = e0
    for i in range(n_steps):
        a_in[:] = 0
        a_rec[:] = 0
        a_o[:] = 0
        while e < e1 and ev_steps[e] < i - 1:
            e += 1
        while e < e1 and ev_steps[e] == i - 1:
            row = w_in_t[ev_units[e]]
            for h in range(H):
                a_in[h] += row[h]
            e += 1
        for k in range(n_prev):
            p = prev[k]
            row = w_rec_t[p]
            for h in range(H):
                a_rec[h] += row[h]
            row_o = w_out_t[p]
            for o in range(O):
                a_o[o] += row_o[o]
        for o in range(O):
            u_o[o] = u_update(u_o[o], keep_o[0], shift_down(a_o[o], sh_out))
            x = v_update(v_o[o], keep_o[1], u_o[o], bias_o[o])
            if x > th_o:
                x = 0
            v_o[o] = x
            score[o] += score_w[i] * x
        n_cur = 0
        for h in range(H):
            a = shift_down(a_in[h], sh_in) + shift_down(a_rec[h], sh_rec)
            u_h[h] = u_update(u_h[h], keep_h[0], a)
            x = v_update(v_h[h], keep_h[1], u_h[h], bias_h[h])
            if x > th_h:
                if i < T:
                    if n_rec < cap:
                        spk_neuron[n_rec] = h
                        spk_den[n_rec] = u_h[h] * u_to_isyn - x * v_to_float
                    n_rec += 1
                x = 0
                cur[n_cur] = h
                n_cur += 1
                counts[h] += 1
            v_h[h] = x
        if i < T:
            spk_off[i + 1] = n_rec
        prev, cur = cur, prev
        n_prev = n_cur
    return n_rec


@njit(parallel=True, cache=True, nogil=True)
def _batch(offsets, ev_steps, ev_units, n_steps, T, w_in_t, sh_in, w_rec_t, sh_rec, w_out_t, sh_out,
           keep_h, bias_h, th_h, keep_o, bias_o, th_o, score_w, u_to_isyn, v_to_float,
           score, counts, spk_neuron, spk_den, spk_off, n_spikes):
    for n in prange(offsets.shape[0] - 1):
        n_spikes[n] = _sample(offsets[n], offsets[n + 1], ev_steps, ev_units, n_steps, T, w_in_t, sh_in,
                              w_rec_t, sh_rec, w_out_t, sh_out, keep_h, bias_h, th_h, keep_o, bias_o, th_o,
                              score_w, u_to_isyn, v_to_float, score[n], counts[n], spk_neuron[n], spk_den[n],
                              spk_off[n])


@dataclass
class FixedForward:
    """One batch run in fixed point: what the loss and the Eventprop backward pass need."""
    score: np.ndarray          # (B, O) float64, identical to emulate(...).score
    counts: np.ndarray         # (B, H) int64 hidden spikes over all T + 2 Lava steps, = emulate's
    spk_neuron: np.ndarray     # (B, capacity) int32: hidden spikes of steps k < T in step order
    spk_den: np.ndarray        # (B, capacity) float64: I - V at each of them, float units
    spk_off: np.ndarray        # (B, T + 1) int32: spikes of step k are spk_off[k]:spk_off[k + 1]
    ev_steps: np.ndarray       # int32 input events (binary: counts > 0, as the emulator sees them)
    ev_units: np.ndarray       # int32
    ev_offsets: np.ndarray     # int64 (B + 1)


_capacity_seen: dict[tuple[int, int], int] = {}


def run_fixed(fx: FixedPointNetwork, data, indices, i_scale: float, alpha: float,
              capacity: int | None = None) -> FixedForward:
    """The samples `indices` of a SpikeDataset (or dense array) through the fixed-point network."""
    hid, out = fx.hidden, fx.readout
    T = int(data.timesteps) if hasattr(data, "timesteps") else int(np.shape(data)[1])
    idx = np.asarray(indices, np.int64)
    B, H, O = len(idx), hid.size, out.size
    syn_in, syn_rec = lava_synapses(hid.weight, hid.weight_rec)
    syn_out, _ = lava_synapses(out.weight)
    ch, co = cuba_constants(hid), cuba_constants(out)
    rows, steps, units = _input_events(data, idx)
    offsets = np.searchsorted(rows, np.arange(B + 1)).astype(np.int64)
    ev_steps, ev_units = steps.astype(np.int32), units.astype(np.int32)

    def as_int(x):
        return np.ascontiguousarray(x, dtype=np.int64)

    def keep(c):
        return np.array([round(c.u_keep * DECAY_UNIT), round(c.v_keep * DECAY_UNIT)], np.int64)

    q = float(hid.step)
    u_to_isyn = q / (STATE_SCALE * (1.0 - alpha) * i_scale)
    v_to_float = q / STATE_SCALE
    capacity = capacity or max(1024, _capacity_seen.get((H, T), 0))
    while True:
        score = np.zeros((B, O))
        counts = np.zeros((B, H), np.int64)
        spk_neuron = np.zeros((B, capacity), np.int32)
        spk_den = np.zeros((B, capacity))
        spk_off = np.zeros((B, T + 1), np.int32)
        n_spikes = np.zeros(B, np.int64)
        _batch(offsets, ev_steps, ev_units, T + EXTRA_STEPS, T, as_int(syn_in.weight.T), syn_in.shift,
               as_int(syn_rec.weight.T), syn_rec.shift, as_int(syn_out.weight.T), syn_out.shift,
               keep(ch), as_int(ch.bias), int(ch.threshold), keep(co), as_int(co.bias), int(co.threshold),
               np.ascontiguousarray(readout_score_weights(fx, T)), u_to_isyn, v_to_float,
               score, counts, spk_neuron, spk_den, spk_off, n_spikes)
        needed = int(n_spikes.max()) if B else 0
        if needed <= capacity:
            return FixedForward(score, counts, spk_neuron, spk_den, spk_off, ev_steps, ev_units, offsets)
        capacity = needed + needed // 4
        _capacity_seen[H, T] = max(_capacity_seen.get((H, T), 0), capacity)
