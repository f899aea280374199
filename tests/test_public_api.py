"""Each package's __init__ names its public API, and the pure-PyTorch floors import alone: in a fresh
interpreter, importing src.quant or src.accum pulls in neither Hydra/OmegaConf nor a higher floor."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow  # CLI, subprocess or training runs: make test-full

HIGHER = {
    "src.accum": ("hydra", "omegaconf", "src.quant", "src.data", "src.models", "src.engine", "src.sweeps",
                  "src.reporting"),
    "src.quant": ("hydra", "omegaconf", "src.data", "src.models", "src.engine", "src.sweeps", "src.reporting"),
}
USE = {
    "src.accum": "from src.accum import wrap, cyclic; assert float(wrap(torch.tensor(130.0), 8)) == -126.0",
    "src.quant": "from src.quant import build_quantizer; q = build_quantizer('bnnpp'); q(torch.zeros(3))",
}


@pytest.mark.parametrize("package", sorted(HIGHER))
def test_pure_pytorch_floor_imports_alone(package):
    code = (f"import sys, torch\n{USE[package]}\n"
            f"print(sorted(m for m in sys.modules if m.startswith({HIGHER[package]!r})))")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"importing {package} imported {done.stdout.strip()}"


@pytest.mark.parametrize("package", ["src.core", "src.accum", "src.quant", "src.data", "src.models", "src.engine"])
def test_every_public_name_resolves(package):
    module = importlib.import_module(package)
    assert module.__doc__ and module.__all__
    missing = [name for name in module.__all__ if getattr(module, name, None) is None]
    assert not missing, f"{package}.__all__ names {missing}, which it does not provide"
