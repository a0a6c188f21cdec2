"""The pipeline's config file: a training config (TOML/YAML/JSON, see configs/default.toml) plus an
optional [pipeline] table of deployment options (DeployOptions fields)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ..errors import ConfigError
from .options import DataSpec, DeployOptions

PIPELINE_SECTION = "pipeline"


def parse_config_file(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    text = path.read_text()
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:      # Python < 3.11
                import tomli as tomllib
            return tomllib.loads(text)
        if suffix in (".yaml", ".yml"):
            import yaml
            return yaml.safe_load(text) or {}
        if suffix == ".json":
            return json.loads(text)
    except Exception as exc:  # TOMLDecodeError, YAMLError, JSONDecodeError
        raise ConfigError(f"{path}: invalid {suffix[1:].upper()}: {' '.join(str(exc).split())}") from None
    raise ConfigError(f"{path}: unknown config format {suffix!r}; use .toml, .yaml/.yml or .json")


def load_pipeline_config(path, train_overrides: dict | None = None, deploy_overrides: dict | None = None):
    """-> (TrainConfig, DeployOptions). path None: the training defaults and default deploy options."""
    from ..training.config import build_config

    raw = parse_config_file(path) if path is not None else {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a table of settings")
    section = raw.pop(PIPELINE_SECTION, {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [{PIPELINE_SECTION}] must be a table, got {section!r}")
    source = str(path) if path is not None else "defaults"
    train_cfg = build_config(raw, source, train_overrides)
    deploy_values = {**section, **{k: v for k, v in (deploy_overrides or {}).items() if v is not None}}
    return train_cfg, DeployOptions.from_dict(deploy_values, source)


def data_spec_from_train_config(cfg) -> DataSpec:
    """The test split the training run used (same data set, data root, synthetic settings and limit)."""
    d = cfg.data
    return DataSpec(dataset=d.dataset, data_root=d.data_root or None, split=d.test_split,
                    limit=d.test_limit or None, synthetic=dataclasses.asdict(cfg.synthetic))
