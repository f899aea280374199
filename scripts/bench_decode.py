"""How many DataLoader decode workers one GPU needs for ImageNet at its training speed (not a test).

A worker reads a JPEG, decodes it and applies the run's training transform; one worker runs on one
CPU core. This measures the images per second of ONE worker (one process, one thread, as a
DataLoader worker runs) on an ImageFolder tree of real photographs in ImageNet's on-disk format:
scikit-learn's two bundled sample photos (china.jpg, flower.jpg, 427 x 640), cut into random crops
of ImageNet's typical size (about 500 x 375) and saved as quality-90 JPEGs. The transforms are the
engine's own (src.data.imagenet.build_imagenet): the ResNet recipe (random resized crop + flip) and
DeiT's (timm's factory with RandAugment and random erasing, configs/augment/deit.yaml).

    python scripts/bench_decode.py                              # 512 images, both recipes
    python scripts/bench_decode.py --gpu-img-s resnet=2600 deit=1100   # + workers needed per GPU

With ``--gpu-img-s`` (a GPU's training images/s) or ``--from-gpu-bench`` (the JSON that
``scripts/bench.py --device cuda`` writes, or its folder: the newest one; its fastest ResNet-50 and
DeiT-S rates) it prints ceil(GPU img/s / worker img/s), the workers per GPU that keep it fed. Writes
results/bench/decode_<host>.md and .json; ``make gpu-check`` runs it after the GPU benchmark.
"""

from __future__ import annotations

import argparse
import math
import socket
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hydra.utils import instantiate  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from src.core.io import atomic_write_json, atomic_write_text  # noqa: E402
from src.data.imagenet import build_imagenet  # noqa: E402
from src.engine.environment import git_commit, hardware  # noqa: E402

IMAGENET_TYPICAL = (500, 375)  # width, height of most ImageNet-1k training JPEGs
RECIPES = ("resnet", "deit")


def write_tree(root: Path, images: int, seed: int = 0) -> Path:
    """An ImageFolder tree (train/ and val/, 4 classes) of JPEG crops of scikit-learn's sample photos."""
    from sklearn.datasets import load_sample_images

    photos = [Image.fromarray(a) for a in load_sample_images().images]
    rng = np.random.default_rng(seed)
    for split, n in (("train", images), ("val", 4)):
        for i in range(n):
            photo = photos[i % len(photos)]
            w, h = IMAGENET_TYPICAL if rng.random() < 0.5 else IMAGENET_TYPICAL[::-1]
            fits = min(photo.width / w, photo.height / h)  # a portrait crop is taller than the landscape photos
            scale = rng.uniform(min(0.5, fits), fits)
            cw, ch = int(w * scale), int(h * scale)
            x, y = rng.integers(0, photo.width - cw + 1), rng.integers(0, photo.height - ch + 1)
            folder = root / split / f"class{i % 4}"
            folder.mkdir(parents=True, exist_ok=True)
            photo.crop((x, y, x + cw, y + ch)).resize((w, h), Image.BILINEAR).save(folder / f"{i:05d}.jpg", quality=90)
    return root


def worker_rate(root: Path, recipe: str, image_size: int, repeats: int) -> list[float]:
    """Images/s of one worker over the whole train split, ``repeats`` times."""
    factory = None
    if recipe == "deit":
        factory = instantiate(OmegaConf.load(ROOT / "configs" / "augment" / "deit.yaml"))
    dataset = build_imagenet(str(root), image_size=image_size, train_transform=factory).train
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(len(dataset)):
            dataset[i]
        rates.append(len(dataset) / (time.perf_counter() - start))
    return rates


GPU_BENCH_MODELS = {"resnet50": "resnet", "deit_s": "deit"}  # scripts/bench_cuda.py's ImageNet rows


