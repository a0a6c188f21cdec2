"""The Lava-free NetX runtime (docs/netx_runtime.md): files that lava-dl 0.6 loads but this project's
exporter does not write (several layers, recurrent layers, delays, biases, per-neuron parameters, a
last layer that spikes, ml_genn_netx's layout) are read as netx reads them and emulated bit for bit
against Lava itself; what netx would refuse or misread is a one-line error naming the dataset."""
from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from conftest import FIXTURE_DIR
from eventprop_pipeline.data.events import from_events
from eventprop_core.errors import PipelineError
from netx_export.emulator import emulate
from netx_export.hdf5_io import NetxFileError, read_netx
from netx_export.netx_features import network_features
from netx_files import write_raw_netx

T = 30


def dataset(n, n_in, rate, seed, T=T):
    x = np.random.default_rng(seed).random((n, T, n_in)) < rate
    s, t, u = np.nonzero(x)
    return from_events(s, t, u, np.arange(n) % 4, n_channels=n_in, n_classes=4, timesteps=T, dt=1.0)


def feature_layers(seed=0) -> list[dict]:
    """input 10 -> dense_rec 12 (flat weights, bias, per-neuron iDecay and vThMant, one non-leaky neuron)
    -> dense 9 (2-D delays, scalar bias, per-neuron vDecay) -> dense_rec 9 (LOIHI neuron type; scalar delay
    shared with its recurrent synapse, delay_rec equal to it) -> dense 5 (per-source delays, no neuron
    group: netx's default integrator)."""
    rng = np.random.default_rng(seed)
    i_decay = rng.integers(200, 1500, 12)
    i_decay[3] = 0
    return [
        {"kind": "dense_rec", "n": 12, "weight": rng.integers(-40, 120, (12, 10)).reshape(-1),
         "weight_rec": rng.integers(-80, 80, (12, 12)).reshape(-1), "bias": rng.integers(-20, 40, 12).astype(np.int16),
         "neuron": {"iDecay": i_decay.astype(np.int32), "vDecay": np.int32(300),
                    "vThMant": rng.integers(60, 200, 12).astype(np.int32)}},
        {"kind": "dense", "weight": rng.integers(-30, 127, (9, 12)), "delay": rng.integers(0, 6, (9, 12)).astype(np.int8),
         "bias": np.int16(6),
         "neuron": {"iDecay": np.int32(900), "vDecay": rng.integers(50, 600, 9).astype(np.int32), "vThMant": np.int32(120)}},
        {"kind": "dense_rec", "weight": rng.integers(-60, 200, (9, 9)), "weight_rec": rng.integers(-100, 100, (9, 9)),
         "delay": np.int32(2), "delay_rec": np.full((9, 9), 2, np.int32), "neuron_type": "LOIHI",
         "neuron": {"iDecay": np.int32(1000), "vDecay": np.int32(400), "vThMant": np.int32(100)}},
        {"kind": "dense", "weight": rng.integers(-128, 128, (5, 9)), "delay": rng.integers(0, 4, 9).astype(np.int16),
         "neuron": None},
    ]


def mlgenn_layers(seed=1, n_in=20, H=16, O=4) -> list[dict]:
    """ml_genn_netx's layout: float32 weights, a recurrent hidden layer, a readout with vThMant 2^16 (it
    spikes here) and learned per-synapse delays on the readout."""
    rng = np.random.default_rng(seed)
    return [
        {"kind": "dense_rec", "weight": rng.integers(-30, 128, (H, n_in)), "weight_rec": rng.integers(-128, 128, (H, H)),
         "neuron": {"iDecay": np.int32(800), "vDecay": np.int32(200), "vThMant": np.int32(150)}},
        {"kind": "dense", "weight": rng.integers(0, 128, (O, H)), "delay": rng.integers(0, 8, (O, H)).astype(np.float32),
         "neuron": {"iDecay": np.int32(60), "vDecay": np.int32(40), "vThMant": np.int32(2**16)}},
    ]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("netx_runtime")
    return {"features": write_raw_netx(tmp / "features.net", 10, feature_layers()),
            "mlgenn": write_raw_netx(tmp / "mlgenn.net", 20, mlgenn_layers(), mlgenn=True)}


# ------------------------------------------------------------------------------------------ reading

