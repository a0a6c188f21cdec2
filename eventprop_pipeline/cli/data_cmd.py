"""`eventprop make-synthetic`: write the built-in synthetic set as SHD-layout HDF5 files."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..data.spike_files import SPEC, write_spike_chunks
from ..data.synthetic import SyntheticConfig, iter_split
from eventprop_core.errors import ConfigError, OutputWriteError
from .common import add_debug, progress_enabled

HELP = "write the built-in synthetic keyword-spotting set as SHD-layout HDF5 files"
LAYOUTS = ("synthetic", "shd", "ssc")

DESCRIPTION = HELP + """ (spike times at bin centres, so reading them back
with the same dt recovers every bin exactly). Samples are generated and written in chunks, so any
size fits in memory.

--layout synthetic (default) writes OUT/synthetic_train.h5 and OUT/synthetic_test.h5. --layout shd
or ssc writes the files where `--dataset shd|ssc --data-root OUT` finds them (OUT/SHD/shd_*.h5,
OUT/SSC/ssc_{train,valid,test}.h5), to test a pipeline at a real data set's size without it.

Example (SSC's size: 75,466 / 9,981 / 20,382 samples, 35 classes):
  eventprop make-synthetic --layout ssc --out /tmp/ssc-like --n-classes 35 \\
      --n-train 75466 --n-valid 9981 --n-test 20382
"""


def register(sub) -> None:
    d = SyntheticConfig()
    p = sub.add_parser("make-synthetic", help=HELP, description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="datasets/synthetic", help="output folder (default datasets/synthetic)")
    p.add_argument("--layout", choices=LAYOUTS, default="synthetic",
                   help="file names: synthetic_*.h5 (default), or SHD/ or SSC/ as the real data sets")
    p.add_argument("--seed", type=int, default=d.seed, help=f"generator seed (default {d.seed})")
    p.add_argument("--n-train", type=int, default=d.n_train, help=f"training samples (default {d.n_train})")
    p.add_argument("--n-test", type=int, default=d.n_test, help=f"test samples (default {d.n_test})")
    p.add_argument("--n-valid", type=int, default=None,
                   help="validation samples (--layout ssc only; default: as many as --n-test)")
    p.add_argument("--n-classes", type=int, default=None,
                   help=f"classes (default {d.n_classes}; 35 for --layout ssc)")
    p.add_argument("--n-channels", type=int, default=d.n_channels, help=f"input channels (default {d.n_channels})")
    p.add_argument("--timesteps", type=int, default=1000,
                   help="sample length in steps of --dt (default 1000, SHD's 1 s)")
    p.add_argument("--dt", type=float, default=d.dt, help=f"step in ms (default {d.dt})")
    add_debug(p)
    p.set_defaults(func=run)


def split_files(layout: str, out: Path, n_train: int, n_test: int, n_valid: int) -> list[tuple[str, int, Path]]:
    """(split, samples, path) of every file a layout writes."""
    if layout == "synthetic":
        return [(s, n, out / f"synthetic_{s}.h5") for s, n in (("train", n_train), ("test", n_test))]
    folder, prefix, splits, _, _ = SPEC[layout]
    counts = {"train": n_train, "test": n_test, "valid": n_valid}
    return [(s, counts[s], out / folder / f"{prefix}_{s}.h5") for s in splits]


BYTES_PER_EVENT = 4        # float16 time + uint16 unit
BYTES_PER_SAMPLE = 64      # label, speaker and the two variable-length heap entries, roughly
DISK_MARGIN = 1.2


def check_free_space(out: Path, n_samples: int, events_per_sample: float) -> None:
    """Fail before a long write that cannot fit: estimated size of all the files (from the first
    chunk's events) against the free space where they go."""
    import shutil
    need = DISK_MARGIN * n_samples * (BYTES_PER_SAMPLE + BYTES_PER_EVENT * events_per_sample)
    where = out
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    if need > free:
        raise OutputWriteError(f"{out}: the files would need about {need / 1e9:.2f} GB ({n_samples} samples of "
                               f"about {events_per_sample:.0f} spikes) but {where} has {free / 1e9:.2f} GB free; "
                               "nothing was written. Choose another --out or fewer samples")


def write_synthetic_files(cfg: SyntheticConfig, out: Path, *, layout: str = "synthetic", n_valid: int | None = None,
                          progress: bool = False) -> list[Path]:
    from tqdm.auto import tqdm

    paths = []
    files = split_files(layout, Path(out), cfg.n_train, cfg.n_test, cfg.n_test if n_valid is None else n_valid)
    first, n_first = files[0][0], min(files[0][1], 64)
    if n_first:     # the spikes per sample of a few samples, before anything is created on disk
        probe = next(iter(iter_split(cfg, first, n_first)))
        check_free_space(Path(out), sum(n for _, n, _ in files), len(probe.steps) / len(probe))
    for split, n, path in files:
        bar = tqdm(total=n, desc=f"write {path.name}", unit="sample", disable=not progress)

        def chunks(split=split, n=n, bar=bar):
            for data in iter_split(cfg, split, n):
                times, units = [], []
                for i in range(len(data)):
                    steps, u, _ = data.events(i)
                    times.append((steps + 0.5) * data.dt / 1000.0)
                    units.append(u)
                bar.update(len(data))
                yield times, units, data.labels

        with bar:
            write_spike_chunks(path, n, chunks())
        paths.append(path)
    return paths


def run(args) -> int:
    n_classes = args.n_classes or (SPEC["ssc"][4] if args.layout == "ssc" else SyntheticConfig().n_classes)
    if args.layout != "synthetic":
        want_c, want_k = SPEC[args.layout][3], SPEC[args.layout][4]
        if args.n_channels != want_c or n_classes != want_k:
            raise ConfigError(f"--layout {args.layout}: {args.layout.upper()} has {want_c} channels and {want_k} "
                              f"classes (got --n-channels {args.n_channels}, --n-classes {n_classes}); "
                              f"use --layout synthetic for other shapes")
    if args.n_valid is not None and args.layout != "ssc":
        raise ConfigError("--n-valid: only --layout ssc has a validation split")
    if args.n_valid is not None and args.n_valid < 1:
        raise ConfigError(f"--n-valid {args.n_valid}: must be >= 1")
    cfg = SyntheticConfig(seed=args.seed, n_train=args.n_train, n_test=args.n_test, n_classes=n_classes,
                          n_channels=args.n_channels, timesteps=args.timesteps, dt=args.dt)
    for path in write_synthetic_files(cfg, Path(args.out), layout=args.layout, n_valid=args.n_valid,
                                      progress=progress_enabled()):
        print(f"wrote {path}")
    return 0
