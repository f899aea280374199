"""The published numbers of PC++ (Lu et al., NeurIPS 2023) and ConQ (Migliorati et al., MLSP 2024).

The data lives in ``results/paper/<paper>_<table>.csv`` (one file per table, schema in
``results/paper/README.md``); this module loads it into :class:`PublishedCell` records and checks
the schema. Each CSV row is one printed number of the paper ("cell"): an accuracy (``acc``) or the
± error bar printed next to it (``std``), in percent.

    >>> cells = load_published("pcpp/table2")
    >>> index = {cell_key(c): c for c in cells}
    >>> index[("cifar10", "resnet20", "ft", "bw", "bnnpp", "acc")].value
    90.4
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from src.core import config_tree

PAPER_DIR = config_tree.ROOT / "results" / "paper"

COLUMNS = ("paper", "table", "dataset", "model", "pipeline", "task", "method", "statistic", "value", "note")

TABLES = [
    "pcpp/table2",
    "pcpp/table3",
    "pcpp/table4",
    "pcpp/table5",
    "pcpp/table6",
    "pcpp/table7",
    "pcpp/table8",
    "pcpp/appE",
    "conq/table1",
    "conq/table2",
]

PAPERS = ("pcpp", "conq")
STATISTICS = ("acc", "std")

# Methods that are not ours: numbers the papers quote from other work. Their rows must say
# "literature baseline" in `note`.
LITERATURE_METHODS = {
    "bivit": "BiViT (He et al.), quoted in PC++ Appendix E",
    "dorefa": "DoReFa-Net (Zhou et al. 2016)",
    "lqnets": "LQ-Nets (Zhang et al. 2018)",
    "irnet": "IR-Net (Qin et al. 2020)",
    "dsq": "DSQ (Gong et al. 2019)",
    "binaryconnect_paper": "BinaryConnect (Courbariaux et al. 2015) as cited by ConQ",
    "lab": "LAB, loss-aware binarization (Hou et al. 2017)",
    "bwn": "BWN (Rastegari et al. 2016)",
    "bayesbinn": "BayesBiNN (Meng et al. 2020)",
    "md_softmax": "MD-softmax, mirror descent (Ajanthan et al. 2021)",
    "md_softmax_s": "MD-softmax-s, mirror descent (Ajanthan et al. 2021)",
    "md_tanh_s": "MD-tanh-s, mirror descent (Ajanthan et al. 2021)",
    "pmf": "PMF, proximal mean-field (Ajanthan et al. 2019)",
}

# A literature method whose algorithm one of our quantizers implements (for side-by-side reports).
LITERATURE_EQUIVALENT = {"binaryconnect_paper": "bc"}

# PC++ Table 5: the four protocols for binarizing vision transformers (§4.3), encoded in `note`
# as an exact comma list "scaling=1,normalization=1,pretrain=0,kd=0".
PROTOCOL_KEYS = ("scaling", "normalization", "pretrain", "kd")
PROTOCOL_TABLES = ("pcpp/table5",)
_PROTOCOL_RE = re.compile(r"^[a-z_]+=[01](,[a-z_]+=[01])*$")


@dataclass(frozen=True)
class PublishedCell:
    """One number printed in a paper's table."""

    paper: str
    table: str
    dataset: str
    model: str
    pipeline: str
    task: str
    method: str
    statistic: str
    value: float
    note: str = ""
    # Parsed from `note` for the protocol-ablation table (None elsewhere). A dict is not hashable,
    # so it is left out of the hash (it still takes part in ==).
    protocols: dict | None = field(default=None, hash=False)
    # `value` as the paper prints it ("71.3", "92.01"; the CSV's string): tables show it so and
    # format ours with as many decimals
    text: str = ""

    @property
    def printed(self) -> str:
        return self.text or f"{self.value:g}"

    @property
    def table_id(self) -> str:
        return f"{self.paper}/{self.table}"


def parse_protocols(note: str) -> dict | None:
    """``"scaling=1,normalization=0,..."`` -> ``{"scaling": True, "normalization": False, ...}``;
    None when the note is not such a list."""
    note = (note or "").strip()
    if not _PROTOCOL_RE.match(note):
        return None
    out: dict[str, bool] = {}
    for item in note.split(","):
        key, val = item.split("=")
        if key in out:
            raise ValueError(f"protocol {key!r} given twice in note {note!r}")
        out[key] = val == "1"
    return out


def cell_key(cell: PublishedCell) -> tuple:
    """(dataset, model, pipeline, task, method, statistic[, protocols as a sorted tuple]): what a
    cell measures, independent of the table that prints it (tables of the same paper repeat cells)."""
    key = (cell.dataset, cell.model, cell.pipeline, cell.task, cell.method, cell.statistic)
    if cell.protocols is not None:
        key += (tuple(sorted(cell.protocols.items())),)
    return key


def table_path(table: str, root: Path | str | None = None) -> Path:
    """The CSV of a table id such as ``"pcpp/table2"``."""
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; known tables: {', '.join(TABLES)}")
    paper, name = table.split("/")
    return Path(root or PAPER_DIR) / f"{paper}_{name}.csv"


