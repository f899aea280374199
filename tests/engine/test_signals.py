"""SIGTERM/SIGINT become a request to stop at the next step boundary while a run executes."""

from __future__ import annotations

import os
import signal

from src.engine.signals import StopSignals


def test_a_signal_sets_the_request_and_the_handlers_are_restored():
    before = signal.getsignal(signal.SIGTERM)
    stop = StopSignals()
    with stop:
        with stop:  # shared by the stages of a command: the inner exit keeps the handlers
            pass
        assert signal.getsignal(signal.SIGTERM) == stop._handle
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested and stop.signum == signal.SIGTERM and stop.exit_code == 143
    assert signal.getsignal(signal.SIGTERM) == before
