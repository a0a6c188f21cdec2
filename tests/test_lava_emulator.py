"""The emulator against Lava itself (lava-nc 0.10 fixed_pt CPU simulator via netx): hidden spikes and
readout u and v on every step, bit for bit, on random networks and edge cases; the Lava runner's
per-sample reset and checkpoint resume."""
from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest

from eventprop_pipeline.data.events import from_events
from netx_export import hdf5_io
from netx_export.emulator import emulate
from netx_export.fixed_point import FixedPointLayer, FixedPointNetwork
from netx_export.hdf5_io import write_netx

pytestmark = pytest.mark.lava


def spikes_to_dataset(x: np.ndarray, n_classes: int = 5):
    s, t, u = np.nonzero(x)
    n, T, n_in = x.shape
    return from_events(s, t, u, np.arange(n) % n_classes, n_channels=n_in, n_classes=n_classes,
                       timesteps=T, dt=1.0)


def random_spikes(n, T, n_in, rate, seed):
    return (np.random.default_rng(seed).random((n, T, n_in)) < rate).astype(np.uint8)


def compare_with_lava(fx, data, path, *, indices=None, check_active=True, **lava_kwargs):
    """Run Lava and the emulator; every recorded value must be identical. Returns both results."""
    from netx_export.lava_runner import run_lava

    if not path.exists():
        write_netx(fx, path)
    lava = run_lava(path, data, indices=indices, progress=False, record_hidden=True, **lava_kwargs)
    emu = emulate(fx, data, indices=indices, record_trace=True, record_hidden=True)
    np.testing.assert_array_equal(lava.hidden_spikes, emu.hidden_spikes)
    np.testing.assert_array_equal(lava.readout_u, emu.readout_u)
    np.testing.assert_array_equal(lava.readout_v, emu.readout_v)
    np.testing.assert_array_equal(lava.hidden_spike_counts, emu.hidden_spike_counts)
    np.testing.assert_array_equal(lava.score, emu.score)
    np.testing.assert_array_equal(lava.pred, emu.pred)
    if check_active:
        assert emu.hidden_spikes.any() and np.any(emu.readout_v != 0)
    return lava, emu


