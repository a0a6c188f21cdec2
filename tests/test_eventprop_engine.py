"""The Eventprop engine as a component: its forward pass equals the independent float model, the
torch engine equals the numba engine, results are bit-reproducible, inputs and options are checked."""
from __future__ import annotations

from pathlib import Path

import gpu_cases
import numpy as np
import pytest
import torch

from eventprop_pipeline import ModelParams, Network
from eventprop_pipeline.data import from_events
from eventprop_core.errors import ConfigError, DataError
from eventprop_pipeline.eventprop import BatchResult, LossOptions, compute_batch, cpu_engine
from eventprop_pipeline.eventprop.inputs import to_events
from eventprop_pipeline.mlgenn_import import import_mlgenn
from eventprop_pipeline.model import simulate

FIXTURE = str(Path(__file__).parent / "data" / "mlgenn_hidden256")


def fixture_batch(indices):
    data = np.load(f"{FIXTURE}/data.npz", allow_pickle=False)
    off = data["offsets"]
    x = np.zeros((len(indices), int(data["num_timesteps"]), int(data["num_input"])), np.float32)
    for row, s in enumerate(indices):
        x[row, data["times_ms"][off[s]:off[s + 1]], data["units"][off[s]:off[s + 1]]] = 1.0
    return x, data["labels"][indices].astype(np.int64)


def test_forward_matches_float_model_and_mlgenn_on_fixture():
    net = import_mlgenn(FIXTURE, 29)
    idx = np.arange(8)
    x, y = fixture_batch(idx)
    result = compute_batch(net, x, y, LossOptions())
    reference = simulate(net, x)
    np.testing.assert_array_equal(result.hidden_spike_counts, reference.hidden_spike_counts)
    np.testing.assert_allclose(result.readout, reference.readout, rtol=1e-6, atol=1e-7)
    mlgenn = np.load(f"{FIXTURE}/mlgenn_outputs.npz", allow_pickle=False)
    agree = result.prediction == mlgenn["pred"][idx]
    assert agree.mean() >= 0.9          # mlGeNN runs float32; a rare threshold tie may differ
    assert result.hidden_spike_counts.sum() > 0


def random_problem(seed=0, B=3, T=150, n_in=40, H=24, O=5, rate=0.04, graded=False):
    """gpu_cases.problem at this file's sizes: longer and sparser than the GPU simulator's cases."""
    return gpu_cases.problem(seed=seed, B=B, T=T, n_in=n_in, H=H, O=O, rate=rate, graded=graded)


OPTIONS = list(gpu_cases.OPTIONS.values())


@pytest.mark.parametrize("opts", OPTIONS, ids=["avg", "per_timestep", "regularised"])
@pytest.mark.parametrize("graded", [False, True], ids=["binary", "graded"])
def test_torch_engine_equals_numba_engine(opts, graded):
    net, x, y = random_problem(graded=graded)
    a = compute_batch(net, x, y, opts, device="cpu")
    b = compute_batch(net, torch.as_tensor(x), torch.as_tensor(y), opts, device="torch-cpu")
    assert a.hidden_spike_counts.sum() > 50
    np.testing.assert_array_equal(a.hidden_spike_counts, b.hidden_spike_counts)
    assert a.loss == pytest.approx(b.loss, rel=1e-12)
    np.testing.assert_allclose(a.readout, b.readout, rtol=1e-6)
    for name in a.grads:
        np.testing.assert_allclose(a.grads[name], b.grads[name], rtol=1e-5,
                                   atol=1e-6 * np.abs(a.grads[name]).max())


def test_torch_engine_in_float32_stays_close():
    net, x, y = random_problem(seed=2)
    a = compute_batch(net, x, y, LossOptions(), device="cpu")
    from eventprop_pipeline.eventprop import torch_engine
    b = torch_engine.compute(net, x, y, LossOptions(), device="cpu", dtype=torch.float32)
    # float32 may flip a threshold decision; the batch as a whole must still agree closely.
    assert np.abs(a.hidden_spike_counts - b.hidden_spike_counts).sum() <= 2
    assert b.loss == pytest.approx(a.loss, rel=1e-3)


def test_spike_ring_overflow_is_retried_with_room_for_every_spike():
    net, x, y = random_problem(seed=1)
    from eventprop_pipeline.eventprop import torch_engine
    a = torch_engine.compute(net, x, y, LossOptions(), device="cpu", capacity=1)
    b = compute_batch(net, x, y, LossOptions())
    assert b.hidden_spike_counts.max() > 1
    np.testing.assert_array_equal(a.hidden_spike_counts, b.hidden_spike_counts)
    np.testing.assert_allclose(a.grads["input_hidden"], b.grads["input_hidden"], rtol=1e-5, atol=1e-9)
    ev, _ = to_events(net, x, y)
    v, counts, rec, _ = cpu_engine.forward(net, ev, capacity=2)
    assert rec.neuron.shape[1] >= counts.sum(axis=1).max()
    np.testing.assert_allclose(v, b.readout, rtol=1e-6)


