"""CUDA engine: the fused kernels of cuda_kernels.py driven like the CPU engine (cpu_engine.py).

Per batch: one forward launch (the whole time loop), the loss and the regulariser's per-neuron
jumps on the host (the same functions the CPU engine calls), a launch zeroing the gradient sums,
one backward launch. The number of launches does not depend on T. State is float32 by default
(float64 on request: the CPU engine's spike record bit for bit in numba's simulator; a GPU's fused
multiply-adds round slightly differently); gradients accumulate in float64. docs/gpu_engine.md.
"""
from __future__ import annotations

import numpy as np

from eventprop_core.errors import ConfigError
from eventprop_core.network import Network

from ..model.readout import readout_weights
from .adjoint_units import jump_ratio
from . import regulariser
from .inputs import EventBatch
from .loss_terms import avg_readout_error, per_timestep_error
from .options import BatchResult, LossOptions, ShardSpec

DEFAULT_DTYPE = np.float32

# Largest number of spikes one sample needed so far, per (H, T), as in the CPU engine.
_capacity_seen: dict[tuple[int, int], int] = {}


def _capacity_guess(H: int, T: int) -> int:
    return max(1024, min(H * T, 32 * H), _capacity_seen.get((H, T), 0))


def _missing() -> str | None:
    """Why numba cannot compile and run the kernels here, or None (the simulator always can)."""
    from numba import config, cuda
    if config.ENABLE_CUDASIM:
        return None
    if not cuda.is_available():
        return "numba finds no CUDA GPU or driver"
    try:
        from numba.cuda.cudadrv import nvvm
        if not nvvm.is_available():
            return "numba finds no libNVVM (the CUDA compiler library)"
    except ImportError:
        pass
    return _compile_failure()


_probe: list[str | None] = []


def _compile_failure() -> str | None:
    """Why numba's CUDA target cannot compile a one-line kernel, or None (checked once per process:
    a broken combination, such as numba-cuda <= 0.30 with numpy 2.5, fails only at the first compile)."""
    if not _probe:
        import numpy
        from numba import cuda

        def probe(x):
            x[0] = 1.0

        try:
            cuda.compile_ptx(probe, "void(float64[:])")
            _probe.append(None)
        except Exception as err:  # noqa: BLE001 - any failure here means "cannot run", said in words
            why = f"numba's CUDA target ({getattr(cuda, 'implementation', '?')}) cannot compile: " \
                  f"{type(err).__name__}: {err}"
            if not hasattr(numpy, "row_stack"):
                why += f" (numba-cuda needs numpy < 2.5, this is numpy {numpy.__version__}: pip install 'numpy<2.5')"
            _probe.append(why)
    return _probe[0]


def unusable_reason() -> str | None:
    """Why "auto" may not pick CUDA (None: a real GPU that numba can compile for)."""
    from numba import config
    if config.ENABLE_CUDASIM:
        return "numba's CUDA simulator is on (NUMBA_ENABLE_CUDASIM)"
    return _missing()


def usable() -> bool:
    """Whether "auto" may pick CUDA: a real GPU that numba can compile for (never the simulator)."""
    return unusable_reason() is None


def cuda_module():
    """numba.cuda, or a ConfigError saying how to get it (the simulator counts as available)."""
    why = _missing()
    if why:
        raise ConfigError(f"the fused CUDA engine cannot run: {why}; install numba's CUDA target with "
                          "pip install 'eventprop-loihi[cuda]' (numba-cuda[cu13]) or use --device cpu")
    from numba import cuda
    return cuda


def on_device(name: str):
    """Context that makes "cuda:N" numba's current device ("cuda" is device 0)."""
    import contextlib
    cuda = cuda_module()
    from numba import config
    if config.ENABLE_CUDASIM:
        return contextlib.nullcontext()
    return cuda.gpus[int(name[5:]) if ":" in name else 0]


