"""Fused CUDA kernels of the Eventprop engine: the GPU twin of numba_kernels (the CPU engine).

Same recurrences, same event-driven propagation, the whole time loop inside one launch:
one sample per thread block, hidden neurons across its threads (thread t owns neurons t, t + nt,
...), a block barrier per time step. docs/gpu_engine.md gives the design; the same source runs
in numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1), where tests compare it with the CPU engine.

Forward step k (mirrors numba_kernels._forward_sample, in the same order of additions):
  readout o:  isyn_o += sum of w_ho[n, o] over the hidden spikes n of step k - 1; V update; VAvg
  hidden j:   isyn_h += input bin k - 1 (events in stored order), then w_hh[n, j] of the spikes of
              step k - 1 in ascending n; V update; threshold
  spikes of step k are compacted in ascending neuron order (a block scan in 32-neuron groups),
  appended to the sample's spike record (neuron, I - V) and to a double-buffered list that step
  k + 1 propagates. Only spike events are stored for the backward pass, never state trajectories.
Backward step k (mirrors numba_kernels._backward_sample):
  phase 1, thread per neuron: dL/dW accumulation (float64 atomics), z = A - (tau_mem/tau_syn) Bq
  phase 2, one 32-thread group per spike of step k: the jump's dot products over the weight row,
           reduced through shared memory; the spiking neuron's A takes Eventprop's jump
  phase 3, thread per neuron: A decay where no spike, Bq update; readout adjoints.
Steps without hidden spikes need no barrier in the backward pass.
"""
from __future__ import annotations

from numba import cuda, float64, int32

MAX_THREADS = 1024          # threads per block (the CUDA limit); more neurons run in rounds
GROUP = 32                  # neurons per scan group / threads per spike in the backward dot products
MAX_GROUPS = MAX_THREADS // GROUP


@cuda.jit
def forward_kernel(in_off, units, counts, T, w_ih, w_hh, w_ho, alpha, one_m_a, beta, iscale, v_th, rw,
                   isyn_h, v_h, isyn_o, v_o, lists, spk_neuron, spk_den, spk_off, v_avg, spike_counts,
                   trace, record, n_spikes):
    """Block b runs sample b for T steps. in_off[b, t]: first input event of bin t (events in
    global arrays units/counts). lists: (B, 2, H) scratch for the spikes of the last two steps.
    spk_*: the spike record (capacity = spk_neuron.shape[1]; counting goes on past it, so the host
    can rerun with room for all). State arrays start at zero."""
    b = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    H = w_ih.shape[1]
    O = w_ho.shape[1]
    cap = spk_neuron.shape[1]
    flags = cuda.shared.array(MAX_THREADS, int32)
    dens = cuda.shared.array(MAX_THREADS, float64)
    group_cnt = cuda.shared.array(MAX_GROUPS, int32)
    n_groups = nt // GROUP
    n_rounds = (H + nt - 1) // nt
    for j in range(tid, H, nt):     # every array read is set here: the host allocates uninitialised
        isyn_h[b, j] = 0
        v_h[b, j] = 0
        spike_counts[b, j] = 0
    for o in range(tid, O, nt):
        isyn_o[b, o] = 0
        v_o[b, o] = 0
        v_avg[b, o] = 0
    n_prev = 0              # every thread keeps the same counts: no shared scalar to race on
    n_total = 0
    if tid == 0:
        spk_off[b, 0] = 0
    for k in range(T):
        prev = (k + 1) % 2
        cur = k % 2
        for o in range(tid, O, nt):
            acc = isyn_o[b, o]
            for s in range(n_prev):
                acc += w_ho[lists[b, prev, s], o]
            v = alpha * v_o[b, o] + one_m_a * (iscale * acc)
            v_o[b, o] = v
            v_avg[b, o] += rw[k] * v
            isyn_o[b, o] = acc * beta
            if record:
                trace[b, k, o] = v
        step_count = 0
        for r in range(n_rounds):
            j = r * nt + tid
            flag = 0
            if j < H:
                acc = isyn_h[b, j]
                if k >= 1:
                    for e in range(in_off[b, k - 1], in_off[b, k]):
                        acc += counts[e] * w_ih[units[e], j]
                for s in range(n_prev):
                    acc += w_hh[lists[b, prev, s], j]
                v = alpha * v_h[b, j] + one_m_a * (iscale * acc)
                if v >= v_th:
                    flag = 1
                    dens[tid] = acc - v
                    spike_counts[b, j] += 1
                    v_h[b, j] = 0
                else:
                    v_h[b, j] = v
                isyn_h[b, j] = acc * beta
            flags[tid] = flag
            n_round = cuda.syncthreads_count(flag)
            if n_round > 0:
                if tid < n_groups:
                    c = 0
                    for lane in range(GROUP * tid, GROUP * tid + GROUP):
                        c += flags[lane]
                    group_cnt[tid] = c
                cuda.syncthreads()
                if tid < n_groups:
                    pos = step_count
                    for g in range(tid):
                        pos += group_cnt[g]
                    for lane in range(GROUP * tid, GROUP * tid + GROUP):
                        if flags[lane] != 0:
                            n = r * nt + lane
                            lists[b, cur, pos] = n
                            slot = n_total + pos
                            if slot < cap:
                                spk_neuron[b, slot] = n
                                spk_den[b, slot] = dens[lane]
                            pos += 1
                step_count += n_round
                cuda.syncthreads()
        n_total += step_count
        n_prev = step_count
        if tid == 0:
            spk_off[b, k + 1] = n_total
    if tid == 0:
        n_spikes[b] = n_total


