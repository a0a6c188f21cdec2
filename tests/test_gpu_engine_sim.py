"""The fused CUDA kernels (eventprop/cuda_kernels.py) run in numba's CUDA simulator and agree with
the numba CPU engine: the same spike record spike for spike, the same readouts, gradients within
the documented tolerance (tests/gpu_cases.py). tests/conftest.py turns the simulator on for the
session (NUMBA_ENABLE_CUDASIM=1) unless EVENTPROP_REAL_CUDA=1 asks for a real GPU."""
from __future__ import annotations

import numba
import numpy as np
import pytest

from gpu_cases import OPTIONS, assert_close, assert_same_spike_record, compare_with_cpu, problem

pytestmark = [pytest.mark.gpu_sim,
              pytest.mark.skipif(not numba.config.ENABLE_CUDASIM,
                                 reason="numba's CUDA simulator is off (EVENTPROP_REAL_CUDA=1); see test_gpu_engine_cuda.py")]


@pytest.mark.parametrize("threads", [None, 32], ids=["one_round", "two_rounds"])
def test_spike_record_equals_cpu_engine_spike_for_spike(threads):
    net, x, y = problem(seed=0, T=20)
    total, most_in_a_step = assert_same_spike_record(net, x, y, threads=threads)
    assert total > 150 and most_in_a_step > 20     # the scan orders many spikes of one step


@pytest.mark.parametrize("name", list(OPTIONS))
def test_float64_gradients_match_cpu_engine(name):
    net, x, y = problem(seed=1, T=15, graded=name == "avg")
    compare_with_cpu(net, x, y, OPTIONS[name], np.float64)


def test_float32_agrees_within_documented_tolerance():
    net, x, y = problem(seed=2)
    compare_with_cpu(net, x, y, OPTIONS["regularised"], np.float32)


def test_spike_record_overflow_reruns_and_neurons_run_in_rounds():
    net, x, y = problem(seed=3, T=12, H=70)
    cpu, gpu = compare_with_cpu(net, x, y, OPTIONS["avg"], np.float64, capacity=1, threads=32)
    assert gpu.extras["spike_capacity"] >= cpu.hidden_spike_counts.sum(axis=1).max() > 1


def test_kernels_set_every_device_array_they_read(monkeypatch):
    """The engine allocates device memory uninitialised; filled with NaN, or 3 (a valid step) in integer
    arrays, the results are unchanged."""
    from eventprop_pipeline.eventprop import cuda_engine

    def junk(cuda, shape, dtype):
        return cuda.to_device(np.full(shape, np.nan if dtype.kind == "f" else 3, dtype))

    monkeypatch.setattr(cuda_engine, "_device_empty", junk)
    net, x, y = problem(seed=6, T=12)
    compare_with_cpu(net, x, y, OPTIONS["regularised"], np.float64)


class _CountingKernel:
    def __init__(self, kernel, calls):
        self.kernel, self.calls = kernel, calls

    def __getitem__(self, config):
        self.calls.append(config)
        return self.kernel[config]


@pytest.mark.parametrize("T", [10, 20])
def test_cuda_device_runs_fused_engine_with_two_launches_whatever_T(T, monkeypatch):
    """compute_batch/predict/evaluate_float on "cuda" use the fused kernels: one forward and one
    backward launch per batch for any T (simulated here: the device name is forced to cuda)."""
    from eventprop_pipeline.data import from_events
    from eventprop_pipeline.evaluation import evaluate_float
    from eventprop_pipeline.eventprop import api, compute_batch, cuda_kernels, predict
    net, x, y = problem(seed=4, B=2, T=T, H=32)
    b, t, u = np.nonzero(x)
    data = from_events(b, t, u, y, n_channels=x.shape[2], n_classes=4, timesteps=T, dt=1.0)
    calls = []
    for name in ("forward_kernel", "backward_kernel"):
        monkeypatch.setattr(cuda_kernels, name, _CountingKernel(getattr(cuda_kernels, name), calls))
    monkeypatch.setattr(api, "_resolve", lambda device: str(device))
    gpu = compute_batch(net, data, y, OPTIONS["avg"], device="cuda")
    assert [c[0] for c in calls] == [2, 2]                  # (blocks, threads) of forward, backward
    cpu = compute_batch(net, data, y, OPTIONS["avg"], device="cpu")
    np.testing.assert_array_equal(gpu.hidden_spike_counts, cpu.hidden_spike_counts)
    v_gpu, counts_gpu = predict(net, data, device="cuda")
    v_cpu, counts_cpu = predict(net, data, device="cpu")
    np.testing.assert_array_equal(counts_gpu, counts_cpu)
    assert_close(v_cpu, v_gpu, 1e-5, "predict readout")
    assert len(calls) == 3
    ev_gpu = evaluate_float(net, data, device="cuda")
    assert len(calls) == 4
    np.testing.assert_array_equal(ev_gpu.pred, np.argmax(v_cpu, axis=1))


