"""The GPU check's benchmark (not a test): `scripts/bench.py --device cuda`, the second half of `make gpu-check`.

On the first CUDA device, each configuration eager and compiled (trainer.compile=true), built as the
engine builds it and trained by the engine's train_epoch, timed after warm-up steps (the compilation
happens there; its time is reported):

- ResNet-20 on CIFAR-10 at batch 128 (Table 2's CIFAR runs): seconds per epoch of 391 steps on the
  on-device pipeline (50,000 images in the CIFAR files' format, standard augmentation), FP and BNN++
  under BWA (its ratio to FP in the same mode; targets: FP ≤ 2 s per epoch on an H100-class GPU, BWA ≤ 1.15×);
- images per second at the specs' batch sizes and precision, random 224 px batches on the device, FP:
  ResNet-50 at batch 256, bf16, channels_last (configs/sweep/pcpp/table2.yaml's ImageNet runs) and
  DeiT-S at batch 512, bf16, AdamW (table3's E2E budget).

Writes results/bench/<gpu name>.md and .json after every measurement (a time-out keeps what was
measured); a measurement that would start after ``budget`` seconds is skipped and listed as such.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.core.io import atomic_write_json, atomic_write_text  # noqa: E402
from src.engine.compile import compile_model  # noqa: E402
from src.engine.distributed import DistContext  # noqa: E402
from src.engine.environment import git_commit, hardware  # noqa: E402
from src.engine.loop import StepSettings, TrainStep, train_epoch  # noqa: E402

MODES = ("eager", "compiled")
BUDGET_S = 300.0  # make gpu-check: about 8 minutes in all with the tests before it
WARM_STEPS = 5  # the first compiles, cuDNN's autotuning
CIFAR_BATCH, CIFAR_IMAGES = 128, 50_000
CIFAR_CASES = (("fp", "bw"), ("bnnpp", "bwa"))
TARGETS = {"fp_epoch_s": 2.0, "bwa_ratio": 1.15}  # issue 13, on an H100-class GPU
IMAGENET_CASES = (  # (model, batch, channels_last, overrides): the specs' settings
    ("resnet50", 256, True, ("dataset=imagenet", "model.net.activation=hardtanh")),
    ("deit_s", 512, False, ("dataset=imagenet", "optimizer=adamw")),
)
IMAGENET_STEPS = 20


def slug(name: str) -> str:
    """'NVIDIA H100 80GB HBM3' → 'nvidia-h100-80gb-hbm3'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _sync() -> None:
    torch.cuda.synchronize()


def _timed_epoch(step: TrainStep, batches: Any, global_step: int = 0) -> tuple[float, int]:
    _sync()
    stats = train_epoch(step, batches, global_step, "bench")  # ends at a read point: the device has caught up
    return stats["seconds"], stats["steps"]


def cifar_epoch(build: Callable, method: str, task: str, mode: str, data: Any, device: torch.device) -> dict[str, Any]:
    """One configuration's warm-up steps, then a whole timed epoch."""
    model, optimizer, rule = build(method, task, "resnet20", device, channels_last=False)
    if mode == "compiled":
        compile_model(model)
    steps = len(data.train(0))
    warm = StepSettings(device=device, progress=False, max_steps_per_epoch=WARM_STEPS)
    warm_s, _ = _timed_epoch(TrainStep(model, optimizer, warm, 2 * steps, rule), data.train(0))
    settings = StepSettings(device=device, progress=False)
    epoch_s, steps = _timed_epoch(TrainStep(model, optimizer, settings, 2 * steps, rule), data.train(1))
    return {"method": method, "task": task, "mode": mode, "epoch_s": epoch_s, "steps": steps,
            "img_per_s": CIFAR_IMAGES / epoch_s, "compile_s": max(warm_s - WARM_STEPS * epoch_s / steps, 0.0)
            if mode == "compiled" else None}


def imagenet_rate(build: Callable, model_name: str, batch: int, channels_last: bool, overrides: tuple[str, ...],
                  mode: str, device: torch.device) -> dict[str, Any]:
    model, optimizer, rule = build("fp", "bw", model_name, device, channels_last, overrides)
    if mode == "compiled":
        compile_model(model)
    x = torch.randn(batch, 3, 224, 224, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), device=device)
    settings = StepSettings(device=device, precision="bf16", channels_last=channels_last, progress=False)
    step = TrainStep(model, optimizer, settings, 2 * (WARM_STEPS + IMAGENET_STEPS), rule)
    warm_s, _ = _timed_epoch(step, [(x, y)] * WARM_STEPS)
    seconds, steps = _timed_epoch(step, [(x, y)] * IMAGENET_STEPS, WARM_STEPS)
    return {"model": model_name, "batch": batch, "mode": mode, "step_s": seconds / steps,
            "img_per_s": batch * steps / seconds, "memory_gib": torch.cuda.max_memory_allocated() / 2**30,
            "compile_s": max(warm_s - WARM_STEPS * seconds / steps, 0.0) if mode == "compiled" else None}


