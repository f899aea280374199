"""The engine's extension points for quantizers: progress t/T each step, the update rule's
before/after-step hooks around every optimizer step, and evaluation in the binary form; the step
settings taken from the ``trainer`` config key for key; the every-n-steps log."""

from __future__ import annotations

import copy
import io
import logging
import math
import sys
from dataclasses import fields, replace

import numpy as np
import pytest
import timm.data
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from conftest import compose_train
from src.core.errors import Diverged, UserError
from src.engine.distributed import DistContext
from src.engine.loggers import NullLogger
from src.engine import loop
from src.engine.loop import StepSettings, TrainStep, eval_loader, evaluate, train_epoch, train_loader
from src.quant.hooks import evaluation_form, set_progress
from src.quant.updates import ProximalUpdate

CPU = torch.device("cpu")


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
    step = TrainStep(model, opt, StepSettings(device=CPU, progress=False), total_steps=12, update_rule=rule)
    stats = train_epoch(step, loader, global_step=3, desc="t")
    assert stats["steps"] == 3
    assert model[0].progress == [3 / 12, 4 / 12, 5 / 12]
    kinds = [e[0] for e in rule.events]
    assert kinds == ["progress", "before", "after"] * 3
    # before_step sees the weights before the optimizer moved them, after_step the moved ones
    for i in range(3):
        before, after = rule.events[3 * i + 1][1], rule.events[3 * i + 2][1]
        assert not torch.equal(before, after) and rule.events[3 * i + 2][2] == 0.5


def test_without_update_rule_the_step_is_the_optimizers():
    """The null update rule: one step is w − η ∇ℓ(w), computed here by hand from the gradient."""
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    x, y = _data(4).tensors
    expected = copy.deepcopy(model)
    nn.functional.cross_entropy(expected(x), y).backward()
    want = [p.detach() - 0.5 * p.grad for p in expected.parameters()]
    step = TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.5), StepSettings(device=CPU, progress=False), 1)
    train_epoch(step, [(x, y)], global_step=0, desc="t")
    for got, w in zip(model.parameters(), want):
        torch.testing.assert_close(got.detach(), w, rtol=0, atol=1e-7)


def test_evaluation_form_switches_and_restores():
    model = nn.Sequential(Recorder())
    loader = eval_loader(_data(), batch_size=6, num_workers=0, ctx=DistContext())
    s = StepSettings(device=CPU, progress=False)
    with evaluation_form(model, "soft"):
        evaluate(model, loader, s, DistContext())
    evaluate(model, loader, s, DistContext())
    assert model[0].forms == ["soft", "soft", "binary", "binary"]


def test_progress_outside_unit_interval_is_refused():
    with pytest.raises(ValueError, match=r"progress must lie in \[0, 1\], got 1.5"):
        set_progress(nn.Sequential(Recorder()), 1.5)


def test_step_settings_are_the_trainer_config_keys():
    trainer = compose_train(["trainer.precision=bf16", "trainer.max_steps_per_epoch=7", "trainer.grad_clip=1.5",
                             "trainer.log_every_n_steps=9", "trainer.progress=false", "trainer.accumulate_grad_batches=2",
                             "trainer.checkpoint_every_n_steps=5"]).trainer
    s = StepSettings.from_trainer(trainer, CPU)
    assert s.device == CPU
    for f in fields(StepSettings):  # every field is a trainer key of the same name and value
        if f.name != "device":
            assert getattr(s, f.name) == trainer[f.name], f.name
    assert (s.precision, s.max_steps_per_epoch, s.grad_clip, s.log_every_n_steps, s.progress) == ("bf16", 7, 1.5, 9, False)
    assert s.accumulate_grad_batches == 2 and s.checkpoint_every_n_steps == 5
    assert s.steps_per_epoch(5) == 3 and s.steps_per_epoch(20) == 7  # 2 batches a step, the last one alone


