"""Files written atomically: a crash or an error never leaves a half-written file where the target was."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_destination"]


@contextlib.contextmanager
def atomic_destination(target: str | os.PathLike[str]) -> Iterator[Path]:
    """A path beside ``target`` to write to, renamed over ``target`` when the block ends without an error.

    The folder of ``target`` is created if missing. On an error the partial
    file is removed and ``target`` is left as it was.

    Parameters
    ----------
    target : str or path-like
        The file the block writes.

    Yields
    ------
    pathlib.Path
        The partial file (hidden, named after ``target`` and this process).

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
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        yield partial
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
