"""Training runs end to end on tiny data: learning, run folder contents, exact resumption, SHD files, CLI."""
import json
from pathlib import Path

import numpy as np
import pytest

from eventprop_pipeline.cli.main import main
from eventprop_pipeline.data.spike_files import write_spike_file
from eventprop_pipeline.data.synthetic import generate_split
from eventprop_core.errors import ConfigError
from eventprop_core.network import WEIGHT_NAMES, load_network
from eventprop_pipeline.training import TrainingInterrupted, load_checkpoint, load_train_config, train

SMOKE = Path(__file__).resolve().parent.parent / "configs" / "smoke.toml"
quiet = dict(progress=False, log=lambda *a, **k: None)


def smoke(**changes):
    return load_train_config(SMOKE, changes)


def read_rows(run_dir):
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def test_smoke_run_learns_and_writes_a_complete_run_folder(tmp_path):
    cfg = smoke()
    summary = train(cfg, tmp_path / "run", **quiet)
    rows = read_rows(tmp_path / "run")
    assert [r["epoch"] for r in rows] == list(range(1, cfg.optim.epochs + 1))
    assert rows[-1]["train_loss"] < 0.6 * rows[0]["train_loss"]
    chance = 1 / cfg.synthetic.n_classes
    assert summary.finished and summary.test_accuracy >= 0.75 > 2.5 * chance
    assert summary.best_valid_accuracy == max(r["valid_accuracy"] for r in rows)
    assert rows[summary.best_epoch - 1]["valid_accuracy"] == summary.best_valid_accuracy
    # best.npz is the network of the best epoch, evaluated independently with the float model
    from eventprop_pipeline.evaluation import evaluate_float
    from eventprop_pipeline.training.splits import load_run_data
    best = load_network(summary.best_path)
    assert best.provenance["trainer"] == "eventprop_pipeline.training"
    assert best.provenance["epochs"] == summary.best_epoch and best.provenance["dataset"] == "synthetic"
    assert best.params == cfg.network.model_params() and best.n_hidden == cfg.network.hidden
    assert evaluate_float(best, load_run_data(cfg).test).accuracy == summary.test_accuracy
    csv_lines = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,train_loss,train_accuracy,valid_accuracy,lr,spikes_per_neuron")
    assert len(csv_lines) == cfg.optim.epochs + 1
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == cfg.to_dict()
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["test_accuracy"] == summary.test_accuracy
    # the last network is the checkpoint's weights
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.npz")
    last = load_network(summary.last_path)
    assert ckpt.state["epoch"] == cfg.optim.epochs
    for k in WEIGHT_NAMES:
        np.testing.assert_array_equal(last.weights[k], ckpt.weights[k])


def assert_same_run(a: Path, b: Path):
    ca, cb = load_checkpoint(a / "checkpoint.npz"), load_checkpoint(b / "checkpoint.npz")
    for k in WEIGHT_NAMES:
        for x, y in ((ca.weights, cb.weights), (ca.best_weights, cb.best_weights), (ca.adam.m, cb.adam.m),
                     (ca.adam.v, cb.adam.v)):
            assert x[k].tobytes() == y[k].tobytes(), k
        assert load_network(a / "last.npz").weights[k].tobytes() == load_network(b / "last.npz").weights[k].tobytes()
    assert ca.adam.step == cb.adam.step and ca.state["schedule"] == cb.state["schedule"]
    drop_time = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
    assert drop_time(read_rows(a)) == drop_time(read_rows(b))


