"""The same Eventprop engine in PyTorch: batched per-step tensor ops, for CUDA (and on the CPU as a
twin of the numba engine, to check one against the other).

Hidden spikes are kept as events in a per-neuron ring of `capacity` slots (step and I - V of each
spike), as mlGeNN does, so memory does not grow with T. Gradients of the input and recurrent weights
are accumulated one chunk of steps at a time by a matmul.
"""
from __future__ import annotations

import numpy as np
import torch

from ..data.events import SpikeDataset
from eventprop_core.errors import DataError
from ..model.readout import readout_weights
from eventprop_core.network import Network
from . import regulariser
from .adjoint_units import jump_ratio
from .inputs import check_dataset, check_labels, check_timesteps
from .options import BatchResult, LossOptions, ShardSpec

CHUNK = 64


def _dense_input(net: Network, inputs, device, dtype) -> torch.Tensor:
    if isinstance(inputs, SpikeDataset):
        check_dataset(net, inputs)
        inputs = inputs.dense(np.arange(len(inputs)))
    x = torch.as_tensor(inputs)
    if x.ndim == 3 and x.shape[0] == 0:
        raise DataError("the batch is empty: give at least one sample")
    if x.ndim != 3:
        raise DataError(f"input spikes must be a (batch, timesteps, channels) array, got shape {tuple(x.shape)}")
    if x.shape[2] != net.n_input:
        raise DataError(f"input has {x.shape[2]} channels but the network expects {net.n_input}")
    check_timesteps(net, int(x.shape[1]))
    return x.to(device=device, dtype=dtype)


class _Forward:
    """Forward pass state kept for the backward pass: spike rings, counts, readout."""

    def __init__(self, net, x, capacity, record_trace):
        p = net.params
        dev, dt = x.device, x.dtype
        B, T, _ = x.shape
        self.T = T
        w_ih, w_hh, w_ho = (torch.as_tensor(net.weights[k], device=dev, dtype=dt)
                            for k in ("input_hidden", "hidden_hidden", "hidden_output"))
        H, O = w_hh.shape[0], w_ho.shape[1]
        rw = readout_weights(p, T).tolist()
        alpha, beta, iscale, one_m_a = p.alpha, p.beta, p.i_scale, 1.0 - p.alpha
        isyn_h = torch.zeros(B, H, device=dev, dtype=dt)
        v_h = torch.zeros_like(isyn_h)
        isyn_o = torch.zeros(B, O, device=dev, dtype=dt)
        v_o = torch.zeros_like(isyn_o)
        v_avg = torch.zeros(B, O, device=dev, dtype=torch.float64)
        s = torch.zeros(B, H, device=dev, dtype=dt)
        count = torch.zeros(B, H, device=dev, dtype=torch.int64)
        # Slot `capacity` is a scratch slot that non-spiking neurons write to.
        ring_step = torch.full((B, H, capacity + 1), -1, device=dev, dtype=torch.int32)
        ring_den = torch.zeros(B, H, capacity + 1, device=dev, dtype=dt)
        scratch = torch.full((B, H, 1), capacity, device=dev, dtype=torch.int64)
        trace = torch.zeros(B, T, O, device=dev, dtype=dt) if record_trace else None
        for k0 in range(0, T, CHUNK):
            k1 = min(T, k0 + CHUNK)
            drive = torch.zeros(B, k1 - k0, H, device=dev, dtype=dt)
            lo = max(k0 - 1, 0)
            if k1 - 1 > lo:   # step k receives input bin k - 1
                drive[:, (lo + 1) - k0:] = x[:, lo:k1 - 1] @ w_ih
            for k in range(k0, k1):
                isyn_o += s @ w_ho
                v_o = alpha * v_o + one_m_a * (iscale * isyn_o)
                v_avg += rw[k] * v_o.to(torch.float64)
                isyn_o *= beta
                if trace is not None:
                    trace[:, k] = v_o
                isyn_h += drive[:, k - k0] + s @ w_hh
                v = alpha * v_h + one_m_a * (iscale * isyn_h)
                spk = v >= p.v_thresh
                slot = torch.where(spk.unsqueeze(-1), count.clamp(max=capacity - 1).unsqueeze(-1), scratch)
                ring_step.scatter_(2, slot, torch.full_like(slot, k, dtype=torch.int32))
                ring_den.scatter_(2, slot, (isyn_h - v).unsqueeze(-1))
                count += spk
                v_h = torch.where(spk, torch.zeros_like(v), v)
                isyn_h *= beta
                s = spk.to(dt)
        self.v_avg, self.count, self.trace = v_avg, count, trace
        self.ring_step, self.ring_den = ring_step, ring_den
        self.w_hh, self.w_ho = w_hh, w_ho


