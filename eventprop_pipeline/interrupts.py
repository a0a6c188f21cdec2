"""Ctrl-C handling: after the first interrupt, further ones are ignored while the command cleans up
and reports, so a double Ctrl-C never turns into a traceback or a half-done cleanup."""
from __future__ import annotations

import contextlib
import signal
import threading


def ignore_further_interrupts() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def restored_sigint_handler():
    """Put back the SIGINT handler on exit (the CLI's main() is also called in-process by tests)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
