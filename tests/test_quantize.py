"""Quantizer: hand-computed decays, steps, thresholds and clipping; range errors; the u-wrap warning;
conversion loss on the mlGeNN fixture (float model vs bit-exact emulator); calibrate agrees with the
float model at least as well as percentile, and ranks by agreement, never label accuracy."""
from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from eventprop_pipeline.data.spike_files import read_spike_file
from eventprop_core.errors import PipelineError
from eventprop_pipeline.mlgenn_import import import_mlgenn
from eventprop_core.network import Network
from eventprop_core.params import ModelParams
from netx_export.fixed_point import FixedPointLayer
from netx_export.hdf5_io import read_netx, write_netx
from netx_export.limits import worst_case_u
from netx_export.quantize import QuantizationError, UWrapWarning, clearly_lower, quantize, threshold_mantissa

from conftest import FIXTURE_DIR

P = ModelParams()                                     # tau_mem 20, tau_syn 5, dt 1, v_thresh 1


def small_net(hidden_value=0.3, readout_value=0.05, outlier=None, params=P, n_in=10, n_hid=10, n_out=4):
    """Weights whose *scaled* values (times (1 - alpha) IScale) are +-hidden_value / +-readout_value."""
    sign = lambda shape: np.where(np.indices(shape).sum(axis=0) % 2 == 0, 1.0, -1.0)  # noqa: E731
    w_ih = hidden_value * sign((n_in, n_hid))
    w_hh = hidden_value * sign((n_hid, n_hid))
    w_ho = readout_value * sign((n_hid, n_out))
    if outlier is not None:
        w_ih[0, 1] = outlier
    scale = (1 - params.alpha) * params.i_scale
    return Network({"input_hidden": w_ih / scale, "hidden_hidden": w_hh / scale, "hidden_output": w_ho / scale},
                   params)


def quiet_quantize(net, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UWrapWarning)
        return quantize(net, **kw)


def test_decays_hand_computed():
    # 4096 (1 - e^-0.2) = 742.48 -> 742; 4096 (1 - e^-0.05) = 199.77 -> 200
    fx, _ = quiet_quantize(small_net())
    for layer in fx.layers:
        assert (layer.i_decay, layer.v_decay) == (742, 200)
    # dt = 0.5 ms: 4096 (1 - e^-0.1) = 389.79 -> 390; 4096 (1 - e^-0.025) = 101.13 -> 101
    fx, _ = quiet_quantize(small_net(params=ModelParams(dt=0.5, timesteps=2000)))
    assert (fx.hidden.i_decay, fx.hidden.v_decay) == (390, 101)


def test_percentile_steps_weights_threshold_and_clipping_8_bits():
    # hidden: 199 of 200 scaled weights are +-0.3, one outlier 3.0 -> p99 = 0.3, floor(log2 0.3) = -2,
    # q = 2^(-2 - 6) = 1/256; 0.3 * 256 = 76.8 -> 77; 3.0 * 256 = 768 saturates at 127 (1 of 200);
    # vThMant = round(256 - 1/64) = 256. readout: 0.05 -> floor(log2) = -5, q = 2^-11, 0.05 * 2048 = 102.4 -> 102.
    fx, rep = quiet_quantize(small_net(outlier=3.0))
    assert fx.hidden.step == 2.0 ** -8 and fx.readout.step == 2.0 ** -11
    assert fx.hidden.weight.dtype == np.int64 and fx.hidden.weight.shape == (10, 10)   # (post, pre)
    assert fx.hidden.weight[1, 0] == 127                       # outlier input 0 -> hidden 1, saturated
    others = np.delete(fx.hidden.weight.ravel(), 1 * 10 + 0)
    assert set(np.abs(others).tolist()) == {77} and set(np.abs(fx.hidden.weight_rec).ravel().tolist()) == {77}
    assert set(np.abs(fx.readout.weight).ravel().tolist()) == {102}
    assert fx.hidden.vth_mant == 256 and fx.readout.vth_mant == 2**17
    h = rep.layer("hidden")
    assert (h.n_weights, h.n_clipped, h.clipped_fraction, h.bits_used) == (200, 1, 1 / 200, 8)
    # RMS error: 199 weights off by 0.2/256, one by 3.0 - 127/256
    expected = math.sqrt((199 * (0.2 / 256) ** 2 + (3.0 - 127 / 256) ** 2) / 200)
    assert h.rms_error == pytest.approx(expected, rel=1e-6)       # weights are stored as float32
    assert h.max_rel_error == pytest.approx((3.0 - 127 / 256) / 3.0, rel=1e-6)
    assert rep.layer("readout").n_clipped == 0


