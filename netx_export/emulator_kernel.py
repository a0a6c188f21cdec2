"""The emulator's fast path: one sample at a time, event-driven, in int64, compiled with numba.

Same arithmetic as the numpy reference in emulator.py (`cuba_step`, `_deliver`) and as Lava's
`PyLifModelBitAcc` + `PyDenseModelBitAcc` / `PyDelayDenseModelBitAcc`: the spikes of a step are
scattered row by row into a ring of pending input (slot = step + 1 + delay), each synapse's sum
shifted like Lava's Dense (per delay, when it has delays), then u and v are updated in int64.
Any number of layers; their arrays are packed flat (`pack_layers`). Imported lazily by
`emulator.emulate` so that `netx_export` imports without numba.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .fixed_point import DECAY_UNIT, U_LIMIT, V_MAX

RING = 64      # must equal emulator.RING


@njit(cache=True, inline="always")
def rtz_decay(x, keep):
    """Lava's decay: sign(x) * (|x| * keep >> 12), the int64 product rounded toward zero."""
    p = x * keep
    return (p >> 12) if p >= 0 else -((-p) >> 12)


@njit(cache=True, inline="always")
def shift_down(a, shift):
    """Lava's Dense output: a >> shift (arithmetic, i.e. floor) or a << -shift."""
    return (a >> shift) if shift >= 0 else (a << -shift)


@njit(cache=True, inline="always")
def u_update(u, keep, a):
    x = rtz_decay(u, keep) + 64 * a
    if x > U_LIMIT:
        return x - 2 * U_LIMIT
    if x <= -U_LIMIT:
        return x + 2 * U_LIMIT
    return x


@njit(cache=True, inline="always")
def v_update(v, keep, u, bias64):
    x = rtz_decay(v, keep) + u + bias64
    return min(max(x, -V_MAX), V_MAX)


def pack_layers(plans) -> tuple:
    """Flat int64 arrays of every layer (weights transposed to (pre, post) rows, delays alike, neuron
    constants per neuron), with offsets; order matches run_samples' parameters after n_steps."""
    sizes = np.array([p.size for p in plans], np.int64)
    pres = np.array([p.syn_in.weight.shape[1] for p in plans], np.int64)
    w_parts, d_parts, neuron = [], [], {"ku": [], "kv": [], "b": [], "th": []}
    syn_off = np.zeros(2 * len(plans), np.int64)
    syn_shift = np.zeros(2 * len(plans), np.int64)
    has_syn = np.zeros(2 * len(plans), np.int64)
    d_off = np.zeros(len(plans), np.int64)
    has_delay = np.zeros(len(plans), np.int64)
    w_pos = d_pos = 0
    for k, p in enumerate(plans):
        for j, syn in enumerate((p.syn_in, p.syn_rec)):
            if syn is None:
                continue
            wt = np.ascontiguousarray(syn.weight.T, dtype=np.int64).reshape(-1)
            syn_off[2 * k + j], syn_shift[2 * k + j], has_syn[2 * k + j] = w_pos, syn.shift, 1
            w_parts.append(wt)
            w_pos += wt.size
        if p.delay is not None:
            dt = np.ascontiguousarray(p.delay.T, dtype=np.int64).reshape(-1)
            d_off[k], has_delay[k] = d_pos, 1
            d_parts.append(dt)
            d_pos += dt.size
        n = p.size
        c = p.neuron
        neuron["ku"].append(np.broadcast_to(np.round(np.asarray(c.u_keep) * DECAY_UNIT), (n,)))
        neuron["kv"].append(np.broadcast_to(np.round(np.asarray(c.v_keep) * DECAY_UNIT), (n,)))
        neuron["b"].append(np.broadcast_to(c.bias, (n,)))
        neuron["th"].append(np.broadcast_to(c.threshold, (n,)))

    def cat(parts):
        return np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros(1), dtype=np.int64)

    return (sizes, pres, cat(w_parts), syn_off, syn_shift, has_syn, cat(d_parts), d_off, has_delay,
            cat(neuron["ku"]), cat(neuron["kv"]), cat(neuron["b"]), cat(neuron["th"]))


