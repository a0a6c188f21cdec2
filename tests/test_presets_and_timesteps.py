"""Shipped presets (the paper's recipes), `train --timesteps`, and the warning when T crops spikes."""
from __future__ import annotations

import warnings

import pytest

from eventprop_pipeline.cli.main import _one_line_warnings, build_parser
from eventprop_pipeline.cli.train_cmd import _overrides
from eventprop_pipeline.data.binning import CropWarning
from eventprop_pipeline.data.registry import load_dataset
from eventprop_pipeline.data.spike_files import write_spike_file
from eventprop_pipeline.training.config import load_train_config, presets


@pytest.mark.parametrize("name,dataset", [("shd", "shd"), ("ssc", "ssc")])
def test_paper_presets_by_name(name, dataset):
    cfg = load_train_config(name)
    assert cfg.data.dataset == dataset
    n, o, lo = cfg.network, cfg.optim, cfg.loss
    assert (n.hidden, n.timesteps, n.dt, n.tau_mem, n.tau_syn) == (256, 1000, 1.0, 20.0, 5.0)
    assert (o.lr, o.batch_size, o.lr_ease_in, o.lr_start, o.lr_ease_factor) == (1e-3, 32, True, 1e-6, 1.05)
    assert (lo.reg_lambda_upper, lo.reg_lambda_lower, lo.reg_nu_upper) == (2.5e-10, 2.5e-10, 14.0)
    assert cfg.augment.shift and cfg.augment.shift_max == 40
    assert {"shd", "ssc"} <= set(presets())


def test_measured_recipe_files_load():
    """Every config the README's recipe table names is a valid config (unknown keys are errors)."""
    from pathlib import Path
    recipes = sorted((Path(__file__).resolve().parents[1] / "benchmarks" / "recipes").glob("*.toml"))
    assert len(recipes) >= 6
    for path in recipes:
        cfg = load_train_config(path)
        assert cfg.data.dataset == "shd" and cfg.network.hidden == 256, path.name
    paper = load_train_config(recipes[0].parent / "mlgenn_paper_augment.toml")
    assert (paper.augment.blend_align, paper.augment.blend_fraction, paper.augment.shift_max) == ("midpoint", 1.0, 40)


def test_timesteps_option_overrides_the_config():
    args = build_parser().parse_args(["train", "--config", "shd", "--timesteps", "1400", "--out", "x"])
    cfg = load_train_config(args.config, _overrides(args))
    assert cfg.network.timesteps == 1400
    args = build_parser().parse_args(["train", "--config", "shd", "--out", "x"])
    assert load_train_config(args.config, _overrides(args)).network.timesteps == 1000


def _file_with_late_spikes(root):
    # Sample 0: spikes at 10, 50 and 250 ms; sample 1: 20 ms and 150.5 ms (float16-exact values).
    times = [[0.010, 0.050, 0.250], [0.020, 0.1505]]
    units = [[1, 2, 3], [4, 5]]
    write_spike_file(root / "SHD" / "shd_test.h5", times, units, [0, 1])


def test_cropping_warns_with_the_share_dropped(tmp_path):
    (tmp_path / "SHD").mkdir()
    _file_with_late_spikes(tmp_path)
    with pytest.warns(CropWarning) as record:
        data = load_dataset("shd", "test", data_root=tmp_path, timesteps=100)
    message = str(record[0].message)
    # 2 of the 5 spikes fall at or after 100 ms; the last lies in bin 250 (0.25 is exact in float16), so 251 bins keep all.
    assert "shd_test.h5" in message and "2 of 5 spikes (40.0 %" in message and "--timesteps 251" in message
    assert data.n_cropped == 2 and len(data.steps) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        full = load_dataset("shd", "test", data_root=tmp_path, timesteps=251)
    assert full.n_cropped == 0 and len(full.steps) == 5


def test_cli_prints_the_crop_warning_on_one_line(capsys):
    saved = warnings.showwarning
    try:
        _one_line_warnings()
        warnings.warn("f.h5: T = 10 steps crops", CropWarning)
    finally:
        warnings.showwarning = saved
    assert capsys.readouterr().err == "warning: f.h5: T = 10 steps crops\n"


def test_speech_preset_is_the_measured_delay_line_recipe():
    cfg = load_train_config("speech")
    n = cfg.network
    assert n.input_delays().n_channels(700) == 700          # 175 pooled channels x (1 + 3 copies)
    assert (n.input_pool, n.delay_lines, n.delay_step, n.timesteps, n.hidden) == (4, 3, 30, 1000, 256)
    assert cfg.optim.epochs <= 100 and not cfg.augment.blend and cfg.augment.shift_max == 5
