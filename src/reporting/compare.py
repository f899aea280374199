"""One's own runs side by side: group completed runs by config keys, mean ± std (n) of metrics.

A group is the set of completed runs whose resolved configs agree on every ``by`` key (dotted paths
into the config, e.g. ``quantizer.name``, ``optimizer.lr``); each metric (a numeric entry of
results.json, e.g. ``final_test_acc``, the binary network's final test accuracy) is summarised
over the group's runs by :func:`src.reporting.stats.summarize` (mean, sample std, n), the same
aggregation as the paper tables. Without ``by`` the groups are told apart by every key whose value
differs between the runs, except the seed, the keys that do not change what is trained
(src.core.identity.IDENTITY_FREE_KEYS: run name, output root, device, logger, ...) and the keys a
swept config choice decides (``quantizer=bc,bnnpp`` groups by ``quantizer.name`` alone), so a
sweep over lr × seed compares the lrs over the seeds. Runs that did not complete are listed,
never averaged.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from src.core.errors import UserError
from src.core.identity import IDENTITY_FREE_KEYS
from src.reporting.run_results import RunResult
from src.reporting.stats import Stats, format_stats, summarize

DEFAULT_METRIC = "final_test_acc"   # results.json: the binary network's test accuracy after the last epoch
DEFAULT_CURVE = "test_acc"          # summary.csv: the binary network's test accuracy of each epoch
NOT_GROUPED = (*IDENTITY_FREE_KEYS, "seed")
ABSENT = "—"


@dataclass
class Group:
    values: tuple[Any, ...]          # the value of each ``by`` key
    runs: list[RunResult]
    stats: dict[str, Stats | None]   # metric -> mean ± std (n) over the runs that report it

    def label(self, by: list[str]) -> str:
        return ", ".join(f"{k}={text(v)}" for k, v in zip(by, self.values)) or "all runs"


@dataclass
class Comparison:
    by: list[str]
    metrics: list[str]
    groups: list[Group]
    skipped: list[RunResult]         # runs that did not complete


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted path -> value of every leaf of a nested config (a list is a leaf)."""
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def text(value: Any) -> str:
    if value is ABSENT or isinstance(value, str):
        return str(value)
    return json.dumps(value)


