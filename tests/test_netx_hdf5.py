"""NetX HDF5 writer/reader: layout (docs/netx_format.md), Lava loading, round trip, rejection of bad files."""
from __future__ import annotations

import hashlib
import json
import shutil

import h5py
import numpy as np
import pytest

from eventprop_core.errors import PipelineError
from netx_export.fixed_point import NON_SPIKING_VTH, FixedPointLayer, FixedPointNetwork
from netx_export.hdf5_io import METADATA_PATH, NetxFileError, read_netx, write_netx

N_IN, N_HID, N_OUT = 7, 5, 3


def make_fxnet(seed: int = 0, bits: int = 8, bias: bool = False) -> FixedPointNetwork:
    rng = np.random.default_rng(seed)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1)
    hidden = FixedPointLayer("dense_rec", rng.integers(lo, hi, (N_HID, N_IN)), i_decay=743, v_decay=200,
                             vth_mant=90, weight_rec=rng.integers(lo, hi, (N_HID, N_HID)), step=0.0123,
                             weight_bits=bits, bias=rng.integers(-10, 10, N_HID) if bias else None)
    readout = FixedPointLayer("dense", rng.integers(lo, hi, (N_OUT, N_HID)), i_decay=743, v_decay=200,
                              vth_mant=NON_SPIKING_VTH, step=0.0456, weight_bits=bits)
    return FixedPointNetwork(N_IN, hidden, readout, timesteps=50, dt=1.0,
                             metadata={"params": {"tau_mem": 20.0, "tau_syn": 5.0}, "note": "test"})


def md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def good_file(tmp_path):
    return write_netx(make_fxnet(), tmp_path / "net.h5")


def test_layout_field_by_field(good_file):
    fx = make_fxnet()
    with h5py.File(good_file, "r") as f:
        assert sorted(f.keys()) == ["eventprop", "layer"]
        assert sorted(f["layer"].keys()) == ["0", "1", "2"]
        l0 = f["layer/0"]
        assert sorted(l0.keys()) == ["shape", "type"]          # no neuron group on the input
        assert l0["type"][0] == b"input" and l0["type"].dtype == np.dtype("S10")
        assert l0["shape"][()].tolist() == [N_IN] and l0["shape"].dtype.kind == "i"
        for name, layer, kind, n_pre in (("1", fx.hidden, b"dense_rec", N_IN), ("2", fx.readout, b"dense", N_HID)):
            g = f["layer"][name]
            assert g["type"][0] == kind
            assert g["shape"][()].tolist() == [layer.size]
            assert g["weight"].dtype.kind == "i" and g["weight"].shape == (layer.size, n_pre)
            np.testing.assert_array_equal(g["weight"][()], layer.weight)
            assert "bias" not in g
            n = g["neuron"]
            assert n["type"][0] == b"CUBA"
            for field, value in (("iDecay", 743), ("vDecay", 200), ("vThMant", layer.vth_mant),
                                 ("refDelay", 1), ("gradedSpike", 0)):
                assert n[field].shape == () and n[field].dtype.kind == "i", field
                assert int(n[field][()]) == value, field
        np.testing.assert_array_equal(f["layer/1/weight_rec"][()], fx.hidden.weight_rec)
        assert "weight_rec" not in f["layer/2"]
        assert int(f["layer/2/neuron/vThMant"][()]) >= 2**17
        assert METADATA_PATH.split("/")[1] in f["eventprop"]


def test_round_trip_values_and_bytes(tmp_path, good_file):
    fx = read_netx(good_file)
    ref = make_fxnet()
    assert fx.n_input == N_IN and fx.timesteps == 50 and fx.dt == 1.0
    assert fx.metadata == ref.metadata
    for a, b in zip(fx.layers, ref.layers):
        assert a.kind == b.kind and a.weight.dtype == np.int64
        np.testing.assert_array_equal(a.weight, b.weight)
        assert (a.i_decay, a.v_decay, a.vth_mant, a.step, a.weight_bits) == \
               (b.i_decay, b.v_decay, b.vth_mant, b.step, b.weight_bits)
    np.testing.assert_array_equal(fx.hidden.weight_rec, ref.hidden.weight_rec)
    again = write_netx(fx, tmp_path / "again.h5")
    assert md5(again) == md5(good_file)


def test_bias_round_trip(tmp_path):
    path = write_netx(make_fxnet(bias=True), tmp_path / "b.h5")
    with h5py.File(path, "r") as f:
        assert f["layer/1/bias"].dtype.kind == "i"
    np.testing.assert_array_equal(read_netx(path).hidden.bias, make_fxnet(bias=True).hidden.bias)


