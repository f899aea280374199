"""results/paper/*.csv: the published numbers of PC++ and ConQ as data (schema, counts, values)."""

from __future__ import annotations

import csv
import dataclasses
from collections import Counter, defaultdict

import pytest

from src.reporting.paper import (
    COLUMNS,
    PAPER_DIR,
    PublishedCell,
    TABLES,
    cell_key,
    load_published,
    parse_protocols,
    table_path,
    validate,
)

# Cells per table, counted from the papers (8 methods = FP, PQ, rPC, BC, PC, BNN, BNN+, BNN++).
EXPECTED_COUNTS = {
    # PC++ Table 2: 2 datasets (CIFAR-10/ResNet-20, ImageNet/ResNet-50) x (FT: 3 tasks + E2E: 2 tasks;
    # the printed E2E BWAA rows repeat E2E BWA and are left out) x 8 methods = 2 x 5 x 8 = 80
    "pcpp/table2": 80,
    # PC++ Table 3: 4 models (ViT-B, DeiT-T/S/B) x 3 datasets x 8 methods, BW only = 96
    "pcpp/table3": 96,
    # PC++ Table 4: DeiT-T, (CIFAR-10: 3 tasks + CIFAR-100: 3 tasks + ImageNet: 2 tasks) x 8 methods = 64
    "pcpp/table4": 64,
    # PC++ Table 5: 2 methods (PC, BNN++) x 5 protocol settings = 10
    "pcpp/table5": 10,
    # PC++ Table 6: 2 models (DeiT-T/S) x 3 datasets x 8 methods (FP, Bi-Real, R-BNN, Poly+, EDE, EDE+,
    # ReAct, BNN++) = 48
    "pcpp/table6": 48,
    # PC++ Table 7: 2 datasets x 2 tasks (BW, BWA; E2E) x 8 methods x 2 statistics (mean, ±) = 64
    "pcpp/table7": 64,
    # PC++ Table 8: 4 (model, task) rows (DeiT-T BW, DeiT-T BWA, DeiT-S BW, DeiT-B BW) x 8 methods
    # x 2 statistics = 64
    "pcpp/table8": 64,
    # PC++ Appendix E: 2 models (Swin-T, NesT-T) x 2 methods (BNN++, BiViT) = 4
    "pcpp/appE": 4,
    # ConQ Table 1: 4 ResNets (20/32/44/56) x 4 columns (Baseline, ProxQuant, ProxGen, ConQ) = 16
    "conq/table1": 16,
    # ConQ Table 2: ResNet20 group 8 rows + VGG-Small group 10 rows + ResNet18 group 7 rows = 25
    "conq/table2": 25,
}