def test_percentile_steps_4_bits():
    # q = 2^(floor(log2 0.3) - (4 - 2)) = 1/16: 0.3 * 16 = 4.8 -> 5 (range [-8, 7]); vThMant = round(16 - 1/64) = 16
    fx, rep = quiet_quantize(small_net(), weight_bits=4)
    assert fx.hidden.step == 1 / 16 and set(np.abs(fx.hidden.weight).ravel().tolist()) == {5}
    assert fx.hidden.vth_mant == 16 and rep.layer("hidden").bits_used == 4


def test_threshold_mantissa_respects_strict_comparison():
    # Float: spike when v >= 64 v_thresh / q. Lava: spike when v > 64 vThMant, i.e. v >= 64 vThMant + 1.
    assert threshold_mantissa(1.0, 1 / 256) == 256
    assert threshold_mantissa(1.0, 1 / 100.5) == 100          # 6401 is nearer 6432 than 6465
    rng = np.random.default_rng(3)
    for ratio in rng.uniform(1, 5000, 200):
        vth = threshold_mantissa(1.0, 1 / ratio)
        target = 64 * ratio
        best = min(abs(64 * k + 1 - target) for k in (vth - 1, vth, vth + 1))
        assert abs(64 * vth + 1 - target) == pytest.approx(best)


def test_unrepresentable_values_fail_without_clip_and_are_counted_with_it():
    slow_syn = ModelParams(tau_syn=1e5)                       # 4096 (1 - e^-1e-5) = 0.04 -> iDecay 0 < 1
    with pytest.raises(QuantizationError, match="iDecay = 0 is outside Loihi 2's range"):
        quiet_quantize(small_net(params=slow_syn))
    fx, rep = quiet_quantize(small_net(params=slow_syn), clip=True)
    assert fx.hidden.i_decay == 1 and rep.clipped_params == ["iDecay: 0 -> 1"]

    tiny = small_net(hidden_value=1e-6)                       # q = 2^-26 -> vThMant 2^26 > 2^17 - 1
    with pytest.raises(QuantizationError, match="hidden vThMant = 67108864"):
        quiet_quantize(tiny)
    fx, rep = quiet_quantize(tiny, clip=True)
    assert fx.hidden.vth_mant == 2**17 - 1 and rep.clipped_params == ["hidden vThMant: 67108864 -> 131071"]

    # A forced step that makes weights saturate: error, or saturation counted with clip.
    with pytest.raises(QuantizationError, match="hidden layer: 200 weight"):
        quiet_quantize(small_net(), steps={"hidden": 2.0 ** -10})
    fx, rep = quiet_quantize(small_net(), steps={"hidden": 2.0 ** -10}, clip=True)
    assert rep.layer("hidden").n_clipped == 200 and set(fx.hidden.weight.ravel().tolist()) == {-128, 127}


@pytest.mark.parametrize("kw, reason", [
    ({"weight_bits": 9}, "weight bits 9 outside 1..8"),
    ({"weight_bits": 0}, "weight bits 0 outside 1..8"),
    ({"strategy": "minmax"}, "unknown scale strategy"),
    ({"strategy": "calibrate"}, "needs a calibration data set"),
    ({"steps": {"hidden": -1.0}}, "positive numbers"),
])
def test_bad_options(kw, reason):
    with pytest.raises(QuantizationError, match=reason) as info:
        quiet_quantize(small_net(), **kw)
    assert isinstance(info.value, PipelineError)


