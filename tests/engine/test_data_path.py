"""dataset.loader: the on-device path draws the DataLoader path's indices in its order and shard
(so without augmentation both give the same batches, bit for bit), its augmentation is a function of
(seed, epoch, rank), ``auto`` picks it for CIFAR on a GPU only, and a resumed run is bit-identical."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from conftest import compose_train, read_results, run_cli
from src.core.errors import UserError
from src.data.cifar import build_cifar
from src.engine.data_path import DataPath, augment_seed, resolve_loader
from src.engine.distributed import DistContext
from src.engine.runner import Run
from src.sweeps.smoke_data import write_cifar10

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root)  # 20 training and 16 test images in the official pickle format
    return root


def _path(splits, loader, ctx=DistContext(), batch=3, drop_last=False, device=CPU, workers=0):
    return DataPath(splits, loader, batch, 5, workers, 3, ctx, 7, device, drop_last=drop_last)


def _same(a, b) -> bool:
    a, b = list(a), list(b)
    return len(a) == len(b) and all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))


@pytest.mark.parametrize("ctx", [DistContext(), DistContext(rank=1, world_size=3)], ids=["single", "rank1of3"])
@pytest.mark.parametrize("subset, drop_last", [(None, False), (14, True)])
def test_without_augmentation_both_paths_give_the_same_batches(cifar_root, ctx, subset, drop_last):
    splits = build_cifar(root=str(cifar_root), augment=False, download=False, train_subset=subset, test_subset=subset)
    device, loader = _path(splits, "device", ctx, drop_last=drop_last), _path(splits, "dataloader", ctx, drop_last=drop_last)
    assert (device.kind, loader.kind) == ("device", "dataloader")
    for epoch in (0, 3):
        assert len(device.train(epoch)) == len(loader.train(epoch))
        assert _same(device.train(epoch), loader.train(epoch))
    assert not _same(device.train(0), device.train(1))  # a new order each epoch
    assert _same(device.test(), loader.test())


def test_augmented_epochs_depend_on_seed_epoch_and_rank_only(cifar_root):
    splits = build_cifar(root=str(cifar_root), augment=True, download=False)
    path = _path(splits, "device")
    assert _same(path.train(2), _path(splits, "device").train(2))  # a resumed run draws the same epoch
    plain = _path(build_cifar(root=str(cifar_root), augment=False, download=False), "device").train(2)
    assert [y.tolist() for _, y in path.train(2)] == [y.tolist() for _, y in plain]  # same order
    assert not _same(path.train(2), plain)                                            # other pixels
    assert len({augment_seed(7, e, r) for e in range(3) for r in range(3)}) == 9
    assert _same(path.test(), _path(build_cifar(root=str(cifar_root), augment=False, download=False),
                                    "dataloader").test())  # evaluation is never augmented


def test_auto_is_the_device_path_for_cifar_on_a_gpu_only(cifar_root):
    cifar = build_cifar(root=str(cifar_root), download=False)
    resized = build_cifar(root=str(cifar_root), download=False, image_size=48)
    assert cifar.train_tensors is not None and resized.train_tensors is None
    cuda = torch.device("cuda")
    assert resolve_loader("auto", cifar, cuda) == "device" and resolve_loader("auto", cifar, CPU) == "dataloader"
    assert resolve_loader("auto", resized, cuda) == "dataloader"
    assert resolve_loader("device", cifar, CPU) == "device" and resolve_loader("dataloader", cifar, cuda) == "dataloader"
    with pytest.raises(UserError, match=r"dataset.loader=device needs .* CIFAR-10/100 at 32x32.*dataset.loader=dataloader"):
        resolve_loader("device", resized, CPU)
    with pytest.raises(UserError, match=r"dataset.loader='gpu' is not one of auto, device, dataloader"):
        resolve_loader("gpu", cifar, CPU)


def test_a_timm_recipe_keeps_cifar_on_the_dataloader_path(cifar_root):
    cfg = compose_train(["dataset=cifar10", "augment=deit", "model=vit_tiny", f"dataset.splits.root={cifar_root}",
                         "dataset.splits.download=false", "dataset.splits.image_size=32"])
    splits = instantiate(cfg.dataset.splits)
    assert splits.train_tensors is None and resolve_loader("auto", splits, torch.device("cuda")) == "dataloader"


def test_the_dataloader_path_prefetches_pins_on_cuda_and_keeps_its_evaluation_workers(cifar_root):
    splits = build_cifar(root=str(cifar_root), download=False)
    path = _path(splits, "dataloader", device=torch.device("cuda"), workers=2)  # builds loaders, starts nothing
    train = path.train(0)
    assert (train.num_workers, train.prefetch_factor, train.pin_memory) == (2, 3, True)
    assert path.test() is path.test() and path.test().persistent_workers and path.test().pin_memory
    assert not _path(splits, "dataloader").train(0).pin_memory


@pytest.mark.slow
def test_a_device_path_run_resumes_to_identical_result(output_root, cifar_root):
    command = ["dataset=cifar10", f"dataset.splits.root={cifar_root}", "dataset.splits.download=false",
               "dataset.loader=device", "dataset.num_workers=0", "dataset.batch_size=8", "dataset.eval_batch_size=16",
               "model=resnet20", "trainer.max_epochs=2", "trainer.progress=false", "optimizer.lr=0.05"]
    straight = run_cli(command + ["run_name=straight"], output_root)
    assert straight.returncode == 0, straight.stderr[-2000:]
    assert read_results(output_root / "runs" / "straight")["data_path"] == "device"
    assert run_cli(command + ["run_name=resumed", "trainer.stop_after_epoch=1"], output_root).returncode == 0
    again = run_cli(command + ["run_name=resumed"], output_root)
    assert again.returncode == 0, again.stderr[-2000:]
    a = torch.load(output_root / "runs" / "straight" / "checkpoints" / "last.pt", weights_only=False)
    b = torch.load(output_root / "runs" / "resumed" / "checkpoints" / "last.pt", weights_only=False)
    assert a["global_step"] == b["global_step"] == 6  # 20 images in batches of 8: 3 steps an epoch
    for key, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][key]), key


@pytest.mark.slow
def test_a_run_asking_for_the_device_path_on_other_data_is_refused_before_any_write(tmp_path):
    cfg = compose_train(["dataset=digits", "model=resnet20", "trainer.max_epochs=1", "dataset.loader=device"])
    with pytest.raises(UserError, match="dataset.loader=device needs"):
        Run(cfg, tmp_path / "run").execute()
    assert not (tmp_path / "run").exists()
