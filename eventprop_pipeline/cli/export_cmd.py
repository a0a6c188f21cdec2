"""`eventprop export`: quantize a float network to Loihi 2 fixed point and write a NetX HDF5 file, or
(--format nir) write the float network as a NIR graph for other simulators and chips (docs/nir.md)."""
from __future__ import annotations

import argparse
from pathlib import Path

from eventprop_core.errors import ConfigError
from eventprop_core.network import load_network

from ..nir_io.mapping import CONVENTIONS
from .common import add_data_options, add_debug, print_json

HELP = "quantize a network (.npz) to Loihi 2 fixed point and write a NetX HDF5 file for Lava"
DEFAULT_CALIBRATION_LIMIT = 256
DESCRIPTION = HELP + """.

Weights get one step per layer (hidden: input and recurrent together):
  --scale percentile  the reference exporter's power of two from the 99th percentile of |w|
  --scale calibrate   search each layer's step (emulator runs) for the most faithful conversion: the most
                      samples where the fixed-point network predicts what the float model predicts, then
                      the closest readout scores; label accuracy never decides. On a calibration set
                      (--dataset/--split/--limit; default split train, first 256 samples)
With --dataset, the report also gives float and fixed-point accuracy and their agreement on that set.
The report (table on stdout, JSON next to --out unless --report) lists steps, clipped weights,
weight errors and warnings.

--format nir writes the float network (no quantization) as a NIR graph (Input -> Linear -> CubaLIF with
a recurrent Linear -> Linear -> CubaLI -> Output) for other simulators and chips (checked: Norse; the
traps of other clients are in docs/nir.md); --nir-convention says how its parameters encode this model's
discrete steps. The quantization options do not apply to it."""


def register(sub) -> None:
    p = sub.add_parser("export", help=HELP, description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="network file (.npz float model)")
    p.add_argument("--out", required=True, help="file to write (NetX HDF5, e.g. net.h5; or model.nir with --format nir)")
    p.add_argument("--format", choices=("netx", "nir"), default="netx",
                   help="netx: quantized NetX HDF5 for Lava/Loihi 2 (default); nir: float NIR graph")
    p.add_argument("--nir-convention", choices=CONVENTIONS, default="discrete",
                   help="NIR only: discrete (default) = one forward-Euler step of dt reproduces this model exactly "
                        "(Norse, snnTorch-style simulators); continuous = the ODE this model discretises "
                        "(tau unchanged, r = 1, w_in = tau_syn)")
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

    from ..output_paths import check_outputs, data_input_paths

    out = Path(args.out)
    check_outputs({"model": args.model, "data set file": data_input_paths(args.dataset, args.data_root)},
                  {"--out": out, "--report" if args.report else "report (next to --out)": report_path(args)})
    net = load_network(args.model)
    if args.format == "nir":
        return run_nir(args, net, out)
    calibration = load_calibration(args, net.params, net.provenance)
    float_scores = None
    if calibration is not None:   # the float model's readout: what a faithful conversion reproduces
        from ..evaluation import evaluate_float
        float_scores = evaluate_float(net, calibration, batch_size=args.batch_size, device="cpu").score
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UWrapWarning)   # shown in the report instead
        fx, report = quantize(net, weight_bits=args.weight_bits, strategy=args.scale, calibration=calibration,
                              clip=args.clip, batch_size=args.batch_size,
                              float_scores=float_scores)
    fx.metadata["exported_from"] = str(args.model)
    write_netx(fx, out)
    rpath = report.save(report_path(args))
    if args.json:
        print_json({**report.to_dict(), "out": str(out), "report": str(rpath)})
    else:
        print(report.table())
        print(f"wrote {out} ({fx.n_input} -> {fx.hidden.size} recurrent -> {fx.readout.size}) and {rpath}")
    return 0


def run_nir(args, net, out: Path) -> int:
    from ..nir_io import write_nir

    netx_only = [flag for flag, used in (("--weight-bits", args.weight_bits != 8), ("--scale", args.scale != "percentile"),
                                         ("--clip", args.clip), ("--report", args.report), ("--dataset", args.dataset))
                 if used]
    if netx_only:
        raise ConfigError(f"{', '.join(netx_only)} only apply to --format netx (NIR gets the float weights, "
                          f"not quantized)")
    write_nir(net, out, convention=args.nir_convention)
    summary = {"out": str(out), "format": "nir", "convention": args.nir_convention, "dt_s": net.params.dt / 1000,
               "sizes": {"input": net.n_input, "hidden": net.n_hidden, "output": net.n_output}}
    if args.json:
        print_json(summary)
    else:
        print(f"wrote {out}: NIR graph {net.n_input} -> {net.n_hidden} CubaLIF (recurrent) -> {net.n_output} CubaLI, "
              f"{args.nir_convention} convention, dt {net.params.dt / 1000:g} s (float weights, not quantized)")
    return 0