LAVA_LOAD = """
import json, sys
import numpy as np
from lava.lib.dl.netx import hdf5
net = hdf5.Network(net_config=sys.argv[1])
syn = net.layers[0].synapse.proc_params._parameters
print(json.dumps({"types": [type(layer).__name__ for layer in net.layers],
                  "shapes": [[int(n) for n in layer.shape] for layer in net.layers],
                  # .init, never .get() (hangs on HDF5 scalars)
                  "du": int(net.layers[0].neuron.du.init), "dv": int(net.layers[0].neuron.dv.init),
                  "vth": int(net.layers[0].neuron.vth.init), "readout_vth": int(net.layers[1].neuron.vth.init),
                  "weight": (syn["weights"] * 2.0 ** syn["weight_exp"]).tolist()}))
"""


@pytest.mark.lava
def test_netx_loads_the_file(good_file):
    from conftest import run_in_lava

    got = json.loads(run_in_lava(LAVA_LOAD, str(good_file)).strip().splitlines()[-1])
    assert got["types"] == ["RecurrentDense", "Dense"]
    assert got["shapes"] == [[N_HID], [N_OUT]]
    # netx runs du = iDecay - 1 (Lava adds 1 back).
    assert got["du"] == 743 - 1 and got["dv"] == 200 and got["vth"] == 90
    assert got["readout_vth"] == NON_SPIKING_VTH
    # netx re-encodes weights as mantissa * 2^weight_exp (optimize_weight_bits); the value must survive.
    np.testing.assert_array_equal(np.array(got["weight"]), make_fxnet().hidden.weight)


# ------------------------------------------------------------------------------------------ bad files

def _replace(path, name, data):
    with h5py.File(path, "r+") as f:
        del f[name]
        f.create_dataset(name, data=data)


def _bad_float_weight(p):
    _replace(p, "layer/1/weight", make_fxnet().hidden.weight.astype(np.float32) + 0.5)


def _bad_input_neuron(p):
    with h5py.File(p, "r+") as f:
        f.copy(f["layer/1/neuron"], f["layer/0"], "neuron")


def _bad_weight_range(p):
    w = make_fxnet().hidden.weight.copy()
    w[2, 3] = 200                                   # beyond the declared 8 bits
    _replace(p, "layer/1/weight", w)


def _bad_i_decay(p):
    _replace(p, "layer/1/neuron/iDecay", np.int32(5000))


def _bad_v_decay(p):
    _replace(p, "layer/2/neuron/vDecay", np.int32(-1))


def _bad_hidden_vth(p):
    _replace(p, "layer/1/neuron/vThMant", np.int32(2**24))


def _bad_float_vth(p):
    _replace(p, "layer/1/neuron/vThMant", np.float64(90.0))


def _bad_shape(p):
    _replace(p, "layer/1/shape", np.array([N_HID + 1]))


def _bad_rec_shape(p):
    _replace(p, "layer/1/weight_rec", np.zeros((N_HID, N_HID + 1), np.int16))


def _bad_readout_pre(p):
    _replace(p, "layer/2/weight", np.zeros((N_OUT, N_HID + 2), np.int16))


def _missing_layer(p):
    with h5py.File(p, "r+") as f:
        del f["layer/1"]


def _missing_field(p):
    with h5py.File(p, "r+") as f:
        del f["layer/1/neuron/vDecay"]


def _missing_rec(p):
    with h5py.File(p, "r+") as f:
        del f["layer/1/weight_rec"]


def _wrong_type(p):
    _replace(p, "layer/2/type", np.array([b"dense_rec"], "S10"))


def _delay_field(p):
    with h5py.File(p, "r+") as f:
        f.create_dataset("layer/1/delay", data=np.int32(2))


def _bad_metadata(p):
    _replace(p, METADATA_PATH, np.bytes_(b"{not json"))


def _truncated(p):
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _garbage(p):
    p.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(200))


