"""Compact, chunked data loading at any size: the numba binner against from_events (the reference),
chunked reads against one read, sample ranges, make-synthetic's SSC layout against the generator."""
import numpy as np
import pytest

from eventprop_pipeline.cli.main import main
from eventprop_pipeline.data import spike_files
from eventprop_pipeline.data.binning import time_to_step
from eventprop_pipeline.data.compact import GrowingEvents, bin_chunk, bin_times_chunk
from eventprop_pipeline.data.events import from_events
from eventprop_pipeline.data.registry import load_dataset
from eventprop_pipeline.data.spike_files import read_spike_file, write_spike_file
from eventprop_pipeline.data.synthetic import SyntheticConfig, concat_datasets, generate_split, iter_split


def same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in ((a.steps, b.steps), (a.units, b.units), (a.counts, b.counts),
                                                 (a.offsets, b.offsets), (a.labels, b.labels)))


@pytest.mark.parametrize("graded", [False, True])
@pytest.mark.parametrize("time_ordered", [False, True])
def test_bin_chunk_equals_from_events(graded, time_ordered):
    rng = np.random.default_rng(1)
    n, T, C = 40, 30, 12
    lengths = rng.integers(0, 60, n)
    lengths[3] = 0
    sample = np.repeat(np.arange(n), lengths)
    steps = rng.integers(-2, T + 3, len(sample))     # some outside [0, T): dropped
    units = rng.integers(-1, C + 1, len(sample))     # some outside [0, C): dropped
    if time_ordered:   # SHD files hold each sample's spikes in time order
        order = np.lexsort((steps, sample))
        steps, units = steps[order], units[order]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    ref = from_events(sample, steps, units, np.zeros(n, np.int64), n_channels=C, n_classes=1, timesteps=T, dt=1.0,
                      graded=graded)
    st, un, cn, per = bin_chunk(offsets, steps, units, timesteps=T, n_channels=C, graded=graded)
    assert ref.counts.max() > 1 if graded else True
    np.testing.assert_array_equal(st, ref.steps)
    np.testing.assert_array_equal(un, ref.units)
    np.testing.assert_array_equal(cn, ref.counts)
    np.testing.assert_array_equal(np.concatenate([[0], np.cumsum(per)]), ref.offsets)
    assert st.dtype == np.uint16 and un.dtype == np.uint16 and cn.dtype == (np.uint16 if graded else np.uint8)


@pytest.mark.parametrize("dt", [1.0, 0.7])
def test_bin_times_chunk_equals_time_to_step_and_from_events(dt):
    rng = np.random.default_rng(6)
    n, T, C = 30, 50, 9
    lengths = rng.integers(0, 70, n)
    sample = np.repeat(np.arange(n), lengths)
    # float16 seconds (as in SHD files), many exactly on bin edges, some past T, some negative
    t = np.where(rng.random(len(sample)) < 0.5, rng.integers(-1, T + 2, len(sample)) * dt / 1000,
                 rng.uniform(-0.001, (T + 2) * dt / 1000, len(sample))).astype(np.float16)
    units = rng.integers(0, C, len(sample)).astype(np.uint16)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    ref = from_events(sample, time_to_step(t, dt), units.astype(np.int64), np.zeros(n, np.int64), n_channels=C,
                      n_classes=1, timesteps=T, dt=dt, graded=True)
    st, un, cn, per = bin_times_chunk(offsets, t, units, dt=dt, timesteps=T, n_channels=C, graded=True)
    for got, want in ((st, ref.steps), (un, ref.units), (cn, ref.counts),
                      (np.concatenate([[0], np.cumsum(per)]), ref.offsets)):
        np.testing.assert_array_equal(got, want)


def test_growing_events_keeps_everything_when_the_estimate_is_low():
    g = GrowingEvents(3, (np.uint16, np.uint8))
    for k in range(5):
        g.append(np.arange(k, k + 4, dtype=np.uint16), np.full(4, k, np.uint8))
    a, b = g.result()
    assert a.tolist() == [k + i for k in range(5) for i in range(4)] and b.tolist() == [k for k in range(5) for _ in range(4)]