@pytest.mark.parametrize("key,value,valid", [
    ("precision", "fp8", "fp32 or bf16 or fp16"),
    ("accumulate_grad_batches", 0, "a positive integer"),
    ("checkpoint_every_n_steps", 0, "a positive integer, or null"),
    ("log_every_n_steps", 0, "a positive integer"),
    ("log_every_n_seconds", 0, "a positive number of seconds"),
    ("max_steps_per_epoch", 0, "a positive integer, or null"),
    ("grad_clip", -1.0, "a positive max gradient norm, or null"),
    ("progress", "yes", "true or false"),
    ("channels_last", 1, "true or false"),
    ("mixup", "deit", "null, or a Mixup config with a _target_"),
])
def test_bad_step_setting_names_the_key_and_the_valid_values(key, value, valid):
    with pytest.raises(UserError, match=f"trainer.{key}={value!r} is not valid: it must be {valid}"):
        StepSettings(device=CPU, **{key: value})


class RecordingLogger(NullLogger):
    def __init__(self):
        self.calls: list[tuple[dict, int]] = []

    def log(self, metrics, step):
        self.calls.append((dict(metrics), step))


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _epoch(settings: StepSettings, logger: NullLogger = NullLogger(), max_steps: int | None = None):
    """Six steps of batch 2 from global step 3 (of 12), from the same initial model each call."""
    torch.manual_seed(0)
    model = nn.Sequential(Recorder())
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loader = train_loader(_data(), batch_size=2, num_workers=0, ctx=DistContext(), seed=0, epoch=1)
    if max_steps is not None:
        settings = replace(settings, max_steps_per_epoch=max_steps)
    return train_epoch(TrainStep(model, opt, settings, total_steps=12), loader, global_step=3, desc="epoch 1/2",
                       logger=logger)


def test_every_n_steps_the_running_metrics_go_to_the_logger():
    logger = RecordingLogger()
    stats = _epoch(StepSettings(device=CPU, progress=False, log_every_n_steps=3), logger)
    assert stats["steps"] == 6
    assert [step for _, step in logger.calls] == [6, 9]  # global steps 4..9: every 3rd
    assert all(m["step"] == step and m["lr"] == 0.5 for m, step in logger.calls)
    # the running values are the epoch's means so far: after 3 steps those of a 3-step epoch,
    # at the epoch's last step those of the whole epoch
    first_three = _epoch(StepSettings(device=CPU, progress=False), max_steps=3)
    assert logger.calls[0][0]["running_train_loss"] == pytest.approx(first_three["train_loss"], rel=1e-12)
    assert logger.calls[0][0]["running_train_acc"] == pytest.approx(first_three["train_acc"], rel=1e-12)
    assert logger.calls[1][0]["running_train_loss"] == pytest.approx(stats["train_loss"], rel=1e-12)
    assert logger.calls[1][0]["running_train_acc"] == pytest.approx(stats["train_acc"], rel=1e-12)


class FakeClock:
    """ProgressLine's clock: ``tick`` seconds later at every reading."""

    def __init__(self, tick: float):
        self.now, self.tick = 0.0, tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


