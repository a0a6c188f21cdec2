"""`eventprop pipeline` end to end on tiny synthetic data: stages, Lava bit-exactness, resume, report, errors.

Independent truth: Lava itself (its traces must equal the emulator's; the stage checks it and this test
re-checks the saved traces), accuracies recomputed here from the saved predictions, and the float
model re-evaluated here on the saved model file.
"""
import json
import os
import re

import numpy as np
import pytest

from eventprop_pipeline.cli.main import main
from eventprop_pipeline.pipeline import STAGES
from eventprop_pipeline.run_files import load_arrays

TINY = """\
seed = 0
device = "cpu"
[synthetic]
n_train = 40
n_test = 12
[network]
hidden = 16
timesteps = 60
[optim]
epochs = 1
batch_size = 16
[augment]
blend = false
[pipeline]
lava_samples = 2
sweep_bits = [8, 3]
latency_samples = 2
"""


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def finished_run(tiny_config, tmp_path_factory):
    """One full pipeline run with Lava (shared by the tests that only read it), given a relative
    --out as `make demo` does."""
    parent = tmp_path_factory.mktemp("runs")
    cwd = os.getcwd()
    os.chdir(parent)
    try:
        rc = main(["pipeline", "--config", str(tiny_config), "--out", "full"])
    finally:
        os.chdir(cwd)
    assert rc == 0
    return parent / "full"


def _manifest(run_dir):
    return json.loads((run_dir / "stages.json").read_text())["stages"]


