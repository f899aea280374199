"""The job configs scripts/reproduce.py writes read back, through OmegaConf, as exactly the job: a run
identity of 12 hex digits such as 1234e5678901 is a float to OmegaConf unless it is quoted."""

from __future__ import annotations

import dataclasses

from omegaconf import OmegaConf

from src.sweeps import launch, spec


def test_number_like_identities_and_values_read_back_as_written(tmp_path):
    plan = spec.plan("pcpp/appE", "smoke", tmp_path)
    odd = dataclasses.replace(plan.jobs[0], run_id="1234e5678901")
    written = launch.write_job_configs(plan, [odd]) / "experiment" / f"{odd.run_name}.yaml"
    assert OmegaConf.load(written).run_id == "1234e5678901"
    for text in ("1234e5678901", "0e1", "12", "1.5", "-3e4", "inf", "NaN", ".5"):
        assert launch._NUMBER_LIKE.match(text), text
        dumped = launch.yaml.dump({"v": text}, Dumper=launch._JobDumper)
        assert OmegaConf.create(dumped).v == text, dumped
    for text in ("abc123", "deadbeef0123", "bnnpp", "seed0_1234e5678901"):
        assert not launch._NUMBER_LIKE.match(text), text
