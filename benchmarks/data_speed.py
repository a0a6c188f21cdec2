"""Data-loading speed (not a test): prints `name: value` lines.

  synthetic_seconds_2000_samples   generate the built-in synthetic train split (SHD shape)
  shd_bin_seconds_8156             read + bin an SHD-sized train file (8156 samples, SHD-like spike counts)

Usage: python benchmarks/data_speed.py [--spikes-per-sample N]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spikes-per-sample", type=int, default=5000, help="spikes per SHD-like sample (default 5000)")
    args = ap.parse_args(argv)
    from eventprop_pipeline.data import SyntheticConfig, generate_split, load_dataset, write_spike_file

    t0 = time.perf_counter()
    d = generate_split(SyntheticConfig(n_train=2000), "train")
    print(f"synthetic_seconds_2000_samples: {time.perf_counter() - t0:.2f}")
    print(f"synthetic_input_spikes_per_sample: {d.spikes_per_sample().mean():.0f}")
    rng = np.random.default_rng(0)
    n, per = 8156, args.spikes_per_sample
    with tempfile.TemporaryDirectory() as tmp:
        write_spike_file(Path(tmp) / "SHD" / "shd_train.h5", [np.sort(rng.uniform(0, 1.4, per)) for _ in range(n)],
                         [rng.integers(0, 700, per) for _ in range(n)], rng.integers(0, 20, n))
        t0 = time.perf_counter()
        d = load_dataset("shd", "train", data_root=tmp)
        print(f"shd_bin_seconds_8156: {time.perf_counter() - t0:.2f}")
        print(f"shd_events_after_binning: {len(d.steps)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
