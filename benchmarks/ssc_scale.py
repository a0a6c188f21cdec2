"""SSC-scale loading and training (not a test): prints `name: value` lines.

Needs an SSC-layout data root; make one at SSC's size (2 GB, ~8 min on 2 cores) with
  eventprop make-synthetic --layout ssc --out /tmp/ssc-like --n-classes 35 \\
      --n-train 75466 --n-valid 9981 --n-test 20382

Each phase runs in a fresh process, so each peak RSS (VmHWM) is its own:
  load_*        read + bin the whole training split (compact storage, chunked reads)
  reference_*   the whole-split reader this replaces (all events as int64, one np.unique), on the first
                --reference-samples samples, against the chunked reader on the same samples (ratios)
  epoch_*       one training epoch as the trainer runs it (blend augmentation of the whole split, channel
                shifts, Eventprop forward + backward, Adam, validation): --batches batches and
                --valid-samples validation samples are measured and the rest is extrapolated (printed as
                such); peak RSS is that of the process holding the train and valid splits
Usage: nice -n 10 python benchmarks/ssc_scale.py --data-root /tmp/ssc-like [--batches 20] [--hidden 256]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def _peak_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM")


def child_load(root: str, limit: int | None) -> dict:
    from eventprop_pipeline.data import load_dataset
    t0, c0 = time.perf_counter(), time.process_time()
    d = load_dataset("ssc", "train", data_root=root, timesteps=1000, limit=limit)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    n_bytes = sum(a.nbytes for a in (d.steps, d.units, d.counts, d.offsets, d.labels))
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_mib": _peak_mib(), "samples": len(d), "events": int(len(d.steps)),
            "data_mib": n_bytes / 2 ** 20}


def _pss_mib() -> float:
    with open("/proc/self/smaps_rollup") as fh:
        for line in fh:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("Pss")


def _shared_rank(rank: int, world: int, port: int, root: str, out: str) -> None:
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    from eventprop_pipeline.training import load_train_config
    from eventprop_pipeline.training.distributed import connect
    from eventprop_pipeline.training.shared_data import shared_run_data_loader
    comm, _ = connect("cpu")
    cfg = load_train_config(None, {"dataset": "ssc", "data_root": root, "network.timesteps": 1000})
    t0, c0 = time.perf_counter(), time.process_time()
    train = shared_run_data_loader(comm, cfg)("train", 0)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    touched = int(train.steps.sum(dtype="int64") % 7)   # every page mapped in this process
    with open(f"{out}.{rank}", "w") as fh:
        json.dump({"seconds": seconds, "cpu_seconds": cpu, "pss_mib": _pss_mib(), "peak_mib": _peak_mib(),
                   "samples": len(train), "touched": touched}, fh)


def shared_load(root: str, world: int) -> list[dict]:
    """The training split loaded by `world` ranks sharing one copy (the data-parallel trainer's way)."""
    import tempfile

    import torch.multiprocessing as mp

    from eventprop_pipeline.training.distributed import free_port
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "rank")
        mp.start_processes(_shared_rank, args=(world, free_port(), root, out), nprocs=world, start_method="spawn")
        return [json.load(open(f"{out}.{r}")) for r in range(world)]


def child_reference(root: str, limit: int) -> dict:
    """The reader before compact storage: every event of the split as int64, one np.unique."""
    import h5py
    import numpy as np

    from eventprop_pipeline.data.binning import time_to_step
    from eventprop_pipeline.data.events import from_events
    t0, c0 = time.perf_counter(), time.process_time()
    with h5py.File(os.path.join(root, "SSC", "ssc_train.h5"), "r") as f:
        times, units = f["spikes/times"][:limit], f["spikes/units"][:limit]
        labels = np.asarray(f["labels"][:limit], np.int64)
    lengths = np.fromiter((len(t) for t in times), np.int64, len(times))
    all_times = np.concatenate(times).astype(np.float64)
    all_units = np.concatenate(units).astype(np.int64)
    sample = np.repeat(np.arange(len(labels)), lengths)
    d = from_events(sample, time_to_step(all_times, 1.0), all_units, labels, n_channels=700, n_classes=35,
                    timesteps=1000, dt=1.0)
    return {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0, "peak_mib": _peak_mib(),
            "events": int(len(d.steps))}


