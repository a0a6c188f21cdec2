"""Shared checks of the fused CUDA engine against the numba CPU engine (its reference), used by the
simulator tests (test_gpu_engine_sim.py) and the real-GPU tests (test_gpu_engine_cuda.py).

Tolerances (docs/gpu_engine.md): float64 state reproduces the CPU engine's spike record exactly
(same additions in the same order); gradients differ only by the order of float64 sums, i.e. at
most one float32 rounding of the result. float32 state: readouts and gradients within FLOAT32_RTOL
of the largest entry, spikes equal unless a membrane lands within float32 rounding of threshold.
"""
from __future__ import annotations

import numpy as np

from eventprop_pipeline import ModelParams, Network
from eventprop_pipeline.eventprop import LossOptions, compute_batch, cpu_engine, cuda_engine
from eventprop_pipeline.eventprop.inputs import to_events

FLOAT64_RTOL = 1e-6      # of the largest |entry|: one float32 rounding of a float64 result
FLOAT32_RTOL = 1e-4      # of the largest |entry|; measured 1e-6 .. 1e-5 on the test problems

OPTIONS = {"avg": LossOptions(reg_lambda_upper=0.0), "per_timestep": LossOptions(loss="per_timestep"),
           "regularised": LossOptions(reg_lambda_upper=1e-4, reg_lambda_lower=5e-5, reg_nu_upper=3.0)}


def problem(seed=0, B=2, T=20, n_in=20, H=40, O=4, rate=0.2, graded=False):
    """An active recurrent network: several hidden spikes in most steps (many in the same step)."""
    rng = np.random.default_rng(seed)
    net = Network.initialise(n_in, H, O, params=ModelParams(timesteps=T), seed=seed,
                             init={"input_hidden": (0.25, 0.1), "hidden_hidden": (0.0, 0.15),
                                   "hidden_output": (0.0, 0.3)})
    x = (rng.random((B, T, n_in)) < rate).astype(np.float32)
    if graded:
        x *= rng.integers(1, 3, x.shape)
    return net, x, rng.integers(0, O, B)


def assert_close(a, b, rtol, what):
    scale = float(np.abs(a).max())
    err = float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())
    assert err <= rtol * scale + 1e-30, f"{what}: max |diff| {err:.3g} > {rtol:g} x max |value| {scale:.3g}"


def assert_same_spike_record(net, x, y, den_rtol=0.0, **kwargs):
    """The fused forward kernel's spike record equals the CPU engine's, spike for spike (float64).
    den_rtol > 0 allows a real GPU's fused multiply-adds to round I - V and VAvg differently."""
    ev, _ = to_events(net, x, y)
    v_cpu, counts_cpu, rec, _ = cpu_engine.forward(net, ev)
    fw = cuda_engine.forward(net, ev, dtype=np.float64, **kwargs)
    np.testing.assert_array_equal(fw.counts, counts_cpu)
    offsets = fw.spk_off.copy_to_host()
    np.testing.assert_array_equal(offsets, rec.offsets)
    neuron, den = fw.spk_neuron.copy_to_host(), fw.spk_den.copy_to_host()
    for b in range(len(x)):
        n = offsets[b, -1]
        np.testing.assert_array_equal(neuron[b, :n], rec.neuron[b, :n])
        np.testing.assert_allclose(den[b, :n], rec.den[b, :n], rtol=den_rtol, atol=0)
    np.testing.assert_allclose(fw.v_avg, v_cpu, rtol=den_rtol, atol=den_rtol * np.abs(v_cpu).max())
    return int(counts_cpu.sum()), int(np.diff(rec.offsets, axis=1).max())


def compare_with_cpu(net, x, y, opts, dtype, exact64=True, **kwargs):
    """Runs both engines; asserts the documented agreement; returns (cpu, gpu) results.
    exact64=False (a real GPU): float64 readouts and loss within 1e-12 instead of bit-equal."""
    ev, labels = to_events(net, x, y)
    cpu = compute_batch(net, x, y, opts, device="cpu")
    gpu = cuda_engine.compute(net, ev, labels, opts, dtype=dtype, **kwargs)
    assert cpu.hidden_spike_counts.sum() > 0
    np.testing.assert_array_equal(gpu.hidden_spike_counts, cpu.hidden_spike_counts)
    assert gpu.reg_loss == cpu.reg_loss          # a function of the (equal) spike counts
    if dtype == np.float64 and exact64:
        np.testing.assert_array_equal(gpu.readout, cpu.readout)
        assert gpu.loss == cpu.loss
        rtol = FLOAT64_RTOL
    elif dtype == np.float64:
        assert_close(cpu.readout, gpu.readout, 1e-6, "readout")
        assert abs(gpu.loss - cpu.loss) <= 1e-12 * abs(cpu.loss)
        rtol = FLOAT64_RTOL
    else:
        assert_close(cpu.readout, gpu.readout, FLOAT32_RTOL, "readout")
        assert abs(gpu.loss - cpu.loss) <= FLOAT32_RTOL * abs(cpu.loss)
        rtol = FLOAT32_RTOL
    for name in cpu.grads:
        assert gpu.grads[name].shape == cpu.grads[name].shape and gpu.grads[name].dtype == np.float32
        assert np.abs(cpu.grads[name]).max() > 0, name
        assert_close(cpu.grads[name], gpu.grads[name], rtol, name)
    return cpu, gpu
