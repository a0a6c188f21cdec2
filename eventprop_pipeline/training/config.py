"""Training configuration: frozen dataclasses with defaults, loaded from TOML or YAML and validated.

Every problem is a ConfigError naming the file, the field and the bad value. Unknown keys are
errors (with a did-you-mean), so a typo never silently falls back to a default.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..data.registry import DATASETS
from ..data.synthetic import SyntheticConfig
from eventprop_core.errors import ConfigError
from ..eventprop.options import LOSSES, LossOptions
from eventprop_core.network import DEFAULT_INIT
from eventprop_core.params import ModelParams

DATASET_NAMES = DATASETS
DEVICES = ("cpu", "cuda", "auto")
VALID_SPLIT_AUTO = "auto"        # SSC: its own "valid" split; SHD and synthetic: a held-out fraction of train
VALID_SPLIT_HOLDOUT = "holdout"


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "synthetic"
    data_root: str = ""             # "" = $EVENTPROP_DATA_ROOT or ./datasets
    train_split: str = "train"
    valid_split: str = VALID_SPLIT_AUTO
    test_split: str = "test"
    valid_fraction: float = 0.1     # share of train held out when validating on a hold-out
    valid_seed: int = 0
    train_limit: int = 0            # 0 = all samples (small values are for quick tests)
    test_limit: int = 0


_MODEL_DEFAULTS = ModelParams()   # one source for the neuron parameters' defaults


@dataclass(frozen=True)
class NetworkConfig:
    hidden: int = 128
    tau_mem: float = _MODEL_DEFAULTS.tau_mem
    tau_syn: float = _MODEL_DEFAULTS.tau_syn
    v_thresh: float = _MODEL_DEFAULTS.v_thresh
    dt: float = _MODEL_DEFAULTS.dt
    timesteps: int = 500            # shorter than the paper's 1000: the synthetic set trains in seconds
    init_input_hidden: tuple = DEFAULT_INIT["input_hidden"]     # Normal (mean, sd), the paper's
    init_hidden_hidden: tuple = DEFAULT_INIT["hidden_hidden"]
    init_hidden_output: tuple = DEFAULT_INIT["hidden_output"]
    delay_lines: int = 0            # delayed copies of the input added as further channels (0 = none)
    delay_step: int = 30            # time steps between consecutive copies
    input_pool: int = 1             # adjacent input channels merged into one before the copies (1 = none)

    def input_delays(self):
        from ..data.delay_lines import DelayLines
        return DelayLines(self.delay_lines, self.delay_step, self.input_pool)

    def model_params(self) -> ModelParams:
        return ModelParams(tau_mem=self.tau_mem, tau_syn=self.tau_syn, v_thresh=self.v_thresh, dt=self.dt,
                           timesteps=self.timesteps)

    def init(self) -> dict:
        return {"input_hidden": tuple(self.init_input_hidden), "hidden_hidden": tuple(self.init_hidden_hidden),
                "hidden_output": tuple(self.init_hidden_output)}


@dataclass(frozen=True)
class OptimConfig:
    epochs: int = 20
    batch_size: int = 32
    lr: float = 3e-3
    lr_ease_in: bool = True         # start at lr_start, multiply by lr_ease_factor per batch up to lr
    lr_start: float = 1e-6
    lr_ease_factor: float = 1.05
    plateau_patience: int = 5       # epochs without a better validation accuracy before halving lr (0 = never)
    plateau_factor: float = 0.5
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8


_LOSS_DEFAULTS = LossOptions()


@dataclass(frozen=True)
class LossConfig:
    loss: str = _LOSS_DEFAULTS.loss
    reg_lambda_upper: float = _LOSS_DEFAULTS.reg_lambda_upper
    reg_lambda_lower: float = _LOSS_DEFAULTS.reg_lambda_lower
    reg_nu_upper: float = _LOSS_DEFAULTS.reg_nu_upper
    reg_nu_lower: float = -1.0     # < 0: mlGeNN's rule (LossOptions' None; TOML has no null)


@dataclass(frozen=True)
class AugmentConfig:
    shift: bool = True
    shift_max: int = 40             # channel shift drawn uniformly from [-shift_max, shift_max)
    shift_probability: float = 1.0  # share of training samples shifted
    blend: bool = True
    blend_fraction: float = 0.5     # blended same-class samples added per epoch, as a share of train
    blend_probs: tuple = (0.5, 0.5)  # keep-probability of each spike of the first and second sample
    blend_align: str = "first"      # first: second sample moved onto the first's centre of mass;
                                    # midpoint: both moved half way (the Eventprop paper's code)


@dataclass(frozen=True)
class SilentFixConfig:
    enabled: bool = True
    amount: float = 0.002           # added to the input weights of hidden neurons silent for a whole epoch


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    device: str = "auto"
    eval_batch_size: int = 64
    data: DataConfig = field(default_factory=DataConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    silent_fix: SilentFixConfig = field(default_factory=SilentFixConfig)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for key in _SYNTHETIC_FROM_NETWORK:
            d["synthetic"].pop(key, None)
        return json.loads(json.dumps(d))   # tuples -> lists: the same shape a config file has

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def with_changes(self, **dotted) -> "TrainConfig":
        """Copy with fields replaced, e.g. with_changes(**{"optim.epochs": 3}); validated like a file."""
        return build_config(self.to_dict(), "changes", dotted)


SECTIONS = {"data": DataConfig, "synthetic": SyntheticConfig, "network": NetworkConfig, "optim": OptimConfig,
            "loss": LossConfig, "augment": AugmentConfig, "silent_fix": SilentFixConfig}
TOP_LEVEL = ("seed", "device", "eval_batch_size")
# The synthetic set always uses the network's dt and timesteps; these keys are not accepted in [synthetic].
_SYNTHETIC_FROM_NETWORK = ("dt", "timesteps")

# Short names used by the command line (eventprop train --epochs ...).
OVERRIDE_ALIASES = {
    "dataset": "data.dataset", "data_root": "data.data_root", "epochs": "optim.epochs",
    "batch_size": "optim.batch_size", "hidden": "network.hidden", "lr": "optim.lr", "seed": "seed",
    "device": "device", "timesteps": "network.timesteps",
}


def _section_fields(section: str) -> dict[str, dataclasses.Field]:
    fields = {f.name: f for f in dataclasses.fields(SECTIONS[section])}
    if section == "synthetic":
        for key in _SYNTHETIC_FROM_NETWORK:
            fields.pop(key)
    return fields


def _did_you_mean(name: str, options) -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _where(section: str | None, key: str) -> str:
    return f"[{section}] {key}" if section else key


def _coerce(value, default, source: str, where: str):
    """Check a value against the type of the field's default, converting ints to floats where allowed."""
    def bad(expected: str):
        return ConfigError(f"{source}: {where} = {value!r}: expected {expected}")

    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        value = float(value)
        if not math.isfinite(value):
            raise bad("a finite number")
        return value
    if isinstance(default, str):
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if isinstance(default, tuple):
        if (not isinstance(value, (list, tuple)) or len(value) != len(default)
                or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value)):
            raise bad(f"a list of {len(default)} numbers")
        return tuple(float(v) for v in value)
    raise AssertionError(f"unsupported default type for {where}")


