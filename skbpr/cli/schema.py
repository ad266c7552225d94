"""The configuration's keys: their fields, derived from HybridBPR's signature, and the defaults."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from skbpr.utils.signature import read_parameters


@dataclass(frozen=True)
class Field:
    """One configuration key: its type, default, allowed values and HybridBPR parameter."""

    kind: str  # "int", "float", "str", "bool"
    default: Any
    nullable: bool = False
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    strict: bool = False  # minimum excluded
    maximum: float | None = None  # included
    param: str | None = None  # HybridBPR parameter it sets
    help: str = ""  # one line for the example configuration
    auto: bool = False  # the string "auto" is accepted too (HybridBPR's per-loss default)

    def describe(self) -> str:
        what = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false"}[self.kind]
        if self.choices is not None:
            what = "one of " + ", ".join(self.choices)
        elif self.minimum is not None and self.maximum is not None:
            what += f" in {'(' if self.strict else '['}{self.minimum:g}, {self.maximum:.0f}]"
        elif self.minimum is not None:
            what += f" {'>' if self.strict else '>='} {self.minimum:g}"
        if self.nullable:
            what += " or null"
        if self.auto:
            what += " or auto (the loss's default)"
        return what


def _f(kind: str, default: Any, **kwargs: Any) -> Field:
    return Field(kind, default, **kwargs)


MAX_SEED = 2**32 - 1  # numpy's RandomState and scikit-learn take seeds in [0, 2**32 - 1]


# The model, optimizer and training sections are HybridBPR's parameters, derived
# from its signature and docstring (type, default, allowed values, help line): a new
# parameter appears in the configuration, the example file, --help and the docs
# without another edit. Ranges are checked by HybridBPR itself (see _check_estimator).
ESTIMATOR = ("skbpr.models.hybrid", "HybridBPR")
# Parameters of another section than training, and their key there when it differs.
_PLACES = {
    "n_components": ("model", "n_components"),
    "init_std": ("model", "init_std"),
    "user_features_mode": ("model", "user_features_mode"),
    "item_features_mode": ("model", "item_features_mode"),
    "optimizer": ("optimizer", "name"),
    "learning_rate": ("optimizer", "learning_rate"),
    "alpha": ("optimizer", "alpha"),
    "initial_accumulator": ("optimizer", "initial_accumulator"),
}
# Parameters a configuration does not set, and why.
NOT_CONFIGURED = {
    "eval_metric": "set by training.top_k: ndcg@<top_k>",
    "callbacks": "the command line attaches its own MLflow callback",
    "verbose": "the command line reports epochs itself",
    "warm_start": "every command fits a fresh model",
}
# Where the command line departs from HybridBPR's default, and why.
CLI_DEFAULTS = {
    # null: about ten evaluations per fit, ceil(epochs / 10) (see auto_eval_every),
    # as validation metrics every epoch can cost more than the training itself
    "eval_every": None,
    # runs from a configuration are reproducible unless a seed of null asks otherwise
    "random_state": 0,
}
_KINDS = ("bool", "int", "float", "str")


def _estimator_field(param: Any) -> Field:
    kinds = [k for k in _KINDS if re.search(rf"\b{k}\b", param.annotation)]
    if not kinds and param.choices:  # a type alias such as Weighting: its documented choices are strings
        kinds = ["str"]
    if not kinds:
        raise TypeError(f"HybridBPR parameter {param.name} has no configurable type ({param.annotation!r})")
    nullable = "None" in param.annotation or param.name in CLI_DEFAULTS and CLI_DEFAULTS[param.name] is None
    extra: dict[str, Any] = {}
    if param.name == "random_state":  # numpy's RandomState and scikit-learn take seeds in [0, 2**32 - 1]
        extra = {"minimum": 0, "maximum": MAX_SEED}
    auto = kinds[0] in ("int", "float") and param.default == "auto"  # a per-loss default, resolved in fit
    return Field(
        kinds[0],
        CLI_DEFAULTS.get(param.name, param.default),
        auto=auto,
        nullable=nullable,
        choices=param.choices,
        param=param.name,
        help=re.sub(r":\w+:`~?(?:[\w.]+\.)?([^`]+)`", r"\1", param.summary).replace("``", ""),
        **extra,
    )


def _estimator_sections() -> dict[str, dict[str, Field]]:
    sections: dict[str, dict[str, Field]] = {"model": {}, "optimizer": {}, "training": {}}
    for param in read_parameters(*ESTIMATOR):
        if param.name in NOT_CONFIGURED:
            continue
        section, key = _PLACES.get(param.name, ("training", param.name))
        sections[section][key] = _estimator_field(param)
    sections["training"]["top_k"] = Field(
        "int", 10, minimum=1, help="k of the reported metrics; eval_metric is ndcg@<top_k>"
    )
    return sections


SCHEMA: dict[str, dict[str, Field]] = {
    **_estimator_sections(),
    "data": {
        "source": _f("str", "synthetic", choices=("synthetic", "movielens", "file")),
        # synthetic (skbpr.datasets.make_interactions)
        "n_users": _f("int", 2000, minimum=1),
        "n_items": _f("int", 500, minimum=1),
        "n_interactions": _f("int", 100000, minimum=1),
        "n_user_features": _f("int", 10, minimum=0),
        "n_item_features": _f("int", 10, minimum=0),
        "exposure_signal": _f("float", 3.0, minimum=0),
        "popularity_skew": _f("float", 0.5, minimum=0),
        "noise": _f("float", 0.25, minimum=0),
        # movielens (skbpr.datasets.load_movielens)
        "name": _f("str", "ml-100k"),
        "data_home": _f("str", None, nullable=True),
        "download": _f("bool", True),
        # file (an events table read with pandas)
        "path": _f("str", None, nullable=True),
        "format": _f("str", None, nullable=True, choices=("csv", "parquet")),
        "user_col": _f("str", "user_id"),
        "item_col": _f("str", "item_id"),
        "rating_col": _f("str", None, nullable=True),
        "threshold": _f("float", None, nullable=True),
        # split
        "test_size": _f("float", 0.2, minimum=0, strict=True),
        "random_state": _f("int", 0, nullable=True, minimum=0, maximum=MAX_SEED),
    },
    "mlflow": {
        "enabled": _f("bool", True),
        "tracking_uri": _f("str", None, nullable=True),
        "experiment_name": _f("str", "skbpr"),
        "run_name": _f("str", None, nullable=True),
        "log_model": _f("bool", True),
        "fallback_uri": _f("str", None, nullable=True),
    },
    "sweep": {
        "cv": _f("int", 3, minimum=2),
        "scheduler": _f("str", None, nullable=True),
        # "scoring" (a metric name or a list of them) is checked separately
    },
}

SWEEP_SECTIONS = ("model", "optimizer", "training")
DEFAULT_SCORING = ("ndcg@10", "auc")

# The job of `skbpr fit` without --config (`skbpr config --embedded` prints it). Like any
# configuration, what it leaves out takes the schema's defaults (HybridBPR's own for the model,
# optimizer and training keys): a setting of its own, such as its smaller model, is written here.
DEFAULT_CONFIG = """\
# The embedded default job of `skbpr fit` without --config: synthetic data
# with planted structure (make_interactions(2000, 500, 100000,
# exposure_signal=3.0, popularity_skew=0.5, noise=0.25, random_state=0)),
# and a smaller, quicker model than HybridBPR's defaults (64 factors,
# 50 epochs): 32 factors, 20 epochs. Keys left out take the defaults
# that `skbpr config` prints.
model:
  n_components: 32
training:
  loss: bpr
  epochs: 20
  random_state: 0
data:
  source: synthetic
  n_users: 2000
  n_items: 500
  n_interactions: 100000
  exposure_signal: 3.0
  popularity_skew: 0.5
  noise: 0.25
  test_size: 0.2
  random_state: 0
mlflow:
  enabled: true
  experiment_name: skbpr
"""


def auto_eval_every(epochs: int) -> int:
    """The ``training.eval_every`` that ``null`` stands for: about ten evaluations, ``ceil(epochs / 10)``."""
    return max(1, -(-int(epochs) // 10))


def hybrid_param_keys() -> dict[str, str]:
    """HybridBPR parameter name -> dotted config key."""
    return {f.param: f"{s}.{k}" for s in SWEEP_SECTIONS for k, f in SCHEMA[s].items() if f.param}
