"""A reader for wandb's offline ``run-<id>.wandb`` files, independent of wandb's own code:
a 7-byte file header (':W&B', magic, version), then LevelDB-log framing (32 KiB blocks; each
chunk = crc32c, little-endian length, type FULL/FIRST/MIDDLE/LAST) around protobuf Records."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[pb.Record]:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", "not a wandb datastore file"
    pos, out, pending = 7, [], b""
    while pos + 7 <= len(data):
        room = BLOCK - pos % BLOCK
        if room < 7:  # block trailer padding
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            continue
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            record = pb.Record()
            record.ParseFromString(pending)
            out.append(record)
    return out


def _items(items) -> dict:
    return {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in items}


def run_contents(path: Path) -> dict:
    """The run's id/group/job_type/tags, its config (last value per key) and its final summary."""
    info: dict = {"config": {}, "summary": {}, "history": []}
    for r in records(path):
        kind = r.WhichOneof("record_type")
        if kind == "run":
            info.update(run_id=r.run.run_id, group=r.run.run_group, job_type=r.run.job_type, tags=list(r.run.tags))
            info["config"].update(_items(r.run.config.update))
        elif kind == "config":
            info["config"].update(_items(r.config.update))
        elif kind == "summary":
            info["summary"].update(_items(r.summary.update))
        elif kind == "history":
            info["history"].append(_items(r.history.item))
    return info
