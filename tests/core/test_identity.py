"""A run's identity: keys that do not change training leave it alone, every key that does changes
it, and an FT run's parent counts by its identity, not by where its checkpoint lies."""

from __future__ import annotations

import copy

import pytest

from conftest import compose_train
from src.core import identity


def resolved(*overrides: str) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(compose_train(list(overrides)), resolve=True)


@pytest.fixture(scope="module")
def config() -> dict:
    return resolved("dataset=cifar10", "quantizer=bnnpp", "task=bwa", "pipeline=ft",
                    "pipeline.checkpoint=/out/sweeps/runs/cifar10_resnet20_e2e_bw_fp_seed0_0123456789ab/checkpoints/best.pt")


def changed(config: dict, dotted: str, value) -> dict:
    out = copy.deepcopy(config)
    node = out
    *path, last = dotted.split(".")
    for key in path:
        node = node.setdefault(key, {})
    node[last] = value
    return out


@pytest.mark.parametrize("key, value", [
    ("cell", {"dataset": "x"}), ("run_id", "abc"), ("run_name", "other"), ("experiment_name", "pcpp/table7"),
    ("output_root", "/elsewhere"), ("resume", "never"), ("logger", {"name": "wandb", "group": "g"}),
    ("cluster.partition", "cpu"), ("trainer.progress", False), ("trainer.log_every_n_steps", 7),
    ("trainer.log_every_n_seconds", 5.0),
    ("trainer.stop_after_epoch", 3), ("trainer.device", "cuda"), ("trainer.eval_soft", False),
    ("dataset.num_workers", 0), ("dataset.loader", "device"), ("dataset.prefetch_factor", 4),
    ("dataset.eval_batch_size", 64), ("dataset.splits.root", "/data"),
    ("dataset.splits.download", False), ("hydra", {"run": {"dir": "x"}}),
])
def test_keys_that_do_not_change_training_leave_the_identity_alone(config, key, value):
    assert identity.run_id(changed(config, key, value)) == identity.run_id(config)


@pytest.mark.parametrize("key, value", [
    ("seed", 1), ("optimizer.lr", 0.02), ("trainer.max_epochs", 7), ("quantizer.weight.mu_end", 31.0),
    ("model.net.activation", "relu"), ("dataset.batch_size", 64), ("task.keep_fp", ["first"]),
    ("trainer.precision", "bf16"), ("dataset.splits.train_subset", 5000), ("trainer.accumulate_grad_batches", 2),
])
def test_every_training_key_changes_the_identity(config, key, value):
    assert identity.run_id(changed(config, key, value)) != identity.run_id(config)


def test_a_key_added_later_at_its_neutral_value_keeps_the_identities_of_older_runs(config):
    """One batch per step is what every run did before trainer.accumulate_grad_batches existed."""
    older = copy.deepcopy(config)
    del older["trainer"]["accumulate_grad_batches"]
    assert identity.run_id(older) == identity.run_id(config)
    assert identity.run_id(changed(config, "trainer.accumulate_grad_batches", 4)) != identity.run_id(older)


def test_a_parent_counts_by_its_identity_not_its_path(config):
    key = "pipeline.checkpoint"
    moved = changed(config, key, "/other/root/sweeps/runs/renamed_0123456789ab/checkpoints/best.pt")
    assert identity.run_id(moved) == identity.run_id(config)
    assert identity.identity_config(config)["pipeline"]["checkpoint"] == "run:0123456789ab"
    other_parent = changed(config, key, "/out/sweeps/runs/cifar10_resnet20_e2e_bw_fp_seed0_fedcba987654/checkpoints/best.pt")
    assert identity.run_id(other_parent) != identity.run_id(config)
    # a checkpoint outside a sweep's runs is part of the identity as the path it is
    own = changed(config, key, "/home/me/fp.pt")
    assert identity.identity_config(own)["pipeline"]["checkpoint"] == "/home/me/fp.pt"
    assert identity.run_id(own) != identity.run_id(changed(config, key, "/home/me/fp2.pt"))


def test_identity_is_a_short_hex_digest_and_leaves_the_config_alone(config):
    before = copy.deepcopy(config)
    run_id = identity.run_id(config)
    assert len(run_id) == identity.ID_LENGTH and int(run_id, 16) >= 0
    assert config == before
    assert identity.run_id(dict(reversed(list(config.items())))) == run_id     # key order does not count
