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
