"""Property-based corruption of every file format the CLI reads (hypothesis, derandomized).

For each format a valid file is built, then hypothesis corrupts it (truncation, byte flips, edited
fields of every type, missing or extra entries) and the CLI is called in-process. The contract:

- exit 0 or 1, never anything else; on 1 exactly one line `error: ...` on stderr, no traceback and
  never the "unexpected ... (a bug)" fallback;
- when the format's own reader rejects the file (the independent oracle: load_network, read_netx,
  read_spike_file, load_train_config, load_checkpoint, import_mlgenn called directly), the CLI
  exits 1 and the message names the corrupted file;
- the input is unchanged (SHA-256) and no partial output is left (no temporary files; on exit 1
  no output file).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from unittest import mock

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventprop_pipeline.cli.main import main
from eventprop_core.errors import PipelineError
from eventprop_core.network import Network
from eventprop_core.params import ModelParams

# CI: 120 derandomized examples per format (~35 s in all). A longer random search:
#   FUZZ_EXAMPLES=2000 FUZZ_RANDOM=1 pytest tests/test_fuzz_formats.py
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "120"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("FUZZ_RANDOM"),
                database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
T = 20   # time steps of the fuzzed networks (small: every example runs the CLI)

# -- helpers ---------------------------------------------------------------------------------------

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8))
json_values = st.recursive(json_scalars, lambda c: st.one_of(st.lists(c, max_size=3),
                                                             st.dictionaries(st.text(max_size=6), c, max_size=3)),
                           max_leaves=6)
arrays = st.one_of(
    st.builds(lambda shape, v: np.full(shape, v, np.float32),
              st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple),
              st.floats(allow_nan=True, allow_infinity=True, width=32)),
    st.builds(lambda n, v: np.full(n, v, np.int64), st.integers(0, 5), st.integers(-2**40, 2**40)),
    st.builds(lambda n: np.array([b"x"] * n), st.integers(0, 3)),
    st.builds(lambda b: np.array(b), st.booleans()),
)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_hashes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): sha(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def run_cli(argv) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main([str(a) for a in argv])
    return rc, err.getvalue()


def check_contract(rc: int, err: str, *, rejected: bool, names: Path, outputs: list[Path], out_dir: Path) -> None:
    assert rc in (0, 1), (rc, err)
    assert "Traceback" not in err and "a bug" not in err, err
    if rc == 1:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert not any(p.exists() for p in outputs), "partial output left after an error"
    if rejected:
        assert rc == 1, f"reader rejects the file but the CLI exited {rc}"
        assert str(names) in err, f"message does not name {names}: {err}"
    assert not list(out_dir.rglob(".*.tmp")), "temporary file left behind"


def flip_bytes(data: bytes, positions: list[int], values: list[int]) -> bytes:
    b = bytearray(data)
    for p, v in zip(positions, values):
        if b:
            b[p % len(b)] = v
    return bytes(b)


byte_edits = st.tuples(st.lists(st.integers(0, 10**7), min_size=1, max_size=8),
                       st.lists(st.integers(0, 255), min_size=8, max_size=8))


def corrupt_bytes(data: bytes, how: str, edit) -> bytes:
    if how == "truncate":
        return data[: edit[0][0] % max(len(data), 1)]
    return flip_bytes(data, *edit)


@pytest.fixture(scope="module")
def work():
    """A valid network (.npz), its NetX export, a tiny SHD data root, and a training checkpoint."""
    root = Path(tempfile.mkdtemp(prefix="fuzz-formats-"))
    net = Network.initialise(700, 6, 20, params=ModelParams(timesteps=T), seed=0)
    net.save(root / "model.npz")
    assert run_cli(["export", root / "model.npz", "--out", root / "model.net"])[0] == 0
    (root / "data" / "SHD").mkdir(parents=True)
    from eventprop_pipeline.data.spike_files import write_spike_file
    write_spike_file(root / "data" / "SHD" / "shd_test.h5", [np.array([0.001, 0.0105]), np.array([0.002])],
                     [np.array([3, 699]), np.array([10])], [0, 19])
    yield root
    shutil.rmtree(root, ignore_errors=True)


def fresh_dir(work: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=work))


def oracle(fn, *args) -> bool:
    """True if the format's own reader rejects the file with a PipelineError."""
    try:
        fn(*args)
    except PipelineError:
        return True
    return False


