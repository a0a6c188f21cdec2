"""`eventprop pipeline`: train (or load) -> quantize + export -> evaluate -> Lava check -> report."""
from __future__ import annotations

import argparse
import dataclasses

from ..data.registry import DATASETS
from .common import add_debug, progress_enabled

HELP = "run the whole flow: train, quantize + export to NetX, evaluate float vs emulator vs Lava, report"

DESCRIPTION = """\
Run the whole flow in resumable stages, each saving its results under --out:
  1 model     train with --config (or load --model MODEL.npz, or import --mlgenn DIR --epoch E)
  2 export    quantize to Loihi 2 fixed point and write OUT/network.net (NetX HDF5), and the float
              network as OUT/network.nir (NIR, for other simulators)
  3 evaluate  the whole test split with the float model and the bit-exact emulator
  4 sweep     emulator accuracy at other weight bits (--sweep-bits)
  5 lava      Lava's CPU simulator on --lava-samples test samples; its readout voltage traces must
              equal the emulator's on every step, else the pipeline fails naming sample and step
  6 report    OUT/report.md + OUT/figures/*.png (rebuild any time with `eventprop compare OUT`)
OUT/stages.json records each stage; --resume skips stages whose inputs and outputs are unchanged.
The config file is a training config (see configs/default.toml) with an optional [pipeline] table
(weight_bits, scale, lava_samples, sweep_bits, ...; see configs/demo.toml)."""


def register(sub) -> None:
    p = sub.add_parser("pipeline", help=HELP, description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder (created; must be new unless --resume)")
    p.add_argument("--config", metavar="FILE", help="training config with an optional [pipeline] table "
                   "(default: built-in training defaults)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", metavar="MODEL.npz", help="skip training: start from this network file")
    src.add_argument("--mlgenn", metavar="DIR", help="skip training: import this mlGeNN checkpoint folder (needs --epoch)")
    p.add_argument("--epoch", help="epoch key of the mlGeNN files (with --mlgenn)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out, skipping finished stages")
    g = p.add_argument_group("deployment (override the config's [pipeline] table)")
    g.add_argument("--weight-bits", type=int, help="weight bits, 1..8 (default 8)")
    g.add_argument("--scale", choices=("auto", "calibrate", "percentile"),
                   help="quantization step choice: calibrate (searched with the emulator on training samples), "
                        "percentile (the reference exporter's rule, needs no data) or auto (default: calibrate "
                        "when the data set has a training split, else percentile)")
    g.add_argument("--clip", action="store_true", default=None, help="clip unrepresentable weights instead of failing")
    g.add_argument("--lava-samples", type=int, help="test samples run in Lava and compared bit for bit (default 8)")
    g.add_argument("--no-lava", action="store_true", help="skip the Lava check (recorded as skipped, never as passed)")
    g.add_argument("--sweep-bits", help="comma-separated weight bits for the accuracy-vs-bits figure (default 8,6,4,2)")
    g.add_argument("--sweep-samples", type=int, help="test samples used by the sweep (default: all)")
    g.add_argument("--finetune-epochs", type=int,
                   help="fine-tune the export with the fixed-point network in the loop for this many epochs "
                        "(eventprop finetune; default 0 = off)")
    g.add_argument("--device", help="float model / training device: cpu, cuda or auto")
    d = p.add_argument_group("data (override the config's [data] section; needed with --model/--mlgenn "
                             "unless the config names the data)")
    d.add_argument("--dataset", choices=DATASETS, help="data set (default synthetic)")
    d.add_argument("--data-root", help="folder holding SHD/ and SSC/")
    d.add_argument("--split", help="evaluation split (default test)")
    d.add_argument("--limit", type=int, help="evaluate only the first N samples of the split")
    t = p.add_argument_group("training (override the config)")
    t.add_argument("--epochs", type=int)
    t.add_argument("--hidden", type=int)
    t.add_argument("--seed", type=int)
    add_debug(p)
    p.set_defaults(func=run)


def _sweep_bits(text):
    if text is None:
        return None
    from eventprop_core.errors import ConfigError
    try:
        return tuple(int(b) for b in text.split(",") if b.strip())
    except ValueError:
        raise ConfigError(f"--sweep-bits {text!r}: expected comma-separated integers such as 8,6,4,2") from None


def build_run(args):
    """(source, data, deploy, train_config) from the command line."""
    from ..pipeline.config_file import data_spec_from_train_config, load_pipeline_config
    from ..pipeline.options import ModelSource

    train_over = {"optim.epochs": args.epochs, "network.hidden": args.hidden, "seed": args.seed,
                  "device": args.device, "data.dataset": args.dataset,
                  "data.data_root": args.data_root}
    deploy_over = {"weight_bits": args.weight_bits, "scale": args.scale, "clip": args.clip,
                   "lava_samples": args.lava_samples, "sweep_bits": _sweep_bits(args.sweep_bits),
                   "sweep_samples": args.sweep_samples, "device": args.device,
                   "lava": False if args.no_lava else None, "finetune_epochs": args.finetune_epochs}
    train_cfg, deploy = load_pipeline_config(args.config, train_over, deploy_over)
    data = data_spec_from_train_config(train_cfg)
    data = dataclasses.replace(data, **{k: v for k, v in (("split", args.split), ("limit", args.limit)) if v is not None})
    if args.model:
        source = ModelSource("model", path=args.model)
    elif args.mlgenn:
        source = ModelSource("mlgenn", path=args.mlgenn, epoch=args.epoch)
    else:
        source = ModelSource("train", config_path=args.config)
    return source, data, deploy, (train_cfg if source.kind == "train" else None)


def check_options(args) -> None:
    """Options that would be silently ignored are errors."""
    from eventprop_core.errors import ConfigError

    if args.epoch is not None and not args.mlgenn:
        raise ConfigError(f"--epoch {args.epoch}: only with --mlgenn DIR (the epoch key of its files)")
    if args.model or args.mlgenn:
        training = [f"--{k}" for k in ("epochs", "hidden", "seed") if getattr(args, k) is not None]
        if training:
            raise ConfigError(f"{', '.join(training)}: training options, but --{'model' if args.model else 'mlgenn'} "
                              f"skips training; drop them")


def check_paths(args, data) -> None:
    from ..output_paths import check_outputs, data_input_paths, mlgenn_input_paths

    check_outputs({"--config": args.config, "--model": args.model, "--mlgenn": mlgenn_input_paths(args.mlgenn),
                   "data set file": data_input_paths(data.dataset, data.data_root)}, {}, {"--out": args.out})


def run(args) -> int:
    from ..pipeline import run_pipeline

    check_options(args)
    source, data, deploy, train_cfg = build_run(args)
    check_paths(args, data)
    result = run_pipeline(source, args.out, data=data, deploy=deploy, train_config=train_cfg, resume=args.resume,
                          progress=progress_enabled())
    print()
    print(result.summary["accuracy_table"])
    print(f"\nreport: {result.report_path}  (stages run: {', '.join(result.ran) or 'none'}; "
          f"already done: {', '.join(result.skipped) or 'none'})")
    return 0
