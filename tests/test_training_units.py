"""Trainer building blocks against hand computations: Adam, learning-rate schedule, augmentation."""
import math

import numpy as np
import pytest

from eventprop_pipeline.data.events import from_events
from eventprop_pipeline.training.adam import AdamState, adam_step
from eventprop_pipeline.training.augment import (blend_events, concat, draw_blend_pairs, draw_shifts, make_blended,
                                                 shift_channels)
from eventprop_pipeline.training.schedule import LRSchedule


# ---- Adam ---------------------------------------------------------------------------------------

def test_adam_two_steps_match_hand_computation():
    w = {"a": np.array([[1.0, -2.0]], np.float32)}
    state = AdamState.zeros_like(w)
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    grads = [np.array([[0.5, 0.0]]), np.array([[-1.0, 3.0]])]
    expected = [1.0, -2.0]
    m, v = [0.0, 0.0], [0.0, 0.0]
    for t, g in enumerate(grads, start=1):
        adam_step(w, {"a": g}, state, lr, beta1=b1, beta2=b2, eps=eps)
        for i in range(2):   # Kingma & Ba, Algorithm 1, written out per scalar
            m[i] = b1 * m[i] + (1 - b1) * g[0, i]
            v[i] = b2 * v[i] + (1 - b2) * g[0, i] ** 2
            m_hat, v_hat = m[i] / (1 - b1 ** t), v[i] / (1 - b2 ** t)
            expected[i] -= lr * m_hat / (math.sqrt(v_hat) + eps)
        np.testing.assert_allclose(w["a"][0], expected, rtol=1e-6)
    assert state.step == 2 and w["a"].dtype == np.float32
    # first step moves every weight with a non-zero gradient by ~lr against the gradient's sign
    w1 = {"a": np.zeros((1, 3), np.float32)}
    adam_step(w1, {"a": np.array([[2.0, -1e-3, 0.0]])}, AdamState.zeros_like(w1), 0.01)
    np.testing.assert_allclose(w1["a"][0], [-0.01, 0.01, 0.0], rtol=1e-4)


# ---- learning-rate schedule ----------------------------------------------------------------------

def test_ease_in_multiplies_per_batch_up_to_the_target():
    s = LRSchedule(lr=1e-6, target=1e-3, ease_factor=1.05, patience=2, factor=0.5)
    rates = []
    for _ in range(200):
        rates.append(s.lr)
        s.after_batch()
    assert rates[1] == pytest.approx(1.05e-6) and rates[10] == pytest.approx(1e-6 * 1.05 ** 10)
    n = math.ceil(math.log(1e3) / math.log(1.05))           # batches needed to reach 1e-3
    assert rates[n - 1] < 1e-3 and rates[n] == 1e-3 and max(rates) == 1e-3


def test_rate_halves_after_patience_epochs_without_improvement():
    s = LRSchedule(lr=1e-3, target=1e-3, ease_factor=1.05, patience=2, factor=0.5)
    assert [s.after_epoch(a) for a in (0.5, 0.6, 0.6, 0.55)] == [False, False, False, True]
    assert s.lr == s.target == 5e-4
    assert [s.after_epoch(a) for a in (0.7, 0.6, 0.6)] == [False, False, True] and s.lr == 2.5e-4
    assert LRSchedule.from_dict(s.to_dict()) == s


# ---- augmentation --------------------------------------------------------------------------------

def dataset(samples, labels, n_channels=10, timesteps=50):
    """samples: list of [(step, unit), ...]."""
    idx = np.concatenate([np.full(len(s), i) for i, s in enumerate(samples)]).astype(np.int64)
    ev = np.array([e for s in samples for e in s], np.int64).reshape(-1, 2)
    return from_events(idx, ev[:, 0], ev[:, 1], np.array(labels), n_channels=n_channels, n_classes=3,
                       timesteps=timesteps, dt=1.0)


def events_of(data, i):
    s, u, _ = data.events(i)
    return sorted(zip(s.tolist(), u.tolist()))


def test_channel_shift_moves_spikes_and_drops_those_off_the_edge():
    data = dataset([[(0, 0), (1, 5), (2, 9)], [(0, 0), (1, 5), (2, 9)], [(3, 4)]], [0, 1, 2])
    out = shift_channels(data, np.array([2, -1, 0]))
    assert events_of(out, 0) == [(0, 2), (1, 7)]          # 9 + 2 = 11 is off the 10 channels
    assert events_of(out, 1) == [(1, 4), (2, 8)]          # 0 - 1 < 0 is dropped
    assert events_of(out, 2) == [(3, 4)]
    assert list(out.labels) == [0, 1, 2]
    np.testing.assert_array_equal(out.dense([0, 1, 2]).sum(axis=(1, 2)), [2, 2, 1])


