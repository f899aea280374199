"""Every value of a run's config checked before anything is written, and every key accounted for.

``validate(cfg)`` raises one UserError (exit 2) that lists each problem as ``<key>=<value> ...: it
must be <what is valid>``. It checks

- the nodes the engine reads (``NODES``): their keys (a key the engine does not read stops the run,
  with the node's valid keys listed: a typo such as ``+trainer.ema=0.999`` would otherwise be
  ignored) and each value's type and range;
- the nodes built with ``hydra.utils.instantiate`` (``TARGETS``): ``_target_`` must import, the
  other keys must be parameters of that callable, a value must have the type the callable's
  annotation gives, and ``ARGUMENTS`` adds ranges (a learning rate > 0, a fraction in (0, 1));
- a few relations between keys (``_relations``).

What needs the data or the model (a batch larger than the training set, ``task.keep_fp`` module
names, the initial weights) is checked when those are built, still before the first write
(src.engine.runner). The config tree's own defaults pass (tests/engine/test_validate.py).
"""

from __future__ import annotations

import inspect
import math
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable

import torch
from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from src.core import config_tree
from src.core.errors import UserError
from src.engine.data_path import LOADERS
from src.engine.loop import PRECISIONS
from src.models.activations import ACTIVATIONS
from src.quant import ACTIVATION_NORMALIZATIONS, SCALES, WEIGHT_NORMALIZATIONS
from src.models.transformers import COMPONENTS


@dataclass(frozen=True)
class Rule:
    ok: Callable[[Any], bool]
    valid: str  # what a valid value is, for the message


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def integer(lo: int | None = None, hi: int | None = None) -> Rule:
    span = (f" in [{lo}, {hi}]" if hi is not None else f" >= {lo}") if lo is not None else ""
    return Rule(lambda v: _int(v) and (lo is None or v >= lo) and (hi is None or v <= hi), f"an integer{span}")


def number(lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False) -> Rule:
    def ok(v: Any) -> bool:
        return _num(v) and (lo is None or (v > lo if lo_open else v >= lo)) and \
            (hi is None or (v < hi if hi_open else v <= hi))

    if lo is not None and hi is not None:
        span = f" in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    elif lo is not None:
        span = f" {'>' if lo_open else '>='} {lo}"
    else:
        span = ""
    return Rule(ok, f"a number{span}")


def one_of(*choices: Any) -> Rule:
    return Rule(lambda v: isinstance(v, type(choices[0])) and v in choices, "one of " + ", ".join(map(str, choices)))


def optional(rule: Rule, meaning: str = "") -> Rule:
    return Rule(lambda v: v is None or rule.ok(v), f"{rule.valid}, or null{f' ({meaning})' if meaning else ''}")


def list_of(rule: Rule) -> Rule:
    return Rule(lambda v: isinstance(v, list) and all(rule.ok(x) for x in v), f"a list of {rule.valid.removeprefix('a ')}")


def per_task(rule: Rule) -> Rule:
    """A table of values by task name (a method's constants that differ per task, e.g. EDE's T_min)."""
    tasks = config_tree.tasks()
    return Rule(lambda v: isinstance(v, dict) and set(v) <= set(tasks) and all(rule.ok(x) for x in v.values()),
                f"a mapping from task names ({', '.join(tasks)}) to {rule.valid.removeprefix('a ')}")