def test_progress_line_in_a_log_file_every_n_seconds_and_a_bar_on_a_terminal(monkeypatch, caplog):
    """In a log file: a line at the first step ending ≥ log_every_n_seconds after the last line (a
    reading per step, 0.5 s apart: steps 3 and 6 of the epoch, global steps 6 and 9), whatever
    log_every_n_steps is; its loss is the epoch's running loss at that step."""
    monkeypatch.setattr(loop.ProgressLine, "clock", staticmethod(FakeClock(0.5)))
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a log file: not a terminal
    logger = RecordingLogger()
    with caplog.at_level(logging.INFO, logger="proxbin"):
        stats = _epoch(StepSettings(device=CPU, log_every_n_steps=3, log_every_n_seconds=1.25), logger)
    lines = [r.getMessage() for r in caplog.records if r.name == "proxbin"]
    assert [line.split("  ")[:2] for line in lines] == [["epoch 1/2", "step 6/12"], ["epoch 1/2", "step 9/12"]]
    assert [m["step"] for m, _ in logger.calls] == [6, 9]            # the logger: every log_every_n_steps
    for line, (metrics, _) in zip(lines, logger.calls):              # the same running loss
        assert f"loss {metrics['running_train_loss']:.4f}" in line
    # 3 steps of 2 images in 1.5 s, then 6 in 3 s: 4 img/s; ETA: the run's remaining steps at that rate
    assert "  4 img/s  " in lines[0] and lines[0].endswith("ETA 0:00:03")   # 6 steps left × 0.5 s
    assert "  4 img/s  " in lines[1] and lines[1].endswith("ETA 0:00:01") and stats["steps"] == 6  # 3 × 0.5 s
    assert sys.stderr.getvalue() == ""  # no tqdm bar in a log file

    caplog.clear()
    monkeypatch.setattr(loop.ProgressLine, "clock", staticmethod(FakeClock(1000.0)))
    with caplog.at_level(logging.INFO, logger="proxbin"):
        _epoch(StepSettings(device=CPU, log_every_n_steps=1000, log_every_n_seconds=25.0))
    assert len([r for r in caplog.records if r.name == "proxbin"]) == 6   # a slow step: a line each

    caplog.clear()
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with caplog.at_level(logging.INFO, logger="proxbin"):
        _epoch(StepSettings(device=CPU, log_every_n_steps=3))
    assert not [r for r in caplog.records if r.name == "proxbin"]
    assert "epoch 1/2" in terminal.getvalue()  # the bar, drawn on the terminal

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with caplog.at_level(logging.INFO, logger="proxbin"):
        _epoch(StepSettings(device=CPU, progress=False, log_every_n_steps=3))
    assert not [r for r in caplog.records if r.name == "proxbin"]  # progress=false: silent


def test_the_progress_line_reads_the_device_only_when_it_is_due(monkeypatch, caplog):
    """No host sync per step: the loss sum is read (Tensor.__float__) at the epoch's end (loss,
    correct count, divergence value) and once per line, never in the steps between."""
    reads = []
    to_float = torch.Tensor.__float__
    monkeypatch.setattr(torch.Tensor, "__float__", lambda t: reads.append(1) or to_float(t))
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    counts = {}
    for tick, expected_lines in ((10.0, 2), (1.0, 0)):
        reads.clear()
        caplog.clear()
        monkeypatch.setattr(loop.ProgressLine, "clock", staticmethod(FakeClock(tick)))
        with caplog.at_level(logging.INFO, logger="proxbin"):
            _epoch(StepSettings(device=CPU, log_every_n_steps=1000, log_every_n_seconds=25.0))
        assert len([r for r in caplog.records if r.name == "proxbin"]) == expected_lines
        counts[tick] = len(reads)
    assert counts[10.0] - counts[1.0] == 2        # one read per line
    assert counts[1.0] == 3                       # six steps without a line: only the epoch end's reads


# DeiT's values (configs/mixup/deit.yaml) for 3 classes
MIXUP = {"_target_": "timm.data.Mixup", "mixup_alpha": 0.8, "cutmix_alpha": 1.0, "prob": 1.0, "switch_prob": 0.5,
         "mode": "batch", "label_smoothing": 0.1, "num_classes": 3}


def _image_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 3))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])  # numpy's draw picks mixup or cutmix and the mixing weight
def test_mixup_mixes_the_batch_and_takes_the_soft_target_cross_entropy(seed):
    """trainer.mixup: the model (and the KD objective) see timm's mixed batch, and the loss is
    −mean_i Σ_c t_ic log softmax(z_i)_c against its mixed, label-smoothed targets t."""
    model = _image_model()
    x, y = torch.randn(6, 3, 4, 4, generator=torch.Generator().manual_seed(seed)), torch.tensor([0, 1, 2, 0, 1, 2])
    seen = []

    def objective(inputs, logits, loss):
        seen.append(inputs.clone())
        return loss

    step = TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.0), StepSettings(device=CPU, mixup=MIXUP),
                     total_steps=1, objective=objective)
    np.random.seed(seed)
    loss, logits = step(x.clone(), y, 0)
    np.random.seed(seed)
    mixed, target = timm.data.Mixup(**{k: v for k, v in MIXUP.items() if k != "_target_"})(x.clone(), y)
    assert target.shape == (6, 3) and torch.allclose(target.sum(1), torch.ones(6))
    assert torch.equal(seen[0], mixed) and not torch.equal(mixed, x)
    torch.testing.assert_close(logits, model(mixed))
    expected = -(target * F.log_softmax(model(mixed), dim=-1)).sum(-1).mean()
    torch.testing.assert_close(loss, expected)
    assert not torch.isclose(loss, F.cross_entropy(model(mixed), y))  # not the hard-label loss


