"""`eventprop evaluate`: accuracy of a network file on a data split."""
from __future__ import annotations

import argparse
from pathlib import Path

import h5py

from ..data.delay_lines import for_network
from ..data.registry import load_dataset
from ..data.synthetic import SyntheticConfig
from eventprop_core.network import check_network_file, load_network
from .common import add_data_options, add_debug, print_json, progress_enabled

HELP = "evaluate a network (.npz float model, or .h5 NetX fixed point) on a data split and print its accuracy"
BACKENDS = ("auto", "float", "emulator", "lava")


def register(sub) -> None:
    p = sub.add_parser("evaluate", help=HELP, description=HELP + ".\n\nEvery sample starts from a fresh "
                       "network state (no carry-over between samples). A .npz runs the float model; a .h5 "
                       "runs the bit-exact fixed-point emulator (--backend emulator, the default) or Lava's "
                       "fixed-point CPU simulator (--backend lava, 1-4 s per 1000-step sample on 2 cores, so use "
                       "--lava-samples); emulator and Lava give identical results.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="network file: .npz (float model) or .h5 (NetX fixed point, from `export`)")
    add_data_options(p)
    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="auto (default): float for .npz, emulator for a NetX file (.h5, .hdf5, .net); emulator and lava need a .h5")
    p.add_argument("--timesteps", type=int, default=None,
                   help="time steps per sample for a .h5 (default: from the file's metadata); the "
                        "readout keeps the file's exp(-t/T) weighting, only the number of steps changes")
    p.add_argument("--dt", type=float, default=None, help="time step in ms for a .h5 (default: from the file)")
    p.add_argument("--trace", metavar="OUT.npz",
                   help=".h5 only: write the integer readout v of every Lava step (N x (T+2) x n_out)")
    p.add_argument("--lava-samples", type=int, default=None, metavar="N",
                   help="--backend lava: run only the first N samples (after --limit)")
    p.add_argument("--checkpoint", metavar="CK.npz", default=None,
                   help="--backend lava: keep finished samples here; a rerun continues from it")
    p.add_argument("--hardware", action="store_true",
                   help="--backend lava: run on Loihi 2 (needs Intel's lava-loihi; experimental, never run on a Loihi 2 system yet) instead of the CPU simulator")
    p.add_argument("--readout", default="v", choices=("v", "spikes"),
                   help="NetX file: score each class by the last layer's voltage (v, default: this project's "
                        "readout and mlGeNN's) or by its spike counts (spikes; emulator only)")
    p.add_argument("--batch-size", type=int, default=64, help="samples simulated at once (default 64)")
    p.add_argument("--device", default=None, help=".npz only: cpu, cuda or auto (default auto)")
    p.add_argument("--nproc", type=int, metavar="N",
                   help="float or emulator backend: split the samples over N local processes (each reads and bins "
                        "only its share); under torchrun every process is one rank")
    p.add_argument("--json", action="store_true", help="print a JSON object (accuracy, n, ...) on stdout")
    p.add_argument("--predictions", metavar="OUT.npz",
                   help="write per-sample pred, label and score (N x n_out readout) to this file")
    add_debug(p)
    p.set_defaults(func=run)


def load_eval_data(args, net_params, metadata: dict | None = None, samples: tuple[int, int] | None = None):
    """The split (or a rank's `samples` of it) binned for the network; metadata: its provenance (float)
    or NetX metadata (delay lines)."""
    return load_dataset(args.dataset, args.split, data_root=args.data_root, dt=net_params.dt,
                        timesteps=net_params.timesteps, graded=args.graded,
                        synthetic=SyntheticConfig(seed=args.synthetic_seed), limit=args.limit, samples=samples,
                        delays=for_network(metadata, str(args.model)))


def resolve_backend(args) -> str:
    from eventprop_core.errors import ConfigError

    path = Path(args.model)
    check_network_file(path)
    # By content when the file exists (an export may have any name), else by suffix.
    is_h5 = h5py.is_hdf5(path) if path.is_file() else path.suffix.lower() in (".h5", ".hdf5", ".net")
    backend = args.backend if args.backend != "auto" else ("emulator" if is_h5 else "float")
    if backend == "float" and is_h5:
        raise ConfigError(f"{args.model}: --backend float needs the float .npz network; a .h5 runs with "
                          f"--backend emulator or lava")
    if backend != "float" and not is_h5:
        raise ConfigError(f"{args.model}: --backend {backend} needs a NetX .h5 file (create it with "
                          f"`eventprop export`); a .npz runs with --backend float")
    fixed_only = [opt for opt, value in (("--trace", args.trace), ("--timesteps", args.timesteps), ("--dt", args.dt))
                  if value is not None]
    float_only = [opt for opt, value in (("--graded", args.graded or None), ("--device", args.device))
                  if value is not None]
    if backend != "float" and float_only:
        raise ConfigError(f"{', '.join(float_only)}: only for a float .npz network (a NetX file runs binary "
                          f"spikes in the fixed-point {backend})")
    if backend == "float" and fixed_only:
        raise ConfigError(f"{', '.join(fixed_only)}: only for a .h5 network (the .npz holds its own T and dt)")
    lava_only = [opt for opt, value in (("--lava-samples", args.lava_samples), ("--checkpoint", args.checkpoint),
                                        ("--hardware", args.hardware or None)) if value is not None]
    if backend != "lava" and lava_only:
        raise ConfigError(f"{', '.join(lava_only)}: only with --backend lava")
    if backend == "lava" and getattr(args, "readout", "v") == "spikes":
        raise ConfigError("--readout spikes: only with --backend emulator (the Lava runner scores the last "
                          "layer's voltage)")
    if args.lava_samples is not None and args.lava_samples < 1:
        raise ConfigError(f"--lava-samples {args.lava_samples}: must be a positive number of samples")
    return backend


