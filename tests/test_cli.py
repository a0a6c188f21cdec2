"""CLI behaviour: self-explaining --help, and one-line errors (no traceback) for bad input."""
import subprocess
import sys

import numpy as np
import pytest

from eventprop_pipeline.cli.main import build_parser, main


def subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


def test_every_subcommand_has_a_help(capsys):
    names = subcommands()
    assert {"evaluate", "import-mlgenn", "demo", "make-synthetic"} <= set(names)
    for name in names:
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert f"usage: eventprop {name}" in out and len(out.splitlines()) > 4


def one_line_error(capsys, argv):
    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_bad_inputs_give_one_line_errors(tmp_path, capsys):
    from eventprop_pipeline import Network
    model = tmp_path / "m.npz"
    Network.initialise(700, 8, 20, seed=0).save(model)
    err = one_line_error(capsys, ["evaluate", str(model), "--dataset", "shd", "--data-root", str(tmp_path / "none")])
    assert "data root" in err and "none" in err
    err = one_line_error(capsys, ["evaluate", str(model), "--dataset", "shd", "--data-root", str(tmp_path)])
    assert "shd_test.h5" in err and "zenkelab.org" in err
    (tmp_path / "SHD").mkdir()
    (tmp_path / "SHD" / "shd_test.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    err = one_line_error(capsys, ["evaluate", str(model), "--dataset", "shd", "--data-root", str(tmp_path)])
    assert "shd_test.h5" in err and "cannot read HDF5" in err
    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(model.read_bytes()[:300])
    err = one_line_error(capsys, ["evaluate", str(trunc)])
    assert "trunc.npz" in err
    np.save(tmp_path / "3-input_hidden-g.npy", np.zeros(700 * 8, np.float32))
    np.save(tmp_path / "3-hidden_hidden-g.npy", np.zeros(8 * 8, np.float32))
    np.save(tmp_path / "3-hidden_output-g.npy", np.zeros(8 * 20 + 1, np.float32))
    err = one_line_error(capsys, ["import-mlgenn", str(tmp_path), "--epoch", "3", "--out", str(tmp_path / "o.npz")])
    assert "3-hidden_output-g.npy" in err and "not a multiple" in err
    assert not (tmp_path / "o.npz").exists()


def test_unwritable_output_is_a_one_line_error(tmp_path, capsys):
    from conftest import FIXTURE_DIR
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    err = one_line_error(capsys, ["import-mlgenn", str(FIXTURE_DIR), "--epoch", "29",
                                  "--out", str(blocker / "model.npz")])
    assert "a_file" in err


def test_unknown_dataset_is_rejected_by_the_parser(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "x.npz", "--dataset", "mnist"])
    assert e.value.code == 2
    assert "invalid choice: 'mnist'" in capsys.readouterr().err


def test_console_script_hides_traceback_unless_debug(tmp_path):
    cmd = [sys.executable, "-m", "eventprop_pipeline.cli.main", "evaluate", str(tmp_path / "missing.npz")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip() == f"error: {tmp_path / 'missing.npz'}: network file not found"
    r = subprocess.run(cmd + ["--debug"], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_missing_cuda_is_a_clear_error_before_the_run_folder_exists(tmp_path, capsys, monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "run"
    err = one_line_error(capsys, ["train", "--config", "configs/smoke.toml", "--device", "cuda", "--out", str(out)])
    assert "CUDA is not available" in err
    assert not out.exists()


def test_bad_counts_are_option_errors(tmp_path, capsys):
    from eventprop_pipeline import Network
    model = tmp_path / "m.npz"
    Network.initialise(700, 8, 20, seed=0).save(model)
    assert "--batch-size must be >= 1, got 0" in one_line_error(capsys, ["evaluate", str(model), "--batch-size", "0"])
    assert "--limit must be >= 1" in one_line_error(capsys, ["evaluate", str(model), "--limit", "-1"])
    assert "--limit must be >= 1" in one_line_error(capsys, ["evaluate", str(model), "--limit", "0"])