# -- network .npz and its metadata -----------------------------------------------------------------

def _npz_entries(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _write_npz(path: Path, entries: dict) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **entries)


metadata_edit = st.tuples(st.just("metadata"), st.sampled_from(
    ["format", "format_version", "sizes", "params", "provenance", "params.timesteps", "params.dt",
     "params.tau_mem", "params.readout", "params.extra"]), json_values)
npz_edit = st.one_of(   # the metadata branch is listed twice: most hand edits happen there
    st.tuples(st.just("bytes"), st.sampled_from(["truncate", "flip"]), byte_edits),
    metadata_edit, metadata_edit,
    st.tuples(st.just("array"), st.sampled_from(["input_hidden", "hidden_hidden", "hidden_output", "metadata",
                                                 "other"]), arrays),
    st.tuples(st.just("drop"), st.sampled_from(["input_hidden", "hidden_hidden", "hidden_output", "metadata"]),
              st.none()),
)


def corrupt_network(src: Path, dst: Path, edit) -> None:
    kind, key, value = edit
    if kind == "bytes":
        dst.write_bytes(corrupt_bytes(src.read_bytes(), key, value))
        return
    entries = _npz_entries(src)
    if kind == "metadata":
        meta = json.loads(str(entries["metadata"]))
        if key.startswith("params."):
            meta["params"][key.split(".", 1)[1]] = value
        else:
            meta[key] = value
        entries["metadata"] = np.array(json.dumps(meta))
    elif kind == "array":
        entries[key] = value
    else:
        entries.pop(key)
    _write_npz(dst, entries)


@FUZZ
@given(edit=npz_edit)
def test_fuzz_network_npz(work, edit):
    from eventprop_core.network import load_network

    d = fresh_dir(work)
    bad = d / "model.npz"
    corrupt_network(work / "model.npz", bad, edit)
    before = sha(bad)
    out = d / "pred.npz"
    rc, err = run_cli(["evaluate", bad, "--dataset", "shd", "--data-root", work / "data", "--predictions", out])
    check_contract(rc, err, rejected=oracle(load_network, bad), names=bad, outputs=[out], out_dir=d)
    assert sha(bad) == before


# -- NetX HDF5 -------------------------------------------------------------------------------------

NETX_PATHS = ["layer/0/type", "layer/0/shape", "layer/1/weight", "layer/1/weight_rec", "layer/1/shape",
              "layer/1/neuron/iDecay", "layer/1/neuron/vDecay", "layer/1/neuron/vThMant", "layer/1/neuron/type",
              "layer/2/weight", "layer/2/neuron/vThMant", "layer/2/type", "eventprop/metadata", "layer/1/bias",
              "layer/0/neuron", "layer/3", "layer/1/delay"]
h5_values = st.one_of(arrays, st.integers(-2**31, 2**31 - 1).map(np.int32), st.binary(max_size=12).map(np.bytes_),
                      json_values.map(lambda v: np.bytes_(json.dumps(v).encode())))
netx_edit = st.one_of(
    st.tuples(st.just("bytes"), st.sampled_from(["truncate", "flip"]), byte_edits),
    st.tuples(st.just("set"), st.sampled_from(NETX_PATHS), h5_values),
    st.tuples(st.just("drop"), st.sampled_from(NETX_PATHS), st.none()),
    st.tuples(st.just("metadata"), st.sampled_from(["timesteps", "dt", "format", "format_version", "layers"]),
              json_values),
)


def corrupt_netx(src: Path, dst: Path, edit) -> None:
    kind, key, value = edit
    if kind == "bytes":
        dst.write_bytes(corrupt_bytes(src.read_bytes(), key, value))
        return
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        if kind == "metadata":
            meta = json.loads(f["eventprop/metadata"][()].decode())
            meta[key] = value
            del f["eventprop/metadata"]
            f.create_dataset("eventprop/metadata", data=np.bytes_(json.dumps(meta).encode()))
            return
        if key in f:
            del f[key]
        if kind == "set":
            f.create_dataset(key, data=value)


