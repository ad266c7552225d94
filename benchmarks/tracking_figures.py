"""Make the figures and outputs of docs/tracking.md with the command line, in an empty folder.

Runs ``skbpr fit --plot-dir`` and ``skbpr sweep --config benchmarks/configs/sweep.yaml
--n-jobs 2 --plot-dir`` on the embedded synthetic data, tracking into a fresh
``mlflow.db``, prints both outputs and copies ``learning_curve.png`` and
``sweep.png`` into ``docs/img``.

Example
-------
python benchmarks/tracking_figures.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from skbpr import cli

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--img-dir", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args(argv)
    config = ROOT / "benchmarks" / "configs" / "sweep.yaml"
    here = Path.cwd()
    with tempfile.TemporaryDirectory() as work:
        os.chdir(work)  # MLflow's default store lands in the empty folder
        try:
            for command in (
                ["fit", "--plot-dir", "img"],
                ["sweep", "--config", str(config), "--n-jobs", str(args.n_jobs), "--plot-dir", "img"],
            ):
                print(f"$ skbpr {' '.join(command)}", flush=True)
                if cli.main(command) != 0:
                    raise SystemExit(f"skbpr {command[0]} failed")
            args.img_dir.mkdir(parents=True, exist_ok=True)
            for name in ("learning_curve.png", "sweep.png"):
                shutil.copy(Path(work) / "img" / name, args.img_dir / name)
        finally:
            os.chdir(here)


if __name__ == "__main__":
    main()
