"""Files written atomically: a crash or an error never leaves a half-written file where the target was."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_destination", "partial_path", "remove_stale_partials"]

# Longest target name (in bytes) kept whole in the partial file's name: the
# partial name adds a dot, the process id and ".part", and must stay within
# the 255 bytes most file systems allow a name.
_LONGEST_STEM = 200


def _stem(name: str) -> str:
    """``name``, or for a name too long to take the partial file's additions, a shortened one with its digest."""
    encoded = os.fsencode(name)
    if len(encoded) <= _LONGEST_STEM:
        return name
    digest = hashlib.blake2b(encoded, digest_size=4).hexdigest()
    short = encoded[: _LONGEST_STEM - len(digest) - 1].decode(errors="ignore")
    return f"{short}~{digest}"


def partial_path(target: str | os.PathLike[str], pid: int | None = None) -> Path:
    """The partial file :func:`atomic_destination` writes ``target`` through.

    Hidden, beside ``target``, named after it and the writing process:
    ``.<name>.<pid>.part``. A name longer than 200 bytes is shortened in it
    (its start and a digest of the whole), so that a legal target name never
    makes an illegal partial name.

    Parameters
    ----------
    target : str or path-like
        The file to be written.
    pid : int, optional
        The writing process; this one by default.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> from skbpr.utils.files import partial_path
    >>> partial_path("out/table.csv", pid=42).as_posix()
    'out/.table.csv.42.part'
    >>> len(partial_path("m" * 250, pid=42).name) <= 255
    True
    """
    target = Path(target)
    return target.with_name(f".{_stem(target.name)}.{os.getpid() if pid is None else int(pid)}.part")


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(target: str | os.PathLike[str]) -> list[Path]:
    """Remove the partial files of ``target`` left by writers that are no longer running.

    A writer killed outright (``SIGKILL``, power loss) cannot remove its
    ``.<name>.<pid>.part``; the next write to the same ``target`` removes
    those whose process no longer exists. Partial files of running
    processes, this one's included, are left alone. Only POSIX systems are
    checked (elsewhere nothing is removed).

    Parameters
    ----------
    target : str or path-like
        The file whose partial files to look for, beside it.

    Returns
    -------
    list of pathlib.Path
        The partial files removed.
    """
    target = Path(target)
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return []
    pattern = re.compile(rf"\.{re.escape(_stem(target.name))}\.(\d+)\.part")
    removed = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return []
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None or int(match.group(1)) == os.getpid() or _alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def atomic_destination(target: str | os.PathLike[str]) -> Iterator[Path]:
    """A path beside ``target`` to write to, renamed over ``target`` when the block ends without an error.

    The folder of ``target`` is created if missing. On an error the partial
    file is removed and ``target`` is left as it was. Partial files of
    ``target`` left by writers that were killed are removed first
    (:func:`remove_stale_partials`).

    Parameters
    ----------
    target : str or path-like
        The file the block writes.

    Yields
    ------
    pathlib.Path
        The partial file (hidden, named after ``target`` and this process:
        :func:`partial_path`).

    Examples
    --------
    >>> import os, tempfile
    >>> from pathlib import Path
    >>> from skbpr.utils.files import atomic_destination
    >>> target = Path(tempfile.mkdtemp()) / "out" / "table.csv"
    >>> with atomic_destination(target) as partial:
    ...     _ = partial.write_text("a,b\\n")
    ...     target.exists()
    False
    >>> target.read_text(), os.listdir(target.parent)
    ('a,b\\n', ['table.csv'])
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(target)
    partial = partial_path(target)
    try:
        yield partial
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