# (table, dataset, model, pipeline, task, method, statistic, value[, protocols]) read off the papers.
SPOT = [
    ("pcpp/table2", "cifar10", "resnet20", "ft", "bw", "bnnpp", "acc", 90.40),
    ("pcpp/table2", "imagenet", "resnet50", "ft", "bwaa", "bnnpp", "acc", 63.02),
    ("pcpp/table2", "cifar10", "resnet20", "e2e", "bwa", "pq", "acc", 81.51),
    ("pcpp/table2", "imagenet", "resnet50", "e2e", "bw", "rpc", "acc", 66.39),
    ("pcpp/table3", "cifar100", "vit_b16", "ft", "bw", "bnnpp", "acc", 79.22),
    ("pcpp/table3", "imagenet", "vit_b16", "ft", "bw", "rpc", "acc", 55.33),
    ("pcpp/table3", "cifar100", "deit_b", "ft", "bw", "pc", "acc", 78.55),
    ("pcpp/table3", "imagenet", "deit_s", "e2e", "bw", "pq", "acc", 69.87),
    ("pcpp/table4", "cifar10", "deit_t", "ft", "bwaa", "bnnpp", "acc", 85.31),
    ("pcpp/table4", "cifar100", "deit_t", "ft", "bwa", "rpc", "acc", 54.98),
    ("pcpp/table4", "imagenet", "deit_t", "e2e", "bwa", "bnn", "acc", 63.75),
    ("pcpp/table5", "cifar10", "vit_b16", "ft", "bw", "pc", "acc", 0.10, (0, 0, 0, 0)),
    ("pcpp/table5", "cifar10", "vit_b16", "ft", "bw", "bnnpp", "acc", 77.22, (1, 1, 0, 0)),
    ("pcpp/table5", "cifar10", "vit_b16", "ft", "bw", "pc", "acc", 90.13, (1, 1, 1, 1)),
    ("pcpp/table6", "cifar10", "deit_t", "ft", "bw", "bireal_appf", "acc", 84.11),
    ("pcpp/table6", "imagenet", "deit_s", "e2e", "bw", "edep", "acc", 72.99),
    ("pcpp/table6", "cifar100", "deit_s", "ft", "bw", "react_appf", "acc", 61.09),
    ("pcpp/table7", "cifar10", "resnet20", "e2e", "bw", "bnnpp", "acc", 90.03),
    ("pcpp/table7", "cifar10", "resnet20", "e2e", "bw", "bnnpp", "std", 0.06),
    ("pcpp/table7", "imagenet", "resnet50", "e2e", "bwa", "pc", "std", 0.17),
    ("pcpp/table7", "imagenet", "resnet50", "e2e", "bw", "bnnp", "std", 0.26),
    ("pcpp/table8", "imagenet", "deit_t", "e2e", "bwa", "bnnpp", "std", 0.03),
    ("pcpp/table8", "imagenet", "deit_b", "e2e", "bw", "bnn", "acc", 75.60),
    ("pcpp/table8", "imagenet", "deit_s", "e2e", "bw", "pq", "std", 0.26),
    ("pcpp/appE", "imagenet", "swin_t", "ft", "bwa", "bnnpp", "acc", 71.3),
    ("pcpp/appE", "imagenet", "swin_t", "ft", "bwa", "bivit", "acc", 70.8),
    ("pcpp/appE", "imagenet", "nest_t", "ft", "bwa", "bnnpp", "acc", 69.3),
    ("pcpp/appE", "imagenet", "nest_t", "ft", "bwa", "bivit", "acc", 68.7),
    ("conq/table1", "cifar10", "resnet20", "ft", "bw", "conq", "acc", 91.41),
    ("conq/table1", "cifar10", "resnet56", "ft", "bw", "fp", "acc", 93.46),
    ("conq/table1", "cifar10", "resnet32", "ft", "bw", "proxgen", "acc", 91.78),
    ("conq/table1", "cifar10", "resnet44", "ft", "bw", "proxquant", "acc", 92.05),
    ("conq/table2", "cifar10", "resnet20", "ft", "bw", "dsq", "acc", 90.2),
    ("conq/table2", "cifar10", "vgg_small", "ft", "bw", "md_tanh_s", "acc", 91.4),
    ("conq/table2", "cifar10", "vgg_small", "ft", "bw", "conq", "acc", 92.2),
    ("conq/table2", "cifar10", "resnet18", "ft", "bw", "md_softmax_s", "acc", 93.1),
    ("conq/table2", "cifar10", "resnet18", "ft", "bw", "fp", "acc", 94.8),
]

# Cells that two tables of the same paper print with different values (documented in the notes
# and the README); any other disagreement is a transcription error.
KNOWN_DISAGREEMENTS = {
    ("pcpp", ("cifar10", "deit_t", "ft", "bw", "fp", "acc")),      # T3 94.86, T4/T6 94.85
    ("pcpp", ("imagenet", "deit_t", "e2e", "bw", "bc", "acc")),    # T3/T8 63.22, T4 63.23
    ("pcpp", ("cifar10", "deit_s", "ft", "bw", "fp", "acc")),      # T3 95.10, T6 95.09
    ("pcpp", ("imagenet", "deit_s", "e2e", "bw", "fp", "acc")),    # T3/T8 79.91, T6 79.90
    ("conq", ("cifar10", "resnet20", "ft", "bw", "conq", "acc")),  # T1 91.41, T2 91.4
}