def gpu_rates(path: Path, parser: argparse.ArgumentParser) -> dict[str, float]:
    """The fastest training img/s (eager or compiled) of each recipe's model in a GPU bench JSON."""
    import json

    files = sorted(path.glob("*.json"), key=lambda f: f.stat().st_mtime) if path.is_dir() else [path]
    reports = [json.loads(f.read_text()) for f in files if f.is_file()]
    reports = [r for r in reports if isinstance(r, dict) and r.get("imagenet")]
    if not reports:
        parser.error(f"--from-gpu-bench {path}: no GPU benchmark with ImageNet rates there "
                     f"(scripts/bench.py --device cuda writes one to results/bench/<gpu>.json)")
    rates: dict[str, float] = {}
    for row in reports[-1]["imagenet"]:
        recipe = GPU_BENCH_MODELS.get(row.get("model"))
        if recipe:
            rates[recipe] = max(rates.get(recipe, 0.0), float(row["img_per_s"]))
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--recipes", nargs="+", choices=RECIPES, default=list(RECIPES))
    parser.add_argument("--gpu-img-s", nargs="*", default=[], metavar="RECIPE=IMG_PER_S",
                        help="a GPU's training images/s per recipe, e.g. resnet=2600 deit=1100")
    parser.add_argument("--from-gpu-bench", type=Path, default=None, metavar="JSON_OR_FOLDER",
                        help="take the GPU rates from scripts/bench.py --device cuda's JSON (a folder: its newest)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench")
    args = parser.parse_args(argv)
    gpu = gpu_rates(args.from_gpu_bench, parser) if args.from_gpu_bench else {}
    for item in args.gpu_img_s:
        recipe, _, value = item.partition("=")
        try:
            gpu[recipe] = float(value)
        except ValueError:
            gpu[recipe] = -1.0
        if recipe not in RECIPES or gpu[recipe] <= 0:
            parser.error(f"--gpu-img-s {item!r}: expected RECIPE=IMG_PER_S with RECIPE one of {', '.join(RECIPES)} "
                         f"and a positive images/s")
    torch.set_num_threads(1)  # a DataLoader worker runs single-threaded
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = write_tree(Path(tmp), args.images)
        jpeg_kb = statistics.mean(p.stat().st_size for p in root.rglob("*.jpg")) / 1024
        for recipe in args.recipes:
            rates = worker_rate(root, recipe, args.image_size, args.repeats)
            rate = statistics.median(rates)
            needed = math.ceil(gpu[recipe] / rate) if recipe in gpu else None
            rows.append({"recipe": recipe, "worker_img_s": rate, "repeats": rates, "gpu_img_s": gpu.get(recipe),
                         "workers_per_gpu": needed})
            print(f"{recipe}: one worker {rate:.0f} img/s" + (f"; {gpu[recipe]:.0f} img/s on the GPU needs "
                                                               f"{needed} workers" if needed else ""), flush=True)
    record = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": git_commit(),
              "machine": hardware(torch.device("cpu")), "images": args.images, "image_size": args.image_size,
              "mean_jpeg_kb": jpeg_kb, "rows": rows}
    stem = f"decode_{socket.gethostname()}"
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / f"{stem}.json", record)
    lines = [f"# ImageNet decode workers ({record['when']}, {record['commit']})", "",
             f"Machine: {_machine(record['machine'])}. {args.images} JPEGs of {IMAGENET_TYPICAL[0]}x{IMAGENET_TYPICAL[1]} "
             f"(mean {jpeg_kb:.0f} KB, crops of scikit-learn's sample photos), {args.image_size} px training crops, "
             f"one worker = one process, one thread; median of {args.repeats} passes.", "",
             "| recipe | one worker (img/s) | GPU training (img/s) | workers per GPU |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['recipe']} | {r['worker_img_s']:.0f} | {r['gpu_img_s'] or '—'} | {r['workers_per_gpu'] or '—'} |")
    atomic_write_text(args.out / f"{stem}.md", "\n".join(lines) + "\n")
    print(f"wrote {args.out / stem}.md")
    return 0


def _machine(info: dict) -> str:
    return f"{info.get('cpu')}, {info.get('cpu_count')} cores, {info.get('platform')}"


if __name__ == "__main__":
    sys.exit(main())
