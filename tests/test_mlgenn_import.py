"""mlGeNN checkpoint import, checked against mlGeNN's own saved inference outputs."""
import numpy as np
import pytest

from eventprop_pipeline import NetworkFileError
from eventprop_pipeline.cli.main import main
from eventprop_pipeline.data import read_spike_file
from eventprop_pipeline.mlgenn_import import import_mlgenn
from eventprop_pipeline.model import simulate


@pytest.fixture(scope="module")
def fixture_run():
    from conftest import FIXTURE_DIR
    net = import_mlgenn(FIXTURE_DIR, 29)
    data = read_spike_file(FIXTURE_DIR / "SHD" / "shd_test.h5", name="shd")
    result = simulate(net, data.dense(np.arange(len(data))))
    ref = np.load(FIXTURE_DIR / "mlgenn_outputs.npz", allow_pickle=False)
    return net, data, result, ref


def test_sizes_inferred_from_files(fixture_run):
    net = fixture_run[0]
    assert (net.n_input, net.n_hidden, net.n_output) == (700, 256, 20)
    raw = np.load("tests/data/mlgenn_hidden256/29-input_hidden-g.npy")
    assert np.array_equal(net.weights["input_hidden"], raw.reshape(700, 256))   # (pre, post), row-major


def test_predictions_match_mlgenn(fixture_run):
    _, data, result, ref = fixture_run
    agree = np.mean(result.prediction == ref["pred"])
    assert agree >= 0.99, f"prediction agreement {agree:.3f}"
    assert np.array_equal(data.labels, ref["labels"])


def test_readouts_match_mlgenn_where_no_hidden_spike_changes(fixture_run):
    _, _, result, ref = fixture_run
    same_spikes = (result.hidden_spike_counts == ref["hidden_spike_count_per_neuron"]).all(axis=1)
    assert same_spikes.sum() >= 0.9 * len(same_spikes)
    diff = np.abs(result.readout - ref["readout"])[same_spikes]
    assert diff.max() < 2e-5, f"max readout difference {diff.max():.2e}"
    # mlGeNN's isolated samples (not its sequential evaluate(), which leaks spikes between samples)
    seq_diff = np.abs(result.readout - ref["readout_sequential"]).max()
    assert seq_diff > 1e-3


def test_cli_import_then_evaluate(tmp_path, capsys):
    from conftest import FIXTURE_DIR
    out = tmp_path / "m.npz"
    assert main(["import-mlgenn", str(FIXTURE_DIR), "--epoch", "29", "--out", str(out)]) == 0
    assert main(["evaluate", str(out), "--dataset", "shd", "--data-root", str(FIXTURE_DIR), "--limit", "16",
                 "--json", "--predictions", str(tmp_path / "p.npz")]) == 0
    import json
    summary = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert summary["n"] == 16 and summary["accuracy"] == 1.0
    with np.load(tmp_path / "p.npz", allow_pickle=False) as p:
        assert p["score"].shape == (16, 20) and p["pred"].shape == (16,) and p["label"].shape == (16,)


def _copy_fixture(tmp_path, names=("input_hidden", "hidden_hidden", "hidden_output"), epoch=29):
    from conftest import FIXTURE_DIR
    for n in ("input_hidden", "hidden_hidden", "hidden_output"):
        w = np.load(FIXTURE_DIR / f"29-{n}-g.npy")
        np.save(tmp_path / f"{epoch}-{names[('input_hidden', 'hidden_hidden', 'hidden_output').index(n)]}-g.npy", w)


def test_custom_connection_names(tmp_path):
    names = ("Conn_Input_Hidden", "Conn_Hidden_Hidden", "Conn_Hidden_Output")
    _copy_fixture(tmp_path, names, epoch=99)
    net = import_mlgenn(tmp_path, 99, connections=dict(zip(("input_hidden", "hidden_hidden", "hidden_output"), names)))
    assert net.n_hidden == 256
    with pytest.raises(NetworkFileError, match="99-input_hidden-g.npy: mlGeNN weight file not found"):
        import_mlgenn(tmp_path, 99)


def test_bad_checkpoints(tmp_path):
    _copy_fixture(tmp_path)
    with pytest.raises(NetworkFileError, match="5-input_hidden-g.npy: mlGeNN weight file not found"):
        import_mlgenn(tmp_path, 5)
    np.save(tmp_path / "29-hidden_output-g.npy", np.zeros(256 * 20 + 3, np.float32))
    with pytest.raises(NetworkFileError, match="not a multiple of n_hidden=256"):
        import_mlgenn(tmp_path, 29)
    np.save(tmp_path / "29-hidden_hidden-g.npy", np.zeros(1000, np.float32))
    with pytest.raises(NetworkFileError, match="not a square"):
        import_mlgenn(tmp_path, 29)
    (tmp_path / "29-hidden_hidden-g.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(NetworkFileError, match="29-hidden_hidden-g.npy: not a readable .npy"):
        import_mlgenn(tmp_path, 29)
    _copy_fixture(tmp_path)
    w = np.load(tmp_path / "29-hidden_output-g.npy")
    w[7] = np.nan
    np.save(tmp_path / "29-hidden_output-g.npy", w)
    with pytest.raises(NetworkFileError, match="hidden_output has 1 NaN"):
        import_mlgenn(tmp_path, 29)
    with pytest.raises(NetworkFileError, match="checkpoint folder not found"):
        import_mlgenn(tmp_path / "nope", 29)
