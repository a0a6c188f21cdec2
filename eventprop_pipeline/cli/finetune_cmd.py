"""`eventprop finetune`: continue training with the fixed-point (Loihi 2) network in the loop."""
from __future__ import annotations

import argparse
import sys

from ..data.registry import DATASETS
from ..data.spike_files import DATA_ROOT_ENV
from eventprop_core.errors import ConfigError
from .common import add_debug, print_json, progress_enabled

HELP = "fine-tune a network with its fixed-point Loihi 2 version in the loop; writes the NetX file"

DESCRIPTION = """\
Recover the accuracy lost by quantizing to few weight bits, by training against the fixed-point
network itself (hardware in the loop, with the bit-exact emulator instead of a chip):

  1. quantize MODEL at --weight-bits (--scale calibrate: steps that agree most with the float
     model on training samples; or percentile). Steps, decays and threshold then stay fixed.
  2. every batch: the emulator's integer dynamics forward, the Eventprop backward pass from that
     fixed-point spike record, Adam on float "shadow" weights (in quantization levels), which are
     re-quantized for the next batch (straight-through). Weights end on the quantization grid.
  3. after each epoch: emulator accuracy on a validation hold-out of the train split (10 %, the
     one `eventprop train` holds out); the best epoch (epoch 0, the plain export, included) is kept.

Data: by default the data set MODEL was trained on (from its provenance: data set, data root,
synthetic settings, validation hold-out), binned with MODEL's dt and time steps.

Written under RUN_DIR:
  network.net      the fine-tuned NetX file (for Lava; its emulator test accuracy is reported)
  initial.net      the plain export it started from
  model.npz        the same weights as a float network file (exactly on the grid)
  checkpoint.npz   shadow weights, Adam state, history after the last completed epoch
  metrics.csv/.jsonl, config.json, summary.json (float, before and after accuracies on the test split)

Ctrl-C keeps the last completed epoch; `eventprop finetune --resume RUN_DIR` continues and ends with
exactly the weights of an uninterrupted run. Design and approximations: docs/finetune.md.

Examples:
  eventprop finetune runs/syn/best.npz --weight-bits 2 --out runs/ft2   # data of its training run
  eventprop finetune model.npz --weight-bits 4 --dataset shd --data-root datasets --epochs 10 --out runs/ft4
  eventprop finetune --resume runs/ft4 --epochs 20
"""


def register(sub) -> None:
    p = sub.add_parser("finetune", help=HELP, description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="float network file (.npz) to start from (not with --resume)")
    p.add_argument("--out", metavar="RUN_DIR", help="folder for the run (must not hold another run unless --force)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    p.add_argument("--force", action="store_true", help="start over in an --out folder that already holds a run")
    p.add_argument("--weight-bits", type=int, default=2, help="weight bits, 1..8 (default 2)")
    p.add_argument("--scale", choices=("calibrate", "percentile"), default="calibrate",
                   help="initial quantization steps (default calibrate, on up to --calibration-samples "
                        "training samples)")
    p.add_argument("--calibration-samples", type=int, default=256, help="default 256")
    p.add_argument("--clip", action="store_true", help="clamp decays / thresholds Loihi cannot represent")
    p.add_argument("--epochs", type=int, help="fine-tuning epochs (default 20; with --resume: a new total)")
    p.add_argument("--batch-size", type=int, default=32, help="samples per gradient step (default 32)")
    p.add_argument("--lr", type=float, default=None,
                   help="Adam step in quantization levels (default 0.02 * 2^(B-2): 0.02 of a 2-bit level at "
                        "every width, e.g. 0.02 at 2 bits, 0.08 at 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the batch order (default 0)")
    g = p.add_argument_group("data (binned with the model's dt and time steps)")
    g.add_argument("--dataset", default=None, choices=DATASETS,
                   help="default: the data set MODEL was trained on (its provenance), else synthetic")
    g.add_argument("--data-root", default=None, help=f"folder holding SHD/ and SSC/ (default: MODEL's training "
                                                     f"run's, else ${DATA_ROOT_ENV} or ./datasets)")
    g.add_argument("--train-limit", type=int, default=0, help="use only the first N train samples (0 = all)")
    g.add_argument("--test-limit", type=int, default=0, help="use only the first N test samples (0 = all)")
    g.add_argument("--synthetic-seed", type=int, default=0, help="seed of the built-in synthetic data (default: the model's training "
                                                                 "run's, else 0)")
    p.add_argument("--json", action="store_true", help="print the final summary as JSON on stdout")
    add_debug(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..finetune import FinetuneConfig, FinetuneInterrupted, finetune

    if bool(args.out) == bool(args.resume):
        raise ConfigError("give either MODEL --out RUN_DIR (a new run) or --resume RUN_DIR (continue one)")
    if args.resume and args.model:
        raise ConfigError("--resume uses the run's own model and settings: drop MODEL (only --epochs may change)")
    if args.out and not args.model:
        raise ConfigError("give the float network file to fine-tune: eventprop finetune MODEL --out RUN_DIR")
    config = None
    if args.out:
        from eventprop_core.network import load_network
        trained = load_network(args.model).provenance.get("config") or {}   # the model's training run, if any
        data = trained.get("data") or {}
        dataset = args.dataset or data.get("dataset") or "synthetic"
        data_root = args.data_root or (data.get("data_root") or None if dataset == data.get("dataset") else None)
        synthetic = {}
        if dataset == "synthetic":   # the model's own synthetic set, as its training run made it
            synthetic = dict(trained.get("synthetic") or {})
            synthetic.pop("dt", None), synthetic.pop("timesteps", None)
            if args.synthetic_seed:
                synthetic["seed"] = args.synthetic_seed
        config = FinetuneConfig(model=args.model, weight_bits=args.weight_bits, scale=args.scale,
                                calibration_samples=args.calibration_samples, clip=args.clip,
                                epochs=20 if args.epochs is None else args.epochs, batch_size=args.batch_size,
                                lr=args.lr, seed=args.seed, dataset=dataset, data_root=data_root,
                                synthetic=synthetic, valid_fraction=float(data.get("valid_fraction", 0.1)),
                                valid_seed=int(data.get("valid_seed", 0)),
                                train_limit=args.train_limit, test_limit=args.test_limit)
    log = (lambda *a, **k: None) if args.json else print
    try:
        summary = finetune(config, args.out or args.resume, resume=bool(args.resume), force=args.force,
                           epochs=args.epochs if args.resume else None,
                           progress=progress_enabled() and not args.json, log=log)
    except FinetuneInterrupted as exc:
        print(str(exc), file=sys.stderr)
        return 130
    if args.json:
        print_json(summary.to_dict())
    else:
        print(f"wrote {summary.netx_path}: emulator test accuracy {100 * summary.emulator_test_accuracy:.2f}% "
              f"({summary.weight_bits}-bit weights; before fine-tuning "
              f"{100 * summary.emulator_test_accuracy_before:.2f}%, float {100 * summary.float_test_accuracy:.2f}%)")
    return 0
