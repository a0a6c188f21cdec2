"""Atomic file writes: a reader never sees a half-written file, an interrupted write loses nothing.

A failed write (disk full, read-only folder, permission denied) removes its temporary file and
raises OutputWriteError naming the user's path, never the temporary name. Temporary files are
`.<name>.<random>.tmp` next to the target (TEMP_GLOB); only a kill can leave one behind, and
run folders remove them when they are opened again (run_folder.py).
"""
from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

from .errors import OutputWriteError

TEMP_SUFFIX = ".tmp"
TEMP_GLOB = f".*{TEMP_SUFFIX}"
STALE_SECONDS = 3600   # a temporary file of the same target older than this was left by a kill


def remove_stale_siblings(path: Path) -> None:
    """Delete `.NAME.*.tmp` files of this very target left by a killed write (outside run folders,
    which clean up when they are opened); recent ones may belong to a writer still running."""
    import glob
    import time

    cutoff = time.time() - STALE_SECONDS
    for old in path.parent.glob(f".{glob.escape(path.name)}.*{TEMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            if old.is_file() and old.stat().st_mtime < cutoff:
                old.unlink()


def _write_error(path: Path, exc: OSError) -> OutputWriteError:
    reason = exc.strerror or str(exc)
    return OutputWriteError(f"{path}: cannot write ({reason}); nothing was changed there. "
                            f"Free some space or choose another location")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path next to `path`; on success it replaces `path` in one rename."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_siblings(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal permissions
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, (FileNotFoundError, IsADirectoryError,
                                                             NotADirectoryError)):
            raise _write_error(path, exc) from None
        if isinstance(exc, (IsADirectoryError, NotADirectoryError)):
            raise OutputWriteError(f"{path}: cannot write ({exc.strerror}: "
                                   f"{exc.filename or path})") from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def save_npz(path: str | os.PathLike, *, compressed: bool = False, **arrays) -> Path:
    """np.savez into memory, then one atomic write: a full disk fails cleanly (no ZipFile left
    half-closed, whose finaliser would print a second error), and never pickles."""
    import numpy as np

    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    objects = [k for k, v in arrays.items() if v.dtype.hasobject]
    if objects:
        raise TypeError(f"{path}: refusing to pickle object arrays {objects}")
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
