"""A multirun reports every job at its end and exits non-zero when any job did not complete
(src/engine/multirun.py, src/train.py); a refused job touches nothing."""

from __future__ import annotations

import json
import os
import re

import pytest

from conftest import cli_env
from engine.zygote import Zygote


RUN = ["dataset=digits", "model=resnet20", "trainer.max_epochs=1", "trainer.max_steps_per_epoch=1",
       "trainer.progress=false", "dataset.batch_size=16", "dataset.splits.test_fraction=0.05"]


@pytest.mark.slow
def test_a_multirun_with_a_refused_job_lists_every_job_and_exits_1(tmp_path):
    with Zygote(cli_env(tmp_path / "outputs"), tmp_path / "logs") as z:
        mixed = z.run(["-m", *RUN, "seed=0,1", "optimizer.lr=0.05,-1", "+experiment_name=mixed"])
        assert mixed.returncode == 1, mixed.stderr[-3000:]
        lines = re.findall(r"^  #(\d+)\s+(\w+)\s+(\S+)", mixed.stdout, flags=re.M)
        assert [(job, status) for job, status, _ in lines] == [("0", "completed"), ("1", "refused"),
                                                              ("2", "completed"), ("3", "refused")]
        assert "[multirun] 4 job(s): 2 completed, 2 refused" in mixed.stdout
        assert "optimizer.lr=-1 is not valid" in mixed.stdout and "Traceback" not in mixed.stderr
        sweep = tmp_path / "outputs" / "multirun" / "mixed"
        runs = sorted(p.name for p in sweep.iterdir() if p.is_dir() and p.name != "model_summaries")
        assert [name.split("_")[:6] for name in runs] == [["digits", "resnet20", "e2e", "bw", "fp", "seed0"],
                                                          ["digits", "resnet20", "e2e", "bw", "fp", "seed1"]]
        # the refused jobs left no directory
        assert sorted(p.name for p in sweep.iterdir()) == [*runs, "model_summaries", "multirun.yaml"]
        assert [run_dir.split("/")[-1] for _, status, run_dir in lines if status == "completed"] == runs
        good = z.run(["-m", *RUN, "seed=0,1", "optimizer.lr=0.05", "+experiment_name=mixed"])
        assert good.returncode == 0, good.stderr[-3000:]
        assert "[multirun] 2 job(s): 2 completed" in good.stdout


@pytest.mark.slow
def test_a_two_value_lr_sweep_trains_two_runs_in_two_directories(tmp_path):
    """Keys outside the base run name (here optimizer.lr) name the run: each job gets its own
    directory, and the sweep its own folder named after its overrides."""
    outputs = tmp_path / "outputs"
    with Zygote(cli_env(outputs), tmp_path / "logs") as z:
        done = z.run(["-m", *RUN, "optimizer.lr=0.05,0.01"])
        assert done.returncode == 0, done.stderr[-3000:]
        assert "[multirun] 2 job(s): 2 completed" in done.stdout
        (sweep,) = (outputs / "multirun").iterdir()
        assert sweep.name.startswith("lr-0.05+0.01_dataset-digits_")  # the swept key first
        results = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/results.json"))]
        assert sorted(r["config"]["optimizer"]["lr"] for r in results) == [0.01, 0.05]
        assert [r["status"] for r in results] == ["completed", "completed"]
        assert len({r["run_dir"] for r in results}) == 2
        assert all(f"_lr-{r['config']['optimizer']['lr']}_" in r["run_name"] for r in results)
        again = z.run(["-m", *RUN, "optimizer.lr=0.05,0.01"])  # the same command: the same runs, nothing to train
        assert again.returncode == 0 and "nothing to train" in again.stdout + again.stderr
        assert list((outputs / "multirun").iterdir()) == [sweep]


@pytest.mark.slow
def test_a_sweep_prints_each_model_summary_once(tmp_path):
    """Four jobs, two distinct models (FP and BC-binarized ResNet-20): each summary in full once,
    by the first job that built it; the other jobs log one line pointing to the sweep's copy."""
    with Zygote(cli_env(tmp_path / "outputs"), tmp_path / "logs") as z:
        done = z.run(["-m", *RUN, "quantizer=fp,bc", "seed=0,1", "+experiment_name=summaries"])
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    sweep = tmp_path / "outputs" / "multirun" / "summaries"
    copies = sorted((sweep / "model_summaries").iterdir())
    assert len(copies) == 2
    for copy in copies:
        text = copy.read_text()
        assert text.startswith("model resnet20, ") and output.count(text.strip()) == 1    # printed in full once
        assert output.count(f"summary in {copy} (printed by the sweep's first job") == 1   # pointed to once
    assert output.count("layer                                   type") == 2                # 2 tables, not 4
    by_job = {tuple(p.parent.name.split("_")[4:6]): p.read_text() for p in sweep.glob("*/train.log")}
    for method in ("fp", "bc"):
        assert "layer                                   type" in by_job[(method, "seed0")]
        assert "summary in " in by_job[(method, "seed1")] and "layer     " not in by_job[(method, "seed1")]


def test_shared_summary_is_written_once_per_distinct_text(tmp_path):
    from src.engine.multirun import shared_summary

    assert shared_summary(tmp_path, "resnet20", "model resnet20, 0 binarized layers:\ntable A") is None  # print it
    copy = shared_summary(tmp_path, "resnet20", "model resnet20, 0 binarized layers:\ntable A")
    assert copy.parent == tmp_path / "model_summaries" and copy.name.startswith("resnet20_")
    assert copy.read_text() == "model resnet20, 0 binarized layers:\ntable A\n"
    assert shared_summary(tmp_path, "resnet20", "model resnet20, 18 binarized layers:\ntable B") is None
    (tmp_path / "ro").mkdir(mode=0o500)
    if not os.access(tmp_path / "ro", os.W_OK):     # (root can write anyway)
        assert shared_summary(tmp_path / "ro", "m", "x") is None   # no copy possible: printed in full
