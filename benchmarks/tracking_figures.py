"""Make the figures and printed outputs of docs/tracking.md with the command line, in an empty folder.

Runs ``skbpr fit --plot-dir img`` and ``skbpr sweep --config sweep.yaml --n-jobs 2
--plot-dir img`` (``benchmarks/configs/sweep.yaml``) on the embedded synthetic
data, tracking into a fresh ``mlflow.db``, prints both outputs, copies
``learning_curve.png`` and ``sweep.png`` into ``docs/img`` and, with
``--write``, puts the outputs into the page between its ``<!-- output: ... -->``
markers. ``tests/test_docs_outputs.py`` runs the same commands and fails when
the page shows other numbers.

Example
-------
python benchmarks/tracking_figures.py --write
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "tracking.md"
SWEEP_CONFIG = ROOT / "benchmarks" / "configs" / "sweep.yaml"
COMMANDS = {
    "skbpr fit --plot-dir img": ["fit", "--plot-dir", "img"],
    "skbpr sweep --config sweep.yaml --n-jobs 2 --plot-dir img": [
        "sweep",
        "--config",
        str(SWEEP_CONFIG),
        "--n-jobs",
        "2",
        "--plot-dir",
        "img",
    ],
}
_BLOCK = re.compile(r"(<!-- output: (?P<name>.+?) -->\n```text\n)(?P<body>.*?)(```\n<!-- end output -->)", re.S)


def run_commands(img_dir: Path | None = None) -> dict[str, str]:
    """Run every command of the page in an empty folder; their printed outputs by name.

    The temporary folder's path is shown as ``.`` so that the text does not
    depend on where it ran.
    """
    from skbpr import cli

    outputs = {}
    here = Path.cwd()
    with tempfile.TemporaryDirectory() as work:
        os.chdir(work)  # MLflow's default store lands in the empty folder
        try:
            for name, command in COMMANDS.items():
                buffer = io.StringIO()
                with contextlib.redirect_stdout(buffer):
                    status = cli.main(command)
                if status != 0:
                    raise SystemExit(f"{name} failed:\n{buffer.getvalue()}")
                text = buffer.getvalue().replace(str(Path(work).resolve()), ".").replace(work, ".")
                outputs[name] = text.replace(str(SWEEP_CONFIG), "sweep.yaml")
            if img_dir is not None:
                img_dir.mkdir(parents=True, exist_ok=True)
                for png in ("learning_curve.png", "sweep.png"):
                    shutil.copy(Path(work) / "img" / png, img_dir / png)
        finally:
            os.chdir(here)
    return outputs


def page_outputs(text: str) -> dict[str, str]:
    """The outputs the page shows, by command."""
    return {m["name"]: m["body"] for m in _BLOCK.finditer(text)}


def stable(output: str) -> str:
    """``output`` without what changes from run to run: durations and MLflow run ids."""
    output = re.sub(r"\d+(\.\d+)? s\b", "<t> s", output)
    return re.sub(r"\b[0-9a-f]{32}\b", "<run id>", output)


def write_page(outputs: dict[str, str]) -> None:
    """Put ``outputs`` into the page between its markers."""
    text = PAGE.read_text()
    missing = set(outputs) - set(page_outputs(text))
    if missing:
        raise SystemExit(f"{PAGE} has no output block for {sorted(missing)}")
    PAGE.write_text(_BLOCK.sub(lambda m: m.group(1) + outputs[m["name"]] + m.group(4), text))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--img-dir", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--write", action="store_true", help="rewrite the outputs shown in docs/tracking.md")
    parser.add_argument("--json", action="store_true", help="print the outputs as JSON only (no figures copied)")
    args = parser.parse_args(argv)
    if args.json:
        print(json.dumps(run_commands()))
        return
    outputs = run_commands(args.img_dir)
    for name, output in outputs.items():
        print(f"$ {name}\n{output}", flush=True)
    if args.write:
        write_page(outputs)
        print(f"outputs written to {PAGE}")


if __name__ == "__main__":
    main()
