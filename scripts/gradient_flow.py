"""Where the gradient goes in a binarized network: the activation pair's backward window and the
gradient reaching each binarized layer's latent weights, at points p of the schedule.

For each method it builds the run exactly as `src/train.py` would (same config, same initial weights,
e.g. an FT run from an FP checkpoint), sets the schedule to p, and on a few training batches measures,
per binarized layer (input side first):

- window: the share of the layer's inputs a with |B(a)| ≥ 0.1, B the activation pair's backward
  (PC++ eq. 7 applied to activations: the gradient reaching a is B(a)·∂ℓ/∂F(a));
- mean B: E[B(a)], the average factor the layer puts on the gradient flowing to the layers below;
- negative: the share of inputs where B(a) < 0 (∇SS_μ is negative for |μa/2| ≳ 1.2: BNN++'s F overshoots);
- |∇w|: the norm of the gradient reaching the layer's latent weights.

    python scripts/gradient_flow.py --methods bnn,bnnpp --task bwa --progress 0,1 \\
        --out results/digits/gradient_flow.md -- pipeline=ft pipeline.checkpoint=<FP best.pt> \\
        model.net.activation=hardtanh

Writes a Markdown table (stdout, and --out if given). Nothing is trained and nothing is written
elsewhere. Exit 2 on a bad method, task or override.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

from src.core import config_tree  # noqa: E402
from src.core.errors import UserError  # noqa: E402
from src.core.io import atomic_write_text  # noqa: E402
from src.engine.runner import Run  # noqa: E402
from src.quant import quantized_layers, set_progress  # noqa: E402
from src.quant.normalize import normalize_activation  # noqa: E402

WINDOW = 0.1  # |B(a)| at or above this counts as passing gradient


def measure(overrides: list[str], progress: float, batches: int) -> list[dict[str, float]]:
    """Per binarized layer (model order): window, mean B, negative share, |∇w| averaged over batches."""
    with initialize_config_dir(config_dir=str(config_tree.CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[*overrides, "trainer.device=cpu", "logger=none"])
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(cfg, Path(tmp) / "run")
        run.setup()
    model, layers = run.model.train(), quantized_layers(run.model)
    if not layers:
        raise UserError(f"{' '.join(overrides)}: no binarized layer to measure (quantizer=fp?)")
    set_progress(model, progress)
    inputs: dict[int, torch.Tensor] = {}
    hooks = [layer.register_forward_pre_hook(lambda m, args, i=i: inputs.__setitem__(i, args[0].detach()))
             for i, layer in enumerate(layers)]
    loader = torch.utils.data.DataLoader(run.splits.train, batch_size=int(cfg.dataset.batch_size), shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    sums = [dict(window=0.0, mean_b=0.0, negative=0.0, grad=0.0) for _ in layers]
    for step, (x, y) in zip(range(batches), loader):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        for i, layer in enumerate(layers):
            sums[i]["grad"] += float(layer.weight.grad.norm())
            if layer.act_quantizer is None:
                sums[i]["window"] = sums[i]["mean_b"] = sums[i]["negative"] = math.nan
                continue
            with torch.no_grad():
                b = layer.act_quantizer.backward_map(normalize_activation(inputs[i], layer.activation_normalize))
            sums[i]["window"] += float((b.abs() >= WINDOW).float().mean())
            sums[i]["mean_b"] += float(b.mean())
            sums[i]["negative"] += float((b < 0).float().mean())
    for hook in hooks:
        hook.remove()
    return [{k: v / batches for k, v in s.items()} for s in sums]


def summarise(method: str, progress: float, layers: list[dict[str, float]]) -> str:
    first, last = layers[0], layers[-1]
    mean = lambda key: sum(layer[key] for layer in layers) / len(layers)  # noqa: E731
    gain = math.prod(layer["mean_b"] for layer in layers)
    return (f"| {method} | {progress:g} | {mean('window'):.1%} | {mean('mean_b'):.3f} | {gain:.3g} | "
            f"{mean('negative'):.1%} | {first['grad']:.3g} | {last['grad']:.3g} | {first['grad'] / last['grad']:.3g} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="bnn,bnnpp", help="comma-separated configs/quantizer names")
    parser.add_argument("--task", default="bwa")
    parser.add_argument("--progress", default="0,1", help="schedule points p = t/T, comma-separated")
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--out", type=Path)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of every run (after --)")
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    try:
        for method in methods:
            if method not in config_tree.methods():
                raise UserError(f"--methods: {method!r} is not a method; the methods are {', '.join(config_tree.methods())}")
        if args.task not in config_tree.tasks():
            raise UserError(f"--task={args.task!r} is not a task; the tasks are {', '.join(config_tree.tasks())}")
        points = [float(p) for p in args.progress.split(",")]
        lines = [f"Gradient flow, task={args.task}, {args.batches} training batches; overrides: "
                 f"`{' '.join(args.overrides) or '(none)'}` (scripts/gradient_flow.py)", "",
                 f"| method | p | window (\\|B(a)\\| ≥ {WINDOW}) | mean B(a) | ∏ mean B over layers | B(a) < 0 "
                 "| \\|∇w\\| first layer | \\|∇w\\| last layer | first / last |",
                 "|---|---|---|---|---|---|---|---|---|"]
        for method in methods:
            for p in points:
                layers = measure([f"quantizer={method}", f"task={args.task}", *args.overrides], p, args.batches)
                lines.append(summarise(method, p, layers))
                print(lines[-1], flush=True)
    except UserError as exc:
        print(f"gradient_flow: {exc}", file=sys.stderr)
        return 2
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
