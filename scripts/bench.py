"""Time the training step of every method × task against full precision, eager and compiled (not a test).

A step is what the engine runs: schedules at p = t/T, forward, loss (+ the BWAA overflow penalty),
backward, the update rule around optimizer.step(). Every configuration is built exactly as
`src/train.py` builds it (same configs, same model surgery, same loop function; ``compiled``: the model
compiled as trainer.compile=true does, src.engine.compile) and gets its own model; they are timed
interleaved (one block of steps each, round-robin, for several repeats) in one process on the same
batch. A method's ratio is median(its step time) / median(FP's step time) in the same mode: eager
against eager FP, compiled against compiled FP. The update rule's hooks are timed inside the same steps.

    python scripts/bench.py                              # every method x bw,bwa,bwaa, ResNet-20, batch 128, both modes
    python scripts/bench.py --modes eager --methods bnnpp pq --tasks bw bwa --repeats 7 --profile bnnpp:bwaa
    python scripts/bench.py --data-path --data-images 2560 --repeats 2  # on-device CIFAR vs DataLoader epochs
    python scripts/bench.py --device cuda                # the GPU check (scripts/bench_cuda.py): results/bench/<gpu>.md

Writes results/bench/<model>_b<batch>.json and .md with the machine's description. On a 2-core CPU the
compiled mode costs about a minute of inductor compilation per case before any timing.
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
sys.path.insert(1, str(Path(__file__).resolve().parent))  # its sibling modules, however it is loaded

from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.utils import instantiate  # noqa: E402

from src.core import config_tree  # noqa: E402
from src.core.io import atomic_write_json, atomic_write_text  # noqa: E402
from src.engine.build import build_layer_factory, build_update_rule  # noqa: E402
from src.engine.compile import TRACED_STEPS, compile_model  # noqa: E402
from src.engine.environment import git_commit, hardware  # noqa: E402
from src.engine.loop import StepSettings, TrainStep, train_epoch  # noqa: E402
from src.quant.surgery import quantize_model  # noqa: E402
from src.quant.updates import NullUpdate  # noqa: E402

import bench_cuda  # noqa: E402
import bench_data  # noqa: E402

TASKS = config_tree.tasks()
MODES = ("eager", "compiled")
TARGETS = {"bw": 1.05, "bwa": 1.15, "bwaa": 1.25}  # step time / FP step time, ResNet-20 at batch 128: the project's speed targets


def methods() -> list[str]:
    return [m for m in config_tree.methods() if m != "fp"]


def allow_graphs(graphs: int) -> None:
    """Let Dynamo keep ``graphs`` graphs: every compiled module shares one code object
    (Module._call_impl), and past its recompile limit a model would silently run eager."""
    config = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit", "accumulated_cache_size_limit"):
        if hasattr(config, name):
            setattr(config, name, max(getattr(config, name), graphs))


class TimedRule:
    """An update rule whose before/after-step hooks add their seconds to ``seconds``."""

    def __init__(self, rule: NullUpdate):
        self.rule, self.seconds = rule, 0.0
        self.acts = type(rule) is not NullUpdate

    def set_progress(self, p: float) -> None:
        self.rule.set_progress(p)

    def before_step(self) -> None:
        start = time.perf_counter()
        self.rule.before_step()
        self.seconds += time.perf_counter() - start

    def after_step(self, lr: float) -> None:
        start = time.perf_counter()
        self.rule.after_step(lr)
        self.seconds += time.perf_counter() - start


def build_case_model(method: str, task: str, model: str, device: torch.device, channels_last: bool,
                     extra: tuple[str, ...] = ("dataset=fake", "model.net.activation=hardtanh")):
    """(network, optimizer, update rule) of one configuration, as src.engine.runner builds them;
    ``extra``: further overrides (by default Table 2's CIFAR ones: BWA needs signed inputs)."""
    overrides = [f"quantizer={method}", f"task={task}", f"model={model}",
                 *(["optimizer=adam"] if method == "proxgen" else []), *extra]
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    net = instantiate(cfg.model.net)
    quantize_model(net, build_layer_factory(cfg.quantizer, cfg.task), list(cfg.task.keep_fp))
    net = net.to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    optimizer = instantiate(cfg.optimizer)(net.parameters())
    return net, optimizer, build_update_rule(cfg.quantizer, net, optimizer)


class Case:
    """One (method, task, mode) configuration built as the engine builds it, with its own model."""

    def __init__(self, method: str, task: str, model: str, batch: torch.Tensor, labels: torch.Tensor,
                 channels_last: bool, mode: str = "eager"):
        self.method, self.task, self.mode = method, task, mode
        self.name = f"{method}:{task}" if method != "fp" else "fp"
        self.model, self.optimizer, rule = build_case_model(method, task, model, batch.device, channels_last)
        if mode == "compiled":
            compile_model(self.model, reset=False)
        self.rule = TimedRule(rule)
        self.settings = StepSettings(device=batch.device, channels_last=channels_last, progress=False)
        self.batches = [(batch, labels)]
        self.times: list[float] = []
        self.first_s = 0.0
        self.rule_s = 0.0  # the update rule's seconds in the timed steps

    def run(self, steps: int) -> float:
        """Seconds per step over ``steps`` steps of the engine's own train_epoch (p from 0 on)."""
        step = TrainStep(self.model, self.optimizer, self.settings, 2 * steps, self.rule)
        stats = train_epoch(step, self.batches * steps, global_step=0, desc=self.name)
        return stats["seconds"] / steps

    def warm_up(self) -> None:
        """The first steps: allocator, one-off kernels, optimizer state, and under compilation the
        trace and code generation."""
        self.first_s = self.run(TRACED_STEPS) * TRACED_STEPS

    @property
    def compile_s(self) -> float | None:
        return max(self.first_s - TRACED_STEPS * statistics.median(self.times), 0.0) if self.mode == "compiled" else None


def profile(case: Case, steps: int) -> str:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        case.run(steps)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=methods(), metavar="NAME", help="quantizer configs")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES, help="eager and/or compiled models")
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=5, help="round-robin passes over all cases")
    parser.add_argument("--fp-copies", type=int, default=4,
                        help="FP models per mode, spread through the round (their steps pooled: every ratio's denominator)")
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    parser.add_argument("--profile", nargs="*", default=[], metavar="[MODE:]METHOD:TASK",
                        help="profile these cases (eager unless prefixed compiled:, which also names inductor's kernels)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                        help="cuda: the GPU check's bench instead (scripts/bench_cuda.py), results/bench/<gpu>.md")
    parser.add_argument("--budget", type=float, default=bench_cuda.BUDGET_S,
                        help="--device cuda: start no measurement after this many seconds")
    parser.add_argument("--data-path", action="store_true",
                        help="instead: epochs on the on-device CIFAR pipeline vs the DataLoader (scripts/bench_data.py)")
    parser.add_argument("--data-images", type=int, default=50_000, help="--data-path: training images")
    parser.add_argument("--data-workers", type=int, default=4, help="--data-path: DataLoader workers")
    parser.add_argument("--data-device", default="cpu", help="--data-path: the training device")
    args = parser.parse_args(argv)
    if args.device == "cuda":
        return bench_cuda.run(args.out, args.budget, build_case_model)
    if args.data_path:
        return bench_data.run(args.model, args.data_images, args.batch, args.data_workers, args.repeats,
                              torch.device(args.data_device), args.channels_last, args.out)
    unknown = sorted(set(args.methods) - set(methods()))
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; valid: {', '.join(methods())}")

    if any(name.startswith("compiled:") for name in args.profile):
        # name inductor's generated kernels in the profile (cpp_fused_...), not only the graph that calls them;
        # each kernel then records itself, so this run's compiled timings carry that small overhead
        torch._inductor.config.cpp.enable_kernel_profile = True
    torch.manual_seed(0)
    batch = torch.randn(args.batch, 3, 32, 32)
    if args.channels_last:
        batch = batch.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (args.batch,))
    configs = [(m, t) for m in args.methods for t in args.tasks]
    allow_graphs(4 * (len(configs) + args.fp_copies))  # each compiled case: its training graph, and room to spare
    chunk = -(-len(configs) // args.fp_copies)
    cases = [case for mode in args.modes for i in range(args.fp_copies)
             for case in [Case("fp", "bw", args.model, batch, labels, args.channels_last, mode)]
             + [Case(m, t, args.model, batch, labels, args.channels_last, mode) for m, t in configs[i * chunk:(i + 1) * chunk]]]
    start = time.perf_counter()
    for i, case in enumerate(cases):
        case.warm_up()
        print(f"warm-up {i + 1}/{len(cases)} {case.mode} {case.name}: {case.first_s:.1f} s", file=sys.stderr, flush=True)
    for r in range(args.repeats):
        order = cases[r % len(cases):] + cases[:r % len(cases)]  # rotate, so no case always runs first
        for case in order:
            rule_before = case.rule.seconds
            case.times.append(case.run(args.steps))
            case.rule_s += case.rule.seconds - rule_before
        done = time.perf_counter() - start
        print(f"repeat {r + 1}/{args.repeats}  {done:.0f} s elapsed", file=sys.stderr, flush=True)

    report = {
        "model": args.model, "batch": args.batch, "steps_per_block": args.steps, "repeats": args.repeats,
        "channels_last": args.channels_last, "modes": args.modes, "fp": {}, "rows": [],
        "machine": hardware(torch.device("cpu")) | {"torch": torch.__version__}, "git_commit": git_commit(),
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    timed_steps = args.repeats * args.steps
    by_key = {(c.mode, c.name): c for c in cases if c.name != "fp"}
    for mode in args.modes:
        fp = [c for c in cases if c.mode == mode and c.name == "fp"]
        by_key[(mode, "fp")] = fp[0]
        report["fp"][mode] = {"step_s": statistics.median([t for c in fp for t in c.times]), "compile_s": fp[0].compile_s,
                              "copies": len(fp)}
    for method, task in configs:
        row = {"method": method, "task": task, "target": TARGETS[task]}
        for mode in args.modes:
            case = by_key[(mode, f"{method}:{task}")]
            median = statistics.median(case.times)
            row[mode] = {"step_s": median, "ratio": median / report["fp"][mode]["step_s"], "compile_s": case.compile_s,
                         "rule_s": case.rule_s / timed_steps if case.rule.acts else None}
        row["meets_target"] = row[args.modes[-1]]["ratio"] <= TARGETS[task]  # compiled when measured
        report["rows"].append(row)
    report["profiles"] = {name: profile(_case_named(by_key, name), args.steps) for name in args.profile}
    stem = args.out / f"{args.model}_b{args.batch}"
    atomic_write_json(stem.with_suffix(".json"), report)
    atomic_write_text(stem.with_suffix(".md"), markdown(report))
    print(markdown(report))
    return 0


def _case_named(cases: dict, name: str) -> Case:
    mode, _, rest = name.partition(":")
    if mode not in MODES:
        mode, rest = "eager", name
    try:
        return cases[(mode, rest)]
    except KeyError:
        raise SystemExit(f"--profile {name}: no such case; cases are [compiled:]METHOD:TASK of the run") from None


def markdown(report: dict) -> str:
    m, modes, fp = report["machine"], report["modes"], report["fp"]
    lines = [f"# Training-step time vs FP: {report['model']}, batch {report['batch']}",
             "", f"Machine: {m['cpu']}, {m['torch_threads']} threads, torch {m['torch']}, {m['platform']}; "
             f"channels_last={report['channels_last']}; median of {report['repeats']} interleaved blocks of "
             f"{report['steps_per_block']} steps (FP: of {fp[modes[0]]['copies']} models' blocks, spread through each "
             f"round); measured {report['measured_at']} (commit {report['git_commit']}).", ""]
    for mode in modes:
        lines.append(f"FP step, {mode}: {fp[mode]['step_s'] * 1000:.0f} ms ({report['batch'] / fp[mode]['step_s']:.0f} img/s)"
                     + (f", compiled in {fp[mode]['compile_s']:.0f} s." if fp[mode]["compile_s"] is not None else "."))
    if set(MODES) <= set(modes):
        lines += ["", f"Compiled FP / eager FP: {fp['compiled']['step_s'] / fp['eager']['step_s']:.3f} "
                      f"(below 1: trainer.compile speeds FP up)."]
    lines += ["", "Each ratio is against FP in the same mode. rule: the update rule's before/after-step hooks per "
                  "step (eager in both modes, outside the model); compile: the first step's extra time, with "
                  "inductor's cache as this run found it (a graph compiled before loads from it in seconds).", ""]
    header = ["method", "task"]
    for mode in modes:
        header += [f"{mode} (ms)", f"{mode} × FP"]
    if "compiled" in modes:
        header += ["compile (s)"]
    header += ["rule (ms)", "target", "meets"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in report["rows"]:
        cells = [r["method"], r["task"]]
        for mode in modes:
            cells += [f"{r[mode]['step_s'] * 1000:.0f}", f"{r[mode]['ratio']:.3f}"]
        if "compiled" in modes:
            cells.append(f"{r['compiled']['compile_s']:.0f}")
        rule = r[modes[-1]]["rule_s"]
        cells += ["–" if rule is None else f"{rule * 1000:.1f}", f"≤ {r['target']:.2f}", "yes" if r["meets_target"] else "no"]
        lines.append("| " + " | ".join(cells) + " |")
    for name, table in report.get("profiles", {}).items():
        lines += ["", f"## Profile of {name}", "", "```", table, "```"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
