"""Eventprop gradients against independent truth: finite differences of the loss at small dt,
autograd where the gradient is exactly the discrete one (readout weights), hand-checkable cases and
the regulariser's definition."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from eventprop_fd import cosine, finite_difference, forward_loss, small_problem
from eventprop_pipeline import ModelParams, Network
from eventprop_pipeline.eventprop import LossOptions, compute_batch, cpu_engine
from eventprop_pipeline.eventprop.inputs import to_events
from eventprop_pipeline.model import Constants, LIFState, LIState, li_step, lif_step
from eventprop_pipeline.model.readout import readout_weights

NO_REG = dict(reg_lambda_upper=0.0, reg_lambda_lower=0.0)
DT = 0.01          # ms; 4000 steps of a 40 ms trial
MIN_SHIFT = 10     # steps a resolved finite difference moves some spike by


def well_conditioned_problems(count: int, dt=DT):
    """Small recurrent problems with no grazing spike (I - V >= 0.3 at every spike): near a grazing
    spike its time is not linear in the weights over any step that moves it by whole steps."""
    found = []
    for seed in range(100):
        net, x, y = small_problem(seed, dt=dt)
        ev, _ = to_events(net, x, y)
        _, counts, rec, _ = cpu_engine.forward(net, ev)
        dens = np.concatenate([rec.den[b][:rec.offsets[b][-1]] for b in range(ev.batch_size)])
        if counts.sum() >= 8 and dens.min() >= 0.3:
            found.append(pytest.param(net, x, y, id=f"seed{seed}"))
        if len(found) == count:
            return found
    raise AssertionError("no well-conditioned problem found")


def _central_difference(net, name, loss_fn, counts, h=1e-4):
    """Weights are float32: the step actually taken is measured, not assumed."""
    fd = np.zeros(net.weights[name].shape)
    for idx in np.ndindex(fd.shape):
        values, taken = [], []
        for dh in (h, -h):
            trial = net.copy()
            trial.weights[name][idx] += dh
            taken.append(float(trial.weights[name][idx]) - float(net.weights[name][idx]))
            value, trial_counts, _ = loss_fn(trial)
            np.testing.assert_array_equal(trial_counts, counts)
            values.append(value)
        fd[idx] = (values[0] - values[1]) / (taken[0] - taken[1])
    return fd


def _check_against_fd(net, x, y, loss):
    result = compute_batch(net, x, y, LossOptions(loss=loss, **NO_REG))
    loss_fn = lambda n: forward_loss(n, x, y, loss)  # noqa: E731
    value, counts, _ = loss_fn(net)
    assert math.isclose(result.loss, value, rel_tol=1e-12)
    np.testing.assert_array_equal(result.hidden_spike_counts, counts)
    resolved_total = 0
    for name in ("input_hidden", "hidden_hidden", "hidden_output"):
        grad = result.grads[name].astype(np.float64)
        if name == "hidden_output":   # no spike moves: the loss is smooth in these weights
            fd = _central_difference(net, name, loss_fn, counts)
            np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-9)
            continue
        fd, shift, kept = finite_difference(net, x, y, name, loss_fn, min_shift=2 * MIN_SHIFT,
                                            max_shift=6 * MIN_SHIFT)
        assert kept, f"{name}: a finite-difference evaluation added or removed a spike"
        # Entries whose spikes moved by a few steps only are quantised, not informative; entries
        # that move no spike at all must have a zero gradient.
        still = shift == 0
        np.testing.assert_allclose(grad[still], 0.0, atol=1e-12)
        use = (shift >= MIN_SHIFT) | still
        resolved_total += int(use.sum())
        assert use.mean() >= 0.5, f"{name}: only {use.mean():.0%} of the entries moved spikes far enough"
        c = cosine(grad[use], fd[use])
        print(f"{name}: cosine {c:.5f} over {use.sum()}/{use.size} entries, norm ratio "
              f"{np.linalg.norm(grad[use]) / np.linalg.norm(fd[use]):.3f}")
        assert c >= 0.99, f"{name}: cosine {c:.4f} between Eventprop and finite differences"
        assert 0.85 < np.linalg.norm(grad[use]) / np.linalg.norm(fd[use]) < 1.15
    assert resolved_total > 0


@pytest.mark.parametrize("net,x,y", well_conditioned_problems(3))
def test_gradients_match_finite_differences_avg_var_exp_weight(net, x, y):
    _check_against_fd(net, x, y, "avg_var_exp_weight")


@pytest.mark.parametrize("net,x,y", well_conditioned_problems(1))
def test_gradients_match_finite_differences_per_timestep(net, x, y):
    _check_against_fd(net, x, y, "per_timestep")


def _autograd_readout_gradient(net: Network, x: np.ndarray, labels: np.ndarray, loss: str) -> np.ndarray:
    """dL/dW_ho by autograd through an independent step loop (model.lif step functions, float64).
    Hidden spikes do not depend on W_ho, so this is the exact gradient of the discrete model."""
    c = Constants.of(net.params)
    B, T, _ = x.shape
    w_ih = torch.tensor(net.weights["input_hidden"], dtype=torch.float64)
    w_hh = torch.tensor(net.weights["hidden_hidden"], dtype=torch.float64)
    w_ho = torch.tensor(net.weights["hidden_output"], dtype=torch.float64, requires_grad=True)
    xt = torch.tensor(x, dtype=torch.float64)
    rw = readout_weights(net.params, T)
    H, O = w_hh.shape[0], w_ho.shape[1]
    hidden = LIFState(torch.zeros(B, H, dtype=torch.float64), torch.zeros(B, H, dtype=torch.float64))
    out = LIState(torch.zeros(B, O, dtype=torch.float64), torch.zeros(B, O, dtype=torch.float64),
                  torch.zeros(B, O, dtype=torch.float64))
    s = torch.zeros(B, H, dtype=torch.float64)
    lab = torch.tensor(labels)
    per_step = []
    for k in range(T):
        out = li_step(out, s @ w_ho, c, float(rw[k]))
        per_step.append(torch.nn.functional.cross_entropy(out.v, lab))
        drive = xt[:, k - 1] @ w_ih if k > 0 else torch.zeros(B, H, dtype=torch.float64)
        hidden, s = lif_step(hidden, drive + s @ w_hh, c)
    value = (torch.stack(per_step).mean() if loss == "per_timestep"
             else torch.nn.functional.cross_entropy(out.v_avg, lab))
    value.backward()
    return w_ho.grad.numpy()


@pytest.mark.parametrize("loss", ["avg_var_exp_weight", "per_timestep"])
def test_readout_weight_gradient_is_exact(loss):
    rng = np.random.default_rng(3)
    net = Network.initialise(12, 9, 4, params=ModelParams(dt=1.0, timesteps=120), seed=5,
                             init={"input_hidden": (0.5, 0.2), "hidden_hidden": (0.0, 0.2)})
    x = (rng.random((3, 120, 12)) < 0.08).astype(np.float32)
    y = np.array([0, 3, 1])
    result = compute_batch(net, x, y, LossOptions(loss=loss, **NO_REG))
    assert result.hidden_spike_counts.sum() > 20
    expected = _autograd_readout_gradient(net, x, y, loss)
    np.testing.assert_allclose(result.grads["hidden_output"], expected, rtol=1e-5, atol=1e-9)


def test_silent_hidden_layer_gives_uniform_softmax_and_zero_gradients():
    """No hidden spike: the readout stays 0, the loss is log(O) and nothing can change it."""
    rng = np.random.default_rng(0)
    net = Network.initialise(10, 6, 5, params=ModelParams(timesteps=80), seed=1,
                             init={"input_hidden": (-0.5, 0.1)})
    x = (rng.random((4, 80, 10)) < 0.2).astype(np.float32)
    result = compute_batch(net, x, np.array([0, 1, 2, 4]), LossOptions())
    assert result.hidden_spike_counts.sum() == 0
    np.testing.assert_array_equal(result.readout, 0.0)
    assert math.isclose(result.loss, math.log(5), rel_tol=1e-12)
    assert result.reg_loss == 0.0    # below the target rate, but mlGeNN's default reg_lambda_lower is 0
    for name, grad in result.grads.items():
        assert grad.shape == net.weights[name].shape and grad.dtype == np.float32
        np.testing.assert_array_equal(grad, 0.0)


def test_single_spike_readout_gradient_by_hand():
    """One hidden spike at step s reaches the readout at s + 1: V_o,k = W c sum_j beta^j alpha^(k-s-1-j),
    so dL/dW_ho[0, o] = (softmax_o - [o = y]) sum_k w_k dV_o,k/dW."""
    p = ModelParams(dt=1.0, timesteps=50)
    net = Network({"input_hidden": np.array([[8.0]]), "hidden_hidden": np.array([[0.0]]),
                   "hidden_output": np.array([[0.7, -0.2]])}, p)
    x = np.zeros((1, 50, 1), np.float32)
    x[0, 3, 0] = 1.0
    result = compute_batch(net, x, np.array([1]), LossOptions(**NO_REG))
    assert result.hidden_spike_counts.tolist() == [[1]]
    ev, _ = to_events(net, x, [1])
    _, _, rec, _ = cpu_engine.forward(net, ev)
    s = int(np.nonzero(np.diff(rec.offsets[0]))[0][0])
    c = (1 - p.alpha) * p.i_scale
    rw = readout_weights(p)
    kernel = np.zeros(50)       # dV_o,k / dW for a unit weight
    for k in range(s + 1, 50):
        kernel[k] = c * sum(p.beta ** j * p.alpha ** (k - s - 1 - j) for j in range(k - s))
    dvavg = float(rw @ kernel)
    v_avg = np.array([0.7, -0.2]) * dvavg
    np.testing.assert_allclose(result.readout[0], v_avg, rtol=1e-6)
    soft = np.exp(v_avg) / np.exp(v_avg).sum()
    expected = (soft - np.array([0.0, 1.0])) * dvavg
    np.testing.assert_allclose(result.grads["hidden_output"][0], expected, rtol=1e-6)


def _free_voltage_gradient(net: Network, x: np.ndarray, step: int) -> np.ndarray:
    """d V(step) / d W_ih of a lone hidden neuron before its first spike (V is linear in W there)."""
    p = net.params
    c = (1 - p.alpha) * p.i_scale
    grad = np.zeros(net.n_input)
    for t, i in zip(*np.nonzero(x[0, :, :])):
        arrive = t + 1
        if arrive <= step:
            grad[i] += c * sum(p.beta ** j * p.alpha ** (step - arrive - j) for j in range(step - arrive + 1))
    return grad


@pytest.mark.parametrize("n_spiking_samples,nu,branch", [(4, 0.5, "upper"), (1, 2.0, "lower")])
def test_regulariser_adds_mlgenn_jump_at_each_spike(n_spiking_samples, nu, branch):
    """mlGeNN subtracts lambda (N - nu B) / B^2 from LambdaV at each spike (N: batch spike count).
    A spike count has no gradient, so this is the gradient of r V(t_spike) with the spike's own time
    held fixed; for a lone neuron with one spike it is r dV(s)/dW, checked here by hand, with
    r converted to our adjoint's units (regulariser.py)."""
    p = ModelParams(dt=1.0, timesteps=60)
    net = Network({"input_hidden": np.array([[5.0], [4.0], [0.5]]), "hidden_hidden": np.array([[0.0]]),
                   "hidden_output": np.array([[0.3, -0.1]])}, p)
    B = 4
    x = np.zeros((B, 60, 3), np.float32)
    for b in range(n_spiking_samples):
        x[b, [2 + b, 4 + b], [0, 1]] = 1.0      # each spiking sample: one hidden spike
        x[b, 1, 2] = 1.0
    y = np.zeros(B, dtype=np.int64)
    lam_u, lam_l = 3e-3, 2e-3
    opts = LossOptions(reg_lambda_upper=lam_u, reg_lambda_lower=lam_l, reg_nu_upper=nu)
    plain = compute_batch(net, x, y, LossOptions(**NO_REG))
    reg = compute_batch(net, x, y, opts)
    assert plain.hidden_spike_counts[:, 0].tolist() == [1] * n_spiking_samples + [0] * (B - n_spiking_samples)
    N = n_spiking_samples
    lam = lam_u if branch == "upper" else lam_l
    assert (N > nu * B) == (branch == "upper")
    kappa = (1 - p.alpha) / (p.tau_mem * p.dt)
    r = lam * (N - nu * B) / B ** 2 / kappa
    expected = np.zeros(3)
    ev, _ = to_events(net, x, y)
    _, _, rec, _ = cpu_engine.forward(net, ev)
    for b in range(N):
        s = int(np.nonzero(np.diff(rec.offsets[b]))[0][0])
        # The spike is the neuron's last, so nothing after it scales the jump.
        expected += r * _free_voltage_gradient(net, x[b:b + 1], s)
    diff = reg.grads["input_hidden"][:, 0].astype(np.float64) - plain.grads["input_hidden"][:, 0]
    np.testing.assert_allclose(diff, expected, rtol=1e-4, atol=1e-12)
    np.testing.assert_array_equal(reg.grads["hidden_output"], plain.grads["hidden_output"])
    assert reg.loss == plain.loss
    # The sign: too many spikes (upper) pushes input weights down (positive gradient), too few up.
    assert np.sign(diff[0]) == (1 if branch == "upper" else -1)