BAD_FILES = {
    "float weights": (_bad_float_weight, "/layer/1/weight: dtype float32"),
    "input neuron group": (_bad_input_neuron, "/layer/0/neuron"),
    "weight beyond bits": (_bad_weight_range, "/layer/1/weight: 1 value(s) outside the declared 8-bit range"),
    "iDecay range": (_bad_i_decay, "/layer/1/neuron/iDecay: 5000"),
    "vDecay range": (_bad_v_decay, "/layer/2/neuron/vDecay: -1"),
    "vThMant beyond int32": (_bad_hidden_vth, "/layer/1/neuron/vThMant: 16777216 is outside [0, 16777215]"),
    "float vThMant": (_bad_float_vth, "/layer/1/neuron/vThMant: dtype float64"),
    "shape mismatch": (_bad_shape, "/layer/1/weight: shape (5, 7) does not match shape [6]"),
    "weight_rec shape": (_bad_rec_shape, "/layer/1/weight_rec: shape (5, 6)"),
    "readout pre size": (_bad_readout_pre, "/layer/2/weight: shape (3, 7), expected (3, 5)"),
    "missing layer": (_missing_layer, "/layer holds ['0', '2'], expected layers named 0, 1, ..., n-1"),
    "missing field": (_missing_field, "/layer/1/neuron/vDecay: missing"),
    "missing weight_rec": (_missing_rec, "/layer/1/weight_rec: missing"),
    "wrong type": (_wrong_type, "/layer/2/weight_rec: missing"),
    "delay on dense_rec": (_delay_field, "/layer/1/delay: a dense_rec layer with 7 inputs and 5 neurons cannot have delays"),
    "bad metadata": (_bad_metadata, "/eventprop/metadata: not valid JSON"),
    "truncated": (_truncated, "truncated or corrupt"),
    "garbage": (_garbage, "truncated or corrupt"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_rejected_with_reason(tmp_path, good_file, case):
    spoil, reason = BAD_FILES[case]
    path = tmp_path / "bad.h5"
    shutil.copy(good_file, path)
    spoil(path)
    with pytest.raises(NetxFileError) as info:
        read_netx(path)
    msg = str(info.value)
    assert str(path) in msg and reason in msg, msg
    assert isinstance(info.value, PipelineError) and "\n" not in msg


def test_missing_file(tmp_path):
    with pytest.raises(NetxFileError, match="not found"):
        read_netx(tmp_path / "nope.h5")


def _float_weights(fx):
    fx.hidden.weight = fx.hidden.weight.astype(np.float64)


def _too_many_bits(fx):
    fx.readout.weight_bits = 4                       # weights are 8-bit


def _decay(fx):
    fx.hidden.i_decay = 0


def _spiking_readout(fx):
    fx.readout.vth_mant = 2**16


def _rec_on_readout(fx):
    fx.readout.weight_rec = np.zeros((N_OUT, N_OUT), np.int64)


def _bias_range(fx):
    fx.hidden.bias = np.full(N_HID, 5000, np.int64)


def _all_zero_readout(fx):
    fx.readout.weight = np.zeros_like(fx.readout.weight)


def _metadata_not_json(fx):
    fx.metadata = {"x": object()}


BAD_NETWORKS = {
    "float weights": (_float_weights, "/layer/1/weight: dtype float64"),
    "bits": (_too_many_bits, "/layer/2/weight:"),
    "decay": (_decay, "/layer/1/neuron/iDecay: 0 is outside [1, 4096]"),
    "spiking readout": (_spiking_readout, "/layer/2/neuron/vThMant: 65536"),
    "rec on readout": (_rec_on_readout, "/layer/2/weight_rec"),
    "bias range": (_bias_range, "/layer/1/bias"),
    "metadata": (_metadata_not_json, "not plain JSON"),
    "all-zero layer": (_all_zero_readout, "/layer/2/weight: every weight is zero"),
}


@pytest.mark.parametrize("case", sorted(BAD_NETWORKS))
def test_writer_rejects_before_writing(tmp_path, case):
    spoil, reason = BAD_NETWORKS[case]
    fx = make_fxnet()
    spoil(fx)
    path = tmp_path / "out.h5"
    with pytest.raises(NetxFileError, match=None) as info:
        write_netx(fx, path)
    assert reason in str(info.value) and str(path) in str(info.value), str(info.value)
    assert list(tmp_path.iterdir()) == []         # nothing written, no temporary left behind


def test_writer_keeps_old_file_on_error(tmp_path, good_file):
    before = md5(good_file)
    fx = make_fxnet()
    fx.hidden.v_decay = 4096
    with pytest.raises(NetxFileError):
        write_netx(fx, good_file)
    assert md5(good_file) == before


def test_foreign_file_without_metadata(tmp_path, good_file):
    with h5py.File(good_file, "r+") as f:
        del f["eventprop"]
    fx = read_netx(good_file)
    assert fx.hidden.step == 1.0 and fx.hidden.weight_bits == 8 and fx.timesteps == 1000
    np.testing.assert_array_equal(fx.readout.weight, make_fxnet().readout.weight)
