"""scripts/bench.py: the step benchmark's report (eager and compiled columns, each against FP in
its mode) and the GPU check's half (scripts/bench_cuda.py), which stops with exit 2 without CUDA."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
import torch

from conftest import ROOT


def _script(name: str):
    """scripts/<name>.py as a module (this folder's package is named scripts too)."""
    spec = importlib.util.spec_from_file_location(f"proxbin_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench, bench_cuda = _script("bench"), _script("bench_cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without CUDA")
def test_device_cuda_without_a_gpu_stops_with_exit_2_and_says_why(tmp_path, capsys):
    assert bench.main(["--device", "cuda", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no CUDA device is visible to torch" in err and "torch.cuda.is_available() is False" in err
    assert not list(tmp_path.iterdir())


def test_gpu_names_make_file_names():
    assert bench_cuda.slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"
    assert bench_cuda.slug("Tesla V100-SXM2-32GB") == "tesla-v100-sxm2-32gb"


def test_gpu_report_gives_each_epoch_against_fp_in_its_mode_and_what_was_skipped():
    machine = {"gpu": "NVIDIA H100", "gpu_count": 1, "cpu": "x", "cpu_count": 16, "torch": "2", "cuda": "12",
               "platform": "linux"}
    cifar = [{"method": m, "task": t, "mode": mode, "epoch_s": s, "img_per_s": 50000 / s, "compile_s": c}
             for m, t, mode, s, c in [("fp", "bw", "eager", 4.0, None), ("fp", "bw", "compiled", 2.0, 30.0),
                                      ("bnnpp", "bwa", "eager", 5.0, None), ("bnnpp", "bwa", "compiled", 2.2, 41.0)]]
    report = {"machine": machine, "git_commit": "abc", "budget_s": 300, "cifar": cifar, "skipped": ["deit_s compiled"],
              "imagenet": [{"model": "resnet50", "batch": 256, "mode": "eager", "step_s": 0.2, "img_per_s": 1280.0,
                            "memory_gib": 20.0, "compile_s": None}], "failed": {}}
    text = bench_cuda.markdown(report)
    assert "| bnnpp | bwa | compiled | 2.20 | 22727 | 1.100 | 41 |" in text
    assert "| bnnpp | bwa | eager | 5.00 | 10000 | 1.250 | – |" in text
    assert "| resnet50 | 256 | eager | 200 | 1280 | 20.0 | – |" in text
    assert "Skipped (past the 300 s budget): deit_s compiled." in text


@pytest.mark.slow
def test_a_small_bench_writes_eager_rows_against_fp(tmp_path):
    assert bench.main(["--methods", "ptb", "pq", "--tasks", "bw", "--modes", "eager", "--repeats", "1", "--steps", "1",
                       "--batch", "4", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "resnet20_b4.json").read_text())
    assert [(r["method"], r["task"]) for r in report["rows"]] == [("ptb", "bw"), ("pq", "bw")]
    assert report["fp"]["eager"]["copies"] == 4  # FP's blocks pooled from models spread through the round
    fp = report["fp"]["eager"]["step_s"]
    for row in report["rows"]:
        assert row["eager"]["ratio"] == pytest.approx(row["eager"]["step_s"] / fp)
    assert report["rows"][0]["eager"]["rule_s"] is None and report["rows"][1]["eager"]["rule_s"] > 0  # no rule; a prox
    text = (tmp_path / "resnet20_b4.md").read_text()
    assert "| method | task | eager (ms) | eager × FP | rule (ms) | target | meets |" in text


@pytest.mark.slow
def test_a_compiled_profile_names_inductors_generated_kernels(tmp_path, monkeypatch):
    monkeypatch.setattr(torch._inductor.config.cpp, "enable_kernel_profile", False)  # restored after the test
    assert bench.main(["--methods", "ptb", "--tasks", "bw", "--modes", "compiled", "--repeats", "1", "--steps", "1",
                       "--fp-copies", "1", "--batch", "4", "--profile", "compiled:ptb:bw", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "resnet20_b4.json").read_text())
    assert report["rows"][0]["compiled"]["compile_s"] is not None
    assert "cpp_fused" in report["profiles"]["compiled:ptb:bw"]  # the kernels by name, not only "CompiledFxGraph"
    assert "## Profile of compiled:ptb:bw" in (tmp_path / "resnet20_b4.md").read_text()