def _check(cond: bool, source: str, where: str, value, rule: str) -> None:
    if not cond:
        raise ConfigError(f"{source}: {where} = {value!r}: {rule}")


# Range and choice rules per field: (predicate, rule text).
_RULES = {
    ("", "seed"): (lambda v: v >= 0, "must be >= 0"),
    ("", "device"): (lambda v: v in DEVICES, f"must be one of {', '.join(DEVICES)}"),
    ("", "eval_batch_size"): (lambda v: v >= 1, "must be >= 1"),
    ("data", "dataset"): (lambda v: v in DATASET_NAMES, f"must be one of {', '.join(DATASET_NAMES)}"),
    ("data", "valid_fraction"): (lambda v: 0.0 < v < 1.0, "must be in (0, 1)"),
    ("data", "valid_seed"): (lambda v: v >= 0, "must be >= 0"),
    ("data", "train_limit"): (lambda v: v >= 0, "must be >= 0 (0 = all samples)"),
    ("data", "test_limit"): (lambda v: v >= 0, "must be >= 0 (0 = all samples)"),
    ("network", "hidden"): (lambda v: v >= 1, "must be >= 1"),
    ("network", "tau_mem"): (lambda v: v > 0, "must be > 0"),
    ("network", "tau_syn"): (lambda v: v > 0, "must be > 0"),
    ("network", "v_thresh"): (lambda v: v > 0, "must be > 0"),
    ("network", "dt"): (lambda v: v > 0, "must be > 0"),
    ("network", "timesteps"): (lambda v: v >= 1, "must be >= 1"),
    ("network", "delay_lines"): (lambda v: v >= 0, "must be >= 0 (0 = no delayed copies)"),
    ("network", "delay_step"): (lambda v: v >= 1, "must be >= 1 (time steps)"),
    ("network", "input_pool"): (lambda v: v >= 1, "must be >= 1 (1 = no pooling)"),
    ("network", "init_input_hidden"): (lambda v: v[1] >= 0, "the sd (second number) must be >= 0"),
    ("network", "init_hidden_hidden"): (lambda v: v[1] >= 0, "the sd (second number) must be >= 0"),
    ("network", "init_hidden_output"): (lambda v: v[1] >= 0, "the sd (second number) must be >= 0"),
    ("optim", "epochs"): (lambda v: v >= 1, "must be >= 1"),
    ("optim", "batch_size"): (lambda v: v >= 1, "must be >= 1"),
    ("optim", "lr"): (lambda v: v > 0, "must be > 0"),
    ("optim", "lr_start"): (lambda v: v > 0, "must be > 0"),
    ("optim", "lr_ease_factor"): (lambda v: v > 1, "must be > 1"),
    ("optim", "plateau_patience"): (lambda v: v >= 0, "must be >= 0 (0 = never reduce)"),
    ("optim", "plateau_factor"): (lambda v: 0 < v < 1, "must be in (0, 1)"),
    ("optim", "adam_beta1"): (lambda v: 0 <= v < 1, "must be in [0, 1)"),
    ("optim", "adam_beta2"): (lambda v: 0 <= v < 1, "must be in [0, 1)"),
    ("optim", "adam_eps"): (lambda v: v > 0, "must be > 0"),
    ("loss", "loss"): (lambda v: v in LOSSES, f"must be one of {', '.join(LOSSES)}"),
    ("loss", "reg_lambda_upper"): (lambda v: v >= 0, "must be >= 0"),
    ("loss", "reg_lambda_lower"): (lambda v: v >= 0, "must be >= 0"),
    ("loss", "reg_nu_upper"): (lambda v: v >= 0, "must be >= 0"),
    ("augment", "shift_max"): (lambda v: v >= 0, "must be >= 0"),
    ("augment", "shift_probability"): (lambda v: 0 <= v <= 1, "must be in [0, 1]"),
    ("augment", "blend_fraction"): (lambda v: v >= 0, "must be >= 0"),
    ("augment", "blend_probs"): (lambda v: all(0 <= p <= 1 for p in v), "both probabilities must be in [0, 1]"),
    ("augment", "blend_align"): (lambda v: v in ("first", "midpoint"), "must be first or midpoint"),
    ("silent_fix", "amount"): (lambda v: v >= 0, "must be >= 0"),
}


