"""Bad values stop a run before it writes anything (src/engine/validate.py, and the checks that need
the data or the model in src/engine/runner.py): the key is named, the exit code is 2, and the
directory of a completed run with the same name stays byte for byte as it was."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from conftest import cli_env, compose_train
from src.core.errors import UserError
from src.engine.runner import Run
from src.engine.validate import problems_of, validate

BASE = ["dataset=digits", "model=resnet20", "trainer.max_epochs=1", "trainer.max_steps_per_epoch=1",
        "trainer.progress=false", "dataset.batch_size=16", "dataset.splits.test_fraction=0.05", "run_name=done"]

# (overrides, the key the message must name). Each is refused by the config check.
BAD_VALUES = [
    (["optimizer.lr=-0.1"], "optimizer.lr"),
    (["optimizer.lr=0"], "optimizer.lr"),
    (["optimizer.lr="], "optimizer.lr"),
    (["optimizer.lr=abc"], "optimizer.lr"),
    (["optimizer.momentum=abc"], "optimizer.momentum"),
    (["optimizer.momentum=-0.5"], "optimizer.momentum"),
    (["optimizer.weight_decay=-1"], "optimizer.weight_decay"),
    (["optimizer.nesterov=maybe"], "optimizer.nesterov"),
    (["optimizer.momentum=0", "optimizer.nesterov=true"], "optimizer.nesterov"),
    (["optimizer=adam", "optimizer.betas=[0.9]"], "optimizer.betas"),
    (["+optimizer.foo=1"], "optimizer.foo"),
    (["dataset.batch_size=0"], "dataset.batch_size"),
    (["dataset.batch_size=abc"], "dataset.batch_size"),
    (["dataset.eval_batch_size=-1"], "dataset.eval_batch_size"),
    (["dataset.num_workers=-1"], "dataset.num_workers"),
    (["dataset.loader=gpu"], "dataset.loader"),
    (["dataset.prefetch_factor=0"], "dataset.prefetch_factor"),
    (["dataset.num_classes=0"], "dataset.num_classes"),
    (["dataset.splits.test_fraction=1.5"], "dataset.splits.test_fraction"),
    (["dataset.splits.test_fraction=0"], "dataset.splits.test_fraction"),
    (["dataset.splits.split_seed=-3"], "dataset.splits.split_seed"),
    (["trainer.max_epochs=abc"], "trainer.max_epochs"),
    (["trainer.max_epochs=-1"], "trainer.max_epochs"),
    (["trainer.max_epochs=2.5"], "trainer.max_epochs"),
    (["trainer.max_steps_per_epoch=0"], "trainer.max_steps_per_epoch"),
    (["trainer.grad_clip=-1"], "trainer.grad_clip"),
    (["trainer.deterministic=maybe"], "trainer.deterministic"),
    (["trainer.precision=fp8"], "trainer.precision"),
    (["trainer.accumulate_grad_batches=0"], "trainer.accumulate_grad_batches"),
    (["trainer.accumulate_grad_batches=1.5"], "trainer.accumulate_grad_batches"),
    (["trainer.checkpoint_every_n_steps=0"], "trainer.checkpoint_every_n_steps"),
    (["trainer.device=gpu"], "trainer.device"),
    (["trainer.compile=yes"], "trainer.compile"),
    (["trainer.log_every_n_steps=0"], "trainer.log_every_n_steps"),
    (["trainer.stop_after_epoch=0"], "trainer.stop_after_epoch"),
    (["trainer.eval_soft=yes"], "trainer.eval_soft"),
    (["+trainer.foo=1"], "trainer.foo"),
    (["+foo=1"], "foo"),
    (["seed=abc"], "seed"),
    (["seed=-1"], "seed"),
    (["resume=maybe"], "resume"),
    (["wait_for_lock=sometimes"], "wait_for_lock"),
    (["run_name=a/b"], "run_name"),
    (["~logger"], "logger"),
    (["+model.net.depth=3"], "model.net.depth"),
    (["model.net.shortcut=C"], "model.net.shortcut"),
    (["quantizer=bnnpp", "quantizer.scale=bogus"], "quantizer.scale"),
    (["quantizer=bnnpp", "quantizer.weight.mu_start=abc"], "quantizer.weight.mu_start"),
    (["quantizer=bnnpp", "+quantizer.weight.foo=1"], "quantizer.weight.foo"),
    (["quantizer=bnnpp", "task=bwaa", "task.accum.bits=0"], "task.accum.bits"),
    (["quantizer=bnnpp", "task=bwaa", "task.accum.bits=1"], "task.accum.bits"),
    (["quantizer=bnnpp", "task=bwaa", "task.accum.bits=eight"], "task.accum.bits"),
    (["quantizer=bnnpp", "task=bwaa", "task.accum.bits=40"], "task.accum.bits"),
    (["quantizer=bnnpp", "task=bwaa", "task.accum.penalty_weight=-1"], "task.accum.penalty_weight"),
    (["task.activation=gelu"], "task.activation"),
    (["task.keep_fp=first"], "task.keep_fp"),
    (["pipeline=ft", "pipeline.strict=maybe"], "pipeline.strict"),
    (["pipeline=ft", "pipeline.strict=true", "pipeline.partial=true"], "pipeline.strict"),
    (["scheduler=step", "scheduler.gamma=0"], "scheduler.gamma"),
    (["scheduler.T_max=0"], "scheduler.T_max"),
]
# Refused once the data or the model is built, still before anything is written.
BAD_FOR_DATA_OR_MODEL = [
    (["dataset.batch_size=5000"], "dataset.batch_size=5000 is larger than the 1,707 training images"),
    (["quantizer=bnnpp", "task.keep_fp=[nosuchlayer]"], "task.keep_fp entry 'nosuchlayer'"),
    (["dataset.num_classes=7"], "dataset.num_classes=7 but the data has 10 classes"),
    (["pipeline=ft"], "pipeline.checkpoint="),
]


def snapshot(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def completed(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("validate") / "runs" / "done"
    assert Run(compose_train(BASE), run_dir).execute()["status"] == "completed"
    return run_dir


def test_the_config_tree_passes():
    for overrides in ([], ["quantizer=bnnpp", "task=bwaa"], ["model=vit_tiny", "optimizer=adamw"], ["pipeline=ft"],
                      ["dataset=cifar10", "scheduler=step"], ["logger=wandb"], ["experiment=accum_bits"]):
        validate(compose_train(overrides))


def test_every_method_with_every_task_passes():
    """Each quantizer config's own keys (its per-task tables included) are keys the validator knows."""
    from src.core import config_tree

    for method in config_tree.methods():
        for task in config_tree.tasks():
            validate(compose_train([f"quantizer={method}", f"task={task}"]))