@pytest.mark.lava
def test_pipeline_end_to_end(finished_run, capsys):
    out = finished_run
    stages = _manifest(out)
    assert [s for s in STAGES if stages[s]["status"] == "done"] == list(STAGES)
    # Lava (independent implementation) and the emulator traces saved by the stage are identical.
    lava = load_arrays(out / "results" / "lava.npz")
    assert len(lava["indices"]) == 2
    assert lava["readout_v"].shape == (2, 60 + 2, 20)
    assert np.array_equal(lava["readout_v"], lava["emulator_readout_v"])
    assert json.loads((out / "results" / "lava_check.json").read_text())["identical"] is True
    # The float predictions equal a fresh evaluation of the saved model on the same test split.
    from eventprop_pipeline import load_network
    from eventprop_pipeline.data import SyntheticConfig, load_dataset
    from eventprop_pipeline.evaluation import evaluate_float
    net = load_network(out / "model.npz")
    test = load_dataset("synthetic", "test", dt=1.0, timesteps=60, synthetic=SyntheticConfig(n_train=40, n_test=12))
    fl = load_arrays(out / "results" / "float.npz")
    assert np.array_equal(evaluate_float(net, test, device="cpu").pred, fl["pred"])
    assert np.array_equal(fl["label"], test.labels)
    # The NetX file loads back; the report's numbers are the saved predictions' accuracies.
    from netx_export.hdf5_io import read_netx
    assert read_netx(out / "network.net").hidden.size == 16
    em = load_arrays(out / "results" / "emulator.npz")
    report = (out / "report.md").read_text()
    for pred, label in ((fl["pred"], fl["label"]), (em["pred"], em["label"]), (lava["pred"], lava["label"])):
        assert f"{100 * np.mean(pred == label):.2f} %" in report
    assert "ESTIMATES" in report and "Davies et al. 2018" in report
    for fig in ("training_curves", "hidden_raster", "readout_traces", "weight_histogram", "accuracy_vs_bits",
                "confusion"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 1000
    sweep = json.loads((out / "results" / "sweep.json").read_text())
    assert [r["weight_bits"] for r in sweep["rows"]] == [8, 3]
    assert sweep["rows"][0]["accuracy"] == pytest.approx(np.mean(em["pred"] == em["label"]))


@pytest.mark.lava
def test_compare_rebuilds_report(finished_run, capsys):
    (finished_run / "report.md").unlink()
    for png in (finished_run / "figures").glob("*.png"):
        png.unlink()
    assert main(["compare", str(finished_run)]) == 0
    out = capsys.readouterr().out
    assert "fixed point (emulator)" in out and "Lava CPU simulator" in out
    assert (finished_run / "report.md").is_file() and (finished_run / "figures" / "confusion.png").is_file()


@pytest.mark.lava
def test_existing_run_dir_needs_resume(finished_run, tiny_config, capsys):
    assert main(["pipeline", "--config", str(tiny_config), "--out", str(finished_run)]) == 1
    assert "--resume" in capsys.readouterr().err


def test_resume_skips_finished_stages(tiny_config, tmp_path, monkeypatch):
    import eventprop_pipeline.pipeline.stages as stages
    import eventprop_pipeline.training as training
    import netx_export.quantize as quantize_module

    calls = {"train": 0, "quantize": 0}
    real_train, real_quantize = training.train, quantize_module.quantize

    def counting_train(*a, **k):
        calls["train"] += 1
        return real_train(*a, **k)

    def counting_quantize(*a, **k):
        calls["quantize"] += 1
        return real_quantize(*a, **k)

    monkeypatch.setattr(training, "train", counting_train)
    monkeypatch.setattr(quantize_module, "quantize", counting_quantize)
    real_sweep = stages.stage_sweep

    def interrupted_sweep(ctx):
        raise KeyboardInterrupt

    monkeypatch.setattr(stages, "stage_sweep", interrupted_sweep)
    out = tmp_path / "run"
    argv = ["pipeline", "--config", str(tiny_config), "--out", str(out), "--no-lava"]
    assert main(argv) == 130                       # Ctrl-C during the sweep stage
    first = _manifest(out)
    assert [first[s]["status"] for s in ("model", "export", "evaluate", "sweep")] == \
        ["done", "done", "done", "interrupted"]
    assert calls == {"train": 1, "quantize": 1}

    monkeypatch.setattr(stages, "stage_sweep", real_sweep)
    assert main(argv + ["--resume"]) == 0
    second = _manifest(out)
    assert calls == {"train": 1, "quantize": 1 + 1}    # only the sweep's 3 bits (8 bits is the export)
    for s in ("model", "export", "evaluate"):
        assert second[s]["started"] == first[s]["started"]
    assert second["sweep"]["status"] == "done" and second["report"]["status"] == "done"
    assert second["lava"]["status"] == "skipped"
    assert "NOT verified in Lava" in (out / "report.md").read_text()

    # A changed input invalidates exactly the stages that depend on it.
    model = out / "model.npz"
    model.write_bytes(model.read_bytes())            # same bytes: nothing reruns
    assert main(argv + ["--resume"]) == 0
    assert _manifest(out)["export"]["started"] == first["export"]["started"]
    assert main(argv + ["--resume", "--weight-bits", "6"]) == 0
    third = _manifest(out)
    assert third["model"]["started"] == first["model"]["started"]
    assert third["export"]["started"] != first["export"]["started"]
    assert third["export"]["info"]["weight_bits"] == 6


def test_trace_mismatch_fails_loudly(tiny_config, tmp_path, monkeypatch, capsys):
    """A Lava result that differs from the emulator in one value stops the pipeline (exit 1), naming
    the sample and the first differing step. Lava is replaced by the emulator plus one flipped value."""
    import netx_export.lava_runner as lava_runner
    from netx_export.emulator import emulate
    from netx_export.hdf5_io import read_netx

    def fake_run_lava(path, data, *, indices, **kwargs):
        r = emulate(read_netx(path), data.subset(indices), record_trace=True)
        r.readout_v[1, 17, 3] += 1
        return r

    monkeypatch.setattr(lava_runner, "run_lava", fake_run_lava)
    monkeypatch.setattr("eventprop_pipeline.pipeline.stages.lava_unavailable_reason", lambda: None)
    out = tmp_path / "run"
    rc = main(["pipeline", "--config", str(tiny_config), "--out", str(out), "--sweep-bits", "8"])
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    from eventprop_pipeline.pipeline.stages import lava_subset
    second_sample = lava_subset(12, 2, 0)[1]
    assert re.search(rf"test sample {second_sample}, Lava step 17, readout neuron 3", err[0])
    stages = _manifest(out)
    assert stages["lava"]["status"] == "failed" and "report" not in stages
    assert not (out / "report.md").exists()


def test_without_lava_the_check_is_skipped_with_the_reason(tiny_config, tmp_path, monkeypatch, capsys):
    """No Lava environment (no Python 3.10): one note up front, the Lava stage recorded as skipped with
    the reason, everything else runs and the report says Lava did not verify the export."""
    reason = "Lava is not available: no Python 3.10 environment (test)"
    monkeypatch.setattr("eventprop_pipeline.pipeline.stages.lava_unavailable_reason", lambda: reason)
    out = tmp_path / "run"
    assert main(["pipeline", "--config", str(tiny_config), "--out", str(out), "--sweep-bits", "8"]) == 0
    printed = capsys.readouterr().out
    assert f"note: the Lava check will be skipped: {reason}" in printed
    stages = _manifest(out)
    assert stages["lava"]["status"] == "skipped" and stages["report"]["status"] == "done"
    assert json.loads((out / "results" / "lava_check.json").read_text()) == {"skipped": True, "reason": reason}
    assert (out / "network.net").exists() and (out / "report.md").exists()


def test_broken_inputs_give_one_line_errors(tmp_path, capsys):
    from eventprop_pipeline import Network, ModelParams

    def run(*argv):
        rc = main(["pipeline", "--no-lava", *argv])
        err = capsys.readouterr().err.strip()
        assert rc == 1 and len(err.splitlines()) == 1 and err.startswith("error: "), err
        return err

    # missing data root
    net = Network.initialise(700, 8, 20, params=ModelParams(timesteps=20))
    model = net.save(tmp_path / "m.npz")
    err = run("--model", str(model), "--dataset", "shd", "--data-root", str(tmp_path / "nowhere"),
              "--out", str(tmp_path / "r1"))
    assert "nowhere" in err and "does not exist" in err
    # corrupt model file
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    assert "bad.npz" in run("--model", str(bad), "--out", str(tmp_path / "r2"))
    # export out of range: a threshold mantissa beyond 17 bits
    tiny = Network({k: v * 1e-7 for k, v in net.weights.items()}, net.params)
    err = run("--model", str(tiny.save(tmp_path / "tiny.npz")), "--out", str(tmp_path / "r3"))
    assert "vThMant" in err or "threshold" in err
    # bad option values
    assert "weight_bits" in run("--model", str(model), "--weight-bits", "9", "--out", str(tmp_path / "r4"))
    assert "--epoch" in run("--mlgenn", str(tmp_path), "--out", str(tmp_path / "r5"))
    # compare on a folder without results
    assert main(["compare", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(tmp_path) in err and "not written by eventprop" in err
    cfg = tmp_path / "typo.toml"
    cfg.write_text("[pipeline]\nlava_sample = 3\n")
    assert "lava_samples" in run("--config", str(cfg), "--out", str(tmp_path / "r6"))


def test_pipeline_from_mlgenn_checkpoint(fixture_dir, tmp_path):
    """Start from the mlGeNN fixture: float and 8-bit emulator agree on nearly every sample."""
    out = tmp_path / "run"
    rc = main(["pipeline", "--mlgenn", str(fixture_dir), "--epoch", "29", "--dataset", "shd", "--data-root",
               str(fixture_dir), "--limit", "12", "--no-lava", "--sweep-bits", "8", "--out", str(out)])
    assert rc == 0
    fl, em = load_arrays(out / "results" / "float.npz"), load_arrays(out / "results" / "emulator.npz")
    assert len(fl["pred"]) == 12
    ref = np.load(fixture_dir / "mlgenn_outputs.npz")["pred"][:12]
    assert np.mean(fl["pred"] == ref) == 1.0          # mlGeNN's own isolated-sample predictions
    assert np.mean(em["pred"] == fl["pred"]) >= 11 / 12
    # The fixture has no training split: --scale auto fell back to percentile and said why.
    export = _manifest(out)["export"]["info"]
    assert export["scale"] == "percentile"
    assert any("scale auto: no training split" in w for w in export["warnings"])


def test_scale_auto_calibrates_when_training_data_exists(finished_run):
    assert _manifest(finished_run)["export"]["info"]["scale"] == "calibrate"


def test_demo_config_is_valid():
    from eventprop_pipeline.cli.demo_cmd import demo_config_path
    from eventprop_pipeline.pipeline.config_file import load_pipeline_config

    train_cfg, deploy = load_pipeline_config(demo_config_path())
    assert train_cfg.data.dataset == "synthetic"
    assert deploy.lava and deploy.lava_samples == 8 and deploy.sweep_bits == (8, 6, 4, 2)
