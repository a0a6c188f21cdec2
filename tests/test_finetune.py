"""Hardware-in-the-loop fine-tuning: the fine-tuning forward pass is the emulator bit for bit (spikes,
counts, scores, and the integer state behind each recorded jump denominator); its Eventprop gradients
match the float engine's where float and fixed-point spikes coincide; fine-tuning lifts a 2-bit
export on the synthetic set; resume is bit-identical; the NetX file reads back with the reported
emulator accuracy and weights on the grid."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from eventprop_pipeline.data.registry import load_dataset
from eventprop_pipeline.data.synthetic import SyntheticConfig
from eventprop_pipeline.finetune import FinetuneConfig, finetune
from eventprop_pipeline.finetune.fixed_forward import run_fixed
from eventprop_pipeline.finetune.gradients import fixed_point_batch
from eventprop_pipeline.finetune.grid import Grid
from eventprop_core.network import Network, load_network
from eventprop_core.params import ModelParams
from netx_export.emulator import _apply, cuba_constants, emulate, lava_synapses
from netx_export.fixed_point import V_MAX
from netx_export.hdf5_io import read_netx
from netx_export.quantize import quantize

SMOKE = Path(__file__).resolve().parent.parent / "configs" / "smoke.toml"
SMOKE_SYNTHETIC = dict(n_channels=64, n_classes=4, n_train=160, n_test=60, peak_hz=400.0, band_sigma=0.04,
                       background_hz=2.0)


def quiet_quantize(net, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize(net, **kw)


def random_case(seed: int, bits: int, T: int = 80):
    p = ModelParams(timesteps=T)
    data = load_dataset("synthetic", "train", dt=p.dt, timesteps=T, limit=12,
                        synthetic=SyntheticConfig(n_channels=40, n_classes=4, n_train=12, seed=seed, peak_hz=300.0))
    net = Network.initialise(40, 24, 4, params=p, seed=seed,
                             init={"input_hidden": (0.3, 0.3), "hidden_hidden": (0.0, 0.3),
                                   "hidden_output": (0.0, 0.5)})
    fx, _ = quiet_quantize(net, weight_bits=bits)
    return net, fx, data


def raster_of(fw, n: int, T: int, H: int) -> np.ndarray:
    r = np.zeros((T, H), bool)
    for k in range(T):
        r[k, fw.spk_neuron[n, fw.spk_off[n, k]:fw.spk_off[n, k + 1]]] = True
    return r


@pytest.mark.parametrize("seed, bits", [(0, 2), (1, 4), (2, 8), (3, 3)])
def test_forward_reproduces_the_emulator_bit_for_bit(seed, bits):
    net, fx, data = random_case(seed, bits)
    T, H = data.timesteps, net.n_hidden
    ref = emulate(fx, data, record_hidden=True, engine="numpy")      # the readable reference engine
    fw = run_fixed(fx, data, np.arange(len(data)), net.params.i_scale, net.params.alpha, capacity=8)
    assert ref.hidden_spike_counts.sum() > 100                          # the case exercises spikes
    np.testing.assert_array_equal(fw.score, ref.score)
    np.testing.assert_array_equal(fw.counts, ref.hidden_spike_counts)
    for n in range(len(data)):
        np.testing.assert_array_equal(raster_of(fw, n, T, H), ref.hidden_spikes[n, :T])


@pytest.mark.parametrize("bits", [2, 5, 8])
def test_grid_round_trip_is_the_plain_export(bits):
    """Epoch 0 of fine-tuning is exactly the quantizer's network (same rounding and saturation), and the
    effective float weights of a fixed-point network quantize back to it."""
    net, fx, _ = random_case(6, bits)
    grid = Grid(fx, (1 - net.params.alpha) * net.params.i_scale)
    shadow = grid.shadow_of(net)
    grid.clamp(shadow)
    again = grid.fixed(shadow)
    for a, b in ((again.hidden.weight, fx.hidden.weight), (again.hidden.weight_rec, fx.hidden.weight_rec),
                 (again.readout.weight, fx.readout.weight)):
        np.testing.assert_array_equal(a, b)
    eff = Network({k: v.astype(np.float32) for k, v in grid.effective_weights(fx).items()}, net.params)
    back = grid.fixed(grid.shadow_of(eff))
    np.testing.assert_array_equal(back.hidden.weight_rec, fx.hidden.weight_rec)
    np.testing.assert_array_equal(back.readout.weight, fx.readout.weight)


def test_jump_denominators_are_the_integer_state_in_float_units():
    """Recompute u and the pre-reset v of sample 0 step by step with the emulator's numpy pieces."""
    net, fx, data = random_case(4, 4)
    p, T = net.params, data.timesteps
    fw = run_fixed(fx, data, [0], p.i_scale, p.alpha)
    syn_in, syn_rec = lava_synapses(fx.hidden.weight, fx.hidden.weight_rec)
    c = cuba_constants(fx.hidden)
    x = data.dense([0])[0].astype(np.float64)
    u, v, s = np.zeros(24), np.zeros(24), np.zeros(24)
    q, scale = fx.hidden.step, (1 - p.alpha) * p.i_scale
    dens = []
    for i in range(T):
        a = (_apply(syn_in, x[i - 1]) if i >= 1 else 0.0) + _apply(syn_rec, s)
        u = np.trunc(u * c.u_keep) + 64 * a                     # no wrap in this small case
        v_pre = np.clip(np.trunc(v * c.v_keep) + u, -V_MAX, V_MAX)
        spikes = v_pre > c.threshold
        dens += list(q / 64 * (u[spikes] / scale - v_pre[spikes]))
        v, s = np.where(spikes, 0.0, v_pre), spikes.astype(np.float64)
    n = fw.spk_off[0, T]
    assert n == len(dens) > 20
    np.testing.assert_allclose(fw.spk_den[0, :n], dens, rtol=1e-12)


