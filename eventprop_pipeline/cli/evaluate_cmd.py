"""`eventprop evaluate`: accuracy of a network file on a data split."""
from __future__ import annotations

import argparse

from ..data.registry import load_dataset
from ..data.synthetic import SyntheticConfig
from ..network import load_network
from .common import add_data_options, add_debug, print_json, progress_enabled

HELP = "evaluate a network (.npz float model) on a data split and print its accuracy"


def register(sub) -> None:
    p = sub.add_parser("evaluate", help=HELP, description=HELP + ".\n\nEvery sample starts from a fresh "
                       "network state (no carry-over between samples).",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="network file: .npz (float model)")
    add_data_options(p)
    p.add_argument("--batch-size", type=int, default=64, help="samples simulated at once (default 64)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default auto)")
    p.add_argument("--json", action="store_true", help="print a JSON object (accuracy, n, ...) on stdout")
    p.add_argument("--predictions", metavar="OUT.npz",
                   help="write per-sample pred, label and score (N x n_out readout) to this file")
    add_debug(p)
    p.set_defaults(func=run)


def load_eval_data(args, net_params):
    return load_dataset(args.dataset, args.split, data_root=args.data_root, dt=net_params.dt,
                        timesteps=net_params.timesteps, graded=args.graded,
                        synthetic=SyntheticConfig(seed=args.synthetic_seed), limit=args.limit)


def run(args) -> int:
    from ..evaluation import evaluate_float

    net = load_network(args.model)
    data = load_eval_data(args, net.params)
    result = evaluate_float(net, data, batch_size=args.batch_size, device=args.device,
                            progress=progress_enabled() and not args.json)
    report(args, result)
    return 0


def report(args, result) -> None:
    if args.predictions:
        result.save_predictions(args.predictions)
    summary = {**result.summary(), "model": str(args.model), "dataset": args.dataset, "split": args.split}
    if args.json:
        print_json(summary)
    else:
        print(f"{args.dataset}/{args.split}: accuracy {100 * result.accuracy:.2f}% "
              f"({summary['correct']}/{summary['n']}, backend {result.backend})")
