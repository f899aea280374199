"""Knowledge distillation from the full-precision model (PC++ §4.3 protocol (4), after BiBERT).

The teacher is the full-precision model as initialised (pretrained or checkpoint weights, before
binarization and before the extra LayerNorms), frozen in eval mode. Per training step, with
student logits z_s, teacher logits z_t, labels y and temperature T, the objective is

    L = w_ce · CE(z_s, y)
      + w_logits · T² · CE(softmax(z_t/T), softmax(z_s/T))          BiBERT's prediction loss
      + w_dmd · mean_l mean_{X∈{Q,K,V}} MSE(X̂_s X̂_sᵀ, X̂_t X̂_tᵀ)    BiBERT's direction-matching loss
      + w_hidden · mean_l MSE(h_s^l, h_t^l)                          hidden states of every block

where X̂ is X with each token's per-head vector scaled to unit norm (so X̂X̂ᵀ holds cosine
similarities between tokens, one N×N matrix per head), and h^l is the output of block l. The
teacher runs under no_grad: gradients reach the student only.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from src.models.transformers import transformer_blocks


class _Capture:
    """Forward hooks keeping each block's output and its attention's qkv projection output."""

    def __init__(self, model: nn.Module):
        self.hidden: dict[int, torch.Tensor] = {}
        self.qkv: dict[int, tuple[torch.Tensor, int]] = {}
        self.handles = []
        for i, name in enumerate(transformer_blocks(model)):
            block = model.get_submodule(name)
            heads = int(getattr(block.attn, "num_heads", 1))
            self.handles.append(block.register_forward_hook(self._keep(self.hidden, i)))
            self.handles.append(block.attn.qkv.register_forward_hook(self._keep(self.qkv, i, heads)))

    @staticmethod
    def _keep(store: dict, index: int, heads: int | None = None):
        def hook(module: nn.Module, args: Any, output: torch.Tensor) -> None:
            store[index] = output if heads is None else (output, heads)
        return hook

    def clear(self) -> None:
        self.hidden.clear()
        self.qkv.clear()


def token_similarities(qkv: torch.Tensor, heads: int) -> list[torch.Tensor]:
    """[Q̂Q̂ᵀ, K̂K̂ᵀ, V̂V̂ᵀ] per head from a qkv projection output of shape (..., N, 3C), timm's
    layout (q, k, v, then heads, then head dim along the last axis); each (M, heads, N, N)."""
    n, three_c = qkv.shape[-2:]
    x = qkv.reshape(-1, n, 3, heads, three_c // (3 * heads)).permute(2, 0, 3, 1, 4)  # 3, M, H, N, d
    x = F.normalize(x.float(), dim=-1)
    return [m @ m.transpose(-1, -2) for m in x]


class Distiller:
    """``distiller(x, student_logits, ce_loss) -> objective`` (the formula of the module docstring)."""

    def __init__(self, teacher: nn.Module, student: nn.Module, temperature: float = 1.0, ce: float = 1.0,
                 logits: float = 1.0, dmd: float = 1.0, hidden: float = 1.0):
        self.teacher = teacher.eval().requires_grad_(False)
        self.temperature = float(temperature)
        self.weights = {"ce": float(ce), "logits": float(logits), "dmd": float(dmd), "hidden": float(hidden)}
        self.student_capture = _Capture(student)
        self.teacher_capture = _Capture(self.teacher)
        self.last: dict[str, float] = {}

    def terms(self, x: torch.Tensor, student_logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """The three distillation terms (unweighted), from the student's last forward on ``x``."""
        self.teacher.eval()  # the engine's model.train() never reaches the teacher, but be explicit
        with torch.no_grad():
            self.teacher_capture.clear()
            teacher_logits = self.teacher(x).float()
        t = self.temperature
        log_p_s = F.log_softmax(student_logits.float() / t, dim=-1)
        p_t = F.softmax(teacher_logits / t, dim=-1)
        out = {"logits": -(p_t * log_p_s).sum(-1).mean() * t * t}
        s_qkv, t_qkv = self.student_capture.qkv, self.teacher_capture.qkv
        dmd = [F.mse_loss(a, b) for i in s_qkv
               for a, b in zip(token_similarities(*s_qkv[i]), token_similarities(*t_qkv[i]))]
        out["dmd"] = torch.stack(dmd).mean() if dmd else student_logits.new_zeros(())
        hid = [F.mse_loss(self.student_capture.hidden[i].float(), self.teacher_capture.hidden[i].float())
               for i in self.student_capture.hidden]
        out["hidden"] = torch.stack(hid).mean() if hid else student_logits.new_zeros(())
        return out

    def __call__(self, x: torch.Tensor, student_logits: torch.Tensor, ce_loss: torch.Tensor) -> torch.Tensor:
        terms = self.terms(x, student_logits)
        self.last = {k: float(v.detach()) for k, v in terms.items()}
        objective = self.weights["ce"] * ce_loss
        for key, value in terms.items():
            if self.weights[key]:
                objective = objective + self.weights[key] * value
        return objective


def frozen_copy(model: nn.Module) -> nn.Module:
    """The teacher: a deep copy of the full-precision model, frozen."""
    return copy.deepcopy(model).eval().requires_grad_(False)