@njit(cache=True, inline="always")
def deliver(ring, r0, n, i, src, n_src, w, w0, shift, dly, d0, delayed, tmp):
    """Rows w[w0 + p*n : ...] of the n_src sources src[:n_src] that spiked at step i go to the ring
    (layer base r0, n neurons): slot i+1 (+ delay). Lava shifts each per-step (per-delay) sum."""
    if n_src == 0:
        return
    # Slices indexed by loop counters only: numba then needs no negative-index checks and vectorises.
    if delayed == 0:
        base = r0 + ((i + 1) & (RING - 1)) * n
        dst = ring[base:base + n]
        if shift == 0:
            for q in range(n_src):
                row = w[w0 + src[q] * n:w0 + src[q] * n + n]
                for h in range(n):
                    dst[h] += row[h]
        else:
            acc = tmp[:n]
            acc[:] = 0
            for q in range(n_src):
                row = w[w0 + src[q] * n:w0 + src[q] * n + n]
                for h in range(n):
                    acc[h] += row[h]
            for h in range(n):
                dst[h] += shift_down(acc[h], shift)
        return
    if shift == 0:
        for q in range(n_src):
            row = w[w0 + src[q] * n:w0 + src[q] * n + n]
            drow = dly[d0 + src[q] * n:d0 + src[q] * n + n]
            for h in range(n):
                ring[r0 + ((i + 1 + drow[h]) & (RING - 1)) * n + h] += row[h]
    else:
        acc = tmp[:RING * n]
        acc[:] = 0
        for q in range(n_src):
            row = w[w0 + src[q] * n:w0 + src[q] * n + n]
            drow = dly[d0 + src[q] * n:d0 + src[q] * n + n]
            for h in range(n):
                acc[drow[h] * n + h] += row[h]
        for d in range(RING - 1):
            base = r0 + ((i + 1 + d) & (RING - 1)) * n
            dst = ring[base:base + n]
            part = acc[d * n:d * n + n]
            for h in range(n):
                dst[h] += shift_down(part[h], shift)


@njit(cache=True, nogil=True)
def run_samples(first, last, ev_offsets, ev_steps, ev_units, n_steps,
                sizes, pres, w, syn_off, syn_shift, has_syn, dly, d_off, has_delay,
                keep_u, keep_v, bias, th, score_w,
                score, counts, trace_v, trace_u, raster, record_trace, record_hidden):
    """Samples first..last-1 (rows of the outputs); counts has every layer's neurons side by side;
    trace_* hold the last layer, raster the layer before it."""
    L = sizes.shape[0]
    noff = np.zeros(L + 1, np.int64)
    for k in range(L):
        noff[k + 1] = noff[k] + sizes[k]
    N = noff[L]
    n_max = 1
    for k in range(L):
        n_max = max(n_max, sizes[k], pres[k])
    O = sizes[L - 1]
    o0 = noff[L - 1]
    for s in range(first, last):
        u = np.zeros(N, np.int64)
        v = np.zeros(N, np.int64)
        ring = np.zeros(RING * N, np.int64)
        spk = np.zeros(N, np.int64)          # per layer, the indices of the neurons that spiked this step
        n_spk = np.zeros(L, np.int64)
        src = np.zeros(n_max, np.int64)
        tmp = np.zeros(RING * n_max, np.int64)
        e = ev_offsets[s]
        e_end = ev_offsets[s + 1]
        for i in range(n_steps):
            slot = i & (RING - 1)
            for k in range(L):
                n = sizes[k]
                b = noff[k]
                pending = ring[RING * b + slot * n:RING * b + slot * n + n]
                uk, vk = u[b:b + n], v[b:b + n]
                ku, kv, bk, tk = keep_u[b:b + n], keep_v[b:b + n], bias[b:b + n], th[b:b + n]
                cnt = counts[s, b:b + n]
                out = spk[b:b + n]
                c = 0
                for h in range(n):
                    uk[h] = u_update(uk[h], ku[h], pending[h])
                    pending[h] = 0
                    y = v_update(vk[h], kv[h], uk[h], bk[h])
                    if y > tk[h]:
                        y = 0
                        out[c] = h
                        c += 1
                        cnt[h] += 1
                        if record_hidden and k == L - 2:
                            raster[s, i, h] = True
                    vk[h] = y
                n_spk[k] = c
            vo, uo, sc = v[o0:o0 + O], u[o0:o0 + O], score[s]
            for o in range(O):
                sc[o] += score_w[i] * vo[o]
                if record_trace:
                    trace_v[s, i, o] = vo[o]
                    trace_u[s, i, o] = uo[o]
            # input events of step i (sorted by step within the sample)
            n_in = 0
            while e < e_end and ev_steps[e] < i:
                e += 1
            while e < e_end and ev_steps[e] == i:
                src[n_in] = ev_units[e]
                n_in += 1
                e += 1
            for k in range(L):
                n = sizes[k]
                r0 = RING * noff[k]
                if k == 0:
                    deliver(ring, r0, n, i, src, n_in, w, syn_off[0], syn_shift[0], dly, d_off[0],
                            has_delay[0], tmp)
                else:
                    deliver(ring, r0, n, i, spk[noff[k - 1]:], n_spk[k - 1], w, syn_off[2 * k], syn_shift[2 * k],
                            dly, d_off[k], has_delay[k], tmp)
                if has_syn[2 * k + 1]:
                    deliver(ring, r0, n, i, spk[noff[k]:], n_spk[k], w, syn_off[2 * k + 1], syn_shift[2 * k + 1],
                            dly, d_off[k], has_delay[k], tmp)