def test_gradients_match_the_float_engine_where_spikes_coincide():
    """At 8 bits most samples spike exactly as the float model with the weights the fixed-point network
    realises; on those, the Eventprop gradients from the integer record agree with the float engine's
    (up to the 12-bit decays and the integer rounding of the state)."""
    from eventprop_pipeline.eventprop import LossOptions, compute_batch
    from eventprop_pipeline.model.forward import simulate

    net, fx, all_data = random_case(5, 8, T=60)
    grid = Grid(fx, (1 - net.params.alpha) * net.params.i_scale)
    eff = Network({k: v.astype(np.float32) for k, v in grid.effective_weights(fx).items()}, net.params)
    float_run = simulate(eff, all_data.dense(np.arange(len(all_data))), record=True)
    fixed = emulate(fx, all_data, record_hidden=True)
    same = [n for n in range(len(all_data)) if np.array_equal(float_run.hidden_spikes[n], fixed.hidden_spikes[n, :60])]
    assert len(same) >= 8
    data = all_data.subset(same)
    idx = np.arange(len(data))
    assert fixed.hidden_spike_counts[same].sum() > 100
    opts = LossOptions(reg_lambda_upper=0.0)
    ref = compute_batch(eff, data, data.labels, opts, device="cpu")
    got = fixed_point_batch(grid, fx, net.params, data, idx, data.labels, opts)
    assert got.loss == pytest.approx(ref.loss, rel=2e-3)
    for k in ref.grads:   # fixed-point grads are per grid level: back to float-weight units
        g = got.grads[k] * grid.weight_scale / grid.step(k)
        err = np.abs(g - ref.grads[k]).max() / np.abs(ref.grads[k]).max()
        assert err < 0.02, (k, err)


# ------------------------------------------------------------------------------------ training runs

@pytest.fixture(scope="module")
def float_model(tmp_path_factory):
    from eventprop_pipeline.training import load_train_config, train

    run = tmp_path_factory.mktemp("float")
    train(load_train_config(SMOKE), run, progress=False, log=lambda *a, **k: None)
    return run / "best.npz"


def config(model, **kw) -> FinetuneConfig:
    base = dict(model=str(model), weight_bits=2, scale="percentile", epochs=4, batch_size=16, lr=0.05,
                synthetic=SMOKE_SYNTHETIC, seed=3)
    return FinetuneConfig(**{**base, **kw})


def test_finetune_lifts_a_2_bit_export_and_reports_what_the_file_does(float_model, tmp_path):
    s = finetune(config(float_model), tmp_path / "ft", progress=False, log=lambda *a, **k: None)
    assert s.finished and s.best_epoch > 0
    # the percentile 2-bit export loses a lot on this set; fine-tuning recovers most of it
    assert s.emulator_test_accuracy_before < s.float_test_accuracy - 0.1
    assert s.emulator_test_accuracy >= s.emulator_test_accuracy_before + 0.1
    # the reported accuracy is that of the written file, read back, in the emulator
    fx = read_netx(tmp_path / "ft" / "network.net")
    test = load_dataset("synthetic", "test", dt=1.0, timesteps=100, synthetic=SyntheticConfig(**SMOKE_SYNTHETIC))
    assert np.mean(emulate(fx, test).pred == test.labels) == s.emulator_test_accuracy
    # weights on the 2-bit grid, steps and threshold those of the plain export
    initial = read_netx(tmp_path / "ft" / "initial.net")
    for w in (fx.hidden.weight, fx.hidden.weight_rec, fx.readout.weight):
        assert w.min() >= -2 and w.max() <= 1
    assert (fx.hidden.step, fx.readout.step, fx.hidden.vth_mant) == \
        (initial.hidden.step, initial.readout.step, initial.hidden.vth_mant)
    assert not np.array_equal(fx.hidden.weight, initial.hidden.weight)
    # the float twin holds exactly the grid values
    twin = load_network(tmp_path / "ft" / "model.npz")
    levels = twin.weights["hidden_output"] * (1 - twin.params.alpha) * twin.params.i_scale / fx.readout.step
    np.testing.assert_allclose(levels, fx.readout.weight.T, atol=1e-4)
    summary = json.loads((tmp_path / "ft" / "summary.json").read_text())
    assert summary["emulator_test_accuracy"] == s.emulator_test_accuracy
    assert fx.metadata["finetune"]["best_epoch"] == s.best_epoch


