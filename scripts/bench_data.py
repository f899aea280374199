"""Images per second of whole training epochs on the on-device CIFAR pipeline against the DataLoader
pipeline (not a test); `scripts/bench.py --data-path` runs it.

Fake CIFAR-10 files in the official pickle format are written to a temporary folder and read by
the run's own builder (src.data.cifar.build_cifar, standard augmentation); each path
(src.engine.data_path, dataset.loader=dataloader / device) feeds a fresh copy of the same FP model
(same initial weights) through the engine's train_epoch, one epoch per repeat, interleaved. An
epoch's time includes starting its DataLoader workers, as in a run. A data-only pass (the batches
drawn, no model) shows what the pipeline itself costs.

    python scripts/bench.py --data-path                          # 50,000 images, batch 128, 4 workers
    python scripts/bench.py --data-path --data-images 2560 --data-workers 2 --repeats 2
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.utils import instantiate  # noqa: E402

from src.core.io import atomic_write_json, atomic_write_text  # noqa: E402
from src.data.cifar import build_cifar  # noqa: E402
from src.engine.data_path import DataPath  # noqa: E402
from src.engine.distributed import DistContext  # noqa: E402
from src.engine.environment import git_commit, hardware  # noqa: E402
from src.engine.loop import StepSettings, TrainStep, train_epoch  # noqa: E402
from src.sweeps.smoke_data import write_cifar10  # noqa: E402

PATHS = ("dataloader", "device")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _data_only(batches: Iterable, device: torch.device) -> tuple[int, float]:
    """Images and seconds of drawing one epoch's batches onto ``device``, no model."""
    start, images = time.perf_counter(), 0
    for x, y in batches:
        x = x.to(device, non_blocking=True)
        images += len(y)
    _sync(device)
    return images, time.perf_counter() - start


def bench_data_paths(model: str, images: int, batch: int, workers: int, repeats: int, device: torch.device,
                     channels_last: bool) -> dict[str, Any]:
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"model={model}", "dataset=cifar10", "quantizer=fp"])
    settings = StepSettings(device=device, channels_last=channels_last, progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        write_cifar10(Path(tmp), per_batch=max(images // 5, 1), test_images=batch)
        splits = build_cifar(root=tmp, download=False, augment=True)
        paths = {name: DataPath(splits, name, batch, batch, workers, 2, DistContext(), 0, device) for name in PATHS}
        steps = {}
        for name in PATHS:
            torch.manual_seed(0)  # the same initial weights for every path
            net = instantiate(cfg.model.net).to(device)
            if channels_last:
                net = net.to(memory_format=torch.channels_last)
            optimizer = instantiate(cfg.optimizer)(net.parameters())
            steps[name] = TrainStep(net, optimizer, settings, total_steps=len(paths[name].train(0)) * (repeats + 1))
            train_epoch(steps[name], paths[name].train(0), 0, name)  # warm-up: allocator, kernels, page cache
        epoch_s: dict[str, list[float]] = {name: [] for name in PATHS}
        data_s: dict[str, list[float]] = {name: [] for name in PATHS}
        counted = {}
        for r in range(repeats):
            for name in PATHS[r % 2:] + PATHS[:r % 2]:  # alternate which path goes first
                start = time.perf_counter()
                stats = train_epoch(steps[name], paths[name].train(r + 1), 0, name)
                _sync(device)
                epoch_s[name].append(time.perf_counter() - start)
                counted[name], seconds = _data_only(paths[name].train(r + 1), device)
                data_s[name].append(seconds)
                assert stats["images"] == counted[name]
            print(f"repeat {r + 1}/{repeats} done", file=sys.stderr, flush=True)
    rows = [{"path": name, "images": counted[name], "epoch_s": statistics.median(epoch_s[name]),
             "img_per_s": counted[name] / statistics.median(epoch_s[name]),
             "data_only_img_per_s": counted[name] / statistics.median(data_s[name])} for name in PATHS]
    return {"model": model, "batch": batch, "images": images, "workers": workers, "repeats": repeats,
            "channels_last": channels_last, "rows": rows,
            "machine": hardware(device) | {"torch": torch.__version__}, "git_commit": git_commit(),
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    where = m.get("gpu", f"{m['cpu']}, {m['torch_threads']} threads")
    lines = [f"# Data path: on-device CIFAR pipeline vs DataLoader, {report['model']}, batch {report['batch']}", "",
             f"Machine: {where} ({m['cpu_count']} CPUs), torch {m['torch']}, {m['platform']}; fake CIFAR-10 "
             f"pickles, {report['rows'][0]['images']:,} training images, standard augmentation; DataLoader "
             f"with {report['workers']} workers; median of {report['repeats']} interleaved epochs; measured "
             f"{report['measured_at']} (commit {report['git_commit']}).", "",
             "| path | epoch (s) | img/s (epoch, FP model) | img/s (data only) |", "|---|---|---|---|"]
    for r in report["rows"]:
        lines.append(f"| {r['path']} | {r['epoch_s']:.2f} | {r['img_per_s']:.0f} | {r['data_only_img_per_s']:.0f} |")
    base, fast = report["rows"]
    lines += ["", f"On-device / DataLoader: {fast['img_per_s'] / base['img_per_s']:.2f}× the epoch throughput, "
              f"{fast['data_only_img_per_s'] / base['data_only_img_per_s']:.1f}× the data throughput."]
    return "\n".join(lines) + "\n"


def run(model: str, images: int, batch: int, workers: int, repeats: int, device: torch.device,
        channels_last: bool, out: Path) -> int:
    report = bench_data_paths(model, images, batch, workers, repeats, device, channels_last)
    stem = out / f"data_path_{model}_b{batch}_{device.type}"
    atomic_write_json(stem.with_suffix(".json"), report)
    atomic_write_text(stem.with_suffix(".md"), markdown(report))
    print(markdown(report))
    return 0
