"""Side-by-side tables: our runs (mean ± std over seeds, n) next to the published numbers, in the
paper's layout (:mod:`src.reporting.layout`: row groups, column groups, Table 5's ✓/✗ columns,
ConQ Table 2's list) with the paper's names (:mod:`src.reporting.names`).

A cell shows ``ours ± std (n) / published (Δ)`` with Δ = ours − published; the published number
is shown as the paper prints it (71.3, 92.01) and ours with as many decimals. A cell reads the
runs its plan names by identity (whichever table launched them); a cell without completed runs
shows "—" and is counted as missing. Literature methods (numbers the paper quotes from other
work) are shown as published only.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from src.core import config_tree
from src.core.io import atomic_write_text
from src.reporting.layout import ROW_KEYS, Grid, build_grid
from src.reporting.names import display
from src.reporting.paper import TABLES, PublishedCell, load_published
from src.reporting.stats import Stats, format_stats, summarize
from src.sweeps.cells import TableCell
from src.sweeps.spec import Plan
from src.sweeps.store import RunRecord

DASH = "—"
CSV_COLUMNS = ("paper", "table", "scale", *ROW_KEYS, "method", "published", "published_std", "ours_mean",
               "ours_std", "n", "diff", "failed", "origin", "runs")


def aggregate(records: list[RunRecord], metric: str) -> tuple[Stats | None, list[str]]:
    """The runs of one cell -> Stats over the completed ones (None if there is none) and the
    statuses of those that failed or diverged."""
    failed = [r.status for r in records if r.status in ("failed", "diverged")]
    return summarize(r.metric(metric) for r in records if r.status == "completed"), failed


def published_index(table: str) -> dict[tuple, dict[str, PublishedCell]]:
    """(dataset, model, pipeline, task, method, variant) -> {"acc": cell, "std": cell}; the variant
    of a protocol table is its protocol note ("scaling=1,normalization=0,...")."""
    if table not in TABLES:
        return {}
    index: dict[tuple, dict[str, PublishedCell]] = {}
    for c in load_published(table):
        variant = c.note if c.protocols is not None else ""
        index.setdefault((c.dataset, c.model, c.pipeline, c.task, c.method, variant), {})[c.statistic] = c
    return index


@dataclass
class Entry:
    cell: TableCell
    published: PublishedCell | None
    published_std: PublishedCell | None
    ours: Stats | None
    failed: list[str]
    read: tuple[str, ...] = ()         # identities of the runs found for this cell

    @property
    def diff(self) -> float | None:
        return None if self.ours is None or self.published is None else self.ours.mean - self.published.value

    @property
    def missing(self) -> bool:
        return self.cell.source is not None and self.ours is None

    @property
    def decimals(self) -> int:
        """The published number's decimals (ours is printed alike); 2 without one."""
        text = self.published.printed if self.published else ""
        return len(text.split(".")[1]) if "." in text else (0 if text else 2)


@dataclass
class Table:
    plan: Plan
    entries: dict[tuple, Entry]        # (row, method) -> entry, in the plan's cell order

    @property
    def expected(self) -> int:
        return sum(1 for e in self.entries.values() if e.cell.source is not None)

    @property
    def missing(self) -> int:
        return sum(1 for e in self.entries.values() if e.missing)

    def grid(self) -> Grid:
        return build_grid(self.plan.spec, self.plan.cells, lambda c: cell_text(self.entries[(c.row, c.method)]))


def build(plan: Plan, records: list[RunRecord]) -> Table:
    """Each printed cell with the published numbers and the statistics of the runs it names. A spec's
    ``compare: {table, dataset}`` prints another table's numbers (of that dataset) beside its cells."""
    by_id: dict[str, RunRecord] = {}
    for record in records:
        by_id.setdefault(record.run_id, record)
    compare = plan.spec.get("compare") or {}
    published = published_index(compare.get("table", plan.table))
    entries = {}
    for cell in plan.cells:
        dataset = compare.get("dataset", cell.row[0])   # a stand-in table (digits) printed beside the paper's rows
        pub = published.get((dataset, *cell.row[1:4], cell.method, cell.row[4]), {})
        found = [by_id[i] for i in cell.runs if i in by_id]
        ours, failed = aggregate(found, plan.metric)
        entries[(cell.row, cell.method)] = Entry(cell, pub.get("acc"), pub.get("std"), ours, failed,
                                                 tuple(r.run_id for r in found))
    return Table(plan, entries)


def cell_text(entry: Entry) -> str:
    pub = entry.published.printed if entry.published else DASH
    if entry.published_std is not None:
        pub += f" ± {entry.published_std.printed}"
    if entry.cell.source is None:
        return f"lit. {pub}"
    digits = entry.decimals
    if entry.ours is None:
        ours = DASH + (f" ({'/'.join(entry.failed)})" if entry.failed else "")
    else:
        ours = format_stats(entry.ours, digits)
    if entry.published is None:       # nothing printed to compare with (figures, new cells)
        return ours
    diff = f" ({entry.diff:+.{digits}f})" if entry.diff is not None else ""
    return f"{ours} / {pub}{diff}"