def test_resume_gives_identical_results(float_model, tmp_path):
    quiet = dict(progress=False, log=lambda *a, **k: None)
    whole = finetune(config(float_model, epochs=3), tmp_path / "a", **quiet)
    part = finetune(config(float_model, epochs=3), tmp_path / "b", max_epochs_this_call=1, **quiet)
    assert not part.finished and not (tmp_path / "b" / "network.net").exists()
    resumed = finetune(None, tmp_path / "b", resume=True, **quiet)
    assert resumed.finished and resumed.to_dict() | {"seconds": 0, "run_dir": 0, "netx_path": 0} == \
        whole.to_dict() | {"seconds": 0, "run_dir": 0, "netx_path": 0}
    a, b = read_netx(tmp_path / "a" / "network.net"), read_netx(tmp_path / "b" / "network.net")
    for x, y in ((a.hidden.weight, b.hidden.weight), (a.hidden.weight_rec, b.hidden.weight_rec),
                 (a.readout.weight, b.readout.weight)):
        np.testing.assert_array_equal(x, y)
    with np.load(tmp_path / "a" / "checkpoint.npz") as ca, np.load(tmp_path / "b" / "checkpoint.npz") as cb:
        for k in ca.files:
            if k.startswith(("weights/", "adam_")):
                np.testing.assert_array_equal(ca[k], cb[k])
    assert (tmp_path / "b" / "metrics.csv").read_text() .count("\n") == 4     # header + 3 epochs, none twice


def test_cli_finetune_help_and_errors(capsys, tmp_path, float_model):
    from eventprop_pipeline.cli.main import main

    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    assert "hardware in the loop" in capsys.readouterr().out
    assert main(["finetune", "--out", str(tmp_path / "x")]) == 1
    assert "give the float network file" in capsys.readouterr().err
    assert main(["finetune", str(float_model), "--out", str(tmp_path / "x"), "--weight-bits", "9"]) == 1
    assert "--weight-bits must be an integer in 1..8" in capsys.readouterr().err
    assert main(["finetune", "--resume", str(tmp_path / "nothing")]) == 1
    assert "no checkpoint here" in capsys.readouterr().err
    # no --dataset: the model's own (64-channel synthetic) training data, found in its provenance
    assert main(["finetune", str(float_model), "--out", str(tmp_path / "y"), "--scale", "percentile",
                 "--epochs", "1", "--batch-size", "16", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["finished"] and summary["n_train"] + summary["n_valid"] == 160 and summary["n_test"] == 60
    assert summary["emulator_test_accuracy"] is not None


def test_pipeline_finetune_stage(float_model, tmp_path):
    """[pipeline] finetune_epochs > 0: the exported network.net is the fine-tuned one, and the evaluate
    stage's emulator accuracy on the test split is what fine-tuning reported."""
    from eventprop_pipeline.cli.main import main

    out = tmp_path / "run"
    assert main(["pipeline", "--config", str(SMOKE), "--model", str(float_model), "--no-lava", "--weight-bits", "2",
                 "--scale", "percentile", "--sweep-bits", "2", "--finetune-epochs", "3", "--out", str(out)]) == 0
    stages = json.loads((out / "stages.json").read_text())["stages"]
    ft = stages["export"]["info"]["finetune"]
    assert ft["finished"] and ft["epochs_completed"] == 3
    assert (out / "network.net").read_bytes() == (out / "finetune" / "network.net").read_bytes()
    assert stages["evaluate"]["info"]["emulator_accuracy"] == ft["emulator_test_accuracy"]
    assert ft["emulator_test_accuracy"] > ft["emulator_test_accuracy_before"]


@pytest.mark.lava
def test_finetuned_file_runs_identically_in_lava(float_model, tmp_path):
    """The fine-tuned NetX file in Lava's fixed-point simulator: every readout voltage and hidden spike
    equals the emulator's (which is what fine-tuning trained against and reports)."""
    from netx_export.lava_runner import run_lava

    finetune(config(float_model, epochs=2), tmp_path / "ft", progress=False, log=lambda *a, **k: None)
    path = tmp_path / "ft" / "network.net"
    test = load_dataset("synthetic", "test", dt=1.0, timesteps=100, synthetic=SyntheticConfig(**SMOKE_SYNTHETIC))
    idx = np.arange(2)
    lava = run_lava(path, test, indices=idx, progress=False, record_trace=True, record_hidden=True)
    em = emulate(read_netx(path), test, indices=idx, record_trace=True, record_hidden=True)
    np.testing.assert_array_equal(lava.readout_v, em.readout_v)
    np.testing.assert_array_equal(lava.hidden_spikes, em.hidden_spikes)
