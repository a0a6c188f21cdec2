"""The .npz network file: round trip, atomic writes, and every kind of bad file."""
import json
import zipfile

import numpy as np
import pytest

from eventprop_pipeline import ModelParams, Network, NetworkFileError, load_network


def small_net(seed=0):
    return Network.initialise(7, 5, 3, params=ModelParams(tau_mem=15.0, dt=0.5, timesteps=40), seed=seed)


def test_round_trip_preserves_weights_params_and_provenance(tmp_path):
    net = small_net()
    net.provenance["dataset"] = "synthetic"
    net.save(tmp_path / "m.npz")
    back = load_network(tmp_path / "m.npz")
    for k, w in net.weights.items():
        assert back.weights[k].dtype == np.float32
        assert np.array_equal(back.weights[k], w)
    assert back.params == net.params
    assert back.provenance["dataset"] == "synthetic"
    assert (back.n_input, back.n_hidden, back.n_output) == (7, 5, 3)


def test_file_is_plain_data_readable_without_the_package(tmp_path):
    small_net().save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as z:
        meta = json.loads(str(z["metadata"]))
        assert z["input_hidden"].shape == (7, 5)
        assert z["hidden_hidden"].shape == (5, 5)
        assert z["hidden_output"].shape == (5, 3)
    assert meta["format"] == "eventprop-network" and meta["format_version"] == 1
    assert meta["sizes"] == {"input": 7, "hidden": 5, "output": 3}
    assert meta["params"]["tau_mem"] == 15.0 and meta["params"]["readout"] == "avg_var_exp_weight"


def test_failed_save_leaves_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    small_net(0).save(path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(RuntimeError):
        small_net(1).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def _rewrite(path, **changes):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for k, v in changes.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


@pytest.mark.parametrize("change, message", [
    ({"hidden_hidden": None}, "missing weight matrix hidden_hidden"),
    ({"metadata": None}, "missing 'metadata'"),
    ({"hidden_hidden": np.zeros((4, 5), np.float32)}, "hidden_hidden has shape (4, 5), expected (5, 5)"),
    ({"hidden_output": np.zeros((6, 3), np.float32)}, "hidden_output has shape (6, 3)"),
    ({"input_hidden": np.zeros(35, np.float32)}, "input_hidden must be a non-empty 2-D"),
    ({"metadata": np.array("{not json")}, "metadata is not valid JSON"),
    ({"input_hidden": np.zeros((7, 5), np.int32)}, "input_hidden has dtype int32"),
])
def test_bad_contents_rejected(tmp_path, change, message):
    path = tmp_path / "m.npz"
    small_net().save(path)
    _rewrite(path, **change)
    with pytest.raises(NetworkFileError) as e:
        load_network(path)
    assert str(path) in str(e.value) and message in str(e.value)


def test_nan_and_inf_rejected_with_position(tmp_path):
    path = tmp_path / "m.npz"
    net = small_net()
    w = net.weights["hidden_output"].copy()
    w[2, 1] = np.nan
    w[4, 0] = np.inf
    net.save(path)
    _rewrite(path, hidden_output=w)
    with pytest.raises(NetworkFileError, match=r"hidden_output has 2 NaN/inf values \(first at \[2, 1\]"):
        load_network(path)
    with pytest.raises(NetworkFileError, match="NaN/inf"):
        Network({**net.weights, "input_hidden": np.full((7, 5), np.nan, np.float32)})


def test_unknown_version_and_foreign_format(tmp_path):
    path = tmp_path / "m.npz"
    net = small_net()
    net.save(path)
    meta = net.metadata()
    _rewrite(path, metadata=np.array(json.dumps({**meta, "format_version": 99})))
    with pytest.raises(NetworkFileError, match="unsupported format_version 99"):
        load_network(path)
    _rewrite(path, metadata=np.array(json.dumps({**meta, "format": "something-else"})))
    with pytest.raises(NetworkFileError, match="expected 'eventprop-network'"):
        load_network(path)
    _rewrite(path, metadata=np.array(json.dumps({**meta, "sizes": {"input": 8, "hidden": 5, "output": 3}})))
    with pytest.raises(NetworkFileError, match="metadata says input size 8 but the weights have 7"):
        load_network(path)
    _rewrite(path, metadata=np.array(json.dumps({**meta, "params": {**meta["params"], "tau_syn": -1}})))
    with pytest.raises(NetworkFileError, match="tau_syn must be a positive"):
        load_network(path)


def test_truncated_corrupt_missing_and_pickled_files(tmp_path):
    path = tmp_path / "m.npz"
    small_net().save(path)
    data = path.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(NetworkFileError, match="trunc.npz: not a readable network .npz"):
        load_network(tmp_path / "trunc.npz")
    (tmp_path / "junk.npz").write_bytes(b"\x00" * 100)
    with pytest.raises(NetworkFileError, match="junk.npz"):
        load_network(tmp_path / "junk.npz")
    with pytest.raises(NetworkFileError, match="not found"):
        load_network(tmp_path / "absent.npz")
    np.save(tmp_path / "single.npy", np.zeros(3, np.float32))
    with pytest.raises(NetworkFileError, match="single.npy: a single .npy array"):
        load_network(tmp_path / "single.npy")
    # An object array needs pickle to load: refused, never executed.
    with open(tmp_path / "obj.npz", "wb") as fh:
        np.savez(fh, metadata=np.array([{"a": 1}], dtype=object))
    with pytest.raises(NetworkFileError, match="obj.npz"):
        load_network(tmp_path / "obj.npz")
    assert zipfile.is_zipfile(path)


def test_initialise_is_seeded_and_follows_the_paper():
    a = Network.initialise(700, 256, 20, seed=3)
    b = Network.initialise(700, 256, 20, seed=3)
    assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights)
    w = a.weights["input_hidden"]
    assert abs(w.mean() - 0.03) < 1e-3 and abs(w.std() - 0.01) < 1e-3
    assert abs(a.weights["hidden_hidden"].std() - 0.02) < 1e-3
    assert abs(a.weights["hidden_output"].std() - 0.03) < 2e-3
