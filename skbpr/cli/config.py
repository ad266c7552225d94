"""YAML run configuration for the ``skbpr`` command line: schema, defaults and validation.

A configuration has six sections; every key is optional and takes its
default when left out (``skbpr config`` prints every key with its default)::

    model:      n_components, init_std, user_features_mode, item_features_mode
    optimizer:  name (HybridBPR's optimizer), learning_rate, alpha
    training:   every other HybridBPR parameter, and top_k
    data:       source (synthetic | movielens | file) and its keys, test_size,
                random_state
    mlflow:     enabled, tracking_uri, experiment_name, run_name, log_model,
                fallback_uri
    sweep:      dotted keys of the model, optimizer and training sections
                mapped to lists of values, cv, scoring, scheduler

The ``model``, ``optimizer`` and ``training`` keys are derived from
HybridBPR's signature and docstring (:data:`SCHEMA`): their types, defaults,
allowed values and help lines are the estimator's, so a new parameter needs
no edit here. The command line departs from the estimator's defaults only
where :data:`CLI_DEFAULTS` says why, and leaves out the parameters of
:data:`NOT_CONFIGURED`.

``training.eval_every`` defaults to ``null``: about ten evaluations per fit,
every ``ceil(epochs / 10)`` epochs (every epoch up to 10 epochs, every 2nd
for the default 20), as computing validation metrics every epoch can cost
more than the training itself. Set it to ``1`` for a curve point per epoch.

The keys of ``model``, ``optimizer`` and ``training`` map to parameters of
:class:`skbpr.HybridBPR` (``optimizer.name`` to ``optimizer``,
``training.top_k`` to ``eval_metric="ndcg@<top_k>"``). Any problem (an
unknown section or key, a value of the wrong type or outside its range, a
missing file) raises :class:`ConfigError`, whose message names the dotted
key and the offending value (its repr cut to about 200 characters).

Configuration files are UTF-8 YAML read with a safe loader that refuses
aliases (``*name``): an alias would let a few hundred bytes expand to
gigabytes. Write repeated values out instead.
"""

from __future__ import annotations

import copy
import difflib
import math
import numbers
import reprlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from skbpr.cli.schema import (
    CLI_DEFAULTS,
    DEFAULT_CONFIG,
    DEFAULT_SCORING,
    ESTIMATOR,
    MAX_SEED,
    NOT_CONFIGURED,
    SCHEMA,
    SWEEP_SECTIONS,
    Field,
    auto_eval_every,
    hybrid_param_keys,
)
from skbpr.cli.yamltext import EXAMPLE_PATH, alias_free_loader, example_config

__all__ = [
    "CLI_DEFAULTS",
    "DEFAULT_CONFIG",
    "DEFAULT_SCORING",
    "ESTIMATOR",
    "EXAMPLE_PATH",
    "MAX_REPR",
    "MAX_SEED",
    "NOT_CONFIGURED",
    "SCHEMA",
    "SWEEP_SECTIONS",
    "Config",
    "ConfigError",
    "Field",
    "auto_eval_every",
    "example_config",
    "load_config",
    "parse_yaml",
    "shown",
    "validate_config",
]


class ConfigError(ValueError):
    """An invalid configuration; the message names the dotted key and the bad value."""


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxtuple, _REPR.maxset = 3, 10, 10, 10, 10
_REPR.maxstring, _REPR.maxlong, _REPR.maxother = 200, 60, 200
MAX_REPR = 200


def shown(value: Any) -> str:
    """``repr(value)`` for an error message, bounded in size and in the work it takes (~200 characters)."""
    text = _REPR.repr(value)
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "..."


def _name(key: Any) -> str:
    """A section or key name for an error message: as written when it is a short string."""
    return key if isinstance(key, str) and len(key) <= MAX_REPR else shown(key)


def _fail(key: str, value: Any, what: str) -> ConfigError:
    return ConfigError(f"{key}: expected {what}, got {shown(value)}")


def _suggest(name: str, options: list[str], prefix: str = "") -> str:
    close = difflib.get_close_matches(name, options, n=1)
    return f"; did you mean {prefix + close[0]!r}?" if close else ""


def _check_value(key: str, field: Field, value: Any) -> Any:
    """The value converted to the field's type, or a ConfigError naming ``key``."""
    if value is None:
        if field.nullable:
            return None
        raise _fail(key, value, field.describe())
    if field.auto and value == "auto":
        return value
    if field.kind == "bool":
        if not isinstance(value, bool):
            raise _fail(key, value, field.describe())
        return value
    if field.kind == "str":
        if not isinstance(value, str):
            raise _fail(key, value, field.describe())
        if field.choices is not None and value not in field.choices:
            raise _fail(key, value, field.describe())
        return value
    if field.kind == "int":
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise _fail(key, value, field.describe())
        value = int(value)
    else:  # float; YAML 1.1 reads 1e-3 (no dot) as a string, so accept numeric strings
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise _fail(key, value, field.describe()) from None
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise _fail(key, value, field.describe())
        value = float(value)
    if field.minimum is not None:
        if value < field.minimum or (field.strict and value == field.minimum):
            raise _fail(key, value, field.describe())
    if field.maximum is not None and value > field.maximum:
        raise _fail(key, value, field.describe())
    return value