def test_stopped_and_resumed_run_ends_bit_identical(tmp_path):
    cfg = smoke(**{"optim.epochs": 3, "optim.lr_ease_in": True, "optim.plateau_patience": 1})
    full = train(cfg, tmp_path / "full", **quiet)
    part = train(cfg, tmp_path / "part", max_epochs_this_call=1, **quiet)
    assert not part.finished and part.epochs_completed == 1 and part.test_accuracy is None
    part = train(None, tmp_path / "part", resume=True, max_epochs_this_call=1, **quiet)
    assert part.epochs_completed == 2
    part = train(None, tmp_path / "part", resume=True, **quiet)
    assert part.finished and part.test_accuracy == full.test_accuracy
    assert_same_run(tmp_path / "full", tmp_path / "part")
    # the weights really changed over the run (the comparison above is not between initial weights)
    first = load_checkpoint(tmp_path / "full" / "checkpoint.npz").weights["input_hidden"]
    from eventprop_core.network import Network
    init = Network.initialise(first.shape[0], first.shape[1], 4, seed=cfg.seed, init=cfg.network.init())
    assert not np.array_equal(first, init.weights["input_hidden"])


def test_ctrl_c_keeps_the_last_epoch_and_resume_matches(tmp_path, monkeypatch):
    import eventprop_pipeline.eventprop as engine
    cfg = smoke(**{"optim.epochs": 2})
    train(cfg, tmp_path / "full", **quiet)
    from eventprop_pipeline.training.splits import load_run_data
    from eventprop_pipeline.training.trainer import epoch_training_set
    real, calls = engine.compute_batch, {"n": 0}
    batches_per_epoch = -(-len(epoch_training_set(load_run_data(cfg).train, cfg, 1)) // cfg.optim.batch_size)

    def interrupting(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == batches_per_epoch + 2:          # in the middle of epoch 2
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "compute_batch", interrupting)
    with pytest.raises(TrainingInterrupted) as exc:
        train(cfg, tmp_path / "run", **quiet)
    msg = str(exc.value)
    assert "epoch 2" in msg and "holds epoch 1" in msg and f"eventprop train --resume {tmp_path / 'run'}" in msg
    assert load_checkpoint(tmp_path / "run" / "checkpoint.npz").state["epoch"] == 1
    assert [r["epoch"] for r in read_rows(tmp_path / "run")] == [1]
    monkeypatch.setattr(engine, "compute_batch", real)
    train(None, tmp_path / "run", resume=True, **quiet)
    assert_same_run(tmp_path / "full", tmp_path / "run")


def test_refuses_to_overwrite_a_run(tmp_path):
    cfg = smoke(**{"optim.epochs": 1, "synthetic.n_train": 40, "synthetic.n_test": 10})
    train(cfg, tmp_path / "run", **quiet)
    with pytest.raises(ConfigError, match="already holds a training run.*--resume"):
        train(cfg, tmp_path / "run", **quiet)
    (tmp_path / "run" / "notes.txt").write_text("mine")
    assert train(cfg, tmp_path / "run", force=True, **quiet).finished
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"      # --force removes only run files
    with pytest.raises(ConfigError, match="cannot resume with a different network.hidden"):
        train(cfg.with_changes(hidden=5), tmp_path / "run", resume=True, **quiet)


def write_shd_files(root: Path, cfg):
    """The synthetic splits as SHD-layout files (spike times at bin centres, so binning restores them)."""
    for split in ("train", "test"):
        data = generate_split(cfg.synthetic.__class__(**{**cfg.synthetic.to_dict(), "dt": cfg.network.dt,
                                                         "timesteps": cfg.network.timesteps}), split)
        times = [(data.events(i)[0] + 0.5) * data.dt / 1000.0 for i in range(len(data))]
        units = [data.events(i)[1] for i in range(len(data))]
        write_spike_file(root / "SHD" / f"shd_{split}.h5", times, units, data.labels)


def test_training_from_shd_files_equals_training_on_the_same_data_in_memory(tmp_path, capsys):
    # SHD files need 700 channels and 20 classes; keep the run tiny otherwise.
    changes = {"synthetic.n_channels": 700, "synthetic.n_classes": 20, "synthetic.n_train": 60,
               "synthetic.n_test": 20, "hidden": 16, "network.timesteps": 60, "epochs": 2,
               "augment.shift_max": 40}
    cfg = smoke(**changes)
    write_shd_files(tmp_path / "data", cfg)
    config_file = tmp_path / "shd.json"
    config_file.write_text(cfg.to_json())
    out = tmp_path / "shd_run"
    assert main(["train", "--config", str(config_file), "--dataset", "shd", "--data-root", str(tmp_path / "data"),
                 "--out", str(out)]) == 0
    assert "best model:" in capsys.readouterr().out
    from_memory = train(cfg, tmp_path / "mem", **quiet)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_train"] == 54 and summary["n_test"] == 20 and summary["test_accuracy"] == from_memory.test_accuracy
    assert load_network(out / "best.npz").provenance["dataset"] == "shd"
    for k in WEIGHT_NAMES:
        np.testing.assert_array_equal(load_network(out / "last.npz").weights[k],
                                      load_network(tmp_path / "mem" / "last.npz").weights[k])


def test_cli_resume_extends_a_run_and_reports_errors_on_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--config", str(SMOKE), "--epochs", "1", "--hidden", "8", "--out", str(run)]
    assert main(args) == 0
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "already holds" in err and "\n" not in err
    assert main(["train", "--resume", str(run), "--epochs", "2", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["epochs_completed"] == 2 and summary["finished"]
    assert [r["epoch"] for r in read_rows(run)] == [1, 2]
    assert main(["train", "--resume", str(run), "--hidden", "9"]) == 1
    assert "cannot resume with a different network.hidden" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 1
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "x")]) == 1
    assert "config file not found" in capsys.readouterr().err