def test_mlgenn_layout_is_read_as_netx_reads_it(files):
    fx = read_netx(files["mlgenn"])
    spec = mlgenn_layers()
    assert [layer.kind for layer in fx.layers] == ["dense_rec", "dense"] and fx.n_input == 20
    for layer, want in zip(fx.layers, spec):
        np.testing.assert_array_equal(layer.weight, want["weight"])
        assert layer.weight.dtype == np.int64
    np.testing.assert_array_equal(fx.readout.delay, spec[1]["delay"].astype(int))
    assert fx.readout.vth_mant == 2**16 and fx.readout.spiking
    notes = " | ".join(fx.notes)
    for ignored in ("inFeatures", "outFeatures", "gradedSpike", "refDelay"):
        assert ignored in notes, notes
    text = "\n".join(network_features(fx))
    assert "the last layer spikes" in text and "synaptic delays (up to 7 steps) in layers: 2" in text


def test_feature_file_broadcasts_as_netx_does(files):
    fx = read_netx(files["features"])
    spec = feature_layers()
    l1, l2, l3, l4 = fx.layers
    np.testing.assert_array_equal(l1.i_decay, spec[0]["neuron"]["iDecay"])      # per neuron, kept as an array
    np.testing.assert_array_equal(l1.bias, spec[0]["bias"])
    np.testing.assert_array_equal(l1.weight, spec[0]["weight"].reshape(12, 10))  # flat -> reshape(n, -1)
    np.testing.assert_array_equal(l1.weight_rec, spec[0]["weight_rec"].reshape(12, 12))
    np.testing.assert_array_equal(l2.bias, np.full(9, 6))                         # scalar bias -> every neuron
    assert l3.delay.shape == (9, 9) and np.all(l3.delay == 2)                  # scalar -> every synapse
    # 1-D of length n_pre (9 != 5 targets): one delay per source, repeated over the targets
    np.testing.assert_array_equal(l4.delay, np.repeat(spec[3]["delay"].reshape(1, -1), 5, axis=0))
    assert (l4.i_decay, l4.v_decay, l4.vth_mant) == (0, 4096, 2**17) and not l4.spiking   # netx's default neuron
    assert any("delay_rec ignored" in note for note in fx.notes)


def test_vlen_type_strings_and_no_input_layer(tmp_path):
    layers = mlgenn_layers()
    path = write_raw_netx(tmp_path / "n.net", None, layers)
    with h5py.File(path, "r+") as f:
        del f["layer/0/type"]
        f["layer/0"].create_dataset("type", data=np.array([b"dense_rec"], dtype=h5py.string_dtype("ascii")))
    fx = read_netx(path)
    assert fx.n_input == 20 and fx.layers[0].kind == "dense_rec"


def _set(name, data):
    def spoil(path):
        with h5py.File(path, "r+") as f:
            if name in f:
                del f[name]
            f.create_dataset(name, data=data)
    return spoil


