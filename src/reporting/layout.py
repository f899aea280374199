"""The paper's layout of a table: which keys head the rows (grouped as the paper merges them),
the method columns and their column groups, and the three forms the papers print:

- ``grid`` (default): rows = the ``layout.rows`` keys, columns = methods (PC++ Tables 2-4, 6-8,
  ConQ Table 1); a key is printed only where it changes within its group, as the paper's merged
  cells; ``column_groups`` put a spanning title over methods ("ProxConnect++");
- ``protocols``: PC++ Table 5, one row per (method, protocol list), a ✓/✗ column per protocol;
- ``list``: ConQ Table 2, one row per (model, method) with the W/A column.

Read from the spec's ``layout`` node::

    layout:
      form: grid                                  # grid | protocols | list
      rows: [model, dataset]                      # row keys; the first one groups
      order: {model: [vit_b16, deit_t]}           # row order per key (default: as the grid lists them)
      column_groups: {ProxConnect++: [bc, pc]}    # spanning titles over method columns
      labels: {fp: Baseline}                      # this table's method labels
      titles: {variant: Block}                    # row-key column titles
      bold: {key: dataset, where: {pipeline: e2e}}  # print that key's label bold in those rows

The result is a :class:`Grid` of plain strings (header lines with column spans, body lines, bold
marks, group starts) that tables.py writes as Markdown, LaTeX or nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from src.core.errors import UserError
from src.reporting import names

FORMS = ("grid", "protocols", "list")
ROW_KEYS = ("dataset", "model", "pipeline", "task", "variant")
LAYOUT_KEYS = ("form", "rows", "order", "column_groups", "labels", "titles", "bold")
TICK = {True: "✓", False: "✗"}


@dataclass
class Grid:
    header: list[list[tuple[str, int]]]            # header lines: (text, columns spanned)
    rows: list[list[str]] = field(default_factory=list)
    bold: list[set[int]] = field(default_factory=list)   # per body line: the columns printed bold
    group_starts: list[int] = field(default_factory=list)  # body lines that open a row group

    @property
    def width(self) -> int:
        return sum(span for _, span in self.header[-1])


def layout_of(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec's ``layout`` node, checked: known keys, a known form, row keys and orders."""
    where = f"{spec['paper']}/{spec['table']}"
    layout = dict(spec.get("layout") or {})
    unknown = sorted(set(layout) - set(LAYOUT_KEYS))
    if unknown:
        raise UserError(f"{where}: layout key(s) {', '.join(unknown)} unknown; valid: {', '.join(LAYOUT_KEYS)}")
    layout.setdefault("form", "grid")
    if layout["form"] not in FORMS:
        raise UserError(f"{where}: layout.form {layout['form']!r} is not one of {', '.join(FORMS)}")
    layout.setdefault("rows", ["dataset", "model", "pipeline", "task"])
    bold = layout.get("bold") or {}
    for key in [*layout["rows"], *(layout.get("order") or {}), *(bold.get("where") or {})]:
        if key not in ROW_KEYS:
            raise UserError(f"{where}: layout row key {key!r} is not one of {', '.join(ROW_KEYS)}")
    if bold and bold.get("key") not in layout["rows"]:
        raise UserError(f"{where}: layout.bold.key {bold.get('key')!r} is not one of the layout's rows "
                        f"({', '.join(layout['rows'])})")
    return layout


def build_grid(spec: dict[str, Any], cells: list, text: Callable[[Any], str]) -> Grid:
    """The grid of a table: ``cells`` are the plan's printed cells (``row``, ``method``) and
    ``text(cell)`` the string shown for one of them."""
    layout = layout_of(spec)
    where = f"{spec['paper']}/{spec['table']}"
    methods = list(dict.fromkeys(c.method for c in cells))
    stale = sorted(set(layout.get("labels") or {}) - set(methods))
    if stale:
        raise UserError(f"{where}: layout.labels name method(s) {', '.join(stale)} that the table does not "
                        f"print; its methods are: {', '.join(methods)}")
    form = {"grid": _grid, "protocols": _protocols, "list": _list}[layout["form"]]
    return form(spec, layout, cells, methods, text)


def _label(layout: dict, key: str, value: str) -> str:
    return names.display(key, value, layout.get("labels") if key == "method" else None)


def _title(layout: dict, key: str) -> str:
    return (layout.get("titles") or {}).get(key, names.KEY_TITLES[key])


