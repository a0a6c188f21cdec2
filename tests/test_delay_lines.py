"""Delay-line input: the transform by hand, and end to end (train config -> network metadata -> NetX
metadata -> every backend bins the data with the copies; emulator and float model agree)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from eventprop_pipeline import ModelParams, Network
from eventprop_pipeline.cli.main import main
from eventprop_pipeline.data.delay_lines import DelayLines, for_network
from eventprop_pipeline.data.events import from_events
from eventprop_pipeline.data.spike_files import write_spike_file
from eventprop_core.errors import ConfigError
from eventprop_pipeline.training.config import load_train_config


def test_copies_by_hand():
    # One sample, 4 channels, T = 10: spikes (step 1, ch 0), (step 5, ch 3), (step 8, ch 2).
    data = from_events(np.zeros(3, np.int64), np.array([1, 5, 8]), np.array([0, 3, 2]), np.array([0]),
                       n_channels=4, n_classes=1, timesteps=10, dt=1.0)
    out = DelayLines(copies=2, step=3).apply(data)
    assert out.n_channels == 12 and out.timesteps == 10
    # copy 1 (+3 steps, channels 4..7): (4, 4), (8, 7); (11, 6) falls past T. copy 2 (+6, 8..11): (7, 8).
    expected = sorted([(1, 0), (5, 3), (8, 2), (4, 4), (8, 7), (7, 8)])
    assert list(zip(out.steps.tolist(), out.units.tolist())) == expected
    assert out.offsets.tolist() == [0, 6]
    assert DelayLines().apply(data) is data


def test_pooling_then_copies_by_hand():
    # 5 channels pooled by 2 -> 3 channels (0-1, 2-3, 4); spikes (2, ch 0) and (2, ch 1) merge.
    data = from_events(np.zeros(4, np.int64), np.array([2, 2, 3, 6]), np.array([0, 1, 4, 3]), np.array([0]),
                       n_channels=5, n_classes=1, timesteps=8, dt=1.0)
    out = DelayLines(copies=1, step=4, pool=2).apply(data)
    assert out.n_channels == 6
    # base: (2, 0), (3, 2), (6, 1); copy (+4, channels 3..5): (6, 3), (7, 5); (10, 4) falls past T.
    assert list(zip(out.steps.tolist(), out.units.tolist())) == sorted([(2, 0), (3, 2), (6, 1), (6, 3), (7, 5)])
    assert out.counts.tolist() == [1] * 5
    graded = from_events(np.zeros(3, np.int64), np.array([2, 2, 2]), np.array([0, 0, 1]), np.array([0]),
                         n_channels=5, n_classes=1, timesteps=8, dt=1.0, graded=True)
    assert graded.counts.tolist() == [2, 1]
    assert DelayLines(pool=2).apply(graded).counts.tolist() == [3]   # graded counts add up
    assert for_network({"input_transform": DelayLines(1, 4, 2).to_metadata()}) == DelayLines(1, 4, 2)


def test_config_switch_and_bad_values(tmp_path):
    cfg = load_train_config(None, {"network.delay_lines": 3, "network.delay_step": 25, "network.input_pool": 4})
    assert cfg.network.input_delays() == DelayLines(3, 25, 4)
    with pytest.raises(ConfigError, match="input_pool"):
        load_train_config(None, {"network.input_pool": 0})
    with pytest.raises(ConfigError, match="delay_step"):
        load_train_config(None, {"network.delay_step": 0})
    with pytest.raises(ConfigError, match="delay_lines"):
        load_train_config(None, {"network.delay_lines": -1})


def _data_root(tmp_path, n=24, T=120, seed=0):
    """An SHD-layout test split: class c (0..3) fires a burst on channels 40c..40c+20 around 15 + 20c ms."""
    rng = np.random.default_rng(seed)
    times, units, labels = [], [], []
    for i in range(n):
        c = i % 4
        k = 60
        t = np.clip(rng.normal(15 + 20 * c, 5, k), 0, T - 1) / 1000.0
        u = rng.integers(40 * c, 40 * c + 20, k)
        times.append(t), units.append(u), labels.append(c)
    (tmp_path / "SHD").mkdir(parents=True)
    write_spike_file(tmp_path / "SHD" / "shd_test.h5", times, units, labels)
    write_spike_file(tmp_path / "SHD" / "shd_train.h5", times, units, labels)
    return tmp_path


def _delay_network(T=120):
    """700 channels x (1 + 2 copies) -> 24 -> 20 (SHD's classes; 0..3 used), weights that read each
    class's channels and their copies."""
    rng = np.random.default_rng(1)
    delays = DelayLines(copies=2, step=15)
    w_ih = rng.normal(0.0, 0.02, (delays.n_channels(700), 24))
    for j in range(3):
        for c in range(4):
            w_ih[j * 700 + 40 * c: j * 700 + 40 * c + 20, 6 * c: 6 * c + 6] += 0.35
    w_ho = rng.normal(0.0, 0.05, (24, 20))
    for c in range(4):
        w_ho[6 * c: 6 * c + 6, c] += 0.4
    net = Network({"input_hidden": w_ih, "hidden_hidden": rng.normal(0, 0.02, (24, 24)), "hidden_output": w_ho},
                  ModelParams(timesteps=T), {"input_transform": delays.to_metadata()})
    return net, delays


def test_float_and_emulator_agree_on_a_delay_line_network(tmp_path):
    root = _data_root(tmp_path / "data")
    net, delays = _delay_network()
    model, netx = tmp_path / "model.npz", tmp_path / "model.h5"
    net.save(model)
    common = ["--dataset", "shd", "--data-root", str(root), "--split", "test"]
    assert main(["export", str(model), "--out", str(netx), *common, "--json"]) == 0
    from netx_export.hdf5_io import read_netx
    fx = read_netx(netx)
    assert fx.n_input == 2100
    assert for_network(fx.metadata, "netx") == delays           # the transform travels in the NetX metadata
    pf, pe = tmp_path / "float.npz", tmp_path / "emu.npz"
    assert main(["evaluate", str(model), *common, "--predictions", str(pf), "--json"]) == 0
    assert main(["evaluate", str(netx), *common, "--predictions", str(pe), "--json"]) == 0
    with np.load(pf) as f, np.load(pe) as e:
        assert f["label"].tolist() == e["label"].tolist()
        assert (f["pred"] == f["label"]).mean() >= 0.9          # the copies carry the classes' evidence
        assert (f["pred"] == e["pred"]).mean() >= 0.95
        np.testing.assert_allclose(e["hidden_spikes"].sum(), f["hidden_spikes"].sum(), rtol=0.05)


def test_network_without_its_transform_is_refused(tmp_path):
    root = _data_root(tmp_path / "data", n=4)
    net, _ = _delay_network()
    net.provenance = {}
    model = tmp_path / "bare.npz"
    net.save(model)
    assert main(["evaluate", str(model), "--dataset", "shd", "--data-root", str(root), "--split", "test"]) == 1


@pytest.mark.lava
def test_lava_runs_a_delay_line_network_as_the_emulator_does(tmp_path):
    """Issue 12's end to end for delay lines, last leg: the exported network's 2100 inputs (700
    channels and two delayed copies) go through Lava's CPU simulator and give the emulator's
    scores, readouts and classes exactly."""
    root = _data_root(tmp_path / "data", n=8, T=60)
    net, _ = _delay_network(T=60)
    model, netx = tmp_path / "model.npz", tmp_path / "model.h5"
    net.save(model)
    common = ["--dataset", "shd", "--data-root", str(root), "--split", "test", "--limit", "3"]
    assert main(["export", str(model), "--out", str(netx), *common]) == 0
    pe, pl = tmp_path / "emu.npz", tmp_path / "lava.npz"
    te, tl = tmp_path / "emu_trace.npz", tmp_path / "lava_trace.npz"
    assert main(["evaluate", str(netx), *common, "--predictions", str(pe), "--trace", str(te)]) == 0
    assert main(["evaluate", str(netx), *common, "--backend", "lava", "--predictions", str(pl),
                 "--trace", str(tl)]) == 0
    with np.load(pe) as e, np.load(pl) as la:
        assert e["label"].tolist() == la["label"].tolist() and len(e["label"]) == 3
        np.testing.assert_array_equal(la["score"], e["score"])
        np.testing.assert_array_equal(la["pred"], e["pred"])
        np.testing.assert_array_equal(la["hidden_spikes"], e["hidden_spikes"])
        assert e["hidden_spikes"].sum() > 0 and (e["pred"] == e["label"]).mean() >= 2 / 3
    with np.load(te) as e, np.load(tl) as la:
        assert la["readout_v"].shape == e["readout_v"].shape == (3, 62, 20)     # T + 2 Lava steps
        np.testing.assert_array_equal(la["readout_v"], e["readout_v"])
        assert np.abs(e["readout_v"]).sum() > 0
