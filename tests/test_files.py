"""Atomic writes: the target appears whole or not at all."""

from __future__ import annotations

import pytest

from skbpr.utils.files import atomic_destination


def test_an_error_inside_the_block_leaves_the_old_file_and_no_partial(tmp_path):
    target = tmp_path / "recs.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError, match="disk full"), atomic_destination(target) as partial:
        partial.write_text("half a ta")
        raise RuntimeError("disk full")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recs.csv"]


def test_the_block_replaces_the_target_and_creates_its_folder(tmp_path):
    target = tmp_path / "new" / "model.joblib"
    with atomic_destination(target) as partial:
        assert partial.parent == target.parent and partial.name.startswith(".model.joblib.")
        partial.write_bytes(b"whole")
        assert not target.exists()
    assert target.read_bytes() == b"whole"
    assert [p.name for p in target.parent.iterdir()] == ["model.joblib"]