BOOL = Rule(lambda v: isinstance(v, bool), "true or false")
TEXT = Rule(lambda v: isinstance(v, str) and v != "", "a non-empty string")
ANY = Rule(lambda v: True, "anything")
NODE = Rule(lambda v: isinstance(v, dict), "a config node")
TARGET = Rule(lambda v: isinstance(v, dict) and "_target_" in v, "a config node with a _target_")
DEVICE = Rule(lambda v: isinstance(v, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", v) is not None,
              "one of auto, cpu, cuda, cuda:N")
COMPILE = Rule(lambda v: isinstance(v, bool) or v == "auto", "auto (on CUDA devices only), true or false")
# Hydra reads run_name=nan or run_name=7 as numbers; the directory is named by their text
RUN_NAME = Rule(lambda v: isinstance(v, (str, int, float)) and not isinstance(v, bool)
                and str(v).strip() not in ("", ".", "..") and "/" not in str(v) and "\0" not in str(v),
                "a non-empty name without '/'")

# The nodes the engine reads, key by key. Nodes holding a _target_ get their keys from the callable.
NODES: dict[str, dict[str, Rule]] = {
    "": {"seed": integer(0, 2**32 - 1), "run_name": RUN_NAME, "output_root": TEXT, "resume": one_of("auto", "never"),
         "wait_for_lock": BOOL, "experiment_name": optional(TEXT), "cell": ANY,  # cell, run_id: scripts/reproduce.py's record
         "run_id": optional(TEXT),
         "dataset": NODE, "model": NODE, "quantizer": NODE, "pipeline": NODE, "task": NODE, "optimizer": TARGET,
         "scheduler": TARGET, "trainer": NODE, "logger": NODE, "cluster": ANY},  # cluster: the slurm launcher's
    "trainer": {"max_epochs": integer(0), "device": DEVICE, "precision": one_of(*PRECISIONS),
                "channels_last": BOOL, "compile": COMPILE, "deterministic": BOOL,
                "grad_clip": optional(number(0, lo_open=True), "no clipping"), "progress": BOOL,
                "log_every_n_steps": integer(1), "log_every_n_seconds": number(0, lo_open=True), "eval_soft": BOOL,
                "max_steps_per_epoch": optional(integer(1), "the whole epoch"),
                "accumulate_grad_batches": integer(1),
                "checkpoint_every_n_steps": optional(integer(1), "checkpoints at epoch ends only"),
                "stop_after_epoch": optional(integer(1), "no stop"), "mixup": optional(TARGET, "no mixup")},
    "dataset": {"name": TEXT, "num_classes": integer(1), "batch_size": integer(1), "eval_batch_size": integer(1),
                "num_workers": integer(0), "loader": one_of(*LOADERS),
                "prefetch_factor": optional(integer(1), "torch's default"), "splits": TARGET},
    "model": {"name": TEXT, "net": TARGET, "input_size": integer(1), "pretrained_weights": optional(TARGET), "tag": optional(TEXT),
              "protocol": NODE},
    "model.protocol": {"scaling": BOOL, "normalization": BOOL, "pretrain": BOOL, "pretrain_epochs": integer(1),
                       "pretrain_lr": optional(number(0, lo_open=True), "optimizer.lr"), "kd": BOOL, "kd_teacher": optional(TEXT),
                       "kd_temperature": number(0, lo_open=True), "kd_weights": NODE},
    "model.protocol.kd_weights": {k: number(0) for k in ("ce", "logits", "dmd", "hidden")},
    "quantizer": {"name": TEXT, "scale": one_of(*SCALES), "scale_in_backward": BOOL,
                  "normalize": one_of(*WEIGHT_NORMALIZATIONS),
                  "activation_normalize": one_of(*ACTIVATION_NORMALIZATIONS),
                  "t_min_by_task": per_task(number(0, lo_open=True)), "weight": optional(TARGET, "full precision"),
                  "activation": optional(TARGET, "no activation pair"), "update_rule": optional(TARGET)},
    "task": {"name": TEXT, "binarize_activations": BOOL, "accum": optional(TARGET, "no accumulator"),
             "keep_fp": list_of(TEXT), "activation": one_of(*ACTIVATIONS),
             "blocks": optional(list_of(integer(0)), "every block"),
             "components": optional(list_of(one_of(*COMPONENTS)), "every component")},
    "pipeline": {"name": one_of(*config_tree.pipelines()), "checkpoint": optional(TEXT), "pretrained": BOOL, "strict": BOOL,
                 "partial": BOOL},
    "logger": {"name": one_of("none", "wandb"), "project": TEXT, "entity": optional(TEXT), "group": optional(TEXT),
               "job_type": optional(TEXT), "tags": list_of(ANY), "mode": one_of("auto", "online", "offline", "disabled")},
}
REQUIRED = {"": ("seed", "run_name", "output_root", "resume", "dataset", "model", "quantizer", "pipeline", "task",
                 "optimizer", "scheduler", "trainer", "logger"),
            "trainer": tuple(NODES["trainer"]), "dataset": ("name", "num_classes", "batch_size", "eval_batch_size",
                                                             "num_workers", "loader", "prefetch_factor", "splits"),
            "model": ("name", "net"), "quantizer": ("name",), "pipeline": ("name",), "task": ("name", "keep_fp"),
            "logger": ("name",)}

# Nodes built by instantiate, and the arguments the engine passes itself (never from the config).
TARGETS: dict[str, tuple[str, ...]] = {
    "optimizer": ("params",), "scheduler": ("optimizer",), "dataset.splits": (), "model.net": (),
    "model.pretrained_weights": (), "quantizer.weight": (), "quantizer.activation": (),
    "quantizer.update_rule": ("weights", "optimizer"), "task.accum": (),
}
# Ranges of constructor arguments, beyond the type their annotation gives.
ARGUMENTS: dict[str, Rule] = {
    "optimizer.lr": number(0, lo_open=True),
    "optimizer.momentum": number(0, 1, hi_open=True),
    "optimizer.dampening": number(0, 1),
    "optimizer.weight_decay": number(0),
    "optimizer.eps": number(0, lo_open=True),
    "optimizer.betas": Rule(lambda v: isinstance(v, list) and len(v) == 2 and all(_num(b) and 0 <= b < 1 for b in v),
                            "two numbers in [0, 1)"),
    "scheduler.T_max": integer(0),
    "scheduler.eta_min": number(0),
    "scheduler.milestones": list_of(integer(1)),
    "scheduler.gamma": number(0, lo_open=True),
    "scheduler.factor": number(0, 1, lo_open=True),
    "scheduler.total_iters": integer(0),
    "dataset.splits.test_fraction": number(0, 1, lo_open=True, hi_open=True),
    "dataset.splits.image_size": integer(1),
    "dataset.splits.split_seed": integer(0),
    "dataset.splits.train_subset": optional(integer(1), "all"),
    "dataset.splits.test_subset": optional(integer(1), "all"),
    "dataset.splits.train_size": integer(1),
    "dataset.splits.test_size": integer(1),
    "dataset.splits.num_classes": integer(1),
    "dataset.splits.variant": one_of("cifar10", "cifar100"),
    "model.net.num_classes": integer(1),
    "model.net.activation": one_of(*ACTIVATIONS),
    "model.net.shortcut": one_of("A", "B"),
    # float32 holds every partial sum of ±1 products exactly only below 2^24 (src.accum): a wider
    # accumulator can never wrap, and BWAA would silently be BWA
    "task.accum.bits": integer(2, 24),
    "task.accum.width": optional(number(0, lo_open=True), "2^(bits-1)/4"),
    "task.accum.penalty_weight": number(0),
    "task.accum.penalty_power": number(0, lo_open=True),
}
HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}


