"""Ctrl-C and SIGTERM during long work (training, a sweep): the first asks the work to stop at its next safe point,
a second stops it at once. The one signal-handling helper of the trainer and the sweep."""
from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopFlag:
    """Set by the first SIGINT / SIGTERM: ``stop`` is True from then on (``event`` is set)."""

    def __init__(self, event: threading.Event | None = None) -> None:
        self.event = event if event is not None else threading.Event()

    @property
    def stop(self) -> bool:
        return self.event.is_set()


@contextmanager
def stop_on_signals(event: threading.Event | None = None, on_signal: Callable[[], None] = lambda: None, *,
                    second_raises: bool = True, keep: bool = False) -> Iterator[StopFlag]:
    """The first SIGINT or SIGTERM sets the flag (and ``event``, when given); a second raises KeyboardInterrupt
    (stop at once) unless ``second_raises`` is off (a parent that only forwards signals to its workers).
    ``on_signal`` runs on every signal. On exit the previous handlers come back, or with ``keep`` (a DDP rank)
    signals are only noted from then on: torchrun's agent SIGTERMs every rank as soon as one has failed, and each
    must still write and say what it has to before it exits (which it does at once). Outside the main thread
    (where Python cannot handle signals) the flag is only returned."""
    flag = StopFlag(event)
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: Any) -> None:
        on_signal()
        if flag.stop and second_raises:
            raise KeyboardInterrupt
        flag.event.set()

    def note(signum: int, frame: Any) -> None:
        flag.event.set()

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, note if keep else old)
