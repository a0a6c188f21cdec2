"""The emulator's fast path: one sample at a time, event-driven, in int64, compiled with numba.

Same arithmetic as `emulator.cuba_step` (the numpy reference) and Lava's `PyLifModelBitAcc`:
synaptic input is summed from the rows of the neurons that spiked (input events of column i - 1,
hidden spikes of the previous step), shifted like Lava's Dense, then u and v are updated in int64.
Imported lazily by `emulator.emulate` so that `netx_export` imports without numba.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .fixed_point import U_LIMIT, V_MAX


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


@njit(cache=True, nogil=True)
def run_samples(first, last, ev_offsets, ev_steps, ev_units, n_steps,
                w_in_t, sh_in, w_rec_t, sh_rec, w_out_t, sh_out,
                keep_h, bias_h, th_h, keep_o, bias_o, th_o, score_w,
                score, counts, trace_v, trace_u, raster, record_trace, record_hidden):
    """Samples first..last-1 (rows of the outputs). keep_* = (4096 - iDecay, 4096 - vDecay)."""
    H = w_rec_t.shape[0]
    O = w_out_t.shape[1]
    for n in range(first, last):
        u_h = np.zeros(H, np.int64)
        v_h = np.zeros(H, np.int64)
        u_o = np.zeros(O, np.int64)
        v_o = np.zeros(O, np.int64)
        prev = np.zeros(H, np.int64)       # indices of the hidden neurons that spiked last step
        n_prev = 0
        cur = np.zeros(H, np.int64)
        a_in = np.zeros(H, np.int64)
        a_rec = np.zeros(H, np.int64)
        a_o = np.zeros(O, np.int64)
        e = ev_offsets[n]
        e_end = ev_offsets[n + 1]
        for i in range(n_steps):
            a_in[:] = 0
            a_rec[:] = 0
            a_o[:] = 0
            while e < e_end and ev_steps[e] < i - 1:
                e += 1
            while e < e_end and ev_steps[e] == i - 1:
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
                score[n, o] += score_w[i] * x
                if record_trace:
                    trace_v[n, i, o] = x
                    trace_u[n, i, o] = u_o[o]
            n_cur = 0
            for h in range(H):
                a = shift_down(a_in[h], sh_in) + shift_down(a_rec[h], sh_rec)
                u_h[h] = u_update(u_h[h], keep_h[0], a)
                x = v_update(v_h[h], keep_h[1], u_h[h], bias_h[h])
                if x > th_h:
                    x = 0
                    cur[n_cur] = h
                    n_cur += 1
                    counts[n, h] += 1
                    if record_hidden:
                        raster[n, i, h] = True
                v_h[h] = x
            prev, cur = cur, prev
            n_prev = n_cur
