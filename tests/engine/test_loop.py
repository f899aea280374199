"""The engine's extension points for quantizers: progress t/T each step, the update rule's
before/after-step hooks around every optimizer step, and evaluation in the binary form."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

from src.engine.distributed import DistContext
from src.engine.loop import StepSettings, eval_loader, evaluate, train_epoch, train_loader
from src.quant.hooks import evaluation_form, set_progress


class Recorder(nn.Module):
    """A layer that records the schedule point it is given and the form it is evaluated in."""

    evaluation_form = "binary"

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.progress: list[float] = []
        self.forms: list[str] = []

    def set_progress(self, p: float) -> None:
        self.progress.append(p)

    def forward(self, x):
        if not self.training:
            self.forms.append(self.evaluation_form)
        return self.linear(x)


class SpyRule:
    def __init__(self, weight: torch.Tensor):
        self.weight, self.events = weight, []

    def set_progress(self, p):
        self.events.append(("progress", p))

    def before_step(self):
        self.events.append(("before", self.weight.detach().clone()))

    def after_step(self, lr):
        self.events.append(("after", self.weight.detach().clone(), lr))


def _data(n=12):
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g))


def test_progress_and_update_hooks_run_every_step():
    model = nn.Sequential(Recorder())
    rule = SpyRule(model[0].linear.weight)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loader = train_loader(_data(), batch_size=4, num_workers=0, ctx=DistContext(), seed=0, epoch=1)
    s = StepSettings(device=torch.device("cpu"), progress_bar=False)
    stats = train_epoch(model, loader, opt, rule, s, DistContext(), global_step=3, total_steps=12, desc="t")
    assert stats["steps"] == 3
    assert model[0].progress == [3 / 12, 4 / 12, 5 / 12]
    kinds = [e[0] for e in rule.events]
    assert kinds == ["progress", "before", "after"] * 3
    # before_step sees the weights before the optimizer moved them, after_step the moved ones
    for i in range(3):
        before, after = rule.events[3 * i + 1][1], rule.events[3 * i + 2][1]
        assert not torch.equal(before, after) and rule.events[3 * i + 2][2] == 0.5


def test_evaluation_form_switches_and_restores():
    model = nn.Sequential(Recorder())
    loader = eval_loader(_data(), batch_size=6, num_workers=0, ctx=DistContext())
    s = StepSettings(device=torch.device("cpu"), progress_bar=False)
    with evaluation_form(model, "soft"):
        evaluate(model, loader, s, DistContext())
    evaluate(model, loader, s, DistContext())
    assert model[0].forms == ["soft", "soft", "binary", "binary"]


def test_progress_outside_unit_interval_is_refused():
    import pytest

    with pytest.raises(ValueError, match=r"progress must lie in \[0, 1\], got 1.5"):
        set_progress(nn.Sequential(Recorder()), 1.5)
