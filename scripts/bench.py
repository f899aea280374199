"""Time the training step of every method × task against full precision (not a test).

A step is what the engine runs: schedules at p = t/T, forward, loss (+ the BWAA overflow penalty),
backward, the update rule around optimizer.step(). Every configuration is built exactly as
`src/train.py` builds it (same configs, same model surgery, same loop function) and gets its own
model; they are timed interleaved (one block of steps each, round-robin, for several repeats) in
one process on the same batch, and each method's ratio is median(its step time) / median(FP's).

    python scripts/bench.py                              # every method x bw,bwa,bwaa, ResNet-20, batch 128
    python scripts/bench.py --methods bnnpp pq --tasks bw bwa --repeats 7 --profile bnnpp:bwaa
    python scripts/bench.py --data-path --data-images 2560 --repeats 2  # on-device CIFAR vs DataLoader epochs

Writes results/bench/<model>_b<batch>.json and .md with the machine's description.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.utils import instantiate  # noqa: E402

from src.core import config_tree  # noqa: E402
from src.engine.build import build_layer_factory, build_update_rule  # noqa: E402
from src.engine.environment import git_commit, hardware  # noqa: E402
from src.core.io import atomic_write_json, atomic_write_text  # noqa: E402
from src.engine.loop import StepSettings, TrainStep, train_epoch  # noqa: E402
from src.quant.surgery import quantize_model  # noqa: E402

from scripts import bench_data  # noqa: E402

TASKS = config_tree.tasks()
TARGETS = {"bw": 1.05, "bwa": 1.15, "bwaa": 1.25}  # step time / FP step time, ResNet-20 at batch 128: the project's speed targets


def methods() -> list[str]:
    return [m for m in config_tree.methods() if m != "fp"]


class Case:
    """One (method, task) configuration built as the engine builds it, with its own model."""

    def __init__(self, method: str, task: str, model: str, batch: torch.Tensor, labels: torch.Tensor,
                 channels_last: bool):
        overrides = [f"quantizer={method}", f"task={task}", f"model={model}", "dataset=fake",
                     "model.net.activation=hardtanh", *(["optimizer=adam"] if method == "proxgen" else [])]
        with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
            cfg = compose(config_name="train", overrides=overrides)
        self.name = f"{method}:{task}" if method != "fp" else "fp"
        net = instantiate(cfg.model.net)
        quantize_model(net, build_layer_factory(cfg.quantizer, cfg.task), list(cfg.task.keep_fp))
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.model = net
        self.optimizer = instantiate(cfg.optimizer)(net.parameters())
        self.update_rule = build_update_rule(cfg.quantizer, net, self.optimizer)
        self.settings = StepSettings(device=torch.device("cpu"), channels_last=channels_last, progress=False)
        self.batches = [(batch, labels)]
        self.times: list[float] = []

    def run(self, steps: int) -> float:
        """Seconds per step over ``steps`` steps of the engine's own train_epoch."""
        step = TrainStep(self.model, self.optimizer, self.settings, 2 * steps, self.update_rule)
        stats = train_epoch(step, self.batches * steps, global_step=0, desc=self.name)
        return stats["seconds"] / steps


def profile(case: Case, steps: int) -> str:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        case.run(steps)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=methods(), metavar="NAME", help="quantizer configs")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=5, help="round-robin passes over all cases")
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    parser.add_argument("--profile", nargs="*", default=[], metavar="METHOD:TASK", help="profile these cases")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench")
    parser.add_argument("--data-path", action="store_true",
                        help="instead: epochs on the on-device CIFAR pipeline vs the DataLoader (scripts/bench_data.py)")
    parser.add_argument("--data-images", type=int, default=50_000, help="--data-path: training images")
    parser.add_argument("--data-workers", type=int, default=4, help="--data-path: DataLoader workers")
    parser.add_argument("--data-device", default="cpu", help="--data-path: the training device")
    args = parser.parse_args(argv)
    if args.data_path:
        return bench_data.run(args.model, args.data_images, args.batch, args.data_workers, args.repeats,
                              torch.device(args.data_device), args.channels_last, args.out)
    unknown = sorted(set(args.methods) - set(methods()))
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; valid: {', '.join(methods())}")

    torch.manual_seed(0)
    batch = torch.randn(args.batch, 3, 32, 32)
    if args.channels_last:
        batch = batch.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (args.batch,))
    cases = [Case("fp", "bw", args.model, batch, labels, args.channels_last)]
    cases += [Case(m, t, args.model, batch, labels, args.channels_last) for m in args.methods for t in args.tasks]
    for case in cases:  # warm-up: allocator, one-off kernels, optimizer state
        case.run(1)
    start = time.perf_counter()
    for r in range(args.repeats):
        order = cases[r % len(cases):] + cases[:r % len(cases)]  # rotate, so no case always runs first
        for case in order:
            case.times.append(case.run(args.steps))
        done = time.perf_counter() - start
        print(f"repeat {r + 1}/{args.repeats}  {done:.0f} s elapsed, ETA {done / (r + 1) * (args.repeats - r - 1):.0f} s",
              file=sys.stderr, flush=True)

    fp = statistics.median(cases[0].times)
    rows = []
    for case in cases[1:]:
        method, task = case.name.split(":")
        median = statistics.median(case.times)
        rows.append({"method": method, "task": task, "step_s": median, "ratio": median / fp,
                     "target": TARGETS[task], "meets_target": median / fp <= TARGETS[task]})
    report = {
        "model": args.model, "batch": args.batch, "steps_per_block": args.steps, "repeats": args.repeats,
        "channels_last": args.channels_last, "fp_step_s": fp, "fp_img_per_s": args.batch / fp, "rows": rows,
        "machine": hardware(torch.device("cpu")) | {"torch": torch.__version__}, "git_commit": git_commit(),
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "profiles": {name: profile(next(c for c in cases if c.name == name), args.steps) for name in args.profile},
    }
    stem = args.out / f"{args.model}_b{args.batch}"
    atomic_write_json(stem.with_suffix(".json"), report)
    atomic_write_text(stem.with_suffix(".md"), markdown(report))
    print(markdown(report))
    return 0


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# Training-step time vs FP: {report['model']}, batch {report['batch']}",
             "", f"Machine: {m['cpu']}, {m['torch_threads']} threads, torch {m['torch']}, {m['platform']}; "
             f"channels_last={report['channels_last']}; median of {report['repeats']} interleaved blocks of "
             f"{report['steps_per_block']} steps; measured {report['measured_at']} (commit {report['git_commit']}).",
             "", f"FP step: {report['fp_step_s'] * 1000:.0f} ms ({report['fp_img_per_s']:.0f} img/s).", "",
             "| method | task | step (ms) | × FP | target | meets |", "|---|---|---|---|---|---|"]
    for r in report["rows"]:
        lines.append(f"| {r['method']} | {r['task']} | {r['step_s'] * 1000:.0f} | {r['ratio']:.3f} | "
                     f"≤ {r['target']:.2f} | {'yes' if r['meets_target'] else 'no'} |")
    for name, table in report["profiles"].items():
        lines += ["", f"## Profile of {name}", "", "```", table, "```"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
