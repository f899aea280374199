"""Atomic writes: an interrupted write leaves the previous file intact."""

from __future__ import annotations

import csv
import json

import pytest

from src.core.io import atomic_write, atomic_write_csv, atomic_write_json


def test_failed_write_keeps_old_file(tmp_path):
    path = atomic_write_json(tmp_path / "results.json", {"status": "completed"})

    def crash(f):
        f.write(b'{"status": "trun')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, crash)
    assert json.loads(path.read_text()) == {"status": "completed"}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temp file left behind


def test_csv_header_is_union_of_keys(tmp_path):
    path = atomic_write_csv(tmp_path / "summary.csv", [{"epoch": 1, "acc": 50.0}, {"epoch": 2, "acc": 60.0, "flip": 0.1}])
    rows = list(csv.DictReader(path.open()))
    assert rows[0] == {"epoch": "1", "acc": "50.0", "flip": ""} and rows[1]["flip"] == "0.1"
