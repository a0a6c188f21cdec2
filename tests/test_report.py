"""Report building blocks against hand computations and the float model (independent of the report code)."""
import numpy as np
import pytest

from eventprop_pipeline.pipeline.trace_check import compare_traces
from eventprop_pipeline.pipeline.errors import TraceMismatchError
from eventprop_pipeline.report.activity import neuron_updates, synaptic_ops
from eventprop_pipeline.report.build import effective_step, fixed_readout_in_float_units
from eventprop_pipeline.report.costs import estimate_loihi_cost
from eventprop_pipeline.report.summary import confusion_matrix
from eventprop_pipeline.report.tables import accuracy_table_text


def test_synaptic_ops_hand_computed():
    # 700 -> 4 -> 3: an input spike reaches 4 hidden neurons, a hidden spike 4 hidden + 3 readout.
    ops = synaptic_ops(np.array([10, 0]), np.array([2, 5]), n_hidden=4, n_output=3)
    assert ops.tolist() == [10 * 4 + 2 * 7, 5 * 7]
    assert neuron_updates(100, 4, 3) == 700


def test_cost_estimate_hand_computed():
    c = estimate_loihi_cost(synaptic_ops=1000, neuron_updates=100, spikes=10)
    assert c.energy_uj == pytest.approx((1000 * 23.6 + 100 * 81.0 + 10 * 1.7) * 1e-6)
    assert c.latency_ms_loihi == pytest.approx((1000 * 3.5 + 100 * 8.4) * 1e-6)
    assert c.latency_ms_loihi2 == pytest.approx(c.latency_ms_loihi / 10)


def test_confusion_matrix_hand_case():
    m = confusion_matrix(pred=[0, 1, 1, 2], label=[0, 1, 2, 2], n_classes=3)
    assert m.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]


def test_effective_step_recovers_the_grid():
    rng = np.random.default_rng(0)
    w_int = rng.integers(-128, 128, size=(5, 7))
    assert effective_step(w_int * 0.0125, w_int) == pytest.approx(0.0125)


def test_trace_comparison_names_first_difference():
    a = np.zeros((3, 10, 2), np.int32)
    b = a.copy()
    b[1, 6, 1] = 5
    b[2, 2, 0] = 1       # a later sample: not the first difference
    counts = np.zeros((3, 4), np.int64)
    cmp = compare_traces([4, 9, 11], a, b, counts, counts, [0, 0, 0], [0, 0, 0])
    assert not cmp.identical
    assert cmp.first_mismatch == {"sample": 9, "step": 6, "neuron": 1, "lava": 0, "emulator": 5,
                                  "what": "readout voltage trace"}
    with pytest.raises(TraceMismatchError, match="test sample 9, Lava step 6"):
        cmp.raise_if_different()
    same = compare_traces([4, 9, 11], a, a.copy(), counts, counts, [0, 0, 0], [0, 0, 0])
    assert same.identical
    other_counts = counts.copy()
    other_counts[0, 2] = 1
    assert compare_traces([4, 9, 11], a, a.copy(), counts, other_counts, [0] * 3, [0] * 3).first_mismatch["what"] \
        == "hidden spike counts"


def test_accuracy_table_lists_every_backend():
    s = {"accuracy": {"float": {"n": 10, "accuracy": 0.9}, "emulator": {"n": 10, "accuracy": 0.8},
                      "lava": {"n": 2, "accuracy": 0.5}, "lava_subset_float": {"accuracy": 0.5},
                      "lava_subset_emulator": {"accuracy": 0.5}},
         "lava": {"status": "identical"}, "conversion_loss_pp": 10.0, "agreement": {"float_vs_emulator": 0.9}}
    text = accuracy_table_text(s)
    assert "90.00 %" in text and "80.00 %" in text and "50.00 %" in text
    assert "+10.00 percentage points" in text
    skipped = {**s, "accuracy": {k: s["accuracy"][k] for k in ("float", "emulator")},
               "lava": {"status": "skipped"}}
    assert "skipped (not verified in Lava)" in accuracy_table_text(skipped)


def test_fixed_point_traces_line_up_with_float_model(fixture_dir):
    """Raster and readout of the emulator, mapped as the report maps them, follow the float model step by
    step until the first (quantization-caused) spike difference (mlGeNN fixture, first test sample)."""
    from eventprop_pipeline.data import load_dataset
    from eventprop_pipeline.mlgenn_import import import_mlgenn
    from eventprop_pipeline.model import simulate
    from eventprop_pipeline.report.build import LAVA_TRACE_OFFSET
    from netx_export.emulator import emulate
    from netx_export.quantize import quantize

    net = import_mlgenn(fixture_dir, 29)
    data = load_dataset("shd", "test", data_root=fixture_dir, limit=1)
    with pytest.warns(UserWarning):      # the quantizer's worst-case u wrap warning for this network
        fx, _ = quantize(net, weight_bits=8)
    T = net.params.timesteps
    fr = simulate(net, data.dense([0]), record=True)
    er = emulate(fx, data, record_trace=True, record_hidden=True)
    float_raster, fixed_raster = fr.hidden_spikes[0], er.hidden_spikes[0]

    def first_difference(offset):
        diff = np.argwhere(fixed_raster[offset:offset + T] != float_raster)
        return int(diff[0, 0]) if len(diff) else T

    first_spike = int(np.argwhere(float_raster)[0, 0])
    agree_until = first_difference(LAVA_TRACE_OFFSET)
    assert agree_until > first_spike + 5                  # identical rasters well past the first spikes
    assert first_difference(LAVA_TRACE_OFFSET + 1) <= first_spike + 1   # one step off breaks at once
    mapped = fixed_readout_in_float_units(er.readout_v[0], fx.readout.step, T)
    fl = fr.readout_trace[0]
    assert mapped.shape == fl.shape
    early = slice(0, agree_until + 1)
    assert np.abs(mapped[early] - fl[early]).max() <= 0.02 * np.abs(fl[early]).max()
    assert np.corrcoef(mapped.ravel(), fl.ravel())[0, 1] > 0.99