def test_chunked_reads_and_sample_ranges_equal_one_read(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    n = 23
    times = [rng.uniform(0, 0.12, rng.integers(0, 80)) for _ in range(n)]    # unsorted, some past T
    units = [rng.integers(0, 700, len(t)) for t in times]
    path = tmp_path / "SHD" / "shd_train.h5"
    write_spike_file(path, times, units, rng.integers(0, 20, n))
    whole = read_spike_file(path, name="shd", timesteps=100)
    monkeypatch.setattr(spike_files, "READ_CHUNK", 4)
    assert same(read_spike_file(path, name="shd", timesteps=100), whole)
    part = read_spike_file(path, name="shd", timesteps=100, samples=(5, 17))
    assert same(part, whole.subset(np.arange(5, 17)))
    assert same(read_spike_file(path, name="shd", timesteps=100, limit=9), whole.subset(np.arange(9)))
    # the reference: every sample binned on its own with from_events
    from eventprop_pipeline.data.binning import time_to_step
    for i in (0, 7, 22):
        t16 = np.asarray(times[i], np.float16)
        ref = from_events(np.zeros(len(t16), np.int64), time_to_step(t16, 1.0), units[i], np.zeros(1, np.int64),
                          n_channels=700, n_classes=20, timesteps=100, dt=1.0)
        for x, y in zip(whole.events(i), ref.events(0)):
            np.testing.assert_array_equal(x, y)


def test_synthetic_chunks_do_not_change_the_data():
    cfg = SyntheticConfig(n_channels=40, n_classes=6, timesteps=80, n_train=25, n_test=5)
    whole = generate_split(cfg, "train")
    assert same(concat_datasets(list(iter_split(cfg, "train", 25, chunk=7)), "x"), whole)


def test_make_synthetic_ssc_layout_is_what_the_generator_makes(tmp_path, capsys):
    out = tmp_path / "root"
    assert main(["make-synthetic", "--layout", "ssc", "--out", str(out), "--n-train", "30", "--n-test", "6",
                 "--n-valid", "4", "--timesteps", "200"]) == 0
    assert sorted(p.name for p in (out / "SSC").iterdir()) == ["ssc_test.h5", "ssc_train.h5", "ssc_valid.h5"]
    cfg = SyntheticConfig(n_classes=35, timesteps=200, n_train=30, n_test=6)
    for split, n in (("train", 30), ("valid", 4), ("test", 6)):
        got = load_dataset("ssc", split, data_root=out, timesteps=200)
        want = concat_datasets(list(iter_split(cfg, split, n)), split)
        assert same(got, want), split
    assert got.n_classes == 35
    assert main(["make-synthetic", "--layout", "ssc", "--out", str(out), "--n-classes", "20"]) == 1
    assert "SSC has 700 channels and 35 classes" in capsys.readouterr().err


def test_make_synthetic_checks_free_space_before_the_long_write(tmp_path, capsys, monkeypatch):
    """An SSC-size set takes minutes to write: a disk that cannot hold it is a one-line error after the
    first chunk, with the estimate and the free space, and nothing written. The estimate is checked
    against real files: at least their size, at most 3x."""
    import shutil
    from collections import namedtuple

    from eventprop_pipeline.cli import data_cmd
    out = tmp_path / "real"
    seen = {}
    real_check = data_cmd.check_free_space

    def spy(where, n, per_sample):
        seen["need"] = data_cmd.DISK_MARGIN * n * (data_cmd.BYTES_PER_SAMPLE + data_cmd.BYTES_PER_EVENT * per_sample)
        real_check(where, n, per_sample)

    monkeypatch.setattr(data_cmd, "check_free_space", spy)
    assert main(["make-synthetic", "--out", str(out), "--n-train", "300", "--n-test", "100"]) == 0
    written = sum(f.stat().st_size for f in out.iterdir())
    assert written <= seen["need"] <= 3 * written, (written, seen)
    monkeypatch.setattr(data_cmd, "check_free_space", real_check)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    full = tmp_path / "full"
    assert main(["make-synthetic", "--out", str(full), "--n-train", "300", "--n-test", "100"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "would need about" in err[0] and "nothing was written" in err[0], err
    assert not full.exists() or not any(full.rglob("*.h5*"))


def test_blends_in_chunks_and_joined_batches_equal_the_whole(monkeypatch):
    from eventprop_pipeline.training import augment
    data = generate_split(SyntheticConfig(n_channels=50, n_classes=4, timesteps=60, n_train=40, n_test=2), "train")
    whole = augment.make_blended(data, 30, (0.5, 0.7), np.random.default_rng(4))
    monkeypatch.setattr(augment, "BLEND_CHUNK", 7)
    assert same(augment.make_blended(data, 30, (0.5, 0.7), np.random.default_rng(4)), whole)
    # each blended sample is from_events (the reference) of its blend_events
    rng = np.random.default_rng(4)
    pairs = augment.draw_blend_pairs(rng, data.labels, 30)
    for k, (i, j) in enumerate(pairs[:3]):
        s1, u1, _ = data.events(int(i))
        s2, u2, _ = data.events(int(j))
        s, u = augment.blend_events((s1, u1), (s2, u2), rng.random(len(s1)) < 0.5, rng.random(len(s2)) < 0.7)
        ref = from_events(np.zeros(len(s), np.int64), s, u, np.zeros(1, np.int64), n_channels=50, n_classes=4,
                          timesteps=60, dt=1.0)
        for x, y in zip(whole.events(k), ref.events(0)):
            np.testing.assert_array_equal(x, y)
    # a data-parallel rank builds only the blends it reads; those are the same
    wanted = np.zeros(30, bool)
    wanted[[0, 4, 5, 29]] = True
    some = augment.make_blended(data, 30, (0.5, 0.7), np.random.default_rng(4), wanted=wanted)
    for k in range(30):
        for x, y in zip(some.events(k), whole.events(k)):
            if wanted[k]:
                np.testing.assert_array_equal(x, y)
            else:
                assert len(x) == 0
    np.testing.assert_array_equal(some.labels, whole.labels)
    joined = augment.Joined(data, whole)
    idx = np.random.default_rng(0).permutation(70)[:25]
    assert same(joined.subset(idx), augment.concat(data, whole).subset(idx))
    assert len(joined) == 70
