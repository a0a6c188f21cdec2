"""Options and helpers shared by several subcommands."""
from __future__ import annotations

import argparse
import json
import sys

from ..data.registry import DATASETS
from ..data.spike_files import DATA_ROOT_ENV


def add_debug(parser: argparse.ArgumentParser) -> None:
    # Accepted after the subcommand too: `eventprop evaluate ... --debug`.
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show full Python tracebacks on errors")


def add_data_options(parser: argparse.ArgumentParser, *, split_default: str = "test",
                     dataset_default: str | None = "synthetic", dataset_help: str | None = None) -> None:
    g = parser.add_argument_group("data")
    g.add_argument("--dataset", default=dataset_default, choices=DATASETS,
                   help=dataset_help or "data set (default: synthetic, built in, no download)")
    g.add_argument("--data-root", default=None,
                   help=f"folder holding SHD/ and SSC/ (default: ${DATA_ROOT_ENV} or ./datasets)")
    g.add_argument("--split", default=split_default,
                   help=f"split to use: train/test (SHD, synthetic) or train/valid/test (SSC); default {split_default}")
    g.add_argument("--limit", type=int, default=None, help="use only the first N samples")
    g.add_argument("--graded", action="store_true", help="keep spike counts per bin instead of clipping to 1")
    g.add_argument("--synthetic-seed", type=int, default=0, help="seed of the built-in synthetic data (default 0)")


def progress_enabled() -> bool:
    """tqdm bars only on a terminal (keeps logs and --json output clean)."""
    return sys.stderr.isatty()


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True))


# Integer options shared by several commands and their smallest valid value; checked for every
# command before it does any work (an option a command lacks is simply absent from its args).
INT_OPTION_MINIMUM = {
    "batch_size": 1, "limit": 1, "synthetic_seed": 0, "seed": 0, "epochs": 1, "hidden": 1,
    "timesteps": 1, "sweep_samples": 1, "n_train": 1, "n_test": 1,
}
POSITIVE_FLOAT_OPTIONS = ("dt", "lr", "tau_mem", "tau_syn", "v_thresh")


def check_common_options(args: argparse.Namespace) -> None:
    """One-line ConfigError naming the option and its value (before any file is read or written)."""
    import math

    from eventprop_core.errors import ConfigError

    for dest, minimum in INT_OPTION_MINIMUM.items():
        value = getattr(args, dest, None)
        if isinstance(value, int) and not isinstance(value, bool) and value < minimum:
            raise ConfigError(f"--{dest.replace('_', '-')} must be >= {minimum}, got {value}")
    for dest in POSITIVE_FLOAT_OPTIONS:
        value = getattr(args, dest, None)
        if isinstance(value, float) and not (math.isfinite(value) and value > 0):
            raise ConfigError(f"--{dest.replace('_', '-')} must be a positive finite number, got {value}")
