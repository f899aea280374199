"""The entry point src/train.py: what it does to the command line before Hydra reads it."""

from __future__ import annotations

import pytest
import yaml

from conftest import run_cli
from src.train import resolvable_hydra_cfg


@pytest.mark.parametrize("arguments", [["--cfg", "hydra", "--resolve"], ["-c", "hydra", "-r"], ["--cfg=hydra", "-r"]])
def test_the_resolved_hydra_node_is_selected_from_the_whole_config(arguments):
    out = resolvable_hydra_cfg(["seed=1", *arguments])
    assert "hydra" not in out[:-1] and out[-2:] == ["--package", "hydra"] and "seed=1" in out


@pytest.mark.parametrize("arguments", [["--cfg", "hydra"], ["--cfg", "job", "--resolve"], ["seed=1"],
                                       ["--cfg", "hydra", "--resolve", "--package", "hydra.run"]])
def test_other_commands_are_left_as_they_are(arguments):
    assert resolvable_hydra_cfg(arguments) == arguments


@pytest.mark.slow
def test_cfg_hydra_resolve_prints_the_run_and_sweep_directories(output_root):
    done = run_cli(["--cfg", "hydra", "--resolve", "hydra/launcher=slurm", "cluster.exclude=node1", "seed=3"],
                   output_root)
    assert done.returncode == 0, done.stderr[-2000:]
    node = yaml.safe_load(done.stdout)
    assert node["run"]["dir"] == f"{output_root}/runs/digits_resnet20_e2e_bw_fp_seed3"
    assert node["launcher"]["exclude"] == "node1"