def _sorted_rows(layout: dict, rows: list[tuple], keys: list[str], where: str) -> list[tuple]:
    """Distinct rows ordered by ``layout.order`` (else first appearance) of each key in turn,
    checking that the printed keys tell every row apart."""
    rows = list(dict.fromkeys(rows))
    order = layout.get("order") or {}
    ranks = []
    for key in keys:
        index = ROW_KEYS.index(key)
        seen = list(dict.fromkeys(r[index] for r in rows))
        wanted = list(order.get(key) or []) + [v for v in seen if v not in (order.get(key) or [])]
        ranks.append((index, {v: i for i, v in enumerate(wanted)}))
    shown = {}
    for row in rows:
        label = tuple(row[ROW_KEYS.index(k)] for k in keys)
        if label in shown:
            raise UserError(f"{where}: layout.rows {keys} print rows {shown[label]} and {row} alike; "
                            f"add the key that tells them apart")
        shown[label] = row
    return sorted(rows, key=lambda r: tuple(rank[r[i]] for i, rank in ranks))


def _bold_column(layout: dict, row: tuple, keys: list[str]) -> int | None:
    bold = layout.get("bold")
    if not bold:
        return None
    where = bold.get("where") or {}
    if all(row[ROW_KEYS.index(k)] == v for k, v in where.items()) and bold["key"] in keys:
        return keys.index(bold["key"])
    return None


def _merge_keys(grid: Grid, labels: list[list[str]], n_keys: int) -> None:
    """Blank a row key where it repeats the row above within the same group (the paper's merged
    cells), and mark where the first key changes."""
    previous: list[str] = []
    for line, values in enumerate(labels):
        if not previous or values[0] != previous[0]:
            grid.group_starts.append(line)
        same_prefix = True
        row = []
        for i in range(n_keys):
            same_prefix = same_prefix and bool(previous) and values[i] == previous[i]
            row.append("" if same_prefix else values[i])
        grid.rows.append(row + values[n_keys:])
        previous = values


def _method_header(layout: dict, methods: list[str], left: list[str]) -> list[list[tuple[str, int]]]:
    groups = layout.get("column_groups") or {}
    grouped = {m: g for g, members in groups.items() for m in members}
    labels = [_label(layout, "method", m) for m in methods]
    if not groups:
        return [[(t, 1) for t in left + labels]]
    top: list[tuple[str, int]] = [(t, 1) for t in left]
    bottom: list[tuple[str, int]] = [("", 1) for _ in left]
    i = 0
    while i < len(methods):
        group = grouped.get(methods[i])
        if group is None:
            top.append((labels[i], 1))
            bottom.append(("", 1))
            i += 1
            continue
        span = 1
        while i + span < len(methods) and grouped.get(methods[i + span]) == group:
            span += 1
        top.append((group, span))
        bottom += [(t, 1) for t in labels[i:i + span]]
        i += span
    return [top, bottom]


def _grid(spec, layout, cells, methods, text) -> Grid:
    where = f"{spec['paper']}/{spec['table']}"
    keys = list(layout["rows"])
    by_cell = {(c.row, c.method): c for c in cells}
    rows = _sorted_rows(layout, [c.row for c in cells], keys, where)
    grid = Grid(header=_method_header(layout, methods, [_title(layout, k) for k in keys]))
    labels, bolds = [], []
    for row in rows:
        values = [_label(layout, k, row[ROW_KEYS.index(k)]) for k in keys]
        values += [text(by_cell[(row, m)]) if (row, m) in by_cell else "" for m in methods]
        labels.append(values)
        column = _bold_column(layout, row, keys)
        bolds.append(set() if column is None else {column})
    _merge_keys(grid, labels, len(keys))
    grid.bold = [{c for c in b if grid.rows[i][c]} for i, b in enumerate(bolds)]
    return grid


def _protocols(spec, layout, cells, methods, text) -> Grid:
    protocols = list(spec.get("protocols") or {})
    grid = Grid(header=[[(_title(layout, "method"), 1)] + [(names.PROTOCOLS.get(p, p), 1) for p in protocols]
                        + [("Accuracy", 1)]])
    labels = []
    for method in methods:
        for cell in (c for c in cells if c.method == method):
            flags = dict(item.split("=") for item in cell.row[4].split(","))
            labels.append([_label(layout, "method", method)] + [TICK[flags.get(p) == "1"] for p in protocols]
                          + [text(cell)])
    _merge_keys(grid, labels, 1)
    grid.bold = [set() for _ in grid.rows]
    return grid


def _list(spec, layout, cells, methods, text) -> Grid:
    keys = [k for k in layout["rows"] if k != "method"]
    grid = Grid(header=[[(_title(layout, k), 1) for k in keys] + [("Method", 1), ("W/A", 1), ("Acc. (%)", 1)]])
    labels = [[_label(layout, k, c.row[ROW_KEYS.index(k)]) for k in keys]
              + [_label(layout, "method", c.method), names.weight_activation_bits(c.method, c.row[3]), text(c)]
              for c in cells]
    _merge_keys(grid, labels, len(keys))
    grid.bold = [set() for _ in grid.rows]
    return grid
