"""torchrun / DDP set-up. Without torchrun's environment (or several SLURM tasks, which
:func:`adopt_slurm_tasks` turns into it) everything is a single process.

Effective batch: ``dataset.batch_size`` is the global batch; each of the N ranks loads
batch_size / N samples per step, so the optimizer sees the same effective batch and the
configured learning rate needs no rescaling when the number of GPUs changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from src.core.errors import UserError


def adopt_slurm_tasks() -> dict[str, str]:
    """Several SLURM tasks of one step (``srun --ntasks=N``, or hydra-submitit-launcher's
    ``tasks_per_node``/``nodes``) form one DDP run: export torchrun's variables from SLURM's job
    environment, read through submitit (rank = SLURM_PROCID, local rank = SLURM_LOCALID, world size =
    the step's tasks), with the TCP rendezvous on the allocation's first node at a port derived from the
    job id (array tasks and concurrent jobs on one node get their own). Nothing changes under torchrun
    (it sets WORLD_SIZE) or in a single-task step. Returns the variables it set."""
    tasks = int(os.environ.get("SLURM_STEP_NUM_TASKS", "1"))  # a batch script's own step is not srun's
    if "WORLD_SIZE" in os.environ or tasks <= 1 or "SLURM_PROCID" not in os.environ:
        return {}
    # SLURM only; submitit's SLURM environment (not submitit.JobEnvironment(), which needs a submitit job)
    # also serves a plain srun, and parses SLURM_JOB_NODELIST
    from submitit.slurm.slurm import SlurmJobEnvironment

    job = SlurmJobEnvironment()
    job_id = int(os.environ.get("SLURM_JOB_ID", "0"))
    found = {"RANK": str(job.global_rank), "WORLD_SIZE": str(tasks), "LOCAL_RANK": str(job.local_rank),
             "MASTER_ADDR": job.hostnames[0], "MASTER_PORT": str(MASTER_PORT_BASE + job_id % MASTER_PORT_SPAN)}
    os.environ.update(found)
    return found


MASTER_PORT_BASE, MASTER_PORT_SPAN = 20000, 20000


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str) -> DistContext:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return DistContext()
    ctx = DistContext(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return ctx


def per_rank_batch(batch_size: int, ctx: DistContext) -> int:
    if batch_size % ctx.world_size:
        raise UserError(
            f"dataset.batch_size={batch_size} (the global batch) is not divisible by the {ctx.world_size} ranks "
            f"of this torchrun; choose a multiple of {ctx.world_size}"
        )
    return batch_size // ctx.world_size


def all_reduce_sum(values: list[float], ctx: DistContext, device: torch.device) -> list[float]:
    if not ctx.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()