def child_epoch(root: str, hidden: int, batches: int, valid_samples: int, batch_size: int) -> dict:
    import numpy as np

    from eventprop_pipeline.data.batching import batch_indices
    from eventprop_pipeline.eventprop import compute_batch
    from eventprop_core.network import Network
    from eventprop_pipeline.evaluation import evaluate_float
    from eventprop_pipeline.training import load_train_config
    from eventprop_pipeline.training.adam import AdamState, adam_step
    from eventprop_pipeline.training.augment import shift_channels
    from eventprop_pipeline.training.splits import load_run_data
    from eventprop_pipeline.training.trainer import _loss_options, batch_shifts, epoch_training_set

    cfg = load_train_config(None, {"dataset": "ssc", "data_root": root, "hidden": hidden, "network.timesteps": 1000,
                                   "batch_size": batch_size, "lr": 1e-3, "device": "cpu"})
    t0 = time.perf_counter()
    data = load_run_data(cfg)
    load_s = time.perf_counter() - t0
    net = Network.initialise(700, hidden, 35, params=cfg.network.model_params(), seed=0, init=cfg.network.init())
    adam = AdamState.zeros_like(net.weights)
    t0 = time.perf_counter()
    samples = epoch_training_set(data.train, cfg, 1)
    blend_s = time.perf_counter() - t0
    order = batch_indices(len(samples), batch_size, shuffle=True, seed=cfg.seed, epoch=1)
    options = _loss_options(cfg)
    warm = samples.subset(order[0][:2])   # compile / load the numba cache outside the timing
    compute_batch(net, warm, warm.labels, options=options)
    t0 = time.perf_counter()
    spikes = 0.0
    for b, idx in enumerate(order[:batches]):
        batch = shift_channels(samples.subset(idx), batch_shifts(cfg, 1, b, len(idx)))
        result = compute_batch(net, batch, batch.labels, options=options, device="cpu")
        adam_step(net.weights, result.grads, adam, 1e-3)
        spikes += result.hidden_spike_counts.sum()
    train_s = time.perf_counter() - t0
    n_train_measured = sum(len(i) for i in order[:batches])
    t0 = time.perf_counter()
    evaluate_float(net, data.valid.subset(np.arange(min(valid_samples, len(data.valid)))), device="cpu")
    valid_s = time.perf_counter() - t0
    return {"load_seconds": load_s, "blend_seconds": blend_s, "train_seconds_measured": train_s,
            "train_samples_measured": n_train_measured, "epoch_samples": len(samples), "n_batches": len(order),
            "valid_seconds_measured": valid_s, "valid_samples_measured": min(valid_samples, len(data.valid)),
            "valid_samples": len(data.valid), "peak_mib": _peak_mib(),
            "spikes_per_neuron": spikes / (n_train_measured * hidden)}


