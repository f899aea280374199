"""Initial weights of the ft pipeline (src/engine/init.py): what was loaded, said in one line; a
checkpoint trained with another activation is warned about."""

from __future__ import annotations

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from conftest import compose_train
from src.engine.init import activation_warnings, initialise, report_line


def test_another_activation_is_warned_about_naming_both():
    checkpoint = {"model": {}, "config": {"model": {"net": {"activation": "relu"}}}}
    model_cfg = OmegaConf.create({"net": {"activation": "hardtanh"}})
    (warning,) = activation_warnings(checkpoint, model_cfg, "fp/best.pt")
    assert "'fp/best.pt' were trained with model.net.activation=relu, this run uses hardtanh" in warning
    assert "model.net.activation=hardtanh" in warning.split("this run uses")[1]


def test_the_same_activation_or_no_config_gives_no_warning():
    same = {"config": {"model": {"net": {"activation": "relu"}}}}
    relu = OmegaConf.create({"net": {"activation": "relu"}})
    assert activation_warnings(same, relu, "x") == []
    assert activation_warnings({"fc.weight": torch.zeros(1)}, relu, "x") == []  # a plain state_dict
    assert activation_warnings(same, OmegaConf.create({"net": {}}), "x") == []  # a model without the key


def test_initialise_records_the_warning_with_what_it_loaded(tmp_path):
    fp = compose_train(["model=resnet20"])
    path = tmp_path / "fp.pt"
    torch.save({"model": instantiate(fp.model.net).state_dict(), "config": OmegaConf.to_container(fp, resolve=True)},
               path)
    bwa = compose_train(["model=resnet20", "pipeline=ft", f"pipeline.checkpoint={path}", "task=bwa"])
    report = initialise(instantiate(bwa.model.net), bwa.pipeline, bwa.model)
    assert report["loaded"] > 0 and report["missing"] == []
    assert len(report["warnings"]) == 1 and "model.net.activation=relu" in report["warnings"][0]


def test_report_line_lists_skipped_and_missing_tensors():
    line = report_line({"source": "w.pth", "loaded": 60, "shape_mismatch": ["fc.bias", "fc.weight"], "unexpected": [],
                        "missing": ["fc.bias", "fc.weight"]})
    assert line == ("initial weights from w.pth: 60 tensors loaded; skipped (another shape or not in the model): "
                    "2 (fc.bias, fc.weight); left at their initialisation: 2 (fc.bias, fc.weight)")