@FUZZ
@given(edit=netx_edit)
def test_fuzz_netx_hdf5(work, edit):
    from netx_export.hdf5_io import read_netx

    d = fresh_dir(work)
    bad = d / "model.net"
    corrupt_netx(work / "model.net", bad, edit)
    before = sha(bad)
    out = d / "pred.npz"
    rc, err = run_cli(["evaluate", bad, "--dataset", "shd", "--data-root", work / "data", "--predictions", out])
    check_contract(rc, err, rejected=oracle(read_netx, bad), names=bad, outputs=[out], out_dir=d)
    assert sha(bad) == before


# -- SHD/SSC HDF5 ----------------------------------------------------------------------------------

vlen_samples = st.lists(st.lists(st.one_of(st.floats(-1, 2), st.floats(allow_nan=True, allow_infinity=True),
                                           st.integers(-10, 800)), max_size=4), min_size=0, max_size=3)
shd_edit = st.one_of(
    st.tuples(st.just("bytes"), st.sampled_from(["truncate", "flip"]), byte_edits),
    st.tuples(st.just("vlen"), st.sampled_from(["spikes/times", "spikes/units"]),
              st.tuples(vlen_samples, st.sampled_from(["float64", "float16", "int64", "uint16", "int8"]))),
    st.tuples(st.just("set"), st.sampled_from(["labels", "spikes/times", "spikes/units"]),
              st.one_of(arrays, st.lists(st.floats(-3, 30), min_size=0, max_size=3).map(np.array),
                        st.lists(st.integers(-3, 30), min_size=0, max_size=3).map(np.array),
                        st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=2), min_size=2, max_size=2)
                        .map(lambda rows: np.array([r[:1] for r in rows])))),
    st.tuples(st.just("drop"), st.sampled_from(["labels", "spikes/times", "spikes/units", "spikes"]), st.none()),
)


def corrupt_shd(src: Path, dst: Path, edit) -> None:
    kind, key, value = edit
    if kind == "bytes":
        dst.write_bytes(corrupt_bytes(src.read_bytes(), key, value))
        return
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        if key in f:
            del f[key]
        if kind == "vlen":
            samples, dtype = value
            ds = f.create_dataset(key, (len(samples),), dtype=h5py.vlen_dtype(np.dtype(dtype)))
            for i, s in enumerate(samples):
                with np.errstate(all="ignore"):
                    ds[i] = np.asarray(np.nan_to_num(np.asarray(s, float), posinf=1e9, neginf=-1e9)
                                       if dtype.startswith(("int", "uint")) else s).astype(dtype)
        elif kind == "set":
            f.create_dataset(key, data=value)


@FUZZ
@given(edit=shd_edit)
def test_fuzz_spike_file(work, edit):
    from eventprop_pipeline.data.spike_files import read_spike_file

    d = fresh_dir(work)
    (d / "SHD").mkdir()
    bad = d / "SHD" / "shd_test.h5"
    corrupt_shd(work / "data" / "SHD" / "shd_test.h5", bad, edit)
    before = sha(bad)
    out = d / "pred.npz"
    rejected = oracle(lambda p: read_spike_file(p, name="shd", dt=1.0, timesteps=T), bad)
    rc, err = run_cli(["evaluate", work / "model.npz", "--dataset", "shd", "--data-root", d, "--predictions", out])
    check_contract(rc, err, rejected=rejected, names=bad, outputs=[out], out_dir=d)
    assert sha(bad) == before


# -- configs (TOML, YAML, JSON) --------------------------------------------------------------------

KNOWN_KEYS = {"": ["seed", "device", "eval_batch_size"], "data": ["dataset", "train_limit", "valid_fraction"],
              "network": ["hidden", "timesteps", "dt", "tau_mem", "init_input_hidden"],
              "optim": ["epochs", "batch_size", "lr", "lr_ease_in"], "augment": ["blend_probs", "shift"],
              "pipeline": ["weight_bits", "sweep_bits", "lava", "lava_samples", "clip", "scale"]}