def threads_per_block(H: int) -> int:
    from .cuda_kernels import GROUP, MAX_THREADS
    return int(min(MAX_THREADS, max(GROUP, -(-H // GROUP) * GROUP)))


def input_bin_offsets(ev: EventBatch) -> np.ndarray:
    """(B, T + 1) int64: events of sample b in bin t are ev.units[off[b, t]:off[b, t + 1]]."""
    B, T = ev.batch_size, ev.timesteps
    sample = np.repeat(np.arange(B, dtype=np.int64), np.diff(ev.offsets))
    keys = sample * (T + 1) + ev.steps
    queries = np.arange(B, dtype=np.int64)[:, None] * (T + 1) + np.arange(T + 1)[None, :]
    return np.searchsorted(keys, queries.ravel(), side="left").reshape(B, T + 1).astype(np.int64)


class DeviceBatch:
    """A batch's input events and the network's weights on the device; counts device bytes."""

    def __init__(self, net: Network, ev: EventBatch, dtype, threads: int | None = None):
        cuda = cuda_module()
        self.cuda = cuda
        self.dtype = np.dtype(dtype)
        self.bytes = 0
        self.input_bytes = 0      # the batch's input events (data, not engine state)
        p = net.params
        self.B, self.T = ev.batch_size, ev.timesteps
        self.w_ih, self.w_hh, self.w_ho = (self.put(np.ascontiguousarray(net.weights[k], np.float32))
                                           for k in ("input_hidden", "hidden_hidden", "hidden_output"))
        self.H, self.O = net.n_hidden, net.n_output
        self.in_off = self.put(input_bin_offsets(ev))
        self.units = self.put(np.ascontiguousarray(ev.units, np.int32) if len(ev.units) else np.zeros(1, np.int32))
        self.counts = self.put(np.ascontiguousarray(ev.counts, self.dtype) if len(ev.counts) else np.zeros(1, self.dtype))
        self.input_bytes = self.bytes - self.w_ih.nbytes - self.w_hh.nbytes - self.w_ho.nbytes - self.in_off.nbytes
        self.rw = self.put(readout_weights(p, self.T).astype(np.float64))
        f = self.dtype.type
        self.alpha, self.beta, self.iscale = f(p.alpha), f(p.beta), f(p.i_scale)
        self.one_m_a, self.v_th = f(1.0 - p.alpha), f(p.v_thresh)
        self.c, self.ratio = f((1.0 - p.alpha) * p.i_scale), f(jump_ratio(p))
        self.nt = threads or threads_per_block(self.H)
        from .cuda_kernels import GROUP, MAX_THREADS
        if self.nt % GROUP or not GROUP <= self.nt <= MAX_THREADS:
            raise ConfigError(f"threads per block must be a multiple of {GROUP} in [{GROUP}, {MAX_THREADS}], got {self.nt}")

    def put(self, host: np.ndarray):
        self.bytes += host.nbytes
        return self.cuda.to_device(host)

    def empty(self, shape, dtype=None):
        """Uninitialised device memory (no host copy): the kernels set what they read."""
        a = _device_empty(self.cuda, shape, np.dtype(dtype or self.dtype))
        self.bytes += a.nbytes
        return a


def _device_empty(cuda, shape, dtype):
    return cuda.device_array(shape, dtype)


def launch(kernel, blocks: int, threads: int, *args) -> int:
    """kernel[blocks, threads'](*args) with threads' = threads lowered, in whole 32-thread groups, to
    what the compiled kernel's registers allow (a 1024-thread block needs <= 64 registers per
    thread; seen on an H200: the forward kernel, float32 and float64, needs more). Returns threads'."""
    from numba import config

    from .cuda_kernels import GROUP
    if not config.ENABLE_CUDASIM:
        kernel = kernel.specialize(*args)          # compiled once per argument types, then cached
        threads = max(GROUP, min(threads, kernel.get_max_threads_per_block() // GROUP * GROUP))
    kernel[blocks, threads](*args)
    return threads


def _zero(cuda, *arrays) -> None:
    from numba import config

    from .cuda_kernels import zero_kernel
    n = max(a.size for a in arrays)
    blocks, threads = (1, 32) if config.ENABLE_CUDASIM else (max(1, min(1024, -(-n // 256))), 256)
    zero_kernel[blocks, threads](*arrays)


class Forward:
    """Device results of the forward pass kept for the backward pass (spike record, not states)."""

    def __init__(self, d: DeviceBatch, record_trace: bool, capacity: int):
        B, T, H, O = d.B, d.T, d.H, d.O
        self.capacity = capacity
        slots = max(capacity, 1)            # no zero-size device arrays (inference keeps no record)
        self.spk_neuron = d.empty((B, slots), np.int32)
        self.spk_den = d.empty((B, slots))
        self.spk_off = d.empty((B, T + 1), np.int32)
        scratch = [d.empty((B, H)), d.empty((B, H)), d.empty((B, O)), d.empty((B, O)),
                   d.empty((B, 2, H), np.int32)]
        self.v_avg_d = d.empty((B, O), np.float64)
        self.counts_d = d.empty((B, H), np.int32)
        self.trace_d = d.empty((B, T if record_trace else 1, O))
        n_spikes = d.empty(B, np.int32)
        from .cuda_kernels import forward_kernel
        self.threads = launch(forward_kernel, B, d.nt, d.in_off, d.units, d.counts, T, d.w_ih, d.w_hh, d.w_ho,
                              d.alpha, d.one_m_a, d.beta, d.iscale, d.v_th, d.rw, *scratch, self.spk_neuron,
                              self.spk_den, self.spk_off, self.v_avg_d, self.counts_d, self.trace_d, record_trace,
                              n_spikes)
        self.n_spikes = n_spikes.copy_to_host().astype(np.int64)
        self.v_avg = self.v_avg_d.copy_to_host()
        self.counts = self.counts_d.copy_to_host().astype(np.int64)
        self.trace = self.trace_d.copy_to_host().astype(np.float64) if record_trace else None
        del scratch

    @property
    def overflowed(self) -> bool:
        return bool(len(self.n_spikes)) and int(self.n_spikes.max()) > self.capacity


def forward(net: Network, ev: EventBatch, *, record_trace: bool = False, record_spikes: bool = True,
            capacity: int | None = None, dtype=DEFAULT_DTYPE, batch: DeviceBatch | None = None,
            threads: int | None = None) -> Forward:
    """Forward pass on the device; reruns with more room when a spike record overflows.
    record_spikes=False (inference) keeps no spike record at all. threads: per block (default: one
    per hidden neuron up to 1024; fewer makes each thread run several neurons, for tests)."""
    d = batch or DeviceBatch(net, ev, dtype, threads)
    if not record_spikes:
        return Forward(d, record_trace, 0)
    capacity = capacity or _capacity_guess(d.H, d.T)
    while True:
        fw = Forward(d, record_trace, capacity)
        if not fw.overflowed:
            return fw
        capacity = int(fw.n_spikes.max()) + int(fw.n_spikes.max()) // 4
        _capacity_seen[d.H, d.T] = max(_capacity_seen.get((d.H, d.T), 0), capacity)


def predict(net: Network, ev: EventBatch, dtype=DEFAULT_DTYPE) -> tuple[np.ndarray, np.ndarray]:
    """(VAvg (B, O) float64, hidden spike counts (B, H) int64): the forward kernel, no spike record."""
    fw = forward(net, ev, record_spikes=False, dtype=dtype)
    return fw.v_avg, fw.counts


def compute(net: Network, ev: EventBatch, labels: np.ndarray, opts: LossOptions, dtype=DEFAULT_DTYPE,
            capacity: int | None = None, threads: int | None = None, shard: ShardSpec | None = None
            ) -> BatchResult:
    """Loss and gradients of one batch, as cpu_engine.compute (the reference it mirrors).
    shard (data-parallel part of a global batch, see ShardSpec): the loss is normalised by the global
    batch, the regulariser sees the global spike counts, and the float64 gradient comes back as one
    unsummed chunk (1, rows, cols), as in torch_engine."""
    p = net.params
    d = DeviceBatch(net, ev, dtype, threads)
    B, T, H, O = d.B, d.T, d.H, d.O
    per_step = opts.loss == "per_timestep"
    fw = forward(net, ev, record_trace=per_step, capacity=capacity, batch=d)
    B_all = B if shard is None else shard.global_size
    if per_step:
        loss, err_trace = per_timestep_error(fw.trace, labels, B_all)
        err_coef = np.zeros((B, O))
    else:
        loss, err_coef = avg_readout_error(fw.v_avg, labels, B_all)
        err_trace = np.zeros((1, 1, O))
    batch_counts = fw.counts.sum(axis=0)
    if shard is not None:
        batch_counts = np.asarray(shard.reduce_counts(batch_counts), dtype=np.int64)
    reg_jump = regulariser.adjoint_jumps(batch_counts, B_all, opts, p)
    g_ih = d.empty((net.n_input, H), np.float64)
    g_hh = d.empty((H, H), np.float64)
    g_ho = d.empty((H, O), np.float64)
    _zero(d.cuda, g_ih, g_hh, g_ho)
    scratch = [d.empty((B, H)) for _ in range(3)] + [d.empty((B, O)) for _ in range(3)]
    mark = d.empty((B, H), np.int32)
    from .cuda_kernels import backward_kernel
    launch(backward_kernel, B, d.nt, d.in_off, d.units, d.counts, T, d.w_hh, d.w_ho, d.alpha, d.beta, d.c,
           d.ratio, d.v_th, fw.spk_neuron, fw.spk_den, fw.spk_off, d.put(err_coef.astype(d.dtype)), d.rw,
           d.put(err_trace.astype(d.dtype)), per_step, d.put(reg_jump.astype(d.dtype)), *scratch, mark,
           g_ih, g_hh, g_ho)
    grads = {name: g.copy_to_host() for name, g in (("input_hidden", g_ih), ("hidden_hidden", g_hh),
                                                      ("hidden_output", g_ho))}
    extras = {"n_hidden_spikes": int(fw.counts.sum()), "device_bytes": d.bytes,
              "device_input_bytes": d.input_bytes, "spike_capacity": fw.capacity}
    if shard is None:
        grads = {k: v.astype(np.float32) for k, v in grads.items()}
    else:
        grads = {k: v[None] for k, v in grads.items()}
        extras["v_avg"] = np.asarray(fw.v_avg, np.float64)
    return BatchResult(loss, grads, fw.v_avg.astype(np.float32), fw.counts,
                       reg_loss=regulariser.penalty(batch_counts, B_all, opts, p), extras=extras)
