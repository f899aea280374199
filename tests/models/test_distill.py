"""BiBERT-style distillation (PC++ §4.3 protocol (4)): the terms vanish for a student identical to
its teacher, grow once they differ, and train the student only."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from conftest import VIT_FAST as FAST
from conftest import compose_train
from src.models.distill import Distiller, frozen_copy, token_similarities



def test_kd_terms_vanish_for_an_identical_student_and_reach_the_student_only():
    torch.manual_seed(0)
    student = instantiate(compose_train(FAST).model.net)
    teacher = frozen_copy(student)
    x = torch.randn(4, 3, 32, 32)
    distiller = Distiller(teacher, student, temperature=2.0, ce=0.0, logits=1.0, dmd=1.0, hidden=1.0)
    logits = student(x)
    terms = {k: v.detach() for k, v in distiller.terms(x, logits).items()}
    assert float(terms["dmd"]) == pytest.approx(0, abs=1e-6) and float(terms["hidden"]) == pytest.approx(0, abs=1e-6)
    p = F.softmax(logits.detach() / 2, -1)  # soft CE of identical models = T^2 * entropy of p_T
    assert float(terms["logits"]) == pytest.approx(float(-(p * p.log()).sum(-1).mean() * 4), rel=1e-5)

    with torch.no_grad():  # now a different student
        for prm in student.parameters():
            prm.add_(0.05 * torch.randn_like(prm))
    objective = distiller(x, student(x), torch.tensor(0.0))
    assert all(v > 0 for v in distiller.last.values())
    objective.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert all(not p.requires_grad for p in teacher.parameters())
    grads = [p.grad for p in student.parameters() if p.grad is not None]
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0


def test_token_similarities_are_per_head_cosines():
    torch.manual_seed(0)
    qkv = torch.randn(2, 5, 3 * 8)  # 2 heads of dim 4
    sims = token_similarities(qkv, heads=2)
    k_head1 = qkv[1, :, 8 + 4:8 + 8]
    expected = F.cosine_similarity(k_head1[:, None, :], k_head1[None, :, :], dim=-1)
    assert torch.allclose(sims[1][1, 1], expected, atol=1e-6)
