"""scripts/gradient_flow.py measures the activation pair's backward window and the gradient per layer."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow  # builds and runs a ResNet-20: make test-full

SCRIPT = ROOT / "scripts" / "gradient_flow.py"


def flow(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


def test_bnn_passes_every_hardtanh_input_and_bnnpp_reverses_some(tmp_path):
    out = tmp_path / "flow.md"
    done = flow("--methods", "bnn,bnnpp", "--progress", "0", "--batches", "1", "--out", str(out), "--",
                "model.net.activation=hardtanh", "dataset.batch_size=16")
    assert done.returncode == 0, done.stderr
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in out.read_text().splitlines()
            if line.startswith("| bnn")}
    # hardtanh outputs lie in [-1, 1], BNN's window: B = 1 on every input of every binarized layer
    assert rows["bnn"][2:6] == ["100.0%", "1.000", "1", "0.0%"]
    # ∇SS_5 is negative for |a| > 0.48 (PC++ Example 3 differentiated): some hardtanh outputs get B < 0
    assert float(rows["bnnpp"][5].rstrip("%")) > 0


def test_bad_method_exits_2_naming_the_choices():
    done = flow("--methods", "bnnq")
    assert done.returncode == 2 and "'bnnq' is not a method" in done.stderr and "bnnpp" in done.stderr
