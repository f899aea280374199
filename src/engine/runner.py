"""A whole run: build everything from the config, train with auto-resume, record the results.

A run is a transaction on its directory (only rank 0 writes):

  1. validate  every value and key of the config (src.engine.validate): a bad one stops the run;
  2. lock      the run directory (src.core.lock): a second process waits, or stops (wait_for_lock=false);
  3. check     last.pt, if any: readable, its checksum right, the same config (else stop);
  4. build     data, model, initial weights, optimizer; load last.pt (a refusal here stops too);
  5. accept    the first write: temporaries of killed writes removed, .hydra/ written (``on_accept``),
               best.pt / summary.csv / results.json re-derived from last.pt where they disagree with it;
  6. train     one commit per epoch (src.engine.run_files): last.pt, then best.pt, summary.csv, results.json;
               with trainer.checkpoint_every_n_steps also one of last.pt (and results.json) every n
               optimizer steps and at a stop signal, from which the run resumes at that batch.

A refusal in 1-4 (UserError, exit 2) changes nothing on disk. A finished run (last.pt at the last
epoch) skips 4 and 6: its derived files are checked and repaired, nothing is trained.

Files in the run directory:
  summary.csv               one row per finished epoch
  results.json              status (running, completed, interrupted, diverged, failed), accuracies,
                            timings (compile_s: torch.compile's share, trainer.compile), machine,
                            commit, the resolved config
  checkpoints/last.pt       everything needed to resume; checkpoints/best.pt: best test accuracy
  train.log, .hydra/        Hydra's log and composed config
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch
import torchvision
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.nn.parallel import DistributedDataParallel

from src.core.checkpoint import load_checkpoint, load_matching, restore_rng_state, rng_state
from src.core.identity import IDENTITY_FREE_KEYS, is_neutral
from src.core.errors import Diverged, UserError
from src.core.lock import RunBusy, RunLock, describe
from src.engine import distributed as D
from src.engine import multirun
from src.engine.build import build_layer_factory, build_update_rule
from src.engine.compile import compile_enabled, compile_model, compile_seconds
from src.engine.environment import git_commit, hardware, seed_everything, select_device
from src.engine.init import initialise, report_line, teacher_state
from src.engine.loggers import NullLogger, build_logger
from src.engine.data_path import DataPath
from src.engine.loop import EpochProgress, StepSettings, TrainStep, evaluate, plain_objective, train_epoch
from src.engine.run_files import RunFiles, meta_of, results_record
from src.engine.signals import StopSignals
from src.engine.validate import validate
from src.models.distill import Distiller
from src.models.protocols import apply_protocols
from src.quant.hooks import accumulator_metrics, evaluation_form
from src.quant.layers import latent_weights
from src.quant.monitor import BinarizationMonitor
from src.quant.summary import format_summary, model_summary
from src.quant.surgery import quantize_model

log = logging.getLogger("proxbin")

# Keys that may change between an interrupted run and its resumption without changing the result:
# exactly the keys that are not part of a run's identity (where and how it is run and logged, e.g. a
# run started locally and continued on SLURM, or a sweep run shared by two tables).
RESUME_FREE_KEYS = IDENTITY_FREE_KEYS

EXIT_CODES = {"completed": 0, "interrupted": 0, "failed": 1, "user_error": 2, "diverged": 3}


class Stopped(Exception):
    """A stop signal arrived before the run wrote anything: it ends with nothing written."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by signal {signum} before anything was written")
        self.signum = signum


def config_fingerprint(config: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}.{k}" if prefix else str(k))
        elif not any(prefix == k or prefix.startswith(k + ".") for k in RESUME_FREE_KEYS) and not is_neutral(prefix, node):
            flat[prefix] = node

    walk(config, "")
    return flat


