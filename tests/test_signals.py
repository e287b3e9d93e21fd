"""The one signal helper of the trainer and the sweep, with real signals sent to this process."""
from __future__ import annotations

import os
import signal
import threading

import pytest

from rfcalc.signals import stop_on_signals


def _send(sig: signal.Signals) -> None:
    os.kill(os.getpid(), sig)  # the handler runs before os.kill returns to the next bytecode


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_the_first_signal_asks_to_stop_and_the_second_stops_at_once(sig: signal.Signals) -> None:
    before = signal.getsignal(sig)
    event = threading.Event()
    with pytest.raises(KeyboardInterrupt), stop_on_signals(event) as flag:
        assert not flag.stop
        _send(sig)
        assert flag.stop and event.is_set()
        _send(sig)
    assert signal.getsignal(sig) is before  # the previous handler is back


def test_a_forwarding_parent_is_told_of_every_signal_and_never_interrupted() -> None:
    seen: list[int] = []
    with stop_on_signals(on_signal=lambda: seen.append(1), second_raises=False) as flag:
        _send(signal.SIGINT)
        _send(signal.SIGINT)
    assert flag.stop and seen == [1, 1]


def test_keep_only_notes_signals_after_the_block() -> None:
    before = signal.getsignal(signal.SIGTERM)
    try:
        with stop_on_signals(keep=True) as flag:
            pass
        assert not flag.stop
        _send(signal.SIGTERM)  # torchrun's agent stopping a rank that is still writing: noted, not fatal
        assert flag.stop
    finally:
        signal.signal(signal.SIGTERM, before)


def test_outside_the_main_thread_the_flag_is_only_returned() -> None:
    got: list[object] = []
    worker = threading.Thread(target=lambda: got.append(stop_on_signals().__enter__()))
    worker.start()
    worker.join()
    assert not got[0].stop  # type: ignore[attr-defined]
