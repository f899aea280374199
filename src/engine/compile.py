"""``trainer.compile``: torch.compile of the model the loop calls (auto: on CUDA devices only).

The model is compiled in place (``nn.Module.compile``): the module keeps its own ``state_dict`` keys,
so checkpoints of a compiled run are those of an eager one (no ``_orig_mod.`` prefix) and a run may be
resumed with or without compilation. Every quantizer pair (the custom autograd Functions included),
normalisation, scale and the BWAA accumulator path trace into one graph without a break
(tests/engine/test_compile.py); the update rules act on the weights around ``optimizer.step()``,
outside the model, and stay eager (weight-sized work, a few percent of a step; see the README's
speed section).

Compilation happens during the first training steps: Dynamo traces the step at p = 0 with the
schedules' floats (μ, ρ, t, k) as constants, then once more when p first changes, now with them as
inputs; evaluation traces its own graphs (binary and soft forms) at its first call. The extra time of
the traced steps is the run's ``compile_s`` (results.json, and a line in the log).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from src.core.errors import UserError

CHOICES = ("auto", True, False)
# the steps whose host time includes tracing (p = 0, then the first change of p); the loop times one more
TRACED_STEPS = 2
# Graphs a model may need over a run: training (p = 0, then p symbolic; a smaller last batch; a schedule
# crossing a branch such as ρ ≥ 1), evaluation in the binary and the soft form (each with its last
# batch). Above torch's default of 8 Dynamo would fall back to eager for the rest of the run, silently.
RECOMPILE_LIMIT = 32


def compile_enabled(setting: Any, device: torch.device) -> bool:
    """``trainer.compile`` resolved for ``device``: auto is on for CUDA, off elsewhere (on a CPU,
    inductor's C++ compilation costs tens of seconds per graph and model)."""
    if isinstance(setting, bool):
        return setting
    if setting == "auto":
        return device.type == "cuda"
    raise UserError(f"trainer.compile={setting!r} is not valid: it must be auto (compile on CUDA devices only), "
                    f"true or false")


def compile_model(model: nn.Module, reset: bool = True) -> None:
    """torch.compile ``model`` in place (its own forward, its state_dict keys unchanged). ``reset``:
    first forget the graphs of models compiled earlier in this process (an in-process sweep trains
    one model after another; every compiled module shares one code object, ``Module._call_impl``,
    whose graphs count against one recompile limit)."""
    if reset:
        torch._dynamo.reset()
    config = torch._dynamo.config
    name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"  # torch < 2.6
    setattr(config, name, max(getattr(config, name), RECOMPILE_LIMIT))
    model.compile()


def compile_seconds(step_s: list[float]) -> float:
    """The extra host time of the first ``TRACED_STEPS`` steps over the step after them (tracing
    and code generation run on the host, before the step's kernels); with no step after them, their
    whole time (an upper bound)."""
    traced, after = step_s[:TRACED_STEPS], step_s[TRACED_STEPS:]
    if not after:
        return sum(traced)
    return max(sum(traced) - len(traced) * min(after), 0.0)
