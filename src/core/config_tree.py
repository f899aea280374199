"""The config folders are the one source of names: a method is a file of ``configs/quantizer/``, a
task a file of ``configs/task/``, and so on. Everything that lists methods, tasks, pipelines or
models (reporting, sweep specs, scripts, tests) asks here instead of keeping its own list, so adding
``configs/quantizer/<name>.yaml`` is all it takes for the rest of proxbin to know ``<name>``.
"""

from __future__ import annotations

from pathlib import Path

from src.core import run_names  # noqa: F401  registers ${run_suffix:} and ${sweep_name:} of configs/train.yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "configs"


def options(group: str) -> tuple[str, ...]:
    """Sorted option names of a config group, e.g. ``options("quantizer")`` -> ('bc', 'bireal', ...).
    Read afresh each call (a few dozen file names), so a YAML added at run time counts at once."""
    return tuple(sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml")))


def option_file(group: str, name: str) -> Path:
    """The YAML file of ``group=name``; ValueError naming the valid options when there is none."""
    path = CONFIG_DIR / group / f"{name}.yaml"
    if path.is_file():
        return path
    raise ValueError(f"{group}={name!r} is not an option; valid: {', '.join(options(group))}")


def methods() -> tuple[str, ...]:
    return options("quantizer")


def tasks() -> tuple[str, ...]:
    return options("task")


def pipelines() -> tuple[str, ...]:
    return options("pipeline")


def models() -> tuple[str, ...]:
    return options("model")