def test_worst_case_u_hand_computed():
    layer = FixedPointLayer("dense_rec", np.array([[3, -2, 5]]), 742, 200, 10, weight_rec=np.array([[-1]]))
    # positive sum 8 > negative sum 3; geometric accumulation 4096 / 742
    assert worst_case_u(layer)[0] == pytest.approx(64 * 8 * 4096 / 742)


def test_u_wrap_warning():
    # scaled 0.6 -> q = 2^(-1 - 6), w_int = round(76.8) = +-77. 20 inputs + 4 recurrent, half positive:
    # 64 * (12 * 77) * 4096/742 = 326k < 2^23, no warning. 700 positive inputs: 64 * 702 * 77 * 4096/742 > 2^23.
    with warnings.catch_warnings():
        warnings.simplefilter("error", UWrapWarning)
        _, rep = quantize(small_net(hidden_value=0.6, n_in=20, n_hid=4))
    assert not rep.layer("hidden").u_wrap_risk and rep.warnings == []
    net = small_net(hidden_value=0.6, n_in=700, n_hid=4)
    net.weights["input_hidden"] = np.abs(net.weights["input_hidden"])
    with pytest.warns(UWrapWarning, match="hidden layer: 4 neuron"):
        _, rep = quantize(net)
    h = rep.layer("hidden")
    assert h.u_wrap_risk and h.neurons_at_wrap_risk == 4
    assert h.worst_case_u == pytest.approx(64 * (700 * 77 + 2 * 77) * 4096 / 742)
    assert any("wrap" in w for w in rep.warnings)


def test_calibrate_search_with_an_injected_evaluator():
    """The search finds a step window where the (fake) fixed-point accuracy is best and logs every candidate."""
    net = small_net()
    labels = np.arange(8) % 4

    class Data:  # the quantizer only needs labels, sizes and the time grid
        n_channels, timesteps, name = 10, P.timesteps, "fake"
        def __init__(self): self.labels = labels  # noqa: E704
        def __len__(self): return len(labels)  # noqa: E704

    q_p = 2.0 ** -8
    good = (q_p * 2 ** -1.1, q_p * 2 ** -0.9)            # only steps near q_p / 2 classify correctly

    def evaluate(fx):
        return labels if good[0] < fx.hidden.step < good[1] else (labels + 1) % 4

    fx, rep = quiet_quantize(net, strategy="calibrate", calibration=Data(), evaluate=evaluate,
                             float_predictions=labels)
    assert good[0] < fx.hidden.step < good[1]
    assert rep.fixed_accuracy == 1.0 and rep.percentile_accuracy == 0.0 and rep.agreement == 1.0
    assert rep.float_accuracy == 1.0 and rep.n_calibration == 8
    assert rep.search[0]["hidden_step"] == q_p and len(rep.search) >= 10
    assert fx.metadata["quantization"]["steps"]["hidden"] == fx.hidden.step


