"""What the ``skbpr`` commands print: messages, warnings and tables, and MLflow kept quiet."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from typing import Any

from skbpr.cli.config import Config

__all__ = ["print_table", "quiet_mlflow", "say", "tracking_available", "warn"]


def say(*parts: Any) -> None:
    """Print a line of the command's output to stdout, flushed at once."""
    print(*parts, flush=True)


def warn(message: str) -> None:
    """Print ``skbpr: warning: <message>`` to stderr, flushed at once."""
    print(f"skbpr: warning: {message}", file=sys.stderr, flush=True)


def print_table(rows: list[dict[str, Any]], columns: list[str], left: tuple[str, ...] = ()) -> None:
    """Print a plain-text table: the first column and those in ``left`` left-aligned, the others right-aligned.

    Examples
    --------
    >>> from skbpr.cli.output import print_table
    >>> print_table([{"model": "HybridBPR", "auc": 0.91234}, {"model": "popularity", "auc": 0.8}], ["model", "auc"])
    model          auc
    HybridBPR   0.9123
    popularity  0.8000
    """

    def cell(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    widths = [max(len(c), *(len(cell(r.get(c, ""))) for r in rows)) for c in columns]

    def line(texts: list[str]) -> str:
        parts = [
            t.ljust(w) if i == 0 or c in left else t.rjust(w)
            for i, (t, c, w) in enumerate(zip(texts, columns, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    say(line(list(columns)))
    for row in rows:
        say(line([cell(row.get(c, "")) for c in columns]))


def tracking_available(config: Config) -> bool:
    """Whether the configuration asks for MLflow and MLflow can be used (else a warning says why)."""
    if not config["mlflow"]["enabled"]:
        return False
    if importlib.util.find_spec("mlflow") is None:
        warn("tracking is off: MLflow is not installed (pip install mlflow, or set mlflow.enabled: false)")
        return False
    quiet_mlflow()
    return True


def quiet_mlflow() -> None:
    """Keep MLflow's INFO notices ("Experiment ... does not exist. Creating a new experiment",
    "View run ... at ...") out of the command's output; its warnings and errors still show.

    MLflow sets its logger's level when it is imported, so this runs after the import.
    ``MLFLOW_LOGGING_LEVEL``, when set, is left to decide.
    """
    import mlflow  # noqa: F401 - configures the "mlflow" logger, which is then adjusted

    if not os.environ.get("MLFLOW_LOGGING_LEVEL"):
        logging.getLogger("mlflow").setLevel(logging.WARNING)
