"""`eventprop evaluate`: accuracy of a network file on a data split."""
from __future__ import annotations

import argparse
from pathlib import Path

import h5py

from ..data.delay_lines import for_network
from ..data.registry import load_dataset
from ..data.synthetic import SyntheticConfig
from ..network import load_network
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
                   help="time steps per sample for a .h5 (default: from the file's metadata)")
    p.add_argument("--dt", type=float, default=None, help="time step in ms for a .h5 (default: from the file)")
    p.add_argument("--trace", metavar="OUT.npz",
                   help=".h5 only: write the integer readout v of every Lava step (N x (T+2) x n_out)")
    p.add_argument("--lava-samples", type=int, default=None, metavar="N",
                   help="--backend lava: run only the first N samples (after --limit)")
    p.add_argument("--checkpoint", metavar="CK.npz", default=None,
                   help="--backend lava: keep finished samples here; a rerun continues from it")
    p.add_argument("--hardware", action="store_true",
                   help="--backend lava: run on Loihi 2 (needs Intel's lava-loihi; experimental, never run on a Loihi 2 system yet) instead of the CPU simulator")
    p.add_argument("--batch-size", type=int, default=64, help="samples simulated at once (default 64)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default auto)")
    p.add_argument("--json", action="store_true", help="print a JSON object (accuracy, n, ...) on stdout")
    p.add_argument("--predictions", metavar="OUT.npz",
                   help="write per-sample pred, label and score (N x n_out readout) to this file")
    add_debug(p)
    p.set_defaults(func=run)


def load_eval_data(args, net_params, metadata: dict | None = None):
    """The split binned for the network; metadata: its provenance (float) or NetX metadata (delay lines)."""
    return load_dataset(args.dataset, args.split, data_root=args.data_root, dt=net_params.dt,
                        timesteps=net_params.timesteps, graded=args.graded,
                        synthetic=SyntheticConfig(seed=args.synthetic_seed), limit=args.limit,
                        delays=for_network(metadata, str(args.model)))


def resolve_backend(args) -> str:
    from ..errors import ConfigError

    path = Path(args.model)
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
    if backend == "float" and fixed_only:
        raise ConfigError(f"{', '.join(fixed_only)}: only for a .h5 network (the .npz holds its own T and dt)")
    lava_only = [opt for opt, value in (("--lava-samples", args.lava_samples), ("--checkpoint", args.checkpoint),
                                        ("--hardware", args.hardware or None)) if value is not None]
    if backend != "lava" and lava_only:
        raise ConfigError(f"{', '.join(lava_only)}: only with --backend lava")
    if args.lava_samples is not None and args.lava_samples < 1:
        raise ConfigError(f"--lava-samples {args.lava_samples}: must be a positive number of samples")
    return backend


def run(args) -> int:
    backend = resolve_backend(args)
    if backend != "float":
        return run_fixed_point(args, backend)
    from ..evaluation import evaluate_float

    net = load_network(args.model)
    data = load_eval_data(args, net.params, net.provenance)
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


def run_fixed_point(args, backend: str) -> int:
    """A NetX .h5 in the bit-exact emulator or in Lava; T and dt from the file unless given."""
    import numpy as np

    from netx_export.hdf5_io import read_netx

    from ..atomic import atomic_path
    from ..errors import DataError
    from ..evaluation import EvaluationResult
    from ..params import ModelParams

    fxnet = read_netx(args.model)
    timesteps = args.timesteps if args.timesteps is not None else fxnet.timesteps
    dt = args.dt if args.dt is not None else fxnet.dt
    data = load_eval_data(args, ModelParams(dt=dt, timesteps=timesteps), fxnet.metadata)
    if data.n_channels != fxnet.n_input or data.n_classes > fxnet.readout.size:
        raise DataError(f"{data.name}: {data.n_channels} channels and {data.n_classes} classes do not fit "
                        f"{args.model} ({fxnet.n_input} inputs, {fxnet.readout.size} outputs)")
    progress = progress_enabled() and not args.json
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
        with atomic_path(args.trace) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, readout_v=r.readout_v, indices=indices, label=labels,
                         pred=r.pred, timesteps=np.int64(timesteps))
    report(args, result)
    return 0