def test_calibrate_maximises_agreement_not_label_accuracy():
    """An under-trained float model predicts the right class on only half of the samples. At q_p / 2
    the fixed-point network fits the labels (accuracy 100 %, agreement 50 %: a different network); at
    q_p * 2 it reproduces the float model (accuracy 50 %, agreement 100 %). Ranking by accuracy would
    pick q_p / 2; a faithful calibration picks q_p * 2, and the report gives both accuracies."""
    net = small_net()
    labels = np.arange(8) % 4
    float_pred = np.where(np.arange(8) < 4, labels, (labels + 1) % 4)     # right on samples 0-3 only
    wrong = (labels + 2) % 4                                                # agrees with neither

    class Data:
        n_channels, timesteps, name = 10, P.timesteps, "fake"
        def __init__(self): self.labels = labels  # noqa: E704
        def __len__(self): return len(labels)  # noqa: E704

    q_p = 2.0 ** -8
    fits_labels, fits_float = q_p / 2, q_p * 2

    def evaluate(fx):
        q = fx.hidden.step
        if q == fits_labels:
            return labels
        if q == fits_float:
            return float_pred
        return np.where(np.arange(8) < 2, float_pred, wrong)               # agreement 25 %

    fx, rep = quiet_quantize(net, strategy="calibrate", calibration=Data(), evaluate=evaluate,
                             float_predictions=float_pred)
    by_step = {e["hidden_step"]: e for e in rep.search if e["searched_layer"] == "hidden"}
    assert (by_step[fits_labels]["accuracy"], by_step[fits_labels]["agreement"]) == (1.0, 0.5)
    assert (by_step[fits_float]["accuracy"], by_step[fits_float]["agreement"]) == (0.5, 1.0)
    assert fx.hidden.step == fits_float
    assert (rep.agreement, rep.fixed_accuracy, rep.float_accuracy) == (1.0, 0.5, 0.5)
    assert (rep.percentile_agreement, rep.percentile_accuracy) == (0.25, 0.25)   # samples 0, 1 right
    table = rep.table()
    assert "float 50.00%" in table and "fixed point (emulator) 50.00%" in table
    assert "agreement with float 100.00% (percentile choice 25.00%)" in table
    assert "never ranked" in rep.criterion


def test_calibrate_needs_the_float_model_from_the_caller():
    class Data:
        n_channels, timesteps, name, labels = 10, P.timesteps, "fake", np.zeros(4, np.int64)
        def __len__(self): return 4  # noqa: E704

    with pytest.raises(QuantizationError, match="pass its readout scores on the calibration set as float_scores"):
        quiet_quantize(small_net(), strategy="calibrate", calibration=Data(), evaluate=lambda fx: np.zeros(4, int))
    # percentile with a calibration set but no float model: fixed-point accuracy only
    _, rep = quiet_quantize(small_net(), calibration=Data(), evaluate=lambda fx: np.zeros(4, int))
    assert rep.fixed_accuracy == 1.0 and rep.agreement is None and rep.float_accuracy is None