def _check_scoring(value: Any) -> tuple[str, ...]:
    from skbpr.evaluation.names import parse_metric

    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names:
        raise _fail("sweep.scoring", value, "a metric name such as 'ndcg@10' or a non-empty list of them")
    for name in names:
        try:
            parse_metric(name)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"sweep.scoring: {exc}") from None
    if len(set(names)) != len(names):
        raise _fail("sweep.scoring", value, "distinct metric names")
    return tuple(names)


class Config:
    """A validated configuration: every section with every key filled in.

    Use :func:`load_config` or :func:`validate_config` to make one. Sections
    are plain dicts: ``config["training"]["epochs"]``; ``config.grid`` holds
    the searched values of the ``sweep`` section by dotted key.
    """

    def __init__(self, sections: dict[str, dict[str, Any]], grid: dict[str, list], scoring: tuple[str, ...]):
        self.sections = sections
        self.grid = grid
        self.scoring = scoring

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.sections[section]

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (``sweep`` with its grid, ``cv`` and ``scoring``), loadable again."""
        out = copy.deepcopy(self.sections)
        out["sweep"] = {**copy.deepcopy(self.grid), **out.get("sweep", {}), "scoring": list(self.scoring)}
        return out

    def estimator_params(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Keyword arguments of :class:`skbpr.HybridBPR`; ``overrides`` by dotted key."""
        values = {s: dict(self.sections[s]) for s in SWEEP_SECTIONS}
        for dotted, value in (overrides or {}).items():
            section, key = dotted.split(".", 1)
            values[section][key] = value
        params = {}
        for section in SWEEP_SECTIONS:
            for key, field in SCHEMA[section].items():
                if field.param is not None:
                    params[field.param] = values[section][key]
        if params["eval_every"] is None:
            params["eval_every"] = auto_eval_every(params["epochs"])
        params["eval_metric"] = f"ndcg@{values['training']['top_k']}"
        return params

    def param_grid(self) -> dict[str, list]:
        """The sweep as a GridSearchCV ``param_grid`` (HybridBPR parameter names)."""
        grid = {}
        for dotted, values in self.grid.items():
            section, key = dotted.split(".", 1)
            param = SCHEMA[section][key].param
            if param == "eval_every":  # null: about ten evaluations of the configured epochs
                values = [auto_eval_every(self["training"]["epochs"]) if v is None else v for v in values]
            grid[param] = list(values)
        return grid

    @staticmethod
    def param_key(param: str) -> str:
        """Dotted config key of a HybridBPR parameter name (the name itself if it has none)."""
        return hybrid_param_keys().get(param, param)

    def __repr__(self) -> str:
        return f"Config({self.to_dict()!r})"


def _check_estimator(params: dict[str, Any], where: str = "") -> None:
    """Let HybridBPR check its own parameters; re-raise naming the dotted key of the one that failed."""
    from skbpr.models.hybrid import HybridBPR
    from skbpr.utils.validation import InvalidParameterError

    try:
        HybridBPR(**params)._validate_params()
    except InvalidParameterError as exc:
        dotted = hybrid_param_keys().get(exc.parameter)
        raise ConfigError(f"{where}{dotted + ': ' if dotted else ''}{exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}{exc}") from None