def _errors(fw: _Forward, labels: torch.Tensor, opts: LossOptions, batch_size: int | None = None):
    """Loss and the per-step error source (callable k -> (B, O)) of dL/dV_readout; the error is
    normalised by batch_size (default B; a data-parallel shard passes the global batch's size)."""
    B = labels.shape[0]
    n = B if batch_size is None else batch_size
    if opts.loss == "per_timestep":
        logp = torch.log_softmax(fw.trace.to(torch.float64), dim=-1)          # (B, T, O)
        T = logp.shape[1]
        loss = -logp.gather(2, labels.view(B, 1, 1).expand(B, T, 1)).mean()
        err = torch.softmax(fw.trace.to(torch.float64), dim=-1)
        err.scatter_add_(2, labels.view(B, 1, 1).expand(B, T, 1),
                         -torch.ones(B, T, 1, dtype=err.dtype, device=err.device))
        err = (err / (n * T)).to(fw.trace.dtype)
        return float(loss), lambda k: err[:, k]
    logp = torch.log_softmax(fw.v_avg, dim=-1)
    loss = -logp.gather(1, labels.view(B, 1)).mean()
    coef = torch.softmax(fw.v_avg, dim=-1)
    coef[torch.arange(B, device=coef.device), labels] -= 1.0
    coef = (coef / n).to(fw.ring_den.dtype)
    return float(loss), coef


# Most spikes one neuron needed in a trial so far, per (H, T): later batches start with that room.
_capacity_seen: dict[tuple[int, int], int] = {}


def compute(net: Network, inputs, labels, opts: LossOptions, device="cuda", dtype=None,
            capacity: int | None = None, shard: ShardSpec | None = None) -> BatchResult:
    """capacity: spike slots per neuron and sample (default: 128, or what earlier batches needed).
    shard: see ShardSpec; this engine returns its float64 gradient as one chunk (1, rows, cols)."""
    dev = torch.device(device)
    dtype = dtype or (torch.float64 if dev.type == "cpu" else torch.float32)
    p = net.params
    x = _dense_input(net, inputs, dev, dtype)
    B, T, n_in = x.shape
    labels_np = check_labels(labels.cpu().numpy() if hasattr(labels, "cpu") else labels, B, net.n_output)
    key = (net.n_hidden, T)
    capacity = capacity or max(128, _capacity_seen.get(key, 0))
    while True:
        fw = _Forward(net, x, capacity, opts.loss == "per_timestep")
        most = int(fw.count.max()) if fw.count.numel() else 0
        if most <= capacity:
            break
        capacity = most + most // 4
        _capacity_seen[key] = max(_capacity_seen.get(key, 0), capacity)
    labels_t = torch.as_tensor(labels_np, device=dev)
    B_all = B if shard is None else shard.global_size
    loss, err = _errors(fw, labels_t, opts, B_all)
    counts_np = fw.count.cpu().numpy()
    batch_counts = counts_np.sum(axis=0)
    extras = {"n_hidden_spikes": int(batch_counts.sum())}
    if shard is not None:
        batch_counts = np.asarray(shard.reduce_counts(batch_counts), dtype=np.int64)
    reg = torch.as_tensor(regulariser.adjoint_jumps(batch_counts, B_all, opts, p), device=dev, dtype=dtype)
    g_ih, g_hh, g_ho = _backward(net, x, fw, err, reg)
    grads = {"input_hidden": g_ih, "hidden_hidden": g_hh, "hidden_output": g_ho}
    if shard is None:
        grads = {k: v.to(torch.float32).cpu().numpy() for k, v in grads.items()}
    else:
        grads = {k: v.cpu().numpy()[None] for k, v in grads.items()}
        extras["v_avg"] = fw.v_avg.cpu().numpy()
    return BatchResult(loss, grads, fw.v_avg.to(torch.float32).cpu().numpy(), counts_np.astype(np.int64),
                       reg_loss=regulariser.penalty(batch_counts, B_all, opts, p), extras=extras)


