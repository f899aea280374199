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


def test_crash_and_failure_points(tmp_path, monkeypatch):
    from src.core import io as core_io

    monkeypatch.setenv("PROXBIN_FAIL_AT", "results.json:tmp#2")
    monkeypatch.setattr(core_io, "_counts", core_io.Counter())
    atomic_write_json(tmp_path / "results.json", {"n": 1})  # the first write passes
    with pytest.raises(OSError, match="injected I/O error at results.json:tmp"):
        atomic_write_json(tmp_path / "results.json", {"n": 2})
    assert json.loads((tmp_path / "results.json").read_text()) == {"n": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_temporaries_of_killed_writes_are_removed_and_equal_content_is_not_rewritten(tmp_path):
    from src.core.io import remove_temporaries, write_text_if_changed

    (tmp_path / ".last.pt.abc123.tmp").write_bytes(b"half a checkpoint")
    (tmp_path / "summary.csv").write_text("epoch\n1\n")
    assert [p.name for p in remove_temporaries(tmp_path)] == [".last.pt.abc123.tmp"]
    assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"]
    before = (tmp_path / "summary.csv").stat().st_mtime_ns
    assert not write_text_if_changed(tmp_path / "summary.csv", "epoch\n1\n")
    assert (tmp_path / "summary.csv").stat().st_mtime_ns == before
    assert write_text_if_changed(tmp_path / "summary.csv", "epoch\n1\n2\n")
