"""`eventprop demo`: the main job on the built-in synthetic data (what `make demo` runs)."""
from __future__ import annotations

from pathlib import Path

from ..data.registry import load_dataset
from ..data.synthetic import SyntheticConfig
from ..network import Network
from .common import add_debug, progress_enabled

HELP = "run the main job on the built-in synthetic data (no download needed)"


def register(sub) -> None:
    p = sub.add_parser("demo", help=HELP, description=HELP + ".")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--seed", type=int, default=0, help="seed for data and initial weights (default 0)")
    add_debug(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..evaluation import evaluate_float

    out = Path(args.out)
    cfg = SyntheticConfig(seed=args.seed)
    data = load_dataset("synthetic", "test", synthetic=cfg)
    print(f"synthetic test split: {len(data)} samples, {data.n_channels} channels, {data.n_classes} classes, "
          f"{data.timesteps} steps; {data.spikes_per_sample().mean():.0f} input spikes per sample")
    net = Network.initialise(data.n_channels, 256, data.n_classes, seed=args.seed)
    path = net.save(out / "init.npz")
    result = evaluate_float(net, data, progress=progress_enabled())
    print(f"freshly initialised network ({path}): accuracy {100 * result.accuracy:.2f}% "
          f"(chance {100 / data.n_classes:.1f}%), {result.hidden_spikes.mean() / net.n_hidden:.1f} spikes per hidden neuron")
    return 0