class Run:
    """State of one run; ``execute()`` returns the results dictionary it also writes.
    ``on_accept()`` is called once the run is accepted, before its first write of its own
    (src/train.py writes Hydra's .hydra/ files there); ``stop``: the command's stop signals
    (src.engine.signals), shared by the stages of a command; a Run makes its own by default."""

    def __init__(self, cfg: DictConfig, run_dir: Path, stage_init: Path | None = None,
                 on_accept: Callable[[], None] | None = None, stop: StopSignals | None = None):
        self.cfg = cfg
        # weights of an earlier stage (src.engine.stages), loaded after surgery: they include the
        # binarized layers' latent weights and the protocol's extra LayerNorms
        self.stage_init = stage_init
        self.on_accept = on_accept
        self.distiller: Distiller | None = None
        self.run_dir = Path(run_dir)
        self.files = RunFiles(self.run_dir)
        self.ckpt_dir = self.files.ckpt_dir
        self.config: dict[str, Any] | None = None
        self.fingerprint: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []
        self.results: dict[str, Any] = {"status": "running"}
        self.logger: NullLogger = NullLogger()
        self.wall_time_before = 0.0
        self.global_step = 0
        self.start_epoch = 0
        self.best: dict[str, Any] = {"test_acc": -1.0, "epoch": None}
        self.best_model: dict[str, torch.Tensor] | None = None
        self.committed: dict[str, Any] | None = None  # what last.pt holds (run_files.meta_of)
        self.epoch_progress: dict[str, Any] | None = None  # a mid-epoch last.pt's epoch in progress
        self.step_state: dict[str, Any] = {}  # the TrainStep's own state (fp16's gradient scaler)
        self.stop = stop or StopSignals()
        self.is_main = int(os.environ.get("RANK", "0")) == 0

    # ------------------------------------------------------------ refusals (steps 1, 3)
    def validate(self) -> None:
        """Step 1, once: every value and key of the config (src.engine.validate)."""
        if self.config is None:
            validate(self.cfg)
            self.config = OmegaConf.to_container(self.cfg, resolve=True)
            self.fingerprint = config_fingerprint(self.config)

    def check(self) -> dict[str, Any] | None:
        """Validate the config and read last.pt, if any; UserError when the run must not go on.
        Reads only. Returns last.pt's content."""
        self.validate()
        state = self.files.read_committed()
        if state is None:
            return None
        if self.cfg.resume == "never":
            raise UserError(f"'{self.run_dir}' already holds a checkpoint and resume=never; choose another run_name")
        saved = state.get("fingerprint") or {}
        differs = sorted(k for k in set(saved) | set(self.fingerprint)
                         if saved.get(k, "<absent>") != self.fingerprint.get(k, "<absent>"))
        if differs:
            detail = ", ".join(f"{k}: {saved.get(k, '<absent>')} -> {self.fingerprint.get(k, '<absent>')}"
                               for k in differs[:6])
            raise UserError(
                f"'{self.run_dir}' holds a run with a different config ({detail}); it was not touched. "
                f"Give this run its own directory with run_name=<name>, or delete that directory to start over."
            )
        return state

    # --------------------------------------------------------------------- the run
    def execute(self) -> dict[str, Any]:
        """Validate, lock, check, build, accept, train, record (see the module docstring)."""
        self.validate()
        with self.stop, self._lock():
            self.t0 = time.perf_counter()  # this command's share of the wall time starts once it holds the run
            state = self.check()
            if state is not None and state["epoch"] >= int(self.cfg.trainer.max_epochs):
                return self.finished(state)
            try:
                self.setup(state)
            except Exception as exc:
                user_error = _user_error_in(exc)  # raised inside hydra.utils.instantiate, which wraps it
                if user_error is not None and user_error is not exc:
                    raise user_error from None
                raise
            if self.stop.requested:
                raise Stopped(self.stop.signum)
            self.accept()
            return self.train_and_record()

    def _lock(self) -> Any:
        if not self.is_main:  # under torchrun rank 0 holds the directory for all ranks
            return _NoLock()
        return _StopAwareLock(self.run_dir, bool(self.cfg.get("wait_for_lock", True)), self.stop)

    def finished(self, state: dict[str, Any]) -> dict[str, Any]:
        """A run whose last.pt is at its last epoch: repair what disagrees with it, train nothing."""
        self.committed = meta_of(state)
        self.history, self.best, self.global_step = state["history"], state["best"], state["global_step"]
        self.best_model = state.get("best_model")
        if not self.is_main:
            return self.record_of("completed")
        try:
            self.files.clean_temporaries()
            if self.on_accept is not None:
                self.on_accept()
            self.results = self.files.reconcile(self.committed, self.best_model, self.record_of("completed"))
        except OSError as exc:
            raise UserError(f"the run directory '{self.run_dir}' cannot be written ({exc}); every file in it is "
                            f"as it was or agrees with last.pt") from None
        log.info("resuming from %s (epoch %d of %d): the run is complete, nothing to train", self.files.last,
                 state["epoch"], int(self.cfg.trainer.max_epochs))
        return self.results

    # ---------------------------------------------------------------- set-up (step 4)
    def setup(self, state: dict[str, Any] | None = None) -> None:
        cfg = self.cfg
        self.device = select_device(cfg.trainer.device, int(os.environ.get("LOCAL_RANK", 0)))
        self.ctx = D.init_distributed(self.device.type)
        seed_everything(int(cfg.seed), bool(cfg.trainer.deterministic))
        self.settings = StepSettings.from_trainer(cfg.trainer, self.device)
        splits = _configured("dataset.splits", lambda: instantiate(cfg.dataset.splits))
        if splits.num_classes != cfg.dataset.num_classes:
            raise UserError(f"dataset.num_classes={cfg.dataset.num_classes} but the data has {splits.num_classes} classes")
        if int(cfg.dataset.batch_size) > len(splits.train):
            raise UserError(f"dataset.batch_size={cfg.dataset.batch_size} is larger than the {len(splits.train):,} "
                            f"training images of dataset={cfg.dataset.name}: choose at most {len(splits.train)}")
        self.splits = splits
        model = _configured("model.net", lambda: instantiate(cfg.model.net))
        self.init_report = initialise(model, cfg.pipeline, cfg.model)
        teacher = teacher_state(cfg)
        protocol = apply_protocols(model, cfg, binarizing=cfg.quantizer.get("weight") is not None,
                                   teacher_weights=teacher)
        factory = build_layer_factory(protocol.quantizer, cfg.task)
        self.replaced = _configured("quantizer / task", lambda: quantize_model(model, factory, list(cfg.task.keep_fp),
                                                                              only=protocol.only))
        if self.stage_init is not None:
            weights = load_checkpoint(self.stage_init)["model"]
            self.init_report = {"source": str(self.stage_init), "stage": "pretrain", **load_matching(model, weights)}
        model.to(self.device)
        if protocol.teacher is not None:
            p = cfg.model.protocol
            self.distiller = Distiller(protocol.teacher.to(self.device), model, p.kd_temperature, **p.kd_weights)
            log.info("KD teacher (PC++ §4.3 protocol (4)): %s", teacher[1] if teacher else "the initial FP weights")
        if self.settings.channels_last:
            model.to(memory_format=torch.channels_last)
        self.compiled = compile_enabled(cfg.trainer.compile, self.device)
        if self.compiled:  # in place: self.model's state_dict keys stay those of an eager run
            compile_model(model)
        self.model = model
        self.net = DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None) \
            if self.ctx.enabled else model
        self.optimizer = _configured("optimizer", lambda: instantiate(cfg.optimizer)(model.parameters()))
        self.scheduler = _configured("scheduler", lambda: instantiate(cfg.scheduler)(self.optimizer))
        self.update_rule = _configured("quantizer.update_rule", lambda: build_update_rule(cfg.quantizer, model,
                                                                                          self.optimizer))
        self.batch = D.per_rank_batch(int(cfg.dataset.batch_size), self.ctx)
        d = cfg.dataset
        self.data = DataPath(splits, d.loader, self.batch, int(d.eval_batch_size), int(d.num_workers), d.prefetch_factor,
                             self.ctx, int(cfg.seed), self.device, drop_last=self.settings.drop_last)
        if state is not None:
            self.load(state)
        # the flip ratio's reference signs are those of the weights training continues from: after the load
        self.monitor = BinarizationMonitor(latent_weights(model))
        if self.epoch_progress is not None:  # the epoch's statistics so far, as the uninterrupted run has them
            self.monitor.reference = list(self.epoch_progress["flip_reference"])
            _load_accumulator_windows(model, self.epoch_progress["accumulators"])
        self.summary = model_summary(model) | {"binarized_layers": self.replaced}
        self.facts = {"torch_version": torch.__version__, "torchvision_version": torchvision.__version__,
                      "hardware": hardware(self.device), "world_size": self.ctx.world_size, "git_commit": git_commit(),
                      "data_path": self.data.kind, "compile": self.compiled, "compile_s": None}

    def load(self, state: dict[str, Any]) -> None:
        """Continue from last.pt: every piece of training state, and the record so far."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.update_rule.load_state_dict(state.get("update_rule", {}))
        self.start_epoch = state["epoch"]
        self.global_step = state["global_step"]
        self.history = list(state["history"])
        self.best = dict(state["best"])
        self.best_model = state.get("best_model")
        self.wall_time_before = state["wall_time_s"]
        self.committed = meta_of(state)
        self.epoch_progress = state.get("epoch_progress")
        self.step_state = state.get("train_step", {})
        restore_rng_state(state["rng"])

    # ------------------------------------------------------------- accept (step 5)
    def accept(self) -> None:
        """Every refusal is behind: from here on this command writes. A write that fails here (a
        full or read-only disk) changed nothing (every write is atomic): a UserError still."""
        try:
            self._accept()
        except OSError as exc:
            raise UserError(f"the run directory '{self.run_dir}' cannot be written ({exc}); every file in it is "
                            f"as it was or agrees with last.pt. Free space or fix its permissions, then re-run the command") from None

    def _accept(self) -> None:
        if self.ctx.is_main:
            self.files.clean_temporaries()
            if self.on_accept is not None:
                self.on_accept()
            run_id = self.committed.get("wandb_run_id") if self.committed else None
            self.logger = build_logger(OmegaConf.to_container(self.cfg.logger, resolve=True), self.run_dir,
                                       self.config, run_id, name=str(self.cfg.run_name))
            self.files.reconcile(self.committed, self.best_model, self.record_of("running"))
        if self.committed is not None:
            log.info("resuming from %s (epoch %d of %d)", self.files.last, self.start_epoch, self.cfg.trainer.max_epochs)
        elif self.init_report:  # logged once accepted: a refused command must not create train.log
            log.info(report_line(self.init_report))
            for warning in self.init_report.get("warnings", []):
                log.warning("!!! %s", warning)
        self._log_summary()

    def _log_summary(self) -> None:
        """The model summary in full, except in a sweep whose earlier job printed the same one."""
        title = f"model {self.cfg.model.name}, {len(self.replaced)} binarized layers"
        text = f"{title}:\n{format_summary(self.summary)}"
        sweep = multirun.sweep_dir() if self.ctx.is_main else None
        copy = multirun.shared_summary(sweep, str(self.cfg.model.name), text) if sweep is not None else None
        if copy is None:
            log.info(text)
        else:
            log.info("%s: summary in %s (printed by the sweep's first job with this model)", title, copy)

    # ---------------------------------------------------------------- training (step 6)
    def checkpoint_state(self, epoch: int, global_step: int | None = None,
                         progress: EpochProgress | None = None) -> dict[str, Any]:
        """last.pt after ``epoch`` epochs; mid-epoch (``progress``: the next epoch's first steps) also
        what the epoch's row will need: its sums so far, the flip ratio's reference signs and the
        accumulators' overflow windows."""
        in_progress = None if progress is None else {
            "steps": progress.steps, "loss_sum": progress.loss_sum, "correct": progress.correct,
            "seen": progress.seen, "flip_reference": [r.detach().cpu().clone() for r in self.monitor.reference],
            "accumulators": _accumulator_windows(self.model)}
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "epoch": epoch,
            "global_step": self.global_step if global_step is None else global_step, "epoch_progress": in_progress,
            "train_step": self.step.state_dict() if hasattr(self, "step") else {},
            "history": list(self.history), "best": dict(self.best), "best_model": self.best_model,
            "rng": rng_state(), "fingerprint": self.fingerprint, "wall_time_s": self.wall_time(),
            "wandb_run_id": self.logger.run_id, "config": self.config, "update_rule": self.update_rule.state_dict(),
            "run_info": self.run_info(),
        }

    def run_info(self) -> dict[str, Any]:
        return {"model_summary": getattr(self, "summary", None), "init": getattr(self, "init_report", None),
                **getattr(self, "facts", {})}

    def wall_time(self) -> float:
        return self.wall_time_before + time.perf_counter() - self.t0

    def evaluate(self) -> dict[str, float]:
        loader = self.data.test()
        with evaluation_form(self.model, "binary"):
            binary = evaluate(self.model, loader, self.settings, self.ctx)
        out = {"test_acc": binary["acc"], "test_loss": binary["loss"]}
        if self.replaced and self.cfg.trainer.eval_soft:
            with evaluation_form(self.model, "soft"):
                out["test_acc_soft"] = evaluate(self.model, loader, self.settings, self.ctx)["acc"]
        return out

    def train(self) -> str:
        """Train up to trainer.max_epochs; "completed", or "interrupted" (stop_after_epoch or a stop
        signal: the epoch in progress is dropped and last.pt holds the one before, or with
        trainer.checkpoint_every_n_steps last.pt holds the step it stopped after)."""
        cfg = self.cfg
        max_epochs = int(cfg.trainer.max_epochs)
        stop_after = cfg.trainer.stop_after_epoch
        total_steps = self.settings.steps_per_epoch(len(self.data.train(0))) * max_epochs
        self.step = step = TrainStep(self.net, self.optimizer, self.settings, total_steps, self.update_rule,
                                     self.distiller or plain_objective, self.ctx)
        step.load_state_dict(self.step_state)
        if max_epochs == 0 and not self.history:  # evaluation only (e.g. post-training binarization)
            self.history.append({"epoch": 0, "step": 0, **self.evaluate()})
            self.improved(0)
            self.save_epoch(0)
        for epoch in range(self.start_epoch, max_epochs):
            start = self.resumed_progress() if epoch == self.start_epoch else EpochProgress()
            loader = self.data.train(epoch, skip_batches=start.steps * self.settings.accumulate_grad_batches)
            t_epoch = time.perf_counter()
            stats = train_epoch(step, loader, self.global_step, f"epoch {epoch + 1}/{max_epochs}", self.logger, start,
                                checkpoint=lambda progress, at: self.save_step(epoch, progress, at),
                                stop=self._stop_requested)
            if self.compiled and self.facts["compile_s"] is None and stats["first_steps_s"]:  # this process's first steps
                self.facts["compile_s"] = compile_seconds(stats["first_steps_s"])
                log.info("torch.compile: %.1f s (the first training step's extra time; evaluation compiles its "
                         "own graphs at its first call)", self.facts["compile_s"])
            if stats["stopped"]:
                log.info("stopped in epoch %d by a signal: last.pt holds step %d; re-run the command to resume",
                         epoch + 1, self.committed["global_step"] if self.committed else 0)
                return "interrupted"
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
            if row["test_acc"] > self.best["test_acc"]:
                self.improved(epoch + 1)
            self.save_epoch(epoch + 1)
            remaining = (max_epochs - epoch - 1) * (time.perf_counter() - t_epoch)
            log.info("epoch %d/%d  loss %.4f  train %.2f%%  test %.2f%% (best %.2f%%)  %.0f img/s  ETA %s",
                     epoch + 1, max_epochs, row["train_loss"], row["train_acc"], row["test_acc"], self.best["test_acc"],
                     row["train_img_per_s"], _hms(remaining))
            if epoch + 1 < max_epochs and self._stop_agreed():
                log.info("stopped after epoch %d by a signal; re-run the command to resume", epoch + 1)
                return "interrupted"
            if stop_after is not None and epoch + 1 >= int(stop_after) and epoch + 1 < max_epochs:
                log.info("stopping after epoch %d (trainer.stop_after_epoch); re-run the same command to resume", epoch + 1)
                return "interrupted"
        return "completed"

    def _stop_requested(self) -> bool:
        """Asked before each step: a stop signal ends the epoch early in a single process (every rank
        of a torchrun must take the same steps, so there the stop waits for the end of the epoch)."""
        return self.stop.requested and not self.ctx.enabled

    def resumed_progress(self) -> EpochProgress:
        """The epoch in progress of a mid-epoch last.pt (none: a fresh epoch). Its sums are all
        ranks' together: rank 0 carries them on, the others start from zero."""
        p = self.epoch_progress
        if p is None:
            return EpochProgress()
        if not self.ctx.is_main:
            return EpochProgress(p["steps"])
        return EpochProgress(p["steps"], p["loss_sum"], p["correct"], p["seen"])

    def _stop_agreed(self) -> bool:
        if not self.ctx.enabled:
            return self.stop.requested
        return D.all_reduce_sum([float(self.stop.requested)], self.ctx, self.device)[0] > 0

    def improved(self, epoch: int) -> None:
        self.best = {"test_acc": self.history[-1]["test_acc"], "epoch": epoch}
        if self.ctx.is_main:
            self.best_model = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}

    def save_step(self, epoch: int, progress: EpochProgress, global_step: int) -> None:
        """A mid-epoch commit of last.pt, ``progress.steps`` steps into epoch ``epoch + 1``; the history
        is unchanged, so best.pt and summary.csv are too: results.json follows the new last.pt."""
        if not self.ctx.is_main:
            return
        self.committed = self.files.commit(self.checkpoint_state(epoch, global_step, progress))
        self.files.write_results(self.record_of("running"))

    def save_epoch(self, epoch: int) -> None:
        """The epoch's commit: last.pt, then best.pt, summary.csv and results.json derived from it."""
        if not self.ctx.is_main:
            return
        self.committed = self.files.commit(self.checkpoint_state(epoch))
        self.files.derive(self.committed, self.best_model)
        self.files.write_results(self.record_of("running"))
        self.logger.log({k: v for k, v in self.history[-1].items() if k != "epoch"} | {"epoch": epoch}, step=self.global_step)

    # ----------------------------------------------------------------- results
    def record_of(self, status: str, **extra: Any) -> dict[str, Any]:
        """results.json: ``status`` and what last.pt holds (never a step it does not hold)."""
        return results_record(status, self.committed, self.config, self.run_dir, self.run_info(), **extra)

    def record(self, status: str, **extra: Any) -> dict[str, Any]:
        results = self.record_of(status, **extra)
        if self.ctx.is_main:
            self.files.write_results(results)
        return results

    def train_and_record(self) -> dict[str, Any]:
        """Train and record; divergence and other failures are recorded in results.json too."""
        status = "failed"  # until proven otherwise
        try:
            status = self.train()
            signal = {"signal": self.stop.signum} if self.stop.requested and status == "interrupted" else {}
            results = self.record(status, **signal)
            self.logger.summary({k: results[k] for k in ("final_test_acc", "best_test_acc", "status")})
        except Diverged as exc:
            status = "diverged"
            log.error("diverged: %s", exc)
            results = self.record(status, diverged_step=exc.step, message=str(exc))
        except Exception as exc:  # recorded, so that a sweep can report it and go on
            log.error("run failed:\n%s", traceback.format_exc())
            results = self.record(status, message=f"{type(exc).__name__}: {exc}")
        except BaseException as exc:  # KeyboardInterrupt; SystemExit from submitit's requeue on its time-out signal
            status = "interrupted"
            self.record(status, message=f"stopped by {type(exc).__name__}")
            raise
        finally:
            self.logger.finish(exit_code=EXIT_CODES.get(status, 1))
            D.shutdown(self.ctx)
        self.results = results
        return results


