"""The cost estimator: a job -> training images per epoch and GPU-hours, for
``scripts/reproduce.py --dry-run`` (a rough estimate, configs/reproduce/cost.yaml).

Training costs about three forward passes per image (forward, and a backward of twice its
FLOPs), so one image takes ``max(3 x GFLOPs / sustained TFLOP/s, 1 / max_images_per_s)``
seconds: FLOP-bound for large models, rate-bound (input pipeline, kernel launches) for small ones.
A binarized run with knowledge distillation (``model.protocol.kd=true``) adds the teacher's forward:
four passes per image.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from omegaconf import OmegaConf

from src.core.config_tree import CONFIG_DIR, option_file
from src.core.errors import UserError
from src.sweeps import smoke_data
from src.sweeps.jobs import Job

COST_FILE = CONFIG_DIR / "reproduce" / "cost.yaml"


class CostModel:
    """configs/reproduce/cost.yaml at ``tflops`` (its own figure when None) for one scale."""

    def __init__(self, settings: dict, tflops: float | None = None):
        self.table = OmegaConf.to_container(OmegaConf.load(COST_FILE))
        self.tflops = float(tflops or self.table["tflops"])
        self.fabricated = bool(settings.get("fabricate_data"))

    def train_images(self, job: Job) -> int:
        """Images per epoch: the train split (its subset, the fabricated split at smoke scale),
        at most ``trainer.max_steps_per_epoch`` optimizer steps of ``trainer.accumulate_grad_batches``
        batches each."""
        dataset = job.cell["dataset"]
        if self.fabricated:
            n_train = smoke_data.train_images(dataset)
        else:
            n_train = int(_value(job.values, "dataset.splits.train_subset", None)
                          or self.table["train_images"].get(dataset, 50000))
        batch = int(_value(job.values, "dataset.batch_size", _group_config("dataset", job.groups["dataset"])["batch_size"]))
        trainer = _group_config("trainer", job.groups.get("trainer", "default"))
        per_step = int(_value(job.values, "trainer.accumulate_grad_batches", trainer["accumulate_grad_batches"]))
        steps = _value(job.values, "trainer.max_steps_per_epoch", None)
        return min(n_train, int(steps) * per_step * batch) if steps not in (None, "null") else n_train

    def gpu_hours(self, job: Job, train_images: int) -> float:
        gflops = self.table["gflops"]
        per_image_gflops = float(gflops.get(job.groups["model"], gflops.get(job.cell["model"], 1.0)))
        passes = 4 if _value(job.values, "model.protocol.kd", "false") == "true" and job.groups["quantizer"] != "fp" else 3
        seconds_per_image = max(passes * per_image_gflops * 1e9 / (self.tflops * 1e12),
                                1 / float(self.table["max_images_per_s"]))
        return seconds_per_image * train_images * job.epochs / 3600


@lru_cache(maxsize=None)
def _group_config(group: str, name: str) -> dict[str, Any]:
    try:
        return OmegaConf.to_container(OmegaConf.load(option_file(group, name)))
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _value(values: list[str], key: str, default: Any) -> Any:
    """The last ``key=value`` of the overrides (the one that wins), else ``default``."""
    for item in reversed(values):
        k, _, v = item.partition("=")
        if k == key:
            return v
    return default
