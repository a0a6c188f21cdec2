"""The bit-exact emulator without Lava: hand-computed traces, Lava's synapse rules, both engines
agree, per-sample isolation, and agreement with the float model on the mlGeNN fixture.
(The comparison with Lava itself is in test_lava_emulator.py.)"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from eventprop_pipeline.data.events import from_events
from eventprop_core.errors import DataError, PipelineError
from netx_export.emulator import EXTRA_STEPS, emulate, lava_synapses
from netx_export.fixed_point import FixedPointLayer, FixedPointNetwork


def one_neuron_net(w_in=100, vth=50, w_out=-7, i_decay_out=1024, v_decay_out=512, bias_out=None, T=6):
    """1 input -> 1 hidden (no memory: iDecay = vDecay = 4096) -> 1 readout."""
    hid = FixedPointLayer("dense_rec", np.array([[w_in]]), 4096, 4096, vth, weight_rec=np.array([[0]]))
    out = FixedPointLayer("dense", np.array([[w_out]]), i_decay_out, v_decay_out, 2**17,
                          bias=None if bias_out is None else np.array([bias_out]), step=0.5)
    return FixedPointNetwork(1, hid, out, timesteps=T)


def one_spike_at(col: int, T: int) -> np.ndarray:
    x = np.zeros((1, T, 1), np.float32)
    x[0, col, 0] = 1
    return x


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_hand_computed_readout_trace(engine):
    # Input column 0 reaches the hidden neuron at Lava step 2 (64*100 > 64*50: spike), the readout
    # at step 3. Readout: u keeps 3072/4096, v keeps 3584/4096, both rounded toward zero.
    r = emulate(one_neuron_net(), one_spike_at(0, 6), record_trace=True, record_hidden=True, engine=engine)
    np.testing.assert_array_equal(r.hidden_spikes[0, :, 0], [0, 1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(r.readout_u[0, :, 0], [0, 0, -448, -336, -252, -189, -141, -105])
    np.testing.assert_array_equal(r.readout_v[0, :, 0], [0, 0, -448, -728, -889, -966, -986, -967])
    # score: v of Lava steps 1..T weighted exp(-k/T)/T (k = step - 1), in float units step/64.
    k = np.arange(6)
    expected = np.sum(np.exp(-k / 6) / 6 * r.readout_v[0, :6, 0]) * 0.5 / 64
    assert r.score[0, 0] == pytest.approx(expected, rel=1e-12)
    assert r.hidden_spike_counts.tolist() == [[1]]


def test_bias_enters_v_every_step_times_64():
    r = emulate(one_neuron_net(w_out=1, bias_out=3, i_decay_out=4096, v_decay_out=4096), np.zeros((1, 6, 1)),
                record_trace=True)
    np.testing.assert_array_equal(r.readout_v[0, :, 0], [192] * 8)
    np.testing.assert_array_equal(r.readout_u[0, :, 0], [0] * 8)


def test_threshold_is_strict():
    # v = 64 * 50 exactly at the threshold does not spike; one more unit does.
    at = emulate(one_neuron_net(w_in=50), one_spike_at(0, 6))
    above = emulate(one_neuron_net(w_in=51), one_spike_at(0, 6))
    assert at.hidden_spike_counts.sum() == 0 and above.hidden_spike_counts.sum() == 1


def test_lava_synapses_exact_for_ordinary_weights():
    rng = np.random.default_rng(0)
    for bits in range(2, 9):
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        w, wr = rng.integers(lo, hi + 1, (6, 9)), rng.integers(lo, hi + 1, (6, 6))
        w[0, 0], w[0, 1] = lo, hi          # mixed signs, full range
        s_in, s_rec = lava_synapses(w, wr)
        np.testing.assert_array_equal(s_in.weight * 2.0 ** -s_in.shift, w)
        np.testing.assert_array_equal(s_rec.weight * 2.0 ** -s_rec.shift, wr)


def test_lava_synapses_reproduce_lavas_quirk_for_non_positive_matrices():
    # A matrix with no positive weight becomes 'inhibitory' in Lava's Dense model: netx scaled -1 to
    # -256, Lava clips it to -255 and truncates to the declared bits: one spike gives
    # floor(-128/256) = -1, two give floor(-256/256) = -1, not -2 (Lava confirms this in test_lava_emulator).
    syn, _ = lava_synapses(np.array([[-1, -1, 0]]))
    assert syn.shift == 8 and syn.weight.tolist() == [[-128, -128, 0]]


def test_all_zero_layer_is_rejected():
    with pytest.raises(PipelineError, match="all weights of a layer are zero"):
        lava_synapses(np.zeros((3, 4), int))


def random_net(seed=0, n_in=24, H=16, O=5, T=30):
    rng = np.random.default_rng(seed)
    hid = FixedPointLayer("dense_rec", rng.integers(-60, 128, (H, n_in)), 700, 300, 150,
                          weight_rec=rng.integers(-128, 128, (H, H)), bias=rng.integers(-20, 40, H))
    out = FixedPointLayer("dense", rng.integers(-128, 128, (O, H)), 900, 100, 2**17, bias=rng.integers(-5, 5, O))
    return FixedPointNetwork(n_in, hid, out, timesteps=T)


def random_data(n, T, n_in, seed=0, rate=0.15, graded=False):
    rng = np.random.default_rng(seed)
    ev = rng.random((n, T, n_in)) < rate
    s, t, u = np.nonzero(ev)
    if graded:   # duplicate every other event: counts of 2
        s, t, u = np.r_[s, s[::2]], np.r_[t, t[::2]], np.r_[u, u[::2]]
    return from_events(s, t, u, rng.integers(0, 5, n), n_channels=n_in, n_classes=5, timesteps=T, dt=1.0,
                       graded=graded)


def test_engines_agree_bit_for_bit_and_dense_input_matches_events():
    fx, data = random_net(), random_data(7, 30, 24)
    a = emulate(fx, data, record_trace=True, record_hidden=True, engine="numba", batch_size=3)
    b = emulate(fx, data, record_trace=True, record_hidden=True, engine="numpy", batch_size=4)
    c = emulate(fx, data.dense(range(7)), record_trace=True, record_hidden=True)
    for r in (b, c):
        np.testing.assert_array_equal(a.hidden_spikes, r.hidden_spikes)
        np.testing.assert_array_equal(a.readout_v, r.readout_v)
        np.testing.assert_array_equal(a.readout_u, r.readout_u)
        np.testing.assert_array_equal(a.score, r.score)
        np.testing.assert_array_equal(a.pred, r.pred)
    assert a.readout_v.shape == (7, 30 + EXTRA_STEPS, 5) and a.readout_v.dtype == np.int32
    assert a.hidden_spikes.sum() > 100    # the network is active: the comparison means something
    np.testing.assert_array_equal(a.hidden_spike_counts, a.hidden_spikes.sum(axis=1))


def test_every_sample_starts_fresh_order_does_not_matter():
    fx, data = random_net(1), random_data(6, 30, 24, seed=1)
    ref = emulate(fx, data, record_trace=True)
    order = np.array([4, 2, 5, 0, 3, 1])
    for engine in ("numba", "numpy"):
        r = emulate(fx, data, indices=order, record_trace=True, engine=engine, batch_size=4)
        np.testing.assert_array_equal(r.readout_v, ref.readout_v[order])
        np.testing.assert_array_equal(r.hidden_spike_counts, ref.hidden_spike_counts[order])
        single = emulate(fx, data.subset([order[-1]]), record_trace=True, engine=engine)
        np.testing.assert_array_equal(single.readout_v[0], ref.readout_v[order[-1]])


def test_graded_counts_are_binary_spikes():
    fx = random_net(2)
    graded, binary = random_data(3, 30, 24, seed=2, graded=True), random_data(3, 30, 24, seed=2)
    assert graded.graded
    np.testing.assert_array_equal(emulate(fx, graded, record_trace=True).readout_v,
                                  emulate(fx, binary, record_trace=True).readout_v)


def test_bad_input_raises_pipeline_errors():
    fx = random_net()
    with pytest.raises(DataError, match="20 input channels, but the network has 24"):
        emulate(fx, np.zeros((2, 10, 20)))
    with pytest.raises(DataError, match=r"expected dense spikes \(B, T, n_in\)"):
        emulate(fx, np.zeros((10, 24)))
    with pytest.raises(PipelineError, match="unknown emulator engine"):
        emulate(fx, np.zeros((1, 10, 24)), engine="cuda")


# ------------------------------------------------------------------------- the mlGeNN fixture

@pytest.fixture(scope="module")
def fixture_quantized():
    from conftest import FIXTURE_DIR
    from eventprop_pipeline.data.spike_files import read_spike_file
    from eventprop_pipeline.mlgenn_import import import_mlgenn
    from netx_export.quantize import quantize

    net = import_mlgenn(FIXTURE_DIR, 29)
    data = read_spike_file(FIXTURE_DIR / "SHD" / "shd_test.h5", name="shd")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fx, _ = quantize(net, weight_bits=8, strategy="percentile")
    return net, fx, data


def test_fixture_emulator_agrees_with_float_model(fixture_quantized):
    from conftest import FIXTURE_DIR

    net, fx, data = fixture_quantized
    r = emulate(fx, data)
    mlgenn = np.load(FIXTURE_DIR / "mlgenn_outputs.npz", allow_pickle=False)
    float_score = mlgenn["readout"].astype(np.float64)    # mlGeNN's own isolated float readout
    agreement = np.mean(r.pred == mlgenn["pred"])
    rel = np.abs(r.score - float_score).mean() / np.abs(float_score).mean()
    assert agreement >= 0.95, agreement
    assert rel < 0.05, rel
    assert np.mean(r.pred == data.labels) >= 0.95
    # Scores are the float readout's scale: a wrong unit (64, q) would be far off.
    assert 0.8 < np.abs(r.score).mean() / np.abs(float_score).mean() < 1.25
