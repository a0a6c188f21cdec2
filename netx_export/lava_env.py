"""Where Lava lives: a separate Python 3.10 environment (lava-nc 0.10 / lava-dl 0.6 pin Python 3.10,
numpy < 2 and torch 2.3), which the core runs as a subprocess (docs/lava.md).

Looked up in this order: $EVENTPROP_LAVA_PYTHON; `.venv-lava/bin/python` next to the source tree
(what `make lava` builds); this interpreter, if Lava imports in it (a single Python 3.10 environment).
"""
from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ENV_VAR = "EVENTPROP_LAVA_PYTHON"
SOURCE_TREE = Path(__file__).resolve().parents[1]
HOW_TO_ENABLE = ("install a Python 3.10 and run `make lava` (or `make lava PYTHON310=/path/to/python3.10`), "
                 f"or set {ENV_VAR} to a Python 3.10 that has lava-nc 0.10, lava-dl 0.6 and this project")

# Run by the candidate interpreter: Lava and this project's worker must both be importable there.
_PROBE = ("import importlib.util as u, sys; "
          "sys.exit(0 if all(u.find_spec(m) for m in ('lava', 'lava.lib.dl', 'netx_export')) else 3)")


class LavaNotFound(Exception):
    """No Python environment with Lava was found; the message says where we looked and how to fix it."""


def _works(python: str) -> bool:
    try:
        return subprocess.run([python, "-c", _PROBE], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=60, cwd=SOURCE_TREE).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _lava_in_this_interpreter() -> bool:
    try:
        return importlib.util.find_spec("lava") is not None and importlib.util.find_spec("lava.lib.dl") is not None
    except (ImportError, ValueError):
        return False


@functools.lru_cache(maxsize=None)
def _find(env_value: str | None) -> str:
    if env_value:
        if not _works(env_value):
            raise LavaNotFound(f"{ENV_VAR}={env_value}: that Python cannot import lava-nc, lava-dl and this "
                               f"project (netx_export); {HOW_TO_ENABLE}")
        return env_value
    local = SOURCE_TREE / ".venv-lava" / "bin" / "python"
    if local.exists() and _works(str(local)):
        return str(local)
    if _lava_in_this_interpreter():
        return sys.executable
    raise LavaNotFound(f"Lava is not available: no Python 3.10 environment with lava-nc 0.10 and lava-dl 0.6 "
                       f"was found (looked at ${ENV_VAR}, {local} and this Python); {HOW_TO_ENABLE}")


def find_lava_python() -> str:
    """The interpreter that runs Lava; LavaNotFound (with how to enable it) when there is none."""
    return _find(os.environ.get(ENV_VAR) or None)


def lava_unavailable_reason() -> str | None:
    """None when Lava can run, else the one-line reason (for skipping the Lava check)."""
    try:
        find_lava_python()
    except LavaNotFound as exc:
        return str(exc)
    return None


def run_in_lava(code: str, *args: str, timeout: float = 300) -> str:
    """Run Python code in Lava's environment and return its stdout (Lava's banners go to stderr or
    come before the last line: callers print their result last). A failure raises LavaNotFound or
    RuntimeError with the end of its error output."""
    python = find_lava_python()
    try:
        r = subprocess.run([python, "-c", code, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout, cwd=SOURCE_TREE, start_new_session=True)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"Lava did not finish within {timeout:.0f} s") from None
    if r.returncode != 0:
        raise RuntimeError(f"Lava failed (exit code {r.returncode}): {r.stderr.strip()[-2000:]}")
    return r.stdout