def test_with_mixup_an_incomplete_last_batch_is_dropped_and_an_odd_batch_refused():
    mixing = StepSettings(device=CPU, mixup=MIXUP)
    assert mixing.drop_last and not StepSettings(device=CPU).drop_last
    sizes = [len(y) for _, y in train_loader(_data(10), 4, 0, DistContext(), seed=0, epoch=0,
                                             drop_last=mixing.drop_last)]
    assert sizes == [4, 4]
    assert [len(y) for _, y in train_loader(_data(10), 4, 0, DistContext(), seed=0, epoch=0)] == [4, 4, 2]
    model = _image_model()
    step = TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.1), mixing, total_steps=1)
    with pytest.raises(UserError, match="trainer.mixup needs an even batch per rank, got 5 images"):
        step(torch.randn(5, 3, 4, 4), torch.zeros(5, dtype=torch.long), 0)


# ------------------------------------------------------------------ read points and divergence

def _batches(n_batches, size, nan_at=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = [(torch.randn(size, 4, generator=g), torch.randint(0, 3, (size,), generator=g)) for _ in range(n_batches)]
    if nan_at is not None:
        out[nan_at][0][0, 0] = float("nan")
    return out


def test_a_non_finite_step_is_caught_at_the_next_read_point_and_never_checkpointed():
    """A NaN in the batch of step 5: the steps go on without a sync until the read point of step 6
    (checkpoint_every_n_steps=2), which raises Diverged at step 5 exactly; the last checkpoint is
    step 4's, with the weights of a clean run after 4 steps."""
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    clean = copy.deepcopy(model)
    calls, saved = [], []

    def objective(x, logits, loss):
        calls.append(1)
        return loss

    settings = StepSettings(device=CPU, progress=False, log_every_n_steps=1000, checkpoint_every_n_steps=2)
    step = TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), settings, 8, objective=objective)
    with pytest.raises(Diverged) as caught:
        train_epoch(step, _batches(8, 4, nan_at=5), global_step=0, desc="t",
                    checkpoint=lambda progress, at: saved.append((at, progress, copy.deepcopy(model.state_dict()))))
    assert caught.value.step == 5 and math.isnan(caught.value.loss)
    assert len(calls) == 6                              # steps 0..5 ran; step 6 never started
    assert [at for at, _, _ in saved] == [2, 4] and saved[-1][1].steps == 4
    train_epoch(TrainStep(clean, torch.optim.SGD(clean.parameters(), lr=0.1, momentum=0.9),
                          StepSettings(device=CPU, progress=False), 8), _batches(8, 4)[:4], global_step=0, desc="t")
    for key, tensor in clean.state_dict().items():
        assert torch.equal(saved[-1][2][key], tensor), key


def test_divergence_stops_the_epoch_at_its_end_without_log_or_checkpoint_points():
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    step = TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.1), StepSettings(device=CPU, progress=False), 4)
    with pytest.raises(Diverged, match="at step 12"):
        train_epoch(step, _batches(4, 4, nan_at=2), global_step=10, desc="t")


# ---------------------------------------------------------------------- gradient accumulation

