"""Synthetic run directories as the engine writes them (results.json with the resolved config,
summary.csv one row per epoch; an unfinished run only train.log), and a fake wandb Api."""

from __future__ import annotations

import json
from pathlib import Path

from src.core.io import csv_text


def config(method: str = "bnnpp", task: str = "bw", lr: float = 0.1, seed: int = 0, scale: str = "none") -> dict:
    return {"dataset": {"name": "digits", "batch_size": 64}, "quantizer": {"name": method, "scale": scale},
            "task": {"name": task, "keep_fp": ["conv1", "fc"]}, "optimizer": {"_target_": "torch.optim.SGD", "lr": lr},
            "trainer": {"max_epochs": 3, "device": "cpu"}, "seed": seed,
            "run_name": f"digits_{method}_{task}_lr{lr}_seed{seed}", "output_root": "/somewhere"}


def write_run(folder: Path, name: str, acc: float | None, status: str = "completed", curve: list[float] | None = None,
              **cfg) -> Path:
    run = folder / name
    run.mkdir(parents=True)
    (run / "train.log").write_text("")
    results = {"status": status, "final_test_acc": acc, "best_test_acc": None if acc is None else acc + 1.0,
               "train_loss": 0.5, "epochs_completed": 3, "config": config(**cfg)}
    (run / "results.json").write_text(json.dumps(results))
    rows = [{"epoch": e + 1, "step": 10 * (e + 1), "test_acc": v, "train_loss": 1.0 / (e + 1)}
            for e, v in enumerate(curve or [])]
    if rows:
        (run / "summary.csv").write_text(csv_text(rows))
    return run


class FakeRun:
    """The attributes of wandb.apis.public.Run that compare reads."""

    def __init__(self, run_id: str, cfg: dict, summary: dict, state: str = "finished", history: list[dict] = ()):
        self.id = self.name = run_id
        self.config = {"_wandb": {"cli_version": "0.0"}, **cfg}
        self.summary, self.state, self._history = summary, state, list(history)

    def scan_history(self):
        return iter(self._history)


class FakeApi:
    def __init__(self, runs: list[FakeRun] | None = None, error: Exception | None = None):
        self.runs_, self.error, self.paths = runs or [], error, []

    def runs(self, path, filters=None):
        self.paths.append(path)
        if self.error is not None:
            raise self.error
        return self.runs_
