"""Errors the engine turns into a one-paragraph message and an exit code instead of a traceback."""


class UserError(Exception):
    """Bad input from the user (config value, missing file): message only, exit code 2."""


class Diverged(Exception):
    """The loss became NaN or infinite at ``step``: the run stops with status 'diverged' (exit 3)."""

    def __init__(self, step: int, loss: float):
        super().__init__(f"loss became {loss} at step {step}")
        self.step = step
        self.loss = loss
