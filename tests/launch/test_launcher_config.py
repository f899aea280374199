"""The launcher configs: local (Hydra's basic launcher) by default; `hydra/launcher=slurm` takes
every submitit setting from the cluster profile configs/cluster/<name>.yaml, overridable per key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf
from omegaconf import OmegaConf

from src.core import config_tree
from tests.conftest import CONFIGS

PROFILES = config_tree.options("cluster")


def launcher(overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    return OmegaConf.to_container(cfg.hydra.launcher, resolve=True)


def test_local_basic_launcher_is_the_default():
    assert launcher([])["_target_"] == "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


@pytest.mark.parametrize("profile", PROFILES)
def test_slurm_launcher_takes_every_profile_key(profile: str):
    values = yaml.safe_load((CONFIGS / "cluster" / f"{profile}.yaml").read_text())
    assert set(values) <= set(SlurmQueueConf.__dataclass_fields__), "profile keys must be submitit's"
    got = launcher(["hydra/launcher=slurm", f"cluster={profile}"])
    assert got["_target_"].endswith("SlurmLauncher")
    assert {k: got[k] for k in values} == values
    # every key of the profile is wired (a key left out of slurm.yaml would keep submitit's default)
    wired = yaml.safe_load(Path(CONFIGS / "hydra" / "launcher" / "slurm.yaml").read_text())
    assert set(values) <= set(wired)


# the launcher's own keys, not the cluster's: where submitit writes, and the job name
LAUNCHER_OWN = {"_target_", "submitit_folder", "name"}


@pytest.mark.parametrize("profile", PROFILES)
def test_a_profile_holds_every_slurm_key_of_the_launcher(profile: str):
    values = yaml.safe_load((CONFIGS / "cluster" / f"{profile}.yaml").read_text())
    assert set(SlurmQueueConf.__dataclass_fields__) - LAUNCHER_OWN - set(values) == set()


def test_sbatch_keys_beyond_the_basic_ones_reach_the_launcher():
    got = launcher(["hydra/launcher=slurm", "cluster.exclude=node1", "cluster.gres=gpu:a100:1", "cluster.comment=ablation",
                    "cluster.mem_gb=null", "cluster.mem_per_cpu=4G", "cluster.gpus_per_node=null",
                    "cluster.gpus_per_task=1", "cluster.cpus_per_gpu=6", "cluster.stderr_to_stdout=true"])
    assert (got["exclude"], got["gres"], got["comment"], got["mem_per_cpu"], got["gpus_per_task"],
            got["cpus_per_gpu"], got["stderr_to_stdout"]) == ("node1", "gpu:a100:1", "ablation", "4G", 1, 6, True)
    assert got["mem_gb"] is None and got["gpus_per_node"] is None and got["mem_per_gpu"] is None


def test_profile_keys_are_overridable_per_command():
    got = launcher(["hydra/launcher=slurm", "cluster.partition=long", "cluster.timeout_min=720",
                    "cluster.max_num_timeout=5", "cluster.array_parallelism=8", "cluster.setup=[module load cuda]",
                    "hydra.launcher.gpus_per_node=4"])
    assert (got["partition"], got["timeout_min"], got["max_num_timeout"], got["array_parallelism"]) == ("long", 720, 5, 8)
    assert got["setup"] == ["module load cuda"] and got["gpus_per_node"] == 4


def test_unknown_cluster_profile_names_the_choices():
    with pytest.raises(Exception, match="(?s)cluster.*nope.*default"):
        launcher(["hydra/launcher=slurm", "cluster=nope"])


def test_cluster_profile_is_not_part_of_a_runs_identity():
    """A run started with one profile (or locally) resumes under another: `cluster` is resume-free."""
    from src.engine.runner import config_fingerprint

    def fingerprint(overrides: list[str]) -> dict:
        with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
            cfg = compose(config_name="train", overrides=overrides)
        return config_fingerprint(OmegaConf.to_container(cfg, resolve=True))

    assert fingerprint(["cluster=default"]) == fingerprint(["cluster=local", "cluster.partition=other"])
    assert fingerprint(["seed=0"]) != fingerprint(["seed=1"])
