"""Execute both notebooks (shrunk through their environment-variable parameters) and fail on any error.
With Lava's environment present they run Lava too; without it their Lava cells skip and say why."""
import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
KERNEL = "eventprop-tests"


@pytest.fixture
def kernel_for_this_interpreter(tmp_path, monkeypatch):
    """A kernelspec that runs this very interpreter (the .venv), found through JUPYTER_PATH only."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "eventprop tests", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return KERNEL


def execute(name: str, kernel: str, cwd: Path) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{name} is stored with outputs"
    client = nbclient.NotebookClient(nb, kernel_name=kernel, timeout=300, resources={"metadata": {"path": str(cwd)}})
    client.execute()      # raises CellExecutionError on the first failing cell


def test_train_and_export_notebook(kernel_for_this_interpreter, tmp_path, monkeypatch):
    for key, value in {"NB_N_TRAIN": "40", "NB_N_TEST": "10", "NB_HIDDEN": "16", "NB_TIMESTEPS": "60",
                       "NB_EPOCHS": "1", "NB_LAVA_SAMPLES": "1", "NB_OUT": str(tmp_path / "out")}.items():
        monkeypatch.setenv(key, value)
    execute("01_train_and_export.ipynb", kernel_for_this_interpreter, tmp_path)
    assert (tmp_path / "out" / "network.net").is_file()


def test_gpu_vs_loihi_notebook(kernel_for_this_interpreter, tmp_path, monkeypatch):
    for key, value in {"NB_LIMIT": "4", "NB_LAVA_SAMPLES": "1", "NB_SWEEP_BITS": "8,4",
                       "NB_OUT": str(tmp_path / "out")}.items():
        monkeypatch.setenv(key, value)
    execute("02_gpu_vs_loihi_accuracy.ipynb", kernel_for_this_interpreter, tmp_path)
    assert (tmp_path / "out" / "run" / "report.md").is_file()
