"""A multirun reports every job at its end and exits non-zero when any job did not complete
(src/engine/multirun.py, src/train.py); a refused job touches nothing."""

from __future__ import annotations

import re

import pytest

from conftest import cli_env
from engine.zygote import Zygote

pytestmark = pytest.mark.slow

RUN = ["dataset=digits", "model=resnet20", "trainer.max_epochs=1", "trainer.max_steps_per_epoch=1",
       "trainer.progress=false", "dataset.batch_size=16", "dataset.splits.test_fraction=0.05"]


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
        assert sorted(p.name for p in sweep.iterdir()) == ["digits_resnet20_e2e_bw_fp_seed0",
                                                            "digits_resnet20_e2e_bw_fp_seed1", "multirun.yaml"]
        good = z.run(["-m", *RUN, "seed=0,1", "optimizer.lr=0.05", "+experiment_name=mixed"])
        assert good.returncode == 0, good.stderr[-3000:]
        assert "[multirun] 2 job(s): 2 completed" in good.stdout
