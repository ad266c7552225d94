"""The README's Extras section stays true to pyproject.toml, the loader and the configuration schema."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from skbpr.config import SCHEMA

ROOT = Path(__file__).resolve().parents[1]


def _section(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def test_extras_section_follows_command_line_and_tracking():
    titles = re.findall(r"^## (.+)$", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.M)
    assert titles.index("Extras") == titles.index("Command line and tracking") + 1


def test_every_extra_of_pyproject_is_named():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    named = set(re.findall(r'pip install "skbpr\[(\w+)\]"', _section("Extras")))
    assert set(extras) <= named
    assert {"tune", "bench", "test", "docs"} <= named


@pytest.mark.parametrize("key", ["data_home", "download"])
def test_named_configuration_keys_exist(key):
    text = _section("Extras")
    assert f"`data.{key}`" in text and key in SCHEMA["data"]


def test_local_movielens_example_matches_the_loader(tmp_path, monkeypatch):
    from skbpr.datasets import load_movielens

    text = _section("Extras")
    assert 'load_movielens("ml-100k", data_home="/data/movielens", download=False)' in text
    assert "SKBPR_DATA" in text
    # the behaviour described: download=False with no local copy raises OSError naming where to put it
    monkeypatch.setenv("SKBPR_DATA", str(tmp_path))
    with pytest.raises(OSError, match=re.escape(str(tmp_path))):
        load_movielens("ml-100k", download=False)