def _order(value: Any) -> tuple:
    """Numbers in numeric order, then text, then absent values."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value, "")
    return (2, 0, "") if value is ABSENT else (1, 0, text(value))


def _free(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in NOT_GROUPED)


def varying_keys(flat: list[dict[str, Any]]) -> list[str]:
    """The config keys whose value differs between the flattened configs ``flat``, except the seed
    and identity-free keys."""
    keys = list(dict.fromkeys(k for f in flat for k in f))
    return [k for k in keys if not _free(k) and len({text(f.get(k, ABSENT)) for f in flat}) > 1]


def default_by(flat: list[dict[str, Any]]) -> list[str]:
    """The keys that differ (:func:`varying_keys`), less those a differing config choice decides:
    a key under a node whose ``name`` differs (``quantizer.weight.mu_end`` under ``quantizer.name``) is
    dropped when runs of the same name agree on it; swept on its own, it stays."""
    varying = varying_keys(flat)
    names = [k for k in varying if k.endswith(".name")]

    def decided(key: str) -> bool:
        for name in names:
            node = name[: -len(".name")]
            if key != name and key.startswith(node + "."):
                values: dict[str, set[str]] = {}
                for f in flat:
                    values.setdefault(text(f.get(name, ABSENT)), set()).add(text(f.get(key, ABSENT)))
                if all(len(v) == 1 for v in values.values()):
                    return True
        return False

    return [k for k in varying if not decided(k)]


def _unknown_key(key: str, flat: list[dict[str, Any]]) -> UserError:
    keys = list(dict.fromkeys(k for f in flat for k in f))
    children = [k for k in keys if k.startswith(key + ".")]
    if children:
        return UserError(f"--by {key}: a config node, not a value; group by one of its keys: {', '.join(children)}")
    parts = key.split(".")
    node = next((".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)
                 if any(k.startswith(".".join(parts[:i]) + ".") for k in keys)), None)
    valid = [k for k in keys if k.startswith(node + ".")] if node else sorted({k.split(".")[0] for k in keys})
    where = f"the keys under {node}" if node else "the top-level keys (use dotted paths, e.g. quantizer.name)"
    varying = varying_keys(flat)
    return UserError(f"--by {key}: no run has this config key. Valid: {where}: {', '.join(valid)}. Keys that differ "
                     f"between these runs: {', '.join(varying) if varying else 'none besides the seed'}")


def compare(runs: list[RunResult], by: list[str] | None = None, metrics: list[str] | None = None) -> Comparison:
    """Group the completed ``runs`` by the ``by`` keys (None: the keys that differ) and summarise ``metrics``."""
    done = [r for r in runs if r.completed]
    skipped = [r for r in runs if not r.completed]
    metrics = list(metrics or [DEFAULT_METRIC])
    if not done:
        return Comparison(list(by or []), metrics, [], skipped)
    flat = [flatten(r.config) for r in done]
    by = default_by(flat) if by is None else list(by)
    for key in by:
        if all(key not in f for f in flat):
            raise _unknown_key(key, flat)
    known = sorted({m for r in done for m in r.metrics})
    bad = [m for m in metrics if m not in known]
    if bad:
        raise UserError(f"--metric {', '.join(bad)}: not a numeric entry of these runs' results; valid metrics: "
                        f"{', '.join(known)}")
    members: dict[str, tuple[tuple[Any, ...], list[RunResult]]] = {}
    for run, f in zip(done, flat):
        values = tuple(f.get(k, ABSENT) for k in by)
        members.setdefault(json.dumps([text(v) for v in values]), (values, []))[1].append(run)
    groups = [Group(values, group, {m: summarize(r.metrics.get(m) for r in group) for m in metrics})
              for values, group in sorted(members.values(), key=lambda item: [_order(v) for v in item[0]])]
    return Comparison(by, metrics, groups, skipped)


def caption(c: Comparison) -> str:
    n = sum(len(g.runs) for g in c.groups)
    grouping = f"grouped by {', '.join(c.by)}" if c.by else "all runs together"
    return (f"mean ± sample std (n runs) of {', '.join(c.metrics)} over {n} completed runs, {grouping}"
            + (f"; {len(c.skipped)} run(s) that did not complete are not included" if c.skipped else ""))


def to_markdown(c: Comparison, decimals: int = 2) -> str:
    head = [*c.by, *c.metrics] if c.by else ["runs", *c.metrics]
    lines = [f"**{caption(c)}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g in c.groups:
        keys = [text(v) for v in g.values] if c.by else ["all"]
        cells = [format_stats(g.stats[m], decimals) if g.stats[m] else ABSENT for m in c.metrics]
        lines.append("| " + " | ".join(keys + cells) + " |")
    if c.skipped:
        lines += ["", "Not included (did not complete):", ""]
        lines += [f"- {r.status}: {r.origin}" for r in c.skipped]
    return "\n".join(lines) + "\n"


def to_csv(c: Comparison) -> str:
    """One line per group: its key values, then mean, std, n of each metric (full precision; std
    empty for one run), and the runs it holds."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*c.by, *(f"{m}_{s}" for m in c.metrics for s in ("mean", "std", "n")), "runs"])
    for g in c.groups:
        stats = []
        for m in c.metrics:
            s = g.stats[m]
            stats += ["", "", 0] if s is None else [repr(s.mean), "" if s.std is None else repr(s.std), s.n]
        writer.writerow([*(text(v) for v in g.values), *stats, ";".join(r.origin for r in g.runs)])
    return buf.getvalue()


def curve_stats(runs: list[RunResult], column: str) -> list[tuple[float, Stats]]:
    """Per epoch: mean ± std (n) of ``column`` over the runs that have that epoch."""
    by_epoch: dict[float, list[float]] = {}
    for run in runs:
        for epoch, value in run.curve(column):
            by_epoch.setdefault(epoch, []).append(value)
    return [(e, s) for e in sorted(by_epoch) if (s := summarize(by_epoch[e])) is not None]


def plot_curves(c: Comparison, column: str, path: Path | str) -> Path:
    """The mean curve of ``column`` (a summary.csv column) per group against the epoch, with a ±1 std
    band where a group has two or more runs; the legend outside the axes."""
    curves = [(g, curve_stats(g.runs, column)) for g in c.groups]
    if not any(points for _, points in curves):
        columns = sorted({k for g in c.groups for r in g.runs for row in r.history() for k in row} - {"epoch"})
        raise UserError(f"--curve-metric {column}: no run has this per-epoch column; valid: "
                        f"{', '.join(columns) if columns else 'none (the runs have no summary.csv rows)'}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for g, points in curves:
        if not points:
            continue
        x = [e for e, _ in points]
        mean = [s.mean for _, s in points]
        std = [s.std or 0.0 for _, s in points]
        n = max(s.n for _, s in points)
        line, = ax.plot(x, mean, marker="o", ms=3, lw=1.4, label=f"{g.label(c.by)} (n={n})")
        ax.fill_between(x, [m - d for m, d in zip(mean, std)], [m + d for m, d in zip(mean, std)],
                        color=line.get_color(), alpha=0.2, lw=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(column)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    ax.set_title(f"{column}: mean ± std over runs", fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=130, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path
