"""The files derived from last.pt (best.pt, summary.csv, results.json) are re-derived when missing,
stale or damaged, removed when they claim a state last.pt does not hold, and left untouched when
they agree with it."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from src.core.checkpoint import load_checkpoint
from src.core.io import csv_text
from src.engine.run_files import RunFiles, best_payload, results_record

CONFIG = {"run_name": "r", "trainer": {"max_epochs": 3}}


def committed(files: RunFiles, epochs: int) -> tuple[dict, dict]:
    """last.pt after ``epochs`` epochs whose best is epoch 1, as the runner commits it."""
    history = [{"epoch": e, "step": 2 * e, "test_acc": 50.0 - e, "train_img_per_s": 10.0} for e in range(1, epochs + 1)]
    best_model = {"w": torch.full((3,), 1.0)}
    state = {"model": {"w": torch.full((3,), float(epochs))}, "epoch": epochs, "global_step": 2 * epochs,
             "history": history, "best": {"test_acc": 49.0, "epoch": 1}, "best_model": best_model, "wall_time_s": 1.0,
             "fingerprint": {}, "config": CONFIG, "run_info": {"git_commit": "abc"}, "wandb_run_id": None}
    meta = files.commit(state)
    return meta, best_model


def record(files: RunFiles, meta: dict, status: str) -> dict:
    return results_record(status, meta, CONFIG, files.run_dir, {})


def mtimes(directory: Path) -> dict[str, int]:
    return {str(p.relative_to(directory)): p.stat().st_mtime_ns for p in directory.rglob("*") if p.is_file()}


def test_everything_missing_is_derived_from_last_pt(tmp_path):
    files = RunFiles(tmp_path)
    meta, best = committed(files, 3)  # killed right after the final last.pt
    out = files.reconcile(meta, best, record(files, meta, "completed"))
    assert out["status"] == "completed" and out["epochs_completed"] == 3 and out["best_epoch"] == 1
    assert json.loads(files.results.read_text())["checkpoint_sha256"] == load_checkpoint(files.last)["checksum"]
    assert files.summary.read_text() == csv_text(meta["history"])
    best_pt = load_checkpoint(files.best)
    assert best_pt["epoch"] == 1 and torch.equal(best_pt["model"]["w"], best["w"])
    assert [row["epoch"] for row in best_pt["history"]] == [1]


def test_agreeing_files_are_left_untouched_and_stale_or_damaged_ones_rewritten(tmp_path):
    files = RunFiles(tmp_path)
    meta, best = committed(files, 3)
    files.reconcile(meta, best, record(files, meta, "completed"))
    before = mtimes(tmp_path)
    files.reconcile(meta, best, record(files, meta, "completed"))
    assert mtimes(tmp_path) == before
    files.summary.write_text("epoch\n1\n")  # two rows short
    files.best.write_bytes(files.best.read_bytes()[:100])  # truncated
    files.results.write_text(json.dumps({**record(files, meta, "running"), "epochs_completed": 2}))
    files.reconcile(meta, best, record(files, meta, "completed"))
    assert files.summary.read_text() == csv_text(meta["history"])
    assert load_checkpoint(files.best)["checksum"] and json.loads(files.results.read_text())["status"] == "completed"


def test_files_claiming_more_than_last_pt_are_removed(tmp_path):
    files = RunFiles(tmp_path)
    meta, best = committed(files, 1)
    files.reconcile(meta, best, record(files, meta, "running"))
    files.last.unlink()  # a run directory whose last.pt is gone: nothing is committed
    files.reconcile(None, None, results_record("running", None, CONFIG, tmp_path, {}))
    assert not files.best.exists() and not files.summary.exists()
    assert json.loads(files.results.read_text())["epochs_completed"] == 0


def test_best_payload_is_a_function_of_last_pt(tmp_path):
    files = RunFiles(tmp_path)
    meta, best = committed(files, 2)
    a, b = best_payload(meta, best), best_payload(dict(meta), {"w": best["w"].clone()})
    assert a["epoch"] == b["epoch"] == 1 and torch.equal(a["model"]["w"], b["model"]["w"])
