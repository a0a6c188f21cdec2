"""The spike regulariser weighs against the loss as in mlGeNN's EventPropCompiler (docs/regulariser.md).

Independent truth: mlGeNN's backward-pass update equations, transcribed below from
ml_genn/compilers/event_prop_compiler.py (readout avg_var_exp_weight drive, LIF adjoint, transition
with the regulariser), run in mlGeNN's own variables LambdaV, LambdaI.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from eventprop_pipeline import ModelParams, Network
from eventprop_pipeline.eventprop import LossOptions, compute_batch, cpu_engine
from eventprop_pipeline.eventprop.adjoint_units import jump_ratio, mlgenn_scale
from eventprop_pipeline.eventprop.inputs import to_events
from eventprop_pipeline.eventprop.loss_terms import softmax

NO_REG = dict(reg_lambda_upper=0.0, reg_lambda_lower=0.0)


def mlgenn_readout_lambdas(p: ModelParams, g: np.ndarray, B: int):
    """mlGeNN's readout adjoint, backward step j = 0..T-1 (forward step T-1-j):
    drive = g exp(-(1 - t/T)) / (TauM B T dt);
    LambdaI = drive + (LambdaI - drive) Beta + A (LambdaV - drive)(Alpha - Beta);
    LambdaV = drive + (LambdaV - drive) Alpha.  Returns LambdaV, LambdaI (T, O) by forward step."""
    T = p.timesteps
    A = p.tau_mem / (p.tau_mem - p.tau_syn)
    lv, li = np.zeros_like(g), np.zeros_like(g)
    out_v, out_i = np.zeros((T, g.size)), np.zeros((T, g.size))
    for j in range(T):
        drive = g * math.exp(-(1.0 - j * p.dt / (T * p.dt))) / (p.tau_mem * B * T * p.dt)
        li = drive + (li - drive) * p.beta + A * (lv - drive) * (p.alpha - p.beta)
        lv = drive + (lv - drive) * p.alpha
        out_v[T - 1 - j], out_i[T - 1 - j] = lv, li
    return out_v, out_i


def _lone_spike_problem(T: int, B: int):
    """One hidden neuron that fires exactly once per sample (step ~T/20), two readout neurons."""
    p = ModelParams(dt=1.0, timesteps=T)
    net = Network({"input_hidden": np.array([[5.0], [4.0], [0.5]]), "hidden_hidden": np.array([[0.0]]),
                   "hidden_output": np.array([[0.6, -0.4]])}, p)
    x = np.zeros((B, T, 3), np.float32)
    s0 = T // 20
    x[:, [s0, s0 + 2], [0, 1]] = 1.0
    x[:, s0 - 1, 2] = 1.0
    return net, x, np.zeros(B, dtype=np.int64)


@pytest.mark.parametrize("T,B", [(1000, 2), (300, 3)])
def test_regulariser_to_loss_ratio_matches_mlgenn(T, B):
    """For a neuron's only spike, loss and regulariser enter as one jump of its adjoint and reach every
    input weight through the same dynamics: regulariser gradient / loss gradient = reg jump / loss
    jump, in both systems. mlGeNN: (-r) / (W (LambdaV - LambdaI) / (I - V)), r = lambda (N - nu B) / B^2."""
    net, x, y = _lone_spike_problem(T, B)
    p = net.params
    lam, nu = 2.5e-6, 0.25
    plain = compute_batch(net, x, y, LossOptions(**NO_REG))
    reg = compute_batch(net, x, y, LossOptions(reg_lambda_upper=lam, reg_nu_upper=nu))
    assert plain.hidden_spike_counts[:, 0].tolist() == [1] * B
    ours = (reg.grads["input_hidden"][:2, 0].astype(np.float64) - plain.grads["input_hidden"][:2, 0]) \
        / plain.grads["input_hidden"][:2, 0]
    assert ours[0] == pytest.approx(ours[1], rel=1e-4)      # one jump reaches both weights alike

    ev, _ = to_events(net, x, y)
    _, _, rec, _ = cpu_engine.forward(net, ev)
    s = int(np.nonzero(np.diff(rec.offsets[0]))[0][0])     # step of the spike (same in every sample)
    den = rec.den[0][0]
    g = -(softmax(plain.readout.astype(np.float64)[0]) - np.eye(2)[y[0]])   # mlGeNN's g, 1 - softmax for the true class
    lv, li = mlgenn_readout_lambdas(p, g, B)
    w = net.weights["hidden_output"][0].astype(np.float64)
    loss_jump = float(w @ (lv[s + 1] - li[s + 1])) / den   # the spike reaches the readout at step s + 1
    r = lam * (B - nu * B) / B ** 2
    reference = -r / loss_jump
    assert ours[0] / reference == pytest.approx(1.0, abs=0.15), (ours[0], reference)


@pytest.mark.parametrize("dt", [1.0, 0.5])
def test_readout_jump_term_matches_mlgenn_units(dt):
    """Our jump term A - rho Bq of a readout neuron, times -kappa, follows mlGeNN's LambdaV - LambdaI
    under the same readout error over the whole trial (within 15 %, the discretisations differ)."""
    p = ModelParams(dt=dt, timesteps=int(600 / dt))
    T, B = p.timesteps, 1
    g = np.array([1.0])
    lv, li = mlgenn_readout_lambdas(p, g, B)
    c = (1 - p.alpha) * p.i_scale
    rw = np.exp(-np.arange(T) / T) / T
    a = bq = 0.0
    z = np.zeros(T)
    for k in range(T - 1, -1, -1):
        a = -g[0] / B * rw[k] + p.alpha * a
        bq = c * a + p.beta * bq
        z[k] = a - jump_ratio(p) * bq
    ratio = (lv - li)[:, 0] / (-mlgenn_scale(p) * z)
    inner = slice(int(50 / dt), T - int(100 / dt))
    np.testing.assert_allclose(ratio[inner], 1.0, atol=0.15)
    # Weight gradients: mlGeNN's -tau_syn LambdaI is ours (Bq) / tau_mem, one scale for every layer.
    bq_trace = np.zeros(T)
    a = bq = 0.0
    for k in range(T - 1, -1, -1):
        a = -g[0] / B * rw[k] + p.alpha * a
        bq = c * a + p.beta * bq
        bq_trace[k] = bq
    np.testing.assert_allclose((-p.tau_syn * li[inner, 0]) / (bq_trace[inner] / p.tau_mem), 1.0, atol=0.05)


def test_jump_ratio_tends_to_continuous_eventprop():
    for dt in (1.0, 0.1, 0.01):
        p = ModelParams(dt=dt)
        assert jump_ratio(p) == pytest.approx(p.tau_mem / p.tau_syn, rel=0.6 * dt / p.tau_mem)
