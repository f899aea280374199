"""The job builder: group choices vs values (the groups of configs/train.yaml), overrides stacked
in order, FT parents built first and counted, and a job as a Hydra experiment config."""

from __future__ import annotations

from hydra import compose, initialize_config_dir

from conftest import CONFIGS
from src.sweeps import cells, jobs, spec_files


def test_config_groups_are_those_hydra_composes_for_train():
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="train", return_hydra_config=True)
    choices = {k for k in cfg.hydra.runtime.choices if not k.startswith("hydra/")}
    assert set(jobs.config_groups()) == choices and "quantizer" in choices


def test_split_overrides():
    groups, values = jobs.split_overrides(["optimizer=adam", "optimizer.lr=0.01", "cluster=local", "seed=3"])
    assert groups == {"optimizer": "adam", "cluster": "local"} and values == ["optimizer.lr=0.01", "seed=3"]


def build(table: str, scale: str, root, strict: bool = True) -> list[jobs.Job]:
    spec, settings = spec_files.load_spec(table), spec_files.load_scale(scale)
    _, runs = cells.expand(spec, scale, settings, strict)
    return jobs.JobBuilder(spec, settings, root, strict).build(runs)


def built_job(table: str, scale: str, root, name: str) -> jobs.Job:
    return next(j for j in build(table, scale, root) if j.run_name == name)


def test_parents_come_first_and_count_their_children(tmp_path):
    built = build("conq/table1", "paper", tmp_path)
    names = [j.run_name for j in built]
    assert len(set(names)) == len(names)
    by_name = {j.run_name: j for j in built}
    for i, job in enumerate(built):
        if job.parent:
            assert names.index(job.parent) < i
            checkpoint = tmp_path.resolve() / "multirun" / "conq" / "table1" / job.parent / "checkpoints" / "best.pt"
            assert job.values[-2:] == [f"pipeline.checkpoint={checkpoint}", f"trainer.max_epochs={job.epochs}"]
    counts = {n: sum(1 for j in built if j.parent == n) for n in names}
    assert all(by_name[n].children == c for n, c in counts.items())
    assert counts["cifar10_resnet20_e2e_bw_fp_seed0_paper"] == 1 + 10 + 4     # proxgen, conq x10, proxquant x4


def test_later_overrides_win_and_the_scale_stands_in_models(tmp_path):
    job = built_job("pcpp/table2", "smoke", tmp_path, "imagenet_resnet50_ft_bwaa_bnnpp_seed0_smoke")
    assert job.groups["model"] == "resnet20" and job.cell["model"] == "resnet50"
    batch = [v for v in job.values if v.startswith("dataset.batch_size=")]
    assert batch == ["dataset.batch_size=256", "dataset.batch_size=8"]      # the block's, then the scale's
    assert "trainer.precision=fp32" in job.values[job.values.index("trainer.precision=bf16"):]


def test_pretrained_ft_jobs(tmp_path):
    ft = [j for j in build("pcpp/table3", "paper", tmp_path) if j.cell["pipeline"] == "ft"]
    assert ft and all(j.parent is None and "pipeline.pretrained=true" in j.values for j in ft)


def test_job_config_carries_cell_and_wandb_keys(tmp_path):
    job = built_job("pcpp/table2", "smoke", tmp_path, "cifar10_resnet20_ft_bwa_bnnpp_seed0_smoke")
    config = jobs.job_config(job, "pcpp/table2")
    assert config["cell"] == job.cell and config["run_name"] == job.run_name
    assert {"override /quantizer": "bnnpp"} in config["defaults"]
    assert config["model"] == {"net": {"activation": "hardtanh"}}
    assert config["logger"]["group"] == "pcpp/table2" and config["logger"]["job_type"] == "bwa"
    assert config["logger"]["tags"] == ["paper:pcpp", "table:table2", "dataset:cifar10", "model:resnet20",
                                        "pipeline:ft", "task:bwa", "method:bnnpp", "seed:0", "scale:smoke"]
