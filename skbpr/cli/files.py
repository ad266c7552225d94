"""Model files and output destinations: the checks before any work, saving and loading models."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from skbpr.cli.config import Config
from skbpr.cli.errors import CommandLineError
from skbpr.cli.output import say
from skbpr.models.files import MODEL_FORMAT, positives_digest, read_model_file, write_model_file
from skbpr.utils.files import partial_path

__all__ = ["MODEL_FORMAT", "check_output_file", "check_outputs", "load_model", "save_model", "training_fingerprint"]


# --------------------------------------------------------------------------
# output destinations, checked before any work
# --------------------------------------------------------------------------
def _writable_folder(option: str, value: str, folder: Path) -> None:
    """``folder`` exists as a writable directory, or can be created under one."""
    existing = folder
    while not existing.exists() and not existing.is_symlink() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise CommandLineError(f"{option} {value!r}: {str(existing)!r} exists and is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CommandLineError(f"{option} {value!r}: the folder {str(existing)!r} is not writable")


def _try_partial_file(option: str, value: str, path: Path) -> None:
    """Create and remove the very partial file the write will use (:func:`skbpr.utils.files.partial_path`).

    Permission bits do not tell everything: a name the file system finds too
    long, a folder that refuses new files even to root (``/proc``), a full
    or read-only file system. Missing folders are created for the try and
    removed after it.
    """
    made: list[Path] = []
    partial = partial_path(path)
    try:
        missing = []
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            missing.append(folder)
            folder = folder.parent
        for folder in reversed(missing):
            folder.mkdir()
            made.append(folder)
        with open(partial, "ab"):
            pass
        partial.unlink()
    except OSError as exc:
        where = exc.filename if exc.filename is not None else partial
        raise CommandLineError(
            f"{option} {value!r}: cannot create the file {str(where)!r} there ({exc.strerror or exc})"
        ) from None
    finally:
        for folder in reversed(made):
            try:
                folder.rmdir()
            except OSError:
                pass


def check_output_file(option: str, value: str) -> Path:
    """The path of a file the command will write, checked before any work.

    Refuses an empty path, a path ending with a separator, an existing
    directory or other non-regular file (a device node, a FIFO), and a path
    whose folder is not, and cannot be created as, a writable directory.
    Then the partial file the write goes through is created and removed,
    with the name the write will give it, so that what only the file system
    can refuse (a name too long, ``/proc``) is refused before the work too.
    Missing folders are created when the file is written.

    Raises
    ------
    CommandLineError
        Naming ``option`` and ``value``.
    """
    if not value or value.endswith(("/", os.sep)) or (os.altsep and value.endswith(os.altsep)):
        raise CommandLineError(f"{option} {value!r}: expected a file path, got one that ends with a separator")
    path = Path(value).expanduser()
    try:
        if path.is_dir():
            raise CommandLineError(f"{option} {value!r}: it is an existing directory, not a file path")
        if path.exists() and not path.is_file():
            raise CommandLineError(f"{option} {value!r}: exists and is not a regular file (a device, FIFO or socket)")
        _writable_folder(option, value, path.parent)
    except OSError as exc:  # a name the file system refuses even to look up (too long)
        raise CommandLineError(f"{option} {value!r}: {exc.strerror or exc}") from None
    _try_partial_file(option, value, path)
    return path


def _check_output_dir(option: str, value: str, files: tuple[str, ...] = ()) -> Path:
    """A folder the command will write ``files`` into, checked before any work.

    Raises
    ------
    CommandLineError
        Naming ``option`` and ``value`` when the folder exists and is not a
        writable directory, cannot be created, or one of ``files`` in it
        cannot be written as a regular file.
    """
    if not value:
        raise CommandLineError(f"{option} {value!r}: expected a folder path")
    path = Path(value).expanduser()
    _writable_folder(option, value, path)
    for name in files:
        target = path / name
        if target.exists() and not target.is_file():
            raise CommandLineError(f"{option} {value!r}: {str(target)!r} exists and is not a regular file")
    return path


def check_outputs(args: argparse.Namespace, plot: str) -> None:
    """The ``--save`` file and ``--plot-dir`` folder of ``args``, checked before any work."""
    if args.save is not None:
        check_output_file("--save", args.save)
    if args.plot_dir is not None:
        _check_output_dir("--plot-dir", args.plot_dir, (plot,))


# --------------------------------------------------------------------------
# saving and loading
# --------------------------------------------------------------------------
def training_fingerprint(config: Config, train: Any) -> dict[str, Any]:
    """What a model file records of its training data: the ``data`` section and the training split's digest."""
    return {"data": dict(config["data"]), "train_positives_sha256": positives_digest(train)}


def save_model(path: str, model: Any, config: Config, data: Any, train: Any = None) -> None:
    """Write ``model`` with its configuration, ids and training fingerprint to ``path``.

    See :func:`skbpr.models.files.write_model_file`; ``train`` is the split
    the model was fitted on, recorded by :func:`training_fingerprint` (``None``:
    no fingerprint, and ``skbpr evaluate`` cannot check the split).
    """
    write_model_file(
        path,
        model,
        config=config.to_dict(),
        user_ids=data.user_ids,
        item_ids=data.item_ids,
        item_titles=getattr(data, "item_titles", None),  # MovieLens titles, for skbpr recommend
        training=None if train is None else training_fingerprint(config, train),
    )
    say(f"model saved to {path} (joblib: load only files you trust)")


load_model = read_model_file  # the name the commands and their users import
