"""Event-driven forward and Eventprop backward kernels for the CPU (numba, one sample per thread).

Units of the adjoint (float64): A = dL/dV (pre-reset voltage of a step), Bq = dL/du with u the
synaptic input after this step's arrivals, before its decay. Between events both follow the exact
discrete adjoint of the forward recurrences, so readout gradients are exact; a hidden spike adds
Eventprop's jump (mlGeNN's discrete form). dL/dW[pre, post] is the sum of Bq_post one step after each
presynaptic spike (a spike of step k arrives at step k + 1).

Backward step k (from T - 1 down to 0), c = (1 - alpha) IScale:
  readout:  A = e_k + alpha A;  Bq = c A + beta Bq                    (e_k = dL/dV_k of the loss)
  hidden:   A = alpha A; at a spike of n at step k, with u, V its synaptic input and pre-reset voltage,
            A_n += (v_th A_n + R_n) / (u - V) + reg_n,
            R_n = sum_post W[n, post] (A_post - rho Bq_post)   (posts at step k + 1),
            rho = adjoint_units.jump_ratio (-> tau_mem / tau_syn as dt -> 0);
            Bq = c A + beta Bq.
In mlGeNN's variables LambdaV = -kappa A, LambdaI = -kappa rho Bq with
kappa = (1 - alpha)/(tau_mem dt): the same jump; its gradient -tau_syn LambdaI is (1 - alpha)/dt times
ours (about 1/tau_mem), a scale Adam does not see.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True)
def _forward_sample(steps, units, counts, e0, e1, T, w_ih, w_hh, w_ho, alpha, beta, iscale, v_th, rw,
                    spk_neuron, spk_den, spk_off, v_avg, spike_counts, trace, record):
    H = w_ih.shape[1]
    O = w_ho.shape[1]
    cap = spk_neuron.shape[0]
    isyn_h = np.zeros(H)
    v_h = np.zeros(H)
    isyn_o = np.zeros(O)
    v_o = np.zeros(O)
    prev = np.empty(H, dtype=np.int32)   # hidden spikes of the previous step (kept even on overflow)
    cur = np.empty(H, dtype=np.int32)
    n_prev = 0
    n_spk = 0
    one_m_a = 1.0 - alpha
    e = e0
    spk_off[0] = 0
    for k in range(T):
        # Input bin k-1 and hidden spikes of step k-1 arrive now.
        while e < e1 and steps[e] < k - 1:
            e += 1
        while e < e1 and steps[e] == k - 1:
            c = counts[e]
            row = units[e]
            for j in range(H):
                isyn_h[j] += c * w_ih[row, j]
            e += 1
        for s in range(n_prev):
            n = prev[s]
            for j in range(H):
                isyn_h[j] += w_hh[n, j]
            for o in range(O):
                isyn_o[o] += w_ho[n, o]
        for o in range(O):
            v = alpha * v_o[o] + one_m_a * (iscale * isyn_o[o])
            v_o[o] = v
            v_avg[o] += rw[k] * v
            isyn_o[o] *= beta
            if record:
                trace[k, o] = v
        n_cur = 0
        for j in range(H):
            v = alpha * v_h[j] + one_m_a * (iscale * isyn_h[j])
            if v >= v_th:
                if n_spk < cap:
                    spk_neuron[n_spk] = j
                    spk_den[n_spk] = isyn_h[j] - v
                n_spk += 1
                spike_counts[j] += 1
                cur[n_cur] = j
                n_cur += 1
                v = 0.0
            v_h[j] = v
            isyn_h[j] *= beta
        spk_off[k + 1] = n_spk
        for s in range(n_cur):
            prev[s] = cur[s]
        n_prev = n_cur
    return n_spk


@njit(parallel=True, cache=True, nogil=True)
def forward_batch(steps, units, counts, offsets, T, w_ih, w_hh, w_ho, alpha, beta, iscale, v_th, rw,
                  spk_neuron, spk_den, spk_off, v_avg, spike_counts, trace, record, n_spikes):
    B = offsets.shape[0] - 1
    for b in prange(B):
        n_spikes[b] = _forward_sample(steps, units, counts, offsets[b], offsets[b + 1], T, w_ih, w_hh, w_ho,
                                      alpha, beta, iscale, v_th, rw, spk_neuron[b], spk_den[b], spk_off[b],
                                      v_avg[b], spike_counts[b], trace[b], record)


@njit(cache=True, nogil=True)
def forward_batch_serial(steps, units, counts, offsets, T, w_ih, w_hh, w_ho, alpha, beta, iscale, v_th, rw,
                         spk_neuron, spk_den, spk_off, v_avg, spike_counts, trace, record, n_spikes):
    """forward_batch without threads: for small problems, where waking a thread pool costs more."""
    for b in range(offsets.shape[0] - 1):
        n_spikes[b] = _forward_sample(steps, units, counts, offsets[b], offsets[b + 1], T, w_ih, w_hh, w_ho,
                                      alpha, beta, iscale, v_th, rw, spk_neuron[b], spk_den[b], spk_off[b],
                                      v_avg[b], spike_counts[b], trace[b], record)


@njit(cache=True, nogil=True, fastmath={"reassoc", "nsz", "contract"})
def _dot(w, z):
    """Sum of w * z; reassociation lets it vectorise (the result is the same on every run)."""
    acc = 0.0
    for j in range(z.shape[0]):
        acc += w[j] * z[j]
    return acc


@njit(cache=True, nogil=True)
def _backward_sample(steps, units, counts, e0, e1, T, w_hh, w_ho, alpha, beta, c, ratio, v_th,
                     spk_neuron, spk_den, spk_off, err_coef, rw, err_trace, use_trace, reg_jump,
                     g_ih, g_hh, g_ho):
    H = w_hh.shape[0]
    O = w_ho.shape[1]
    a_o = np.zeros(O)
    b_o = np.zeros(O)
    a_h = np.zeros(H)
    b_h = np.zeros(H)
    jump = np.empty(H)
    z_h = np.empty(H)
    z_o = np.empty(O)
    e = e1 - 1
    for k in range(T - 1, -1, -1):
        # a_*, b_* hold step k+1 here. Input bin k arrives at step k+1.
        while e >= e0 and steps[e] > k:
            e -= 1
        while e >= e0 and steps[e] == k:
            cnt = counts[e]
            row = units[e]
            for j in range(H):
                g_ih[row, j] += cnt * b_h[j]
            e -= 1
        s0 = spk_off[k]
        s1 = spk_off[k + 1]
        if s1 > s0:
            for o in range(O):
                z_o[o] = a_o[o] - ratio * b_o[o]
            for j in range(H):
                z_h[j] = a_h[j] - ratio * b_h[j]
        for s in range(s0, s1):
            n = spk_neuron[s]
            for o in range(O):
                g_ho[n, o] += b_o[o]
            for j in range(H):
                g_hh[n, j] += b_h[j]
            jump[s - s0] = _dot(w_ho[n], z_o) + _dot(w_hh[n], z_h)
        # Hidden adjoint back to step k; spikes of step k jump (Eventprop) and take the regulariser.
        for j in range(H):
            a_h[j] *= alpha
        for s in range(s0, s1):
            n = spk_neuron[s]
            a = a_h[n]
            a_h[n] = a + (v_th * a + jump[s - s0]) / spk_den[s] + reg_jump[n]
        for j in range(H):
            b_h[j] = c * a_h[j] + beta * b_h[j]
        for o in range(O):
            if use_trace:
                err = err_trace[k, o]
            else:
                err = err_coef[o] * rw[k]
            a_o[o] = err + alpha * a_o[o]
            b_o[o] = c * a_o[o] + beta * b_o[o]


@njit(parallel=True, cache=True, nogil=True)
def backward_batch(steps, units, counts, offsets, T, w_hh, w_ho, alpha, beta, c, ratio, v_th,
                   spk_neuron, spk_den, spk_off, err_coef, rw, err_trace, use_trace, reg_jump,
                   g_ih, g_hh, g_ho):
    """Gradients into len(g_ih) chunk accumulators: chunk q sums samples q, q + n, q + 2n, ... in
    that order, so the result does not depend on the number of threads."""
    B = offsets.shape[0] - 1
    n_chunks = g_ih.shape[0]
    for q in prange(n_chunks):
        for b in range(q, B, n_chunks):
            _backward_sample(steps, units, counts, offsets[b], offsets[b + 1], T, w_hh, w_ho, alpha, beta, c,
                             ratio, v_th, spk_neuron[b], spk_den[b], spk_off[b], err_coef[b], rw,
                             err_trace[b if use_trace else 0], use_trace, reg_jump, g_ih[q], g_hh[q], g_ho[q])


@njit(cache=True, nogil=True)
def backward_batch_serial(steps, units, counts, offsets, T, w_hh, w_ho, alpha, beta, c, ratio, v_th,
                          spk_neuron, spk_den, spk_off, err_coef, rw, err_trace, use_trace, reg_jump,
                          g_ih, g_hh, g_ho):
    """backward_batch without threads (same chunk order, so the same bits)."""
    B = offsets.shape[0] - 1
    n_chunks = g_ih.shape[0]
    for q in range(n_chunks):
        for b in range(q, B, n_chunks):
            _backward_sample(steps, units, counts, offsets[b], offsets[b + 1], T, w_hh, w_ho, alpha, beta, c,
                             ratio, v_th, spk_neuron[b], spk_den[b], spk_off[b], err_coef[b], rw,
                             err_trace[b if use_trace else 0], use_trace, reg_jump, g_ih[q], g_hh[q], g_ho[q])


@njit(parallel=True, cache=True, nogil=True)
def sum_chunks(per_sample, out):
    """out[i, j] = sum_q per_chunk[q, i, j], always in the order q = 0, 1, ... (bit-reproducible)."""
    B, R, C = per_sample.shape
    for i in prange(R):
        for j in range(C):
            out[i, j] = 0.0
        for b in range(B):
            for j in range(C):
                out[i, j] += per_sample[b, i, j]


@njit(cache=True, nogil=True)
def count_nonzero_per_sample(x, out):
    for b in range(x.shape[0]):
        n = 0
        for t in range(x.shape[1]):
            for i in range(x.shape[2]):
                if x[b, t, i] != 0:
                    n += 1
        out[b] = n


@njit(cache=True, nogil=True)
def dense_to_events(x, offsets, steps, units, counts):
    """Events of a dense (B, T, C) array in (sample, step, unit) order; offsets from the counts."""
    for b in range(x.shape[0]):
        e = offsets[b]
        for t in range(x.shape[1]):
            for i in range(x.shape[2]):
                v = x[b, t, i]
                if v != 0:
                    steps[e] = t
                    units[e] = i
                    counts[e] = v
                    e += 1
