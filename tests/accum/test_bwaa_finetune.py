"""PC++'s BWAA protocol on the digits data: an FP model, then BNN++ fine-tuned from it with binary
weights, binary activations and 8-bit cyclic accumulators. The run logs per-layer overflow rates,
and its reported (binary) evaluation computes with the exact two's-complement wrap."""

from __future__ import annotations

import csv

import pytest
import torch

from conftest import compose_train, read_results
from src.accum import WrapAccumulator, wrap
from src.engine.runner import Run
from src.quant.hooks import evaluation_form

pytestmark = pytest.mark.slow  # CLI, subprocess or training runs: make test-full

SMALL = ["dataset=digits", "model=resnet20", "model.net.activation=hardtanh", "trainer.progress=false",
         "dataset.batch_size=32", "trainer.max_steps_per_epoch=3"]


def test_finetune_bwaa_logs_overflow_and_evaluates_with_exact_wrap(tmp_path):
    fp = Run(compose_train([*SMALL, "quantizer=fp", "trainer.max_epochs=1"]), tmp_path / "fp").execute()
    assert fp["status"] == "completed"
    run = Run(compose_train([*SMALL, "quantizer=bnnpp", "task=bwaa", "pipeline=ft", "trainer.max_epochs=2",
                             f"pipeline.checkpoint={tmp_path / 'fp' / 'checkpoints' / 'best.pt'}",
                             "optimizer=adam", "optimizer.lr=0.001"]), tmp_path / "bwaa")
    results = run.execute()
    assert results["status"] == "completed", results.get("message")
    assert read_results(tmp_path / "bwaa")["init"]["loaded"] > 0

    accumulators = {name.rsplit(".accumulator", 1)[0]: m for name, m in run.model.named_modules()
                    if isinstance(m, WrapAccumulator)}
    assert len(accumulators) == 18 and all(m.bits == 8 for m in accumulators.values())
    assert set(results["overflow_rates"]) == set(accumulators)
    assert all(0.0 <= r <= 1.0 for r in results["overflow_rates"].values())
    with open(tmp_path / "bwaa" / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    for layer in accumulators:
        for key in (f"train_overflow_rate/{layer}", f"train_overflow_penalty/{layer}", f"test_overflow_rate/{layer}"):
            assert rows[-1][key] != "" and 0.0 <= float(rows[-1][key]) < float("inf"), key

    seen = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.append((inp[0], out))) for m in accumulators.values()]
    run.model.eval()
    with evaluation_form(run.model, "binary"), torch.no_grad():
        run.model(run.splits.test.tensors[0][:8])
    for h in hooks:
        h.remove()
    assert len(seen) == 18
    for acc, out in seen:
        assert torch.equal(acc, acc.round())  # ±1 × ±1 sums: integers
        assert torch.equal(out, wrap(acc, 8)) and out.min() >= -128 and out.max() <= 127
