"""Default names of run and sweep directories, from the command that asks for them.

A run's directory is a function of its command, so that re-running the command resumes it; two
commands that train different things must never share one. ``run_name`` defaults to
``<dataset>_<model>_<pipeline>_<task>_<quantizer>_seed<seed>`` followed by ``${run_suffix:}``: the
command-line overrides of keys outside that base name that change what is trained (a key of
:data:`src.core.identity.IDENTITY_FREE_KEYS` such as ``trainer.device`` or ``logger.*`` does not), sorted,
as ``_<key>-<value>``, e.g. ``digits_resnet20_e2e_bw_fp_seed0_optimizer.lr-0.05``. When that text would
be longer than :data:`MAX_SUFFIX` characters, or a value had to be rewritten to be a file name
(a path, a list), the hash tells runs apart: the suffix keeps what fits of the items with their
keys' last part (``_lr-0.05``) and ends with ``_<hash>``, the first :data:`HASH_LENGTH` hex digits
of the run's identity (src.core.identity.run_id). No ``=`` or ``,``
appears in a name, so a run directory can be passed back as an override value (``pipeline.checkpoint=``).

A multirun's directory ``${sweep_name:...}`` is ``experiment_name`` when the config sets it, else the
same text for every override of the command, swept keys first (their values joined by ``+``), or
``sweep`` for a multirun without overrides.

The resolvers are registered when this module is imported (src.core.config_tree imports it: every
composition of configs/train.yaml in proxbin goes through a module that imports config_tree).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from src.core.identity import IDENTITY_FREE_KEYS, run_id

BASE_KEYS = ("dataset", "model", "pipeline", "task", "quantizer", "seed")  # already in the base run_name
LABEL_KEYS = ("run_name", "experiment_name")
MAX_SUFFIX = 72
HASH_LENGTH = 8
_VALUE = re.compile(r"[A-Za-z0-9.+-]+")
_KEY = re.compile(r"[A-Za-z0-9_.]+")


def register() -> None:
    """Make ``${run_suffix:}`` and ``${sweep_name:}`` known to OmegaConf (idempotent)."""
    OmegaConf.register_new_resolver("run_suffix", _run_suffix, replace=True)
    # cached by the text of its arguments: Hydra copies the multirun's resolver cache into every job's
    # config (as for ${now:}), so each job sees the name resolved from the whole command, not from
    # its own share of the sweep
    OmegaConf.register_new_resolver("sweep_name", _sweep_name, replace=True, use_cache=True)


def parse_override(text: str) -> tuple[str, str | None]:
    """(dotted key, value) of a Hydra override line: ``+``/``++``/``~`` dropped from the key, a
    config group's ``/`` written as ``.``; value None for a deletion without a value."""
    key, sep, value = text.partition("=")
    deleted = key.startswith("~")
    key = key.lstrip("+~").replace("/", ".")
    return key, (value if sep else None) if not deleted else None


def trains_differently(key: str) -> bool:
    """Whether an override of ``key`` can change what a run trains (see src.core.identity)."""
    return not any(key == free or key.startswith(free + ".") for free in IDENTITY_FREE_KEYS)


def readable(items: list[tuple[str, str | None]], swept: bool = False) -> tuple[list[tuple[str, str]], bool]:
    """Two ``key-value`` tokens per item, in their order: with the whole dotted key and with its last
    part only; and whether the tokens stand for the items exactly (False when a key or value had
    characters a file name or an override value cannot carry)."""
    exact, tokens = True, []
    for key, value in items:
        if value is None:
            value, exact = "deleted", False
        if swept:
            value = value.replace(",", "+")
        if not _KEY.fullmatch(key) or not _VALUE.fullmatch(value):
            exact = False
            key, value = re.sub(r"[^A-Za-z0-9_.]", "-", key), re.sub(r"[^A-Za-z0-9.+-]", "-", value).strip("-")
        tokens.append((f"{key}-{value}", f"{key.rsplit('.', 1)[-1]}-{value}"))
    return tokens, exact


def shortened(tokens: list[tuple[str, str]], exact: bool, digest: Any) -> str:
    """The whole-key tokens joined by ``_`` when they are exact and at most MAX_SUFFIX long. Else
    the hash names the run: the short tokens (last key part: ``lr-0.05``) that fit, whole, and
    ``digest()``'s first HASH_LENGTH hex digits."""
    text = "_".join(full for full, _ in tokens)
    if exact and len(text) <= MAX_SUFFIX:
        return text
    kept = ""
    for _, short in tokens:
        candidate = f"{kept}_{short}" if kept else short
        if len(candidate) > MAX_SUFFIX - HASH_LENGTH - 1:
            break
        kept = candidate
    return f"{kept}_{digest()[:HASH_LENGTH]}" if kept else digest()[:HASH_LENGTH]


def run_suffix(config: DictConfig, overrides: list[str]) -> str:
    """The part of the default run_name after ``seed<seed>``: empty, or ``_`` and the overrides."""
    items = [parse_override(o) for o in overrides]
    items = [(k, v) for k, v in items if k not in BASE_KEYS + LABEL_KEYS and trains_differently(k)]
    if not items:
        return ""
    tokens, exact = readable(sorted(items, key=lambda kv: (kv[0], kv[1] or "")))
    return "_" + shortened(tokens, exact, lambda: _identity_of(config))


def sweep_name(experiment_name: Any, overrides: list[str]) -> str:
    """A multirun's folder under <output root>/multirun/: ``experiment_name``, or its overrides."""
    if experiment_name is not None:
        return str(experiment_name)
    items = [parse_override(o) for o in overrides]
    items = [(k, v) for k, v in items if k not in LABEL_KEYS and trains_differently(k)]
    if not items:
        return "sweep"
    # the swept keys first: they are what tells this sweep from another when the name is shortened
    tokens, exact = readable(sorted(items, key=lambda kv: ("," not in (kv[1] or ""), kv[0], kv[1] or "")), swept=True)
    return shortened(tokens, exact, lambda: hashlib.sha256("\n".join(sorted(overrides)).encode()).hexdigest())


def _identity_of(config: DictConfig) -> str:
    """The run identity of ``config`` resolved without its run_name (which is being resolved)."""
    plain = OmegaConf.to_container(config, resolve=False)
    for label in ("hydra", "run_name"):
        plain.pop(label, None)
    return run_id(OmegaConf.to_container(OmegaConf.create(plain), resolve=True))


def _task_overrides(root: DictConfig) -> list[str]:
    """The command's overrides: the config's own hydra node where it has one (Hydra resolving its
    run and sweep directories), else Hydra's record of the job running (the task function's config
    has no hydra node); none for a config composed outside a Hydra application."""
    node = OmegaConf.select(root, "hydra.overrides.task", default=None)
    if node is not None:
        return [str(o) for o in node]
    if HydraConfig.initialized():
        return [str(o) for o in HydraConfig.get().overrides.task]
    return []


def _run_suffix(*, _root_: DictConfig) -> str:
    return run_suffix(_root_, _task_overrides(_root_))


def _sweep_name(experiment_name: Any, overrides: Any) -> str:
    return sweep_name(experiment_name, [] if overrides is None else [str(o) for o in overrides])


register()
