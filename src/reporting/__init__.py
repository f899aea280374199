"""Reporting, read-only: it renders tables from the records of finished runs and never launches one.

- :mod:`src.reporting.paper`: the papers' published numbers as data (``load_published``,
  ``PublishedCell``, ``cell_key``, ``validate``, ``TABLES``, ``LITERATURE_METHODS``).
- :mod:`src.reporting.tables`: our runs next to the published numbers (``build`` a ``Table`` from a
  sweep's plan and its run records, then ``write`` Markdown/LaTeX/CSV or ``plot`` a figure).
- :mod:`src.reporting.layout`: the paper's layout of a table (row groups, column groups, Table 5's
  ✓/✗ columns, ConQ Table 2's list), from the spec's ``layout`` node.
- :mod:`src.reporting.names`: the papers' display names of datasets, models and methods.
- :mod:`src.reporting.stats`: mean ± std (n) over runs and its printed form, for both kinds of table.
- :mod:`src.reporting.run_results`: one's own runs, read from run directories or a wandb project.
- :mod:`src.reporting.compare`: those runs grouped by config keys (scripts/compare.py): Markdown, CSV, curves.
"""

from src.reporting.paper import (
    LITERATURE_METHODS,
    TABLES,
    PublishedCell,
    cell_key,
    load_published,
    validate,
)

__all__ = ["LITERATURE_METHODS", "TABLES", "PublishedCell", "cell_key", "load_published", "validate"]
