"""A whole run: build everything from the config, train with auto-resume, record the results.

Files in the run directory (only rank 0 writes):
  summary.csv               one row per finished epoch (rewritten atomically each epoch)
  results.json              resolved config, status, accuracies, timings, machine, commit
  checkpoints/last.pt       everything needed to resume; checkpoints/best.pt: best test accuracy
  train.log, .hydra/        Hydra's log and composed config
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torchvision
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.nn.parallel import DistributedDataParallel

from src.engine import distributed as D
from src.core.checkpoint import load_checkpoint, load_matching, restore_rng_state, rng_state, save_checkpoint
from src.engine.environment import git_commit, hardware, seed_everything, select_device
from src.core.errors import Diverged, UserError
from src.engine.build import build_layer_factory, build_update_rule
from src.engine.init import initialise
from src.core.io import atomic_write_csv, atomic_write_json
from src.engine.loggers import NullLogger, build_logger
from src.engine.loop import StepSettings, TrainStep, eval_loader, evaluate, plain_objective, train_epoch, train_loader
from src.quant.hooks import accumulator_metrics, evaluation_form
from src.models.distill import Distiller
from src.models.protocols import apply_protocols
from src.quant.layers import latent_weights
from src.quant.monitor import BinarizationMonitor
from src.quant.summary import format_summary, model_summary
from src.quant.surgery import quantize_model

log = logging.getLogger("proxbin")

# Keys that may change between an interrupted run and its resumption without changing the result
# (cluster: where the job runs, e.g. a run started locally and continued on SLURM).
RESUME_FREE_KEYS = ("trainer.stop_after_epoch", "trainer.progress", "trainer.log_every_n_steps", "logger",
                    "resume", "output_root", "dataset.num_workers", "dataset.eval_batch_size", "cluster")

EXIT_CODES = {"completed": 0, "interrupted": 0, "failed": 1, "user_error": 2, "diverged": 3}


def config_fingerprint(config: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}.{k}" if prefix else str(k))
        elif not any(prefix == k or prefix.startswith(k + ".") for k in RESUME_FREE_KEYS):
            flat[prefix] = node

    walk(config, "")
    return flat


class Run:
    """State of one run; ``execute()`` returns the results dictionary it also writes."""

    def __init__(self, cfg: DictConfig, run_dir: Path, stage_init: Path | None = None):
        self.cfg = cfg
        # weights of an earlier stage (src.engine.stages), loaded after surgery: they include the
        # binarized layers' latent weights and the protocol's extra LayerNorms
        self.stage_init = stage_init
        self.distiller: Distiller | None = None
        self.run_dir = Path(run_dir)
        self.config = OmegaConf.to_container(cfg, resolve=True)
        self.fingerprint = config_fingerprint(self.config)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.history: list[dict[str, Any]] = []
        self.results: dict[str, Any] = {"status": "running"}
        self.logger: NullLogger = NullLogger()
        self.wall_time_before = 0.0
        self.global_step = 0
        self.best: dict[str, Any] = {"test_acc": -1.0, "epoch": None}

    # ----------------------------------------------------------------- set-up
    def setup(self) -> None:
        cfg = self.cfg
        self.device = select_device(cfg.trainer.device, int(os.environ.get("LOCAL_RANK", 0)))
        self.ctx = D.init_distributed(self.device.type)
        seed_everything(int(cfg.seed), bool(cfg.trainer.deterministic))
        self.settings = StepSettings.from_trainer(cfg.trainer, self.device)
        splits = instantiate(cfg.dataset.splits)
        if splits.num_classes != cfg.dataset.num_classes:
            raise UserError(f"dataset.num_classes={cfg.dataset.num_classes} but the data has {splits.num_classes} classes")
        self.splits = splits
        model = instantiate(cfg.model.net)
        self.init_report = initialise(model, cfg.pipeline, cfg.model)
        protocol = apply_protocols(model, cfg, binarizing=cfg.quantizer.get("weight") is not None)
        self.replaced = quantize_model(model, build_layer_factory(protocol.quantizer, cfg.task), list(cfg.task.keep_fp),
                                       only=protocol.only)
        if self.stage_init is not None:
            state = load_checkpoint(self.stage_init)["model"]
            self.init_report = {"source": str(self.stage_init), "stage": "pretrain", **load_matching(model, state, True)}
        model.to(self.device)
        if protocol.teacher is not None:
            p = cfg.model.protocol
            self.distiller = Distiller(protocol.teacher.to(self.device), model, p.kd_temperature, **p.kd_weights)
        if self.settings.channels_last:
            model.to(memory_format=torch.channels_last)
        self.model = model
        self.monitor = BinarizationMonitor(latent_weights(model))
        self.net = DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None) \
            if self.ctx.enabled else model
        self.optimizer = instantiate(cfg.optimizer)(model.parameters())
        self.scheduler = instantiate(cfg.scheduler)(self.optimizer)
        self.update_rule = build_update_rule(cfg.quantizer, model, self.optimizer)
        self.batch = D.per_rank_batch(int(cfg.dataset.batch_size), self.ctx)
        self.start_epoch = 0
        run_id = self.maybe_resume()
        if self.ctx.is_main:
            self.logger = build_logger(OmegaConf.to_container(cfg.logger, resolve=True), self.run_dir, self.config,
                                       run_id, name=str(cfg.run_name))
        self.summary = model_summary(model) | {"binarized_layers": self.replaced}
        log.info("model %s, %d binarized layers:\n%s", cfg.model.name, len(self.replaced), format_summary(self.summary))

    def maybe_resume(self) -> str | None:
        last = self.ckpt_dir / "last.pt"
        if not last.exists():
            return None
        if self.cfg.resume == "never":
            raise UserError(f"'{self.run_dir}' already holds a checkpoint and resume=never; choose another run_name")
        if self.cfg.resume != "auto":
            raise UserError(f"resume={self.cfg.resume!r} is not one of auto, never")
        state = load_checkpoint(last)
        differs = sorted(k for k in set(state["fingerprint"]) | set(self.fingerprint)
                         if state["fingerprint"].get(k, "<absent>") != self.fingerprint.get(k, "<absent>"))
        if differs:
            detail = ", ".join(f"{k}: {state['fingerprint'].get(k, '<absent>')} -> {self.fingerprint.get(k, '<absent>')}"
                               for k in differs[:6])
            raise UserError(
                f"'{self.run_dir}' holds a run with a different config ({detail}); it was not touched. "
                f"Give this run its own directory with run_name=<name>, or delete that directory to start over."
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.update_rule.load_state_dict(state.get("update_rule", {}))
        self.start_epoch = state["epoch"]
        self.global_step = state["global_step"]
        self.history = state["history"]
        self.best = state["best"]
        self.wall_time_before = state["wall_time_s"]
        restore_rng_state(state["rng"])
        log.info("resuming from %s (epoch %d of %d)", last, self.start_epoch, self.cfg.trainer.max_epochs)
        return state.get("wandb_run_id")

    # ---------------------------------------------------------------- training
    def checkpoint_state(self, epoch: int) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "epoch": epoch, "global_step": self.global_step,
            "history": self.history, "best": self.best, "rng": rng_state(), "fingerprint": self.fingerprint,
            "wall_time_s": self.wall_time(), "wandb_run_id": self.logger.run_id, "config": self.config,
            "update_rule": self.update_rule.state_dict(),
        }

    def wall_time(self) -> float:
        return self.wall_time_before + time.perf_counter() - self.t0

    def evaluate(self) -> dict[str, float]:
        loader = eval_loader(self.splits.test, int(self.cfg.dataset.eval_batch_size), int(self.cfg.dataset.num_workers), self.ctx)
        with evaluation_form(self.model, "binary"):
            binary = evaluate(self.model, loader, self.settings, self.ctx)
        out = {"test_acc": binary["acc"], "test_loss": binary["loss"]}
        if self.replaced and self.cfg.trainer.eval_soft:
            with evaluation_form(self.model, "soft"):
                out["test_acc_soft"] = evaluate(self.model, loader, self.settings, self.ctx)["acc"]
        return out

    def train(self) -> str:
        cfg = self.cfg
        max_epochs = int(cfg.trainer.max_epochs)
        stop_after = cfg.trainer.stop_after_epoch
        probe = train_loader(self.splits.train, self.batch, 0, self.ctx, int(cfg.seed), 0,
                             drop_last=self.settings.drop_last)
        total_steps = self.settings.steps_per_epoch(len(probe)) * max_epochs
        step = TrainStep(self.net, self.optimizer, self.settings, total_steps, self.update_rule,
                         self.distiller or plain_objective, self.ctx)
        if max_epochs == 0 and not self.history:  # evaluation only (e.g. post-training binarization)
            self.history.append({"epoch": 0, "step": 0, **self.evaluate()})
            self.best = {"test_acc": self.history[-1]["test_acc"], "epoch": 0}
            self.save_epoch(0, True)
        for epoch in range(self.start_epoch, max_epochs):
            loader = train_loader(self.splits.train, self.batch, int(cfg.dataset.num_workers), self.ctx, int(cfg.seed),
                                  epoch, pin_memory=self.device.type == "cuda", drop_last=self.settings.drop_last)
            t_epoch = time.perf_counter()
            stats = train_epoch(step, loader, self.global_step, f"epoch {epoch + 1}/{max_epochs}", self.logger)
            self.global_step += stats["steps"]
            lr = self.optimizer.param_groups[0]["lr"]
            self.scheduler.step()
            train_overflow = accumulator_metrics(self.model, prefix="train_")
            row = {"epoch": epoch + 1, "step": self.global_step, "lr": lr, "train_loss": stats["train_loss"],
                   "train_acc": stats["train_acc"], **self.evaluate(),
                   "epoch_time_s": time.perf_counter() - t_epoch,
                   "train_img_per_s": stats["images"] / max(stats["seconds"], 1e-9),
                   **self.monitor.epoch_metrics(), **train_overflow,
                   **accumulator_metrics(self.model, prefix="test_"),
                   **({f"kd_{k}": v for k, v in self.distiller.last.items()} if self.distiller else {})}
            self.history.append(row)
            improved = row["test_acc"] > self.best["test_acc"]
            if improved:
                self.best = {"test_acc": row["test_acc"], "epoch": epoch + 1}
            self.save_epoch(epoch + 1, improved)
            remaining = (max_epochs - epoch - 1) * (time.perf_counter() - t_epoch)
            log.info("epoch %d/%d  loss %.4f  train %.2f%%  test %.2f%% (best %.2f%%)  %.0f img/s  ETA %s",
                     epoch + 1, max_epochs, row["train_loss"], row["train_acc"], row["test_acc"], self.best["test_acc"],
                     row["train_img_per_s"], _hms(remaining))
            if stop_after is not None and epoch + 1 >= int(stop_after) and epoch + 1 < max_epochs:
                log.info("stopping after epoch %d (trainer.stop_after_epoch); re-run the same command to resume", epoch + 1)
                return "interrupted"
        return "completed"

    def save_epoch(self, epoch: int, improved: bool) -> None:
        if not self.ctx.is_main:
            return
        state = self.checkpoint_state(epoch)
        save_checkpoint(self.ckpt_dir / "last.pt", state)
        if improved:
            save_checkpoint(self.ckpt_dir / "best.pt", state)
        atomic_write_csv(self.run_dir / "summary.csv", self.history)
        self.logger.log({k: v for k, v in self.history[-1].items() if k != "epoch"} | {"epoch": epoch}, step=self.global_step)

    # ----------------------------------------------------------------- results
    def record(self, status: str, **extra: Any) -> dict[str, Any]:
        last = self.history[-1] if self.history else {}
        results = {
            "status": status, **extra,
            "run_name": self.cfg.run_name, "run_dir": str(self.run_dir),
            "final_test_acc": last.get("test_acc"), "final_test_acc_soft": last.get("test_acc_soft"),
            "best_test_acc": self.best["test_acc"] if self.best["epoch"] is not None else None, "best_epoch": self.best["epoch"],
            "train_loss": last.get("train_loss"), "train_acc": last.get("train_acc"),
            "epochs_completed": last.get("epoch", 0), "max_epochs": int(self.cfg.trainer.max_epochs),
            "steps": self.global_step,
            "overflow_rates": {k.split("/", 1)[1]: v for k, v in last.items() if k.startswith("test_overflow_rate/")} or None,
            "wall_time_s": self.wall_time() if hasattr(self, "t0") else None,
            "train_img_per_s": _mean([h["train_img_per_s"] for h in self.history if "train_img_per_s" in h]),
            "model_summary": getattr(self, "summary", None), "init": getattr(self, "init_report", None),
            "torch_version": torch.__version__, "torchvision_version": torchvision.__version__,
            "hardware": hardware(self.device) if hasattr(self, "device") else None,
            "world_size": self.ctx.world_size if hasattr(self, "ctx") else 1,
            "git_commit": git_commit(), "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "config": self.config,
        }
        if not hasattr(self, "ctx") or self.ctx.is_main:
            atomic_write_json(self.run_dir / "results.json", results)
        return results

    def execute(self) -> dict[str, Any]:
        """Train and record. A UserError propagates (nothing is written: an existing run directory
        stays as it was); divergence and other failures are recorded in results.json."""
        self.t0 = time.perf_counter()
        status = "failed"  # until proven otherwise
        try:
            self.setup()
            status = self.train()
            results = self.record(status)
            self.logger.summary({k: results[k] for k in ("final_test_acc", "best_test_acc", "status")})
        except Diverged as exc:
            status = "diverged"
            log.error("diverged: %s", exc)
            results = self.record(status, diverged_step=exc.step, message=str(exc))
        except UserError:
            status = "user_error"
            raise
        except Exception as exc:  # recorded, so that a sweep can report it and go on
            user_error = _user_error_in(exc)
            if user_error is not None:  # raised inside hydra.utils.instantiate, which wraps it
                status = "user_error"
                raise user_error from None
            log.error("run failed:\n%s", traceback.format_exc())
            results = self.record(status, message=f"{type(exc).__name__}: {exc}")
        finally:
            self.logger.finish(exit_code=EXIT_CODES.get(status, 1))
            if hasattr(self, "ctx"):
                D.shutdown(self.ctx)
        self.results = results
        return results


def _user_error_in(exc: BaseException | None) -> UserError | None:
    while exc is not None:
        if isinstance(exc, UserError):
            return exc
        exc = exc.__cause__
    return None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _hms(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