def test_at_least_forty_bad_values():
    assert len(BAD_VALUES) + len(BAD_FOR_DATA_OR_MODEL) >= 40


@pytest.mark.parametrize("overrides,key", BAD_VALUES, ids=[" ".join(o) for o, _ in BAD_VALUES])
def test_bad_value_is_refused_naming_its_key(overrides, key):
    with pytest.raises(UserError) as refused:
        validate(compose_train([*BASE, *overrides]))
    message = str(refused.value)
    assert f"{key}=" in message or f"{key} " in message, message
    assert "must be" in message or "valid keys" in message or "is missing" in message


@pytest.mark.slow
@pytest.mark.parametrize("overrides,key", BAD_VALUES, ids=[" ".join(o) for o, _ in BAD_VALUES])
def test_bad_value_leaves_the_completed_run_of_that_name_untouched(completed, overrides, key):
    before = snapshot(completed)
    with pytest.raises(UserError, match=key.replace(".", r"\.")):
        Run(compose_train([*BASE, *overrides]), completed).execute()
    assert snapshot(completed) == before


@pytest.mark.slow
@pytest.mark.parametrize("overrides,expected", BAD_FOR_DATA_OR_MODEL, ids=[" ".join(o) for o, _ in BAD_FOR_DATA_OR_MODEL])
def test_bad_value_for_the_data_or_model_is_refused_before_any_write(completed, tmp_path, overrides, expected):
    fresh = tmp_path / "fresh"
    with pytest.raises(UserError, match=expected.replace("[", r"\[").replace(".", r"\.")):
        Run(compose_train([*BASE, *overrides]), fresh).execute()
    assert not fresh.exists()
    before = snapshot(completed)
    with pytest.raises(UserError):  # a command with this value for the completed run's directory
        Run(compose_train([*BASE, *overrides]), completed).execute()
    assert snapshot(completed) == before


