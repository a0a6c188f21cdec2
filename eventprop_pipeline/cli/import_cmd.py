"""`eventprop import-mlgenn`: convert an mlGeNN Numpy-serialiser checkpoint to a network file."""
from __future__ import annotations

from ..mlgenn_import import DEFAULT_CONNECTIONS, import_mlgenn
from eventprop_core.params import ModelParams
from .common import add_debug

HELP = "import an mlGeNN checkpoint (<epoch>-<connection>-g.npy files) as a network .npz"


def register(sub) -> None:
    d = ModelParams()
    p = sub.add_parser("import-mlgenn", help=HELP, description=HELP + ". Layer sizes are inferred from the "
                       "files; neuron parameters are not stored by mlGeNN, so give the ones used in training.")
    p.add_argument("directory", help="folder with mlGeNN's Numpy serialiser files")
    p.add_argument("--epoch", required=True, help="epoch key of the files, e.g. 29 for 29-input_hidden-g.npy")
    p.add_argument("--out", required=True, help="output network file (.npz)")
    for key, default in DEFAULT_CONNECTIONS.items():
        p.add_argument(f"--{key.replace('_', '-')}-name", dest=f"conn_{key}", default=default,
                       help=f"connection name of {key} (default {default}; the paper uses "
                            f"Conn_{'_'.join(w.capitalize() for w in key.split('_'))})")
    p.add_argument("--tau-mem", type=float, default=d.tau_mem, help=f"membrane time constant, ms (default {d.tau_mem})")
    p.add_argument("--tau-syn", type=float, default=d.tau_syn, help=f"synaptic time constant, ms (default {d.tau_syn})")
    p.add_argument("--v-thresh", type=float, default=d.v_thresh, help=f"hidden threshold (default {d.v_thresh})")
    p.add_argument("--dt", type=float, default=d.dt, help=f"time step, ms (default {d.dt})")
    p.add_argument("--timesteps", type=int, default=d.timesteps, help=f"steps per sample (default {d.timesteps})")
    add_debug(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..output_paths import check_outputs, mlgenn_input_paths

    check_outputs({"mlGeNN checkpoint": mlgenn_input_paths(args.directory)}, {"--out": args.out})
    params = ModelParams(tau_mem=args.tau_mem, tau_syn=args.tau_syn, v_thresh=args.v_thresh, dt=args.dt,
                         timesteps=args.timesteps)
    conns = {k: getattr(args, f"conn_{k}") for k in DEFAULT_CONNECTIONS}
    net = import_mlgenn(args.directory, args.epoch, connections=conns, params=params)
    net.save(args.out)
    print(f"wrote {args.out}: {net.n_input} -> {net.n_hidden} (recurrent) -> {net.n_output}")
    return 0