def test_drawn_shifts_are_in_range_and_respect_the_probability():
    rng = np.random.default_rng(0)
    s = draw_shifts(rng, 20000, 40, 1.0)
    assert s.min() == -40 and s.max() == 39 and abs(s.mean() + 0.5) < 0.5
    s = draw_shifts(np.random.default_rng(1), 20000, 40, 0.25)
    assert 0.70 < np.mean(s == 0) < 0.80                  # 75 % unshifted, plus the draws of 0
    assert not draw_shifts(rng, 5, 0, 1.0).any()


def test_blend_aligns_centres_of_mass_and_keeps_chosen_spikes():
    first = (np.array([10, 20]), np.array([2, 4]))        # centre (15, 3)
    second = (np.array([0, 4]), np.array([10, 12]))       # centre (2, 11): moved by +13 steps, -8 channels
    steps, units = blend_events(first, second, np.array([True, False]), np.array([False, True]))
    assert sorted(zip(steps.tolist(), units.tolist())) == [(10, 2), (17, 4)]
    steps, units = blend_events(first, second, np.array([True, True]), np.array([True, True]))
    assert sorted(zip(steps.tolist(), units.tolist())) == [(10, 2), (13, 2), (17, 4), (20, 4)]


def test_midpoint_blend_moves_both_half_way_as_the_papers_code():
    """The Eventprop paper's Blend: X1 += int((m2 - m1) / 2), X2 += int((m1 - m2) / 2), in time and
    channel, int() truncating towards zero."""
    first = (np.array([10, 20]), np.array([2, 4]))        # centre (15, 3)
    second = (np.array([0, 5]), np.array([10, 13]))       # centre (2.5, 11.5)
    # first: int(-12.5 / 2) = -6 steps, int(8.5 / 2) = +4 channels; second: int(6.25) = +6, int(-4.25) = -4
    steps, units = blend_events(first, second, np.array([True, True]), np.array([True, True]), "midpoint")
    assert sorted(zip(steps.tolist(), units.tolist())) == [(4, 6), (6, 6), (11, 9), (14, 8)]
    steps, units = blend_events(first, (np.array([], int), np.array([], int)), np.array([True, False]),
                                np.array([], bool), "midpoint")
    assert list(zip(steps.tolist(), units.tolist())) == [(10, 2)]      # nothing to align with


def test_blend_pairs_are_distinct_samples_of_one_class():
    labels = np.array([0, 0, 1, 1, 1, 2])
    pairs = draw_blend_pairs(np.random.default_rng(0), labels, 500)
    assert (labels[pairs[:, 0]] == labels[pairs[:, 1]]).all()
    alone = pairs[:, 0] == 5
    assert (pairs[alone, 1] == 5).all() and (pairs[~alone, 0] != pairs[~alone, 1]).all()
    assert set(pairs[labels[pairs[:, 0]] == 1, 1]) == {2, 3, 4}


def test_blended_samples_are_subsets_of_the_aligned_union():
    a = [(5, 1), (7, 3), (9, 5)]                 # centre (7, 3)
    b = [(20, 6), (22, 8)]                       # centre (21, 7)
    a_first = set(a) | {(6, 2), (8, 4)}          # b moved by -14 steps, -4 channels onto a
    b_first = set(b) | {(19, 5), (21, 7), (23, 9)}   # a moved by +14 steps, +4 channels onto b
    data = dataset([a, b], [1, 1])
    new = make_blended(data, 60, (0.5, 0.5), np.random.default_rng(3))
    assert len(new) == 60 and (new.labels == 1).all()
    seen = set()
    for i in range(len(new)):
        ev = set(events_of(new, i))
        assert ev <= a_first or ev <= b_first
        seen |= ev
    assert seen == a_first | b_first             # every spike is kept in some blend
    full = make_blended(data, 6, (1.0, 1.0), np.random.default_rng(0))
    assert all(set(events_of(full, i)) in (a_first, b_first) for i in range(6))


def test_concat_keeps_samples_in_order():
    x = dataset([[(1, 1)], [(2, 2)]], [0, 1])
    y = dataset([[(3, 3)]], [2])
    z = concat(x, y)
    assert [events_of(z, i) for i in range(3)] == [[(1, 1)], [(2, 2)], [(3, 3)]]
    assert list(z.labels) == [0, 1, 2]
