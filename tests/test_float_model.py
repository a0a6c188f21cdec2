"""The float forward pass against hand-computed cases of mlGeNN's step order."""
import math

import numpy as np
import pytest
import torch

from eventprop_pipeline import ModelParams, Network
from eventprop_pipeline.model import simulate
from eventprop_pipeline.model.readout import readout_weights

P = ModelParams(timesteps=6)
A, B_, S = math.exp(-1 / 20), math.exp(-1 / 5), 5 * (1 - math.exp(-1 / 5))


def net_1_1_1(w_ih, w_hh=0.0, w_ho=1.0, params=P):
    return Network({"input_hidden": np.array([[w_ih]]), "hidden_hidden": np.array([[w_hh]]),
                    "hidden_output": np.array([[w_ho]])}, params)


def _threshold_exactly_reached(w):
    """v_thresh equal to V after one input step, computed the way the model computes it."""
    w32 = float(np.float32(w))
    return (1.0 - A) * (S * w32)


def test_input_bin_k_acts_from_step_k_plus_1_and_threshold_is_inclusive():
    w = 0.5
    params = ModelParams(timesteps=6, v_thresh=_threshold_exactly_reached(w))
    x = np.zeros((1, 6, 1))
    x[0, 0, 0] = 1
    r = simulate(net_1_1_1(w, params=params), x, record=True)
    assert r.hidden_spikes[0, :2, 0].tolist() == [False, True]
    # Readout sees the hidden spike of step 1 at step 2: V = (1-A) * S * 1.
    trace = r.readout_trace[0, :, 0]
    assert trace[:2].tolist() == [0.0, 0.0]
    assert trace[2] == pytest.approx((1 - A) * S)
    assert trace[3] == pytest.approx(A * (1 - A) * S + (1 - A) * S * B_)
    expected = sum(readout_weights(P)[k] * trace[k] for k in range(6))
    assert r.readout[0, 0] == pytest.approx(expected, rel=1e-6)


def test_just_below_threshold_does_not_spike_and_voltage_resets_to_zero():
    w = 0.5
    th = np.nextafter(_threshold_exactly_reached(w), np.inf)
    params = ModelParams(timesteps=6, v_thresh=float(th))
    x = np.zeros((1, 6, 1))
    x[0, 0, 0] = 1
    r = simulate(net_1_1_1(w, params=params), x, record=True)
    # V keeps charging from the decaying current and crosses at step 2; then it restarts from 0:
    # step 3 gives only (1-A) S w beta^2, below threshold.
    assert r.hidden_spikes[0, :4, 0].tolist() == [False, False, True, False]


def test_recurrent_spike_arrives_one_step_later():
    w = 2.0 / ((1 - A) * S)
    x = np.zeros((1, 6, 1))
    x[0, 0, 0] = 1
    r_no = simulate(net_1_1_1(w, w_hh=0.0), x, record=True)
    r_rec = simulate(net_1_1_1(w, w_hh=-100.0), x, record=True)
    # Without recurrence: spikes at 1 and 2 (current still high). Inhibitory self-connection acts at step 2.
    assert r_no.hidden_spikes[0, :3, 0].tolist() == [False, True, True]
    assert r_rec.hidden_spikes[0, :3, 0].tolist() == [False, True, False]


def test_last_input_bin_never_acts_and_batch_items_are_independent():
    net = Network.initialise(10, 8, 3, params=ModelParams(timesteps=30), seed=1,
                             init={"input_hidden": (0.5, 0.2)})
    rng = np.random.default_rng(0)
    x = (rng.random((4, 30, 10)) < 0.2).astype(np.float32)
    full = simulate(net, x)
    x2 = x.copy()
    x2[:, -1] = 1 - x2[:, -1]
    assert np.array_equal(simulate(net, x2).readout, full.readout)
    single = simulate(net, x[2:3])
    assert np.array_equal(single.readout[0], full.readout[2])
    assert np.array_equal(single.hidden_spike_counts[0], full.hidden_spike_counts[2])


def test_float32_and_float64_agree():
    net = Network.initialise(20, 16, 4, params=ModelParams(timesteps=100), seed=2,
                             init={"input_hidden": (0.2, 0.1)})
    x = (np.random.default_rng(1).random((3, 100, 20)) < 0.1).astype(np.float32)
    a = simulate(net, x)
    b = simulate(net, x, dtype=torch.float32)
    assert a.hidden_spike_counts.sum() > 0
    np.testing.assert_allclose(a.readout, b.readout, rtol=1e-4, atol=1e-5)
