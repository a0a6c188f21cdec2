"""Data-parallel scaling on this machine's CPUs (not a test): prints `name: value` lines.

Trains the same run with 1 process and with --nproc N (gloo), alternately --repeats times, reads
each epoch's seconds from metrics.csv (epoch 1 is left out: it loads the numba cache), prints the
fastest and the median epoch of each (the fastest is the least disturbed by other work on a shared
machine), the speed-ups, and checks that the weights are bit-identical. Default: built-in synthetic data, 700-128-20, T = 500, 1024 samples,
batch 32, 3 epochs.
Usage: nice -n 10 python benchmarks/distributed_scaling.py [--nproc 2] [--epochs 3] [--n-train 1024]
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def train(out: Path, nproc: int, args) -> list[float]:
    cmd = [sys.executable, "-m", "eventprop_pipeline.cli.main", "train", "--out", str(out), "--epochs",
           str(args.epochs), "--hidden", str(args.hidden), "--device", "cpu", "--config", str(args.config)]
    if nproc > 1:
        cmd += ["--nproc", str(nproc)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    with open(out / "metrics.csv") as fh:
        return [float(row["seconds"]) for row in csv.DictReader(fh)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--n-train", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    import numpy as np

    from eventprop_pipeline.training import load_checkpoint, load_train_config
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cfg = load_train_config(None, {"synthetic.n_train": args.n_train, "synthetic.n_test": 128})
        args.config = tmp / "config.json"
        args.config.write_text(cfg.to_json())
        one, many, same = [], [], True
        for r in range(args.repeats):
            one += train(tmp / f"one{r}", 1, args)[1:]
            many += train(tmp / f"many{r}", args.nproc, args)[1:]
            a, b = (load_checkpoint(tmp / f"{k}{r}" / "checkpoint.npz") for k in ("one", "many"))
            same = same and all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights)
    t1, tn = float(np.min(one)), float(np.min(many))
    m1, mn = float(np.median(one)), float(np.median(many))
    print(f"machine: {os.cpu_count()} cpus (shared with other work while measured)")
    print(f"run: synthetic 700-{args.hidden}-20, T=500, {int(args.n_train * 0.9)} train samples (+50% blends), "
          f"batch 32, epochs 2..{args.epochs}")
    print(f"epochs_timed: {len(one)} per configuration ({args.repeats} alternating runs)")
    print(f"fastest_seconds_per_epoch_1_process: {t1:.2f}")
    print(f"fastest_seconds_per_epoch_{args.nproc}_processes: {tn:.2f}")
    print(f"speedup_{args.nproc}_over_1_fastest: {t1 / tn:.2f}")
    print(f"median_seconds_per_epoch_1_process: {m1:.2f}")
    print(f"median_seconds_per_epoch_{args.nproc}_processes: {mn:.2f}")
    print(f"speedup_{args.nproc}_over_1_median: {m1 / mn:.2f}")
    print(f"weights_bit_identical: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
