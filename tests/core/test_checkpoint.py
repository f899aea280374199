"""Checkpoints: a checksum of everything they hold, checked on every load; loading another model's
weights only as far as allowed."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from src.core.checkpoint import load_checkpoint, load_matching, payload_checksum, rng_state, save_checkpoint
from src.core.errors import UserError


def state() -> dict:
    torch.manual_seed(0)
    return {"model": {"w": torch.randn(64, 32), "b": torch.zeros(3, dtype=torch.bfloat16), "step": torch.tensor(5)},
            "rng": rng_state(), "history": [{"epoch": 1, "test_acc": 12.5, "lr": 0.1}],
            "best": {"test_acc": 12.5, "epoch": 1}, "config": {"seed": 0, "tags": ["a", None]}, "note": (1, 2.5, "x")}


def test_the_checksum_survives_save_and_load_and_a_flipped_bit_is_refused(tmp_path):
    path = tmp_path / "last.pt"
    checksum = save_checkpoint(path, state())
    loaded = load_checkpoint(path)
    assert loaded["checksum"] == checksum == payload_checksum(loaded)
    assert torch.equal(loaded["model"]["w"], state()["model"]["w"])
    data = bytearray(path.read_bytes())
    at = bytes(data).find(state()["model"]["w"].numpy().tobytes())
    data[at + 1000] ^= 0x01
    path.write_bytes(bytes(data))
    damaged = path.read_bytes()
    with pytest.raises(UserError, match=f"checkpoint '{path}' is damaged: its content does not match the checksum"):
        load_checkpoint(path)
    assert path.read_bytes() == damaged


def test_checksum_covers_every_value():
    base = payload_checksum(state())
    changed = state()
    changed["history"][0]["test_acc"] = 12.6
    assert payload_checksum(changed) != base
    changed = state()
    changed["rng"]["numpy"][1][0] += 1
    assert payload_checksum(changed) != base
    assert payload_checksum({**state(), "checksum": "sha256:whatever"}) == base  # all but itself


def test_files_without_a_checksum_load_as_they_are(tmp_path):
    path = tmp_path / "plain.pth"
    torch.save({"w": torch.ones(2)}, path)
    assert torch.equal(load_checkpoint(path)["w"], torch.ones(2))


def test_load_matching_allows_only_the_named_modules_to_differ():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    other_head = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 5)).state_dict()
    report = load_matching(model, other_head, may_differ=["2"])
    assert report["loaded"] == 2 and report["shape_mismatch"] == ["2.bias", "2.weight"]
    assert torch.equal(model[0].weight, other_head["0.weight"])
    with pytest.raises(UserError, match=r"2 of 4 tensors match \(nothing may differ\); missing or of another "
                                        r"shape: 2 \(2\.bias, 2\.weight\)"):
        load_matching(model, other_head)
    smaller = {k: v for k, v in other_head.items() if k.startswith("0.")}
    with pytest.raises(UserError, match=r"\(only 2 may differ\)"):
        load_matching(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.Linear(8, 3)), smaller,
                      may_differ=["2"])
    assert load_matching(model, smaller, may_differ=None)["missing"] == ["2.bias", "2.weight"]
    with pytest.raises(UserError, match="0 of 4 tensors match"):
        load_matching(model, {"x": torch.ones(1)}, may_differ=None)
