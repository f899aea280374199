"""The files of a paper sweep: ``configs/sweep/<paper>/<table>.yaml`` (what a table runs: grid,
published budget, seeds) and ``configs/reproduce/scales.yaml`` (how big: paper | mini | smoke).

A sweep spec is read by scripts/reproduce.py and scripts/make_tables.py, never composed by Hydra:
it describes many runs, ``src/train.py`` trains one. The two kinds of file refuse each other's
tool with a message: :func:`train_refusal` for a train.py command line that names a spec, and
:func:`load_spec` for a reproduce.py argument that names a train.py experiment
(``configs/experiment/<name>.yaml``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from src.core.config_tree import CONFIG_DIR, options
from src.core.errors import UserError

SWEEP_DIR = CONFIG_DIR / "sweep"
EXPERIMENT_DIR = CONFIG_DIR / "experiment"
SCALES_FILE = CONFIG_DIR / "reproduce" / "scales.yaml"
_SPEC_ID = re.compile(r"[a-z0-9_]+/[A-Za-z0-9_]+")


def list_specs() -> list[str]:
    """The spec ids, ``<paper>/<table>``, of every file in configs/sweep/."""
    return sorted(f"{p.parent.name}/{p.stem}" for p in SWEEP_DIR.glob("*/*.yaml") if not p.stem.startswith("_"))


def is_spec(name: str) -> bool:
    return bool(_SPEC_ID.fullmatch(name or "")) and (SWEEP_DIR / f"{name}.yaml").is_file()


def _is_experiment(name: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9_]+(/[A-Za-z0-9_]+)*", name or "")) and \
        (EXPERIMENT_DIR / f"{name}.yaml").is_file()


def load_spec(name: str) -> dict[str, Any]:
    """The spec ``<paper>/<table>`` as a dict, ``paper`` and ``table`` filled in from its id."""
    if not is_spec(name):
        if _is_experiment(name):
            raise UserError(
                f"{name!r} is a train.py experiment (configs/experiment/{name}.yaml), not a paper sweep: run it "
                f"with `python src/train.py experiment={name}` (add -m for the sweep it declares). "
                f"scripts/reproduce.py runs the paper sweeps of configs/sweep/: {', '.join(list_specs())}")
        raise UserError(f"unknown sweep spec {name!r}; the paper sweeps are: {', '.join(list_specs())} "
                        f"(configs/sweep/<paper>/<table>.yaml)")
    spec = OmegaConf.to_container(OmegaConf.load(SWEEP_DIR / f"{name}.yaml"), resolve=True)
    spec.setdefault("paper", name.split("/")[0])
    spec.setdefault("table", name.split("/")[1])
    return spec


def _scales_file() -> dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.load(SCALES_FILE), resolve=True)


def scales() -> tuple[str, ...]:
    """The scale names, in file order: ('paper', 'mini', 'smoke')."""
    return tuple(_scales_file())


def load_scale(scale: str) -> dict[str, Any]:
    settings = _scales_file()
    if scale not in settings:
        raise UserError(f"scale={scale!r} is not one of {', '.join(settings)}")
    return settings[scale]


def train_refusal(arguments: list[str]) -> str | None:
    """Why a ``src/train.py`` command line must not run, or None: it names a sweep spec, as
    ``experiment=pcpp/table2`` or as the group ``sweep`` (``[+]sweep=...``, ``+sweep/pcpp=...``),
    which Hydra would otherwise compose (or fail to find) while training the default run."""
    for argument in arguments:
        if argument.startswith("-") or "=" not in argument:
            continue
        key, _, value = argument.partition("=")
        group = key.lstrip("+~")
        if group == "experiment":
            names = [n for n in value.split(",") if is_spec(n) and not _is_experiment(n)]
            if names:
                return (f"experiment={names[0]} is a paper sweep spec (configs/sweep/{names[0]}.yaml), not a "
                        f"train.py experiment: src/train.py trains one run, scripts/reproduce.py expands the spec "
                        f"into the runs of the table. Run `python scripts/reproduce.py {names[0]} "
                        f"[scale={'|'.join(scales())}] [--dry-run]`; the train.py experiments are: "
                        f"{', '.join(options('experiment'))} (configs/experiment/<name>.yaml)")
        elif group == "sweep" or group.startswith("sweep/"):
            spec_id = value if group == "sweep" else f"{group[len('sweep/'):]}/{value}"
            run = spec_id if is_spec(spec_id) else "<paper>/<table>"
            return (f"{argument}: configs/sweep/ holds the paper sweep specs of scripts/reproduce.py, not a "
                    f"config group of src/train.py (Hydra would train the default run and ignore the spec). "
                    f"Run `python scripts/reproduce.py {run} [scale={'|'.join(scales())}] [--dry-run]`; the specs "
                    f"are: {', '.join(list_specs())}")
    return None
