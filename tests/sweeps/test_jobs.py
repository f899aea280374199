"""The job builder: group choices vs values (the groups of configs/train.yaml), overrides stacked
in order, FT parents built first and counted, jobs named by the identity of the config train.py
composes for them, one job per identity, and a job as a Hydra experiment config that does not
depend on the table that writes it."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import CONFIGS
from src.core import identity
from src.sweeps import cells, jobs, launch, spec, spec_files


def test_config_groups_are_those_hydra_composes_for_train():
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="train", return_hydra_config=True)
    choices = {k for k in cfg.hydra.runtime.choices if not k.startswith("hydra/")}
    assert set(jobs.config_groups()) == choices and "quantizer" in choices


def test_split_overrides():
    groups, values = jobs.split_overrides(["optimizer=adam", "optimizer.lr=0.01", "cluster=local", "seed=3"])
    assert groups == {"optimizer": "adam", "cluster": "local"} and values == ["optimizer.lr=0.01", "seed=3"]


def build(table: str, scale: str, root, identify: bool = True, **cell) -> list[jobs.Job]:
    """The table's jobs (those whose first cell has the given keys, with the FP runs they start
    from), identified unless ``identify=False`` (composing every config costs ~0.1 s per choice tuple)."""
    spec_, settings = spec_files.load_spec(table), spec_files.load_scale(scale)
    _, runs = cells.expand(spec_, scale, settings)
    builder = jobs.JobBuilder(spec_, settings, root)
    built = builder.build(runs)
    keep = {jobs.cell_name(j.cell) for j in built if all(j.cell[k] == v for k, v in cell.items())}
    keep |= {j.parent for j in built if jobs.cell_name(j.cell) in keep and j.parent}
    built = [j for j in built if jobs.cell_name(j.cell) in keep]
    return builder.identify(built) if identify else built


def built_job(table: str, scale: str, root, **cell) -> jobs.Job:
    return next(j for j in build(table, scale, root, **cell) if all(j.cell[k] == v for k, v in cell.items()))


def test_parents_come_first_and_count_their_children(tmp_path):
    built = build("conq/table1", "paper", tmp_path)
    names = [j.run_name for j in built]
    assert len(set(names)) == len(names) and len({j.run_id for j in built}) == len(built)
    by_name = {j.run_name: j for j in built}
    for i, job in enumerate(built):
        assert job.run_name == jobs.run_name(job.labels, job.run_id) and job.run_name.endswith(f"_{job.run_id}")
        if job.parent:
            assert names.index(job.parent) < i
            checkpoint = tmp_path.resolve() / "sweeps" / "runs" / job.parent / "checkpoints" / "best.pt"
            assert job.values[-1] == f"pipeline.checkpoint={checkpoint}"
    counts = {n: sum(1 for j in built if j.parent == n) for n in names}
    assert all(by_name[n].children == c for n, c in counts.items())
    fp = next(j for j in built if j.cell["model"] == "resnet20" and j.cell["method"] == "fp")
    assert counts[fp.run_name] == 1 + 10 + 4     # proxgen, conq x10, proxquant x4


def test_later_overrides_win_and_the_scale_stands_in_models(tmp_path):
    job = build("pcpp/table2", "smoke", tmp_path, False, dataset="imagenet", pipeline="ft", task="bwaa", method="bnnpp")[-1]
    assert job.cell["method"] == "bnnpp" and job.groups["model"] == "resnet20" and job.cell["model"] == "resnet50"
    assert job.labels["model"] == "resnet20"                                 # the run says what it trains
    batch = [v for v in job.values if v.startswith("dataset.batch_size=")]
    assert batch == ["dataset.batch_size=256", "dataset.batch_size=8"]      # the block's, then the scale's
    assert "trainer.precision=fp32" in job.values[job.values.index("trainer.precision=bf16"):]


def test_pretrained_ft_jobs(tmp_path):
    ft = build("pcpp/table3", "paper", tmp_path, False, pipeline="ft")
    assert ft and all(j.parent is None and "pipeline.pretrained=true" in j.values for j in ft)


def test_e2e_kd_jobs_take_their_teacher_from_the_library_or_the_smoke_fp_run(tmp_path):
    paper = build("pcpp/table4", "paper", tmp_path, False, pipeline="e2e", method="bnnpp")
    assert paper and all(j.parent is None and "model.protocol.kd=true" in j.values
                         and not any(v.startswith("model.protocol.kd_teacher=") for v in j.values) for j in paper)
    smoke = build("pcpp/table4", "smoke", tmp_path, pipeline="e2e", method="bnnpp")
    fp, *students = smoke
    assert fp.cell["method"] == "fp" and fp.children == len(students) == 2 and fp.stage == 0
    best = tmp_path.resolve() / "sweeps" / "runs" / fp.run_name / "checkpoints" / "best.pt"
    assert all(j.parent == fp.run_name and j.values[-1] == f"model.protocol.kd_teacher={best}" for j in students)


def test_cells_asking_for_one_training_share_one_job(tmp_path):
    """At smoke scale ConQ's ResNet32/44/56 cells train the ResNet20 stand-in: the same runs as the
    ResNet20 cells, so one job each, filling the cells of every model."""
    built = build("conq/table1", "smoke", tmp_path)
    assert len(built) == 4
    for job in built:
        assert sorted(c["model"] for c in job.cells) == ["resnet20", "resnet32", "resnet44", "resnet56"]


def compose_job_as_the_launcher_does(plan: spec.Plan, job: jobs.Job) -> dict:
    """Write the job config and compose it as ``src/train.py -m --config-dir <jobs> experiment=<run>``."""
    config_dir = launch.write_job_configs(plan, [job])
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"hydra.searchpath=[file://{config_dir}]",
                                                      f"experiment={job.run_name}"])
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("table, cell", [
    ("pcpp/table2", {"dataset": "cifar10", "pipeline": "ft", "task": "bwa", "method": "bnnpp"}),
    ("conq/table2", {"model": "resnet18", "method": "conq"}),
    ("pcpp/fig3", {"method": "bnnpp", "variant": "block3"}),
])
def test_identity_is_that_of_the_config_train_py_composes(tmp_path, table, cell):
    plan = spec.plan(table, "smoke", tmp_path, only={k: [v] for k, v in cell.items()})
    job = next(j for j in plan.jobs if all(j.cell[k] == v for k, v in cell.items()))
    config = compose_job_as_the_launcher_does(plan, job)
    assert config["run_id"] == job.run_id == identity.run_id(config)
    assert config["run_name"] == job.run_name and config["cell"] == job.labels


def test_job_config_carries_identity_labels_and_wandb_keys_whoever_writes_it(tmp_path):
    table2 = built_job("pcpp/table2", "smoke", tmp_path, dataset="cifar10", pipeline="e2e", task="bwa", method="bnnpp")
    table7 = built_job("pcpp/table7", "smoke", tmp_path, dataset="cifar10", pipeline="e2e", task="bwa", method="bnnpp")
    assert table2.run_id == table7.run_id and table2.cell["table"] != table7.cell["table"]
    config = jobs.job_config(table2)
    assert config == jobs.job_config(table7)
    assert config["run_id"] == table2.run_id and config["run_name"] == table2.run_name
    assert config["cell"] == {"dataset": "cifar10", "model": "resnet20", "pipeline": "e2e", "task": "bwa",
                              "method": "bnnpp", "seed": 0, "scale": "smoke"}
    assert {"override /quantizer": "bnnpp"} in config["defaults"]
    assert config["model"] == {"net": {"activation": "hardtanh"}}
    assert config["logger"]["group"] == f"cifar10_resnet20_e2e_bwa_bnnpp_{table2.experiment_id}"
    assert config["logger"]["job_type"] == "bwa"
    assert config["logger"]["tags"] == ["dataset:cifar10", "model:resnet20", "pipeline:e2e", "task:bwa",
                                        "method:bnnpp", "seed:0", "scale:smoke"]


def test_the_seeds_of_one_experiment_share_its_experiment_id(tmp_path):
    built = [j for m in ("bnnpp", "bnn") for j in build("pcpp/table7", "paper", tmp_path, dataset="cifar10", task="bw",
                                                         method=m)]
    by_method = {m: {j.experiment_id for j in built if j.cell["method"] == m} for m in ("bnnpp", "bnn")}
    assert all(len(ids) == 1 for ids in by_method.values()) and by_method["bnnpp"] != by_method["bnn"]
    assert len({j.run_id for j in built}) == 10
