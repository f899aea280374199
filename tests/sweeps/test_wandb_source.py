"""Tables rendered from wandb equal tables rendered from the run directories.

The runs are real smoke runs logged by wandb in offline mode. The wandb side is tested against a
recorded API response: each offline run file is turned into the GraphQL run node the wandb server
returns (config as {key: {"value": ...}}, summaryMetrics, group, jobType, tags, state) and loaded
into wandb's own ``wandb.apis.public.Run``, which ``make_tables --source wandb:`` reads as it
reads ``wandb.Api().runs(...)`` online."""

from __future__ import annotations

import json
import sys

import pytest
from wandb.apis.public import Run as WandbRun

from conftest import ROOT
from engine.wandb_records import run_contents
from src.core.errors import UserError
from src.sweeps import spec, store

sys.path.insert(0, str(ROOT / "scripts"))
import make_tables  # noqa: E402
import reproduce  # noqa: E402

pytestmark = pytest.mark.slow  # CLI, subprocess or training runs: make test-full


class RecordedApi:
    """``wandb.Api`` answering ``runs(path, filters={"config.run_id": {"$in": [...]}})`` from
    recorded run nodes (the server's MongoDB-style filter on a config key)."""

    def __init__(self, nodes: list[dict], path: str):
        self.runs_ = [WandbRun(None, *path.split("/"), node["name"], attrs=node, lazy=False) for node in nodes]
        self.calls: list[tuple] = []

    def runs(self, path, filters=None):
        self.calls.append((path, filters))
        wanted = set(filters["config.run_id"]["$in"])
        return [r for r in self.runs_ if r.config.get("run_id") in wanted]


def recorded_node(run_file) -> dict:
    info = run_contents(run_file)
    return {"name": info["run_id"], "state": "finished", "group": info["group"], "jobType": info["job_type"],
            "tags": info["tags"], "config": json.dumps({k: {"value": v, "desc": None} for k, v in info["config"].items()}),
            "summaryMetrics": json.dumps(info["summary"])}


@pytest.mark.slow
def test_tables_from_wandb_and_from_run_dirs_are_identical(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "out"
    rc = reproduce.main(["conq/table2", "scale=smoke", "--only", "model=resnet20", "--output-root", str(out),
                         "--tables", str(tmp_path / "t0"), "--figures", str(tmp_path / "f"), "--", "logger=wandb"])
    assert rc == 0  # every run of the --only selection completed (the other rows stay missing)
    plan = spec.plan("conq/table2", "smoke", out, extra=["logger=wandb"])
    ours = [j for j in plan.jobs if j.cell["model"] == "resnet20"]
    files = sorted(out.glob("sweeps/runs/*/wandb/offline-run-*/run-*.wandb"))
    assert len(files) == len(ours) == 4
    nodes = [recorded_node(f) for f in files]
    for node, f in zip(nodes, files):
        config = {k: v["value"] for k, v in json.loads(node["config"]).items()}
        cell, job = config["cell"], next(j for j in ours if j.run_id == config["run_id"])
        assert f.parents[2].name == job.run_name and cell == job.labels
        assert node["group"] == "_".join(str(cell[k]) for k in ("dataset", "model", "pipeline", "task", "method")) \
            + f"_{job.experiment_id}"                         # the seeds of one experiment
        assert node["jobType"] == cell["task"] == "bw"
        assert node["tags"] == [f"{k}:{cell[k]}" for k in ("dataset", "model", "pipeline", "task", "method", "seed",
                                                          "scale")]
    # a run of the same project that the table does not name is not read
    stray = dict(nodes[0], name="stray", config=nodes[0]["config"].replace(ours[0].run_id, "0123456789ab"))
    api = RecordedApi(nodes + [stray], "ent/proxbin")

    from_dirs = make_tables.render("conq/table2", "smoke", "runs", out, tmp_path / "a", tmp_path / "f",
                                   extra=["logger=wandb"])
    from_wandb = make_tables.render("conq/table2", "smoke", "wandb:ent/proxbin", out, tmp_path / "b", tmp_path / "f",
                                    api=api, extra=["logger=wandb"])
    ((path, filters),) = api.calls
    assert path == "ent/proxbin" and sorted(filters["config.run_id"]["$in"]) == sorted(j.run_id for j in plan.jobs)
    a = (tmp_path / "a" / "conq" / "table2.smoke.csv").read_text()
    b = (tmp_path / "b" / "conq" / "table2.smoke.csv").read_text()
    assert a == b and a.count("\n") == 26
    assert from_dirs.missing == from_wandb.missing == 6
    filled = [e for e in from_wandb.entries.values() if e.ours]
    assert len(filled) == 4 and all(e.ours.n == 1 for e in filled)
    # the numbers are the runs' own results.json values
    records = store.from_run_dirs(out / "sweeps" / "runs", [j.run_id for j in ours])
    assert sorted(r.best_test_acc for r in records) == sorted(e.ours.mean for e in filled)


def test_wandb_source_needs_entity_and_project():
    with pytest.raises(UserError, match="expected wandb:<entity>/<project>"):
        store.from_wandb("proxbin", ["0123456789ab"], api=object())