def validate(cfg: DictConfig | dict) -> None:
    """Raise one UserError listing every bad value and unknown key of ``cfg``; return when it is sound."""
    try:
        config = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "?"
        raise UserError(f"config key {key} cannot be resolved: {exc}".split("\n")[0]) from None
    problems = problems_of(config)
    if problems:
        raise UserError("bad config, nothing was started or written:\n  " + "\n  ".join(problems))


def problems_of(config: dict) -> list[str]:
    problems: list[str] = []
    for path, rules in NODES.items():
        node = _at(config, path)
        if node is None and path:
            continue
        if not isinstance(node, dict):
            continue
        for key in REQUIRED.get(path, ()):
            if key not in node:
                problems.append(f"{_join(path, key)} is missing (the engine reads it)")
        for key, value in node.items():
            full = _join(path, key)
            if key not in rules:
                problems.append(f"{full} is not a key the engine reads; valid keys of "
                                f"{path or 'the top level'}: {', '.join(sorted(rules))}")
            elif not rules[key].ok(value):
                problems.append(_bad(full, value, rules[key].valid))
    for path, provided in TARGETS.items():
        node = _at(config, path)
        if isinstance(node, dict) and "_target_" in node:
            problems += _target_problems(path, node, provided)
    return problems + _relations(config)


