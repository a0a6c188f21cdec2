"""`eventprop compare RUN_DIR`: rebuild a pipeline run's report from its saved results."""
from __future__ import annotations

from pathlib import Path

from .common import add_debug

HELP = "rebuild the comparison report (report.md, figures) of a pipeline run from its saved results"


def register(sub) -> None:
    p = sub.add_parser("compare", help=HELP, description=HELP + ". Nothing is re-simulated: the numbers come "
                       "from RUN_DIR/results/ and the model files written by `eventprop pipeline`.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="folder of an `eventprop pipeline` run")
    add_debug(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..pipeline.errors import RunDirError
    from ..report import build_report

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: run folder not found")
    from ..pipeline.manifest import MANIFEST_NAME
    from ..run_folder import RunFolder

    with RunFolder(run_dir, "pipeline", mode="resume", legacy=(MANIFEST_NAME,)):
        summary = build_report(run_dir)
    print(summary["accuracy_table"])
    print(f"\nreport: {run_dir / 'report.md'} ({len(summary['figures'])} figures in {run_dir / 'figures'})")
    return 0
