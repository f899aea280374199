"""The GPU check (`make gpu-check`, marker gpu; skipped without CUDA): BWAA's accumulation exact under
bf16 and fp16 on CUDA, compiled training equal to eager there, no host sync inside the step, the
on-device CIFAR pipeline, DDP over NCCL (one spawned rank)."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
from hydra.utils import instantiate

from accum.reference import conv2d_reference, linear_reference, signs
from engine.compile_cases import build, compare
from src.accum import WrapAccumulator, accumulate_conv2d, accumulate_linear
from src.data.on_device import DeviceBatches, ImageTensors
from src.engine.build import build_update_rule
from src.engine.compile import compile_model
from src.engine.data_path import DataPath, resolve_loader
from src.engine.distributed import DistContext
from src.engine.loop import StepSettings, TrainStep, train_epoch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

CUDA = torch.device("cuda")
HALF = [torch.bfloat16, torch.float16]


@pytest.mark.parametrize("dtype", HALF, ids=["bf16", "fp16"])
def test_bwaa_accumulation_is_exact_under_half_precision_autocast_on_cuda(dtype):
    """Sums of ±1 products beyond 256 (bf16) and 2048 (fp16) are not half-precision numbers: the
    accumulation runs in float32 with autocast off and equals an int8 register's."""
    rng = np.random.default_rng(7)
    x, w = signs(rng, (3, 5000), 0.97), signs(rng, (4, 5000), 0.97)
    w[::2] *= -1
    xc, wc = signs(rng, (1, 321, 4, 4), 0.98), signs(rng, (2, 321, 3, 3), 0.98)
    wc[1] *= -1
    accumulator = WrapAccumulator(bits=8).to(CUDA).eval()
    with torch.autocast(device_type="cuda", dtype=dtype):
        naive = F.linear(torch.tensor(x, dtype=dtype, device=CUDA), torch.tensor(w, dtype=dtype, device=CUDA))
        linear = accumulator(accumulate_linear(torch.tensor(x, dtype=dtype, device=CUDA),
                                               torch.tensor(w, dtype=torch.float32, device=CUDA)))
        conv = accumulator(accumulate_conv2d(torch.tensor(xc, dtype=dtype, device=CUDA),
                                             torch.tensor(wc, dtype=dtype, device=CUDA), padding=1))
    assert not torch.equal(naive.float().cpu(), torch.tensor(x @ w.T, dtype=torch.float32))  # half is not exact
    assert linear.dtype == conv.dtype == torch.float32
    np.testing.assert_array_equal(linear.cpu().numpy().astype(np.int64), linear_reference(x, w, 8))
    np.testing.assert_array_equal(conv.cpu().numpy().astype(np.int64), conv2d_reference(xc, wc, 8, padding=1))


# every kind of pair, normalisation, scale, update rule and the accumulator, within a couple of minutes
CUDA_CASES = [("fp", "bw"), ("bnnpp", "bw"), ("bnnpp", "bwa"), ("bnnpp", "bwaa"), ("react", "bwaa"), ("rbnn", "bwa"),
              ("pq", "bwa"), ("proxgen", "bw"), ("rpc", "bw"), ("ede", "bwaa")]


@pytest.fixture
def full_fp32():
    """No TF32 for the comparison: the compiled graph may lay out a convolution otherwise (channels
    last) and cuDNN then picks another algorithm, whose TF32 rounding differs at 1e-3."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


@pytest.mark.parametrize("method,task", CUDA_CASES, ids=[f"{m}:{t}" for m, t in CUDA_CASES])
def test_compiled_training_equals_eager_on_cuda(method, task, full_fp32):
    compare(method, task, CUDA)


class SyncGuarded:
    """The batches, with torch's CUDA sync check raising from the second step until the last one's
    batch is drawn (the first step and the epoch's final read point sync by design)."""

    def __init__(self, batches):
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        n = len(self.batches)
        try:
            for i, batch in enumerate(self.batches):
                torch.cuda.set_sync_debug_mode("error" if 0 < i < n - 1 else "default")
                yield batch
        finally:
            torch.cuda.set_sync_debug_mode("default")


def _device_batches(n_batches: int, batch: int = 16) -> DeviceBatches:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n_batches * batch, 3, 8, 8), dtype=torch.uint8, generator=g)
    data = ImageTensors(images, torch.randint(0, 4, (n_batches * batch,), generator=g), (0.5,) * 3, (0.25,) * 3,
                        augment=True).to(CUDA)
    return DeviceBatches(data, list(torch.arange(n_batches * batch).split(batch)), seed=1)