config_tables = st.dictionaries(
    st.one_of(st.sampled_from(sorted(KNOWN_KEYS)), st.integers(0, 3), st.text(max_size=4)),
    st.one_of(json_values, st.dictionaries(st.one_of(st.sampled_from(sum(KNOWN_KEYS.values(), [])),
                                                     st.integers(0, 2)), json_values, max_size=3)),
    max_size=3)
config_edit = st.one_of(
    st.tuples(st.sampled_from([".yaml", ".json"]), config_tables),
    st.tuples(st.just(".toml"), st.tuples(st.sampled_from(["truncate", "flip"]), byte_edits)),
    st.tuples(st.sampled_from([".yaml", ".json", ".toml"]), st.binary(max_size=40)),
)
VALID_TOML = b'seed = 0\ndevice = "cpu"\n[network]\nhidden = 8\ntimesteps = 20\n[optim]\nepochs = 1\n[pipeline]\nweight_bits = 8\n'


def write_config(d: Path, edit) -> Path:
    import yaml

    suffix, value = edit
    path = d / f"config{suffix}"
    if isinstance(value, bytes):
        path.write_bytes(value)
    elif isinstance(value, tuple):
        path.write_bytes(corrupt_bytes(VALID_TOML, value[0], value[1]))
    elif suffix == ".json":
        path.write_text(json.dumps({str(k) if not isinstance(k, str) else k: v for k, v in value.items()}))
    else:
        path.write_text(yaml.safe_dump(value))
    return path


@FUZZ
@given(edit=config_edit)
def test_fuzz_config_files(work, edit):
    import torch

    from eventprop_pipeline.pipeline.config_file import load_pipeline_config

    d = fresh_dir(work)
    cfg = write_config(d, edit)
    before = sha(cfg)
    run = d / "run"
    # A valid config stops at the device check (no CUDA here, by construction), before any data or folder.
    with mock.patch.object(torch.cuda, "is_available", lambda: False):
        rc, err = run_cli(["pipeline", "--config", cfg, "--out", run, "--device", "cuda", "--no-lava"])
    check_contract(rc, err, rejected=oracle(load_pipeline_config, cfg), names=cfg, outputs=[run], out_dir=d)
    assert rc == 1 and sha(cfg) == before


# -- training checkpoints --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run_dir(work):
    """A real training run stopped after 0 epochs: checkpoint.npz, config.json, marker."""
    from eventprop_pipeline.training import load_train_config, train

    cfg = load_train_config(None, {"network.hidden": 4, "network.timesteps": T, "optim.epochs": 1,
                                   "data.train_limit": 20, "data.test_limit": 4, "device": "cpu"})
    path = work / "run"
    train(cfg, path, max_epochs_this_call=0, progress=False, log=lambda *a, **k: None)
    return path


checkpoint_edit = st.one_of(
    st.tuples(st.just("bytes"), st.sampled_from(["truncate", "flip"]), byte_edits),
    st.tuples(st.just("array"), st.sampled_from(["weights/input_hidden", "best/hidden_output", "adam_m/hidden_hidden",
                                                 "adam_v/input_hidden", "adam_step", "state", "config"]), arrays),
    st.tuples(st.just("state"), st.sampled_from(["epoch", "best_epoch", "best_valid_accuracy", "history", "schedule",
                                                 "format", "version", "schedule.lr", "schedule.patience"]),
              json_values),
    st.tuples(st.just("config"), st.sampled_from(["seed", "network", "optim", "data"]), json_values),
    st.tuples(st.just("drop"), st.sampled_from(["weights/input_hidden", "adam_step", "state", "config"]), st.none()),
)


