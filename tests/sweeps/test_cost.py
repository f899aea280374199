"""The cost estimator: images per epoch (subset, fabricated split, step cap, the override that
wins) and GPU-hours = max(FLOP time, 1 / max rate) x images x epochs."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from src.sweeps import smoke_data
from src.sweeps.cost import COST_FILE, CostModel
from src.sweeps.jobs import Job

COST = OmegaConf.load(COST_FILE)


def job(dataset: str = "cifar10", model: str = "resnet20", values: tuple = (), epochs: int = 2) -> Job:
    return Job(cells=[{"dataset": dataset, "model": model}], groups={"dataset": dataset, "model": model},
               values=list(values), epochs=epochs)


def test_images_per_epoch():
    paper, smoke = CostModel({}), CostModel({"fabricate_data": True})
    assert paper.train_images(job()) == COST.train_images.cifar10
    assert paper.train_images(job(values=["dataset.splits.train_subset=5000"])) == 5000
    assert smoke.train_images(job()) == smoke_data.train_images("cifar10") == 20
    assert smoke.train_images(job("imagenet")) == smoke_data.train_images("imagenet") == 16
    capped = ["dataset.batch_size=4", "trainer.max_steps_per_epoch=3", "dataset.batch_size=2"]
    assert paper.train_images(job(values=capped)) == 3 * 2                   # the last batch size wins
    assert paper.train_images(job(values=["trainer.max_steps_per_epoch=null"])) == COST.train_images.cifar10
    # a step takes accumulate_grad_batches batches: the cap counts optimizer steps
    accumulated = ["dataset.batch_size=2", "trainer.max_steps_per_epoch=3", "trainer.accumulate_grad_batches=4"]
    assert paper.train_images(job(values=accumulated)) == 3 * 4 * 2
    assert paper.train_images(job(values=[*accumulated, "trainer.max_steps_per_epoch=100000"])) == COST.train_images.cifar10


def test_gpu_hours_flop_bound_or_rate_bound():
    cost = CostModel({})
    big = job("imagenet", "resnet50", epochs=300)
    assert cost.gpu_hours(big, 1281167) == pytest.approx(3 * 4.1e9 * 1281167 * 300 / (COST.tflops * 1e12) / 3600)
    faster = CostModel({}, tflops=2 * COST.tflops)
    assert faster.gpu_hours(big, 1281167) == pytest.approx(cost.gpu_hours(big, 1281167) / 2)
    small = job(epochs=10)
    assert cost.gpu_hours(small, 50000) == pytest.approx(50000 * 10 / COST.max_images_per_s / 3600)
    stand_in = Job(cells=[{"dataset": "cifar10", "model": "vit_b16"}], groups={"dataset": "cifar10", "model": "vit_tiny"},
                   values=[], epochs=1)
    assert cost.gpu_hours(stand_in, 100) == pytest.approx(100 / COST.max_images_per_s / 3600)   # the model that runs
