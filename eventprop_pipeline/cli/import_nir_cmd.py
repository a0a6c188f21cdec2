"""`eventprop import-nir`: convert a NIR graph of this model's shape (from this project or another tool)
to a network .npz."""
from __future__ import annotations

import argparse
from pathlib import Path

from eventprop_core.errors import ConfigError
from ..nir_io.mapping import CONVENTIONS
from .common import add_debug, print_json

HELP = "import a NIR graph (.nir) as a network .npz"
DESCRIPTION = HELP + """.

The graph must be Input -> Linear -> CubaLIF (optionally with a recurrent Linear in a cycle) -> Linear ->
CubaLI (or a CubaLIF with v_threshold = inf) -> Output, with parameters shared by all neurons.
NIR files do not say how their continuous parameters were discretised: the convention and the time step
are taken from the options, else from this project's metadata, else recognised from the parameters
(snnTorch writes r = tau_mem/dt); graphs from Norse need --dt. See docs/nir.md."""


def register(sub) -> None:
    p = sub.add_parser("import-nir", help=HELP, description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="NIR file (HDF5, as written by nir.write)")
    p.add_argument("--out", required=True, help="output network file (.npz)")
    p.add_argument("--convention", choices=("auto",) + CONVENTIONS, default="auto",
                   help="how the parameters encode a time step: discrete (forward Euler, Norse/snnTorch) or "
                        "continuous (this model's ODE); default auto: metadata, else recognised")
    p.add_argument("--dt", type=float, default=None,
                   help="simulation step in the graph's time unit (default: from the metadata or r = tau_mem/dt)")
    p.add_argument("--time-unit", choices=("s", "ms"), default=None,
                   help="time unit of the graph's time constants (default: metadata, else s)")
    p.add_argument("--timesteps", type=int, default=None,
                   help="steps per sample for the readout average (default: metadata, else 1000)")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    add_debug(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..nir_io import read_nir

    out = Path(args.out)
    if out.resolve() == Path(args.model).resolve():
        raise ConfigError(f"--out {out} would overwrite the input NIR file")
    if args.timesteps is not None and args.timesteps < 1:
        raise ConfigError(f"--timesteps must be positive, got {args.timesteps}")
    net, conv = read_nir(args.model, convention=args.convention, dt=args.dt, time_unit=args.time_unit,
                         timesteps=args.timesteps)
    net.save(out)
    if args.json:
        print_json({"out": str(out), "convention": conv.name, "dt": conv.dt, "time_unit": conv.time_unit,
                    "how": conv.reason, "params": net.params.to_dict(),
                    "sizes": {"input": net.n_input, "hidden": net.n_hidden, "output": net.n_output}})
    else:
        p = net.params
        print(f"{conv.reason}")
        print(f"wrote {out}: {net.n_input} -> {net.n_hidden} (recurrent) -> {net.n_output}; tau_mem {p.tau_mem:.6g} ms, "
              f"tau_syn {p.tau_syn:.6g} ms, v_thresh {p.v_thresh:g}, dt {p.dt:g} ms, {p.timesteps} steps")
    return 0
