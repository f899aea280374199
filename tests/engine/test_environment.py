"""Device selection: a GPU the installed torch has no kernels for stops the run before it starts
(src/engine/environment.py), simulated here by what torch.cuda reports."""

from __future__ import annotations

import runpy
import sys

import pytest
import torch

from conftest import TRAIN

from src.core.errors import UserError
from src.engine.environment import runs_on, select_device

# what torch 2.14's default wheels (CUDA 13) are built for: no Volta
CUDA13 = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120", "compute_120"]
CUDA126 = ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"]


@pytest.mark.parametrize("capability, arch_list, expected", [
    ((7, 0), CUDA13, False), ((7, 0), CUDA126, True), ((8, 0), CUDA13, True),
    ((8, 9), ["sm_80"], True),            # same major, higher minor: the sm_80 cubin runs
    ((8, 0), ["sm_86"], False),           # a lower minor does not
    ((9, 0), ["sm_80", "compute_80"], True),  # PTX is compiled by the driver for newer GPUs
    ((7, 0), ["compute_75"], False),
    ((9, 0), ["sm_90a"], True), ((10, 0), ["sm_90a"], False),  # arch-specific cubins: that GPU only
    ((10, 3), ["sm_100"], True), ((12, 0), ["sm_100"], False),
])
def test_runs_on(capability, arch_list, expected):
    assert runs_on(capability, arch_list) is expected


def fake_gpu(monkeypatch, capability, arch_list, name):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: list(arch_list))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)


@pytest.mark.parametrize("spec", ["auto", "cuda", "cuda:0"])
def test_a_volta_gpu_with_a_cuda13_build_stops_with_the_cu126_advice(monkeypatch, spec):
    fake_gpu(monkeypatch, (7, 0), CUDA13, "Tesla V100-SXM2-32GB")
    with pytest.raises(UserError) as refused:
        select_device(spec)
    message = str(refused.value)
    assert "Tesla V100-SXM2-32GB" in message and "sm_70" in message and "sm_75, sm_80" in message
    assert "https://download.pytorch.org/whl/cu126" in message and "trainer.device=cpu" in message


def test_a_newer_gpu_without_kernels_gets_the_generic_advice(monkeypatch):
    fake_gpu(monkeypatch, (12, 0), ["sm_80", "sm_90"], "Future GPU")
    with pytest.raises(UserError, match="sm_120") as refused:
        select_device("cuda")
    assert "cu126" not in str(refused.value) and "get-started" in str(refused.value)


def test_a_gpu_the_build_covers_is_selected(monkeypatch):
    fake_gpu(monkeypatch, (7, 0), CUDA126, "Tesla V100-SXM2-32GB")
    assert select_device("auto", local_rank=1) == torch.device("cuda", 1)


@pytest.mark.slow
def test_train_exits_2_on_a_volta_gpu_with_a_cuda13_build_and_writes_nothing(monkeypatch, tmp_path, capsys):
    fake_gpu(monkeypatch, (7, 0), CUDA13, "Tesla V100-SXM2-32GB")
    monkeypatch.setenv("PROXBIN_OUTPUT", str(tmp_path / "outputs"))
    monkeypatch.setattr(sys, "argv", [str(TRAIN), "trainer.device=cuda", "trainer.max_epochs=1", "run_name=volta"])
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(str(TRAIN), run_name="__main__")
    assert stopped.value.code == 2
    assert "sm_70" in capsys.readouterr().err
    assert not (tmp_path / "outputs" / "runs" / "volta").exists()