def caption(table: Table) -> str:
    p = table.plan
    what = "best" if p.metric == "best_test_acc" else "final"
    compare = p.spec.get("compare") or {}
    published = f"published {compare['table']} ({compare['dataset']})" if compare else "published"
    return (f"{p.table} at scale={p.scale}: ours ({what} test accuracy %, mean ± std over seeds, n runs) / "
            f"{published} as printed (ours − published). Missing cells: {table.missing} of {table.expected}.")


def to_markdown(table: Table) -> str:
    grid = table.grid()
    first, *more = grid.header
    lines = [f"**{caption(table)}**", "", _md_line(_spread(first)), "|" + "---|" * grid.width]
    lines += [_md_line(_spread(h)) for h in more]
    for row, bold in zip(grid.rows, grid.bold):
        lines.append(_md_line([f"**{c}**" if i in bold else c for i, c in enumerate(row)]))
    return "\n".join(lines) + "\n"


def _spread(header: list[tuple[str, int]]) -> list[str]:
    """A header line with spans as plain cells: the title, then empty cells (Markdown has no colspan)."""
    return [c for text, span in header for c in [text] + [""] * (span - 1)]


def _md_line(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _tex(text: str) -> str:
    return (text.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")
            .replace("±", r"$\pm$").replace(DASH, "--").replace("−", "-").replace("#", r"\#")
            .replace("✓", r"\checkmark").replace("✗", r"$\times$"))


def to_latex(table: Table) -> str:
    grid = table.grid()
    lines = [r"\begin{table}[t]", r"\centering", r"\scriptsize", r"\begin{tabular}{" + "l" * grid.width + "}",
             r"\toprule"]
    for header in grid.header:
        cells, rules, column = [], [], 1
        for text, span in header:
            cells.append(_tex(text) if span == 1 else rf"\multicolumn{{{span}}}{{c}}{{{_tex(text)}}}")
            if span > 1:
                rules.append(rf"\cmidrule(lr){{{column}-{column + span - 1}}}")
            column += span
        lines.append(" & ".join(cells) + r" \\" + (" " + " ".join(rules) if rules else ""))
    lines.append(r"\midrule")
    for i, (row, bold) in enumerate(zip(grid.rows, grid.bold)):
        if i in grid.group_starts and i:
            lines.append(r"\midrule")
        lines.append(" & ".join(rf"\textbf{{{_tex(c)}}}" if j in bold else _tex(c) for j, c in enumerate(row))
                     + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\caption{" + _tex(caption(table)) + "}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    """One line per printed cell, machine-readable: the config names, the published numbers as
    printed, our mean/std (4 decimals), n, the difference, and the identities of the runs read."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    paper, name = table.plan.table.split("/")
    for (row, method), e in table.entries.items():
        writer.writerow([paper, name, table.plan.scale, *row, method, e.published.printed if e.published else "",
                         e.published_std.printed if e.published_std else "", _blank(e.ours.mean if e.ours else None),
                         _blank(e.ours.std if e.ours else None), e.ours.n if e.ours else 0, _blank(e.diff),
                         "/".join(e.failed), "literature" if e.cell.source is None else "ours", ";".join(e.read)])
    return buf.getvalue()


def _blank(x: float | None) -> str:
    return "" if x is None else f"{x:.4f}"


def output_dirs(scale: str, output_root: Path | str) -> tuple[Path, Path]:
    """Where a table and its figure go by default: the tracked ``results/tables`` and
    ``results/figures`` for the paper scale, ``<output root>/tables`` and ``<output root>/figures``
    for the others (a smoke or mini render is a check, not a result to commit)."""
    if scale == "paper":
        results = config_tree.ROOT / "results"
        return results / "tables", results / "figures"
    return Path(output_root) / "tables", Path(output_root) / "figures"


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
    rows = list(dict.fromkeys(row for row, _ in table.entries))
    methods = list(dict.fromkeys(method for _, method in table.entries))
    labels = [r[4] or display("model", r[1]) for r in rows]
    width = 0.8 / max(len(methods), 1)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(labels) * max(len(methods), 1) * 0.5 + 2), 3.2))
    for i, method in enumerate(methods):
        stats = [table.entries[(r, method)].ours if (r, method) in table.entries else None for r in rows]
        ax.bar([x + i * width for x in range(len(labels))], [s.mean if s else 0.0 for s in stats], width,
               yerr=[(s.std or 0.0) if s else 0.0 for s in stats], label=display("method", method))
    ax.set_xticks([x + width * (len(methods) - 1) / 2 for x in range(len(labels))], labels, rotation=30, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{table.plan.table} (scale={table.plan.scale})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path
