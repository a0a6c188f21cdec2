"""`eventprop`: the command-line entry point. Each subcommand lives in its own module of this package
and exposes `register(subparsers)`, which adds its parser and sets `func(args) -> int`."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from eventprop_core.errors import Interrupted, PipelineError
from ..interrupts import ignore_further_interrupts, handling_interrupts
from .common import check_common_options

SUBCOMMAND_MODULES = (
    "eventprop_pipeline.cli.evaluate_cmd",
    "eventprop_pipeline.cli.import_cmd",
    "eventprop_pipeline.cli.import_nir_cmd",
    "eventprop_pipeline.cli.export_cmd",
    "eventprop_pipeline.cli.data_cmd",
    "eventprop_pipeline.cli.demo_cmd",
    "eventprop_pipeline.cli.pipeline_cmd",
    "eventprop_pipeline.cli.compare_cmd",
    "eventprop_pipeline.cli.train_cmd",
    "eventprop_pipeline.cli.finetune_cmd",
)

DESCRIPTION = """\
Train recurrent spiking networks with Eventprop and deploy them to Intel Loihi 2.

Typical flow:
  eventprop import-mlgenn CKPT_DIR --epoch 29 --out model.npz   # or: eventprop train ...
  eventprop evaluate model.npz --dataset shd --data-root datasets
  eventprop finetune model.npz --weight-bits 2 --out runs/ft2  # recover few-bit accuracy
Run `eventprop COMMAND --help` for the options of each command.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eventprop", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show full Python tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _one_line_warnings() -> None:
    """Data and device warnings (spikes cropped by T, --device auto falling back to the CPU) as
    `warning: ...` on stderr, not Python's two-line form."""
    import warnings

    from ..data.binning import CropWarning
    from ..devices import DeviceWarning
    default = warnings.showwarning
    if getattr(default, "one_line_crop_warnings", False):
        return

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, (CropWarning, DeviceWarning)):
            print(f"warning: {message}", file=file or sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)
    show.one_line_crop_warnings = True
    warnings.showwarning = show


def main(argv=None) -> int:
    # argv None: called as the `eventprop` program, whose process ends when main() returns.
    with handling_interrupts(process_exits_after=argv is None):
        try:
            rc = _main(argv)
        except KeyboardInterrupt:    # a second Ctrl-C while the first was being handled
            print("interrupted", file=sys.stderr)
            rc = 130
    if argv is None:
        _exit_now_if_a_rank_was_lost(rc)
    return rc


def _exit_now_if_a_rank_was_lost(rc: int) -> None:
    """After a failed collective, gloo's threads would abort the interpreter's exit (SIGABRT, exit
    -6) after the error was printed; end the process with the intended code instead."""
    from ..training.distributed import lost_contact

    if lost_contact():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)


def _main(argv=None) -> int:
    _one_line_warnings()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return dispatch(args)


def dispatch(args) -> int:
    """Run a parsed command; project errors print as one `error: ...` line (exit 1)."""
    try:
        check_common_options(args)
        return int(args.func(args) or 0)
    except PipelineError as exc:
        if isinstance(exc, Interrupted):
            ignore_further_interrupts()
        if args.debug:
            raise
        if isinstance(exc, Interrupted):
            print(str(exc), file=sys.stderr)
        else:
            print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    except KeyboardInterrupt:
        ignore_further_interrupts()
        if args.debug:
            raise
        print("interrupted", file=sys.stderr)
        return 130
    except MemoryError as exc:
        if args.debug:
            raise
        print(f"error: out of memory ({exc}); use smaller inputs (--limit, --batch-size, timesteps)", file=sys.stderr)
        return 1
    except OSError as exc:   # disk full, permission denied, ...: name the file, no traceback
        if args.debug:
            raise
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"error: {where}{one_line(exc.strerror or str(exc))}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: still one line, with the way to get the details
        if args.debug:
            raise
        print(f"error: unexpected {type(exc).__name__}: {one_line(str(exc))} (a bug; rerun with --debug for the "
              f"traceback and please report it)", file=sys.stderr)
        return 1


def one_line(text: str) -> str:
    """Error messages stay on one line (HDF5 and YAML messages carry newlines)."""
    return " ".join(text.split())

if __name__ == "__main__":
    sys.exit(main())
