"""Shared helpers: compose the real config tree, run the real CLI in a subprocess."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from src.core import run_names  # noqa: F401  the resolvers of configs/train.yaml, for compose() in tests

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
TRAIN = ROOT / "src" / "train.py"

# A tiny ViT run (vit_tiny on digits, 2 steps) for the transformer protocol tests.
VIT_FAST = ["model=vit_tiny", "trainer.progress=false", "trainer.eval_soft=false", "dataset.batch_size=16",
            "dataset.splits.test_fraction=0.05", "trainer.max_steps_per_epoch=2"]

# A run small enough for a 2-core CPU: 8 digits per class in train, 3 steps, tiny eval.
TINY = ["trainer.max_epochs=1", "trainer.max_steps_per_epoch=2", "trainer.progress=false"]


@pytest.fixture(autouse=True)
def _no_logging_handlers_leak():
    """A CLI run in this process (Hydra's job logging) leaves handlers on the root logger bound to that
    test's captured streams; once those close, any later log line prints '--- Logging error ---' to
    whatever stderr is then. Remove them after each test (pytest's own capture handlers stay)."""
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in before and not type(h).__module__.startswith("_pytest")]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)


def compose_train(overrides: list[str] | None = None) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="train", overrides=overrides or [])


def cli_env(output_root: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"PROXBIN_OUTPUT": str(output_root), "WANDB_MODE": "offline", "WANDB_SILENT": "true",
                "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "0", **extra})  # extra wins
    return env


def run_cli(args: list[str], output_root: Path, timeout: int = 300, launcher: list[str] | None = None,
            **env: str) -> subprocess.CompletedProcess:
    command = (launcher or [sys.executable]) + [str(TRAIN), *args]
    return subprocess.run(command, cwd=ROOT, env=cli_env(output_root, **env), capture_output=True,
                          text=True, timeout=timeout)


def read_results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


@pytest.fixture
def output_root(tmp_path: Path) -> Path:
    root = tmp_path / "outputs"
    root.mkdir()
    return root


@pytest.fixture(scope="module")
def fp_checkpoint(tmp_path_factory):
    """A full-precision tiny ViT's weights (a plain state_dict, as a user would bring)."""
    import torch
    from hydra.utils import instantiate

    torch.manual_seed(0)
    model = instantiate(compose_train(VIT_FAST).model.net)
    path = tmp_path_factory.mktemp("fp") / "fp.pth"
    torch.save(model.state_dict(), path)
    return path