def test_event_dataset_input_equals_dense_input():
    net, x, y = random_problem(seed=3, graded=True)
    b, t, u = np.nonzero(x)
    repeats = x[b, t, u].astype(np.int64)
    data = from_events(np.repeat(b, repeats), np.repeat(t, repeats), np.repeat(u, repeats), y,
                       n_channels=x.shape[2], n_classes=5, timesteps=x.shape[1], dt=1.0, graded=True)
    dense = compute_batch(net, x, y, LossOptions())
    events = compute_batch(net, data, y, LossOptions())
    np.testing.assert_array_equal(dense.hidden_spike_counts, events.hidden_spike_counts)
    for name in dense.grads:
        np.testing.assert_array_equal(dense.grads[name], events.grads[name])
    with pytest.raises(DataError, match="dt=0.5"):
        compute_batch(Network(net.weights, ModelParams(dt=0.5, timesteps=150)), data, y)


def test_same_inputs_give_bit_identical_gradients_serial_or_parallel(monkeypatch):
    net, x, y = random_problem(seed=4, B=20, T=400, H=64, n_in=100, rate=0.02)
    first = compute_batch(net, x, y, LossOptions())
    again = compute_batch(net, x, y, LossOptions())
    monkeypatch.setattr(cpu_engine, "PARALLEL_MIN_WORK", 0)
    parallel = compute_batch(net, x, y, LossOptions())
    monkeypatch.setattr(cpu_engine, "PARALLEL_MIN_WORK", 10 ** 12)
    serial = compute_batch(net, x, y, LossOptions())
    for other in (again, parallel, serial):
        assert other.loss == first.loss
        for name in first.grads:
            np.testing.assert_array_equal(other.grads[name], first.grads[name])


def test_contract_shapes_and_dtypes_and_package_export():
    import eventprop_pipeline
    net, x, y = random_problem(seed=5)
    result = compute_batch(net, x, y)
    assert isinstance(result, BatchResult)
    assert result.readout.shape == (3, 5) and result.readout.dtype == np.float32
    assert result.hidden_spike_counts.shape == (3, 24) and result.hidden_spike_counts.dtype == np.int64
    assert set(result.grads) == {"input_hidden", "hidden_hidden", "hidden_output"}
    loss, grads = eventprop_pipeline.loss_and_gradients(net, x, y, reg_lambda_upper=0.0)
    assert loss == result.loss
    for name, g in grads.items():
        assert g.shape == net.weights[name].shape and g.dtype == np.float32


def test_bad_inputs_and_options_raise_pipeline_errors():
    net, x, y = random_problem(seed=6)
    with pytest.raises(DataError, match="label 7"):
        compute_batch(net, x, np.array([0, 7, 1]))
    with pytest.raises(DataError, match="labels have shape"):
        compute_batch(net, x, np.array([0, 1]))
    with pytest.raises(DataError, match="39 channels"):
        compute_batch(net, x[:, :, :39], y)
    with pytest.raises(DataError, match="batch, timesteps, channels"):
        compute_batch(net, x[0], y)
    with pytest.raises(ConfigError, match="loss 'mse'"):
        LossOptions(loss="mse")
    with pytest.raises(ConfigError, match="reg_lambda_upper"):
        LossOptions(reg_lambda_upper=-1.0)
    with pytest.raises(ConfigError, match="device"):
        compute_batch(net, x, y, device="tpu")


@pytest.mark.skipif(not torch.cuda.is_available() or __import__("numba").config.ENABLE_CUDASIM,
                    reason="needs CUDA and numba's real CUDA target (EVENTPROP_REAL_CUDA=1)")
def test_cuda_engine_matches_cpu_engine():
    net, x, y = random_problem(seed=7, B=8, T=300)
    a = compute_batch(net, x, y, LossOptions(), device="cpu")
    b = compute_batch(net, x, y, LossOptions(), device="cuda")
    assert np.abs(a.hidden_spike_counts - b.hidden_spike_counts).sum() <= 2
    assert b.loss == pytest.approx(a.loss, rel=1e-3)


def test_data_binned_for_another_T_is_rejected():
    net = Network.initialise(5, 4, 3, params=ModelParams(timesteps=30), seed=0)
    x = np.zeros((2, 40, 5), np.float32)
    with pytest.raises(DataError, match="40 time steps but the network's readout is defined over 30"):
        compute_batch(net, x, [0, 1])
    with pytest.raises(DataError, match="40 time steps"):
        compute_batch(net, x, [0, 1], device="torch-cpu")
    data = from_events(np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1),
                       n_channels=5, n_classes=3, timesteps=40, dt=1.0)
    from eventprop_pipeline.evaluation import evaluate_float
    with pytest.raises(DataError, match="bin the data with timesteps=30"):
        evaluate_float(net, data)
