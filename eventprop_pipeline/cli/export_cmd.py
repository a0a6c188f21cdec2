"""`eventprop export`: quantize a float network to Loihi 2 fixed point and write a NetX HDF5 file."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from ..network import load_network
from .common import add_data_options, add_debug, print_json

HELP = "quantize a network (.npz) to Loihi 2 fixed point and write a NetX HDF5 file for Lava"
DEFAULT_CALIBRATION_LIMIT = 256
DESCRIPTION = HELP + """.

Weights get one step per layer (hidden: input and recurrent together):
  --scale percentile  the reference exporter's power of two from the 99th percentile of |w|
  --scale calibrate   search each layer's step (emulator runs) for the best fixed-point accuracy, then the
                      closest agreement with the float model's readout, on a
                      calibration set (--dataset/--split/--limit; default split train, first 256 samples)
With --dataset, the report also gives float vs fixed-point accuracy on that set.
The report (table on stdout, JSON next to --out unless --report) lists steps, clipped weights,
weight errors and warnings."""


def register(sub) -> None:
    p = sub.add_parser("export", help=HELP, description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="network file (.npz float model)")
    p.add_argument("--out", required=True, help="NetX HDF5 file to write (e.g. net.h5)")
    p.add_argument("--weight-bits", type=int, default=8, help="weight bits, 1..8 (default 8)")
    p.add_argument("--scale", choices=("percentile", "calibrate"), default="percentile",
                   help="how each layer's weight step is chosen (default percentile)")
    p.add_argument("--clip", action="store_true",
                   help="clamp decays / threshold mantissas Loihi cannot represent instead of failing "
                        "(clamped values are listed in the report)")
    p.add_argument("--report", metavar="OUT.json", help="quantization report path "
                   "(default: <out stem>.quantization.json next to --out)")
    p.add_argument("--batch-size", type=int, default=64, help="calibration samples simulated at once (default 64)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    add_data_options(p, split_default="train", dataset_default=None,
                     dataset_help="calibration data set (default: none; --scale calibrate needs one)")
    add_debug(p)
    p.set_defaults(func=run)


def report_path(args) -> Path:
    if args.report:
        return Path(args.report)
    out = Path(args.out)
    return out.with_name(out.stem + ".quantization.json")


def load_calibration(args, params, provenance: dict | None = None):
    from ..data.delay_lines import for_network
    from ..data.registry import load_dataset
    from ..data.synthetic import SyntheticConfig

    if args.dataset is None:
        if args.scale == "calibrate":
            raise ConfigError("--scale calibrate needs a calibration set: give --dataset (and --data-root, "
                              "--split, --limit)")
        return None
    limit = args.limit if args.limit is not None else DEFAULT_CALIBRATION_LIMIT
    return load_dataset(args.dataset, args.split, data_root=args.data_root, dt=params.dt,
                        timesteps=params.timesteps, graded=args.graded,
                        synthetic=SyntheticConfig(seed=args.synthetic_seed), limit=limit,
                        delays=for_network(provenance, str(args.model)))


def run(args) -> int:
    import warnings

    from netx_export.hdf5_io import write_netx
    from netx_export.quantize import UWrapWarning, quantize

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be positive, got {args.batch_size}")
    out = Path(args.out)
    if out.resolve() == Path(args.model).resolve():
        raise ConfigError(f"--out {out} would overwrite the input model")
    net = load_network(args.model)
    calibration = load_calibration(args, net.params, net.provenance)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UWrapWarning)   # shown in the report instead
        fx, report = quantize(net, weight_bits=args.weight_bits, strategy=args.scale, calibration=calibration,
                              clip=args.clip, batch_size=args.batch_size)
    fx.metadata["exported_from"] = str(args.model)
    write_netx(fx, out)
    rpath = report.save(report_path(args))
    if args.json:
        print_json({**report.to_dict(), "out": str(out), "report": str(rpath)})
    else:
        print(report.table())
        print(f"wrote {out} ({fx.n_input} -> {fx.hidden.size} recurrent -> {fx.readout.size}) and {rpath}")
    return 0
