"""`eventprop make-synthetic`: write the built-in synthetic set as SHD-layout HDF5 files."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.spike_files import write_spike_file
from ..data.synthetic import SPLITS, SyntheticConfig, generate_split
from .common import add_debug

HELP = "write the built-in synthetic keyword-spotting set as SHD-layout HDF5 files"


def register(sub) -> None:
    d = SyntheticConfig()
    p = sub.add_parser("make-synthetic", help=HELP, description=HELP + " (spike times at bin centres, so "
                       "reading them back with the same dt recovers every bin exactly).")
    p.add_argument("--out", default="datasets/synthetic", help="output folder (default datasets/synthetic)")
    p.add_argument("--seed", type=int, default=d.seed, help=f"generator seed (default {d.seed})")
    p.add_argument("--n-train", type=int, default=d.n_train, help=f"training samples (default {d.n_train})")
    p.add_argument("--n-test", type=int, default=d.n_test, help=f"test samples (default {d.n_test})")
    add_debug(p)
    p.set_defaults(func=run)


def write_synthetic_files(cfg: SyntheticConfig, out: Path) -> list[Path]:
    paths = []
    for split in SPLITS:
        data = generate_split(cfg, split)
        times, units = [], []
        for i in range(len(data)):
            steps, u, _ = data.events(i)
            times.append((steps + 0.5) * data.dt / 1000.0)
            units.append(u)
        path = Path(out) / f"synthetic_{split}.h5"
        write_spike_file(path, times, units, data.labels)
        paths.append(path)
    return paths


def run(args) -> int:
    cfg = SyntheticConfig(seed=args.seed, n_train=args.n_train, n_test=args.n_test)
    for path in write_synthetic_files(cfg, Path(args.out)):
        print(f"wrote {path}")
    return 0
