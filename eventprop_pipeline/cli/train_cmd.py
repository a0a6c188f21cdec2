"""`eventprop train`: train a network with Eventprop, or continue an interrupted run."""
from __future__ import annotations

import argparse

from ..data.registry import DATASETS
from eventprop_core.errors import ConfigError
from .common import add_debug, print_json, progress_enabled

HELP = "train a recurrent LIF network with Eventprop (or --resume an interrupted run)"

DESCRIPTION = """\
Train a recurrent spiking network (input -> recurrent LIF -> leaky-integrator readout) with
exact Eventprop gradients and Adam, following the Eventprop SHD recipe (learning-rate ease-in,
halving on a validation plateau, spike-count regulariser, channel-shift and blend augmentation,
silent-neuron fix).

Settings come from the built-in defaults (configs/default.toml documents each one), then
--config FILE (TOML or YAML), then the options below. Everything is written under RUN_DIR:
  best.npz / last.npz    network files (best on validation accuracy / after the last epoch)
  checkpoint.npz         weights, Adam state and schedule after the last completed epoch
  metrics.csv, .jsonl    one row per epoch: loss, accuracies, learning rate, spikes per neuron
  config.json            the resolved configuration; summary.json at the end (with test accuracy)

Ctrl-C keeps the checkpoint of the last completed epoch; `eventprop train --resume RUN_DIR`
continues from it and ends with exactly the weights of an uninterrupted run.

Data-parallel: `--nproc N` starts N local processes; under `torchrun` every process is one rank
(gloo on CPUs, NCCL with one GPU per rank). Each rank computes the gradients of its part of every
batch; on the CPU engine the weights are bit-identical to a single-process run for any N up to 8
(docs/distributed.md). Rank 0 alone writes the run folder; --resume works with any N.

Examples:
  eventprop train --out runs/synthetic                    # built-in synthetic data, no download
  eventprop train --config configs/default.toml --dataset shd --data-root datasets --out runs/shd
  eventprop train --config shd --data-root datasets --out runs/shd   # preset: the paper's SHD recipe
  eventprop train --resume runs/shd                       # continue an interrupted run
  eventprop train --resume runs/shd --epochs 80           # ... and train for longer
  eventprop train --out runs/ssc --dataset ssc --nproc 2  # two local processes
  torchrun --nproc-per-node 4 -m eventprop_pipeline.cli.main train --out runs/ssc --dataset ssc --device cuda
"""


def register(sub) -> None:
    p = sub.add_parser("train", help=HELP, description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="FILE", help="TOML or YAML config file, or a shipped preset by name: shd, ssc (the paper's "
                        "recipes), speech, default, demo, smoke (default: built-in defaults)")
    p.add_argument("--out", metavar="RUN_DIR", help="folder for the run (must not hold another run unless --force)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    p.add_argument("--force", action="store_true", help="start over in an --out folder that already holds a run")
    g = p.add_argument_group("overrides (take precedence over the config file)")
    g.add_argument("--dataset", choices=DATASETS, help="synthetic (built in), shd or ssc")
    g.add_argument("--data-root", help="folder holding SHD/ and SSC/")
    g.add_argument("--epochs", type=int, help="number of epochs (with --resume: a new total)")
    g.add_argument("--batch-size", type=int, help="samples per gradient step")
    g.add_argument("--hidden", type=int, help="number of recurrent hidden neurons")
    g.add_argument("--timesteps", type=int, metavar="T",
                   help="time steps of dt per sample (paper: 1000); spikes at or after T*dt are cropped, "
                        "with a warning giving the share dropped")
    g.add_argument("--lr", type=float, help="Adam learning rate (after the ease-in)")
    g.add_argument("--seed", type=int, help="seed of initial weights, shuffling and augmentation")
    g.add_argument("--device", choices=("cpu", "cuda", "auto"), help="where gradients are computed: cpu (numba), cuda (the fused CUDA "
                   "kernels, docs/gpu_engine.md) or auto (cuda when present)")
    p.add_argument("--nproc", type=int, metavar="N",
                   help="data-parallel over N local processes (gloo on the CPU, one GPU each with --device cuda)")
    p.add_argument("--dist-timeout", type=float, metavar="S",
                   help="data-parallel: seconds a rank waits for the others before the run stops (default 600)")
    p.add_argument("--json", action="store_true", help="print the final summary as JSON on stdout")
    add_debug(p)
    p.set_defaults(func=run)


def _overrides(args) -> dict:
    return {"dataset": args.dataset, "data_root": args.data_root, "epochs": args.epochs,
            "batch_size": args.batch_size, "hidden": args.hidden, "lr": args.lr, "seed": args.seed,
            "device": args.device, "timesteps": args.timesteps}


def check_paths(args, config) -> None:
    from ..output_paths import check_outputs, data_input_paths

    data = config.data if config is not None else None
    check_outputs({"--config": args.config,
                   "data set file": data_input_paths(data.dataset, data.data_root or None) if data else None},
                  {}, {"--out" if args.out else "--resume": args.out or args.resume})


def run(args) -> int:
    from ..training import load_train_config, train

    if bool(args.out) == bool(args.resume):
        raise ConfigError("give either --out RUN_DIR (a new run) or --resume RUN_DIR (continue one)")
    overrides = _overrides(args)
    if args.nproc is not None and args.nproc < 1:
        raise ConfigError(f"--nproc {args.nproc}: give a number of processes >= 1")
    if args.dist_timeout is not None and args.dist_timeout <= 0:
        raise ConfigError(f"--dist-timeout {args.dist_timeout}: give a positive number of seconds")
    if args.nproc and args.nproc > 1:
        from ..training import load_train_config
        from ..training.distributed import launch_local
        if not args.resume:   # a bad config fails here, once, not in every rank
            load_train_config(args.config, overrides)
        run_dir = args.resume or args.out
        launch_local(args.nproc, args, timeout_s=args.dist_timeout,
                     what=f"Continue the run with: eventprop train --resume {run_dir}")
        return 0
    if args.dist_timeout:
        import os
        from ..training.distributed import ENV_TIMEOUT
        os.environ[ENV_TIMEOUT] = str(args.dist_timeout)
    if args.resume:
        if args.config or args.force:
            raise ConfigError("--resume uses the run's own config: drop --config/--force "
                              "(only --epochs and --device may change)")
        config, run_dir = None, args.resume
    else:
        config = load_train_config(args.config, overrides)
        run_dir = args.out
    check_paths(args, config)
    log = (lambda *a, **k: None) if args.json else print
    summary = train(config, run_dir, resume=bool(args.resume), force=args.force,
                    progress=progress_enabled() and not args.json, log=log,
                    overrides=overrides if args.resume else None)
    from ..training.distributed import env_context
    if not env_context().is_root:   # rank 0 reports for all
        return 0
    if args.json:
        print_json(summary.to_dict())
    else:
        print(f"best model: {summary.best_path} (epoch {summary.best_epoch}, validation accuracy "
              f"{100 * summary.best_valid_accuracy:.2f}%); last: {summary.last_path}")
    return 0
