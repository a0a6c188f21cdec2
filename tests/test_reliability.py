"""Nothing lost, nothing hung: outputs never alias inputs, run folders are marked and locked, a full
or read-only disk gives one line naming the file, Ctrl-C exits 130 without a traceback, and bad
values are named (issue 9; docs/reliability.md)."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from eventprop_pipeline.cli.main import main
from eventprop_core.network import Network
from eventprop_core.params import ModelParams

T = 20


def one_line_error(capsys, argv) -> str:
    assert main([str(a) for a in argv]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err and "a bug" not in err, err
    return err


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def files(tmp_path):
    """model.npz (700 -> 6 -> 20), its NetX export, a tiny SHD root and an mlGeNN folder."""
    net = Network.initialise(700, 6, 20, params=ModelParams(timesteps=T), seed=0)
    net.save(tmp_path / "model.npz")
    assert main(["export", str(tmp_path / "model.npz"), "--out", str(tmp_path / "model.net")]) == 0
    from eventprop_pipeline.data.spike_files import write_spike_file
    write_spike_file(tmp_path / "data" / "SHD" / "shd_test.h5", [np.array([0.001]), np.array([0.002])],
                     [np.array([3]), np.array([10])], [0, 19])
    ml = tmp_path / "ml"
    ml.mkdir()
    for k, w in net.weights.items():
        np.save(ml / f"4-{k}-g.npy", w.reshape(-1))
    return tmp_path


# -- outputs never alias inputs --------------------------------------------------------------------

ALIAS_CASES = [
    # (argv with {d} for the folder, the input that must survive, words the message must contain)
    ("export {d}/model.npz --out {d}/x.net --report {d}/model.npz", "model.npz", ["--report", "input model"]),
    ("export {d}/model.npz --out {d}/model.npz", "model.npz", ["--out", "input model"]),
    ("export {d}/model.npz --out {d}/link.npz", "model.npz", ["--out", "input model"]),   # symlink to the input
    ("evaluate {d}/model.net --predictions {d}/model.net --dataset shd --data-root {d}/data", "model.net",
     ["--predictions", "input model"]),
    ("evaluate {d}/model.net --trace {d}/model.net --dataset shd --data-root {d}/data", "model.net",
     ["--trace", "input model"]),
    ("evaluate {d}/model.npz --predictions {d}/data/SHD/shd_test.h5 --dataset shd --data-root {d}/data",
     "data/SHD/shd_test.h5", ["--predictions", "data set file"]),
    ("import-mlgenn {d}/ml --epoch 4 --out {d}/ml/4-input_hidden-g.npy", "ml/4-input_hidden-g.npy",
     ["--out", "mlGeNN checkpoint"]),
    ("export {d}/model.npz --out {d}/y.net --report {d}/y.net", "y.net", ["--out", "--report", "same file"]),
    ("pipeline --model {d}/ml/../model.npz --out {d} --no-lava --resume", "model.npz", ["--model", "run folder"]),
]


@pytest.mark.parametrize("argv, keep, words", ALIAS_CASES)
def test_an_output_that_is_an_input_is_refused_before_any_work(files, capsys, argv, keep, words):
    (files / "link.npz").symlink_to(files / "model.npz")
    before = {p: sha(p) for p in files.rglob("*") if p.is_file()}
    err = one_line_error(capsys, argv.format(d=files).split())
    for w in words:
        assert w in err, err
    assert str(files / keep) in err or keep.split("/")[-1] in err
    assert {p: sha(p) for p in files.rglob("*") if p.is_file()} == before   # nothing written, nothing changed


def test_hard_link_to_the_input_is_the_same_file(files, capsys):
    os.link(files / "model.npz", files / "hard.npz")
    before = sha(files / "model.npz")
    err = one_line_error(capsys, ["export", files / "model.npz", "--out", files / "x.net", "--report", files / "hard.npz"])
    assert "hard.npz" in err and "model.npz" in err
    assert sha(files / "model.npz") == before and not (files / "x.net").exists()


# -- run folders: marker, lock, stale temporaries --------------------------------------------------

def small_run(path: Path):
    from eventprop_pipeline.training import load_train_config, train
    cfg = load_train_config(None, {"network.hidden": 4, "network.timesteps": T, "optim.epochs": 2,
                                   "data.train_limit": 20, "data.test_limit": 4, "device": "cpu"})
    train(cfg, path, max_epochs_this_call=0, progress=False, log=lambda *a, **k: None)


def test_a_folder_not_made_by_eventprop_is_never_written_into(tmp_path, capsys):
    own = tmp_path / "mine"
    own.mkdir()
    (own / "report.md").write_text("my notes")
    model = tmp_path / "m.npz"
    Network.initialise(700, 4, 20, params=ModelParams(timesteps=T), seed=0).save(model)
    for argv in (["pipeline", "--model", model, "--out", own, "--resume", "--no-lava"],
                 ["pipeline", "--model", model, "--out", own, "--no-lava"],
                 ["train", "--out", own, "--epochs", "1"],
                 ["demo", "--out", own, "--no-lava"],
                 ["train", "--resume", own]):
        err = one_line_error(capsys, argv)
        assert str(own) in err
    assert sorted(p.name for p in own.iterdir()) == ["report.md"] and (own / "report.md").read_text() == "my notes"


def test_second_process_on_a_locked_run_folder_is_refused_at_once(tmp_path, capsys):
    run = tmp_path / "run"
    small_run(run)
    assert json.loads((run / ".eventprop-run.json").read_text())["kind"] == "training"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom eventprop_pipeline.run_folder import RunFolder\n"
         "with RunFolder(sys.argv[1], 'training', mode='resume'):\n    print('locked', flush=True)\n"
         "    time.sleep(60)\n", str(run)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    try:
        assert holder.stdout.readline().strip() == "locked"
        t0 = time.perf_counter()
        err = one_line_error(capsys, ["train", "--resume", run])
        assert time.perf_counter() - t0 < 10
        assert "in use by another eventprop process" in err and f"pid {holder.pid}" in err
        err = one_line_error(capsys, ["train", "--force", "--out", run, "--epochs", "1",
                                      "--config", Path(__file__).parents[1] / "configs" / "smoke.toml"])
        assert "in use" in err
    finally:
        holder.kill()
        holder.wait()
    # the kernel drops the lock of a killed process: the run can be resumed again
    from eventprop_pipeline.run_folder import RunFolder
    with RunFolder(run, "training", mode="resume"):
        pass


def test_stale_temporary_files_are_removed_when_a_run_is_reopened(tmp_path):
    from eventprop_pipeline.run_folder import RunFolder
    run = tmp_path / "run"
    small_run(run)
    stale = [run / ".checkpoint.npz.abc123.tmp", run / "sub" / ".x.json.q.tmp"]
    stale[1].parent.mkdir()
    for p in stale:
        p.write_bytes(b"\0" * 100)
    keep = run / "checkpoint.npz"
    with RunFolder(run, "training", mode="resume"):
        assert not any(p.exists() for p in stale) and keep.is_file()


# -- full and read-only disks ----------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (needs root and mount permission); skipped with the reason elsewhere."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({r.stderr.strip() or 'mount failed'}); the full-disk "
                    f"checks need root")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(disk: Path, leave_kb: int) -> None:
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    (disk / "fill").write_bytes(b"\0" * max(free - leave_kb * 1024, 0))


def test_full_disk_gives_one_line_naming_the_file_and_leaves_nothing(small_disk, capsys, tmp_path):
    model = tmp_path / "big.npz"
    Network.initialise(700, 300, 20, params=ModelParams(timesteps=T), seed=0).save(model)   # ~1 MB
    fill(small_disk, 0)
    for argv, target in ((["export", model, "--out", small_disk / "x.net"], "x.net"),
                         (["export", model, "--out", tmp_path / "ok.net", "--report", small_disk / "r.json"], None),
                         (["import-mlgenn", tmp_path / "none", "--epoch", "1", "--out", small_disk / "y.npz"], None)):
        rc = main([str(a) for a in argv])
        err = capsys.readouterr().err.strip()
        assert rc == 1 and err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
        if target:
            assert str(small_disk / target) in err and "No space left" in err
        assert sorted(p.name for p in small_disk.iterdir()) == ["fill"]    # no temporary file, no output
    run = small_disk / "run"
    err = one_line_error(capsys, ["train", "--config", Path(__file__).parents[1] / "configs" / "smoke.toml",
                                  "--epochs", "1", "--out", run])
    assert str(run) in err and not run.exists()                            # no empty run folder left


def test_read_only_disk_is_one_line_naming_the_file(small_disk, capsys, tmp_path):
    model = tmp_path / "m.npz"
    Network.initialise(700, 4, 20, params=ModelParams(timesteps=T), seed=0).save(model)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        err = one_line_error(capsys, ["export", model, "--out", small_disk / "x.net"])
        assert str(small_disk / "x.net") in err and "Read-only" in err
        err = one_line_error(capsys, ["train", "--config", Path(__file__).parents[1] / "configs" / "smoke.toml",
                                      "--out", small_disk / "run"])
        assert str(small_disk / "run") in err
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)


# -- interruption ----------------------------------------------------------------------------------

def test_ctrl_c_in_a_pipeline_stage_exits_130_and_is_recorded_as_interrupted(tmp_path, capsys, monkeypatch):
    from eventprop_pipeline.pipeline import stages
    from eventprop_pipeline.pipeline.manifest import StageManifest

    model = tmp_path / "m.npz"
    Network.initialise(700, 4, 20, params=ModelParams(timesteps=T), seed=0).save(model)
    handlers = []
    real_finish = StageManifest.finish

    def second_ctrl_c(self, name, status, **kw):
        handlers.append(signal.getsignal(signal.SIGINT))
        real_finish(self, name, status, **kw)
        if status == "interrupted":
            raise KeyboardInterrupt      # the user presses Ctrl-C again during the cleanup
    monkeypatch.setattr(StageManifest, "finish", second_ctrl_c)

    def interrupted(ctx):
        raise KeyboardInterrupt
    monkeypatch.setattr(stages, "stage_export", interrupted)
    before = signal.getsignal(signal.SIGINT)
    rc = main(["pipeline", "--model", str(model), "--out", str(tmp_path / "run"), "--no-lava"])
    err = capsys.readouterr().err
    assert rc == 130 and "Traceback" not in err and err.strip().endswith("interrupted")
    assert handlers[-1] is signal.SIG_IGN                 # further Ctrl-C ignored during the cleanup
    assert signal.getsignal(signal.SIGINT) is before      # and restored when main() returns
    rec = json.loads((tmp_path / "run" / "stages.json").read_text())["stages"]
    assert rec["model"]["status"] == "done" and rec["export"]["status"] == "interrupted"


def test_training_interrupted_inside_the_pipeline_exits_130_not_failed(tmp_path, capsys, monkeypatch):
    from eventprop_pipeline.pipeline import stages
    from eventprop_pipeline.training import TrainingInterrupted

    def stop(ctx):
        raise TrainingInterrupted("training interrupted; continue with eventprop pipeline --resume")
    monkeypatch.setattr(stages, "stage_model", stop)
    rc = main(["pipeline", "--config", str(Path(__file__).parents[1] / "configs" / "smoke.toml"),
               "--out", str(tmp_path / "run"), "--no-lava"])
    err = capsys.readouterr().err
    assert rc == 130 and "Traceback" not in err and "error:" not in err
    rec = json.loads((tmp_path / "run" / "stages.json").read_text())["stages"]
    assert rec["model"]["status"] == "interrupted"


def test_interrupt_message_names_the_epoch_the_checkpoint_holds(tmp_path, capsys, monkeypatch):
    from eventprop_pipeline.training import trainer
    from eventprop_pipeline.training.checkpoint import load_checkpoint

    def ctrl_c_while_saving(run, *a):
        raise KeyboardInterrupt          # after the checkpoint of this epoch, while writing last/best.npz
    monkeypatch.setattr(trainer, "_save_epoch_files", ctrl_c_while_saving)
    run = tmp_path / "run"
    rc = main(["train", "--config", str(Path(__file__).parents[1] / "configs" / "smoke.toml"), "--epochs", "3",
               "--out", str(run)])
    err = capsys.readouterr().err
    assert rc == 130 and "Traceback" not in err
    held = load_checkpoint(run / "checkpoint.npz").state["epoch"]
    assert held == 1 and f"holds epoch {held}" in err


# -- values named, never silently accepted ---------------------------------------------------------

def edit_metadata(path: Path, **params):
    with np.load(path, allow_pickle=False) as z:
        c = {k: z[k] for k in z.files}
    meta = json.loads(str(c["metadata"]))
    for k, v in params.items():
        if k == "params":
            meta["params"] = v
        else:
            meta["params"][k] = v
    c["metadata"] = np.array(json.dumps(meta))
    np.savez(path, **c)


@pytest.mark.parametrize("edit, words", [
    ({"timesteps": 2.7}, "timesteps must be a positive integer, got 2.7"),
    ({"timesteps": True}, "got True"),
    ({"timesteps": 10**9}, "needs about"),                 # memory estimate, not a 26 GiB allocation
    ({"params": "x"}, "params must be a table"),
    ({"dt": "x"}, "dt must be a positive finite number, got 'x'"),
])
def test_network_metadata_values_are_checked(files, capsys, edit, words):
    edit_metadata(files / "model.npz", **edit)
    err = one_line_error(capsys, ["evaluate", files / "model.npz", "--dataset", "shd", "--data-root", files / "data"])
    assert words in err and str(files / "model.npz") in err


def write_shd(root: Path, times, units, labels, tdtype="float64", udtype="int64"):
    import h5py
    path = root / "SHD" / "shd_test.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        t = f.create_dataset("spikes/times", (len(times),), dtype=h5py.vlen_dtype(np.dtype(tdtype)))
        u = f.create_dataset("spikes/units", (len(units),), dtype=h5py.vlen_dtype(np.dtype(udtype)))
        for i in range(len(times)):
            t[i] = np.asarray(times[i], tdtype)
            u[i] = np.asarray(units[i], udtype)
        f.create_dataset("labels", data=np.asarray(labels))
    return path


@pytest.mark.parametrize("times, units, labels, udtype, words", [
    ([[0.001]], [[-5]], [0], "int64", "unit index -5 out of range (sample 0)"),
    ([[0.001]], [[3]], [-1], "int64", "label -1 out of range (sample 0)"),
    ([[-0.001]], [[3]], [0], "int64", "negative spike time -0.001"),
    ([[0.001]], [[3.5]], [0], "float64", "spikes/units must be whole numbers, found 3.5"),
    ([[0.001]], [[3]], [1.5], "int64", "labels must be whole numbers, found 1.5"),
    ([[0.001]], [[3]], [[1]], "int64", "labels has shape (1, 1)"),
])
def test_spike_file_values_are_named(tmp_path, capsys, times, units, labels, udtype, words):
    model = tmp_path / "m.npz"
    Network.initialise(700, 4, 20, params=ModelParams(timesteps=T), seed=0).save(model)
    path = write_shd(tmp_path / "data", times, units, labels, udtype=udtype)
    err = one_line_error(capsys, ["evaluate", model, "--dataset", "shd", "--data-root", tmp_path / "data"])
    assert words in err and str(path) in err


@pytest.mark.parametrize("name, text, words", [
    ("k.yaml", "1: 2\n", "key 1 is not a name"),
    ("k2.yaml", "optim:\n  true: 2\n", "[optim] key True is not a name"),
    ("u.toml", b"seed = 0\n# \xff\n", "not UTF-8 text"),
    ("p1.toml", "[pipeline]\nsweep_bits = 8\n", "sweep_bits = 8: expected a list"),
    ("p2.toml", "[pipeline]\nlava_samples = true\n", "lava_samples must be an integer, got True"),
    ("p3.toml", "[pipeline]\nlava = \"no\"\n", "lava must be true or false, got 'no'"),
])
def test_config_values_are_named(tmp_path, capsys, name, text, words):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    err = one_line_error(capsys, ["pipeline", "--config", path, "--out", tmp_path / "run", "--no-lava"])
    assert words in err and str(path) in err and not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv, words", [
    ("evaluate {d}/model.net --graded", "--graded: only for a float .npz"),
    ("evaluate {d}/model.net --device cpu", "--device: only for a float .npz"),
    ("evaluate {d}/model.net --batch-size 0", "--batch-size must be >= 1, got 0"),
    ("evaluate {d}/model.npz --synthetic-seed -1", "--synthetic-seed must be >= 0, got -1"),
    ("evaluate {d}", "is a directory"),
    ("evaluate {d}/empty.net", "empty file (0 bytes"),
    ("pipeline --model {d}/model.npz --epoch 3 --out {d}/r", "--epoch 3: only with --mlgenn"),
    ("pipeline --model {d}/model.npz --hidden 3 --out {d}/r", "--hidden: training options, but --model"),
    ("pipeline --config smoke --limit 0 --out {d}/r", "--limit must be >= 1, got 0"),
    ("train --seed -1 --out {d}/r", "--seed must be >= 0, got -1"),
    ("train --config smoke --hidden 10000000 --out {d}/r", "needs about"),   # estimate, not a MemoryError
])
def test_options_that_do_not_apply_or_are_out_of_range_are_errors(files, capsys, argv, words):
    (files / "empty.net").write_bytes(b"")
    err = one_line_error(capsys, argv.format(d=files).split())
    assert words in err
    assert not (files / "r").exists()                     # checked before any training or export


def test_empty_mlgenn_arrays_are_named(tmp_path, capsys):
    for k in ("input_hidden", "hidden_hidden", "hidden_output"):
        np.save(tmp_path / f"1-{k}-g.npy", np.zeros(0, np.float32))
    err = one_line_error(capsys, ["import-mlgenn", tmp_path, "--epoch", "1", "--out", tmp_path / "o.npz"])
    assert "empty weight array" in err and "1-input_hidden-g.npy" in err


def test_hand_edited_checkpoint_is_named(tmp_path, capsys):
    run = tmp_path / "run"
    small_run(run)
    with np.load(run / "checkpoint.npz", allow_pickle=False) as z:
        c = {k: z[k] for k in z.files}
    state = json.loads(str(c["state"]))
    state["epoch"] = "3"
    c["state"] = np.array(json.dumps(state))
    np.savez(run / "checkpoint.npz", **c)
    err = one_line_error(capsys, ["train", "--resume", run])
    assert "state 'epoch' is '3'" in err and str(run / "checkpoint.npz") in err


@pytest.mark.parametrize("name, content, words", [
    ("stages.json", b'{"version": 1, "stages": {"model": \xff}}', "unreadable stage manifest"),
    ("stages.json", b'{"version": 1, "stages": {"model": {"outputs": {"m": 3}}}}', "malformed record"),
    (".eventprop-run.json", b'{"tool": "other"}', "not an eventprop run marker"),
    (".eventprop-run.json", b'\xff\xfe', "unreadable run marker"),
])
def test_damaged_run_folder_files_are_named(tmp_path, capsys, name, content, words):
    from eventprop_pipeline.run_folder import RunFolder
    run = tmp_path / "run"
    with RunFolder(run, "pipeline", mode="new"):
        pass
    (run / name).write_bytes(content)
    model = tmp_path / "m.npz"
    Network.initialise(700, 4, 20, params=ModelParams(timesteps=T), seed=0).save(model)
    before = {p.name: sha(p) for p in run.iterdir() if p.name != ".eventprop.lock"}
    err = one_line_error(capsys, ["pipeline", "--model", model, "--out", run, "--resume", "--no-lava"])
    assert words in err and str(run / name) in err
    assert {p.name: sha(p) for p in run.iterdir() if p.name != ".eventprop.lock"} == before


def test_a_killed_write_of_a_plain_output_is_cleaned_up_by_the_next_write(tmp_path):
    from eventprop_core.atomic import STALE_SECONDS, atomic_write_text
    out = tmp_path / "report.json"
    old, recent, other = (tmp_path / ".report.json.k1.tmp", tmp_path / ".report.json.k2.tmp",
                          tmp_path / ".other.json.k3.tmp")
    for p in (old, recent, other):
        p.write_bytes(b"\0" * 10)
    stale = time.time() - STALE_SECONDS - 60
    os.utime(old, (stale, stale))
    os.utime(other, (stale, stale))
    atomic_write_text(out, "{}")
    assert out.read_text() == "{}"
    assert not old.exists() and recent.exists() and other.exists()   # only this target's old leftovers


def test_a_bad_config_value_is_named_even_when_an_option_overrides_it(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('device = "gpu"\n[optim]\nepochs = 0\n')
    err = one_line_error(capsys, ["train", "--config", cfg, "--device", "cpu", "--epochs", "1",
                                  "--out", tmp_path / "r"])
    assert str(cfg) in err and ("'gpu'" in err or "epochs = 0" in err) and not (tmp_path / "r").exists()


def test_double_ctrl_c_during_training_exits_130_without_traceback(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "eventprop_pipeline.cli.main", "train", "--config", "smoke",
                             "--epochs", "2000", "--out", str(run)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1])
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (run / "metrics.jsonl").exists():
            time.sleep(0.1)
        assert (run / "metrics.jsonl").exists(), "no epoch finished in time"
        proc.send_signal(signal.SIGINT)
        time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    from eventprop_pipeline.training.checkpoint import load_checkpoint
    assert load_checkpoint(run / "checkpoint.npz").state["epoch"] >= 1      # the run stays resumable
