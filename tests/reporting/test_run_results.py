"""Runs are found in a sweep directory, a folder of runs or as run directories; runs that did not
finish are found too (and say why); wandb runs read alike, and an unreachable wandb is a UserError."""

from __future__ import annotations

import pytest

from reporting.helpers import FakeApi, FakeRun, config, write_run
from src.core.errors import UserError
from src.reporting import run_results


def test_a_sweep_directory_yields_each_run_once_finished_or_not(tmp_path):
    sweep = tmp_path / "sweep"
    a = write_run(sweep, "a", 90.0, curve=[50.0, 80.0, 90.0])
    b = write_run(sweep, "b", None, status="failed")
    killed = sweep / "c"
    (killed / "checkpoints").mkdir(parents=True)
    (killed / "train.log").write_text("started\n")           # no results.json: never committed an epoch
    (sweep / "multirun.yaml").write_text("")
    (a / "checkpoints").mkdir()
    (a / "checkpoints" / "results.json").write_text("{}")    # inside a run: not another run
    runs = run_results.from_run_dirs([sweep])
    assert [(r.name, r.status, r.completed) for r in runs] == [("a", "completed", True), ("b", "failed", False),
                                                              ("c", "no results.json", False)]
    assert runs[0].config == config() and runs[0].metrics["final_test_acc"] == 90.0
    assert "final_test_acc" not in runs[1].metrics                       # null is not a number
    assert runs[0].curve("test_acc") == [(1.0, 50.0), (2.0, 80.0), (3.0, 90.0)]
    assert runs[0].curve("no_such_column") == [] and runs[1].curve("test_acc") == []
    assert [r.name for r in run_results.from_run_dirs([b, a, b])] == ["b", "a"]   # run dirs themselves, once


def test_no_run_directory_and_not_a_directory_are_user_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no run directory under .*empty"):
        run_results.from_run_dirs([tmp_path / "empty"])
    with pytest.raises(UserError, match="missing is not a directory"):
        run_results.from_run_dirs([tmp_path / "missing"])


def test_wandb_runs_read_like_run_directories():
    history = [{"_step": 5, "running_train_loss": 2.0}, {"_step": 10, "epoch": 1, "test_acc": 60.0},
               {"_step": 20, "epoch": 2, "test_acc": 70.0}]
    api = FakeApi([FakeRun("r1", config(), {"status": "completed", "final_test_acc": 70.0, "note": "x"},
                           history=history),
                   FakeRun("r2", config(seed=1), {}, state="crashed")])
    done, crashed = run_results.from_wandb("ent/proj", api=api)
    assert api.paths == ["ent/proj"]
    assert (done.status, done.metrics, done.origin) == ("completed", {"final_test_acc": 70.0}, "wandb:ent/proj/r1")
    assert done.config == config()                      # wandb's own _wandb entry dropped
    assert done.curve("test_acc") == [(1.0, 60.0), (2.0, 70.0)]
    assert crashed.status == "failed" and not crashed.completed     # no summary status: from the run's state


def test_unreachable_wandb_and_a_bad_project_path_are_user_errors():
    with pytest.raises(UserError, match=r"could not read the runs of wandb project ent/proj \(ConnectionError: "
                                        r"Max retries.*wandb login.*scripts/compare.py <sweep dir>"):
        run_results.from_wandb("ent/proj", api=FakeApi(error=ConnectionError("Max retries exceeded")))
    with pytest.raises(UserError, match="expected <entity>/<project>"):
        run_results.from_wandb("just-a-project", api=FakeApi())
