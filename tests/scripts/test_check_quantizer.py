"""scripts/check_quantizer.py gives the theory helper's verdict for names and for a user's own config."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow  # CLI, subprocess or training runs: make test-full

SCRIPT = ROOT / "scripts" / "check_quantizer.py"


def check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_verdicts_for_registered_methods_and_a_user_config(tmp_path):
    mine = tmp_path / "mine.yaml"  # a user's design: the EDE+ pair with other temperatures (F' = B: in PC++)
    mine.write_text("weight:\n  _target_: src.quant.quantizers.EDEPlus\n  t_min: 0.5\n  t_max: 4.0\n")
    ede = tmp_path / "ede_like.yaml"  # sign forward with a tanh' backward: not in PC++
    ede.write_text("weight:\n  _target_: src.quant.quantizers.EDE\n  t_min: 0.5\n  t_max: 4.0\n")
    done = check("bnnpp", "bnnp", str(mine), str(ede))
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(None, 1) for line in done.stdout.splitlines())
    assert lines["bnnpp"].startswith("in PC++") and lines["bnnp"].startswith("NOT in PC++")
    assert lines[str(mine)].startswith("in PC++")
    assert lines[str(ede)].startswith("NOT in PC++") and "B is not a function of P" in lines[str(ede)]


def test_a_different_activation_pair_gets_its_own_verdict():
    """Bi-Real's weights take the BNN pair (in PC++), its activations (sign, ApproxSign') (not)."""
    done = check("bireal", "bnn", "--task", "bwa")
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(None, 1) for line in done.stdout.splitlines())
    assert lines["bireal"].startswith("in PC++; activations: NOT in PC++") and "activations" not in lines["bnn"]


def test_unknown_name_lists_the_valid_ones():
    done = check("bnnppp")
    assert done.returncode == 2 and "unknown method 'bnnppp'" in done.stderr and "bnnpp" in done.stderr
