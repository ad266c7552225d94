"""The package's layers: each subpackage imports only those below it, and no private name crosses a module.

The order is the one ``docs/architecture.md`` draws. Every import counts,
also those inside functions (lazy imports) and under ``TYPE_CHECKING``: a
lazy import pointing upwards is still a dependency pointing the wrong way.
The modules at the top of the package (``skbpr/metrics.py``,
``skbpr/callbacks.py``, ... and ``skbpr/datasets/``) are the import paths
users had before the layout by role; they only re-export, and no layer may
import them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "skbpr"

# Lowest first: a layer may import itself and the layers before it.
LAYERS = ("utils", "data", "training", "evaluation", "models", "tracking", "distributed", "cli")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, imported names) for every ``skbpr`` import in ``path``, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and node.module
            and node.module.split(".")[0] == "skbpr"
        ):
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names if a.name.split(".")[0] == "skbpr"]
    return found


def _layer_modules() -> list[Path]:
    return sorted(p for layer in LAYERS for p in (PACKAGE / layer).rglob("*.py"))


def _layer(module: str) -> str | None:
    """The layer a dotted module name belongs to (None: the package root or a re-export module)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_subpackage_has_a_layer() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages - set(LAYERS) == {"datasets"}  # the re-export package of the old layout


@pytest.mark.parametrize("path", _layer_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path) -> None:
    own = _layer(_module_name(path))
    allowed = set(LAYERS[: LAYERS.index(own) + 1])
    wrong = []
    for line, module, names in _imports(path):
        target = _layer(module)
        if module == "skbpr":
            # the package root is every module's parent: only its version may be read from it
            if names and names != ["__version__"]:
                wrong.append(f"line {line}: from skbpr import {', '.join(names)} (import from the defining module)")
        elif target is None:
            wrong.append(f"line {line}: {module} is a re-export module of the old layout")
        elif target not in allowed:
            wrong.append(f"line {line}: {own} imports {module} ({target} is above {own})")
    assert not wrong, "\n".join(wrong)


def test_no_private_name_crosses_a_module() -> None:
    crossing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, module, names in _imports(path):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private or any(part.startswith("_") and part != "_kernel" for part in module.split(".")[1:]):
                crossing.append(f"{path.relative_to(PACKAGE)}:{line}: from {module} import {', '.join(names)}")
    assert not crossing, "\n".join(crossing)


def test_the_checks_see_a_wrong_import(tmp_path: Path) -> None:
    """The walker finds lazy imports inside functions, so the test above can fail."""
    source = tmp_path / "example.py"
    source.write_text("def f():\n    if True:\n        from skbpr.cli.tune import ConfigObjective\n")
    assert _imports(source) == [(3, "skbpr.cli.tune", ["ConfigObjective"])]
    assert _layer("skbpr.cli.tune") == "cli" and _layer("skbpr.metrics") is None
