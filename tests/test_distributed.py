"""Data-parallel training on the CPU with gloo: same weights for any number of processes, a failed rank
stops the run with a clear error (no hang), and the run resumes with any number of processes."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from eventprop_pipeline.eventprop import LossOptions, compute_batch
from eventprop_pipeline.eventprop.cpu_engine import sum_chunks
from eventprop_pipeline.eventprop.options import ShardSpec
from eventprop_core.network import Network
from eventprop_pipeline.training import load_checkpoint, load_train_config, train
from eventprop_pipeline.training.data_parallel import local_positions

SMOKE = Path(__file__).resolve().parent.parent / "configs" / "smoke.toml"
REPO = Path(__file__).resolve().parent.parent
quiet = dict(progress=False, log=lambda *a, **k: None)
# Tiny and with the spike regulariser active (target 1 spike per neuron; it lowers the activity from
# 1.3 to 0.9 spikes per neuron): the ranks must use the global batch's spike counts to match one
# process. Batch 5: 5 chunks, split 2 + 3 over 2 ranks.
TINY = {"synthetic.n_train": 60, "synthetic.n_test": 20, "network.timesteps": 60, "network.hidden": 16,
        "optim.batch_size": 5, "loss.reg_nu_upper": 1.0, "loss.reg_lambda_upper": 1e-6}


def tiny(**changes):
    return load_train_config(SMOKE, {**TINY, **changes})


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "eventprop_pipeline.cli.main", *args]


def env_with_repo(**extra) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def tiny_config_file(tmp_path: Path, epochs: int, **changes) -> Path:
    """TINY as a config file for the CLI (JSON: the format of a run's own config.json)."""
    path = tmp_path / "tiny.json"
    path.write_text(tiny(**{"optim.epochs": epochs, **changes}).to_json())
    return path


def weights_bytes(run_dir: Path) -> dict:
    ck = load_checkpoint(run_dir / "checkpoint.npz")
    return {k: (ck.weights[k].tobytes(), ck.adam.m[k].tobytes(), ck.adam.v[k].tobytes()) for k in ck.weights}


def test_local_positions_interleave_the_engines_chunks():
    # B = 10: 8 chunks, chunk q holds positions q and q + 8 (q < 2). Two ranks: chunks 0-3 and 4-7.
    pos, m = local_positions(10, 0, 2)
    assert m == 4 and pos.tolist() == [0, 1, 2, 3, 8, 9]
    pos, m = local_positions(10, 1, 2)
    assert m == 4 and pos.tolist() == [4, 5, 6, 7]
    # B = 5 over 2 ranks: 5 chunks of one sample, 2 + 3; 3 ranks for a 2-sample batch: one idle
    assert [local_positions(5, r, 2)[0].tolist() for r in range(2)] == [[0, 1], [2, 3, 4]]
    assert [local_positions(2, r, 3)[0].tolist() for r in range(3)] == [[], [0], [1]]
    # every position exactly once, whatever the split
    for B in (1, 7, 8, 17, 32):
        for world in (1, 2, 3, 8):
            got = np.concatenate([local_positions(B, r, world)[0] for r in range(world)])
            assert sorted(got.tolist()) == list(range(B))


def test_parts_with_global_spike_counts_sum_to_the_whole_batch_bit_for_bit():
    """The engine's ShardSpec path, without torch.distributed: two parts of a batch, each told the whole
    batch's spike counts and size, give chunks that add up to the one-call gradient exactly."""
    rng = np.random.default_rng(3)
    B, T, n_in, H, O = 11, 80, 30, 20, 4
    from eventprop_core.params import ModelParams
    net = Network.initialise(n_in, H, O, params=ModelParams(timesteps=T), seed=1,
                             init={"input_hidden": (0.3, 0.1), "hidden_hidden": (0.0, 0.05),
                                   "hidden_output": (0.0, 0.2)})
    x = (rng.random((B, T, n_in)) < 0.05).astype(np.float32)
    y = rng.integers(0, O, B)
    opts = LossOptions(reg_lambda_upper=1e-3, reg_nu_upper=1.0)
    whole = compute_batch(net, x, y, opts)
    assert whole.hidden_spike_counts.sum(axis=0).max() > B    # the regulariser is active
    total = whole.hidden_spike_counts.sum(axis=0)
    chunks = {k: [] for k in whole.grads}
    for rank in range(2):
        pos, m = local_positions(B, rank, 2)
        part = compute_batch(net, x[pos], y[pos], opts, shard=ShardSpec(B, m, lambda c: total))
        np.testing.assert_array_equal(part.extras["v_avg"].astype(np.float32), whole.readout[pos])
        for k in chunks:
            chunks[k].append(part.grads[k])
    for k, parts in chunks.items():
        assert sum_chunks(np.concatenate(parts), parallel=False).tobytes() == whole.grads[k].tobytes()
    # without the global counts (each part regularised on its own) the gradient differs
    pos, m = local_positions(B, 0, 2)
    alone = compute_batch(net, x[pos], y[pos], opts,
                          shard=ShardSpec(B, m, lambda c: c))
    told = compute_batch(net, x[pos], y[pos], opts, shard=ShardSpec(B, m, lambda c: total))
    assert not np.array_equal(alone.grads["input_hidden"], told.grads["input_hidden"])


def test_torch_engine_parts_sum_to_the_whole_batch_within_rounding():
    """The CUDA path's engine (run here on the CPU): one float64 sum per part, same global counts."""
    rng = np.random.default_rng(5)
    B, T, n_in, H, O = 6, 50, 20, 12, 3
    from eventprop_core.params import ModelParams
    net = Network.initialise(n_in, H, O, params=ModelParams(timesteps=T), seed=2,
                             init={"input_hidden": (0.3, 0.1), "hidden_hidden": (0.0, 0.05),
                                   "hidden_output": (0.0, 0.2)})
    x = (rng.random((B, T, n_in)) < 0.08).astype(np.float32)
    y = rng.integers(0, O, B)
    opts = LossOptions(reg_lambda_upper=1e-3, reg_nu_upper=1.0)
    whole = compute_batch(net, x, y, opts, device="torch-cpu")
    total = whole.hidden_spike_counts.sum(axis=0)
    parts = [compute_batch(net, x[a:b], y[a:b], opts, device="torch-cpu", shard=ShardSpec(B, 1, lambda c: total))
             for a, b in ((0, 2), (2, 6))]
    for k, g in whole.grads.items():
        summed = sum(p.grads[k][0] for p in parts)
        assert parts[0].grads[k].shape == (1, *g.shape)
        np.testing.assert_allclose(summed, g, rtol=1e-6, atol=1e-6 * np.abs(g).max())


def test_two_processes_give_the_weights_of_one_process(tmp_path):
    """SHD-layout files, so the ranks also share one binned copy of each split (each binning its share)."""
    import glob
    import tempfile
    from eventprop_pipeline.cli.main import main
    root = tmp_path / "root"
    assert main(["make-synthetic", "--layout", "shd", "--out", str(root), "--n-train", "60", "--n-test", "20",
                 "--timesteps", "60"]) == 0
    files = {"dataset": "shd", "data_root": str(root), "network.init_input_hidden": [0.04, 0.02]}
    one = tmp_path / "one"
    train(tiny(**{"optim.epochs": 2, **files}), one, **quiet)
    two = tmp_path / "two"
    config = tiny_config_file(tmp_path, 2, **files)
    left_before = set(glob.glob(str(Path(tempfile.gettempdir()) / "eventprop-shared-*")))
    proc = subprocess.run(cli("train", "--config", str(config), "--out", str(two), "--nproc", "2"),
                          env=env_with_repo(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("best model:") == 1 and "2 data-parallel ranks (gloo)" in proc.stdout
    assert "each split binned once (every rank its share) and shared" in proc.stdout
    assert set(glob.glob(str(Path(tempfile.gettempdir()) / "eventprop-shared-*"))) == left_before   # cleaned up
    assert weights_bytes(one) == weights_bytes(two)
    drop_time = lambda p: [line.rsplit(",", 1)[0] for line in (p / "metrics.csv").read_text().splitlines()]
    assert drop_time(one) == drop_time(two)        # losses, accuracies, spike counts: the same numbers
    assert (one / "best.npz").exists() and (two / "summary.json").exists()


def start_ranks(config: Path, run: Path, world: int, timeout_s: float) -> list[subprocess.Popen]:
    """What torchrun does on one machine: one process per rank with RANK/WORLD_SIZE/MASTER_* set."""
    from eventprop_pipeline.training.distributed import free_port
    port = free_port()
    return [subprocess.Popen(cli("train", "--config", str(config), "--out", str(run), "--dist-timeout",
                                 str(timeout_s)),
                             env=env_with_repo(RANK=r, LOCAL_RANK=r, WORLD_SIZE=world, LOCAL_WORLD_SIZE=world,
                                               MASTER_ADDR="127.0.0.1", MASTER_PORT=port),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for r in range(world)]


def wait_for_first_epoch(run: Path, procs) -> None:
    deadline = time.time() + 180
    while time.time() < deadline and not (run / "metrics.jsonl").exists():
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.02)
    assert (run / "metrics.jsonl").exists(), "no epoch finished in time"


@pytest.mark.parametrize("how", ["killed", "stopped"])
def test_a_lost_rank_stops_the_run_with_a_clear_error_and_resume_continues(tmp_path, how):
    run = tmp_path / "run"
    procs = start_ranks(tiny_config_file(tmp_path, epochs=400), run, world=2, timeout_s=4)
    try:
        wait_for_first_epoch(run, procs)
        procs[1].send_signal(signal.SIGKILL if how == "killed" else signal.SIGSTOP)
        started = time.time()
        out, err = procs[0].communicate(timeout=60)     # a hang fails here
        waited = time.time() - started
    finally:
        for p in procs:
            p.kill()
            p.communicate()
    assert procs[0].returncode == 1, err
    assert "Traceback" not in err
    assert "error: rank 0: lost contact with the other ranks" in err and f"eventprop train --resume {run}" in err
    assert waited < 30
    done = load_checkpoint(run / "checkpoint.npz").state["epoch"]
    assert 1 <= done < 400
    if how == "stopped":
        return
    # resume with one process; it ends with the weights of an uninterrupted one-process run
    train(None, run, resume=True, overrides={"epochs": done + 1}, **quiet)
    reference = tmp_path / "reference"
    train(tiny(**{"optim.epochs": done + 1}), reference, **quiet)
    assert weights_bytes(run) == weights_bytes(reference)


def test_nproc_rejects_nonsense(capsys):
    from eventprop_pipeline.cli.main import main
    assert main(["train", "--out", "x", "--nproc", "0"]) == 1
    assert "--nproc 0" in capsys.readouterr().err


def test_evaluate_over_two_processes_equals_one(tmp_path):
    """Each rank reads and bins only its share of the file (load_dataset's samples range)."""
    from eventprop_core.params import ModelParams
    model = tmp_path / "net.npz"
    root = tmp_path / "root"
    from eventprop_pipeline.cli.main import main
    assert main(["make-synthetic", "--layout", "shd", "--out", str(root), "--n-train", "4", "--n-test", "37",
                 "--timesteps", "60", "--n-channels", "700"]) == 0
    net = Network.initialise(700, 16, 20, params=ModelParams(timesteps=60), seed=2,
                             init={"input_hidden": (0.3, 0.1), "hidden_hidden": (0.0, 0.05),
                                   "hidden_output": (0.0, 0.3)})
    net.save(model)
    common = ["evaluate", str(model), "--dataset", "shd", "--data-root", str(root), "--limit", "35"]
    assert main([*common, "--predictions", str(tmp_path / "one.npz")]) == 0
    proc = subprocess.run(cli(*common, "--nproc", "2", "--predictions", str(tmp_path / "two.npz")),
                          env=env_with_repo(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("accuracy") == 1 and "/35, backend float" in proc.stdout
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    for key in ("pred", "label", "score", "hidden_spikes"):
        assert one[key].tobytes() == two[key].tobytes(), key
    assert one["hidden_spikes"].sum() > 0


def test_a_shared_copy_left_by_a_killed_run_is_removed_by_the_next(tmp_path):
    """Rank 0 killed (SIGKILL) while the ranks were loading leaves its memory-mapped copy in the
    temporary folder; the next data-parallel load on the machine removes copies whose owner is gone
    and keeps those whose owner still runs."""
    from eventprop_pipeline.training import shared_data
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / (shared_data.PREFIX + "1234-5-shd-train")
    live = tmp_path / (shared_data.PREFIX + "1234-6-shd-train")
    foreign = tmp_path / (shared_data.PREFIX + "old-layout")
    for folder, owner in ((stale, dead.pid), (live, os.getpid()), (foreign, None)):
        folder.mkdir()
        (folder / "steps.npy").write_bytes(b"x" * 100)
        if owner is not None:
            (folder / shared_data.OWNER).write_text(str(owner))
    assert shared_data.remove_stale_copies(tmp_path) == [stale]
    assert not stale.exists() and live.exists() and foreign.exists()


def test_a_failure_while_sharing_leaves_no_copy(tmp_path, monkeypatch):
    """Another rank fails (here: the barrier after writing raises): rank 0 removes the copy."""
    from eventprop_pipeline.data.events import from_events
    from eventprop_pipeline.training import distributed, shared_data

    class FailingComm:
        ctx = distributed.Context(rank=0, world_size=2, backend="gloo")
        rank, world = 0, 2

        def sum(self, a, what=""):
            return a * 2

        def agree(self, ok, what):
            if what.startswith("writing"):
                raise distributed.DistributedError("rank 0: lost contact with the other ranks")

        def barrier(self, what):
            self.agree(True, what)

    def load_part(span):
        n = span[1] - span[0]
        return from_events(np.repeat(np.arange(n), 2), np.tile([1, 3], n), np.tile([0, 2], n),
                           np.zeros(n, np.int64), n_channels=4, n_classes=2, timesteps=5, dt=1.0)

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with pytest.raises(distributed.DistributedError, match="lost contact"):
        shared_data.load_shared(FailingComm(), 6, load_part, "shd-train")
    assert list(tmp_path.iterdir()) == []
