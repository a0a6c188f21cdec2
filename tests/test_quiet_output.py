"""stdout carries only what the tool prints: third-party banners (lava-dl's, torch's "No CUDA runtime")
never reach it, so `--json` output parses as it is, from a real process."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import FIXTURE_DIR


def cli(*argv, cwd):
    r = subprocess.run([sys.executable, "-m", "eventprop_pipeline.cli.main", *argv], capture_output=True,
                       text=True, timeout=600, cwd=cwd)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


@pytest.fixture(scope="module")
def fixture_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quiet")
    cli("import-mlgenn", str(FIXTURE_DIR), "--epoch", "29", "--out", str(tmp / "m.npz"), cwd=tmp)
    cli("export", str(tmp / "m.npz"), "--out", str(tmp / "m.net"), cwd=tmp)
    return tmp


@pytest.mark.parametrize("backend", ["float", "emulator"])
def test_json_stdout_is_only_json(fixture_files, backend):
    model = fixture_files / ("m.npz" if backend == "float" else "m.net")
    extra = [] if backend == "float" else ["--backend", "emulator"]
    out = cli("evaluate", str(model), "--dataset", "shd", "--data-root", str(FIXTURE_DIR), "--limit", "4", "--json",
              *extra, cwd=fixture_files)
    result = json.loads(out)
    assert result["n"] == 4


@pytest.mark.lava
def test_json_stdout_is_only_json_with_lava(fixture_files):
    out = cli("evaluate", str(fixture_files / "m.net"), "--dataset", "shd", "--data-root", str(FIXTURE_DIR),
              "--backend", "lava", "--lava-samples", "1", "--timesteps", "40", "--json", cwd=fixture_files)
    result = json.loads(out)       # lava-dl's banners went to the worker's log
    assert result["backend"] == "lava" and result["n"] == 1
    assert np.isfinite(result["accuracy"])