class ClipCounter(ProximalUpdate):
    """ProxQuant's update rule, counting its before/after-step calls."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def before_step(self):
        self.calls.append("before")
        super().before_step()

    def after_step(self, lr):
        self.calls.append("after")
        super().after_step(lr)


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))


@pytest.mark.parametrize("grad_clip", [None, 0.5])
@pytest.mark.parametrize("images", [24, 20, 22])  # 20: a group of 2 batches; 22: a group whose last batch has 2 images
def test_k_micro_batches_make_the_update_of_one_batch_of_k_times_the_images(images, grad_clip):
    """accumulate_grad_batches=3 on batches of 4 against batches of 12 (a BN-free model, SGD with
    momentum, grad clip and ProxQuant's prox + clip): the same weights after the epoch's 2 steps, and
    the progress, clip and update rule act once per optimizer step."""
    data = _batches(1, images)[0]
    results = []
    for batch, k in ((12, 1), (4, 3)):
        model = _mlp()
        opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-3)
        rule = ClipCounter([model[0].weight], opt, lam_end=0.5)
        settings = StepSettings(device=CPU, progress=False, grad_clip=grad_clip, accumulate_grad_batches=k)
        loader = [(data[0][i:i + batch], data[1][i:i + batch]) for i in range(0, images, batch)]
        stats = train_epoch(TrainStep(model, opt, settings, 4, rule), loader, global_step=1, desc="t")
        assert stats["steps"] == 2 and stats["images"] == images
        assert rule.calls == ["before", "after"] * 2 and rule.progress == 2 / 4
        results.append((model, stats))
    (one, one_stats), (micro, micro_stats) = results
    for a, b in zip(one.parameters(), micro.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert micro_stats["train_loss"] == pytest.approx(one_stats["train_loss"], rel=1e-6)
    assert micro_stats["train_acc"] == one_stats["train_acc"]


# ------------------------------------------------------------------------------ fp16

class InfGradient:
    """Makes the next backward's gradient of ``weight`` infinite (an fp16 overflow) while on."""

    def __init__(self, weight):
        self.on = False
        weight.register_hook(lambda g: g * float("inf") if self.on else g)


def test_fp16_a_step_the_scaler_skips_runs_no_optimizer_step_and_no_update_rule():
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    rule = ClipCounter([model[0].weight], opt, lam_end=0.5)
    step = TrainStep(model, opt, StepSettings(device=CPU, precision="fp16", grad_clip=1.0), 10, rule)
    x, y = _batches(1, 8)[0]
    inf = InfGradient(model[0].weight)
    step(x, y, 0)
    assert rule.calls == ["before", "after"]
    weights, momenta = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()["state"])
    scale = step.scaler.get_scale()
    inf.on = True
    loss, _ = step(x, y, 1)
    assert torch.isfinite(loss)                                  # not a divergence: the gradient overflowed
    assert rule.calls == ["before", "after"] and not rule.frozen  # no prox, no clip, no rPC move
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, weights[key]), key
    for i, state in opt.state_dict()["state"].items():
        assert torch.equal(state["momentum_buffer"], momenta[i]["momentum_buffer"])
    assert step.scaler.get_scale() == scale / 2
    step.raise_if_diverged()                                     # nothing recorded
    inf.on = False
    step(x, y, 2)
    assert rule.calls == ["before", "after"] * 2
    assert not torch.equal(model[0].weight, weights["0.weight"])


def test_fp16_clip_acts_on_the_unscaled_gradient():
    """SGD with lr 1 moves the weights by exactly the clipped gradient: its norm is grad_clip, not
    grad_clip / S as a clip of the scaled gradient would give."""
    model = _mlp()
    before = [p.detach().clone() for p in model.parameters()]
    step = TrainStep(model, torch.optim.SGD(model.parameters(), lr=1.0),
                     StepSettings(device=CPU, precision="fp16", grad_clip=0.01), 1)
    x, y = _batches(1, 8)[0]
    step(10 * x, y, 0)
    moved = torch.cat([(b - p.detach()).flatten() for b, p in zip(before, model.parameters())])
    assert step.scaler.get_scale() == 65536.0
    assert moved.norm().item() == pytest.approx(0.01, rel=1e-3)


def test_fp16_scaler_state_is_the_steps_state():
    model = _mlp()
    step = TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.1), StepSettings(device=CPU, precision="fp16"), 4)
    inf = InfGradient(model[0].weight)
    inf.on = True
    step(*_batches(1, 4)[0], 0)
    state = step.state_dict()
    again = TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.1), StepSettings(device=CPU, precision="fp16"), 4)
    again.load_state_dict(state)
    assert again.scaler.get_scale() == step.scaler.get_scale() == 32768.0
    assert TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.1), StepSettings(device=CPU), 4).state_dict() == {}
