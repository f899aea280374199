"""Every option of every config group composes, and so does every quantizer x task x pipeline."""

from __future__ import annotations

import itertools

import pytest
from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf

from conftest import CONFIGS, compose_train
from src.core.config_tree import options


def train_groups() -> list[str]:
    """The groups train.yaml composes (``- group: option`` entries of its defaults list; not _self_,
    the optional experiment or Hydra's own overrides)."""
    entries = OmegaConf.load(CONFIGS / "train.yaml").defaults
    return [key for entry in entries if isinstance(entry, DictConfig) for key in entry if " " not in key]


GROUPS = train_groups()


def test_every_group_has_options():
    assert {"dataset", "model", "quantizer", "pipeline", "task", "optimizer", "scheduler", "trainer"} <= set(GROUPS)
    for group in GROUPS:
        assert options(group), f"configs/{group}/ is empty"
    assert {"cifar10", "cifar100", "imagenet", "digits", "fake"} <= set(options("dataset"))
    assert {"resnet20", "resnet32", "resnet44", "resnet56", "resnet18", "vgg_small", "resnet50"} <= set(options("model"))
    assert {"e2e", "ft"} <= set(options("pipeline")) and {"bw", "bwa", "bwaa"} <= set(options("task"))
    assert {"none", "wandb"} <= set(options("logger")) and "fp" in options("quantizer")


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_option_composes_and_resolves(group, option):
    cfg = compose_train([f"{group}={option}"])
    header = (CONFIGS / group / f"{option}.yaml").read_text().splitlines()[0]
    package = header.removeprefix("# @package ").strip() if header.startswith("# @package ") else group
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for key in package.split("."):  # the option's node, where its package puts it
        resolved = resolved[key]
    assert resolved is not None
    if group in ("dataset", "model", "quantizer", "pipeline", "task"):
        assert resolved["name"] == option
    assert option in cfg.run_name or group not in ("dataset", "model", "quantizer", "pipeline", "task")


@pytest.mark.slow
def test_every_quantizer_task_pipeline_combination_composes():
    combos = list(itertools.product(options("quantizer"), options("task"), options("pipeline")))
    names = set()
    for quantizer, task, pipeline in combos:
        cfg = compose_train([f"quantizer={quantizer}", f"task={task}", f"pipeline={pipeline}"])
        OmegaConf.to_container(cfg, resolve=True)
        names.add(cfg.run_name)
    assert len(names) == len(combos), "two combinations would share a run directory"


def test_objects_are_built_from_targets():
    cfg = compose_train()
    for node in (cfg.dataset.splits, cfg.model.net, cfg.optimizer, cfg.scheduler):
        assert "_target_" in node


EXPERIMENTS = sorted(str(p.relative_to(CONFIGS / "experiment").with_suffix("")) for p in (CONFIGS / "experiment").rglob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_with_the_train_config(experiment):
    cfg = compose_train([f"experiment={experiment}"])
    OmegaConf.to_container(cfg, resolve=True)


def test_every_target_in_the_config_tree_resolves():
    """Each `_target_` names an importable object: a package __init__ exporting a function under its
    module's name (src.models.vgg_small.vgg_small) would hide the module from Hydra."""
    targets = set()

    def walk(node):
        if isinstance(node, dict):
            targets.update([node["_target_"]] if isinstance(node.get("_target_"), str) else [])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in CONFIGS.rglob("*.yaml"):
        walk(OmegaConf.to_container(OmegaConf.load(path)))
    assert len(targets) > 20
    for target in sorted(targets):
        assert callable(get_object(target)), target