@pytest.fixture(scope="module")
def cells():
    return load_published()


@pytest.fixture(scope="module")
def by_table(cells):
    out = defaultdict(list)
    for c in cells:
        out[c.table_id].append(c)
    return out


def test_every_table_has_its_file_and_nothing_else():
    assert set(EXPECTED_COUNTS) == set(TABLES)
    on_disk = {p.name for p in PAPER_DIR.glob("*.csv")}
    assert on_disk == {table_path(t).name for t in TABLES}


@pytest.mark.parametrize("table", TABLES)
def test_file_schema(table):
    with open(table_path(table), newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == COLUMNS
    assert all(len(r) == len(COLUMNS) for r in rows[1:])
    paper, name = table.split("/")
    assert {(r[0], r[1]) for r in rows[1:]} == {(paper, name)}
    cells = load_published(table)  # validates enums, duplicates, range
    assert all(0.0 <= c.value <= 100.0 for c in cells)
    assert len({cell_key(c) for c in cells}) == len(cells)


@pytest.mark.parametrize("table", TABLES)
def test_cell_count(table, by_table):
    assert len(by_table[table]) == EXPECTED_COUNTS[table]


def test_total(cells):
    assert len(cells) == sum(EXPECTED_COUNTS.values()) == 471


def test_error_bar_tables_pair_every_mean_with_its_std(by_table):
    for table in ("pcpp/table7", "pcpp/table8"):
        stats = Counter(c.statistic for c in by_table[table])
        assert stats == {"acc": 32, "std": 32}
        accs = {cell_key(c)[:-1] for c in by_table[table] if c.statistic == "acc"}
        stds = {cell_key(c)[:-1] for c in by_table[table] if c.statistic == "std"}
        assert accs == stds
    others = [c for t, cs in by_table.items() if t not in ("pcpp/table7", "pcpp/table8") for c in cs]
    assert all(c.statistic == "acc" for c in others)


@pytest.mark.parametrize("spot", SPOT, ids=lambda s: f"{s[0]}-{s[2]}-{s[4]}-{s[5]}-{s[6]}")
def test_spot_values(spot, by_table):
    table, *key, value = spot[:8]
    key = tuple(key)
    if len(spot) == 9:
        key += (tuple(sorted(zip(("scaling", "normalization", "pretrain", "kd"), map(bool, spot[8])))),)
    index = {cell_key(c): c for c in by_table[table]}
    assert index[key].value == pytest.approx(value, abs=1e-9)


def test_spot_checks_cover_every_table():
    assert {s[0] for s in SPOT} == set(TABLES)


def test_duplicated_and_omitted_rows_are_left_out(by_table):
    # Table 2 / Table 4: no E2E BWAA (the caption omits it; Table 2 prints a copy of E2E BWA).
    for table in ("pcpp/table2", "pcpp/table4"):
        assert not [c for c in by_table[table] if c.pipeline == "e2e" and c.task == "bwaa"]
    # Table 2 keeps E2E BWA with its own values.
    t2 = {cell_key(c): c.value for c in by_table["pcpp/table2"]}
    assert t2[("imagenet", "resnet50", "e2e", "bwa", "bnnpp", "acc")] == 66.08


def test_pipelines_follow_the_papers(by_table):
    for c in by_table["pcpp/table3"] + by_table["pcpp/table4"] + by_table["pcpp/table6"]:
        expected = "e2e" if (c.dataset == "imagenet" and c.model.startswith("deit")) else "ft"
        assert c.pipeline == expected, c
    assert {c.model for c in by_table["pcpp/table2"] if c.dataset == "cifar10"} == {"resnet20"}
    assert {c.model for c in by_table["pcpp/table2"] if c.dataset == "imagenet"} == {"resnet50"}
    assert {(c.dataset, c.model, c.pipeline) for c in by_table["pcpp/table5"]} == {("cifar10", "vit_b16", "ft")}
    for c in by_table["conq/table1"] + by_table["conq/table2"]:
        assert (c.dataset, c.pipeline, c.task) == ("cifar10", "ft", "bw")


def test_run_counts_are_noted(cells):
    for c in cells:
        if c.paper == "pcpp" and c.pipeline == "e2e":
            assert "mean of 5 runs" in c.note, c
        if c.method == "conq":
            assert "mean of 10 runs" in c.note, c


def test_table5_protocols(by_table):
    cells = by_table["pcpp/table5"]
    assert all(set(c.protocols) == {"scaling", "normalization", "pretrain", "kd"} for c in cells)
    # The paper adds the protocols one at a time, in this order, for each method.
    for method in ("pc", "bnnpp"):
        rows = [c for c in cells if c.method == method]
        assert [sum(c.protocols.values()) for c in rows] == [0, 1, 2, 3, 4]
        assert [c.value for c in rows] == sorted(c.value for c in rows)  # each protocol helps


def test_tables_of_one_paper_agree_except_the_documented_cells(cells):
    values = defaultdict(set)
    for c in cells:
        values[(c.paper, cell_key(c))].add(c.value)
    disagree = {k for k, v in values.items() if len(v) > 1}
    assert disagree == KNOWN_DISAGREEMENTS
    # Table 7 repeats Table 2's E2E means, Table 8 repeats Table 3's E2E (DeiT ImageNet) means.
    t2 = {cell_key(c): c.value for c in cells if c.table_id == "pcpp/table2"}
    t7 = [c for c in cells if c.table_id == "pcpp/table7" and c.statistic == "acc"]
    assert all(t2[cell_key(c)] == c.value for c in t7)


def test_literature_rows_are_marked(cells):
    lit = [c for c in cells if c.method in ("bivit", "dorefa", "lqnets", "irnet", "dsq", "binaryconnect_paper",
                                           "lab", "bwn", "bayesbinn", "md_softmax", "md_softmax_s", "md_tanh_s", "pmf")]
    assert len(lit) == 2 + 4 + 7 + 4  # appE: BiViT x2; ConQ Table 2: ResNet20 4, VGG-Small 7, ResNet18 4
    assert all("literature baseline" in c.note for c in lit)


# ---- cell_key / parse_protocols / validate ----------------------------------------------------

def _cell(**kw):
    base = dict(paper="pcpp", table="table2", dataset="cifar10", model="resnet20", pipeline="ft", task="bw",
                method="bnnpp", statistic="acc", value=90.4, note="")
    base.update(kw)
    return PublishedCell(**base)


def test_cell_key_and_dataclass():
    c = _cell()
    assert cell_key(c) == ("cifar10", "resnet20", "ft", "bw", "bnnpp", "acc")
    p = _cell(table="table5", model="vit_b16", note="scaling=1,normalization=0,pretrain=0,kd=1",
              protocols=parse_protocols("scaling=1,normalization=0,pretrain=0,kd=1"))
    assert cell_key(p)[-1] == (("kd", True), ("normalization", False), ("pretrain", False), ("scaling", True))
    assert c.table_id == "pcpp/table2"
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.value = 1.0
    assert hash(p) == hash(p) and p == p


def test_parse_protocols():
    assert parse_protocols("scaling=1,kd=0") == {"scaling": True, "kd": False}
    assert parse_protocols("mean of 5 runs") is None
    assert parse_protocols("scaling=2") is None
    with pytest.raises(ValueError, match="twice"):
        parse_protocols("kd=1,kd=0")


@pytest.mark.parametrize("bad, message", [
    (dict(dataset="mnist"), "unknown dataset 'mnist'"),
    (dict(model="resnet99"), "unknown model"),
    (dict(pipeline="scratch"), "unknown pipeline"),
    (dict(task="bwaaa"), "unknown task"),
    (dict(statistic="median"), "unknown statistic"),
    (dict(paper="proxquant"), "unknown paper"),
    (dict(table="table9"), "unknown table"),
    (dict(method="xnor"), "unknown method 'xnor'"),
    (dict(method="bivit"), "literature baseline"),
    (dict(value=100.5), r"out of \[0, 100\]"),
    (dict(value=-0.1), r"out of \[0, 100\]"),
    (dict(value=float("nan")), r"out of \[0, 100\]"),
    (dict(value="90.4"), "not a number"),
    (dict(table="table5", note="scaling=1"), "table5 cell needs note"),
    (dict(protocols={"kd": True}), "only defined for"),
    (dict(statistic="std"), "without the matching acc"),
])
def test_validate_rejects(bad, message):
    with pytest.raises(ValueError, match=message):
        validate([_cell(**bad)])


def test_validate_rejects_duplicates_within_a_table_only():
    validate([_cell(), _cell(table="table3")])  # the same cell printed by two tables is fine
    with pytest.raises(ValueError, match="duplicate key within pcpp/table2"):
        validate([_cell(), _cell(value=90.0)])


def test_loader_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown table"):
        load_published("pcpp/table9")
    with pytest.raises(ValueError, match="missing"):
        load_published("pcpp/table2", root=tmp_path)
    header = ",".join(COLUMNS)
    path = tmp_path / "pcpp_table2.csv"
    path.write_text("paper,table\npcpp,table2\n")
    with pytest.raises(ValueError, match="header must be exactly"):
        load_published("pcpp/table2", root=tmp_path)
    path.write_text(header + "\npcpp,table3,cifar10,resnet20,ft,bw,bc,acc,90.31,\n")
    with pytest.raises(ValueError, match="the file holds pcpp/table2"):
        load_published("pcpp/table2", root=tmp_path)
    path.write_text(header + "\npcpp,table2,cifar10,resnet20,ft,bw,bc,acc,90.31%,\n")
    with pytest.raises(ValueError, match=r"pcpp_table2.csv:2: value '90.31%' is not a number"):
        load_published("pcpp/table2", root=tmp_path)
    path.write_text(header + "\npcpp,table2,cifar10,resnet20,ft,bw,bc,acc,90.31,\n")
    assert load_published("pcpp/table2", root=tmp_path)[0].value == 90.31


def test_names_come_from_the_config_folders(monkeypatch):
    """A method is any configs/quantizer/ option (ptb included, which a hand-kept list once lacked);
    the validation asks the config tree, so a quantizer YAML added later counts at once."""
    from src.core import config_tree

    for method in config_tree.methods():
        validate([_cell(method=method)])
    monkeypatch.setattr(config_tree, "methods", lambda: ("fp", "newq"))
    validate([_cell(method="newq")])
    with pytest.raises(ValueError, match=r"unknown method 'bnnpp'; allowed: a quantizer of configs/quantizer/ \(fp, newq"):
        validate([_cell(method="bnnpp")])


def test_each_number_keeps_the_text_the_paper_prints():
    """Tables show a published number as printed (71.3, 92.01, 0.10), not reformatted."""
    every = load_published()
    cells = {(c.table_id, c.model, c.task, c.method, c.statistic): c for c in every}
    assert cells[("pcpp/appE", "swin_t", "bwa", "bnnpp", "acc")].printed == "71.3"
    assert cells[("conq/table2", "resnet20", "bw", "dorefa", "acc")].printed == "90.0"
    assert cells[("pcpp/table7", "resnet20", "bw", "fp", "std")].printed == "0.19"
    assert all(c.text and float(c.text) == c.value for c in every)