@cuda.jit
def backward_kernel(in_off, units, counts, T, w_hh, w_ho, alpha, beta, c, ratio, v_th,
                    spk_neuron, spk_den, spk_off, err_coef, rw, err_trace, use_trace, reg_jump,
                    a_h, b_h, z_h, a_o, b_o, z_o, mark, g_ih, g_hh, g_ho):
    """Block b runs sample b backwards from step T - 1. a_*, b_* start at zero, mark at -1
    (mark[b, n] = the step of n's jump being applied), set here; g_* are float64 batch sums
    (atomics) that the host zeroes first (zero_kernel)."""
    b = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    H = w_hh.shape[0]
    O = w_ho.shape[1]
    part = cuda.shared.array(MAX_THREADS, float64)
    n_warps = nt // GROUP
    lane = tid % GROUP
    warp = tid // GROUP
    for j in range(tid, H, nt):
        a_h[b, j] = 0
        b_h[b, j] = 0
        mark[b, j] = -1
    for o in range(tid, O, nt):
        a_o[b, o] = 0
        b_o[b, o] = 0
    for k in range(T - 1, -1, -1):
        # a_*, b_* hold step k + 1 here. Input bin k arrives at step k + 1.
        s0 = spk_off[b, k]
        s1 = spk_off[b, k + 1]
        for j in range(tid, H, nt):
            bh = b_h[b, j]
            for e in range(in_off[b, k], in_off[b, k + 1]):
                cuda.atomic.add(g_ih, (units[e], j), counts[e] * bh)
            for s in range(s0, s1):
                cuda.atomic.add(g_hh, (spk_neuron[b, s], j), bh)
            if s1 > s0:
                z_h[b, j] = a_h[b, j] - ratio * bh
        for o in range(tid, O, nt):
            bo = b_o[b, o]
            for s in range(s0, s1):
                cuda.atomic.add(g_ho, (spk_neuron[b, s], o), bo)
            z_o[b, o] = a_o[b, o] - ratio * bo
        if s1 > s0:
            cuda.syncthreads()
            n_pass = (s1 - s0 + n_warps - 1) // n_warps
            for p in range(n_pass):
                s = s0 + p * n_warps + warp
                acc = float64(0.0)     # float64 sums in float32 mode too (and in the simulator)
                if s < s1:
                    n = spk_neuron[b, s]
                    for jj in range(lane, H, GROUP):
                        acc += w_hh[n, jj] * z_h[b, jj]
                    for oo in range(lane, O, GROUP):
                        acc += w_ho[n, oo] * z_o[b, oo]
                part[tid] = acc
                cuda.syncthreads()
                if s < s1 and lane == 0:
                    n = spk_neuron[b, s]
                    jump = float64(0.0)
                    for q in range(GROUP):
                        jump += part[tid + q]
                    a = alpha * a_h[b, n]
                    a_h[b, n] = a + (v_th * a + jump) / spk_den[b, s] + reg_jump[n]
                    mark[b, n] = k
                cuda.syncthreads()
        for j in range(tid, H, nt):
            if mark[b, j] != k:
                a_h[b, j] = alpha * a_h[b, j]
            b_h[b, j] = c * a_h[b, j] + beta * b_h[b, j]
        for o in range(tid, O, nt):
            if use_trace:
                err = err_trace[b, k, o]
            else:
                err = err_coef[b, o] * rw[k]
            a = err + alpha * a_o[b, o]
            a_o[b, o] = a
            b_o[b, o] = c * a + beta * b_o[b, o]


@cuda.jit
def zero_kernel(x, y, z):
    """x, y, z (2-D) = 0, grid-stride (the gradient sums, before the backward launch)."""
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for a in (x, y, z):
        C = a.shape[1]
        for i in range(start, a.shape[0] * C, stride):
            a[i // C, i % C] = 0
