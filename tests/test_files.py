"""Atomic writes: the target appears whole or not at all."""

from __future__ import annotations

import os

import pytest

from skbpr.utils.files import atomic_destination, partial_path


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


def _killed_writer(target, tmp_path):
    """A real process killed with SIGKILL in the middle of a write to ``target``: its partial file stays."""
    import signal
    import subprocess
    import sys

    script = (
        "import sys, time\n"
        "from skbpr.utils.files import atomic_destination\n"
        "with atomic_destination(sys.argv[1]) as partial:\n"
        "    partial.write_bytes(b'half a model' * 1000)\n"
        "    print(partial.name, flush=True)\n"
        "    time.sleep(60)\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        name = writer.stdout.readline().strip()
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
        writer.stdout.close()
    assert name == f".{target.name}.{writer.pid}.part"
    return tmp_path / name


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGKILL"), reason="needs SIGKILL")
def test_partial_file_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    import subprocess
    import sys

    target = tmp_path / "model.joblib"
    orphan = _killed_writer(target, tmp_path)
    assert orphan.is_file()  # what SIGKILL leaves behind
    other = tmp_path / ".other.joblib.1.part"  # another destination's partial file: not this write's business
    other.write_bytes(b"x")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        running = tmp_path / f".model.joblib.{sleeper.pid}.part"  # a writer still at work
        running.write_bytes(b"in progress")
        with atomic_destination(target) as partial:
            partial.write_bytes(b"whole")
            assert not orphan.exists()
        assert target.read_bytes() == b"whole"
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["model.joblib", other.name, running.name])
    finally:
        sleeper.kill()
        sleeper.wait(10)


def test_a_long_legal_name_gets_a_legal_partial_name(tmp_path):
    target = tmp_path / ("m" * 250)
    with atomic_destination(target) as partial:
        assert len(os.fsencode(partial.name)) <= 255 and partial == partial_path(target)
        partial.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
