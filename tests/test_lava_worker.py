"""The Lava worker's life cycle: it never hangs the caller, never outlives it, and leaves nothing behind.

Most cases replace Lava's interpreter by a small fake worker, so they run without Lava; the last one
kills a real Lava run (marked lava)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from eventprop_pipeline.data.events import from_events
from netx_export import lava_runner
from netx_export.fixed_point import FixedPointLayer, FixedPointNetwork
from netx_export.hdf5_io import write_netx


def tiny_case(tmp_path, n=2, T=10):
    rng = np.random.default_rng(0)
    hid = FixedPointLayer("dense_rec", rng.integers(-50, 100, (4, 6)), 700, 300, 150,
                          weight_rec=rng.integers(-50, 50, (4, 4)))
    out = FixedPointLayer("dense", rng.integers(-50, 50, (3, 4)), 900, 100, 2**17)
    path = write_netx(FixedPointNetwork(6, hid, out, timesteps=T), tmp_path / "net.net")
    s, t, u = np.nonzero(rng.random((n, T, 6)) < 0.3)
    return path, from_events(s, t, u, np.arange(n) % 3, n_channels=6, n_classes=3, timesteps=T, dt=1.0)


def fake_python(tmp_path, body: str) -> str:
    """An executable standing in for Lava's Python: called as `PY -m netx_export... JOB_DIR PARENT_PID`."""
    script = tmp_path / "fake_python"
    script.write_text("#!/bin/bash\njob=$3\n" + textwrap.dedent(body))
    script.chmod(0o755)
    return str(script)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:     # a zombie is dead
        return fh.read().split(")")[-1].split()[0] != "Z"


def test_stuck_worker_is_stopped_by_the_watchdog(tmp_path, monkeypatch):
    path, data = tiny_case(tmp_path)
    pid_file = tmp_path / "pid"
    monkeypatch.setattr(lava_runner, "find_lava_python",
                        lambda: fake_python(tmp_path, f"echo $$ > {pid_file}\nsleep 1000 &\nwait\n"))
    monkeypatch.setenv(lava_runner.STALL_ENV, "1.5")
    t0 = time.monotonic()
    with pytest.raises(lava_runner.LavaRunError, match="no progress for 2 s"):
        lava_runner.run_lava(path, data, progress=False)
    assert time.monotonic() - t0 < 20
    assert not alive(int(pid_file.read_text()))


def test_worker_error_is_reported_in_one_line_and_nothing_is_left(tmp_path, monkeypatch):
    path, data = tiny_case(tmp_path)
    monkeypatch.setattr(lava_runner, "find_lava_python",
                        lambda: fake_python(tmp_path, "echo 'some banner'\necho 'ValueError: bad thing' > $job/error.txt\nexit 2\n"))
    base = Path(tempfile.mkdtemp(prefix="ept", dir="/tmp"))      # short enough to hold the job folder
    monkeypatch.setattr("tempfile.tempdir", str(base))
    try:
        with pytest.raises(lava_runner.LavaRunError, match="^ValueError: bad thing$"):
            lava_runner.run_lava(path, data, progress=False)
        assert list(base.iterdir()) == []
    finally:
        base.rmdir()


def test_a_deep_temporary_folder_puts_the_job_under_tmp(tmp_path, monkeypatch):
    """Lava's Unix sockets live under the job folder: with a TMPDIR too deep for them the job goes to
    /tmp (before: Lava failed with a bare EOFError), and a clear error names the fix if none fits."""
    deep = tmp_path / ("d" * 70)
    deep.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(deep))
    assert lava_runner._job_base() == "/tmp"
    monkeypatch.setattr(lava_runner.os, "access", lambda path, mode: path == str(deep))
    with pytest.raises(lava_runner.LavaRunError, match="TMPDIR=.*ddd is longer.*set TMPDIR to a short folder"):
        lava_runner._job_base()


@pytest.mark.lava
def test_lava_runs_with_a_deep_temporary_folder(tmp_path, monkeypatch):
    from netx_export.emulator import emulate
    from netx_export.hdf5_io import read_netx
    path, data = tiny_case(tmp_path, n=2, T=12)
    deep = tmp_path / ("d" * 70)
    deep.mkdir()
    monkeypatch.setenv("TMPDIR", str(deep))
    monkeypatch.setattr("tempfile.tempdir", str(deep))
    lava = lava_runner.run_lava(path, data, progress=False)
    emu = emulate(read_netx(path), data)
    np.testing.assert_array_equal(lava.score, emu.score)
    assert list(deep.iterdir()) == []


