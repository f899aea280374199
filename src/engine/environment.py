"""Device selection, seeding and the facts about the machine and code that results.json records."""

from __future__ import annotations

import os
import platform
import random
import subprocess
from pathlib import Path

import numpy as np
import torch

from src.core.errors import UserError


def select_device(spec: str, local_rank: int = 0) -> torch.device:
    """'auto' → CUDA (this rank's GPU) when present, else CPU; or an explicit 'cpu' / 'cuda[:N]'."""
    if spec == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"trainer.device={spec} but no CUDA device is visible; use trainer.device=auto or cpu")
    if spec == "cuda":
        return torch.device("cuda", local_rank)
    if spec == "cpu" or spec.startswith("cuda:"):
        return torch.device(spec)
    raise UserError(f"trainer.device={spec!r} is not one of auto, cpu, cuda, cuda:N")


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux); platform's terse answer elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: torch.device) -> dict[str, object]:
    info: dict[str, object] = {
        "device": str(device),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["gpu_count"] = torch.cuda.device_count()
    return info


def git_commit(repo: Path = Path(__file__).resolve().parents[2]) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
