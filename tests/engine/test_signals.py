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


def test_a_second_signal_exits_at_once_naming_what_last_pt_holds(monkeypatch):
    said, exits = [], []
    monkeypatch.setattr("src.engine.signals._say", said.append)
    monkeypatch.setattr(os, "_exit", exits.append)
    stop = StopSignals()
    stop._handle(signal.SIGTERM, None)
    assert exits == [] and "finishing the current step, then stopping" in said[0]
    stop._handle(signal.SIGTERM, None)
    assert exits == [143]
    assert said[1] == ("proxbin: SIGTERM again: stopping at once (last.pt holds the last commit: the last completed "
                       "epoch, or the last checkpoint_every_n_steps step)")