def test_crashed_worker_names_its_last_output(tmp_path, monkeypatch):
    path, data = tiny_case(tmp_path)
    monkeypatch.setattr(lava_runner, "find_lava_python",
                        lambda: fake_python(tmp_path, "echo 'Segmentation fault in something'\nkill -9 $$\n"))
    with pytest.raises(lava_runner.LavaRunError, match=r"exit code -9.*Segmentation fault in something"):
        lava_runner.run_lava(path, data, progress=False)


def test_checkpoint_that_is_a_directory_fails_before_any_work(tmp_path, monkeypatch):
    path, data = tiny_case(tmp_path)
    monkeypatch.setattr(lava_runner, "find_lava_python", lambda: pytest.fail("no worker may start"))
    with pytest.raises(lava_runner.LavaRunError, match="is a directory"):
        lava_runner.run_lava(path, data, progress=False, checkpoint=tmp_path)


DIES_WITH_PARENT = """
import os, subprocess, sys, time
from pathlib import Path
from netx_export.lava_bridge.worker import _die_with_parent
job = Path(sys.argv[1])
os.setsid()                       # as the real worker: a process group of its own
_die_with_parent(job, int(sys.argv[2]))
kids = [subprocess.Popen(["sleep", "1000"]) for _ in range(2)]      # stand-ins for Lava's processes
(job / "pids").write_text(" ".join(str(p) for p in [os.getpid(), *(k.pid for k in kids)]))
time.sleep(1000)
"""

PARENT = """
import subprocess, sys, os, time
subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2], str(os.getpid())])
time.sleep(1000)
"""


def test_worker_and_its_children_die_with_the_parent_and_remove_the_job_folder(tmp_path):
    job = tmp_path / "eventprop_lava_job"
    job.mkdir()
    parent = subprocess.Popen([sys.executable, "-c", PARENT, DIES_WITH_PARENT, str(job)],
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    try:
        for _ in range(300):
            if (job / "pids").exists() and (job / "pids").read_text():
                break
            time.sleep(0.05)
        pids = [int(p) for p in (job / "pids").read_text().split()]
        assert all(alive(p) for p in pids)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (any(alive(p) for p in pids) or job.exists()):
        time.sleep(0.1)
    assert not any(alive(p) for p in pids)
    assert not job.exists()


@pytest.mark.lava
def test_killing_the_cli_during_a_lava_run_leaves_no_process_and_no_files(tmp_path):
    """SIGKILL of `eventprop evaluate --backend lava`: the worker and Lava's processes end within
    seconds and the temporary folder is gone."""
    rng = np.random.default_rng(1)
    hid = FixedPointLayer("dense_rec", rng.integers(-20, 60, (8, 700)), 700, 300, 150,
                          weight_rec=rng.integers(-50, 50, (8, 8)))
    out = FixedPointLayer("dense", rng.integers(-50, 50, (20, 8)), 900, 100, 2**17)
    path = write_netx(FixedPointNetwork(700, hid, out, timesteps=60), tmp_path / "net.net")
    from conftest import FIXTURE_DIR

    tag = f"eventprop-test-{os.getpid()}-{time.time_ns()}"
    work = Path(tempfile.mkdtemp(prefix="ept", dir="/tmp"))   # short: Lava's socket paths live below it
    env = {**os.environ, "TMPDIR": str(work), "EVENTPROP_TEST_TAG": tag}
    cli = subprocess.Popen([sys.executable, "-m", "eventprop_pipeline.cli.main", "evaluate", str(path), "--dataset",
                            "shd", "--data-root", str(FIXTURE_DIR), "--backend", "lava", "--lava-samples", "100"],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def tagged():
        found = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and int(proc.name) != cli.pid and \
                        tag.encode() in (proc / "environ").read_bytes() and alive(int(proc.name)):
                    found.append(int(proc.name))
            except OSError:
                pass
        return found

    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:      # wait until Lava is really running samples
            rows = list(work.glob("eventprop_lava_*/rows"))
            if rows and (rows[0].parent / "maps").exists() and len(tagged()) > 2:
                break
            assert cli.poll() is None, "the run ended before it could be killed"
            time.sleep(0.2)
        assert len(tagged()) > 2
    finally:
        cli.send_signal(signal.SIGKILL)
        cli.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (tagged() or list(work.iterdir())):
        time.sleep(0.2)
    assert tagged() == []
    assert list(work.iterdir()) == []
    work.rmdir()
