"""``import skbpr`` and ``skbpr --help`` stay cheap: heavy dependencies load only when used."""

from __future__ import annotations

import subprocess
import sys

import pytest

import skbpr

HEAVY = ("torch", "sklearn", "mlflow", "pandas", "optuna", "matplotlib")


def _loaded_after(code: str) -> list[str]:
    """The heavy modules present in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint('loaded:', *(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    return out.rsplit("loaded:", 1)[1].split()


def test_import_skbpr_loads_no_heavy_dependency():
    assert _loaded_after("import skbpr") == []


def test_reading_the_version_loads_no_heavy_dependency():
    assert _loaded_after("import skbpr; assert skbpr.__version__") == []


def test_building_the_command_line_loads_no_heavy_dependency():
    code = "from skbpr.cli import build_parser; build_parser(); import skbpr.config"
    assert _loaded_after(code) == []


@pytest.mark.parametrize("argv", [["--help"], ["fit", "--help"], ["recommend", "--help"], ["--version"]])
def test_cli_help_loads_no_heavy_dependency(argv):
    code = f"import sys\nfrom skbpr.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass"
    assert _loaded_after(code) == []


def test_from_skbpr_import_hybridbpr_loads_torch_on_demand():
    loaded = _loaded_after("from skbpr import HybridBPR; assert HybridBPR.__name__ == 'HybridBPR'")
    assert "torch" in loaded


@pytest.mark.parametrize("name", skbpr.__all__)
def test_every_public_name_resolves(name):
    value = getattr(skbpr, name)
    if name != "__version__":
        assert value.__name__ == name
        assert value.__module__.startswith("skbpr.")
    assert name in dir(skbpr)


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        skbpr.no_such_thing  # noqa: B018


def test_config_choices_match_the_modules_that_define_them():
    """The choices the configuration reads from HybridBPR's docstring are the ones the code accepts."""
    from skbpr import config, losses, model
    from skbpr.estimator import NEGATIVE_MODES
    from skbpr.training import DEVICES, OPTIMIZERS
    from skbpr.training.engine import BACKENDS

    schema = config.SCHEMA
    assert set(schema["training"]["loss"].choices) == set(losses.LOSSES)
    assert set(schema["model"]["user_features_mode"].choices) == set(model.FEATURE_MODES)
    assert set(schema["model"]["item_features_mode"].choices) == set(model.FEATURE_MODES)
    assert set(schema["optimizer"]["name"].choices) == set(OPTIMIZERS)
    assert set(schema["training"]["backend"].choices) == set(BACKENDS)
    assert set(schema["training"]["negatives"].choices) == set(NEGATIVE_MODES)
    assert set(schema["training"]["device"].choices) == set(DEVICES)


OLD_PATHS = {
    "skbpr.estimator": "skbpr.models.hybrid",
    "skbpr.baseline": "skbpr.models.popularity",
    "skbpr.base": "skbpr.models.base",
    "skbpr.interactions": "skbpr.data.interactions",
    "skbpr.preprocessing": "skbpr.data.preprocessing",
    "skbpr.datasets.movielens": "skbpr.data.datasets.movielens",
    "skbpr.datasets.synthetic": "skbpr.data.datasets.synthetic",
    "skbpr.datasets.lastfm": "skbpr.data.datasets.lastfm",
    "skbpr.model": "skbpr.training.model",
    "skbpr.losses": "skbpr.training.losses",
    "skbpr.model_selection": "skbpr.evaluation.splitters",
    "skbpr.plotting": "skbpr.tracking.plots",
    "skbpr.config": "skbpr.cli.config",
}


@pytest.mark.parametrize(("old", "new"), sorted(OLD_PATHS.items()))
def test_import_paths_from_before_the_layout_are_the_same_modules(old, new):
    import importlib

    assert importlib.import_module(old) is importlib.import_module(new)


def test_gathering_modules_keep_their_names():
    from skbpr import callbacks, cli, datasets, tracking

    assert {"Callback", "CallbackList", "MLflowCallback", "ProgressBar"} <= set(dir(callbacks))
    assert {"load_movielens", "load_lastfm", "make_interactions"} <= set(dir(datasets))
    assert {"RunRecorder", "absolute_uri", "probe"} <= set(dir(tracking))
    assert {"main", "build_parser", "load_model"} <= set(dir(cli))
    from skbpr import metrics

    assert set(metrics.__all__) <= set(dir(metrics))


def test_a_pickle_from_before_the_layout_loads():
    import pickle

    from skbpr import HybridBPR
    from skbpr.callbacks import MLflowCallback

    model = HybridBPR(n_components=7, callbacks=[MLflowCallback(run_name="x")])
    text = pickle.dumps(model, protocol=0)
    old = text.replace(b"skbpr.models.hybrid", b"skbpr.estimator").replace(
        b"skbpr.tracking.callbacks", b"skbpr.callbacks"
    )
    assert b"skbpr.estimator\nHybridBPR" in old
    again = pickle.loads(old)
    assert type(again) is HybridBPR and again.n_components == 7
    assert type(again.callbacks[0]) is MLflowCallback and again.callbacks[0].run_name == "x"
