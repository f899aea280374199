"""The cell product: printed cells and the runs that fill them, the FP sharing rules, FT starts,
literature columns, and block errors naming the valid options."""

from __future__ import annotations

import pytest

from src.core.config_tree import pipelines, tasks
from src.core.errors import UserError
from src.sweeps import cells, spec_files


def expand(table: str, scale: str = "paper", strict: bool = True):
    return cells.expand(spec_files.load_spec(table), scale, spec_files.load_scale(scale), strict)


def test_fp_cells_share_one_network_and_ft_runs_start_from_it():
    printed, runs = expand("pcpp/table2")
    ft_fp = next(c for c in printed if c.row == ("cifar10", "resnet20", "ft", "bwa", "") and c.method == "fp")
    assert ft_fp.source == ("cifar10", "resnet20", "e2e", "bw", "fp", "")     # the E2E FP network
    assert {r.cell["task"] for r in runs if r.cell["method"] == "fp"} == {"bw"}
    ft = [r for r in runs if r.cell["pipeline"] == "ft"]
    assert ft and all(r.parent is not None and not r.pretrained for r in ft)
    parents = {(r.parent.cell["pipeline"], r.parent.cell["method"], r.parent.cell["seed"]) for r in ft}
    assert parents == {("e2e", "fp", 0)}
    assert all(r.parent.cell["dataset"] == r.cell["dataset"] and r.parent.block == r.block for r in ft)
    assert list(cells.CELL_KEYS) == list(runs[0].cell)


def test_pretrained_ft_runs_have_no_parent_and_their_own_fp_run():
    printed, runs = expand("pcpp/table3")
    ft = [r for r in runs if r.cell["pipeline"] == "ft"]
    assert ft and all(r.pretrained and r.parent is None for r in ft)
    assert any(r.cell["method"] == "fp" for r in ft)                        # FP fine-tuned under FT itself
    # the smoke scale has no pretrained weights offline: FT starts from an FP run there
    _, smoke = expand("pcpp/table3", "smoke")
    assert all(r.parent is not None and not r.pretrained for r in smoke if r.cell["pipeline"] == "ft")


@pytest.mark.parametrize("table", ["pcpp/table3", "pcpp/table4", "pcpp/table6", "pcpp/table8"])
def test_transformer_e2e_students_distil_from_the_pretrained_fp_model(table):
    """PC++ §4.3: all four protocols; under E2E (4) distils from the released FP model, (3) stays off."""
    _, runs = expand(table)
    e2e = [r for r in runs if r.cell["pipeline"] == "e2e"]
    assert e2e and all(r.kd == (r.cell["method"] != "fp") and r.parent is None for r in e2e)
    assert all(r.pretrained for r in e2e if r.kd)
    # offline smoke runs have no released weights: the teacher is the table's own E2E FP run
    _, smoke = expand(table, "smoke")
    students = [r for r in smoke if r.kd]
    assert students and all(r.parent.cell["method"] == "fp" and r.parent.cell["pipeline"] == "e2e"
                            and not r.pretrained for r in students)


def test_literature_columns_are_printed_but_never_run():
    spec = spec_files.load_spec("conq/table2")
    printed, runs = cells.expand(spec, "paper", spec_files.load_scale("paper"))
    literature = set(spec["literature"])
    assert {c.method for c in printed if c.source is None} == literature
    assert not literature & {r.cell["method"] for r in runs}
    assert [c.method for c in printed][:4] == ["fp", "dorefa", "lqnets", "irnet"]   # the paper's column order


def test_seeds_per_pipeline_and_method():
    _, runs = expand("conq/table1")
    seeds = {(r.cell["model"], r.cell["method"]): r.cell["seed"] for r in runs}
    assert seeds[("resnet56", "conq")] == 9 and seeds[("resnet56", "proxquant")] == 3 and seeds[("resnet56", "fp")] == 0
    _, mini = expand("conq/table1", "mini")
    assert {r.cell["seed"] for r in mini} == {0}


BLOCK = {"datasets": ["cifar10"], "models": ["resnet20"], "pipelines": ["e2e"], "tasks": ["bw"], "methods": ["fp"]}


@pytest.mark.parametrize("change, message", [
    ({"pipelines": ["scratch"]}, f"t/x: pipeline 'scratch' is not one of {', '.join(pipelines())} (configs/pipeline/"),
    ({"tasks": ["bwaaa"]}, f"t/x: task 'bwaaa' is not one of {', '.join(tasks())} (configs/task/"),
    ({"methods": []}, "t/x: grid[0] needs a non-empty `methods` list"),
    ({"models": "resnet20"}, "t/x grid[0].models must be a list, got 'resnet20'"),
    ({"ft_init": "imagenet"}, "t/x: ft_init 'imagenet' is not one of checkpoint, pretrained"),
    ({"kd_teacher": "teacher.pt"}, "t/x: grid[0].kd_teacher 'teacher.pt' must be one of pretrained, in a block with "
                                   "pipelines: [e2e]"),
    ({"kd_teacher": "pretrained", "pipelines": ["ft"]}, "t/x: grid[0].kd_teacher 'pretrained' must be one of"),
    ({"variants": {"bits6": None}}, "t/x: variant 'bits6' has no config override yet (null in configs/sweep/t/x.yaml)"),
])
def test_bad_blocks_are_user_errors(change, message):
    spec = {"paper": "t", "table": "x", "grid": [{**BLOCK, **change}]}
    with pytest.raises(UserError) as info:
        cells.expand(spec, "paper", spec_files.load_scale("paper"))
    assert message in str(info.value)


def test_unwired_protocols_pass_only_when_not_strict():
    spec = {"paper": "t", "table": "x", "protocols": {"kd": {0: None, 1: ["model.protocol.kd=true"]}},
            "grid": [{**BLOCK, "protocol_variants": ["kd=0", "kd=1"]}]}
    with pytest.raises(UserError, match=r"protocol kd=0 has no config override yet"):
        cells.expand(spec, "paper", spec_files.load_scale("paper"))
    spec["grid"][0]["methods"] = ["fp", "bnnpp"]
    _, runs = cells.expand(spec, "paper", spec_files.load_scale("paper"), strict=False)
    assert [(r.cell["method"], r.cell["variant"], r.variant_overrides) for r in runs] == [
        ("fp", "", ()), ("bnnpp", "kd=0", ()), ("fp", "", ()), ("bnnpp", "kd=1", ("model.protocol.kd=true",))]