def test_netx_export_runs_no_float_model():
    """The deployment package must not import torch or the training code (the caller passes scores)."""
    import subprocess
    import sys
    code = ("import sys, netx_export.quantize, netx_export.emulator; "
            "bad = [m for m in sys.modules if m == 'torch' or m.startswith(('eventprop_pipeline.training', "
            "'eventprop_pipeline.evaluation', 'eventprop_pipeline.eventprop', 'eventprop_pipeline.model'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_calibrate_skips_candidates_loihi_cannot_represent():
    # scaled 0.0012 -> q_p = 2^(-10 - 6), vThMant 65536; steps below q_p / 2 need vThMant >= 2^17.
    labels = np.zeros(4, np.int64)

    class Data:
        n_channels, timesteps, name, labels = 10, P.timesteps, "fake", np.zeros(4, np.int64)
        def __len__(self): return 4  # noqa: E704

    fx, rep = quiet_quantize(small_net(hidden_value=0.0012), strategy="calibrate", calibration=Data(),
                             evaluate=lambda fx: labels, float_predictions=labels)
    skipped = [e for e in rep.search if "skipped" in e]
    assert skipped and all("vThMant" in e["skipped"] for e in skipped)
    assert all(e["hidden_step"] < 2.0 ** -16 / 2 * 1.01 for e in skipped)
    assert fx.hidden.vth_mant <= 2**17 - 1


def test_calibrate_ranks_by_readout_behaviour_before_weight_error():
    """Every candidate classifies the calibration set perfectly; the (fake) readout scores are closest to
    the float scores at q_p / sqrt(2), where the weight error is *larger* than at q_p. The behavioural
    criterion wins; agreement still comes first; with equal behaviour (readout) weight error decides."""
    net = small_net()
    labels = np.arange(8) % 4

    class Data:
        n_channels, timesteps, name = 10, P.timesteps, "fake"
        def __init__(self): self.labels = labels  # noqa: E704
        def __len__(self): return len(labels)  # noqa: E704

    float_scores = 10.0 + 2.0 * np.eye(4)[labels]
    q_p = 2.0 ** -8
    target = q_p * 2 ** -0.5

    def relative_error(step):
        return 0.05 + 0.1 * abs(math.log2(step / target))

    def evaluate(fx):
        if fx.hidden.step == q_p / 2:      # closest scores of all (error 2.01 / 336), one sample wrong
            wrong = float_scores.copy()
            wrong[0, 1] += 2.01
            return wrong
        return float_scores * (1 + relative_error(fx.hidden.step))   # argmax unchanged

    fx, rep = quiet_quantize(net, strategy="calibrate", calibration=Data(), evaluate=evaluate,
                             float_scores=float_scores)
    assert fx.hidden.step == pytest.approx(target)
    evaluated = [e for e in rep.search if "skipped" not in e]
    for e in evaluated:          # the recorded criterion values are the ones the fake evaluator produced
        if e["hidden_step"] != q_p / 2:
            assert e["score_error"] == pytest.approx(relative_error(e["hidden_step"]))
            assert (e["accuracy"], e["agreement"]) == (1.0, 1.0)
        # hidden weights: 100 of +0.3 and 100 of -0.3, saturating at 127 / -128
        q, k = e["hidden_step"], round(0.3 / e["hidden_step"])
        pos, neg = 0.3 - q * min(k, 127), -0.3 + q * min(k, 128)
        expected = math.sqrt((pos ** 2 + neg ** 2) / 2) / 0.3
        assert e["hidden_weight_error"] == pytest.approx(expected, rel=1e-4)   # weights are stored as float32
    at_q_p = next(e for e in evaluated if e["hidden_step"] == q_p and e["readout_step"] == 2.0 ** -11)
    at_target = next(e for e in evaluated if e.get("chosen"))
    # weight error alone (the old tie-break) would have kept q_p: 76.8 -> 77 vs 108.6 -> 109
    assert at_q_p["hidden_weight_error"] < at_target["hidden_weight_error"]
    assert at_q_p.get("percentile") and rep.percentile_score_error == pytest.approx(relative_error(q_p))
    halved = next(e for e in evaluated if e["hidden_step"] == q_p / 2)
    assert halved["score_error"] == pytest.approx(2.01 / 336) and halved["accuracy"] == 7 / 8
    # each sample's error is the same relative error, so the gain over the start is exact (zero spread)
    assert at_target["vs_start"]["clearly_lower"] and at_target["vs_start"]["std_error"] == pytest.approx(0, abs=1e-12)
    assert at_target["vs_start"]["score_error_diff"] == pytest.approx(relative_error(target) - relative_error(q_p))
    # the readout step does not change the fake scores: no candidate is clearly better, the start stays
    readout_search = [e for e in evaluated if e["searched_layer"] == "readout"]
    assert len(readout_search) >= 7 and fx.readout.step == 2.0 ** -11
    assert not any(e["vs_start"]["clearly_lower"] for e in readout_search)
    assert min(e["readout_weight_error"] for e in readout_search) < at_target["readout_weight_error"]
    assert rep.score_error == at_target["score_error"] and "score_error" in rep.criterion
    assert "readout score error vs float" in rep.table()
    saved = json.loads(rep.to_json())
    assert [e.get("chosen", False) for e in saved["search"]].count(True) == 1


def test_clearly_lower_hand_computed():
    # d = [-1, -3]: mean -2, sample std sqrt(2), SE 1: -2 + 2 * 1 = 0 is not < 0
    assert clearly_lower(np.array([1.0, 1.0]), np.array([2.0, 4.0])) == (-2.0, pytest.approx(1.0), False)
    # d = [-1, -3, -2]: mean -2, std 1, SE 1/sqrt(3): -2 + 2 / sqrt(3) < 0
    assert clearly_lower(np.zeros(3), np.array([1.0, 3.0, 2.0])) == (-2.0, pytest.approx(3 ** -0.5), True)
    assert clearly_lower(np.zeros(1), np.ones(1))[2] is False          # one sample: no evidence


@pytest.mark.parametrize("consistent", [False, True])
def test_calibrate_moves_only_on_a_clear_score_gain(consistent):
    """The start (percentile) has relative error 0.05 on every sample. At q_p / sqrt(2) the mean error is
    0.045: spread evenly (a clear gain) it is chosen; as 0 / 0.09 alternating (SE 0.017 > gain 0.005),
    it is noise and the start stays. Every other step is worse."""
    labels = np.arange(8) % 4

    class Data:
        n_channels, timesteps, name = 10, P.timesteps, "fake"
        def __init__(self): self.labels = labels  # noqa: E704
        def __len__(self): return len(labels)  # noqa: E704

    float_scores = 10.0 + 2.0 * np.eye(4)[labels]          # every row sums to 42: per-sample error = e_i
    q_p = 2.0 ** -8
    target = q_p * 2 ** -0.5
    noisy = np.where(np.arange(8) % 2 == 0, 0.0, 0.09)

    def evaluate(fx):
        q = fx.hidden.step
        if q == target:
            e = np.full(8, 0.045) if consistent else noisy
        else:
            e = np.full(8, 0.05 + 0.1 * abs(math.log2(q / q_p)))
        return float_scores * (1 + e[:, None])

    fx, rep = quiet_quantize(small_net(), strategy="calibrate", calibration=Data(), evaluate=evaluate,
                             float_scores=float_scores)
    at_target = next(e for e in rep.search if e["hidden_step"] == target and e["readout_step"] == 2.0 ** -11)
    assert at_target["score_error"] == pytest.approx(0.045)
    assert at_target["vs_start"]["score_error_diff"] == pytest.approx(-0.005)
    if consistent:
        assert fx.hidden.step == target and at_target["vs_start"]["clearly_lower"]
    else:
        assert at_target["vs_start"]["std_error"] == pytest.approx(np.std(noisy - 0.05, ddof=1) / math.sqrt(8))
        assert fx.hidden.step == q_p and not at_target["vs_start"]["clearly_lower"]
        assert rep.score_error == pytest.approx(0.05) and rep.percentile_score_error == rep.score_error


def test_calibrate_rejects_malformed_scores():
    labels = np.zeros(4, np.int64)

    class Data:
        n_channels, timesteps, name, labels = 10, P.timesteps, "fake", np.zeros(4, np.int64)
        def __len__(self): return 4  # noqa: E704

    with pytest.raises(QuantizationError, match=r"float_scores: expected finite readout scores of shape \(4, 4\)"):
        quiet_quantize(small_net(), strategy="calibrate", calibration=Data(), evaluate=lambda fx: labels,
                       float_scores=np.zeros((4, 3)))
    with pytest.raises(QuantizationError, match=r"evaluate\(\) result: expected predictions of shape \(4,\)"):
        quiet_quantize(small_net(), strategy="calibrate", calibration=Data(), evaluate=lambda fx: labels[:3],
                       float_scores=np.zeros((4, 4)))


# ------------------------------------------------------------------ the mlGeNN fixture and the emulator

@pytest.fixture(scope="module")
def fixture_net_and_data():
    net = import_mlgenn(FIXTURE_DIR, 29)
    data = read_spike_file(FIXTURE_DIR / "SHD" / "shd_test.h5", name="shd")
    return net, data


def test_fixture_8_bit_conversion_loss_is_tiny(tmp_path, fixture_net_and_data):
    from eventprop_pipeline.model.forward import simulate
    from netx_export.emulator import emulate

    net, data = fixture_net_and_data
    calib = data.subset(range(32))
    float_run = simulate(net, calib.dense(range(len(calib))))
    runs = []

    def evaluate(fx):
        runs.append(emulate(fx, calib))
        return runs[-1].score

    fx, rep = quiet_quantize(net, weight_bits=8, calibration=calib, evaluate=evaluate,
                             float_scores=float_run.readout)
    assert len(runs) == 1
    assert np.array_equal(np.argmax(float_run.readout, axis=1), float_run.prediction)
    assert rep.agreement == np.mean(runs[0].pred == float_run.prediction)
    assert rep.agreement >= 0.95 and rep.fixed_accuracy >= rep.float_accuracy - 0.05
    # The readout scores, not just the argmax, follow the float model: the scaling is right.
    rel = np.abs(runs[0].score - float_run.readout).mean() / np.abs(float_run.readout).mean()
    assert rel < 0.05, rel
    assert rep.score_error == pytest.approx(rel, rel=1e-6)      # the float readout is float32
    # What Lava will read is what the emulator ran.
    back = read_netx(write_netx(fx, tmp_path / "fx.h5"))
    np.testing.assert_array_equal(back.hidden.weight_rec, fx.hidden.weight_rec)
    assert back.metadata["params"]["tau_mem"] == 20.0
    saved = json.loads(rep.save(tmp_path / "rep.json").read_text())
    assert saved["layers"][0]["name"] == "hidden" and saved["float_accuracy"] == rep.float_accuracy
    assert "hidden" in rep.table() and "fixed point (emulator)" in rep.table()


def float_scores_of(net, data):
    from eventprop_pipeline.evaluation import evaluate_float
    return evaluate_float(net, data, device="cpu").score


def test_calibrate_never_worse_than_percentile(fixture_net_and_data):
    net, data = fixture_net_and_data
    calib = data.subset(range(12))
    scores = float_scores_of(net, calib)
    _, rep_p = quiet_quantize(net, weight_bits=3, calibration=calib, float_scores=scores)
    _, rep_c = quiet_quantize(net, weight_bits=3, strategy="calibrate", calibration=calib, float_scores=scores)
    assert rep_c.percentile_accuracy == rep_p.fixed_accuracy
    assert rep_c.percentile_agreement == rep_p.agreement
    assert rep_c.percentile_score_error == rep_p.score_error
    assert rep_c.agreement >= rep_p.agreement
    key = lambda r: (r.agreement, -r.score_error)  # noqa: E731
    assert key(rep_c) >= key(rep_p)
    # Every candidate's criterion values are in the report; the chosen one is the best of its readout search.
    evaluated = [e for e in rep_c.search if "skipped" not in e]
    assert 15 <= len(evaluated) <= 23       # the search cost stays about 21 emulator runs
    for e in evaluated:
        assert 0 <= e["accuracy"] <= 1 and 0 <= e["agreement"] <= 1 and math.isfinite(e["score_error"])
    chosen = [e for e in evaluated if e.get("chosen")]
    assert len(chosen) == 1 and chosen[0]["score_error"] == rep_c.score_error
    # each move away from a search's start is justified by agreement or a clear score gain
    for e in evaluated:
        if "vs_start" in e and (e.get("chosen") or e["searched_layer"] == "hidden" and
                                e["hidden_step"] == chosen[0]["hidden_step"]):
            start = next(x for x in evaluated if (x["hidden_step"], x["readout_step"]) ==
                         (e["vs_start"]["start_hidden_step"], e["vs_start"]["start_readout_step"]))
            assert e["agreement"] > start["agreement"] or \
                e["agreement"] == start["agreement"] and e["vs_start"]["clearly_lower"]
            assert e["vs_start"]["score_error_diff"] == pytest.approx(e["score_error"] - start["score_error"])


def test_calibrate_8_bit_held_out_not_worse_than_percentile(fixture_net_and_data):
    """Issue #4's case: calibrating on samples 0-63 (where every candidate scores 100 %) must not lose
    held-out samples 64-127 that the percentile step keeps (the weight-error tie-break lost one)."""
    from netx_export.emulator import emulate

    net, data = fixture_net_and_data
    calib, held_out = data.subset(range(64)), data.subset(range(64, 128))
    _, rep = quiet_quantize(net, weight_bits=8, strategy="calibrate", calibration=calib,
                            float_scores=float_scores_of(net, calib))
    assert rep.fixed_accuracy == rep.percentile_accuracy == 1.0          # accuracy cannot rank them
    assert rep.agreement == rep.percentile_agreement == 1.0
    assert rep.score_error <= rep.percentile_score_error
    fx_c, _ = quiet_quantize(net, weight_bits=8, steps={"hidden": rep.layer("hidden").step,
                                                         "readout": rep.layer("readout").step}, clip=True)
    fx_p, _ = quiet_quantize(net, weight_bits=8)
    acc = {name: float(np.mean(emulate(fx, held_out).pred == held_out.labels))
           for name, fx in (("calibrate", fx_c), ("percentile", fx_p))}
    assert acc["calibrate"] >= acc["percentile"], acc


# ------------------------------------------------------------------------------------------------- CLI

def test_cli_export_percentile_and_calibrate(tmp_path, capsys, fixture_net_and_data):
    from eventprop_pipeline.cli.main import main

    net, _ = fixture_net_and_data
    model = net.save(tmp_path / "model.npz")
    out = tmp_path / "net.h5"
    assert main(["export", str(model), "--out", str(out)]) == 0
    assert "hidden" in capsys.readouterr().out
    fx = read_netx(out)
    assert fx.hidden.weight_bits == 8 and fx.metadata["quantization"]["strategy"] == "percentile"
    report = json.loads((tmp_path / "net.quantization.json").read_text())
    assert report["n_calibration"] == 0 and report["layers"][0]["step"] == fx.hidden.step

    rep_path = tmp_path / "r.json"
    assert main(["export", str(model), "--out", str(out), "--weight-bits", "6", "--scale", "calibrate",
                 "--dataset", "shd", "--data-root", str(FIXTURE_DIR), "--split", "test", "--limit", "4",
                 "--report", str(rep_path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads(rep_path.read_text())
    assert printed["strategy"] == saved["strategy"] == "calibrate" and saved["n_calibration"] == 4
    assert saved["agreement"] >= saved["percentile_agreement"]
    assert saved["float_accuracy"] is not None and saved["fixed_accuracy"] is not None
    assert read_netx(out).hidden.weight_bits == 6


@pytest.mark.parametrize("extra, reason", [
    (["--scale", "calibrate"], "--scale calibrate needs a calibration set"),
    (["--weight-bits", "9"], "weight bits 9 outside 1..8"),
])
def test_cli_export_errors(tmp_path, capsys, extra, reason):
    from eventprop_pipeline.cli.main import main

    model = small_net().save(tmp_path / "m.npz")
    assert main(["export", str(model), "--out", str(tmp_path / "n.h5"), *extra]) == 1
    err = capsys.readouterr().err
    assert reason in err and "Traceback" not in err
    assert not (tmp_path / "n.h5").exists()


def test_calibration_provenance_travels_in_the_file(tmp_path, fixture_net_and_data):
    net, data = fixture_net_and_data
    calib = data.subset(range(8), name="shd_test.h5[0:8]")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UWrapWarning)
        fx, _ = quantize(net, weight_bits=8, strategy="calibrate", calibration=calib,
                         float_scores=float_scores_of(net, calib))
    write_netx(fx, tmp_path / "n.net")
    meta = read_netx(tmp_path / "n.net").metadata["quantization"]
    assert meta["strategy"] == "calibrate"
    assert meta["calibration"] == {"data": "shd_test.h5[0:8]", "samples": 8}