def _target_problems(path: str, node: dict, provided: tuple[str, ...]) -> list[str]:
    target = node["_target_"]
    try:
        fn = get_object(target)
    except Exception:
        return [f"{path}._target_={target!r} cannot be imported: it must name a class or function"]
    try:
        params = dict(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return []
    hints = _hints(fn)
    open_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    valid = sorted(n for n, p in params.items() if n not in provided and n != "self"
                   and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD))
    problems = []
    for key, value in node.items():
        full = f"{path}.{key}"
        if key in HYDRA_KEYS:
            continue
        if key not in params or key in provided:
            if not open_kwargs:
                problems.append(f"{full} is not an argument of {target}; valid keys of {path}: {', '.join(valid)}")
            continue
        rule = ARGUMENTS.get(full)
        if rule is not None:
            if not rule.ok(value):
                problems.append(_bad(full, value, rule.valid))
        else:
            expected = _type_rule(hints.get(key))
            if expected is not None and not expected.ok(value):
                problems.append(_bad(full, value, f"{expected.valid} ({target} takes {key}: {_show(hints[key])})"))
    return problems


def _relations(config: dict) -> list[str]:
    """Checks between keys."""
    problems = []
    optimizer, scheduler = config.get("optimizer") or {}, config.get("scheduler") or {}
    epochs = (config.get("trainer") or {}).get("max_epochs")
    if _int(epochs) and epochs > 0 and scheduler.get("T_max") == 0:
        problems.append(f"scheduler.T_max=0 is not valid with trainer.max_epochs={epochs}: it must be >= 1")
    if optimizer.get("nesterov") is True and not (_num(optimizer.get("momentum")) and optimizer["momentum"] > 0):
        problems.append(f"optimizer.nesterov=true is not valid with optimizer.momentum={optimizer.get('momentum')!r}: "
                        f"Nesterov momentum needs a momentum that must be > 0")
    pipeline = config.get("pipeline") or {}
    if pipeline.get("strict") is True and pipeline.get("partial") is True:
        problems.append("pipeline.strict=true is not valid with pipeline.partial=true: they contradict each other, "
                        "one of them must be false")
    return problems


def _type_rule(hint: Any) -> Rule | None:
    """A Rule for a simple annotation (int, float, bool, str, their unions and Optional), else None.
    A tensor alternative (torch.optim's ``lr: float | Tensor``) cannot come from a config: ignored."""
    if hint is None:
        return None
    members = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    simple = {int: integer(), float: number(), bool: BOOL, str: Rule(lambda v: isinstance(v, str), "a string"),
              type(None): Rule(lambda v: v is None, "null")}
    rules = [simple[m] for m in members if m in simple]
    if len(rules) != len([m for m in members if m is not torch.Tensor]):
        return None  # a type the config cannot be checked against here (a list, a callable, ...)
    if not rules:
        return None
    return Rule(lambda v: any(r.ok(v) for r in rules), " or ".join(r.valid for r in rules))


def _hints(fn: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn.__init__ if inspect.isclass(fn) else fn)
    except Exception:  # an annotation that does not evaluate here: no type checks for this callable
        return {}


def _show(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _at(config: dict, path: str) -> Any:
    node: Any = config
    for part in path.split(".") if path else []:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _bad(key: str, value: Any, valid: str) -> str:
    return f"{key}={value!r} is not valid: it must be {valid}"
