"""The ``skbpr`` command: fit, sweep, evaluate and recommend from a YAML configuration.

Commands::

    skbpr fit [--config cfg.yaml] [--save model.joblib] [--plot-dir DIR]
    skbpr sweep --config cfg.yaml [--n-jobs N] [--scheduler tcp://HOST:PORT] [--save best.joblib] [--plot-dir DIR]
    skbpr tune --config cfg.yaml --storage URL [--n-workers N] [--n-trials N] [--create-only | --worker]
    skbpr evaluate --model model.joblib [--config cfg.yaml [--allow-other-data]] [--metrics M ...]
                   [--compare other.joblib ...]
    skbpr recommend --model model.joblib --users u1 u2 [--k 10] [--output recs.csv]
    skbpr recommend --model model.joblib --all-users --output recs.parquet
    skbpr config > run.yaml      # every key with its default
    skbpr config --embedded      # the job fit runs without --config

Without ``--config``, ``fit`` runs the embedded default job (synthetic data
with planted structure, see :data:`skbpr.config.DEFAULT_CONFIG`), whose
configuration writes out every setting it takes other than the defaults
(32 factors, 20 epochs); a key left out of any configuration takes
HybridBPR's default. Models are saved
with joblib, which runs code when loading: load only files you trust.

Exit status: 0 on success, 2 for an invalid configuration or command line
(the message names the offending key or option), 1 for other errors (for
example a download that failed). Output destinations (``--save``,
``--plot-dir``, ``--output``) are checked before any data is loaded: ``--save`` must name a
regular file (new or existing) whose folder is, or can be created in, a
writable folder; ``--plot-dir`` must be, or be creatable as, a writable folder;
``--output`` must in addition end in ``.csv``, ``.json`` or ``.parquet``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
import warnings

from skbpr.cli.config import EXAMPLE_PATH, ConfigError
from skbpr.cli.errors import CommandLineError
from skbpr.cli.files import MODEL_FORMAT, load_model
from skbpr.cli.fitting import cmd_evaluate, cmd_fit, load_data, split_data
from skbpr.cli.recommend import cmd_recommend
from skbpr.cli.sweep import cmd_sweep
from skbpr.models.files import ModelFileError

__all__ = [
    "MODEL_FORMAT",
    "CommandLineError",
    "build_parser",
    "cmd_evaluate",
    "cmd_fit",
    "cmd_recommend",
    "cmd_sweep",
    "load_data",
    "load_model",
    "main",
    "split_data",
]


# --------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    import skbpr

    parser = argparse.ArgumentParser(
        prog="skbpr",
        description="Fit, tune, evaluate and query HybridBPR recommenders from a YAML configuration.",
        epilog="Model files are joblib pickles: loading one runs code, so load only files you trust.",
    )
    parser.add_argument("--version", action="version", version=f"skbpr {skbpr.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "fit",
        help="fit on a per-user train split, compare with popularity on the test split",
        epilog=_config_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="YAML configuration (default: the embedded synthetic example)")
    p.add_argument("--save", metavar="PATH", help="save the fitted model with joblib")
    p.add_argument("--plot-dir", metavar="DIR", help="write learning_curve.png here")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser(
        "sweep",
        help="grid search with per-user K-fold cross-validation",
        epilog=_config_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", required=True, help="YAML configuration with a sweep section")
    p.add_argument("--n-jobs", type=int, default=None, help="parallel fits (default 1; -1 with --scheduler)")
    p.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="run the fits on this Dask scheduler's workers (default: sweep.scheduler, else locally)",
    )
    p.add_argument("--save", metavar="PATH", help="save the refitted best model with joblib")
    p.add_argument("--plot-dir", metavar="DIR", help="write sweep.png here")
    p.set_defaults(func=cmd_sweep)

    from skbpr.cli.tune import add_tune_parser

    add_tune_parser(sub, _config_epilog())

    p = sub.add_parser("evaluate", help="evaluate a saved model on the configuration's test split")
    p.add_argument("--model", required=True, metavar="PATH", help="model file written by fit --save (trusted)")
    p.add_argument("--config", help="YAML configuration (default: the one saved with the model)")
    p.add_argument(
        "--metrics",
        nargs="+",
        metavar="METRIC",
        help="metrics to report, e.g. ndcg@10 recall@10 coverage@10 novelty@10 (default: precision, recall and "
        "NDCG at training.top_k, and AUC)",
    )
    p.add_argument(
        "--compare",
        nargs="+",
        metavar="PATH",
        help="other model files (trusted) fitted on the same split: print means, 95%% bootstrap intervals and "
        "paired tests against --model, Holm-corrected",
    )
    p.add_argument(
        "--test",
        choices=("wilcoxon", "ttest"),
        default="wilcoxon",
        help="paired test of --compare (default wilcoxon)",
    )
    p.add_argument(
        "--allow-other-data",
        action="store_true",
        help="score the model even when --config describes other data or another split than the model was "
        "trained on (refused by default: its test split would hold positives the model trained on)",
    )
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("recommend", help="top-k items for some users from a saved model")
    p.add_argument("--model", required=True, metavar="PATH", help="model file written by fit --save (trusted)")
    p.add_argument(
        "--users",
        nargs="+",
        metavar="USER",
        help="user ids as in the data (an events file's user column, MovieLens user ids); user indices "
        "when the model's data has no ids (synthetic data) or with --index",
    )
    p.add_argument(
        "--all-users",
        action="store_true",
        help="every user of the model, written to --output as user, item, score, rank (raw ids)",
    )
    p.add_argument("--index", action="store_true", help="read --users as user indices (0 .. n_users-1)")
    p.add_argument("--k", type=int, default=10, help="items per user (default 10)")
    p.add_argument("--include-seen", action="store_true", help="keep the training positives in the ranking")
    p.add_argument(
        "--output",
        metavar="PATH",
        help="write the recommendations to PATH instead of printing them: .csv, .json (records) or .parquet",
    )
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser(
        "config",
        help="print an example configuration: every key with its default",
        description=f"Print every configuration key with its default value and allowed values, as YAML "
        f"(the file {EXAMPLE_PATH} of the source tree holds the same text). A key left out of a "
        "configuration file takes this default, HybridBPR's own for the model, optimizer and training keys.",
    )
    p.add_argument(
        "--embedded",
        action="store_true",
        help="print instead the embedded default job that skbpr fit runs without --config: its own "
        "configuration, which writes out every setting it takes other than the defaults",
    )
    p.set_defaults(func=cmd_config)
    return parser


def _config_epilog() -> str:
    from skbpr.cli.config import SCHEMA

    lines = ["configuration sections and keys (all optional):"]
    for section, fields in SCHEMA.items():
        keys = [*fields, "scoring", "<section>.<key>: [values]"] if section == "sweep" else list(fields)
        lines.extend(textwrap.wrap(", ".join(keys), width=96, initial_indent=f"  {section + ':':<11}",
                                   subsequent_indent=" " * 13))  # fmt: skip
    lines.append(f"every key with its default and allowed values: skbpr config (also {EXAMPLE_PATH});")
    lines.append("details in docs/tracking.md")
    return "\n".join(lines)


def cmd_config(args: argparse.Namespace) -> int:
    from skbpr.cli.config import DEFAULT_CONFIG, example_config

    print(DEFAULT_CONFIG if getattr(args, "embedded", False) else example_config(), end="", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for configuration errors)."""
    args = build_parser().parse_args(argv)
    # MLflow's own notices (database creation, the pickle-format caution that the
    # command's help and docs already give) would bury the metrics table.
    for name in ("mlflow.store.db.utils", "mlflow.sklearn", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ff]ilesystem tracking backend.*")
            return args.func(args)
    except ConfigError as exc:
        print(f"skbpr: configuration error: {exc}", file=sys.stderr)
        return 2
    except (CommandLineError, ModelFileError) as exc:
        print(f"skbpr: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:
        print(f"skbpr: error: {exc}", file=sys.stderr)
        return 1
