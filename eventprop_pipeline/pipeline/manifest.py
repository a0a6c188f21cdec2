"""`stages.json`: which pipeline stages finished, on what inputs, and which files they wrote.

A stage counts as done only if its record says so, its input fingerprint is unchanged and every
output file it recorded still exists with the same SHA-256. `--resume` skips exactly those stages.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from eventprop_core.atomic import atomic_write_text
from eventprop_core.provenance import sha256_file, utc_now
from .errors import RunDirError

MANIFEST_NAME = "stages.json"
MANIFEST_VERSION = 1


def now() -> str:
    return utc_now("milliseconds")


def fingerprint(obj) -> str:
    """Stable hash of a JSON-able description of a stage's inputs."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


class StageManifest:
    """The stage records of one run folder; every change is written to disk atomically."""

    def __init__(self, run_dir, stages: dict | None = None):
        self.run_dir = Path(run_dir).absolute()
        self.stages: dict[str, dict] = stages or {}

    @property
    def path(self) -> Path:
        return self.run_dir / MANIFEST_NAME

    @classmethod
    def load(cls, run_dir) -> "StageManifest":
        path = Path(run_dir) / MANIFEST_NAME
        if not path.is_file():
            return cls(run_dir)
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except (OSError, ValueError) as exc:   # ValueError: invalid JSON or UTF-8
            raise RunDirError(f"{path}: unreadable stage manifest ({exc}); delete the run folder or choose another --out") from None
        if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION or not isinstance(data.get("stages"), dict):
            raise RunDirError(f"{path}: not a version-{MANIFEST_VERSION} stage manifest; choose another --out")
        for name, rec in data["stages"].items():
            outputs = rec.get("outputs", {}) if isinstance(rec, dict) else None
            if not isinstance(outputs, dict) or not all(
                    isinstance(e, dict) and isinstance(e.get("path"), str) and isinstance(e.get("sha256"), str)
                    for e in outputs.values()):
                raise RunDirError(f"{path}: stage {name!r} has a malformed record (hand-edited?); delete that "
                                  f"stage's entry to redo it, or choose another --out")
        return cls(run_dir, data["stages"])

    def save(self) -> None:
        atomic_write_text(self.path, json.dumps({"version": MANIFEST_VERSION, "stages": self.stages},
                                                indent=2, sort_keys=True) + "\n")

    def record(self, name: str) -> dict | None:
        return self.stages.get(name)

    def is_done(self, name: str, inputs_fingerprint: str) -> bool:
        rec = self.stages.get(name)
        if not rec or rec.get("status") != "done" or rec.get("fingerprint") != inputs_fingerprint:
            return False
        for entry in rec.get("outputs", {}).values():
            path = self.run_dir / entry["path"]
            if not path.is_file() or sha256_file(path) != entry["sha256"]:
                return False
        return True

    def start(self, name: str, inputs_fingerprint: str) -> None:
        self.stages[name] = {"status": "running", "fingerprint": inputs_fingerprint, "started": now(),
                             "outputs": {}, "info": {}}
        self.save()

    def finish(self, name: str, status: str, *, outputs: dict | None = None, info: dict | None = None,
               message: str | None = None) -> dict:
        """Close a stage: status done | failed | skipped; outputs maps a label to a path in the run folder."""
        rec = self.stages.setdefault(name, {"started": now(), "fingerprint": None})
        rec["status"] = status
        rec["finished"] = now()
        rec["outputs"] = {label: {"path": str(Path(p).relative_to(self.run_dir)) if Path(p).is_absolute() else str(p),
                                  "sha256": sha256_file(self.run_dir / p if not Path(p).is_absolute() else p)}
                          for label, p in (outputs or {}).items()}
        rec["info"] = info or {}
        if message:
            rec["message"] = message
        else:
            rec.pop("message", None)
        self.save()
        return rec

    def output_hashes(self, *names: str) -> dict:
        """SHA-256 of the recorded outputs of the named stages (feeds downstream fingerprints)."""
        return {f"{n}.{label}": entry["sha256"] for n in names
                for label, entry in self.stages.get(n, {}).get("outputs", {}).items()}