def _backward(net, x, fw: _Forward, err, reg):
    p = net.params
    dev, dt = x.device, x.dtype
    B, T, n_in = x.shape
    H, O = fw.w_hh.shape[0], fw.w_ho.shape[1]
    alpha, beta = p.alpha, p.beta
    c = (1.0 - p.alpha) * p.i_scale
    ratio = jump_ratio(p)
    rw = readout_weights(p, T).tolist()
    per_step = callable(err)
    w_hh_t, w_ho_t = fw.w_hh.t(), fw.w_ho.t()
    a_h = torch.zeros(B, H, device=dev, dtype=dt)
    b_h = torch.zeros_like(a_h)
    a_o = torch.zeros(B, O, device=dev, dtype=dt)
    b_o = torch.zeros_like(a_o)
    ptr = (fw.count - 1).clamp(max=fw.ring_step.shape[2] - 2)
    g_ih = torch.zeros(n_in, H, device=dev, dtype=torch.float64)
    g_hh = torch.zeros(H, H, device=dev, dtype=torch.float64)
    g_ho = torch.zeros(H, O, device=dev, dtype=torch.float64)
    for k1 in range(T, 0, -CHUNK):
        k0 = max(0, k1 - CHUNK)
        n = k1 - k0
        bh_chunk = torch.empty(B, n, H, device=dev, dtype=dt)     # b_h of step k + 1, for step k
        bo_chunk = torch.empty(B, n, O, device=dev, dtype=dt)
        sk_chunk = torch.empty(B, n, H, device=dev, dtype=dt)
        for k in range(k1 - 1, k0 - 1, -1):
            j = k - k0
            bh_chunk[:, j] = b_h
            bo_chunk[:, j] = b_o
            idx = ptr.clamp(min=0).unsqueeze(-1)
            sk = (ptr >= 0) & (fw.ring_step.gather(2, idx).squeeze(-1) == k)
            sk_chunk[:, j] = sk
            rev = (a_o - ratio * b_o) @ w_ho_t + (a_h - ratio * b_h) @ w_hh_t
            den = fw.ring_den.gather(2, idx).squeeze(-1)
            a_h = alpha * a_h
            a_h = torch.where(sk, a_h + (p.v_thresh * a_h + rev) / torch.where(sk, den, torch.ones_like(den)) + reg, a_h)
            ptr = ptr - sk.to(ptr.dtype)
            b_h = c * a_h + beta * b_h
            e_k = err(k) if per_step else err * rw[k]
            a_o = e_k + alpha * a_o
            b_o = c * a_o + beta * b_o
        sk2 = sk_chunk.reshape(B * n, H).t()
        g_hh += (sk2 @ bh_chunk.reshape(B * n, H)).to(torch.float64)
        g_ho += (sk2 @ bo_chunk.reshape(B * n, O)).to(torch.float64)
        g_ih += (x[:, k0:k1].reshape(B * n, n_in).t() @ bh_chunk.reshape(B * n, H)).to(torch.float64)
    return g_ih, g_hh, g_ho