class _StopAwareLock:
    """The run directory's lock, waiting (with one line on stderr) or refusing at once; a stop
    signal while waiting ends the wait with nothing written."""

    def __init__(self, run_dir: Path, wait: bool, stop: StopSignals):
        self.stop = stop
        self.lock = RunLock(run_dir, wait=wait, on_wait=self.waiting, should_stop=lambda: stop.requested)

    def waiting(self, holder: dict[str, Any] | None) -> None:
        print(f"proxbin: '{self.lock.run_dir}' is in use by {describe(holder)}: waiting for it to finish "
              f"(Ctrl-C stops; wait_for_lock=false refuses at once instead)", file=sys.stderr, flush=True)

    def __enter__(self) -> _StopAwareLock:
        try:
            self.lock.acquire()
        except RunBusy:
            if self.stop.requested:
                raise Stopped(self.stop.signum) from None
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


class _NoLock:
    def __enter__(self) -> _NoLock:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _accumulator_windows(model: torch.nn.Module) -> dict[str, Any]:
    """Each BWAA accumulator's overflow statistics since the epoch began (src.accum)."""
    return {name: m.window_state() for name, m in model.named_modules() if hasattr(m, "window_state")}


def _load_accumulator_windows(model: torch.nn.Module, windows: dict[str, Any]) -> None:
    for name, m in model.named_modules():
        if name in windows:
            m.load_window_state(windows[name])


def _configured(key: str, build: Callable[[], Any]) -> Any:
    """Build what config node ``key`` describes; a value its constructor refuses (ValueError,
    TypeError: the constructor's own checks) is a UserError naming the node, raised before the run
    writes anything."""
    try:
        return build()
    except UserError:
        raise
    except Exception as exc:
        user_error = _user_error_in(exc)
        if user_error is not None:
            raise user_error from None
        cause = _root_cause(exc)
        if isinstance(cause, (ValueError, TypeError, KeyError)):
            raise UserError(f"{key}: the config was refused when building it: {type(cause).__name__}: {cause}") from None
        raise


def _user_error_in(exc: BaseException | None) -> UserError | None:
    while exc is not None:
        if isinstance(exc, UserError):
            return exc
        exc = exc.__cause__
    return None


def _root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _hms(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
