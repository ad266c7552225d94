"""Model files: a fitted recommender with its raw ids, written atomically with joblib and read back.

``skbpr fit --save`` writes them; ``skbpr evaluate``, ``skbpr recommend`` and
:meth:`skbpr.distributed.BatchRecommender.from_file` read them. joblib files
are pickles: loading one runs code, so load only files you trust.
"""

from __future__ import annotations

import lzma
import os
import pickle
import struct
import zlib
from pathlib import Path
from typing import Any

from skbpr.utils.files import atomic_destination

__all__ = ["MODEL_FORMAT", "ModelFileError", "positives_digest", "read_model_file", "write_model_file"]

MODEL_FORMAT = "skbpr-model/1"


class ModelFileError(ValueError):
    """A file that is not a complete skbpr model file (truncated, foreign or holding something else).

    The message names the file; ``path`` holds it. The command line reports it
    with exit status 2.
    """

    def __init__(self, path: str | os.PathLike[str], detail: str) -> None:
        self.path = os.fspath(path)
        super().__init__(
            f"{self.path!r} is not a complete skbpr model file ({detail}); write it again with skbpr fit --save"
        )


def positives_digest(interactions: Any) -> str:
    """SHA-256 of the (user, item) pairs of ``interactions``' positives and of its shape.

    Two data sets with the same users, items and positives have the same
    digest, whatever the order they were given in and whatever their weights;
    a model file records the one of its training data (``training`` of
    :func:`write_model_file`).

    Parameters
    ----------
    interactions : skbpr.Interactions

    Returns
    -------
    str
        64 hexadecimal digits.

    Examples
    --------
    >>> from skbpr.datasets import make_interactions
    >>> from skbpr.models.files import positives_digest
    >>> data = make_interactions(30, 20, 100, random_state=0)
    >>> positives_digest(data) == positives_digest(make_interactions(30, 20, 100, random_state=0))
    True
    >>> positives_digest(data) == positives_digest(make_interactions(30, 20, 100, random_state=1))
    False
    """
    import hashlib

    import numpy as np

    pairs = interactions.positives.tocsr()
    pairs.sum_duplicates()
    pairs.sort_indices()
    digest = hashlib.sha256()
    for part in (np.asarray(pairs.shape), pairs.indptr, pairs.indices):
        digest.update(np.ascontiguousarray(part, dtype="<i8").tobytes())
    return digest.hexdigest()


def write_model_file(
    path: str | os.PathLike[str],
    model: Any,
    *,
    config: dict[str, Any] | None = None,
    user_ids: Any = None,
    item_ids: Any = None,
    item_titles: Any = None,
    training: dict[str, Any] | None = None,
) -> None:
    """Write ``model`` with its configuration and raw ids to ``path``, atomically.

    The bundle is written beside the target and renamed over it, so a crash
    never leaves a half-written model file.

    Parameters
    ----------
    path : str or path-like
        The file; its folder is created if missing.
    model : estimator
        A fitted recommender.
    config : dict or None, default=None
        The configuration the model was trained from, as plain data.
    user_ids, item_ids : array-like or None, default=None
        The raw ids behind the model's user and item indices.
    item_titles : array-like or None, default=None
        Item titles for display (MovieLens), in item index order.
    training : dict or None, default=None
        The fingerprint of the training data, as plain data: ``skbpr fit
        --save`` writes the configuration's ``data`` section and
        :func:`positives_digest` of the training split, which ``skbpr
        evaluate`` checks before scoring.
    """
    import joblib

    import skbpr

    bundle = {
        "format": MODEL_FORMAT,
        "skbpr_version": skbpr.__version__,
        "estimator": model,
        "config": config,
        "user_ids": user_ids,
        "item_ids": item_ids,
        "item_titles": item_titles,
        "training": training,
    }
    with atomic_destination(path) as partial:
        joblib.dump(bundle, partial)


def read_model_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A model file written by :func:`write_model_file` (or a bare pickled estimator) as a bundle dict.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    dict
        ``estimator``, ``config``, ``user_ids``, ``item_ids``,
        ``item_titles`` and ``training`` (``None`` where the file does not
        carry them).

    Raises
    ------
    FileNotFoundError
        When ``path`` is not a file.
    ModelFileError
        A ``ValueError`` naming the file when it is truncated, is not a
        joblib or pickle file, or holds no skbpr model.
    """
    import joblib

    if not Path(path).is_file():
        raise FileNotFoundError(f"model file not found: {os.fspath(path)!r}")
    try:
        obj = joblib.load(path)
    except (PermissionError, MemoryError):
        raise
    except (
        EOFError,
        pickle.UnpicklingError,
        KeyError,
        IndexError,
        struct.error,
        ValueError,
        TypeError,
        AttributeError,
        ImportError,
        OSError,
        zlib.error,
        lzma.LZMAError,
    ) as exc:
        # a truncated or foreign file: pickle reads whatever its bytes happen to say
        name = type(exc).__name__
        name = f"{type(exc).__module__}.{name}" if name == "error" else name  # struct.error, zlib.error
        detail = f"{name}: {exc}" if str(exc) else name
        raise ModelFileError(path, f"reading it failed with {detail[:200]}") from exc
    if isinstance(obj, dict) and obj.get("format") == MODEL_FORMAT:
        missing = [key for key in ("estimator", "config", "user_ids", "item_ids") if key not in obj]
        if missing:
            raise ModelFileError(path, f"the bundle lacks {', '.join(missing)}")
        return {"item_titles": None, "training": None, **obj}
    if hasattr(obj, "recommend") and hasattr(obj, "train_positives_"):
        keys = ("config", "user_ids", "item_ids", "item_titles", "training")
        return {"estimator": obj, **dict.fromkeys(keys)}
    raise ModelFileError(path, f"it holds a {type(obj).__name__}, not a fitted skbpr model")
