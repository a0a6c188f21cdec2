"""`eventprop demo`: the whole pipeline on the built-in synthetic data (what `make demo` runs)."""
from __future__ import annotations

from pathlib import Path

from eventprop_core.errors import ConfigError
from .common import add_debug, progress_enabled

HELP = "run the whole pipeline (train, export, float vs emulator vs Lava, report) on built-in synthetic data"
DEMO_CONFIG = "demo.toml"


def register(sub) -> None:
    p = sub.add_parser("demo", help=HELP, description=HELP + ". Uses configs/demo.toml (a small network and data "
                       "set: about 2 minutes on a 2-core CPU after the first install). Rerunning continues the run in --out; "
                       "finished stages are not redone.")
    p.add_argument("--out", default="runs/demo", help="run folder (default runs/demo)")
    p.add_argument("--config", default=None, help=f"pipeline config (default: configs/{DEMO_CONFIG})")
    p.add_argument("--no-lava", action="store_true", help="skip the Lava check (recorded as skipped)")
    add_debug(p)
    p.set_defaults(func=run)


def demo_config_path() -> Path:
    """The demo preset shipped inside the package (configs/ in the source tree links to it)."""
    path = Path(__file__).resolve().parents[1] / "configs" / DEMO_CONFIG
    if not path.is_file():
        raise ConfigError(f"{path}: the packaged demo config is missing (broken install?); pass --config FILE")
    return path


def run(args) -> int:
    from ..pipeline import ModelSource, run_pipeline
    from ..pipeline.config_file import data_spec_from_train_config, load_pipeline_config

    config = Path(args.config) if args.config else demo_config_path()
    train_cfg, deploy = load_pipeline_config(config, deploy_overrides={"lava": False if args.no_lava else None})
    from ..output_paths import check_outputs
    check_outputs({"--config": config}, {}, {"--out": args.out})
    print(f"demo: {config} -> {args.out}")
    result = run_pipeline(ModelSource("train", config_path=str(config)), args.out,
                          data=data_spec_from_train_config(train_cfg), deploy=deploy, train_config=train_cfg,
                          resume=True, progress=progress_enabled())
    print()
    print(result.summary["accuracy_table"])
    print(f"\nreport: {result.report_path} (figures in {Path(args.out) / 'figures'})")
    return 0