def _read_table(table: str, root: Path | str | None) -> list[PublishedCell]:
    path = table_path(table, root)
    if not path.is_file():
        raise ValueError(f"{table}: file {path} is missing")
    paper, name = table.split("/")
    cells = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or tuple(header) != COLUMNS:
            raise ValueError(f"{path}: header must be exactly {','.join(COLUMNS)}; got {header}")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            where = f"{path.name}:{line}"
            if len(row) != len(COLUMNS):
                raise ValueError(f"{where}: expected {len(COLUMNS)} fields, got {len(row)}: {row}")
            rec = dict(zip(COLUMNS, row))
            if (rec["paper"], rec["table"]) != (paper, name):
                raise ValueError(f"{where}: row says {rec['paper']}/{rec['table']}, but the file holds {table}")
            try:
                value = float(rec["value"])
            except ValueError:
                raise ValueError(f"{where}: value {rec['value']!r} is not a number") from None
            protocols = parse_protocols(rec["note"]) if table in PROTOCOL_TABLES else None
            cells.append(PublishedCell(
                paper=rec["paper"], table=rec["table"], dataset=rec["dataset"], model=rec["model"],
                pipeline=rec["pipeline"], task=rec["task"], method=rec["method"],
                statistic=rec["statistic"], value=value, note=rec["note"], protocols=protocols,
                text=rec["value"].strip()))
    return cells


def load_published(table: str | None = None, root: Path | str | None = None) -> list[PublishedCell]:
    """The cells of one table (``"pcpp/table2"``, see :data:`TABLES`) or of all tables (None),
    in file order, validated. ``root`` overrides the folder (default ``results/paper``)."""
    tables = TABLES if table is None else [table]
    cells: list[PublishedCell] = []
    for t in tables:
        cells.extend(_read_table(t, root))
    validate(cells)
    return cells


def _where(cell: PublishedCell) -> str:
    return f"{cell.paper}/{cell.table} {cell_key(cell)}"


def validate(cells: Iterable[PublishedCell]) -> None:
    """Raise ValueError naming the first schema violation: an unknown enum value (datasets, models,
    pipelines, tasks and methods are the options of their config folders), a literature
    method without "literature baseline" in its note, missing/incomplete protocols in a protocol
    table, a value that is not in [0, 100], a key repeated within a table, or an ``std`` without
    its ``acc``."""
    cells = list(cells)
    enums = (("paper", PAPERS), ("dataset", config_tree.options("dataset")), ("model", config_tree.models()),
             ("pipeline", config_tree.pipelines()), ("task", config_tree.tasks()), ("statistic", STATISTICS))
    methods = config_tree.methods()
    seen: dict[tuple, PublishedCell] = {}
    for cell in cells:
        for name, allowed in enums:
            got = getattr(cell, name)
            if got not in allowed:
                raise ValueError(f"{_where(cell)}: unknown {name} {got!r}; allowed: {', '.join(allowed)}")
        if cell.table_id not in TABLES:
            raise ValueError(f"{_where(cell)}: unknown table {cell.table_id!r}; known: {', '.join(TABLES)}")
        if cell.method not in methods and cell.method not in LITERATURE_METHODS:
            raise ValueError(f"{_where(cell)}: unknown method {cell.method!r}; allowed: a quantizer of "
                             f"configs/quantizer/ ({', '.join(methods)}) or a literature slug "
                             f"({', '.join(LITERATURE_METHODS)})")
        if cell.method in LITERATURE_METHODS and "literature baseline" not in cell.note:
            raise ValueError(f"{_where(cell)}: method {cell.method!r} is not ours; its note must say "
                             "'literature baseline'")
        if not isinstance(cell.value, (int, float)) or isinstance(cell.value, bool):
            raise ValueError(f"{_where(cell)}: value {cell.value!r} is not a number")
        if not math.isfinite(cell.value) or not 0.0 <= cell.value <= 100.0:
            raise ValueError(f"{_where(cell)}: value {cell.value} is out of [0, 100] (percent)")
        if cell.table_id in PROTOCOL_TABLES:
            if cell.protocols is None or tuple(sorted(cell.protocols)) != tuple(sorted(PROTOCOL_KEYS)):
                raise ValueError(f"{_where(cell)}: a {cell.table_id} cell needs note "
                                 f"'{'=0/1,'.join(PROTOCOL_KEYS)}=0/1' (each key once); got {cell.note!r}")
        elif cell.protocols is not None:
            raise ValueError(f"{_where(cell)}: protocols are only defined for {', '.join(PROTOCOL_TABLES)}")
        key = (cell.paper, cell.table) + cell_key(cell)
        if key in seen:
            raise ValueError(f"{_where(cell)}: duplicate key within {cell.table_id} "
                             f"(values {seen[key].value} and {cell.value})")
        seen[key] = cell
    for key, cell in seen.items():
        if cell.statistic == "std":
            acc_key = key[:7] + ("acc",) + key[8:]
            if acc_key not in seen:
                raise ValueError(f"{_where(cell)}: an std cell without the matching acc cell")
