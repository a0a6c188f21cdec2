"""Ctrl-C handling: after the first interrupt, further ones are ignored while the command cleans up
and reports, so a double Ctrl-C never turns into a traceback or a half-done cleanup.

Only inside the CLI (`handling_interrupts()`, entered by main()): library callers (notebooks,
tests calling train() directly) keep their own SIGINT handler, and the previous handler is always
restored, so no process-wide SIG_IGN leaks into later code or child processes (which inherit it).
"""
from __future__ import annotations

import contextlib
import signal
import threading

_active = 0   # > 0 while a CLI command runs in this process
_ignoring = False


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def ignore_further_interrupts() -> None:
    global _ignoring
    if _active and _main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _ignoring = True


@contextlib.contextmanager
def handling_interrupts(process_exits_after: bool = False):
    """Scope of a CLI command: enables ignore_further_interrupts and restores SIGINT on exit.

    process_exits_after: the command line's own process ends right after; once interrupted it keeps
    ignoring Ctrl-C until it has exited (a second Ctrl-C during interpreter shutdown would print
    a traceback from an atexit handler)."""
    global _active, _ignoring
    if not _main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    _active += 1
    _ignoring = False
    try:
        yield
    finally:
        _active -= 1
        if not (process_exits_after and _ignoring):
            signal.signal(signal.SIGINT, previous)
        _ignoring = False