def test_sigint_to_the_cli_leaves_a_resumable_run(tmp_path):
    import signal
    import subprocess
    import sys
    import time
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "eventprop_pipeline.cli.main", "train", "--config", str(SMOKE),
                             "--epochs", "500", "--out", str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (run / "metrics.jsonl").exists():
            time.sleep(0.2)
        assert (run / "metrics.jsonl").exists(), "no epoch finished in time"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and f"eventprop train --resume {run}" in err
    done = load_checkpoint(run / "checkpoint.npz").state["epoch"]
    assert 1 <= done < 500
    assert main(["train", "--resume", str(run), "--epochs", str(done + 1)]) == 0
    assert [r["epoch"] for r in read_rows(run)] == list(range(1, done + 2))


def test_validation_comes_from_sscs_valid_split_and_a_seeded_holdout_otherwise(tmp_path):
    from eventprop_pipeline.training.splits import holdout_indices, load_run_data
    rng = np.random.default_rng(0)
    sizes = {"train": 6, "valid": 3, "test": 2}
    for split, n in sizes.items():
        times = [np.sort(rng.uniform(0, 0.05, 5)) for _ in range(n)]
        units = [rng.integers(0, 700, 5) for _ in range(n)]
        write_spike_file(tmp_path / "SSC" / f"ssc_{split}.h5", times, units, np.arange(n) % 35)
    cfg = smoke(**{"dataset": "ssc", "data_root": str(tmp_path), "network.timesteps": 60})
    data = load_run_data(cfg)
    assert (len(data.train), len(data.valid), len(data.test)) == (6, 3, 2) and data.valid_source == "ssc/valid"
    data = load_run_data(cfg.with_changes(**{"data.valid_split": "holdout", "data.valid_fraction": 0.5}))
    assert (len(data.train), len(data.valid)) == (3, 3)
    # the hold-out is a seeded random, disjoint, complete split of train
    tr, va = holdout_indices(100, 0.2, seed=4)
    assert len(va) == 20 and sorted([*tr, *va]) == list(range(100))
    assert np.array_equal(va, holdout_indices(100, 0.2, seed=4)[1])
    assert not np.array_equal(va, holdout_indices(100, 0.2, seed=5)[1]) and not np.array_equal(va, np.arange(20))
