"""Training-step speed and memory of the Eventprop engine (not a test).

Prints one `name: value` line per figure:
  cpu_ms_per_train_sample       forward + backward, 700-256-20, T=1000, batch 32, SHD-like activity
  cuda_*                        the fused CUDA engine (only where CUDA is present; --cuda-only for just these):
                                SHD-shape epoch seconds and samples/s (8156 samples, 700-H-20, T=1000,
                                hidden 256/1024, batch 32/256; engine time: forward + backward with
                                the host loss, no Adam step or data loading), the unfused torch path
                                in the same run as a ratio, and the engine's device memory (sum of
                                its device arrays for one batch) for T=250..2000
  mem_*                         peak memory above the process's baseline after setup, Eventprop vs a
                                BPTT baseline (autograd through time, surrogate gradient), T=250..2000,
                                each in a fresh subprocess (CPU: peak RSS via VmHWM after resetting it;
                                CUDA: torch.cuda.max_memory_allocated). Input data is made before the
                                baseline and not counted. The main scan gives every sample ~1 s of
                                SHD-like activity (an utterance; T < 1000 crops it, T > 1000 adds
                                silence, as with real SHD files); mem_eventprop_constant_rate_* keeps
                                the input active for all T steps (spike records then grow with T).
  tail_*                        ms/sample for hidden 128..1024 and for several input activity levels
Usage: python benchmarks/train_speed.py [--quick] [--cuda-only]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

SHD_EPOCH = 8156


def shd_like(B: int, T: int, n_in: int, rate: float, seed: int = 0, active_steps: int | None = None):
    """Poisson input events (rate = fraction of inputs active per step) as a SpikeDataset.

    With active_steps, input fires only in the first active_steps steps (silence after)."""
    from eventprop_pipeline.data import from_events
    rng = np.random.default_rng(seed)
    A = T if active_steps is None else min(T, active_steps)
    n = rng.binomial(B * A * n_in, rate)
    flat = rng.choice(B * A * n_in, size=n, replace=False)
    sample, rest = np.divmod(flat, A * n_in)
    step, unit = np.divmod(rest, n_in)
    return from_events(sample, step, unit, rng.integers(0, 20, B), n_channels=n_in, n_classes=20,
                       timesteps=T, dt=1.0, name="shd-like")


def network(H: int, T: int, O: int = 20, n_in: int = 700):
    from eventprop_pipeline import ModelParams, Network
    return Network.initialise(n_in, H, O, params=ModelParams(timesteps=T), seed=1)


def time_train_step(H=256, T=1000, B=32, rate=0.01, device="cpu", repeats=3, warm_up=True):
    """(best wall ms/sample, CPU ms/sample of that run, hidden spikes per neuron per trial).

    device: cpu, cuda (the fused engine) or torch-cuda / torch-cpu (the unfused torch path)."""
    from eventprop_pipeline.eventprop import LossOptions, compute_batch
    net = network(H, T)
    data = shd_like(B, T, 700, rate)
    inputs = data      # the CPU and fused CUDA engines take events; only the torch path wants dense
    torch_path = device.startswith("torch-")
    if torch_path:
        import torch
        from eventprop_pipeline.eventprop import torch_engine
        where = device[len("torch-"):]
        inputs = torch.as_tensor(data.dense(np.arange(B)), device=where)
        compute_batch = lambda net, x, y, opts, device: torch_engine.compute(net, x, y, opts, device=where)  # noqa: E731

    def sync():
        if device == "torch-cuda":
            torch.cuda.synchronize()

    result = compute_batch(net, inputs, data.labels, LossOptions(), device=device) if warm_up else None
    best = (float("inf"), 0.0)
    for _ in range(repeats):
        sync()
        c0, t0 = time.process_time(), time.perf_counter()
        result = compute_batch(net, inputs, data.labels, LossOptions(), device=device)
        sync()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        best = min(best, (wall / B * 1e3, cpu / B * 1e3))
    return best[0], best[1], float(result.hidden_spike_counts.mean())


def cuda_report(quick: bool, hidden=(256, 1024), batches=(32, 256), T=1000, mem_lengths=(250, 500, 1000, 2000),
                torch_device="torch-cuda") -> None:
    """The fused CUDA engine's figures (docs/gpu_engine.md), with the torch path as the baseline
    (the keyword arguments shrink it for the simulator smoke test)."""
    from eventprop_pipeline.eventprop import LossOptions, compute_batch, cuda_engine
    from eventprop_pipeline.eventprop.inputs import to_events
    cuda = cuda_engine.cuda_module()
    if quick:
        T, mem_lengths = min(T, 200), mem_lengths[:2]
    import torch
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "none (numba's CUDA simulator)"
    print(f"cuda_device: {name}")
    repeats = 1 if quick else 3
    fused = {}
    for H in hidden:
        for B in batches:
            wall, _, rate = time_train_step(H=H, T=T, B=B, device="cuda", repeats=repeats)
            fused[H, B] = wall
            print(f"cuda_fused_epoch_s_h{H}_b{B}: {wall * SHD_EPOCH / 1e3:.3f}")
            print(f"cuda_fused_samples_per_s_h{H}_b{B}: {1e3 / wall:.0f}")
            print(f"cuda_fused_spikes_per_neuron_h{H}_b{B}: {rate:.1f}")
    old = cuda_engine.DEFAULT_DTYPE
    cuda_engine.DEFAULT_DTYPE = np.float64
    try:
        wall, _, _ = time_train_step(H=hidden[0], T=T, B=batches[0], device="cuda", repeats=repeats)
    finally:
        cuda_engine.DEFAULT_DTYPE = old
    print(f"cuda_fused_float64_epoch_s_h{hidden[0]}_b{batches[0]}: {wall * SHD_EPOCH / 1e3:.3f}")
    time_train_step(H=hidden[0], T=20, B=batches[0], device=torch_device, repeats=1)     # CUDA/cuBLAS start-up
    for H in hidden:
        wall, _, _ = time_train_step(H=H, T=T, B=batches[0], device=torch_device, repeats=1, warm_up=False)
        print(f"cuda_torch_epoch_s_h{H}_b{batches[0]}: {wall * SHD_EPOCH / 1e3:.2f}")
        print(f"cuda_fused_speedup_over_torch_h{H}_b{batches[0]}: {wall / fused[H, batches[0]]:.3g}")
    # The CPU engine (numba, all cores of this machine) on the same batch: the same-run baseline.
    H0, B0 = hidden[0], batches[0]
    wall, _, _ = time_train_step(H=H0, T=T, B=B0, device="cpu", repeats=repeats)
    print(f"cuda_cpu_engine_epoch_s_h{H0}_b{B0}: {wall * SHD_EPOCH / 1e3:.2f}")
    print(f"cuda_fused_speedup_over_cpu_engine_h{H0}_b{B0}: {wall / fused[H0, B0]:.3g}")
    for phase, ms in phase_times(H0, T, B0, cuda).items():
        print(f"cuda_fused_{phase}_ms_h{H0}_b{B0}: {ms:.2f}")
    if (256, 32) in fused and T == 1000:
        # Published, not measured here: mlGeNN SHD 700-256-20, T=1000, batch 32, 100 epochs in 573 s.
        print(f"cuda_fused_speedup_over_mlgenn_reported_h256_b32: {5.73 / (fused[256, 32] * SHD_EPOCH / 1e3):.1f}")
    # Device arrays the engine allocates for one batch (sum of their sizes, from its own accounting:
    # numba's allocations are not in torch's counters); "engine" leaves out the input events, which
    # are data (an utterance cropped at T = 250 has fewer of them), not state kept for the backward pass.
    mem = {}
    for t in mem_lengths:
        net = network(hidden[0], t)
        data = shd_like(batches[0], t, 700, 0.01, active_steps=1000)
        ev, labels = to_events(net, data, data.labels)
        extras = cuda_engine.compute(net, ev, labels, LossOptions()).extras
        mem[t] = (extras["device_bytes"] - extras["device_input_bytes"]) / 2 ** 20
        print(f"cuda_fused_mem_h{hidden[0]}_b{batches[0]}_T{t}_mib: {extras['device_bytes'] / 2 ** 20:.2f}")
        print(f"cuda_fused_engine_mem_h{hidden[0]}_b{batches[0]}_T{t}_mib: {mem[t]:.2f}")
    first, last = min(mem), max(mem)
    print(f"cuda_fused_engine_mem_growth_T{first}_to_T{last}: {mem[last] / mem[first]:.3f}")
    if hasattr(cuda, "current_context"):          # not in numba's simulator
        free, total = cuda.current_context().get_memory_info()
        print(f"cuda_device_memory_in_use_mib: {(total - free) / 2 ** 20:.0f}")
    H, B = hidden[-1], batches[-1]
    data = shd_like(B, T, 700, 0.01)
    result = compute_batch(network(H, T), data, data.labels, LossOptions(), device="cuda")
    print(f"cuda_fused_mem_h{H}_b{B}_T{T}_mib: {result.extras['device_bytes'] / 2 ** 20:.1f}")


def phase_times(H: int, T: int, B: int, cuda) -> dict[str, float]:
    """Milliseconds per batch of each part of cuda_engine.compute: copies to the device, the forward
    launch, and the rest (host loss, zeroing, backward launch, gradients back), best of 3."""
    from eventprop_pipeline.eventprop import LossOptions, cuda_engine
    from eventprop_pipeline.eventprop.inputs import to_events
    net = network(H, T)
    data = shd_like(B, T, 700, 0.01)
    ev, labels = to_events(net, data, data.labels)
    sync = getattr(cuda, "synchronize", lambda: None)
    cuda_engine.compute(net, ev, labels, LossOptions())
    best = {"copy_in": float("inf"), "forward": float("inf"), "total": float("inf")}
    for _ in range(3):
        sync()
        t0 = time.perf_counter()
        d = cuda_engine.DeviceBatch(net, ev, cuda_engine.DEFAULT_DTYPE)
        sync()
        t1 = time.perf_counter()
        cuda_engine.forward(net, ev, batch=d)
        sync()
        t2 = time.perf_counter()
        cuda_engine.compute(net, ev, labels, LossOptions())
        sync()
        t3 = time.perf_counter()
        best = {k: min(best[k], v) for k, v in
                (("copy_in", (t1 - t0) * 1e3), ("forward", (t2 - t1) * 1e3), ("total", (t3 - t2) * 1e3))}
    best["backward_and_host"] = best["total"] - best["copy_in"] - best["forward"]
    return best


# ---- memory, one configuration per fresh process -------------------------------------------------

def _status_kb(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key):
                return int(line.split()[1])
    raise RuntimeError(key)


def _bptt_step(net, x, labels, device):
    """Autograd through time with a fast-sigmoid surrogate on the same model (baseline only)."""
    import torch
    p = net.params
    from eventprop_pipeline.model.readout import readout_weights

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, v):
            ctx.save_for_backward(v)
            return (v >= p.v_thresh).to(v.dtype)

        @staticmethod
        def backward(ctx, grad):
            (v,) = ctx.saved_tensors
            return grad / (1.0 + 10.0 * (v - p.v_thresh).abs()) ** 2

    w = {k: torch.tensor(v, device=device, requires_grad=True) for k, v in net.weights.items()}
    B, T, _ = x.shape
    H, O = net.n_hidden, net.n_output
    rw = torch.tensor(readout_weights(p, T), device=device, dtype=torch.float32)
    isyn_h = torch.zeros(B, H, device=device)
    v_h = torch.zeros_like(isyn_h)
    isyn_o = torch.zeros(B, O, device=device)
    v_o = torch.zeros_like(isyn_o)
    v_avg = torch.zeros(B, O, device=device)
    s = torch.zeros(B, H, device=device)
    drive = torch.zeros(B, H, device=device)
    for k in range(T):
        isyn_o = isyn_o + s @ w["hidden_output"]
        v_o = p.alpha * v_o + (1 - p.alpha) * p.i_scale * isyn_o
        v_avg = v_avg + rw[k] * v_o
        isyn_o = isyn_o * p.beta
        if k > 0:
            drive = x[:, k - 1] @ w["input_hidden"]
        isyn_h = isyn_h + drive + s @ w["hidden_hidden"]
        v = p.alpha * v_h + (1 - p.alpha) * p.i_scale * isyn_h
        s = Spike.apply(v)
        v_h = v * (1 - s.detach())
        isyn_h = isyn_h * p.beta
    loss = torch.nn.functional.cross_entropy(v_avg, torch.as_tensor(labels, device=device))
    loss.backward()
    return float(loss)


def memory_child(method: str, T: int, device: str, activity: str = "utterance") -> None:
    """Runs in a fresh process: prints the peak memory (MiB) of one training step above baseline."""
    import torch
    from eventprop_pipeline.eventprop import LossOptions, compute_batch
    B, H = 32, 256
    net = network(H, T)
    data = shd_like(B, T, 700, 0.01, active_steps=1000 if activity == "utterance" else None)
    dense = torch.as_tensor(data.dense(np.arange(B)), device=device)
    small = shd_like(B, 20, 700, 0.01)
    small_net = network(H, 20)
    if method == "eventprop":   # compile / warm up on a tiny problem
        compute_batch(small_net, small if device == "cpu" else torch.as_tensor(small.dense(np.arange(B)), device=device),
                      small.labels, LossOptions(), device=device)
    else:
        _bptt_step(small_net, torch.as_tensor(small.dense(np.arange(B)), device=device), small.labels, device)
    if device == "cpu":
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")                         # reset the peak RSS (VmHWM) to the current RSS
        base = _status_kb("VmRSS")
    else:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    if method == "eventprop":
        compute_batch(net, data if device == "cpu" else dense, data.labels, LossOptions(), device=device)
    else:
        _bptt_step(net, dense, data.labels, device)
    if device == "cpu":
        peak_mib = (_status_kb("VmHWM") - base) / 1024
    else:
        torch.cuda.synchronize()
        peak_mib = (torch.cuda.max_memory_allocated() - base) / 2 ** 20
    print(json.dumps({"peak_mib": peak_mib}))


def measure_memory(method: str, T: int, device: str, activity: str = "utterance") -> float:
    # Large blocks via mmap: freed memory goes back to the OS at once, so the peak RSS above the
    # baseline is the step's own peak working set (not hidden by reuse of the warm-up's freed heap).
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run([sys.executable, __file__, "--memory-child", method, str(T), device, activity],
                         capture_output=True, text=True, timeout=1800, env=env)
    if out.returncode:
        raise RuntimeError(f"memory child ({method}, T={T}, {device}) failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small, fast smoke run")
    ap.add_argument("--memory-only", action="store_true", help="only the peak-memory scan")
    ap.add_argument("--cuda-only", action="store_true", help="only the fused CUDA engine's figures (needs a GPU)")
    ap.add_argument("--memory-child", nargs=4, metavar=("METHOD", "T", "DEVICE", "ACTIVITY"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child[0], int(args.memory_child[1]), args.memory_child[2], args.memory_child[3])
        return 0
    import torch
    q = args.quick
    if args.cuda_only:
        if not torch.cuda.is_available():
            print("error: --cuda-only needs a CUDA GPU", file=sys.stderr)
            return 1
        cuda_report(q)
        return 0
    T = 200 if q else 1000
    print(f"threads: {os.cpu_count()} cpus, numba threads {__import__('numba').config.NUMBA_NUM_THREADS}")
    devices = ["cpu"]     # the fused CUDA engine's memory is in cuda_report (numba allocations, not torch's)
    if not args.memory_only:
        wall, cpu, rate = time_train_step(T=T, repeats=1 if q else 3)
        print(f"cpu_ms_per_train_sample: {wall:.2f}")
        print(f"cpu_process_time_ms_per_train_sample: {cpu:.2f}")
        print(f"cpu_hidden_spikes_per_neuron_per_trial: {rate:.1f}")
        print(f"cpu_seconds_per_shd_epoch: {wall * SHD_EPOCH / 1e3:.1f}")
        if torch.cuda.is_available():
            cuda_report(q)
    lengths = (100, 200) if q else (250, 500, 1000, 2000)
    for device in devices:
        tag = "" if device == "cpu" else "cuda_"
        mem = {}
        for method in ("eventprop", "bptt"):
            for t in lengths:
                mem[method, t] = measure_memory(method, t, device)
                print(f"{tag}mem_{method}_T{t}_mib: {mem[method, t]:.1f}")
        print(f"{tag}eventprop_mem_growth_{lengths[0]}_to_{lengths[-1]}: "
              f"{mem['eventprop', lengths[-1]] / max(mem['eventprop', lengths[0]], 1e-3):.2f}")
        ref = lengths[-2] if q else 1000
        print(f"{tag}eventprop_over_bptt_mem_ratio_T{ref}: "
              f"{mem['eventprop', ref] / max(mem['bptt', ref], 1e-3):.3f}")
        for t in lengths:
            const = measure_memory("eventprop", t, device, "constant")
            print(f"{tag}mem_eventprop_constant_rate_T{t}_mib: {const:.1f}")
    if args.memory_only:
        return 0
    for H in ((128, 256) if q else (128, 256, 512, 1024)):
        wall, _, rate = time_train_step(H=H, T=T, repeats=1 if q else 2)
        print(f"tail_cpu_ms_per_sample_hidden{H}: {wall:.2f}")
        print(f"tail_cpu_spikes_per_neuron_hidden{H}: {rate:.1f}")
    for rate_in in ((0.01, 0.02) if q else (0.005, 0.01, 0.02, 0.04)):
        wall, _, rate = time_train_step(T=T, rate=rate_in, repeats=1 if q else 2)
        print(f"tail_cpu_ms_per_sample_input{rate_in * 100:g}pct: {wall:.2f}")
        print(f"tail_cpu_spikes_per_neuron_input{rate_in * 100:g}pct: {rate:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