BAD = {
    "delay_rec differs": (_set("layer/3/delay_rec", np.full((9, 9), 3, np.int32)),
                          "/layer/3/delay_rec: lava-dl 0.6 never reads delay_rec"),
    "delay_rec without delay": (_set("layer/1/delay_rec", np.ones((12, 12), np.int32)),
                                "/layer/1/delay_rec: lava-dl 0.6 never reads delay_rec"),
    "dense_rec delay loses exponent": (_set("layer/3/weight", np.full((9, 9), 3, np.int16)),
                                       "/layer/3/delay: lava-dl 0.6 builds a dense_rec layer's delayed synapses "
                                       "without the weight exponent"),
    "dense_rec delay shape": (_set("layer/1/delay", np.int32(1)), "/layer/1/delay: a dense_rec layer with 10 inputs"),
    "messageBits": (_set("layer/2/neuron/messageBits", np.int32(3)), "/layer/2/neuron/messageBits"),
    "conv": (_set("layer/2/type", np.array([b"conv"], "S10")), "/layer/2/type: 'conv'"),
    "SDNN": (_set("layer/2/neuron/type", np.array([b"SDNN"], "S10")), "/layer/2/neuron/type: 'SDNN'"),
    "fractional weights": (_set("layer/2/weight", np.full((9, 12), 2.5, np.float32)), "non-integer values"),
    "negative delay": (_set("layer/2/delay", np.full((9, 12), -1, np.int32)), "/layer/2/delay: negative delay -1"),
    "delay shape": (_set("layer/2/delay", np.zeros(7, np.int32) + 1), "/layer/2/delay: shape (7,) fits neither"),
    "fractional delay": (_set("layer/2/delay", np.full((9, 12), 1.5)), "/layer/2/delay: holds non-integer values"),
    "weight_rec on dense": (_set("layer/2/weight_rec", np.ones((9, 9), np.int16)), "never read by netx"),
    "weight range": (_set("layer/2/weight", np.full((9, 12), 300, np.int16)), "/layer/2/weight: weights span [300, 300]"),
    "float iDecay": (_set("layer/2/neuron/iDecay", np.float32(900)), "/layer/2/neuron/iDecay: dtype float32"),
    "per-neuron length": (_set("layer/2/neuron/vThMant", np.ones(4, np.int32)), "expected a scalar or one value per neuron (9,)"),
    "vDecay range": (_set("layer/2/neuron/vDecay", np.int32(5000)), "/layer/2/neuron/vDecay: 5000 is outside [0, 4096]"),
    "bias range": (_set("layer/2/bias", np.full(9, 5000, np.int16)), "/layer/2/bias: 5000 is outside [-4096, 4095]"),
    "input after layer 0": (_set("layer/2/type", np.array([b"input"], "S10")), "'input' is only allowed as layer 0"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_what_netx_refuses_or_misreads_is_a_one_line_error(tmp_path, files, case):
    spoil, reason = BAD[case]
    path = tmp_path / "bad.net"
    shutil.copy(files["features"], path)
    spoil(path)
    with pytest.raises(NetxFileError) as info:
        read_netx(path)
    msg = str(info.value)
    assert msg.startswith(str(path)) and reason in msg and "\n" not in msg, msg
    assert isinstance(info.value, PipelineError)


# ------------------------------------------------------------------------------------------ emulation

def test_delay_arrives_one_plus_delay_steps_later(tmp_path):
    """Hand-computed: one input spike at step 0 through weight 10 with delay d reaches u at Lava step
    index 2 + d (the source plays column 0 at index 0; a Dense adds one step, the delay d more)."""
    for d in (0, 3, 62):
        path = write_raw_netx(tmp_path / f"d{d}.net", 1, [
            {"kind": "dense", "weight": np.array([[10]]), "delay": np.int32(d),
             "neuron": {"iDecay": np.int32(4096), "vDecay": np.int32(4096), "vThMant": np.int32(2**17)}}])
        fx = read_netx(path)
        x = np.zeros((1, 70, 1), np.uint8)
        x[0, 0, 0] = 1
        for engine in ("numpy", "numba"):
            r = emulate(fx, x, record_trace=True, record_hidden=True, engine=engine)
            assert r.hidden_spikes.shape == (1, 72, 0)          # a one-layer network has no hidden layer
            u = r.readout_u[0, :, 0]
            want = np.zeros(72, np.int32)
            want[1 + d] = 64 * 10        # 0-based index 1 + d is Lava step 2 + d
            np.testing.assert_array_equal(u, want)


def test_numba_and_numpy_engines_agree_on_every_feature(files):
    for name, n_in in (("features", 10), ("mlgenn", 20)):
        fx = read_netx(files[name])
        data = dataset(12, n_in, 0.3, seed=5)
        a = emulate(fx, data, engine="numpy", record_trace=True, record_hidden=True)
        b = emulate(fx, data, engine="numba", record_trace=True, record_hidden=True, threads=2)
        for key in ("readout_v", "readout_u", "hidden_spikes", "score", "pred"):
            np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=f"{name}: {key}")
        for ca, cb in zip(a.layer_spike_counts, b.layer_spike_counts):
            np.testing.assert_array_equal(ca, cb)
        assert all(c.sum() > 0 for c in b.layer_spike_counts[:-1]), [c.sum() for c in b.layer_spike_counts]


def test_spike_readout_scores_spike_counts(files):
    fx = read_netx(files["mlgenn"])
    r = emulate(fx, dataset(6, 20, 0.3, seed=2), readout="spikes")
    np.testing.assert_array_equal(r.score, r.layer_spike_counts[-1])
    assert r.score.sum() > 0                # the 2^16 readout does spike


def test_evaluate_states_features_and_backend(tmp_path, capsys):
    from eventprop_pipeline.cli.main import main

    rng = np.random.default_rng(3)
    path = write_raw_netx(tmp_path / "deep.net", 700, [
        {"kind": "dense_rec", "weight": rng.integers(-20, 60, (24, 700)), "weight_rec": rng.integers(-60, 60, (24, 24)),
         "neuron": {"iDecay": np.int32(800), "vDecay": np.int32(200), "vThMant": np.int32(150)}},
        {"kind": "dense", "weight": rng.integers(-60, 100, (16, 24)), "delay": rng.integers(0, 3, 24).astype(np.int32),
         "neuron": {"iDecay": np.int32(800), "vDecay": np.int32(200), "vThMant": np.int32(100)}},
        {"kind": "dense", "weight": rng.integers(-100, 128, (20, 16)),
         "neuron": {"iDecay": np.int32(800), "vDecay": np.int32(200), "vThMant": np.int32(2**16)}},
    ], mlgenn=True)
    args = ["evaluate", str(path), "--dataset", "shd", "--data-root", str(FIXTURE_DIR), "--limit", "4",
            "--timesteps", "40"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "3 dense layer(s): 700 -> 24 rec -> 16 -> 20" in out and "synaptic delays (up to 2 steps) in layers: 2" in out
    assert "backend: emulator" in out and "ignored: " in out and "accuracy" in out
    assert main(args + ["--json", "--readout", "spikes"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["backend"] == "emulator" and "score from the last layer's spike counts" in summary["features"]


# ------------------------------------------------------------------------------------------ Lava

def compare_with_lava(path, data):
    from netx_export.lava_runner import run_lava

    fx = read_netx(path)
    lava = run_lava(path, data, progress=False, record_hidden=True)
    emu = emulate(fx, data, record_trace=True, record_hidden=True)
    np.testing.assert_array_equal(lava.hidden_spikes, emu.hidden_spikes)
    np.testing.assert_array_equal(lava.readout_u, emu.readout_u)
    np.testing.assert_array_equal(lava.readout_v, emu.readout_v)
    np.testing.assert_array_equal(lava.score, emu.score)
    return emu


@pytest.mark.lava
def test_lava_runs_several_layers_delays_biases_per_neuron_params_bit_exact(files):
    """4 layers: recurrent with flat weights, bias and per-neuron iDecay/vThMant; 2-D delays with a scalar
    bias and per-neuron vDecay; a recurrent LOIHI-type layer whose delay netx also gives its recurrent
    synapse; per-source delays into netx's default neuron."""
    emu = compare_with_lava(files["features"], dataset(3, 10, 0.3, seed=11))
    assert all(c.sum() > 0 for c in emu.layer_spike_counts[:-1])       # every spiking layer is active
    assert np.any(emu.readout_u != 0)


@pytest.mark.lava
def test_lava_runs_mlgenn_layout_with_spiking_readout_bit_exact(files):
    emu = compare_with_lava(files["mlgenn"], dataset(3, 20, 0.3, seed=12))
    assert emu.layer_spike_counts[-1].sum() > 0                          # the 2^16 readout spikes and resets


def test_engines_agree_when_lava_floors_each_delay_sum(files, monkeypatch):
    """netx never leaves an inexact shift for valid weights, but both engines must floor like Lava's
    (Delay)Dense if it did: per step and, with delays, per delay. Forced here by shifting odd weights."""
    from netx_export import emulator

    original = emulator.plan_layers

    def floored(fxnet):
        plans = original(fxnet)
        for p in plans:
            p.syn_in = emulator.Synapse(p.syn_in.weight * 2 + 1, 2)
        return plans

    monkeypatch.setattr(emulator, "plan_layers", floored)
    fx = read_netx(files["features"])
    data = dataset(4, 10, 0.4, seed=8)
    a = emulate(fx, data, engine="numpy", record_trace=True, record_hidden=True)
    b = emulate(fx, data, engine="numba", record_trace=True, record_hidden=True, threads=1)
    np.testing.assert_array_equal(a.readout_u, b.readout_u)
    np.testing.assert_array_equal(a.hidden_spikes, b.hidden_spikes)
    assert b.hidden_spikes.any() and np.any(b.readout_u != 0)
