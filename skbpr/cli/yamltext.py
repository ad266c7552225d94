"""YAML text of configurations: the alias-refusing loader and the commented example configuration."""

from __future__ import annotations

from typing import Any

from skbpr.cli.schema import DEFAULT_SCORING, SCHEMA

# One line of help per key for the example configuration (``skbpr config``) where the
# schema's own (HybridBPR's docstring, for its parameters) does not say it; the allowed
# values and the HybridBPR parameter are added from the schema.
_HELP = {
    "training.eval_every": "validation metrics every this many epochs; null: ceil(epochs / 10), about 10 evaluations",
    "data.source": "where the interactions come from; the keys below apply to one source each",
    "data.n_users": "synthetic: skbpr.datasets.make_interactions",
    "data.n_interactions": "synthetic: at most 20% of n_users * n_items",
    "data.name": "movielens: skbpr.datasets.load_movielens release",
    "data.data_home": "movielens: cache folder (null: $SKBPR_DATA, else ~/skbpr_data)",
    "data.download": "movielens: false uses only a local copy in data_home",
    "data.path": "file: csv or parquet events table; relative paths start at the config file's folder",
    "data.format": "file: null guesses from the file name",
    "data.user_col": "file: column of user ids",
    "data.item_col": "file: column of item ids",
    "data.rating_col": "file: with threshold, rating >= threshold is a positive, else an implicit negative",
    "data.threshold": "null with movielens means 4.0; without rating_col every row is a positive",
    "data.test_size": "share of each user's positives in the test split",
    "data.random_state": "seed of the split (and of the synthetic data)",
    "mlflow.enabled": "false: no tracking",
    "mlflow.tracking_uri": "null: MLflow's default store",
    "mlflow.log_model": "log the fitted model with the fit's run (skbpr sweep never does)",
    "mlflow.fallback_uri": "where records go when the store fails (null: ./mlflow-fallback.db)",
    "sweep.cv": "PerUserKFold folds",
    "sweep.scheduler": "Dask scheduler address (tcp://HOST:8786) the fits run on; null: this machine",
}

EXAMPLE_PATH = "benchmarks/configs/run.yaml"


def _yaml_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    import yaml

    return text if yaml.safe_load(text) == value else yaml.safe_dump(value, default_style='"').strip()


def example_config() -> str:
    """Every configuration key with its default, as commented YAML (``skbpr config`` prints it).

    The file ``benchmarks/configs/run.yaml`` holds this text; a test keeps it in step with :data:`SCHEMA`.
    """
    lines = [
        "# skbpr run configuration: every key with its default value.",
        "# Generated from skbpr.config.SCHEMA by `skbpr config`; every key is optional.",
        "# Use with: skbpr fit --config run.yaml (see docs/tracking.md)",
        "# `skbpr fit` without --config runs the embedded default job instead, whose own",
        "# configuration sets a smaller model: `skbpr config --embedded` prints it.",
    ]
    for section, fields in SCHEMA.items():
        lines.append(f"{section}:" if section != "sweep" else "sweep:  # used by skbpr sweep and skbpr tune only")
        if section == "sweep":
            lines.append("  # searched keys: dotted keys of model / optimizer / training mapped to lists, such as")
            lines.append("  # training.loss: [bpr, warp]")
            lines.append("  # model.n_components: [16, 32]")
        for key, field in fields.items():
            help_line = _HELP.get(f"{section}.{key}", field.help)
            if help_line:
                lines.append(f"  # {help_line}")
            notes = [field.describe()]
            if field.param is not None and field.param != key:
                notes.append(f"HybridBPR {field.param}")
            entry = f"  {key}: {_yaml_scalar(field.default)}"
            lines.append(f"{entry:<30}# {'; '.join(notes)}")
        if section == "sweep":
            lines.append("  # metric names (precision@k, recall@k, ndcg@k, auc); the first picks the best candidate")
            lines.append(f"  scoring: [{', '.join(DEFAULT_SCORING)}]")
    return "\n".join(lines) + "\n"


MAX_DEPTH = 100  # nesting levels of a configuration; six sections of scalars and lists need three


def alias_free_loader() -> type:
    """A ``yaml.SafeLoader`` for configurations: no aliases, no duplicate keys, bounded nesting.

    Aliases (``*name``) are the way to a billion-laughs bomb; a key given twice in
    one mapping (two ``training:`` sections) would silently keep the last one; and
    nesting deeper than :data:`MAX_DEPTH` levels (``[[[[...``) would exhaust Python's
    recursion limit. Each is a ``yaml.YAMLError`` naming the line(s).
    """
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        _depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"YAML aliases are not allowed in a configuration (found *{event.anchor}); "
                    "write the value out instead of an &anchor and *alias",
                    event.start_mark,
                )
            if self._depth >= MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested more than {MAX_DEPTH} levels deep; a configuration needs three "
                    "(section, key, list of values)",
                    self.peek_event().start_mark,
                )
            self._depth += 1
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if isinstance(node, yaml.MappingNode):
                seen: dict[Any, Any] = {}
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=True)
                    try:
                        first = seen.setdefault(key, key_node)
                    except TypeError:  # unhashable: SafeLoader's own error follows
                        continue
                    if first is not key_node:
                        raise yaml.constructor.ConstructorError(
                            None,
                            None,
                            f"duplicate key {key!r} (lines {first.start_mark.line + 1} and "
                            f"{key_node.start_mark.line + 1}): YAML would keep only the last one; "
                            "merge them into one",
                            key_node.start_mark,
                        )
            return super().construct_mapping(node, deep=deep)

    return NoAliasLoader