def corrupt_checkpoint(src: Path, dst: Path, edit) -> None:
    kind, key, value = edit
    if kind == "bytes":
        dst.write_bytes(corrupt_bytes(src.read_bytes(), key, value))
        return
    entries = _npz_entries(src)
    if kind == "array":
        entries[key] = value
    elif kind == "state":
        state = json.loads(str(entries["state"]))
        if key.startswith("schedule."):
            state["schedule"][key.split(".", 1)[1]] = value
        else:
            state[key] = value
        entries["state"] = np.array(json.dumps(state))
    elif kind == "config":
        config = json.loads(str(entries["config"]))
        config[key] = value
        entries["config"] = np.array(json.dumps(config))
    else:
        entries.pop(key)
    _write_npz(dst, entries)


@FUZZ
@given(edit=checkpoint_edit)
def test_fuzz_training_checkpoint(work, run_dir, edit):
    import torch

    from eventprop_pipeline.training.checkpoint import load_checkpoint
    from eventprop_pipeline.training.config import build_config

    d = fresh_dir(work)
    run = d / "run"
    shutil.copytree(run_dir, run)
    bad = run / "checkpoint.npz"
    corrupt_checkpoint(run_dir / "checkpoint.npz", bad, edit)
    before = tree_hashes(run)

    def read(path):
        ckpt = load_checkpoint(path)
        build_config(json.loads(ckpt.config_json), str(path))
    with mock.patch.object(torch.cuda, "is_available", lambda: False):
        rc, err = run_cli(["train", "--resume", run, "--device", "cuda"])
    check_contract(rc, err, rejected=oracle(read, bad), names=bad, outputs=[], out_dir=d)
    assert rc == 1
    after = tree_hashes(run)
    after.pop(".eventprop.lock", None), before.pop(".eventprop.lock", None)
    assert after == before, "the run folder changed"


# -- mlGeNN checkpoint folders ---------------------------------------------------------------------

mlgenn_file = st.one_of(
    st.none(),                                                     # missing
    arrays,                                                        # wrong dtype / size / values
    st.tuples(st.sampled_from(["truncate", "flip"]), byte_edits),  # damaged .npy
    st.just("npz"),                                                # an archive instead of an array
    st.sampled_from([np.zeros(0, np.float32), np.zeros(1, np.float32), np.arange(5, dtype=np.float64)]),
)


@FUZZ
@given(files=st.tuples(mlgenn_file, mlgenn_file, mlgenn_file))
def test_fuzz_mlgenn_folder(work, files):
    from eventprop_pipeline.mlgenn_import import import_mlgenn

    d = fresh_dir(work)
    ml = d / "ckpt"
    ml.mkdir()
    good = Network.initialise(12, 5, 3, seed=1).weights
    for (name, w), edit in zip(good.items(), files):
        path = ml / f"7-{name}-g.npy"
        if edit is None:
            continue
        if isinstance(edit, np.ndarray):
            np.save(path, edit)
        elif edit == "npz":
            np.savez(path.with_suffix(".tmpz"), a=w)
            path.with_suffix(".tmpz.npz").rename(path)
        else:
            buf = io.BytesIO()
            np.save(buf, w.reshape(-1))
            path.write_bytes(corrupt_bytes(buf.getvalue(), *edit))
    before = tree_hashes(ml)
    out = d / "net.npz"
    rc, err = run_cli(["import-mlgenn", ml, "--epoch", "7", "--out", out])
    check_contract(rc, err, rejected=oracle(import_mlgenn, ml, "7"), names=ml, outputs=[out], out_dir=d)
    assert tree_hashes(ml) == before
    if rc == 0:
        from eventprop_core.network import load_network
        load_network(out)


def test_fuzz_helpers_detect_damage(work):
    """The corruptions above do break files (else the suite would test nothing)."""
    from eventprop_core.network import load_network
    from netx_export.hdf5_io import read_netx

    d = fresh_dir(work)
    corrupt_network(work / "model.npz", d / "a.npz", ("bytes", "truncate", ([100], [0] * 8)))
    assert oracle(load_network, d / "a.npz")
    corrupt_netx(work / "model.net", d / "a.net", ("drop", "layer/1/weight", None))
    assert oracle(read_netx, d / "a.net")
    assert zipfile.is_zipfile(work / "model.npz") and h5py.is_hdf5(work / "model.net")
