"""The ``recommend`` command: top-k items for given users or all users, printed or written as a table."""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path
from typing import Any

from skbpr.cli.errors import CommandLineError
from skbpr.cli.files import check_output_file, load_model
from skbpr.cli.output import print_table, say
from skbpr.utils.files import atomic_destination

CHUNK_USERS = 65_536  # users per recommend call when writing every user's recommendations
OUTPUT_FORMATS = {".csv": "csv", ".json": "json", ".parquet": "parquet"}


def _check_table_output(value: str) -> tuple[Path, str]:
    """The ``--output`` file of ``recommend`` and its format (from the suffix), checked before any work."""
    suffix = Path(value).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise CommandLineError(
            f"--output {value!r}: expected a file name ending in {', '.join(OUTPUT_FORMATS)} "
            f"(the format follows the suffix), got {suffix or 'no suffix'!r}"
        )
    fmt = OUTPUT_FORMATS[suffix]
    if fmt == "parquet" and not any(importlib.util.find_spec(m) for m in ("pyarrow", "fastparquet")):
        raise CommandLineError(f"--output {value!r}: writing Parquet needs pyarrow (pip install pyarrow)")
    return check_output_file("--output", value), fmt


def _resolve_users(values: list[str], user_ids: Any, n_users: int, by_index: bool) -> list[int]:
    """User indices for the ``--users`` values: raw ids when the model has them, else indices."""
    if user_ids is None or by_index:
        indices, bad = [], []
        for value in values:
            try:
                index = int(value)
            except ValueError:
                index = -1
            if 0 <= index < n_users:
                indices.append(index)
            else:
                bad.append(value)
        if bad:
            why = "" if user_ids is not None else " (this model was fitted on data without user ids)"
            raise CommandLineError(f"--users: expected user indices in [0, {n_users}){why}, got {bad}")
        return indices
    import numpy as np

    from skbpr.data.events import encode_ids

    # command-line ids arrive as text: match them against the model's ids as text
    indices = encode_ids(np.asarray(values, dtype=object), np.asarray(user_ids).astype(str))
    bad = [v for v, index in zip(values, indices, strict=True) if index < 0]
    if bad:
        examples = ", ".join(repr(str(u)) for u in user_ids[:3])
        raise CommandLineError(
            f"--users: expected user ids of the model's data (such as {examples}; --index takes "
            f"indices in [0, {n_users}) instead), got {bad}"
        )
    return indices.tolist()


def _write_table(rows: list[dict[str, Any]], columns: list[str], path: Path, fmt: str) -> None:
    import pandas as pd

    frame = pd.DataFrame(rows, columns=columns)
    with atomic_destination(path) as partial:
        if fmt == "csv":
            frame.to_csv(partial, index=False)
        elif fmt == "json":
            frame.to_json(partial, orient="records", indent=2, force_ascii=False)
        else:
            frame.to_parquet(partial, index=False)


def cmd_recommend(args: argparse.Namespace) -> int:
    if (args.users is None) == (not args.all_users):
        raise CommandLineError("--users / --all-users: expected exactly one of them")
    if args.all_users and args.output is None:
        raise CommandLineError("--all-users: expected --output PATH (.parquet, .csv or .json) to write them to")
    output = _check_table_output(args.output) if args.output is not None else None
    bundle = load_model(args.model)
    model = bundle["estimator"]
    if args.k < 1 or args.k > model.n_items_:
        raise CommandLineError(f"--k: expected an integer in [1, {model.n_items_}], got {args.k}")
    if args.all_users:
        return recommend_all_users(args, bundle, *output)
    item_ids = bundle.get("item_ids")
    user_ids = bundle.get("user_ids")
    titles = bundle.get("item_titles")
    users = _resolve_users(args.users, user_ids, model.n_users_, args.index)
    ids, scores = model.recommend(users, k=args.k, exclude_seen=not args.include_seen)
    rows = []
    for user, row_ids, row_scores in zip(users, ids, scores, strict=True):
        for rank, (item, score) in enumerate(zip(row_ids, row_scores, strict=True), start=1):
            if item < 0:
                break
            row = {"user": int(user), "rank": rank, "item": int(item), "score": float(score)}
            if user_ids is not None:
                row["user_id"] = _plain(user_ids[user])
            if item_ids is not None:
                row["item_id"] = _plain(item_ids[item])
            if titles is not None:
                row["title"] = str(titles[item])
            rows.append(row)
    columns = ["user", *(["user_id"] if user_ids is not None else []), "rank", "item"]
    columns += ["item_id"] if item_ids is not None else []
    columns += ["score", *(["title"] if titles is not None else [])]
    if output is None:
        print_table(rows, columns, left=("title",))
        return 0
    path, fmt = output
    _write_table(rows, columns, path, fmt)
    say(f"{len(rows)} recommendations for {len(users)} users written to {args.output} ({fmt})")
    return 0


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value (JSON and CSV writers, printing)."""
    return value.item() if hasattr(value, "item") else value


def recommend_all_users(args: argparse.Namespace, bundle: dict[str, Any], path: Path, fmt: str) -> int:
    """Every user's top-k as ``user, item, score, rank`` rows, written chunk by chunk."""
    import numpy as np
    import pandas as pd

    from skbpr.distributed.batch import BatchRecommender

    model = bundle["estimator"]
    recommender = BatchRecommender(
        model, bundle.get("user_ids"), bundle.get("item_ids"), k=args.k, exclude_seen=not args.include_seen
    )
    start, rows = time.perf_counter(), 0
    with atomic_destination(path) as partial:
        writer, frames = None, []
        try:
            for first in range(0, model.n_users_, CHUNK_USERS):
                frame = recommender.recommend_indices(np.arange(first, min(first + CHUNK_USERS, model.n_users_)))
                rows += len(frame)
                if fmt == "parquet":
                    import pyarrow as pa
                    import pyarrow.parquet as pq

                    table = pa.Table.from_pandas(frame, preserve_index=False)
                    writer = writer or pq.ParquetWriter(partial, table.schema)
                    writer.write_table(table)
                elif fmt == "csv":
                    frame.to_csv(partial, mode="a" if first else "w", header=not first, index=False)
                else:
                    frames.append(frame)
        finally:
            if writer is not None:
                writer.close()  # the file is complete only once closed, before it is renamed
        if fmt == "json":
            pd.concat(frames, ignore_index=True).to_json(partial, orient="records", indent=2, force_ascii=False)
    seconds = time.perf_counter() - start
    say(
        f"{rows} recommendations for all {model.n_users_} users written to {args.output} ({fmt}, "
        f"columns user, item, score, rank; {seconds:.1f} s)"
    )
    return 0
