"""Training configuration: defaults, shipped files, and clear errors naming file, field and value."""
from pathlib import Path

import pytest

from eventprop_core.errors import ConfigError, PipelineError
from eventprop_pipeline.training import TrainConfig, load_train_config

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def error_of(tmp_path, text: str, name: str = "c.toml", overrides=None) -> str:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_train_config(path, overrides)
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_default_file_documents_exactly_the_builtin_defaults():
    assert load_train_config(CONFIGS / "default.toml") == TrainConfig()
    assert load_train_config(None) == TrainConfig()


def test_smoke_config_loads_and_is_small():
    cfg = load_train_config(CONFIGS / "smoke.toml")
    assert cfg.network.hidden < 64 and cfg.network.timesteps <= 200 and cfg.synthetic.n_train <= 200


def test_values_and_overrides_apply(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("seed = 3\n[optim]\nepochs = 7\nlr = 2\n[network]\ninit_hidden_output = [0, 0.5]\n")
    cfg = load_train_config(path, {"epochs": 9, "hidden": 17, "optim.batch_size": 8, "lr": None})
    assert (cfg.seed, cfg.optim.epochs, cfg.network.hidden, cfg.optim.batch_size) == (3, 9, 17, 8)
    assert cfg.optim.lr == 2.0 and isinstance(cfg.optim.lr, float)      # int accepted for a float field
    assert cfg.network.init_hidden_output == (0.0, 0.5)


def test_yaml_gives_the_same_config_as_toml(tmp_path):
    (tmp_path / "c.yaml").write_text("seed: 3\noptim:\n  epochs: 7\naugment:\n  blend: false\n")
    (tmp_path / "c.toml").write_text("seed = 3\n[optim]\nepochs = 7\n[augment]\nblend = false\n")
    a, b = load_train_config(tmp_path / "c.yaml"), load_train_config(tmp_path / "c.toml")
    assert a == b and a.optim.epochs == 7 and a.augment.blend is False


def test_round_trip_through_json(tmp_path):
    cfg = load_train_config(CONFIGS / "smoke.toml")
    (tmp_path / "c.json").write_text(cfg.to_json())
    assert load_train_config(tmp_path / "c.json") == cfg


def test_unknown_keys_are_errors_with_a_suggestion(tmp_path):
    msg = error_of(tmp_path, "[optim]\nepoch = 3\n")
    assert "c.toml" in msg and "'epoch'" in msg and "[optim]" in msg and "did you mean 'epochs'" in msg
    msg = error_of(tmp_path, "[optimizer]\nlr = 1\n")
    assert "'optimizer'" in msg and "did you mean 'optim'" in msg
    msg = error_of(tmp_path, "sed = 1\n")
    assert "'sed'" in msg and "did you mean 'seed'" in msg
    msg = error_of(tmp_path, "[synthetic]\ntimesteps = 100\n")
    assert "[network]" in msg


@pytest.mark.parametrize("text, field, value", [
    ("[optim]\nepochs = 0\n", "epochs", "0"),
    ("[optim]\nlr = -0.1\n", "lr", "-0.1"),
    ("[optim]\nbatch_size = 2.5\n", "batch_size", "2.5"),
    ("[network]\nhidden = \"many\"\n", "hidden", "'many'"),
    ("[network]\ntau_mem = 5.0\n", "tau_mem", "5.0"),               # equals tau_syn
    ("device = \"gpu\"\n", "device", "'gpu'"),
    ("[data]\ndataset = \"mnist\"\n", "dataset", "'mnist'"),
    ("[data]\nvalid_fraction = 1.5\n", "valid_fraction", "1.5"),
    ("[augment]\nblend_probs = [0.5]\n", "blend_probs", "[0.5]"),
    ("[augment]\nshift = 1\n", "shift", "1"),
    ("[loss]\nloss = \"mse\"\n", "loss", "'mse'"),
    ("[synthetic]\nn_classes = 500\n", "n_classes", "500"),
    ("[data]\nvalid_split = \"valid\"\n", "valid_split", "'valid'"),   # synthetic has no valid split
])
def test_bad_values_name_file_field_and_value(tmp_path, text, field, value):
    msg = error_of(tmp_path, text)
    assert "c.toml" in msg and field in msg and value in msg


def test_bad_override_names_the_option(tmp_path):
    with pytest.raises(ConfigError, match=r"override epochs.*epochs = -2"):
        load_train_config(None, {"epochs": -2})
    with pytest.raises(ConfigError, match="did you mean 'hidden'"):
        load_train_config(None, {"hiden": 3})


def test_unreadable_files(tmp_path):
    assert "invalid TOML" in error_of(tmp_path, "[optim\nlr = 1\n")
    assert "invalid YAML" in error_of(tmp_path, "optim: [1, 2\n", name="c.yaml")
    assert "unknown config format" in error_of(tmp_path, "x", name="c.ini")
    with pytest.raises(PipelineError, match="not found"):
        load_train_config(tmp_path / "missing.toml")


def test_ssc_cannot_train_or_validate_on_the_test_split():
    from eventprop_pipeline.training.config import build_config
    with pytest.raises(ConfigError, match="train_split = test_split"):
        build_config({"data": {"dataset": "ssc", "train_split": "test"}}, "cfg")
    with pytest.raises(ConfigError, match="valid_split = 'test' is also the train or test split"):
        build_config({"data": {"dataset": "ssc", "valid_split": "test"}}, "cfg")
    assert build_config({"data": {"dataset": "ssc", "valid_split": "valid"}}, "cfg").data.valid_split == "valid"