def random_net(seed, n_in=30, H=16, O=5, T=40, bits=8):
    rng = np.random.default_rng(seed)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    hid = FixedPointLayer("dense_rec", rng.integers(lo // 2, hi + 1, (H, n_in)), 700, 300, 150,
                          weight_rec=rng.integers(lo, hi + 1, (H, H)), bias=rng.integers(-20, 40, H))
    out = FixedPointLayer("dense", rng.integers(lo, hi + 1, (O, H)), 900, 100, 2**17, bias=rng.integers(-5, 5, O))
    return FixedPointNetwork(n_in, hid, out, timesteps=T)


def test_random_recurrent_network_any_order_and_interrupted_run_resumes(tmp_path, monkeypatch):
    # Positive and negative weights, recurrence, biases; samples run in the order 2, 0, 1 after one
    # another in one Lava runtime must equal the emulator's isolated samples (the reset is exact).
    from netx_export import lava_runner

    fx = random_net(0)
    data = spikes_to_dataset(random_spikes(3, 40, 30, 0.15, seed=0))
    path, ck = tmp_path / "net.h5", tmp_path / "ck.npz"
    lava, emu = compare_with_lava(fx, data, path, indices=[2, 0, 1])
    assert lava.indices.tolist() == [2, 0, 1]
    assert emu.hidden_spikes.sum() > 500

    # Interrupt (Ctrl-C) after the second sample was saved; the rerun does only the third.
    save = lava_runner._save_checkpoint
    calls = []

    def save_then_interrupt(*a):
        save(*a)
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(lava_runner, "SAVE_INTERVAL_S", 0.0)      # save after every sample
    monkeypatch.setattr(lava_runner, "_save_checkpoint", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        lava_runner.run_lava(path, data, progress=False, checkpoint=ck)
    monkeypatch.setattr(lava_runner, "_save_checkpoint", save)
    with np.load(ck, allow_pickle=False) as z:
        assert z["indices"].tolist() == [0, 1]
    again = lava_runner.run_lava(path, data, progress=False, checkpoint=ck)
    assert len(again.sample_seconds) == 1
    np.testing.assert_array_equal(again.readout_v[[2, 0, 1]], lava.readout_v)
    np.testing.assert_array_equal(again.score[[2, 0, 1]], lava.score)
    write_netx(random_net(1), tmp_path / "other.h5")
    with pytest.raises(lava_runner.LavaRunError, match="another network file"):
        lava_runner.run_lava(tmp_path / "other.h5", data, progress=False, checkpoint=ck)
    other_data = spikes_to_dataset(random_spikes(3, 40, 30, 0.15, seed=1))
    with pytest.raises(lava_runner.LavaRunError, match="other input data"):
        lava_runner.run_lava(path, other_data, progress=False, checkpoint=ck)

    # Saves are throttled on long runs, but an interrupt still keeps every finished sample.
    monkeypatch.setattr(lava_runner, "SAVE_INTERVAL_S", 1e9)
    real_score = lava_runner.sequential_score
    scored = []

    def score_then_interrupt(*a):
        scored.append(1)
        if len(scored) == 2:
            raise KeyboardInterrupt
        return real_score(*a)

    monkeypatch.setattr(lava_runner, "sequential_score", score_then_interrupt)
    ck2 = tmp_path / "ck2.npz"
    with pytest.raises(KeyboardInterrupt):
        lava_runner.run_lava(path, data, progress=False, checkpoint=ck2)
    with np.load(ck2, allow_pickle=False) as z:
        assert z["indices"].tolist() == [0]


def test_threshold_equality_and_idecay_4096(tmp_path):
    # Hidden neuron h gets weight 15 + h from input 0; with iDecay 4096 (u = 64 a, no memory) and
    # vDecay 0 (v integrates), one input spike puts neuron 5 exactly at 64 * vThMant: no spike.
    H, T = 10, 30
    w = np.zeros((H, 3), int)
    w[:, 0] = 15 + np.arange(H)
    w[:, 1] = -3
    hid = FixedPointLayer("dense_rec", w, 4096, 0, 20, weight_rec=np.eye(H, dtype=int)[::-1] * -2)
    out = FixedPointLayer("dense", np.tile(np.arange(H) - 4, (2, 1)), 4096, 0, 2**17)
    fx = FixedPointNetwork(3, hid, out, timesteps=T)
    x = np.zeros((2, T, 3), np.uint8)
    x[0, 0, 0] = 1
    x[1, [0, 5, 9], 0] = 1
    x[1, 3:20:4, 1] = 1
    _, emu = compare_with_lava(fx, spikes_to_dataset(x, 2), tmp_path / "th.h5")
    first = emu.hidden_spikes[0, 1]           # Lava step 2: input column 0 arrives
    assert not first[:6].any() and first[6:].all()


def test_u_wraps_and_v_saturates_idecay_0(tmp_path, monkeypatch):
    # Every input fires every step: the readout's u (iDecay 0 = no decay in Lava: du = -1 + 1) grows by
    # 64 * sum(w) per step and wraps at +-2^23; v (vDecay 0) saturates at +-(2^23 - 1).
    n_in, H, O, T = 40, 40, 2, 60
    hid = FixedPointLayer("dense_rec", np.full((H, n_in), 127), 4096, 4095, 100,
                          weight_rec=np.zeros((H, H), int) + np.eye(H, dtype=int))
    out_w = np.vstack([np.full(H, 127), np.full(H, -128)])
    out = FixedPointLayer("dense", out_w, 0, 0, 2**17)
    fx = FixedPointNetwork(n_in, hid, out, timesteps=T)
    path = tmp_path / "wrap.h5"
    write_netx(FixedPointNetwork(n_in, hid, FixedPointLayer("dense", out_w, 1, 0, 2**17), timesteps=T), path)
    with h5py.File(path, "r+") as f:          # our writer refuses iDecay 0; Lava itself accepts it
        f["layer/2/neuron/iDecay"][()] = 0
    monkeypatch.setattr(hdf5_io, "read_netx", lambda p: fx)
    data = spikes_to_dataset(np.ones((1, T, n_in), np.uint8), 2)
    _, emu = compare_with_lava(fx, data, path)
    u, v = emu.readout_u[0].astype(np.int64), emu.readout_v[0]
    assert np.any(np.diff(u[:, 0]) < 0) and np.any(np.diff(u[:, 1]) > 0)    # both directions wrapped
    assert (v == 2**23 - 1).any() and (v == -(2**23 - 1)).any()


@pytest.mark.parametrize("bits", [(2, 1), (4, 3), (5, 6), (7, 8),     # every width 1..8 once by default
                                  pytest.param((1, 2), marks=pytest.mark.slow),
                                  pytest.param((3, 4), marks=pytest.mark.slow),
                                  pytest.param((6, 5), marks=pytest.mark.slow),
                                  pytest.param((8, 7), marks=pytest.mark.slow)])
def test_weight_bits(tmp_path, bits):
    # Hidden weights of bits[0] bits, readout weights of bits[1] bits (netx rescales each layer by a
    # power of two and Lava truncates; at 1 bit a {-1, 0} matrix is 'inhibitory' in Lava and two
    # coincident -1 spikes sum to -1: the (2, 1) case fails if the emulator ignores that).
    hb, ob = bits
    rng = np.random.default_rng(hb * 10 + ob)
    n_in, H, O, T = 20, 12, 3, 30

    def w(shape, b):
        lo, hi = -(2 ** (b - 1)), 2 ** (b - 1) - 1
        return rng.integers(lo, hi + 1, shape)

    win, wrec = w((H, n_in), hb), w((H, H), hb)
    win[:, :3] = 2 ** (hb - 1) - 1 if hb > 1 else 0   # some drive even at few bits
    vth = max(1, 2 ** (hb - 1))
    hid = FixedPointLayer("dense_rec", win, 1000, 200, vth, weight_rec=wrec, weight_bits=hb)
    out = FixedPointLayer("dense", w((O, H), ob), 800, 300, 2**17, weight_bits=ob)
    if hb == 1:                               # {-1, 0} only: give the hidden layer a bias to fire
        hid.bias = np.full(H, 1)
        hid.vth_mant = 0
    fx = FixedPointNetwork(n_in, hid, out, timesteps=T)
    data = spikes_to_dataset(random_spikes(2, T, n_in, 0.3, seed=hb), 3)
    compare_with_lava(fx, data, tmp_path / "bits.h5", check_active=False)


@pytest.mark.parametrize("timesteps, n, bits", [(120, 2, 8), pytest.param(1000, 3, 8, marks=pytest.mark.slow),
                                                pytest.param(1000, 3, 4, marks=pytest.mark.slow)])
def test_mlgenn_fixture_quantized_exported(tmp_path, timesteps, n, bits):
    from conftest import FIXTURE_DIR
    from eventprop_pipeline.data.spike_files import read_spike_file
    from eventprop_pipeline.mlgenn_import import import_mlgenn
    from netx_export.quantize import quantize

    net = import_mlgenn(FIXTURE_DIR, 29)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fx, _ = quantize(net, weight_bits=bits)
    data = read_spike_file(FIXTURE_DIR / "SHD" / "shd_test.h5", name="shd", timesteps=timesteps, limit=n)
    lava, emu = compare_with_lava(fx, data, tmp_path / "fixture.h5")
    assert emu.hidden_spike_counts.sum() > 100


def test_hardware_without_lava_loihi_is_a_clear_error(tmp_path):
    from conftest import run_in_lava
    from eventprop_core.errors import PipelineError
    from netx_export.lava_runner import run_lava

    if run_in_lava("from lava.utils.loihi import is_installed; print(is_installed())").strip() == "True":
        pytest.skip("lava-loihi is installed here")
    fx = random_net(3, T=10)
    write_netx(fx, tmp_path / "n.h5")
    data = spikes_to_dataset(random_spikes(1, 10, 30, 0.1, seed=3))
    with pytest.raises(PipelineError, match="lava-loihi"):
        run_lava(tmp_path / "n.h5", data, hardware=True, progress=False)


def test_cli_evaluate_backend_lava_equals_emulator(tmp_path, capsys):
    import json

    from conftest import FIXTURE_DIR
    from eventprop_pipeline.cli.main import main

    fx = random_net(5, n_in=700, H=24, O=20, T=60)
    fx.hidden.weight[:, :] = np.random.default_rng(5).integers(-20, 60, (24, 700))
    path = write_netx(fx, tmp_path / "cli.h5")
    common = [str(path), "--dataset", "shd", "--data-root", str(FIXTURE_DIR), "--json"]
    assert main(["evaluate", *common, "--backend", "lava", "--lava-samples", "2", "--trace", str(tmp_path / "l.npz"),
                 "--checkpoint", str(tmp_path / "ck.npz")]) == 0
    lava = json.loads(capsys.readouterr().out)
    assert main(["evaluate", *common, "--limit", "2", "--trace", str(tmp_path / "e.npz")]) == 0
    emu = json.loads(capsys.readouterr().out)
    assert lava["backend"] == "lava" and lava["n"] == 2 and lava["accuracy"] == emu["accuracy"]
    with np.load(tmp_path / "l.npz", allow_pickle=False) as a, np.load(tmp_path / "e.npz", allow_pickle=False) as b:
        assert a["readout_v"].shape == (2, 62, 20)
        np.testing.assert_array_equal(a["readout_v"], b["readout_v"])
        assert np.any(a["readout_v"] != 0)
