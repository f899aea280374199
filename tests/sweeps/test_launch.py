"""Two scripts/reproduce.py of the same table at once: every run is trained by one of them, the
other waits for it (src/sweeps/launch.py, the run directory's lock of src.core.lock)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from src.sweeps import launch, spec

pytestmark = pytest.mark.slow

TABLE = "pcpp/appE"


def test_two_concurrent_invocations_train_each_run_once(tmp_path):
    command = [sys.executable, str(ROOT / "scripts" / "reproduce.py"), TABLE, "scale=smoke", "launcher=local",
               "--output-root", str(tmp_path / "out"), "--tables", str(tmp_path / "tables"),
               "--figures", str(tmp_path / "figures")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline"}
    first, second = (subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True) for _ in range(2))
    outputs = [p.communicate(timeout=900)[0] for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], [o[-3000:] for o in outputs]
    plan = spec.plan(TABLE, "smoke", tmp_path / "out")
    for job in plan.jobs:
        directory = plan.run_dir(job)
        assert json.loads((directory / "results.json").read_text())["status"] == "completed"
        log = (directory / "train.log").read_text()
        assert log.count(f"epoch {job.epochs}/{job.epochs}  loss") == 1, f"{job.run_name} trained twice:\n{log}"