def check_paths(args) -> None:
    from ..output_paths import check_outputs, data_input_paths

    check_outputs({"model": args.model, "data set file": data_input_paths(args.dataset, args.data_root)},
                  {"--predictions": args.predictions, "--trace": args.trace, "--checkpoint": args.checkpoint})


def run(args) -> int:
    from eventprop_core.errors import ConfigError

    from ..training import data_parallel, distributed

    check_paths(args)
    backend = resolve_backend(args)
    nproc = getattr(args, "nproc", None)
    parallel = (nproc or 1) > 1 or distributed.env_context().active
    if nproc is not None and nproc < 1:
        raise ConfigError(f"--nproc {nproc}: give a number of processes >= 1")
    if parallel and (backend == "lava" or args.trace):
        raise ConfigError("--nproc/torchrun: only the float and emulator backends, without --trace")
    if nproc and nproc > 1:
        distributed.launch_local(nproc, args, what="Nothing was written; run the command again.")
        return 0
    samples, comm, n_total = None, None, None
    if parallel:   # this rank reads, bins and simulates only its share of the split
        from ..data.registry import split_size
        from ..devices import resolve_device_name
        device = resolve_device_name(args.device or "auto") if backend == "float" else "cpu"
        comm, args.device = distributed.connect("cuda" if device.startswith("cuda") else "cpu")
        n_total = split_size(args.dataset, args.split, data_root=args.data_root,
                             synthetic=SyntheticConfig(seed=args.synthetic_seed), limit=args.limit)
        samples = data_parallel.sample_range(n_total, comm.rank, comm.world)
    result, features = (run_float(args, samples) if backend == "float" else run_fixed_point(args, backend, samples))
    if comm is not None:
        result = data_parallel.gather_evaluation(comm, result, samples[0], n_total)
        if not comm.ctx.is_root:
            return 0
    report(args, result, features)
    return 0


def run_float(args, samples=None):
    from ..evaluation import evaluate_float

    net = load_network(args.model)
    data = load_eval_data(args, net.params, net.provenance, samples)
    if samples is not None and len(data) == 0:
        from ..training.data_parallel import empty_result
        return empty_result(net.n_output, "float"), None
    return evaluate_float(net, data, batch_size=args.batch_size, device=args.device or "auto",
                          progress=progress_enabled() and not args.json), None


def report(args, result, features: list[str] | None = None) -> None:
    if args.predictions:
        result.save_predictions(args.predictions)
    summary = {**result.summary(), "model": str(args.model), "dataset": args.dataset, "split": args.split}
    if features is not None:
        summary["features"] = features
    if args.json:
        print_json(summary)
    else:
        print(f"{args.dataset}/{args.split}: accuracy {100 * result.accuracy:.2f}% "
              f"({summary['correct']}/{summary['n']}, backend {result.backend})")


def run_fixed_point(args, backend: str, samples=None):
    """A NetX .h5 in the bit-exact emulator or in Lava; T and dt from the file unless given."""
    import numpy as np

    from netx_export.hdf5_io import read_netx

    from eventprop_core.atomic import save_npz
    from eventprop_core.errors import DataError
    from ..evaluation import EvaluationResult
    from eventprop_core.params import ModelParams

    from netx_export.netx_features import network_features

    fxnet = read_netx(args.model)
    fxnet.readout_from = args.readout
    features = network_features(fxnet)
    if backend == "lava" and fxnet.hidden is None:
        raise DataError(f"{args.model}: --backend lava records the layer before the readout; this network has "
                        f"one layer (use --backend emulator)")
    timesteps = args.timesteps if args.timesteps is not None else fxnet.timesteps
    dt = args.dt if args.dt is not None else fxnet.dt
    data = load_eval_data(args, ModelParams(dt=dt, timesteps=timesteps), fxnet.metadata, samples)
    if data.n_channels != fxnet.n_input or data.n_classes > fxnet.readout.size:
        raise DataError(f"{data.name}: {data.n_channels} channels and {data.n_classes} classes do not fit "
                        f"{args.model} ({fxnet.n_input} inputs, {fxnet.readout.size} outputs)")
    progress = progress_enabled() and not args.json
    if samples is not None and len(data) == 0:
        from ..training.data_parallel import empty_result
        return empty_result(fxnet.readout.size, backend), features
    if not args.json and (samples is None or samples[0] == 0):
        print(f"{args.model}: " + "\n  ".join(features))
        print(f"backend: {backend} ({'bit-exact emulator of' if backend == 'emulator' else 'run by'} Lava's "
              f"fixed-point models{', Loihi 2' if args.hardware else ''})")
    if backend == "emulator":
        from netx_export.emulator import emulate

        indices = np.arange(len(data))
        r = emulate(fxnet, data, batch_size=args.batch_size, record_trace=bool(args.trace), progress=progress)
    else:
        from netx_export.lava_runner import run_lava

        indices = np.arange(min(len(data), args.lava_samples or len(data)))
        r = run_lava(args.model, data, indices=indices, progress=progress, hardware=args.hardware,
                     record_trace=bool(args.trace), checkpoint=args.checkpoint)
    labels = data.labels[indices]
    result = EvaluationResult(r.pred, labels, r.score.astype(np.float32), r.hidden_spike_counts.sum(axis=1), backend)
    if args.trace:
        save_npz(args.trace, readout_v=r.readout_v, indices=indices, label=labels,
                 pred=r.pred, timesteps=np.int64(timesteps))
    return result, features
