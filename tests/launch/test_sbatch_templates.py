"""The commands the sbatch templates build, without a cluster (PROXBIN_DRY_RUN=1 and a stand-in
``scontrol``): slurm/train_ddp.sbatch on one node (torchrun --standalone) and on several (one torchrun
per node meeting at a c10d rendezvous on the first node). The templates running for real on the
local cluster: tests/launch/test_slurm.py."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from tests.conftest import ROOT

TEMPLATE = ROOT / "slurm" / "train_ddp.sbatch"


def built_command(tmp_path: Path, **slurm: str) -> list[str]:
    """The launch command of the template in an allocation with the SLURM variables ``slurm``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / "scontrol"  # the real one expands a node list the same way: gpu[07-10] -> gpu07 ...
    stub.write_text('#!/bin/sh\n[ "$1 $2 $3" = "show hostnames gpu[07-10]" ] || exit 9\n'
                    'printf "gpu07\\ngpu08\\ngpu09\\ngpu10\\n"\n')
    stub.chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "PROXBIN_DRY_RUN": "1", **slurm}
    proc = subprocess.run(["bash", str(TEMPLATE), "model=deit_b", "quantizer=bnnpp"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return shlex.split(proc.stdout.strip().splitlines()[-1])


def test_one_node_runs_one_standalone_torchrun_per_gpu(tmp_path):
    command = built_command(tmp_path, SLURM_JOB_ID="77", SLURM_JOB_NUM_NODES="1", SLURM_GPUS_ON_NODE="4",
                            SLURM_CPUS_PER_TASK="32")
    torchrun = command.index("torch.distributed.run")
    assert command[0] == "srun" and command[torchrun + 1:torchrun + 4] == ["--standalone", "--nproc_per_node=4",
                                                                            "src/train.py"]
    assert not any(a.startswith(("--rdzv", "--nnodes")) for a in command)
    assert command[-2:] == ["model=deit_b", "quantizer=bnnpp"] and "dataset.num_workers=7" in command  # 32/4 - 1


def test_several_nodes_run_one_torchrun_per_node_at_a_rendezvous_on_the_first(tmp_path):
    command = built_command(tmp_path, SLURM_JOB_ID="123456", SLURM_JOB_NUM_NODES="4", SLURM_JOB_NODELIST="gpu[07-10]",
                            SLURM_GPUS_ON_NODE="8", SLURM_CPUS_PER_TASK="64")
    srun, torchrun = command[:command.index("-m")], command[command.index("torch.distributed.run"):]
    assert srun[0] == "srun" and {"--nodes=4", "--ntasks=4", "--ntasks-per-node=1"} <= set(srun)
    assert torchrun[1:7] == ["--nnodes=4", "--nproc_per_node=8", "--rdzv_backend=c10d",
                             f"--rdzv_endpoint=gpu07:{20000 + 123456 % 20000}", "--rdzv_id=123456", "src/train.py"]
    assert "--standalone" not in command
    # the global batch is split over 4 x 8 processes by the engine; each loads with the node's CPUs / 8 - 1 workers
    assert "dataset.num_workers=7" in command and command[-2:] == ["model=deit_b", "quantizer=bnnpp"]
