"""A job's resolved training config, as ``src/train.py`` composes it, for its identity
(:func:`src.core.identity.run_id`).

The launcher runs a job as ``src/train.py -m --config-dir <jobs> experiment=<job> [extra]``: Hydra
composes configs/train.yaml with the job's group choices, merges the job's values (the experiment
file) and then the command line's extra overrides. Here the same three steps: Hydra's compose API
for the group choices (cached per distinct choice tuple: most jobs of a table differ only in values,
and a compose costs ~0.1 s), then the values, then the extra values. Extra overrides that choose a
group option (``logger=wandb``) go into the compose; ``~key`` deletions are not supported here.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Iterable

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from src.core.config_tree import CONFIG_DIR
from src.core.errors import UserError


def split_extra(extra: Iterable[str], groups: Iterable[str]) -> tuple[tuple[str, ...], list[str]]:
    """Extra command-line overrides -> (group choices for the compose, ``key=value`` items merged
    after the job's values); ``+key``/``++key`` lose their prefix."""
    choices, values = [], []
    for item in extra:
        key, sep, _ = item.partition("=")
        if not sep or key.startswith("~"):
            raise UserError(f"extra override {item!r}: a sweep passes key=value overrides to its runs "
                            f"(group=option or dotted.key=value)")
        if key.lstrip("+") in groups:
            choices.append(item)
        else:
            values.append(item.lstrip("+"))
    return tuple(choices), values


@lru_cache(maxsize=None)
def _composed(choices: tuple[str, ...]) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(choices))
    OmegaConf.set_struct(cfg, False)      # the job's experiment file may add keys, as Hydra lets it
    return cfg


def resolved_config(choices: Iterable[str], values: list[str], extra_values: list[str] = ()) -> dict[str, Any]:
    """The resolved config of ``train.yaml`` + group ``choices`` (``group=option``) + ``values``
    (``dotted.key=value``) + ``extra_values``, as a plain dict."""
    try:
        base = _composed(tuple(choices))
    except (HydraException, OmegaConfBaseException) as exc:   # they name the option and the valid ones
        raise UserError(f"cannot compose the training config of {' '.join(choices)}: {exc}") from None
    cfg = OmegaConf.merge(base,  # a copy: the cached compose stays as it is
                           OmegaConf.from_dotlist(list(values)), OmegaConf.from_dotlist(list(extra_values)))
    return OmegaConf.to_container(cfg, resolve=True)
