"""SHD/SSC file reading and binning, checked against hand-computed bins."""
import h5py
import numpy as np
import pytest

from eventprop_pipeline.data import load_dataset, read_spike_file, time_to_step, write_spike_file
from eventprop_core.errors import DataError


def _write(path, samples, labels):
    write_spike_file(path, [np.array(t) for t, _ in samples], [np.array(u) for _, u in samples], labels)


def test_time_to_step_edges_are_left_closed():
    # 0.5 s, 0.25 s and 0.125 s are exact in float16: exactly on an edge goes to the later bin.
    t = np.array([0.0, 0.5, 0.25, 0.125], dtype=np.float16)
    assert time_to_step(t, 1.0).tolist() == [0, 500, 250, 125]
    assert time_to_step(t, 0.5).tolist() == [0, 1000, 500, 250]
    assert time_to_step(t, 2.0).tolist() == [0, 250, 125, 62]


def test_time_to_step_uses_the_float16_value():
    t16 = np.float16(0.001)          # stored as 0.00100040435791015625 s
    assert float(t16) > 0.001
    assert time_to_step(np.array([t16]), 1.0).tolist() == [1]
    t16 = np.float16(0.007)          # stored as 0.006999969482421875 s: just below 7 ms
    assert float(t16) < 0.007
    assert time_to_step(np.array([t16]), 1.0).tolist() == [6]


def test_time_to_step_non_dyadic_dt_edge():
    # 0.25 s / 0.1 ms: 2500 exactly, although 0.25e3 / 0.1 rounds to 2499.9999999999995 in float64.
    assert time_to_step(np.array([0.25]), 0.1).tolist() == [2500]


def test_reader_bins_crops_clips_and_handles_empty(tmp_path):
    path = tmp_path / "SHD" / "shd_test.h5"
    samples = [
        ([0.0005, 0.0007, 0.0015, 0.5, 1.2], [3, 3, 3, 1, 2]),  # two spikes in one bin; 1.2 s cropped at T=1000
        ([], []),                                                  # empty sample
        ([0.9985, 0.0], [699, 0]),                                 # unsorted input
    ]
    _write(path, samples, [4, 0, 19])
    d = read_spike_file(path, name="shd", dt=1.0, timesteps=1000)
    assert len(d) == 3 and d.labels.tolist() == [4, 0, 19]
    s, u, c = d.events(0)
    assert list(zip(s.tolist(), u.tolist(), c.tolist())) == [(0, 3, 1), (1, 3, 1), (500, 1, 1)]
    assert d.events(1)[0].size == 0
    s, u, _ = d.events(2)
    assert list(zip(s.tolist(), u.tolist())) == [(0, 0), (998, 699)]   # float16(0.9985) = 0.998535 s
    dense = d.dense([0, 1, 2])
    assert dense.shape == (3, 1000, 700) and dense.sum() == 5 and dense[0, 0, 3] == 1
    graded = read_spike_file(path, name="shd", dt=1.0, timesteps=1000, graded=True)
    assert graded.dense([0])[0, 0, 3] == 2
    # a longer T keeps the 1.2 s spike
    long = read_spike_file(path, name="shd", dt=1.0, timesteps=1400)
    assert (1200, 2) in zip(*long.events(0)[:2])   # float16(1.2) = 1.2002 s
    assert d.spikes_per_sample().tolist() == [3, 0, 2]


def test_fixture_file_bins_match_its_event_list(fixture_dir):
    d = read_spike_file(fixture_dir / "SHD" / "shd_test.h5", name="shd")
    ref = np.load(fixture_dir / "data.npz", allow_pickle=False)
    assert np.array_equal(d.offsets, ref["offsets"])
    assert np.array_equal(d.steps, ref["times_ms"])
    assert np.array_equal(d.units, ref["units"])
    assert np.array_equal(d.labels, ref["labels"])


def test_missing_file_names_path_and_urls(tmp_path):
    with pytest.raises(DataError) as e:
        load_dataset("shd", "train", data_root=tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "SHD" / "shd_train.h5") in msg and "https://zenkelab.org/datasets/shd_train.h5.zip" in msg


def test_wrong_data_root_and_unknown_dataset(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("ssc", "valid", data_root=tmp_path / "nope")
    with pytest.raises(DataError, match="unknown data set 'mnist'"):
        load_dataset("mnist")
    with pytest.raises(DataError, match="no split 'valid'"):
        load_dataset("shd", "valid", data_root=tmp_path)


def test_corrupt_and_truncated_files(tmp_path):
    good = tmp_path / "good.h5"
    _write(good, [([0.001], [1])] * 50, [0] * 50)
    truncated = tmp_path / "SHD" / "shd_test.h5"
    truncated.parent.mkdir()
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(DataError, match="shd_test.h5"):
        load_dataset("shd", "test", data_root=tmp_path)
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5 at all" * 100)
    with pytest.raises(DataError, match="garbage.h5: cannot read HDF5"):
        read_spike_file(garbage, name="shd")
    wrong = tmp_path / "wrong.h5"
    with h5py.File(wrong, "w") as f:
        f["labels"] = np.zeros(3)
    with pytest.raises(DataError, match="missing dataset 'spikes/times'"):
        read_spike_file(wrong, name="shd")


def test_out_of_range_units_rejected(tmp_path):
    path = tmp_path / "x.h5"
    _write(path, [([0.001], [700])], [0])
    with pytest.raises(DataError, match="unit index 700 out of range"):
        read_spike_file(path, name="shd")


def test_shd_sized_file_reads_completely(tmp_path):
    # Speed is measured by benchmarks/data_speed.py; here: every sample and event arrives.
    rng = np.random.default_rng(0)
    n, per = 8156, 200
    times = [np.sort(rng.uniform(0, 0.9, per)) for _ in range(n)]
    units = [rng.integers(0, 700, per) for _ in range(n)]
    path = tmp_path / "SHD" / "shd_train.h5"
    write_spike_file(path, times, units, rng.integers(0, 20, n))
    d = load_dataset("shd", "train", data_root=tmp_path)
    assert len(d) == n
    expected = sum(len(np.unique(time_to_step(np.float16(t), 1.0) * 700 + u)) for t, u in zip(times[:50], units[:50]))
    assert d.spikes_per_sample()[:50].sum() == expected