def run_child(*args) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *map(str, args)], capture_output=True, text=True,
                         timeout=7200)
    if out.returncode:
        raise RuntimeError(f"child {args[0]} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", help="folder holding SSC/ssc_{train,valid,test}.h5 (required)")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--batches", type=int, default=20, help="training batches measured (default 20)")
    ap.add_argument("--valid-samples", type=int, default=512, help="validation samples measured (default 512)")
    ap.add_argument("--reference-samples", type=int, default=4000,
                    help="samples for the reader comparison (the old reader needs ~10x the memory)")
    ap.add_argument("--skip-epoch", action="store_true")
    ap.add_argument("--shared-ranks", type=int, default=0,
                    help="also load the training split with N data-parallel ranks sharing one copy")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kind, rest = args.child[0], args.child[1:]
        if kind == "load":
            result = child_load(rest[0], int(rest[1]) or None)
        elif kind == "reference":
            result = child_reference(rest[0], int(rest[1]))
        else:
            result = child_epoch(rest[0], *map(int, rest[1:]))
        print(json.dumps(result))
        return 0
    if not args.data_root:
        ap.error("--data-root is required")
    print(f"machine: {os.cpu_count()} cpus (shared with other work: figures are upper bounds)")
    full = run_child("load", args.data_root, 0)
    print(f"load_samples: {full['samples']}")
    print(f"load_events: {full['events']}")
    print(f"load_seconds: {full['seconds']:.1f}")
    print(f"load_cpu_seconds: {full['cpu_seconds']:.1f} (all threads; wall above this = waiting for the shared CPUs or disk)")
    print(f"load_peak_rss_mib: {full['peak_mib']:.0f}")
    print(f"load_data_mib: {full['data_mib']:.0f}")
    print(f"load_bytes_per_event: {full['data_mib'] * 2 ** 20 / max(1, full['events']):.2f}")
    m = args.reference_samples
    new, ref = run_child("load", args.data_root, m), run_child("reference", args.data_root, m)
    assert new["events"] == ref["events"], (new["events"], ref["events"])
    print(f"reference_samples: {m}")
    print(f"reference_seconds: {ref['seconds']:.2f}")
    print(f"chunked_seconds_same_samples: {new['seconds']:.2f}")
    print(f"reference_over_chunked_seconds: {ref['seconds'] / new['seconds']:.2f}")
    print(f"reference_cpu_seconds: {ref['cpu_seconds']:.2f}")
    print(f"chunked_cpu_seconds_same_samples: {new['cpu_seconds']:.2f}")
    print(f"reference_over_chunked_cpu_seconds: {ref['cpu_seconds'] / new['cpu_seconds']:.2f}")
    print(f"reference_peak_rss_mib: {ref['peak_mib']:.0f}")
    print(f"chunked_peak_rss_mib_same_samples: {new['peak_mib']:.0f}")
    print(f"reference_over_chunked_peak_rss: {ref['peak_mib'] / new['peak_mib']:.2f}")
    print(f"reference_peak_rss_mib_extrapolated_to_full_split: {ref['peak_mib'] * full['samples'] / m:.0f}")
    if args.shared_ranks > 1:
        ranks = shared_load(args.data_root, args.shared_ranks)
        print(f"shared_load_ranks: {args.shared_ranks} (each bins 1/{args.shared_ranks} of the split)")
        print(f"shared_load_seconds: {max(r['seconds'] for r in ranks):.1f}")
        print(f"shared_load_cpu_seconds_per_rank: {max(r['cpu_seconds'] for r in ranks):.1f}")
        print(f"shared_load_pss_mib_per_rank: {max(r['pss_mib'] for r in ranks):.0f} "
              f"(proportional set size: shared pages split between the ranks)")
        print(f"shared_load_pss_mib_all_ranks: {sum(r['pss_mib'] for r in ranks):.0f} "
              f"(vs {full['peak_mib']:.0f} for one process alone)")
    if args.skip_epoch:
        return 0
    e = run_child("epoch", args.data_root, args.hidden, args.batches, args.valid_samples, args.batch_size)
    per_sample = e["train_seconds_measured"] / e["train_samples_measured"]
    per_valid = e["valid_seconds_measured"] / max(1, e["valid_samples_measured"])
    train_s = per_sample * e["epoch_samples"]
    valid_s = per_valid * e["valid_samples"]
    print(f"epoch_network: 700-{args.hidden}-35, T=1000, batch {args.batch_size}")
    print(f"epoch_load_train_valid_test_seconds: {e['load_seconds']:.1f}")
    print(f"epoch_samples_with_blends: {e['epoch_samples']}")
    print(f"epoch_blend_seconds: {e['blend_seconds']:.1f}")
    print(f"epoch_measured_batches: {args.batches} ({e['train_samples_measured']} samples, "
          f"{e['train_seconds_measured']:.1f} s)")
    print(f"epoch_ms_per_train_sample: {1e3 * per_sample:.2f}")
    print(f"epoch_hidden_spikes_per_neuron: {e['spikes_per_neuron']:.1f}")
    print(f"epoch_ms_per_valid_sample: {1e3 * per_valid:.2f}")
    print(f"epoch_seconds_extrapolated: {e['blend_seconds'] + train_s + valid_s:.0f} "
          f"(EXTRAPOLATED from {args.batches} batches and {e['valid_samples_measured']} validation samples: "
          f"blend {e['blend_seconds']:.0f} + train {train_s:.0f} + validation {valid_s:.0f})")
    print(f"epoch_peak_rss_mib: {e['peak_mib']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