def test_regulariser_dead_zone_with_nu_lower():
    p = ModelParams(dt=1.0, timesteps=60)
    net = Network({"input_hidden": np.array([[5.0], [4.0]]), "hidden_hidden": np.array([[0.0]]),
                   "hidden_output": np.array([[0.3, -0.1]])}, p)
    x = np.zeros((2, 60, 2), np.float32)
    x[:, [2, 4], [0, 1]] = 1.0
    y = np.zeros(2, dtype=np.int64)
    plain = compute_batch(net, x, y, LossOptions(**NO_REG))
    assert plain.hidden_spike_counts.sum() == 2            # one spike per sample: N / B = 1
    inside = compute_batch(net, x, y, LossOptions(reg_lambda_upper=1e-2, reg_lambda_lower=1e-2,
                                                  reg_nu_upper=3.0, reg_nu_lower=0.5))
    below = compute_batch(net, x, y, LossOptions(reg_lambda_upper=1e-2, reg_lambda_lower=1e-2,
                                                 reg_nu_upper=3.0, reg_nu_lower=2.0))
    mlgenn = compute_batch(net, x, y, LossOptions(reg_lambda_upper=1e-2, reg_lambda_lower=1e-2,
                                                  reg_nu_upper=3.0))
    for name in plain.grads:
        np.testing.assert_array_equal(inside.grads[name], plain.grads[name])
    assert inside.reg_loss == 0.0
    d_below = below.grads["input_hidden"] - plain.grads["input_hidden"]
    d_mlgenn = mlgenn.grads["input_hidden"] - plain.grads["input_hidden"]
    # Same lambda, excess (1 - 2) vs (1 - 3): the jumps scale with the excess.
    np.testing.assert_allclose(d_mlgenn, 2 * d_below, rtol=1e-5)
    assert (d_below < 0).all()
