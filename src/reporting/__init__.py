"""Reporting: the papers' published numbers as data, and (later) the comparison with this project's runs."""

from src.reporting.paper import (
    PublishedCell,
    TABLES,
    cell_key,
    load_published,
    validate,
)

__all__ = ["PublishedCell", "TABLES", "cell_key", "load_published", "validate"]