def validate_config(raw: Any, *, base_dir: str | Path | None = None) -> Config:
    """Check a parsed configuration and fill in the defaults.

    Parameters
    ----------
    raw : mapping or None
        The parsed YAML (``None``, an empty file, gives the defaults).
    base_dir : path, optional
        Folder that a relative ``data.path`` is resolved against (the
        configuration file's folder); default the working directory.

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        Naming the dotted key and the bad value.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"the configuration must be a mapping of sections, got {shown(raw)}")
    sections: dict[str, dict[str, Any]] = {}
    grid: dict[str, list] = {}
    scoring = DEFAULT_SCORING
    for section in raw:
        if section not in SCHEMA:
            raise ConfigError(
                f"{_name(section)}: unknown section (value {shown(raw[section])})"
                f"{_suggest(str(section), list(SCHEMA))} "
                f"Valid sections: {', '.join(SCHEMA)}"
            )
    for section, fields in SCHEMA.items():
        given = raw.get(section)
        if given is None:
            given = {}
        if not isinstance(given, Mapping):
            raise _fail(section, given, "a mapping of keys to values")
        values = {key: field.default for key, field in fields.items()}
        for key, value in given.items():
            dotted = f"{section}.{key}"
            if section == "sweep" and key == "scoring":
                scoring = _check_scoring(value)
                continue
            if section == "sweep" and isinstance(key, str) and "." in key:
                grid[key] = _check_grid_entry(key, value)
                continue
            if key not in fields:
                options = list(fields) + (["scoring", "<section>.<key>"] if section == "sweep" else [])
                raise ConfigError(
                    f"{section}.{_name(key)}: unknown key (value {shown(value)})"
                    f"{_suggest(str(key), list(fields), section + '.')} "
                    f"Valid keys of {section}: {', '.join(options)}"
                )
            values[key] = _check_value(dotted, fields[key], value)
        sections[section] = values
    _check_data(sections["data"], base_dir)
    config = Config(sections, grid, scoring)
    _check_estimator(config.estimator_params())
    for dotted, values in grid.items():
        for value in values:
            _check_estimator(config.estimator_params({dotted: value}), where=f"sweep.{dotted} value {shown(value)}: ")
    return config


def _check_grid_entry(key: str, value: Any) -> list:
    section, _, name = key.partition(".")
    dotted = f"sweep.{key}"
    if section not in SWEEP_SECTIONS or name not in SCHEMA[section]:
        options = [f"{s}.{k}" for s in SWEEP_SECTIONS for k in SCHEMA[s] if SCHEMA[s][k].param or k == "top_k"]
        raise ConfigError(
            f"{dotted}: unknown key (value {shown(value)}){_suggest(key, options)} A sweep searches keys of the "
            f"{', '.join(SWEEP_SECTIONS)} sections"
        )
    field = SCHEMA[section][name]
    if field.param is None:
        raise ConfigError(f"{dotted}: {key} cannot be searched (value {shown(value)})")
    if not isinstance(value, list) or not value:
        raise _fail(dotted, value, "a non-empty list of values")
    return [_check_value(f"{dotted}[{i}]", field, v) for i, v in enumerate(value)]


def _check_data(data: dict[str, Any], base_dir: str | Path | None) -> None:
    if data["test_size"] >= 1:
        raise _fail("data.test_size", data["test_size"], "a number in (0, 1)")
    if data["source"] == "synthetic" and data["n_interactions"] > 0.2 * data["n_users"] * data["n_items"]:
        raise _fail(
            "data.n_interactions",
            data["n_interactions"],
            f"at most 20% of data.n_users * data.n_items ({int(0.2 * data['n_users'] * data['n_items'])})",
        )
    if data["source"] == "movielens":
        from skbpr.data.datasets.cache import RELEASE_NAMES

        if data["name"] not in RELEASE_NAMES:
            raise _fail("data.name", data["name"], "one of " + ", ".join(RELEASE_NAMES))
    if data["rating_col"] is not None and data["threshold"] is None and data["source"] == "file":
        raise _fail("data.threshold", None, f"a number: data.rating_col is {data['rating_col']!r}")
    if data["source"] != "file":
        return
    if data["path"] is None:
        raise _fail("data.path", None, "the events file (csv or parquet) when data.source is file")
    path = Path(data["path"]).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if path.is_dir():
        raise ConfigError(
            f"data.path: {data['path']!r} is a folder ({str(path)!r}); expected the events file in it "
            "(csv or parquet), such as data.path: events.csv"
        )
    if not path.exists():
        raise ConfigError(f"data.path: file not found: {data['path']!r} (looked for {str(path)!r})")
    data["path"] = str(path)
    if data["format"] is None:
        suffix = path.suffix.lower()
        formats = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
        if suffix not in formats and not str(path).lower().endswith(".csv.gz"):
            raise _fail("data.format", None, f"csv or parquet: cannot tell from the file name {path.name!r}")
        data["format"] = formats.get(suffix, "csv")


def parse_yaml(text: str, name: str = "<configuration>") -> Any:
    """Parse configuration text with the safe, alias-refusing loader.

    Raises
    ------
    ConfigError
        Naming ``name`` when the text is not valid YAML or uses aliases.
    """
    import yaml

    loader = alias_free_loader()(text)
    loader.name = name
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: not valid YAML: {_bounded(str(exc), 1000)}") from None
    except RecursionError:  # the loader bounds nesting; this is the last line of defence
        raise ConfigError(f"{name}: not valid YAML: nested too deeply") from None
    finally:
        loader.dispose()


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate a YAML configuration file (``None``: the embedded default).

    A pipe or other non-regular file (``--config <(generate-config)``, whose
    path is ``/dev/fd/63``) is read as well; a relative ``data.path`` in it
    starts at the working directory, as it has no folder of its own.

    Raises
    ------
    ConfigError
        Naming the file when it is missing, a folder, unreadable, not UTF-8
        text, not valid YAML, uses YAML aliases or duplicate keys or nests too
        deeply, and naming the dotted key for an invalid value.
    """
    if path is None:
        return validate_config(parse_yaml(DEFAULT_CONFIG, "the embedded default configuration"))
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{str(path)!r} is a folder; expected a YAML configuration file")
    if not path.exists():
        raise ConfigError(f"config file not found: {str(path)!r}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            "save the configuration as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration: {exc.strerror or exc}") from None
    return validate_config(parse_yaml(text, str(path)), base_dir=path.parent if path.is_file() else None)


if __name__ == "__main__":
    print(example_config(), end="")
