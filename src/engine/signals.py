"""SIGTERM and SIGINT as a request to stop at the next step boundary instead of an abrupt end.

SIGTERM is what SLURM (and torchrun, and most schedulers) send before killing a job; SIGINT is
Ctrl-C. While a run is executing, the first of them only sets :attr:`StopSignals.signum`: the
training loop finishes the step in progress and stops; the run records ``interrupted`` with its
last commit (the last completed epoch; with ``trainer.checkpoint_every_n_steps``, the step it stopped
after) and the process exits with 128 + the signal number. A second signal ends the process at once
(``os._exit``): the run directory stays consistent even then, since every file is replaced
atomically and derived from last.pt (src.engine.run_files), which holds the last commit before it.

Other signals are left to their owners: submitit's USR2 (time-out: it requeues the job and raises
SystemExit, which the run records as ``interrupted`` too) and the sbatch templates' USR1 trap.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

HANDLED = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """``with StopSignals() as stop:`` ... ``stop.requested``. Installs the handlers only in the main
    thread (Python allows no other), and restores the previous handlers when the outermost ``with``
    of this object ends (one object can be shared by the stages of a command)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._depth = 0

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int | None:
        return None if self.signum is None else 128 + self.signum

    def __enter__(self) -> StopSignals:
        self._depth += 1
        if self._depth == 1 and threading.current_thread() is threading.main_thread():
            for signum in HANDLED:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
            self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.signum is not None:
            _say(f"proxbin: {name} again: stopping at once (last.pt holds the last commit: the last completed "
                 f"epoch, or the last checkpoint_every_n_steps step)")
            os._exit(128 + signum)
        self.signum = signum
        _say(f"proxbin: {name} received: finishing the current step, then stopping (send it again to stop at once)")


def _say(line: str) -> None:
    # os.write, not print: a handler that prints while the interrupted code prints raises RuntimeError
    os.write(2, (line + "\n").encode())
