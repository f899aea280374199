"""Compiled against eager training, shared by tests/engine/test_compile.py (CPU) and tests/gpu/ (CUDA):
each method x task as a tiny network built as the engine builds it (configs, model surgery, update
rule, optimizer), trained two steps of the engine's TrainStep eager and compiled from the same weights,
the compiled one with one training graph for the whole schedule and one per one-off event."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch._dynamo.utils import counters

from conftest import CONFIGS
from src.core import config_tree
from src.engine.build import build_layer_factory, build_update_rule
from src.engine.compile import compile_model
from src.engine.loop import StepSettings, TrainStep
from src.quant.hooks import evaluation_form
from src.quant.layers import quantized_layers
from src.quant.prox import sign
from src.quant.quantizers import ProxConnect
from src.quant.surgery import quantize_model

CASES = [("fp", "bw")] + [(m, t) for m in config_tree.methods() if m != "fp" for t in config_tree.tasks()]
CLASSES = 4
LATE = 3 / 4  # the second step's progress p


def tiny_net() -> nn.Module:
    """A quantized convolution and a quantized Linear between the full-precision first and last layers
    (each type of layer and of BWAA accumulator); 8x8 inputs. A BatchNorm after each convolution, as in
    the papers' networks: without it, the binary form's integer sums tie at exactly 0 in places, whose
    sign then depends on the summation order."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.Hardtanh(),
                         nn.Conv2d(8, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.Hardtanh(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 8), nn.Hardtanh(), nn.Linear(8, CLASSES))


def build(method: str, task: str, device: torch.device):
    """The case's network (seeded), optimizer and update rule, as src.engine.runner builds them."""
    overrides = [f"quantizer={method}", f"task={task}", "dataset=fake", *(["optimizer=adam"] if method == "proxgen" else [])]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    torch.manual_seed(0)
    net = tiny_net()
    quantize_model(net, build_layer_factory(cfg.quantizer, cfg.task), list(cfg.task.keep_fp))
    return net.to(device), cfg


def two_steps(net: nn.Module, cfg, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """Two steps of TrainStep (forward, cross-entropy + overflow penalty, backward, the update rule
    around the optimizer's step) at p = 0 and p = 3/4, far apart on every schedule (PC's ρ crosses 1
    between them); their losses."""
    optimizer = instantiate(cfg.optimizer)(net.parameters())
    rule = build_update_rule(cfg.quantizer, net, optimizer)
    step = TrainStep(net, optimizer, StepSettings(device=x.device, progress=False),
                     total_steps=4, update_rule=rule)
    return [float(step(x, y, t)[0].detach()) for t in (0, round(LATE * 4))]


def binary_weights(net: nn.Module) -> list[torch.Tensor]:
    """sign(u) of every quantized layer: the weights its binary form computes with (× s)."""
    return [sign(layer.unit_weight()).detach() for layer in quantized_layers(net)]


def expected_training_graphs(net: nn.Module, cfg) -> int:
    """One graph for the whole schedule (a Python branch on μ, ρ or t would compile more), plus one for
    each one-off event between the two steps: PC's L_ρ branches once, when ρ crosses 1
    (src/quant/prox.py); ProxQuant/ConQ/ProxGen's freeze at p = freeze_at stops the weights' gradients."""
    rho_crosses_1 = any(isinstance(m, ProxConnect) for m in net.modules())
    freeze_at = (cfg.quantizer.get("update_rule") or {}).get("freeze_at")  # FP and PTB have no rule
    return 1 + rho_crosses_1 + (freeze_at is not None and freeze_at <= LATE)


def compare(method: str, task: str, device: torch.device) -> None:
    """Eager and compiled (in place, the default backend) from the same weights on the same batch:
    no graph break, the same losses (1e-5 relative), the same binary weights, the same binary-form
    logits in evaluation."""
    eager, cfg = build(method, task, device)
    compiled = copy.deepcopy(eager)
    counters.clear()
    compile_model(compiled)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 3, 8, 8, generator=g).to(device)
    y = torch.randint(0, CLASSES, (6,), generator=g).to(device)
    want, got = two_steps(eager, cfg, x, y), two_steps(compiled, cfg, x, y)
    assert not counters["graph_break"], dict(counters["graph_break"])
    graphs = expected_training_graphs(compiled, cfg)
    assert counters["frames"]["ok"] == graphs, f"{counters['frames']['ok']} graphs compiled for training, not {graphs}"
    torch.testing.assert_close(torch.tensor(got), torch.tensor(want), rtol=1e-5, atol=0)
    for i, (a, b) in enumerate(zip(binary_weights(eager), binary_weights(compiled))):
        assert torch.equal(a, b), f"binary weights of quantized layer {i}"
    eager.eval()
    compiled.eval()
    with torch.no_grad(), evaluation_form(eager, "binary"), evaluation_form(compiled, "binary"):
        torch.testing.assert_close(compiled(x), eager(x), rtol=1e-5, atol=1e-5)
