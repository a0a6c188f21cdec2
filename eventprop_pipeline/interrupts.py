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


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def ignore_further_interrupts() -> None:
    if _active and _main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def handling_interrupts():
    """Scope of a CLI command: enables ignore_further_interrupts and restores SIGINT on exit."""
    global _active
    if not _main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    _active += 1
    try:
        yield
    finally:
        _active -= 1
        signal.signal(signal.SIGINT, previous)
