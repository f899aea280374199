"""Device selection, seeding and the facts about the machine and code that results.json records."""

from __future__ import annotations

import os
import platform
import random
import re
import subprocess
from pathlib import Path

import numpy as np
import torch
import torchvision

from src.core.errors import UserError


# CUDA 13 dropped the GPUs before Turing (compute capability < 7.5: Maxwell, Pascal, Volta); PyTorch 2.14
# keeps them only in its CUDA 12.6 build
LEGACY_CUDA_INDEX = "https://download.pytorch.org/whl/cu126"
LAST_LEGACY_CAPABILITY = (7, 2)


def select_device(spec: str, local_rank: int = 0) -> torch.device:
    """'auto' → CUDA (this rank's GPU) when present, else CPU; or an explicit 'cpu' / 'cuda[:N]'.
    A GPU the installed torch has no kernels for stops here (:func:`check_cuda_build`)."""
    if spec == "auto":
        device = torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    elif spec.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"trainer.device={spec} but no CUDA device is visible; use trainer.device=auto or cpu")
    elif spec == "cuda":
        device = torch.device("cuda", local_rank)
    elif spec == "cpu" or spec.startswith("cuda:"):
        device = torch.device(spec)
    else:
        raise UserError(f"trainer.device={spec!r} is not one of auto, cpu, cuda, cuda:N")
    if device.type == "cuda":
        check_cuda_build(device)
    return device


def runs_on(capability: tuple[int, int], arch_list: list[str]) -> bool:
    """Whether a torch build compiled for ``arch_list`` (``torch.cuda.get_arch_list()``) runs on a
    GPU of ``capability``: a cubin ``sm_XY`` runs on the same major version with minor >= Y (an
    arch-specific ``sm_XYa`` only on X.Y itself), PTX ``compute_XY`` is compiled by the driver for
    any capability >= X.Y."""
    for arch in arch_list:
        match = re.fullmatch(r"(sm|compute)_(\d+)(\d)([af]?)", arch)
        if match is None:
            continue
        kind, major, minor, suffix = match.group(1), int(match.group(2)), int(match.group(3)), match.group(4)
        if kind == "compute" and capability >= (major, minor):
            return True
        if kind == "sm" and (capability == (major, minor) if suffix == "a" else
                             capability[0] == major and capability[1] >= minor):
            return True
    return False


def check_cuda_build(device: torch.device) -> None:
    """Stop before the first kernel ("no kernel image is available for execution on the device")
    when the installed torch was not built for this GPU's compute capability."""
    capability = tuple(torch.cuda.get_device_capability(device))
    arch_list = torch.cuda.get_arch_list()
    if not arch_list or runs_on(capability, arch_list):  # an empty list: a build that does not say
        return
    name, sm = torch.cuda.get_device_name(device), f"sm_{capability[0]}{capability[1]}"
    if capability <= LAST_LEGACY_CAPABILITY:
        advice = (f"GPUs before Turing (Volta V100: sm_70; Pascal; Maxwell) need PyTorch's CUDA 12.6 build, since CUDA "
                  f"13 dropped them: pip install torch=={_release(torch.__version__)} "
                  f"torchvision=={_release(torchvision.__version__)} --index-url {LEGACY_CUDA_INDEX} (README, Install)")
    else:
        advice = "install a torch build for this GPU (https://pytorch.org/get-started/locally/)"
    raise UserError(
        f"the GPU {device} ({name}, compute capability {capability[0]}.{capability[1]}, {sm}) has no kernels in the "
        f"installed torch {torch.__version__} (built for CUDA {torch.version.cuda}: {', '.join(arch_list)}); every "
        f"kernel would fail with 'no kernel image is available for execution on the device'. {advice}; or train on "
        f"the CPU with trainer.device=cpu."
    )


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


def _release(version: str) -> str:
    return version.split("+")[0]  # 2.14.1+cu130 -> 2.14.1


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