def _resolve_key(key: str, source: str) -> tuple[str, str]:
    """'optim.epochs' or an alias like 'epochs' -> ('optim', 'epochs'); top-level keys -> ('', key)."""
    dotted = OVERRIDE_ALIASES.get(key, key)
    if "." in dotted:
        section, name = dotted.split(".", 1)
        if section not in SECTIONS:
            raise ConfigError(f"{source}: unknown section {section!r} in {key!r}{_did_you_mean(section, SECTIONS)}")
        if name not in _section_fields(section):
            raise ConfigError(f"{source}: unknown key {name!r} in [{section}]"
                              f"{_did_you_mean(name, _section_fields(section))}")
        return section, name
    if dotted in TOP_LEVEL:
        return "", dotted
    raise ConfigError(f"{source}: unknown setting {key!r}"
                      f"{_did_you_mean(key, [*TOP_LEVEL, *OVERRIDE_ALIASES])}")


def _check_keys(table: dict, source: str, where: str) -> None:
    """YAML allows keys such as 1 or true; settings are always named."""
    for key, value in table.items():
        if not isinstance(key, str):
            raise ConfigError(f"{source}: {where}key {key!r} is not a name (keys must be strings)")
        if isinstance(value, dict):
            _check_keys(value, source, f"[{key}] ")