def test_unknown_keys_list_the_valid_keys_of_their_node():
    problems = problems_of({**_config(), "trainer": {**_config()["trainer"], "ema": 0.999}})
    assert any(p.startswith("trainer.ema is not a key the engine reads; valid keys of trainer: accumulate_grad_batches, "
                            "channels_last, checkpoint_every_n_steps, compile, deterministic, device") for p in problems), problems
    problems = problems_of({**_config(), "optimizer": {**_config()["optimizer"], "lrr": 0.1}})
    assert any(p.startswith("optimizer.lrr is not an argument of torch.optim.SGD; valid keys of optimizer:")
               and "momentum" in p for p in problems), problems


def test_every_problem_is_listed_at_once():
    with pytest.raises(UserError) as refused:
        validate(compose_train(["optimizer.lr=-1", "dataset.batch_size=0", "+trainer.foo=1"]))
    assert all(k in str(refused.value) for k in ("optimizer.lr=-1", "dataset.batch_size=0", "trainer.foo"))


@pytest.mark.slow
def test_partial_initial_weights_are_refused_unless_asked_for(tmp_path):
    """A ResNet-32 from a ResNet-20's weights: most tensors would stay at their initialisation."""
    small = instantiate(compose_train(["model=resnet20"]).model.net)
    weights = tmp_path / "resnet20.pth"
    torch.save(small.state_dict(), weights)
    ft = [*BASE, "model=resnet32", "pipeline=ft", f"pipeline.checkpoint={weights}", "trainer.max_epochs=0"]
    with pytest.raises(UserError, match=r"do not fit this model: \d+ of \d+ tensors match \(only fc may differ\); "
                                        r"missing or of another shape: \d+ \(layers\..*pipeline\.partial=true"):
        Run(compose_train(ft), tmp_path / "refused").execute()
    assert not (tmp_path / "refused").exists()
    run = Run(compose_train([*ft, "pipeline.partial=true"]), tmp_path / "partial")
    results = run.execute()
    assert results["status"] == "completed"
    big = run.model.state_dict()
    fitting = [k for k, v in small.state_dict().items() if k in big and big[k].shape == v.shape]
    assert results["init"]["loaded"] == len(fitting) < len(big)
    assert len(results["init"]["missing"]) == len(big) - len(fitting)


def _config() -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(compose_train([]), resolve=True)


# -------------------------------------------------------------------------- through the CLI
@pytest.mark.slow
def test_cli_refusals_exit_2_name_the_key_and_touch_nothing(tmp_path):
    from engine.zygote import Zygote

    with Zygote(cli_env(tmp_path / "outputs"), tmp_path / "logs") as z:
        first = z.run(BASE)
        assert first.returncode == 0, first.stderr[-2000:]
        run_dir = tmp_path / "outputs" / "runs" / "done"
        before = snapshot(run_dir)
        for overrides, key in ((["optimizer.lr=-0.1"], "optimizer.lr=-0.1"), (["+trainer.foo=1"], "trainer.foo"),
                               (["trainer.max_epochs=abc"], "trainer.max_epochs='abc'"),
                               (["dataset.splits.test_fraction=1.5"], "dataset.splits.test_fraction=1.5"),
                               (["quantizer=bnnpp", "task.keep_fp=[nosuchlayer]", "run_name=fresh"], "task.keep_fp")):
            done = z.run([*BASE, *overrides])
            assert done.returncode == 2, (overrides, done.stderr[-2000:])
            assert key in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]
            assert snapshot(run_dir) == before
        assert not (tmp_path / "outputs" / "runs" / "fresh").exists()


@pytest.mark.slow
@pytest.mark.parametrize("scale", ["smoke", "paper"])
def test_the_jobs_of_every_reproduce_sweep_pass(tmp_path, scale):
    """The configs scripts/reproduce.py writes for its jobs hold only keys and values the engine takes."""
    from hydra import compose, initialize_config_dir

    from conftest import CONFIGS
    from src.core.errors import UserError as PlanError
    from src.sweeps import launch, spec, spec_files

    for table in spec_files.list_specs():
        try:
            plan = spec.plan(table, scale, tmp_path)
        except PlanError:
            continue  # a table this branch cannot plan is test_reproduce's business
        job_dir = launch.write_job_configs(plan, plan.jobs)
        with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
            for job in plan.jobs[::max(1, len(plan.jobs) // 2)]:
                validate(compose(config_name="train", overrides=[f"hydra.searchpath=[file://{job_dir}]",
                                                                 f"experiment={job.run_name}"]))
