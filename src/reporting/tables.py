"""Side-by-side tables: our runs (mean ± std over seeds, n) next to the published numbers.

Rows and columns follow the paper's table (rows = dataset, model, pipeline, task[, variant];
columns = methods, in the spec's order). A cell shows ``ours ± std (n) / published (Δ)`` with
Δ = ours − published; a cell without completed runs shows "—" and is counted as missing.
Literature methods (numbers the paper quotes from other work) are shown as published only.
Runs of different scales are never pooled: the caller passes the runs of one scale.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from src.core.io import atomic_write_text
from src.reporting.paper import TABLES, load_published
from src.sweeps.cells import TableCell
from src.sweeps.spec import Plan
from src.sweeps.store import RunRecord

DASH = "—"
ROW_KEYS = ("dataset", "model", "pipeline", "task", "variant")
CSV_COLUMNS = ("paper", "table", "scale", *ROW_KEYS, "method", "published", "published_std", "ours_mean",
               "ours_std", "n", "diff", "failed", "origin")


@dataclass(frozen=True)
class Stats:
    mean: float
    std: float | None          # sample standard deviation over seeds (None for one run)
    n: int


def aggregate(records: list[RunRecord], metric: str) -> tuple[dict[tuple, Stats], dict[tuple, list[str]]]:
    """Completed runs -> Stats per source key; failed/diverged runs -> their statuses per key."""
    values: dict[tuple, list[float]] = defaultdict(list)
    bad: dict[tuple, list[str]] = defaultdict(list)
    scales = {r.cell.get("scale") for r in records}
    if len(scales) > 1:
        raise ValueError(f"runs of several scales ({', '.join(sorted(map(str, scales)))}) must not be pooled")
    for r in records:
        value = r.metric(metric)
        if r.status == "completed" and value is not None and math.isfinite(value):
            values[r.source].append(float(value))
        elif r.status in ("failed", "diverged"):
            bad[r.source].append(r.status)
    stats = {k: Stats(statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else None, len(v))
             for k, v in values.items()}
    return stats, dict(bad)


def published_index(table: str) -> dict[tuple, dict[str, float]]:
    """(dataset, model, pipeline, task, method, variant) -> {"acc": .., "std": ..}; the variant of a
    protocol table is its protocol note ("scaling=1,normalization=0,...")."""
    if table not in TABLES:
        return {}
    index: dict[tuple, dict[str, float]] = defaultdict(dict)
    for c in load_published(table):
        variant = c.note if c.protocols is not None else ""
        index[(c.dataset, c.model, c.pipeline, c.task, c.method, variant)][c.statistic] = c.value
    return dict(index)


@dataclass
class Entry:
    cell: TableCell
    published: float | None
    published_std: float | None
    ours: Stats | None
    failed: list[str]

    @property
    def diff(self) -> float | None:
        return None if self.ours is None or self.published is None else self.ours.mean - self.published

    @property
    def missing(self) -> bool:
        return self.cell.source is not None and self.ours is None


@dataclass
class Table:
    plan: Plan
    rows: list[tuple]
    methods: list[str]
    entries: dict[tuple, Entry]

    @property
    def expected(self) -> int:
        return sum(1 for e in self.entries.values() if e.cell.source is not None)

    @property
    def missing(self) -> int:
        return sum(1 for e in self.entries.values() if e.missing)

    @property
    def has_variant(self) -> bool:
        return any(r[4] for r in self.rows)


def build(plan: Plan, records: list[RunRecord]) -> Table:
    records = [r for r in records if r.cell.get("scale") == plan.scale]
    stats, bad = aggregate(records, plan.metric)
    published = published_index(plan.table)
    rows, methods, entries = [], [], {}
    for cell in plan.cells:
        if cell.row not in rows:
            rows.append(cell.row)
        if cell.method not in methods:
            methods.append(cell.method)
        pub = published.get(cell.row[:4] + (cell.method, cell.row[4]), {})
        entries[cell.row + (cell.method,)] = Entry(
            cell=cell, published=pub.get("acc"), published_std=pub.get("std"),
            ours=stats.get(cell.source) if cell.source else None, failed=bad.get(cell.source, []) if cell.source else [])
    return Table(plan, rows, methods, entries)


def _num(x: float | None, digits: int = 2, signed: bool = False) -> str:
    if x is None:
        return DASH
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def cell_text(entry: Entry | None) -> str:
    if entry is None:
        return ""
    pub = _num(entry.published) + (f" ± {entry.published_std:.2f}" if entry.published_std is not None else "")
    if entry.cell.source is None:
        return f"lit. {pub}"
    if entry.ours is None:
        ours = DASH + (f" ({'/'.join(entry.failed)})" if entry.failed else "")
    else:
        std = f" ± {entry.ours.std:.2f}" if entry.ours.std is not None else ""
        ours = f"{entry.ours.mean:.2f}{std} (n={entry.ours.n})"
    diff = f" ({_num(entry.diff, signed=True)})" if entry.diff is not None else ""
    return f"{ours} / {pub}{diff}"


def _row_header(table: Table) -> list[str]:
    return ["Dataset", "Model", "Pipeline", "Task"] + (["Variant"] if table.has_variant else [])


def _row_cells(table: Table, row: tuple) -> list[str]:
    return [row[0], row[1], row[2].upper(), row[3].upper()] + ([row[4]] if table.has_variant else [])


def caption(table: Table) -> str:
    p = table.plan
    what = "best" if p.metric == "best_test_acc" else "final"
    return (f"{p.table} at scale={p.scale}: ours ({what} test accuracy %, mean ± std over seeds, n runs) / "
            f"published (ours − published). Missing cells: {table.missing} of {table.expected}.")


def to_markdown(table: Table) -> str:
    header = _row_header(table) + table.methods
    lines = [f"**{caption(table)}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.rows:
        cells = _row_cells(table, row) + [cell_text(table.entries.get(row + (m,))) for m in table.methods]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _tex(text: str) -> str:
    return (text.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")
            .replace("±", r"$\pm$").replace(DASH, "--").replace("−", "-").replace("#", r"\#"))


def to_latex(table: Table) -> str:
    header = _row_header(table) + table.methods
    lines = [r"\begin{table}[t]", r"\centering", r"\scriptsize", r"\begin{tabular}{" + "l" * len(header) + "}",
             r"\toprule", " & ".join(_tex(h) for h in header) + r" \\", r"\midrule"]
    for row in table.rows:
        cells = _row_cells(table, row) + [cell_text(table.entries.get(row + (m,))) for m in table.methods]
        lines.append(" & ".join(_tex(c) for c in cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\caption{" + _tex(caption(table)) + "}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    paper, name = table.plan.table.split("/")
    for row in table.rows:
        for m in table.methods:
            e = table.entries.get(row + (m,))
            if e is None:
                continue
            writer.writerow([paper, name, table.plan.scale, *row, m, _blank(e.published), _blank(e.published_std),
                             _blank(e.ours.mean if e.ours else None, 4), _blank(e.ours.std if e.ours else None, 4),
                             e.ours.n if e.ours else 0, _blank(e.diff, 4), "/".join(e.failed),
                             "literature" if e.cell.source is None else "ours"])
    return buf.getvalue()


def _blank(x: float | None, digits: int = 2) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def output_stem(table: str, scale: str, out_dir: Path | str) -> Path:
    """``results/tables/pcpp/table2`` for the paper scale; ``...table2.smoke`` for the others, so
    a smoke or mini table never overwrites the paper-scale one."""
    paper, name = table.split("/")
    return Path(out_dir) / paper / (name if scale == "paper" else f"{name}.{scale}")


def write(table: Table, out_dir: Path | str) -> dict[str, Path]:
    stem = output_stem(table.plan.table, table.plan.scale, out_dir)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = {}
    for ext, render in (("md", to_markdown), ("tex", to_latex), ("csv", to_csv)):
        path = stem.with_name(f"{stem.name}.{ext}")
        atomic_write_text(path, render(table))
        paths[ext] = path
    return paths


def plot(table: Table, out_dir: Path | str) -> Path:
    """A bar chart of our means (error bars: std) per row and method: PC++ Figures 2 and 3."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paper, name = table.plan.table.split("/")
    path = Path(out_dir) / (f"{paper}_{name}.png" if table.plan.scale == "paper" else f"{paper}_{name}.{table.plan.scale}.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = [r[4] or r[1] for r in table.rows]
    width = 0.8 / max(len(table.methods), 1)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(labels) * max(len(table.methods), 1) * 0.5 + 2), 3.2))
    for i, method in enumerate(table.methods):
        means = [table.entries[r + (method,)].ours.mean if table.entries.get(r + (method,)) and
                 table.entries[r + (method,)].ours else 0.0 for r in table.rows]
        stds = [(table.entries[r + (method,)].ours.std or 0.0) if table.entries.get(r + (method,)) and
                table.entries[r + (method,)].ours else 0.0 for r in table.rows]
        ax.bar([x + i * width for x in range(len(labels))], means, width, yerr=stds, label=method)
    ax.set_xticks([x + width * (len(table.methods) - 1) / 2 for x in range(len(labels))], labels, rotation=30, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{table.plan.table} (scale={table.plan.scale})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path