@pytest.mark.parametrize("mode", ["eager", "compiled"])
@pytest.mark.parametrize("method,task,precision", [("fp", "bw", "fp32"), ("bnnpp", "bwaa", "bf16"), ("pq", "bwa", "fp32"),
                                                   ("proxgen", "bw", "fp32")])
def test_no_host_sync_inside_the_steps_between_read_points(method, task, precision, mode):
    """fp32 and bf16 (fp16's GradScaler reads its inf check on the host at every step, by design)."""
    net, cfg = build(method, task, CUDA)
    if mode == "compiled":
        compile_model(net)
    optimizer = instantiate(cfg.optimizer)(net.parameters())
    settings = StepSettings(device=CUDA, precision=precision, progress=False, log_every_n_steps=1000)
    step = TrainStep(net, optimizer, settings, total_steps=12, update_rule=build_update_rule(cfg.quantizer, net, optimizer))
    stats = train_epoch(step, SyncGuarded(_device_batches(6)), 0, "sync")
    assert stats["steps"] == 6 and np.isfinite(stats["train_loss"])


def test_the_on_device_pipeline_is_the_default_for_cifar_on_cuda(tmp_path):
    from src.data.cifar import build_cifar
    from src.sweeps.smoke_data import write_cifar10

    write_cifar10(tmp_path, per_batch=40, test_images=30)
    splits = build_cifar(root=str(tmp_path), download=False, augment=True)
    assert resolve_loader("auto", splits, CUDA) == "device"
    path = DataPath(splits, "auto", 32, 16, 0, None, DistContext(), 3, CUDA)
    epoch = list(path.train(0))
    assert len(epoch) == 7 and all(x.device.type == "cuda" and x.shape[1:] == (3, 32, 32) for x, _ in epoch)
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(epoch, path.train(0)))  # a function of (seed, epoch)
    assert not all(torch.equal(a, b) for (a, _), (b, _) in zip(epoch, path.train(1)))
    assert sum(len(y) for _, y in path.test()) == 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_rank(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("nccl", rank=rank, world_size=1, device_id=torch.device("cuda", rank))
    try:
        net, cfg = build("bnnpp", "bwa", CUDA)
        compile_model(net)
        ddp = nn.parallel.DistributedDataParallel(net, device_ids=[0])
        optimizer = instantiate(cfg.optimizer)(net.parameters())
        step = TrainStep(ddp, optimizer, StepSettings(device=CUDA, progress=False), total_steps=8,
                         update_rule=build_update_rule(cfg.quantizer, net, optimizer))
        train_epoch(step, _device_batches(4), 0, "ddp")
        total = torch.ones((), device=CUDA)
        dist.all_reduce(total)
        torch.save({"all_reduce": float(total), "weights": {k: v.cpu() for k, v in net.state_dict().items()}}, out)
    finally:
        dist.destroy_process_group()


def test_ddp_over_nccl_trains_as_a_single_process(tmp_path):
    """One spawned rank: DDP (compiled inside, as the runner does) takes the same steps as no DDP."""
    mp.spawn(_ddp_rank, args=(_free_port(), str(tmp_path / "rank0.pt")), nprocs=1, join=True)
    results = torch.load(tmp_path / "rank0.pt")
    assert results["all_reduce"] == 1.0
    net, cfg = build("bnnpp", "bwa", CUDA)
    compile_model(net)
    optimizer = instantiate(cfg.optimizer)(net.parameters())
    step = TrainStep(net, optimizer, StepSettings(device=CUDA, progress=False), total_steps=8,
                     update_rule=build_update_rule(cfg.quantizer, net, optimizer))
    train_epoch(step, _device_batches(4), 0, "single")
    for key, value in net.state_dict().items():
        torch.testing.assert_close(results["weights"][key], value.cpu(), rtol=1e-5, atol=1e-6, msg=key)
