"""The outputs docs/tracking.md prints are those the command line prints today."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _figures_script():
    spec = importlib.util.spec_from_file_location("tracking_figures", ROOT / "benchmarks" / "tracking_figures.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_tracking_page_shows_the_outputs_of_its_commands(tmp_path):
    figures = _figures_script()
    shown = figures.page_outputs(figures.PAGE.read_text())
    assert set(shown) == set(figures.COMMANDS)  # every command of the page has its output block
    # a fresh process, as a reader would run them: no MLflow store or setting left by other tests
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    script = ROOT / "benchmarks" / "tracking_figures.py"
    run = subprocess.run(
        [sys.executable, str(script), "--json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-2000:]
    produced = json.loads(run.stdout.strip().splitlines()[-1])
    for name, output in produced.items():
        assert figures.stable(shown[name]) == figures.stable(output), (
            f"docs/tracking.md shows another output for `{name}`: run python benchmarks/tracking_figures.py --write"
        )


def test_stable_masks_only_durations_and_run_ids():
    figures = _figures_script()
    text = "fitted in 3.7 s\nMLflow run 75ad14053dcd4c5d898edb5a2c987234 stored\nndcg@10 0.2432"
    assert figures.stable(text) == "fitted in <t> s\nMLflow run <run id> stored\nndcg@10 0.2432"
