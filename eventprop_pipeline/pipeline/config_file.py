"""The pipeline's config file: a training config (TOML/YAML/JSON, see configs/default.toml) plus an
optional [pipeline] table of deployment options (DeployOptions fields)."""
from __future__ import annotations

import dataclasses

from eventprop_core.errors import ConfigError
from .options import DataSpec, DeployOptions

PIPELINE_SECTION = "pipeline"


def load_pipeline_config(path, train_overrides: dict | None = None, deploy_overrides: dict | None = None):
    """-> (TrainConfig, DeployOptions). path None: the training defaults and default deploy options."""
    from ..training.config import build_config, parse_config_file

    raw = parse_config_file(path) if path is not None else {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a table of settings")
    section = raw.pop(PIPELINE_SECTION, {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [{PIPELINE_SECTION}] must be a table, got {section!r}")
    source = str(path) if path is not None else "defaults"
    train_cfg = build_config(raw, source, train_overrides)
    DeployOptions.from_dict(section, source)   # the file's own values are checked even when overridden
    deploy_values = {**section, **{k: v for k, v in (deploy_overrides or {}).items() if v is not None}}
    return train_cfg, DeployOptions.from_dict(deploy_values, source)


def data_spec_from_train_config(cfg) -> DataSpec:
    """The test split the training run used (same data set, data root, synthetic settings and limit)."""
    d = cfg.data
    return DataSpec(dataset=d.dataset, data_root=d.data_root or None, split=d.test_split,
                    limit=d.test_limit or None, synthetic=dataclasses.asdict(cfg.synthetic))
