"""Sweep spec files live in configs/sweep/, apart from train.py's Hydra experiments, and each tool
refuses the other's files with a message naming the right command."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from conftest import CONFIGS, compose_train, run_cli
from src.core.config_tree import options
from src.core.errors import UserError
from src.sweeps import spec_files


def test_specs_and_experiments_are_two_folders():
    specs = spec_files.list_specs()
    assert specs == sorted(f"{p.parent.name}/{p.stem}" for p in (CONFIGS / "sweep").glob("*/*.yaml"))
    assert "pcpp/table2" in specs and "pcpp/accum_bits" in specs
    assert not list((CONFIGS / "experiment").glob("*/*.yaml"))      # no spec left among the experiments
    assert "accum_bits" in options("experiment") and not spec_files.is_spec("accum_bits")
    spec = spec_files.load_spec("pcpp/table2")
    assert (spec["paper"], spec["table"]) == ("pcpp", "table2") and spec["grid"]


def test_scales_are_the_keys_of_the_scales_file():
    assert spec_files.scales() == tuple(OmegaConf.load(spec_files.SCALES_FILE))
    assert spec_files.load_scale("smoke")["fabricate_data"] is True
    with pytest.raises(UserError, match=f"scale='huge' is not one of {', '.join(spec_files.scales())}"):
        spec_files.load_scale("huge")


def test_reproduce_refuses_a_train_experiment():
    with pytest.raises(UserError) as info:
        spec_files.load_spec("accum_bits")
    message = str(info.value)
    assert "'accum_bits' is a train.py experiment (configs/experiment/accum_bits.yaml)" in message
    assert "`python src/train.py experiment=accum_bits`" in message and "pcpp/accum_bits" in message
    with pytest.raises(UserError, match=r"unknown sweep spec 'pcpp/nope'; the paper sweeps are: conq/table1, "):
        spec_files.load_spec("pcpp/nope")
    with pytest.raises(UserError, match="unknown sweep spec '../train'"):
        spec_files.load_spec("../train")


@pytest.mark.parametrize("arguments, names", [
    (["experiment=pcpp/table2"], "experiment=pcpp/table2 is a paper sweep spec (configs/sweep/pcpp/table2.yaml)"),
    (["-m", "experiment=accum_bits,conq/table1"], "`python scripts/reproduce.py conq/table1 "),
    (["+experiment=pcpp/fig2", "trainer.max_epochs=1"], "`python scripts/reproduce.py pcpp/fig2 "),
    (["+sweep=pcpp/table2"], "+sweep=pcpp/table2: configs/sweep/ holds the paper sweep specs"),
    (["sweep=pcpp/table3"], "`python scripts/reproduce.py pcpp/table3 "),
    (["++sweep=nope"], "`python scripts/reproduce.py <paper>/<table> "),
    (["+sweep/pcpp=table5"], "`python scripts/reproduce.py pcpp/table5 "),
])
def test_train_refuses_a_sweep_spec(arguments, names):
    message = spec_files.train_refusal(arguments)
    assert message is not None and names in message
    assert "accum_bits" in message or "specs are: conq/table1" in message     # what to run instead


@pytest.mark.parametrize("arguments", [
    [], ["experiment=accum_bits"], ["-m", "experiment=accum_bits", "task.accum.bits=6,8"],
    ["hydra/sweeper=cells", "experiment=cifar10_resnet20_e2e_bw_fp_seed0_smoke"], ["--config-dir", "x/.jobs/smoke"],
    ["quantizer=bnnpp", "trainer.max_epochs=1"],
])
def test_train_accepts_its_own_command_lines(arguments):
    assert spec_files.train_refusal(arguments) is None


def test_without_the_guard_hydra_would_compose_a_spec_silently():
    """Why src/train.py checks its command line itself: Hydra treats configs/sweep/ as a config
    group and composes a spec into the train config without complaint."""
    cfg = compose_train(["+sweep=pcpp/table2"])
    assert cfg.sweep.table == "table2" and cfg.quantizer.name == "fp"   # the default run, spec ignored


@pytest.mark.slow
@pytest.mark.slow
@pytest.mark.parametrize("argument", ["experiment=pcpp/table2", "+sweep=pcpp/table2"])
def test_train_py_exits_2_and_names_reproduce(output_root, argument):
    done = run_cli([argument], output_root, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "proxbin: error: " in done.stderr and "`python scripts/reproduce.py pcpp/table2 " in done.stderr
    assert not any(output_root.iterdir())                                  # nothing trained, nothing written