def test_cuda_benchmark_report_runs_and_prints_name_value_lines(monkeypatch, capsys):
    """benchmarks/train_speed.py's CUDA report, shrunk, in the simulator: it is one command away
    on a GPU (benchmarks/gpu_check.sh), so its code must already run."""
    import importlib.util
    from pathlib import Path

    from eventprop_pipeline.eventprop import api
    path = Path(__file__).parents[1] / "benchmarks" / "train_speed.py"
    spec = importlib.util.spec_from_file_location("train_speed_under_test", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr(api, "_resolve", lambda device: str(device))
    small_data = bench.shd_like
    monkeypatch.setattr(bench, "network", lambda H, T, O=20, n_in=700: problem(seed=5, T=T, n_in=30, H=H, O=O)[0])
    monkeypatch.setattr(bench, "shd_like", lambda B, T, n_in, rate, seed=0, active_steps=None:
                        small_data(B, T, 30, 0.05, seed, None if active_steps is None else min(active_steps, 8)))
    bench.cuda_report(True, hidden=(32,), batches=(2,), T=12, mem_lengths=(8, 16), torch_device="torch-cpu")
    lines = capsys.readouterr().out.strip().splitlines()
    values = dict(line.split(": ", 1) for line in lines)
    assert len(values) == len(lines) >= 13        # one line per figure, no name twice
    for name in ("cuda_fused_epoch_s_h32_b2", "cuda_fused_speedup_over_torch_h32_b2", "cuda_fused_engine_mem_growth_T8_to_T16",
                 "cuda_fused_speedup_over_cpu_engine_h32_b2", "cuda_fused_forward_ms_h32_b2", "cuda_fused_total_ms_h32_b2"):
        assert float(values[name]) > 0, (name, values)
    assert 1.0 <= float(values["cuda_fused_engine_mem_growth_T8_to_T16"]) < 1.2     # spike records, not trajectories


def test_cuda_without_numbas_cuda_target_is_a_config_error_naming_the_fix(monkeypatch):
    from numba import cuda

    from eventprop_core.errors import ConfigError
    from eventprop_pipeline.eventprop import cuda_engine
    from eventprop_pipeline.training import trainer
    monkeypatch.setattr(numba.config, "ENABLE_CUDASIM", False)
    monkeypatch.setattr(cuda, "is_available", lambda: False)
    monkeypatch.setattr(trainer, "resolve_device_name", lambda device: "cuda")   # torch sees a GPU
    with pytest.raises(ConfigError, match=r"eventprop-loihi\[cuda\]"):
        trainer.resolve_device("cuda")
    with pytest.raises(ConfigError, match="numba-cuda"):
        cuda_engine.cuda_module()


def test_a_cuda_target_that_cannot_compile_is_a_config_error_naming_the_cause(monkeypatch):
    """Seen on a GPU machine: numba-cuda 0.30 with numpy 2.5 imports, then fails at the first compile
    (np.row_stack is gone). The engine compiles a one-line kernel first and says so in words."""
    import numpy
    from numba import cuda

    from eventprop_core.errors import ConfigError
    from eventprop_pipeline.eventprop import cuda_engine

    def broken(*a, **k):
        raise AttributeError("module 'numpy' has no attribute 'row_stack'")

    monkeypatch.setattr(numba.config, "ENABLE_CUDASIM", False)
    monkeypatch.setattr(cuda, "is_available", lambda: True)
    monkeypatch.setattr(cuda, "compile_ptx", broken, raising=False)
    from numba.cuda.cudadrv import nvvm
    monkeypatch.setattr(nvvm, "is_available", lambda: True)
    monkeypatch.delattr(numpy, "row_stack", raising=False)
    monkeypatch.setattr(cuda_engine, "_probe", [])
    with pytest.raises(ConfigError, match=r"cannot compile: AttributeError: .*row_stack.*numpy<2\.5"):
        cuda_engine.cuda_module()
    assert not cuda_engine.usable()


def test_auto_device_says_why_it_falls_back_to_the_cpu(monkeypatch, capsys):
    """torch sees a GPU but the fused engine cannot run there: --device auto trains on the CPU and
    says why in one line (before: silently)."""
    import torch

    from eventprop_pipeline import devices
    from eventprop_pipeline.cli.main import _one_line_warnings
    from eventprop_pipeline.eventprop import cuda_engine
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(numba.config, "ENABLE_CUDASIM", False)
    monkeypatch.setattr(cuda_engine, "_missing", lambda: "numba finds no libNVVM (the CUDA compiler library)")
    with pytest.warns(devices.DeviceWarning, match="GPU is present but .* no libNVVM .*; using the CPU engine"):
        assert devices.resolve_device_name("auto") == "cpu"
    import warnings
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    _one_line_warnings()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        devices.resolve_device_name("auto")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: a CUDA GPU is present")
    monkeypatch.setattr(cuda_engine, "_missing", lambda: None)
    assert devices.resolve_device_name("auto") == "cuda"


def test_launch_lowers_threads_to_what_the_compiled_kernel_allows(monkeypatch):
    """Seen on an H200: a 1024-thread block of the forward kernel failed with
    CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES (too many registers). The launch asks the compiled kernel."""
    from eventprop_pipeline.eventprop import cuda_engine

    class Compiled:
        def __init__(self, limit):
            self.limit, self.launched = limit, []

        def get_max_threads_per_block(self):
            return self.limit

        def __getitem__(self, grid):
            return lambda *args: self.launched.append((grid, args))

    class Kernel:
        def __init__(self, limit):
            self.compiled = Compiled(limit)

        def specialize(self, *args):
            return self.compiled

    monkeypatch.setattr(numba.config, "ENABLE_CUDASIM", False)
    for limit, asked, used in ((640, 1024, 640), (655, 1024, 640), (2048, 256, 256), (20, 256, 32)):
        k = Kernel(limit)
        assert cuda_engine.launch(k, 7, asked, "a", 1) == used
        assert k.compiled.launched == [((7, used), ("a", 1))]


def test_train_with_device_cuda_runs_the_fused_engine_and_matches_cpu_training(tmp_path, monkeypatch):
    """`eventprop train --device cuda` in miniature: one epoch through the trainer on the simulated
    GPU (float64 state) ends with the CPU run's weights up to float rounding."""
    from pathlib import Path

    from eventprop_pipeline.eventprop import api, cuda_engine
    from eventprop_core.network import WEIGHT_NAMES, load_network
    from eventprop_pipeline.training import load_train_config, train, trainer
    smoke = Path(__file__).resolve().parent.parent / "configs" / "smoke.toml"
    changes = {"synthetic.n_train": 10, "synthetic.n_test": 2, "network.timesteps": 15, "network.hidden": 32,
               "optim.epochs": 1, "optim.batch_size": 5}
    quiet = dict(progress=False, log=lambda *a, **k: None)
    from eventprop_pipeline.eventprop import cpu_engine
    calls = {"cpu": 0, "cuda": 0}
    for key, module in (("cpu", cpu_engine), ("cuda", cuda_engine)):
        monkeypatch.setattr(module, "compute", (lambda real, key: lambda *a, **k: calls.__setitem__(key, calls[key] + 1)
                                                or real(*a, **k))(module.compute, key))
    cpu = train(load_train_config(smoke, changes), tmp_path / "cpu", **quiet)
    batches, calls["cpu"] = calls["cpu"], 0
    monkeypatch.setattr(trainer, "resolve_device_name", lambda device: str(device))
    monkeypatch.setattr(api, "_resolve", lambda device: str(device))
    monkeypatch.setattr(cuda_engine, "DEFAULT_DTYPE", np.float64)
    gpu = train(load_train_config(smoke, {**changes, "device": "cuda"}), tmp_path / "gpu", **quiet)
    assert batches >= 2 and calls == {"cpu": 0, "cuda": batches}
    a, b = load_network(cpu.last_path), load_network(gpu.last_path)
    for name in WEIGHT_NAMES:
        np.testing.assert_allclose(b.weights[name], a.weights[name], rtol=0, atol=1e-6)
    assert gpu.test_accuracy == cpu.test_accuracy
