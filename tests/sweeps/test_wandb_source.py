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
from src.sweeps import store

sys.path.insert(0, str(ROOT / "scripts"))
import make_tables  # noqa: E402
import reproduce  # noqa: E402

pytestmark = pytest.mark.slow  # CLI, subprocess or training runs: make test-full


class RecordedApi:
    """``wandb.Api`` answering ``runs(path, filters={"group": ...})`` from recorded run nodes."""

    def __init__(self, nodes: list[dict], path: str):
        self.runs_ = [WandbRun(None, *path.split("/"), node["name"], attrs=node, lazy=False) for node in nodes]
        self.calls: list[tuple] = []

    def runs(self, path, filters=None):
        self.calls.append((path, filters))
        return [r for r in self.runs_ if r.group == (filters or {}).get("group")]


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
    rc = reproduce.main(["conq/table1", "scale=smoke", "--only", "model=resnet20", "--output-root", str(out),
                         "--tables", str(tmp_path / "t0"), "--figures", str(tmp_path / "f"), "--", "logger=wandb"])
    assert rc == 0  # every run of the --only selection completed (the other rows stay missing)
    files = sorted(out.glob("multirun/conq/table1/*/wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 4
    nodes = [recorded_node(f) for f in files]
    for node, f in zip(nodes, files):
        cell = json.loads(node["config"])["cell"]["value"]
        assert node["group"] == "conq/table1" and node["jobType"] == cell["task"] == "bw"
        assert node["tags"] == [f"{k}:{cell[k]}" for k in ("paper", "table", "dataset", "model", "pipeline", "task",
                                                          "method", "seed", "scale")]
        assert f.parents[2].name.startswith(f"cifar10_resnet20_") and cell["scale"] == "smoke"
    # a run of another group in the same project is not part of the table
    stray = dict(nodes[0], name="stray", group="conq/table2")
    api = RecordedApi(nodes + [stray], "ent/proxbin")

    from_dirs = make_tables.render("conq/table1", "smoke", "runs", out, tmp_path / "a", tmp_path / "f")
    from_wandb = make_tables.render("conq/table1", "smoke", "wandb:ent/proxbin", out, tmp_path / "b", tmp_path / "f",
                                    api=api)
    assert api.calls == [("ent/proxbin", {"group": "conq/table1"})]
    a = (tmp_path / "a" / "conq" / "table1.smoke.csv").read_text()
    b = (tmp_path / "b" / "conq" / "table1.smoke.csv").read_text()
    assert a == b and a.count("\n") == 17
    assert from_dirs.missing == from_wandb.missing == 12
    filled = [e for e in from_wandb.entries.values() if e.ours]
    assert len(filled) == 4 and all(e.ours.n == 1 for e in filled)
    # the numbers are the runs' own results.json values
    records = store.from_run_dirs(out / "multirun", "conq", "table1")
    assert sorted(r.best_test_acc for r in records) == sorted(e.ours.mean for e in filled)


def test_wandb_source_needs_entity_and_project():
    with pytest.raises(UserError, match="expected wandb:<entity>/<project>"):
        store.load("wandb:proxbin", "pcpp", "table2", api=object())
