"""Small runs in this process, for the transformer ablation scripts (scripts/vit_table5.py,
vit_figure2.py and vit_figure3.py: PC++ Table 5 and Figures 2 and 3 at tiny scale).

Each run is the engine's ordinary run (src.engine.stages: pre-train stage included) in
``<root>/<name>``; a run whose results.json says completed is read back, not repeated, so a
script that was interrupted picks up where it stopped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir

from src.core.config_tree import CONFIG_DIR
from src.engine.stages import run_stages


def compose_train(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def run(root: Path, name: str, overrides: list[str]) -> dict[str, Any]:
    """The results of run ``name`` with ``overrides`` (trained now unless already completed)."""
    run_dir = Path(root) / name
    done = run_dir / "results.json"
    if done.exists():
        results = json.loads(done.read_text())
        if results.get("status") == "completed":
            return results
    start = time.perf_counter()
    results = run_stages(compose_train([*overrides, f"run_name={name}", "trainer.progress=false"]), run_dir)
    print(f"  {name:<40} {results['status']:<10} test acc {results.get('final_test_acc') or float('nan'):6.2f}%  "
          f"({time.perf_counter() - start:.0f} s)", flush=True)
    if results["status"] != "completed":
        raise RuntimeError(f"run {name} ended {results['status']}: {results.get('message')}")
    return results
