"""scripts/bench_decode.py on a few images: real JPEG photos in the ImageFolder layout, one worker's
rate per recipe, and the workers a GPU needs computed from it."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest
from PIL import Image

from conftest import ROOT

_spec = importlib.util.spec_from_file_location("bench_decode", ROOT / "scripts" / "bench_decode.py")
bench_decode = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_decode)  # tests/scripts is itself a package named `scripts`

pytestmark = pytest.mark.slow  # decodes and augments real JPEGs: seconds


def test_tree_holds_imagenet_sized_jpeg_photos(tmp_path):
    root = bench_decode.write_tree(tmp_path, images=6)
    train = sorted((root / "train").rglob("*.jpg"))
    assert len(train) == 6 and len({p.parent.name for p in train}) == 4
    for path in train:
        with Image.open(path) as img:
            assert img.format == "JPEG" and sorted(img.size) == sorted(bench_decode.IMAGENET_TYPICAL)


def test_workers_per_gpu_is_the_gpu_rate_over_one_workers_rate(tmp_path, capsys):
    assert bench_decode.main(["--images", "8", "--repeats", "1", "--recipes", "resnet", "--out", str(tmp_path),
                              "--gpu-img-s", "resnet=1000"]) == 0
    (record_file,) = tmp_path.glob("decode_*.json")
    (row,) = json.loads(record_file.read_text())["rows"]
    assert row["worker_img_s"] > 0 and row["workers_per_gpu"] == math.ceil(1000 / row["worker_img_s"])
    assert f"| resnet | {row['worker_img_s']:.0f} |" in record_file.with_suffix(".md").read_text()


def test_bad_gpu_rate_is_refused_naming_the_recipes(capsys):
    with pytest.raises(SystemExit) as info:
        bench_decode.main(["--gpu-img-s", "vit=fast"])
    assert info.value.code == 2 and "expected RECIPE=IMG_PER_S with RECIPE one of resnet, deit" in capsys.readouterr().err


def test_gpu_rates_are_the_fastest_mode_of_each_recipes_model_in_the_gpu_bench(tmp_path):
    rows = [{"model": "resnet50", "mode": "eager", "img_per_s": 2000.0},
            {"model": "resnet50", "mode": "compiled", "img_per_s": 2500.0},
            {"model": "deit_s", "mode": "eager", "img_per_s": 900.0}]
    (tmp_path / "nvidia-h100.json").write_text(json.dumps({"imagenet": rows, "cifar": []}))
    assert bench_decode.gpu_rates(tmp_path, None) == {"resnet": 2500.0, "deit": 900.0}
