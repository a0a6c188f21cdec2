"""Finite-difference helpers for the Eventprop gradient tests (shared by the test modules)."""
from __future__ import annotations

import numpy as np

from eventprop_pipeline import ModelParams, Network
from eventprop_pipeline.eventprop import cpu_engine
from eventprop_pipeline.eventprop.inputs import to_events
from eventprop_pipeline.eventprop.loss_terms import avg_readout_error, per_timestep_error


def small_problem(seed: int, *, n_in=4, n_hidden=4, n_out=3, dt=0.02, t_ms=40.0, batch=2):
    """A small recurrent network at small dt whose hidden neurons fire a few times on steep flanks."""
    rng = np.random.default_rng(seed)
    p = ModelParams(dt=dt, timesteps=int(round(t_ms / dt)))
    weights = {"input_hidden": rng.normal(1.6, 0.5, (n_in, n_hidden)),
               "hidden_hidden": rng.normal(0.0, 0.6, (n_hidden, n_hidden)),
               "hidden_output": rng.normal(0.0, 1.0, (n_hidden, n_out))}
    x = np.zeros((batch, p.timesteps, n_in), np.float32)
    for b in range(batch):
        for i in range(n_in):
            times = rng.uniform(0.0, 0.7 * t_ms, rng.integers(2, 5))
            x[b, (times / dt).astype(int), i] = 1.0
    return Network(weights, p), x, rng.integers(0, n_out, batch)


def forward_loss(net, x, labels, loss="avg_var_exp_weight"):
    """Loss, hidden spike counts and the step of every hidden spike, from the forward pass alone."""
    ev, lab = to_events(net, x, labels)
    v_avg, counts, rec, trace = cpu_engine.forward(net, ev, record_trace=True)
    value = per_timestep_error(trace, lab)[0] if loss == "per_timestep" else avg_readout_error(v_avg, lab)[0]
    steps = [np.repeat(np.arange(ev.timesteps), np.diff(rec.offsets[b])) for b in range(ev.batch_size)]
    return value, counts, steps


def _probe(net, name, idx, hs, loss_fn, base_counts, base_steps):
    """(every spike kept at every offset, largest spike shift in steps, (offsets taken, loss values)))."""
    moved, values, taken = 0, [], []
    for dh in hs:
        trial = net.copy()
        trial.weights[name][idx] += dh
        taken.append(float(trial.weights[name][idx]) - float(net.weights[name][idx]))  # float32 weights
        value, counts, steps = loss_fn(trial)
        if not np.array_equal(counts, base_counts):
            return False, moved, (taken, values)
        moved = max([moved] + [int(np.abs(a - b).max()) for a, b in zip(steps, base_steps) if len(a)])
        values.append(value)
    return True, moved, (taken, values)


def finite_difference(net, x, labels, name, loss_fn, *, h0=0.02, points=5, min_shift=8, max_shift=30,
                      h_max=0.5):
    """Slope of the loss along each weight of `name` (least squares over `points` evaluations in
    [-h, h]). h is searched so that no hidden spike appears or disappears and the spikes that move
    move by min_shift..max_shift steps: fewer steps and the loss is too coarse (spike times are
    whole steps), more and spike times stop being linear in the weight.

    Returns (gradient estimate, largest spike shift in steps per weight, True if every evaluation
    used kept every spike).
    """
    _, base_counts, base_steps = loss_fn(net)
    W = net.weights[name]
    fd = np.zeros(W.shape)
    shift = np.zeros(W.shape, dtype=np.int64)
    all_kept = True
    for idx in np.ndindex(W.shape):
        h, upper, best = h0, None, None
        for _ in range(24):
            hs = np.linspace(-h, h, points)
            kept, moved, values = _probe(net, name, idx, hs, loss_fn, base_counts, base_steps)
            if kept:
                best = (hs, moved, values)
            if not kept or moved > max_shift:
                upper = h
                h /= 2
            elif moved < min_shift and h < h_max and (upper is None or upper - h > 1e-3 * upper):
                h = min(2 * h, h_max) if upper is None else (h + upper) / 2
            else:
                break
        if best is None:
            all_kept = False
            fd[idx] = np.nan
            continue
        _, shift[idx], (taken, values) = best
        fd[idx] = np.polyfit(taken, values, 1)[0]
    return fd, shift, all_kept


def cosine(a, b) -> float:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
