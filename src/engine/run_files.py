"""The files of a run directory, and the one order in which they are written.

``checkpoints/last.pt`` is the run's source of truth and its commit point: one atomic rename per
epoch. It holds the weights, optimizer, RNG states, the history of every epoch, the best epoch
with its metrics and weights (``best_model``), what results.json reports about the run
(``run_info``) and a checksum of all of it. Everything else is derived from last.pt and written
after it:

  checkpoints/best.pt   the best epoch's weights (``best_payload``)
  summary.csv           one row per epoch of last.pt's history
  results.json          the status, and what last.pt holds (``results_record``); its
                        ``checkpoint_sha256`` is the checksum of the last.pt it describes

so a process killed between two writes leaves derived files that claim at most what last.pt
holds, and :meth:`RunFiles.reconcile` re-derives each one that is missing, stale or damaged when
the run is started again. Only the process holding the run directory's lock (src.core.lock) writes.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from src.core.checkpoint import load_checkpoint, payload_checksum, save_checkpoint
from src.core.errors import UserError
from src.core.io import atomic_write_json, csv_text, remove_temporaries, write_text_if_changed

log = logging.getLogger("proxbin")

# The parts of last.pt that describe the run (kept in memory as the committed state); the rest is
# the training state (weights, optimizer, RNG), read back only to resume.
META_KEYS = ("epoch", "global_step", "history", "best", "wall_time_s", "fingerprint", "config", "run_info",
             "wandb_run_id", "checksum")


def meta_of(state: dict[str, Any]) -> dict[str, Any]:
    return {k: state.get(k) for k in META_KEYS}


def best_payload(meta: dict[str, Any], best_model: dict[str, Any]) -> dict[str, Any]:
    """best.pt: the best epoch's weights, its metrics and the history up to it; a function of last.pt."""
    epoch = meta["best"]["epoch"]
    return {"model": best_model, "epoch": epoch, "best": meta["best"],
            "history": [row for row in meta["history"] if row["epoch"] <= epoch],
            "fingerprint": meta["fingerprint"], "config": meta["config"]}


def results_record(status: str, meta: dict[str, Any] | None, config: dict[str, Any], run_dir: Path,
                   run_info: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """results.json for a run whose last committed state is ``meta`` (None: nothing committed yet)."""
    history = meta["history"] if meta else []
    best = meta["best"] if meta else {"test_acc": -1.0, "epoch": None}
    info = (meta or {}).get("run_info") or run_info
    last = history[-1] if history else {}
    speeds = [h["train_img_per_s"] for h in history if "train_img_per_s" in h]
    return {
        "status": status, **extra,
        "run_name": config["run_name"], "run_dir": str(run_dir),
        "final_test_acc": last.get("test_acc"), "final_test_acc_soft": last.get("test_acc_soft"),
        "best_test_acc": best["test_acc"] if best["epoch"] is not None else None, "best_epoch": best["epoch"],
        "train_loss": last.get("train_loss"), "train_acc": last.get("train_acc"),
        "epochs_completed": meta["epoch"] if meta else 0, "max_epochs": int(config["trainer"]["max_epochs"]),
        "steps": meta["global_step"] if meta else 0,
        "overflow_rates": {k.split("/", 1)[1]: v for k, v in last.items() if k.startswith("test_overflow_rate/")} or None,
        "wall_time_s": meta["wall_time_s"] if meta else None,
        "train_img_per_s": sum(speeds) / len(speeds) if speeds else None,
        **{k: info.get(k) for k in ("model_summary", "init", "torch_version", "torchvision_version", "hardware",
                                     "world_size", "git_commit", "data_path", "compile", "compile_s")},
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "checkpoint_sha256": meta["checksum"] if meta else None,
        "config": config,
    }


class RunFiles:
    """Paths and writes of one run directory."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.last = self.ckpt_dir / "last.pt"
        self.best = self.ckpt_dir / "best.pt"
        self.summary = self.run_dir / "summary.csv"
        self.results = self.run_dir / "results.json"

    def read_committed(self) -> dict[str, Any] | None:
        """last.pt, checked against its checksum (a damaged file: UserError, file untouched), or None."""
        return load_checkpoint(self.last) if self.last.exists() else None

    def clean_temporaries(self) -> None:
        for folder in (self.run_dir, self.ckpt_dir, self.run_dir / ".hydra"):
            for tmp in remove_temporaries(folder) if folder.is_dir() else []:
                log.info("removed %s, left by a write that was killed", tmp)

    def commit(self, state: dict[str, Any]) -> dict[str, Any]:
        """The epoch's commit point: last.pt. Returns the committed state's metadata (``meta_of``)."""
        return meta_of(state) | {"checksum": save_checkpoint(self.last, state)}

    def derive(self, meta: dict[str, Any], best_model: dict[str, Any] | None) -> None:
        """After a commit: the best.pt (when this epoch is the best) and summary.csv it implies."""
        if meta["best"]["epoch"] == meta["epoch"] and best_model is not None:
            save_checkpoint(self.best, best_payload(meta, best_model))
        write_text_if_changed(self.summary, csv_text(meta["history"]))

    def write_results(self, record: dict[str, Any]) -> bool:
        """results.json; a failed write (disk full, read-only) is logged, not raised: the run's
        state is in last.pt and the record is re-derived when the run starts again."""
        try:
            atomic_write_json(self.results, record)
            return True
        except OSError as exc:
            log.error("could not write %s: %s", self.results, exc)
            return False

    def reconcile(self, meta: dict[str, Any] | None, best_model: dict[str, Any] | None,
                  record: dict[str, Any]) -> dict[str, Any]:
        """Make every derived file agree with last.pt (``meta``; None: nothing committed yet):
        re-derive what is missing, stale or damaged, remove what claims a state last.pt does not
        hold, and leave what agrees untouched. ``record`` is results.json's content unless the file
        already reports the same status of the same last.pt. Returns results.json's content."""
        self._reconcile_best(meta, best_model)
        if meta is None or not meta["history"]:
            self._remove(self.summary)
        elif write_text_if_changed(self.summary, csv_text(meta["history"])):
            log.info("re-derived %s from %s", self.summary.name, self.last)
        current = self._read_results()
        if current is not None and current.get("status") == record["status"] and \
                current.get("checkpoint_sha256") == record["checkpoint_sha256"]:
            return current
        self.write_results(record)
        return record

    def _reconcile_best(self, meta: dict[str, Any] | None, best_model: dict[str, Any] | None) -> None:
        if meta is None or meta["best"]["epoch"] is None:
            self._remove(self.best)
            return
        if best_model is None:  # a last.pt written before best weights were kept in it: nothing to derive
            return
        expected = best_payload(meta, best_model)
        try:
            fits = load_checkpoint(self.best).get("checksum") == payload_checksum(expected)
        except UserError:
            fits = False
        if not fits:
            save_checkpoint(self.best, expected)
            log.info("re-derived %s from %s (best epoch %s)", self.best.name, self.last, meta["best"]["epoch"])

    def _read_results(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.results.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _remove(self, path: Path) -> None:
        if path.exists():
            path.unlink()
            log.info("removed %s: it claimed more than %s holds", path, self.last)
