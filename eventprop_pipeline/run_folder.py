"""Run folders (train, pipeline) carry a marker and an advisory lock (docs/reliability.md).

- Marker `.eventprop-run.json` ({"tool": "eventprop", "kind": ...}): only a folder made by this
  tool is resumed or written into; any other non-empty folder is refused. Runs made before the
  marker existed are recognised by their own files (checkpoint.npz, stages.json) and adopted.
- Lock `.eventprop.lock`: fcntl.flock, held while the command runs. A second process on the same
  folder is refused at once, naming the holder's pid; the kernel drops the lock when a process dies,
  so a killed run never leaves a stale lock.
- On opening, temporary files of writes killed mid-way (atomic.TEMP_GLOB) are removed.
- A folder created by a command that then fails before writing anything is removed again.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

from eventprop_core.atomic import TEMP_GLOB, atomic_write_text
from eventprop_core.errors import RunDirError
from eventprop_core.provenance import utc_now

MARKER = ".eventprop-run.json"
LOCK = ".eventprop.lock"
TOOL = "eventprop"
OWN_FILES = (MARKER, LOCK)

try:
    import fcntl
except ImportError:   # Windows: no advisory locks; the marker checks still apply
    fcntl = None


def read_marker(folder: Path) -> dict | None:
    path = folder / MARKER
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{path}: unreadable run marker ({exc}); this is not a usable run folder") from None
    if not isinstance(data, dict) or data.get("tool") != TOOL or not isinstance(data.get("kind"), str):
        raise RunDirError(f"{path}: not an eventprop run marker; choose another folder")
    return data


def _user_entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in OWN_FILES)


class RunFolder:
    """Claim a run folder for this process: `with RunFolder(path, "train", mode="new"): ...`.

    mode: "new" (must not exist or be empty), "force" (new, or an existing run of this kind that
    the caller will overwrite), "resume" (an existing run of this kind), "new_or_resume" (either).
    legacy: files that identify a run of this kind made before markers existed.
    """

    def __init__(self, path, kind: str, *, mode: str, legacy: tuple[str, ...] = (), hint: str = ""):
        self.path, self.kind, self.mode, self.legacy, self.hint = Path(path), kind, mode, legacy, hint
        self.created = False
        self._fd: int | None = None

    # -- checks -----------------------------------------------------------------------------------
    def _is_ours(self) -> bool:
        marker = read_marker(self.path)
        if marker is not None:
            if marker["kind"] != self.kind:
                raise RunDirError(f"{self.path} holds an eventprop {marker['kind']} run, not a {self.kind} run; "
                                  f"choose another folder")
            return True
        return any((self.path / name).is_file() for name in self.legacy)

    def check(self) -> None:
        """Refuse a folder this command must not use (no side effects)."""
        p = self.path
        if p.exists() and not p.is_dir():
            raise RunDirError(f"{p}: exists and is not a folder; choose another run folder")
        exists_with_files = p.is_dir() and bool(_user_entries(p))
        if self.mode == "resume" and not p.is_dir():
            raise RunDirError(f"{p}: run folder not found")
        if not exists_with_files:
            if self.mode == "resume":
                raise RunDirError(f"{p}: empty folder, no {self.kind} run to resume")
            return
        ours = self._is_ours()
        if not ours:
            raise RunDirError(f"{p}: holds files not written by eventprop ({', '.join(_user_entries(p)[:3])}"
                              f"{', ...' if len(_user_entries(p)) > 3 else ''}); only an eventprop {self.kind} "
                              f"run folder is resumed or written into. Choose a new or empty folder")
        if self.mode == "new":
            raise RunDirError(f"{p} already holds a {self.kind} run{self.hint}")

    # -- claim / release ----------------------------------------------------------------------------
    def __enter__(self) -> "RunFolder":
        self.check()
        if not self.path.exists():
            try:
                self.path.mkdir(parents=True)
            except OSError as exc:
                raise RunDirError(f"{self.path}: cannot create the run folder ({exc.strerror or exc})") from None
            self.created = True
        try:
            self._lock()
            if read_marker(self.path) is None:
                atomic_write_text(self.path / MARKER, json.dumps(
                    {"tool": TOOL, "kind": self.kind, "created": utc_now()}, indent=2) + "\n")
            remove_stale_temporaries(self.path)
        except BaseException:
            self._release(discard=True)
            raise
        return self

    def _lock(self) -> None:
        if fcntl is None:
            return
        lock_path = self.path / LOCK
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunDirError(f"{lock_path}: cannot create the lock file ({exc.strerror or exc}); "
                              f"is the folder writable?") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = ""
            with contextlib.suppress(OSError, ValueError):
                holder = os.pread(fd, 64, 0).decode().strip()
            os.close(fd)
            raise RunDirError(f"{self.path} is in use by another eventprop process"
                              f"{f' (pid {holder})' if holder else ''}; wait for it to finish or stop it, "
                              f"or choose another folder") from None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def _release(self, discard: bool) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        if discard and self.created and self.path.is_dir() and not _user_entries(self.path):
            shutil.rmtree(self.path, ignore_errors=True)

    def __exit__(self, exc_type, exc, tb) -> None:
        self._release(discard=exc_type is not None)


def clear_run_files(run_dir: Path, names, force: bool, kind: str, command: str) -> None:
    """Start a new run in run_dir: its earlier run files are an error, or removed with force
    (`command` is the CLI command, e.g. "train", named in the advice)."""
    from eventprop_core.errors import ConfigError

    existing = [name for name in names if (run_dir / name).exists()]
    if existing and not force:
        raise ConfigError(f"{run_dir} already holds a {kind} ({', '.join(existing)}); continue it with "
                          f"`eventprop {command} --resume {run_dir}`, start over with --force, or choose another --out")
    for name in existing:
        (run_dir / name).unlink()
    run_dir.mkdir(parents=True, exist_ok=True)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete `.NAME.XXXX.tmp` files left by writes that were killed (the folder is locked by us)."""
    removed = []
    for tmp in folder.rglob(TEMP_GLOB):
        if tmp.is_file():
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp)
    return removed
