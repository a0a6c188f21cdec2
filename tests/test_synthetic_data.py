"""The built-in synthetic set: deterministic, fast, temporal, and able to drive the paper's network."""
import numpy as np
import pytest

from eventprop_pipeline import Network
from eventprop_pipeline.data import SyntheticConfig, generate_split, iterate_batches, load_dataset
from eventprop_pipeline.data.synthetic import class_templates
from eventprop_core.errors import ConfigError
from eventprop_pipeline.model import simulate


def test_same_seed_same_data_other_seed_other_data():
    cfg = SyntheticConfig(n_train=40, n_test=20, seed=5)
    a, b = generate_split(cfg, "train"), generate_split(cfg, "train")
    assert np.array_equal(a.steps, b.steps) and np.array_equal(a.units, b.units) and np.array_equal(a.labels, b.labels)
    c = generate_split(SyntheticConfig(n_train=40, n_test=20, seed=6), "train")
    assert not np.array_equal(a.labels, c.labels)
    test = generate_split(cfg, "test")
    assert len(test) == 20 and not np.array_equal(test.labels, a.labels[:20])


def test_shape_defaults_match_shd_and_sizes_are_configurable():
    d = load_dataset("synthetic", "test", synthetic=SyntheticConfig(n_test=10))
    assert (d.n_channels, d.n_classes, d.timesteps, d.dt) == (700, 20, 1000, 1.0)
    x = d.dense([0, 1])
    assert x.shape == (2, 1000, 700) and set(np.unique(x)) <= {0.0, 1.0}
    small = load_dataset("synthetic", "train", dt=2.0, timesteps=300,
                         synthetic=SyntheticConfig(n_channels=64, n_classes=6, n_train=12))
    assert (small.n_channels, small.n_classes, small.timesteps, len(small)) == (64, 6, 300, 12)
    assert small.steps.max() < 300 and small.units.max() < 64
    with pytest.raises(ConfigError, match="n_classes must be <="):
        SyntheticConfig(n_classes=500)


def test_class_pairs_share_channels_but_differ_in_time():
    templates = class_templates(20)
    assert len(set(templates)) == 20
    for c in range(0, 20, 2):
        assert templates[c] == templates[c + 1][::-1]
    d = generate_split(SyntheticConfig(n_train=400, background_hz=0.0), "train")
    x = d.dense(np.arange(len(d)))

    def profile(label, axis):
        p = x[d.labels == label].mean(axis=0).sum(axis=axis)
        return p / p.sum()
    # Class 0 vs 1: same syllables, reversed order. Channel profiles close, time-channel maps far apart.
    ch_dist = np.abs(profile(0, 0) - profile(1, 0)).sum()
    tc0 = x[d.labels == 0].mean(axis=0).reshape(10, 100, 700).sum(axis=1)
    tc1 = x[d.labels == 1].mean(axis=0).reshape(10, 100, 700).sum(axis=1)
    tc_dist = np.abs(tc0 / tc0.sum() - tc1 / tc1.sum()).sum()
    assert ch_dist < 0.35 and tc_dist > 1.0, (ch_dist, tc_dist)


def test_drives_the_paper_initialisation():
    d = generate_split(SyntheticConfig(n_test=16), "test")
    net = Network.initialise(700, 64, 20, seed=0)
    r = simulate(net, d.dense(np.arange(16)))
    per_neuron = r.hidden_spike_counts.mean()
    assert 2 < per_neuron < 100, per_neuron
    assert (r.hidden_spike_counts.sum(axis=0) > 0).mean() > 0.9


def test_batches_shuffle_with_seed_and_cover_everything():
    d = generate_split(SyntheticConfig(n_test=10), "test")
    order = [idx for idx, _, _ in iterate_batches(d, 4, shuffle=True, seed=1)]
    again = [idx for idx, _, _ in iterate_batches(d, 4, shuffle=True, seed=1)]
    assert all(np.array_equal(a, b) for a, b in zip(order, again))
    assert sorted(np.concatenate(order).tolist()) == list(range(10))
    other_epoch = [idx for idx, _, _ in iterate_batches(d, 4, shuffle=True, seed=1, epoch=1)]
    assert not all(np.array_equal(a, b) for a, b in zip(order, other_epoch))
    idx, x, y = next(iterate_batches(d, 4))
    assert x.shape == (4, 1000, 700) and np.array_equal(y, d.labels[:4])
    assert np.array_equal(x[2], d.dense([2])[0])
