"""Reading numpy archives written by this tool (or by hand): never unpickled, and every failure of a
damaged file (numpy raises ValueError, EOFError, BadZipFile, tokenize errors from a mangled header,
MemoryError from a header claiming a huge shape, ...) becomes one error naming the file."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import PipelineError


def _reason(exc: BaseException) -> str:
    if "pickle" in str(exc):
        return "it holds pickled (object) arrays, which are never loaded (they could run code)"
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def read_npz(path, error: type[PipelineError], what: str) -> dict[str, np.ndarray]:
    """All arrays of an .npz archive; a damaged or non-archive file raises `error` naming `path`."""
    path = Path(path)
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise error(f"{path}: a single .npy array, not an .npz archive ({what})")
        with loaded as npz:
            return {k: npz[k] for k in npz.files}
    except PipelineError:
        raise
    except Exception as exc:   # any parse failure means a damaged file; the reason is kept
        raise error(f"{path}: not a readable {what} (truncated or corrupt?): {_reason(exc)}") from None


def read_npy(path, error: type[PipelineError], what: str) -> np.ndarray:
    """One array of an .npy file; an archive or a damaged file raises `error` naming `path`."""
    path = Path(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise error(f"{path}: not a readable {what} (truncated or corrupt?): {_reason(exc)}") from None
    if not isinstance(arr, np.ndarray):
        arr.close()
        raise error(f"{path}: an .npz archive, not a single .npy array ({what})")
    return arr