def measurements(build: Callable, device: torch.device, data: Any) -> list[tuple[str, str, Callable[[], dict]]]:
    """(section, label, measure) in the order they run: the most wanted first."""
    out = [("cifar", f"{m}:{t} {mode}", lambda m=m, t=t, mode=mode: cifar_epoch(build, m, t, mode, data, device))
           for m, t in CIFAR_CASES for mode in MODES]
    out += [("imagenet", f"{spec[0]} {mode}", lambda spec=spec, mode=mode: imagenet_rate(build, *spec, mode, device))
            for spec in IMAGENET_CASES for mode in MODES]
    return out


def run(out: Path, budget: float, build: Callable) -> int:
    """``build(method, task, model, device, channels_last[, overrides])``: (network, optimizer, update
    rule) as the engine builds them (scripts/bench.py's build_case_model)."""
    if not torch.cuda.is_available():
        print(f"scripts/bench.py --device cuda: no CUDA device is visible to torch (torch {torch.__version__}, "
              f"built for CUDA {torch.version.cuda}; torch.cuda.is_available() is False). Run it where a GPU is "
              f"visible (make gpu-check), or without --device for the CPU benchmark.", file=sys.stderr)
        return 2
    from src.data.cifar import build_cifar
    from src.engine.data_path import DataPath
    from src.sweeps.smoke_data import write_cifar10

    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True  # as a run with trainer.deterministic=false
    start = time.perf_counter()
    machine = hardware(device) | {"torch": torch.__version__, "cuda": torch.version.cuda}
    report: dict[str, Any] = {"machine": machine, "git_commit": git_commit(), "budget_s": budget,
                              "cifar": [], "imagenet": [], "skipped": [], "failed": {}}
    stem = out / slug(machine["gpu"])
    with tempfile.TemporaryDirectory() as tmp:
        write_cifar10(Path(tmp), per_batch=CIFAR_IMAGES // 5, test_images=CIFAR_BATCH)
        splits = build_cifar(root=tmp, download=False, augment=True)
        data = DataPath(splits, "device", CIFAR_BATCH, CIFAR_BATCH, 0, None, DistContext(), 0, device)
        for section, label, measure in measurements(build, device, data):
            if time.perf_counter() - start > budget:
                report["skipped"].append(label)
                continue
            print(f"[{time.perf_counter() - start:.0f} s] {label}", file=sys.stderr, flush=True)
            try:
                report[section].append(measure())
            except torch.OutOfMemoryError as exc:
                report["failed"][label] = f"out of memory: {str(exc).splitlines()[0]}"
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            report["measured_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            report["elapsed_s"] = time.perf_counter() - start
            atomic_write_json(stem.with_suffix(".json"), report)
            atomic_write_text(stem.with_suffix(".md"), markdown(report))
    print(markdown(report))
    return 0


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [f"# GPU check: {m['gpu']}", "",
             f"{m['gpu']} ({m['gpu_count']} visible), {m['cpu']} ({m['cpu_count']} CPUs), torch {m['torch']} "
             f"(CUDA {m['cuda']}), {m['platform']}; commit {report['git_commit']}; measured {report.get('measured_at')} "
             f"in {report.get('elapsed_s', 0):.0f} s. Each configuration is timed after {WARM_STEPS} warm-up steps; "
             f"compile: their extra time when compiled.", "",
             f"## ResNet-20, CIFAR-10, batch {CIFAR_BATCH}: one epoch on the on-device pipeline", "",
             "| method | task | mode | epoch (s) | img/s | × FP (same mode) | compile (s) |", "|---|---|---|---|---|---|---|"]
    fp = {r["mode"]: r["epoch_s"] for r in report["cifar"] if r["method"] == "fp"}
    for r in report["cifar"]:
        ratio = f"{r['epoch_s'] / fp[r['mode']]:.3f}" if r["mode"] in fp else "–"
        lines.append(f"| {r['method']} | {r['task']} | {r['mode']} | {r['epoch_s']:.2f} | {r['img_per_s']:.0f} | {ratio} | "
                     f"{'–' if r['compile_s'] is None else format(r['compile_s'], '.0f')} |")
    lines += ["", f"Targets: FP ≤ {TARGETS['fp_epoch_s']:.0f} s per epoch on an H100-class GPU; BNN++ BWA ≤ "
                  f"{TARGETS['bwa_ratio']:.2f}× FP.", "",
              "## Images per second at the specs' batch sizes (FP, bf16, random 224 px batches on the device)", "",
              "| model | batch | mode | step (ms) | img/s | peak memory (GiB) | compile (s) |", "|---|---|---|---|---|---|---|"]
    for r in report["imagenet"]:
        lines.append(f"| {r['model']} | {r['batch']} | {r['mode']} | {r['step_s'] * 1000:.0f} | {r['img_per_s']:.0f} | "
                     f"{r['memory_gib']:.1f} | {'–' if r['compile_s'] is None else format(r['compile_s'], '.0f')} |")
    if report["skipped"]:
        lines += ["", f"Skipped (past the {report['budget_s']:.0f} s budget): {', '.join(report['skipped'])}."]
    for label, why in report["failed"].items():
        lines += ["", f"Failed: {label}: {why}."]
    return "\n".join(lines) + "\n"