def build_config(raw: dict, source: str, overrides: dict | None = None) -> TrainConfig:
    """Validate a parsed config (nested dict) plus overrides ({'optim.epochs': 3} or {'epochs': 3})."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a table of settings, got {type(raw).__name__}")
    _check_keys(raw, source, "")
    if overrides and any(v is not None for v in overrides.values()):
        build_config(raw, source)   # the file's own values are checked even where an option overrides them
    defaults = TrainConfig()
    values: dict[str, dict] = {name: {} for name in SECTIONS}
    top: dict = {}
    for key, value in raw.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: [{key}] must be a table, got {value!r}")
            allowed = _section_fields(key)
            for name, v in value.items():
                if name not in allowed:
                    hint = (" (set it in [network]; the synthetic data always uses the network's value)"
                            if key == "synthetic" and name in _SYNTHETIC_FROM_NETWORK else _did_you_mean(name, allowed))
                    raise ConfigError(f"{source}: unknown key {name!r} in [{key}]{hint}")
                values[key][name] = (v, source)
        elif key in TOP_LEVEL:
            top[key] = (value, source)
        else:
            raise ConfigError(f"{source}: unknown setting {key!r}{_did_you_mean(key, [*TOP_LEVEL, *SECTIONS])}")
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        section, name = _resolve_key(key, "override")
        (values[section] if section else top)[name] = (value, f"override {key}")

    def checked(section: str, name: str, value, src: str, default):
        where = _where(section or None, name)
        value = _coerce(value, default, src, where)
        rule = _RULES.get((section, name))
        if rule:
            _check(rule[0](value), src, where, value, rule[1])
        return value

    top_values = {k: checked("", k, v, src, getattr(defaults, k)) for k, (v, src) in top.items()}
    sections = {}
    for name, cls in SECTIONS.items():
        default_obj = getattr(defaults, name)
        kwargs = {k: checked(name, k, v, src, getattr(default_obj, k)) for k, (v, src) in values[name].items()}
        try:
            sections[name] = dataclasses.replace(default_obj, **kwargs)
        except ConfigError as exc:   # SyntheticConfig's own checks
            raise ConfigError(f"{source}: [{name}] {exc}") from None
    cfg = TrainConfig(**top_values, **sections)
    _check_consistency(cfg, source)
    return cfg


def _check_consistency(cfg: TrainConfig, source: str) -> None:
    net = cfg.network
    if net.tau_mem == net.tau_syn:
        raise ConfigError(f"{source}: [network] tau_mem = tau_syn = {net.tau_mem}: they must differ "
                          "(Eventprop's adjoint divides by their difference)")
    valid = cfg.data.valid_split
    if cfg.data.train_split == cfg.data.test_split:
        raise ConfigError(f"{source}: [data] train_split = test_split = {cfg.data.test_split!r}: "
                          "training on the test split would make the test accuracy meaningless")
    if valid in (cfg.data.train_split, cfg.data.test_split):
        raise ConfigError(f"{source}: [data] valid_split = {valid!r} is also the train or test split; "
                          f"use 'auto', 'holdout' or a separate split")
    if valid not in (VALID_SPLIT_AUTO, VALID_SPLIT_HOLDOUT) and cfg.data.dataset != "ssc":
        raise ConfigError(f"{source}: [data] valid_split = {valid!r}: {cfg.data.dataset} has no validation split; "
                          f"use 'auto' or 'holdout' (a seeded share valid_fraction of train)")


PRESET_DIR = Path(__file__).resolve().parents[1] / "configs"


def presets() -> list[str]:
    """Names of the config presets shipped with the package (configs/NAME.toml)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def resolve_config_path(path) -> Path:
    """A config file path, or the name of a shipped preset (`--config shd` = configs/shd.toml)."""
    path = Path(path)
    if not path.exists() and path.suffix == "" and path.parent == Path("."):
        preset = PRESET_DIR / f"{path.name}.toml"
        if preset.is_file():
            return preset
    return path


def parse_config_file(path) -> dict:
    """The raw settings of a TOML, YAML or JSON file; every problem is a ConfigError naming the file."""
    path = resolve_config_path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a config file")
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found (a file path, or one of the presets: "
                          f"{', '.join(presets())})")
    suffix = path.suffix.lower()
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (invalid byte 0x{exc.object[exc.start]:02x} at byte "
                          f"{exc.start}); save the config as UTF-8") from None
    if suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:    # Python < 3.11
            import tomli as tomllib
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    if suffix in (".yaml", ".yml"):
        import yaml
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from None
        return {} if data is None else data
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: invalid JSON: {exc}") from None
    raise ConfigError(f"{path}: unknown config format {suffix!r}; use .toml, .yaml/.yml or .json")


def load_train_config(path=None, overrides: dict | None = None) -> TrainConfig:
    """Defaults, then the file (TOML, YAML or JSON) if given, then overrides (None values are ignored)."""
    if path is None:
        return build_config({}, "defaults", overrides)
    return build_config(parse_config_file(path), str(path), overrides)
