"""`eventprop evaluate NET.h5`: the emulator backend through the CLI (the Lava backend is in
test_lava_emulator.py)."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from conftest import FIXTURE_DIR
from eventprop_pipeline.cli.main import main
from eventprop_pipeline.data.spike_files import read_spike_file
from eventprop_pipeline.mlgenn_import import import_mlgenn
from netx_export.emulator import emulate
from netx_export.hdf5_io import write_netx


@pytest.fixture(scope="module")
def fixture_files(tmp_path_factory):
    from netx_export.quantize import quantize

    tmp = tmp_path_factory.mktemp("cli")
    net = import_mlgenn(FIXTURE_DIR, 29)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fx, _ = quantize(net, weight_bits=6)
    net.save(tmp / "net.npz")
    write_netx(fx, tmp / "net.h5")
    return tmp, fx


def test_evaluate_h5_emulator_json_predictions_trace(fixture_files, capsys):
    tmp, fx = fixture_files
    args = ["evaluate", str(tmp / "net.h5"), "--dataset", "shd", "--data-root", str(FIXTURE_DIR), "--limit", "6",
            "--json", "--predictions", str(tmp / "pred.npz"), "--trace", str(tmp / "trace.npz")]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    data = read_spike_file(FIXTURE_DIR / "SHD" / "shd_test.h5", name="shd", timesteps=fx.timesteps, limit=6)
    ref = emulate(fx, data, record_trace=True)
    assert summary["backend"] == "emulator" and summary["n"] == 6
    assert summary["accuracy"] == pytest.approx(np.mean(ref.pred == data.labels))
    with np.load(tmp / "pred.npz", allow_pickle=False) as z:
        np.testing.assert_array_equal(z["pred"], ref.pred)
        np.testing.assert_array_equal(z["label"], data.labels)
        np.testing.assert_allclose(z["score"], ref.score, rtol=1e-6)
    with np.load(tmp / "trace.npz", allow_pickle=False) as z:
        assert z["readout_v"].shape == (6, fx.timesteps + 2, 20) and z["readout_v"].dtype == np.int32
        np.testing.assert_array_equal(z["readout_v"], ref.readout_v)


def test_evaluate_h5_timesteps_option_overrides_file(fixture_files, capsys):
    tmp, fx = fixture_files
    assert main(["evaluate", str(tmp / "net.h5"), "--dataset", "shd", "--data-root", str(FIXTURE_DIR),
                 "--limit", "2", "--timesteps", "50", "--trace", str(tmp / "t50.npz"), "--json"]) == 0
    capsys.readouterr()
    with np.load(tmp / "t50.npz", allow_pickle=False) as z:
        assert z["readout_v"].shape == (2, 52, 20)


@pytest.mark.parametrize("extra, message", [
    (["--backend", "emulator"], "needs a NetX .h5 file"),
    (["--trace", "t.npz"], "only for a .h5 network"),
    (["--lava-samples", "3"], "only with --backend lava"),
])
def test_fixed_point_options_on_npz_are_one_line_errors(fixture_files, capsys, extra, message):
    tmp, _ = fixture_files
    assert main(["evaluate", str(tmp / "net.npz"), "--limit", "1"] + extra) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_h5_with_float_backend_and_lava_options_on_emulator_are_errors(fixture_files, capsys):
    tmp, _ = fixture_files
    assert main(["evaluate", str(tmp / "net.h5"), "--backend", "float"]) == 1
    assert "--backend float needs the float .npz" in capsys.readouterr().err
    assert main(["evaluate", str(tmp / "net.h5"), "--checkpoint", "ck.npz"]) == 1
    assert "only with --backend lava" in capsys.readouterr().err


def test_npz_float_backend_unchanged(fixture_files, capsys):
    tmp, _ = fixture_files
    assert main(["evaluate", str(tmp / "net.npz"), "--dataset", "shd", "--data-root", str(FIXTURE_DIR),
                 "--limit", "4", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["backend"] == "float" and summary["n"] == 4


def test_netx_file_is_recognised_by_content_not_name(fixture_files, capsys):
    import shutil
    tmp, _ = fixture_files
    odd = tmp / "exported.netx"
    shutil.copy(tmp / "net.h5", odd)
    assert main(["evaluate", str(odd), "--dataset", "shd", "--data-root", str(FIXTURE_DIR), "--limit", "2",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["backend"] == "emulator"
