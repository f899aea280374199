"""Is a forward–backward pair in PC++? Corollary 1 check (src.quant.theory) of a method — any
configs/quantizer/<name>.yaml, config-only variants included — or of your own config file, at
several schedule points.

    python scripts/check_quantizer.py bnnpp bireal                 # methods (configs/quantizer/)
    python scripts/check_quantizer.py configs/quantizer/my.yaml    # your own config's weight pair
    python scripts/check_quantizer.py --all

Prints the verdict of the weight pair and, when the config's activation pair is another one (Bi-Real,
ReActNet, RBNN, PQ, ...), that pair's verdict after "activations:"; when a pair is not in PC++, the
reason (where B = 0 while F moves, where P is not monotone, or where F or B is not a function of P).
Interpolations (EDE's T_min per task) are resolved for --task. Exit code 0 whatever the verdicts; 2
on a bad name or file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from omegaconf import OmegaConf  # noqa: E402

from src.core import config_tree  # noqa: E402
from src.core.errors import UserError  # noqa: E402
from src.engine.build import in_context, method_pair, pair_of  # noqa: E402
from src.quant.theory import check_quantizer  # noqa: E402


def fail(message: str):
    print(f"check_quantizer: {message}", file=sys.stderr)
    sys.exit(2)


def load(spec: str, task: str = "bw"):
    """(weight pair, activation config, activation pair or None) of a method name or a quantizer config file."""
    if spec.endswith((".yaml", ".yml")):
        path = Path(spec)
        if not path.is_file():
            fail(f"no such config file '{spec}'")
        cfg = OmegaConf.load(path)
        if cfg.get("weight") is None:
            fail(f"'{spec}' has no `weight:` pair (an fp-like config) to check")
    elif spec in config_tree.methods():
        cfg = OmegaConf.load(config_tree.option_file("quantizer", spec))
    else:
        try:
            method_pair(spec)  # the UserError naming the valid methods
        except UserError as exc:
            fail(f"{exc}, or a path to a quantizer .yaml")
    try:
        resolved = in_context(cfg, task)
    except UserError as exc:
        fail(str(exc))
    weight = pair_of(cfg, task, "weight")
    same = resolved.get("activation") is None or resolved.activation == resolved.weight
    return weight, None if same else pair_of(cfg, task, "activation")


def describe(verdict) -> str:
    return ("in PC++" if verdict.in_pc_plus_plus else "NOT in PC++") + \
        (f"  ({'; '.join(verdict.reasons)})" if verdict.reasons else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", help="method names or quantizer config files")
    parser.add_argument("--all", action="store_true", help="every method of configs/quantizer/")
    parser.add_argument("--progress", type=float, nargs="+", default=[0.0, 0.5, 1.0], help="schedule points p = t/T")
    parser.add_argument("--task", default="bw", help="the task interpolations are resolved for (default bw)")
    args = parser.parse_args(argv)
    specs = config_tree.methods() if args.all else args.specs
    if not specs:
        parser.error("name at least one method or config file, or pass --all")
    for spec in specs:
        weight, activation = load(spec, args.task)
        line = f"{spec:<28} {describe(check_quantizer(weight, tuple(args.progress)))}"
        if activation is not None:
            line += f"; activations: {describe(check_quantizer(activation, tuple(args.progress)))}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
