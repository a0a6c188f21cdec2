"""Per-epoch metrics, appended to RUN_DIR/metrics.csv and RUN_DIR/metrics.jsonl."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from eventprop_core.atomic import atomic_write_text
from eventprop_core.errors import OutputWriteError

COLUMNS = ("epoch", "train_loss", "train_accuracy", "valid_accuracy", "lr", "spikes_per_neuron",
           "silent_neurons", "seconds")
CSV_NAME, JSONL_NAME = "metrics.csv", "metrics.jsonl"


def _csv_line(row: dict | None) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS if row is None else [row[c] for c in COLUMNS])
    return buf.getvalue()


def append_metrics(run_dir, row: dict) -> None:
    run_dir = Path(run_dir)
    csv_path = run_dir / CSV_NAME
    new = not csv_path.exists()
    # Appends are not atomic; a torn last line is repaired on resume (rewrite_metrics from the checkpoint).
    for path, text in ((csv_path, (_csv_line(None) if new else "") + _csv_line(row)),
                       (run_dir / JSONL_NAME, json.dumps({c: row[c] for c in COLUMNS}) + "\n")):
        try:
            with open(path, "a") as fh:
                fh.write(text)
        except OSError as exc:
            raise OutputWriteError(f"{path}: cannot write ({exc.strerror or exc}); the checkpoint is intact, "
                                   f"free some space and continue with `eventprop train --resume {run_dir}`") from None


def rewrite_metrics(run_dir, rows: list[dict]) -> None:
    """Replace both files with exactly these rows (used on resume, so that an epoch that was logged
    but not checkpointed before a kill is not listed twice)."""
    run_dir = Path(run_dir)
    atomic_write_text(run_dir / CSV_NAME, _csv_line(None) + "".join(_csv_line(r) for r in rows))
    atomic_write_text(run_dir / JSONL_NAME, "".join(json.dumps({c: r[c] for c in COLUMNS}) + "\n" for r in rows))


def read_metrics(run_dir) -> list[dict]:
    path = Path(run_dir) / JSONL_NAME
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
