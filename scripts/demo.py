"""`make demo`: train on the embedded handwritten-digits data and print the results side by side.

Each run is the same `python src/train.py ...` command a user would type; outputs go to
outputs/runs/<run_name>/ (results.json, summary.csv, checkpoints/). Re-running the demo
resumes or skips finished runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMON = ["dataset=digits", "model=resnet20", "trainer.max_epochs=8", "optimizer.lr=0.05"]
# (label, run_name, overrides)
RUNS = [
    ("FP", "demo_fp", ["quantizer=fp", "task=bw"]),
]


def main() -> int:
    rows = []
    for label, run_name, overrides in RUNS:
        command = [sys.executable, str(ROOT / "src" / "train.py"), *COMMON, *overrides, f"run_name={run_name}"]
        print(f"\n=== {label}: {' '.join(command[1:])}", flush=True)
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT)
        results_file = ROOT / "outputs" / "runs" / run_name / "results.json"
        results = json.loads(results_file.read_text()) if results_file.exists() else {}
        rows.append((label, results, time.perf_counter() - start, done.returncode))
    print("\nproxbin demo — ResNet-20 on scikit-learn's handwritten digits (binary-network test accuracy)\n")
    print(f"{'method':<12}{'task':<6}{'status':<12}{'test acc':>10}{'best':>10}{'epochs':>8}{'time':>8}")
    for label, r, seconds, rc in rows:
        task = r.get("config", {}).get("task", {}).get("name", "?")
        print(f"{label:<12}{task:<6}{r.get('status', f'exit {rc}'):<12}{_pct(r.get('final_test_acc')):>10}"
              f"{_pct(r.get('best_test_acc')):>10}{r.get('epochs_completed', 0):>8}{seconds:>7.0f}s")
    print(f"\nrun directories: {ROOT / 'outputs' / 'runs'}")
    return max(rc for *_, rc in rows)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}%"


if __name__ == "__main__":
    sys.exit(main())
