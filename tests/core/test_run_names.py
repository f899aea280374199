"""Default run and sweep directory names (src/core/run_names.py): commands that train different
things get different names, readable where they can be, with the run's identity where they cannot."""

from __future__ import annotations

import re

import pytest
from omegaconf import OmegaConf

from conftest import compose_train
from src.core import identity
from src.core.run_names import HASH_LENGTH, MAX_SUFFIX, parse_override, run_suffix, sweep_name


@pytest.fixture(scope="module")
def config():
    return compose_train([])


def test_no_training_override_keeps_the_base_name(config):
    assert run_suffix(config, []) == ""
    # already in the base name, labels, or not part of what is trained (src.core.identity)
    assert run_suffix(config, ["seed=1", "quantizer=bnnpp", "task=bwa", "dataset=cifar10", "run_name=x",
                               "+experiment_name=e", "trainer.device=cpu", "logger=wandb", "logger.mode=offline",
                               "hydra/launcher=slurm", "cluster.partition=long", "trainer.progress=false",
                               "output_root=/tmp/o", "dataset.num_workers=4"]) == ""


def test_training_overrides_are_named_sorted_and_readable(config):
    assert run_suffix(config, ["optimizer.lr=0.05"]) == "_optimizer.lr-0.05"
    assert run_suffix(config, ["trainer.max_epochs=3", "optimizer=adam", "++optimizer.lr=1e-3"]) == \
        run_suffix(config, ["optimizer=adam", "optimizer.lr=1e-3", "trainer.max_epochs=3"]) == \
        "_optimizer-adam_optimizer.lr-1e-3_trainer.max_epochs-3"


def test_different_values_give_different_names(config):
    names = {run_suffix(config, [f"optimizer.lr={v}"]) for v in ("0.05", "0.01", "-1", "0.1")}
    names |= {run_suffix(config, [f"optimizer.weight_decay={v}"]) for v in ("0.05", "0")}
    names |= {run_suffix(config, ["quantizer.weight.mu_start=0.05"])}
    assert len(names) == 7


def test_a_value_that_is_no_file_name_ends_with_the_run_identity():
    override = "pipeline.checkpoint=/runs/fp/checkpoints/best.pt"
    config = compose_train(["pipeline=ft", override])
    suffix = run_suffix(config, [override])
    plain = OmegaConf.to_container(config, resolve=False)
    plain.pop("run_name")
    expected = identity.run_id(OmegaConf.to_container(OmegaConf.create(plain), resolve=True))[:HASH_LENGTH]
    # '/' cannot be in a name: the token is only a hint, the run identity tells runs apart
    assert suffix == f"_checkpoint-runs-fp-checkpoints-best.pt_{expected}"


def test_a_long_suffix_keeps_whole_items_and_ends_with_a_hash(config):
    overrides = ["dataset.batch_size=16", "dataset.splits.test_fraction=0.05", "optimizer.lr=0.05",
                 "optimizer.weight_decay=0.0005", "trainer.max_epochs=1", "trainer.max_steps_per_epoch=1"]
    suffix = run_suffix(config, overrides)
    assert len(suffix) <= MAX_SUFFIX + 1 and re.fullmatch(rf".*_[0-9a-f]{{{HASH_LENGTH}}}", suffix)
    assert suffix.startswith("_batch_size-16_test_fraction-0.05_lr-0.05_")  # the hash tells runs apart: short keys
    assert "=" not in suffix and "," not in suffix and "/" not in suffix


def test_parse_override():
    assert parse_override("+trainer.foo=1") == ("trainer.foo", "1")
    assert parse_override("~logger") == ("logger", None)
    assert parse_override("hydra/launcher=slurm") == ("hydra.launcher", "slurm")


def test_sweep_name():
    assert sweep_name("mine", ["optimizer.lr=0.05,0.01"]) == "mine"
    assert sweep_name(None, []) == "sweep" and sweep_name(None, ["trainer.device=cpu"]) == "sweep"
    assert sweep_name(None, ["seed=0,1,2", "optimizer.lr=0.05,0.01"]) == "optimizer.lr-0.05+0.01_seed-0+1+2"
    assert sweep_name(None, ["dataset=digits", "seed=0,1"]) == "seed-0+1_dataset-digits"  # swept keys first
    assert sweep_name(None, ["optimizer.lr=0.05,0.01"]) != sweep_name(None, ["optimizer.lr=0.05,0.02"])
