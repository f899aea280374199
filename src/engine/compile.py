"""``trainer.compile``: torch.compile of the model the loop calls (auto: on CUDA devices only).

The model is compiled in place (where ``nn.Module.compile`` puts it): the module keeps its own ``state_dict`` keys,
so checkpoints of a compiled run are those of an eager one (no ``_orig_mod.`` prefix) and a run may be
resumed with or without compilation. Every quantizer pair (the custom autograd Functions included),
normalisation, scale and the BWAA accumulator path trace into one graph without a break
(tests/engine/test_compile.py); the update rules act on the weights around ``optimizer.step()``,
outside the model, and stay eager (weight-sized work: see the rule column of results/bench/).

The schedules' floats (μ, ρ, t, k of p = t/T) are inputs of the graph from the first trace
(``dynamic=True``) while the batch's shape stays a constant (``mark_static``: static kernels).
Traced with the floats as constants, the first graph would be replaced by another once p moves (a
second compilation), and a run resumed in a new process would start from a graph with other
constants, whose rounding differs in the last bits from the uninterrupted run's: with them as inputs
one training graph serves the whole run, in every process, and a resumed run stays bit-identical
on CPU. Two one-off events compile one more training graph each, once per run and not counted in
``compile_s``: PC's linear quantizer L_ρ branches on ρ ≥ 1 (pc; pq's and rpc's activation pair under
BWA/BWAA), and the freeze at ``freeze_at`` (proxquant, conq, proxgen) stops the weights' gradients
(tests/engine/compile_cases.py counts the graphs). The first training step traces and compiles (its
extra time is the run's ``compile_s``: results.json and a line in the log); a smaller last batch and
evaluation (the binary and the soft form) compile their own graphs at their first call.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from src.core.errors import UserError

CHOICES = ("auto", True, False)
# the steps whose host time includes tracing and code generation; the loop times one more
TRACED_STEPS = 1
# Graphs a model may need over a run: training, evaluation in the binary and the soft form, and one
# more of each where a schedule crosses a branch of its code (e.g. ρ ≥ 1 in the linear quantizer).
# Past torch's default of 8 Dynamo would run the rest of the run eager, silently: room to spare.
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
    """torch.compile ``model`` in place, as ``nn.Module.compile`` does (its own forward, its state_dict
    keys unchanged), with the floats it reads dynamic and its inputs' shapes static. ``reset``: first
    forget the graphs of models compiled earlier in this process (an in-process sweep trains one model
    after another; every compiled module shares one code object, ``Module._call_impl``, whose graphs
    count against one recompile limit)."""
    if reset:
        torch._dynamo.reset()
    config = torch._dynamo.config
    name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"  # torch < 2.6
    setattr(config, name, max(getattr(config, name), RECOMPILE_LIMIT))
    compiled = torch.compile(model._call_impl, dynamic=True)

    def call(*args: Any, **kwargs: Any) -> Any:
        for arg in args:
            if isinstance(arg, torch.Tensor):
                torch._dynamo.mark_static(arg)
        return compiled(*args, **kwargs)

    model._compiled_call_impl = call  # where nn.Module.compile puts it: __call__ runs it


def compile_seconds(step_s: list[float]) -> float:
    """The extra host time of the first ``TRACED_STEPS`` steps over the step after them (tracing
    and code generation run on the host, before the step's kernels); with no step after them, their
    whole time (an upper bound)."""
    traced, after = step_s[:TRACED_STEPS], step_s[TRACED_STEPS:]
    if not after:
        return sum(traced)
    return max(sum(traced) - len(traced) * min(after), 0.0)
