"""The machine's load beside every timing the benchmark scripts print, record and tabulate.

A fit time read on a shared machine says as much about the other jobs as
about the fit: LightFM's 2-second fit read 38 to 71 seconds at a load near
20. So every script that times something takes the load average
(``os.getloadavg``) right after each timing, prints it beside the time,
keeps it in its JSON, and marks a markdown table whose timings were taken
while the 1-minute load exceeded the number of cores the process may run on
("taken under load X > N cores"). ``docs_guard`` refuses to write such a
table (or a figure of such timings) into ``docs/``.

The scripts import this module from their own folder (``benchmarks/`` is on
``sys.path`` when a script runs; a script loaded by path inserts it first).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def cores() -> int:
    """The number of cores this process may run on (its affinity mask, else the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def machine_load() -> dict[str, float]:
    """The 1-, 5- and 15-minute load averages now and the core count they compare to."""
    one, five, fifteen = os.getloadavg()
    return {"load_1m": round(one, 2), "load_5m": round(five, 2), "load_15m": round(fifteen, 2), "cores": cores()}


def load_text(load: dict) -> str:
    """``load`` as printed beside a time: ``load 1.42/2 cores``."""
    return f"load {load['load_1m']:.2f}/{load['cores']} cores"


class Timing:
    """Wall seconds of a block (``time.perf_counter``) and the machine's load taken when it ended."""

    seconds: float
    load: dict

    def __str__(self) -> str:
        return f"{self.seconds:.2f}s ({load_text(self.load)})"


@contextlib.contextmanager
def timed() -> Iterator[Timing]:
    """Time the block; the yielded :class:`Timing` is filled in when the block ends."""
    timing = Timing()
    start = time.perf_counter()
    try:
        yield timing
    finally:
        timing.seconds = time.perf_counter() - start
        timing.load = machine_load()


def worst(loads: Iterable[dict | None]) -> dict | None:
    """The load with the highest 1-minute average relative to its core count (``None``: none recorded)."""
    known = [load for load in loads if load]
    return max(known, key=lambda load: load["load_1m"] / load["cores"]) if known else None


def overloaded(loads: Iterable[dict | None]) -> bool:
    """Whether any of ``loads`` has a 1-minute average above its core count."""
    load = worst(loads)
    return load is not None and load["load_1m"] > load["cores"]


def caption(loads: Iterable[dict | None]) -> str:
    """The line that heads a table of timings: the worst load it was taken under, and whether to trust it."""
    load = worst(loads)
    if load is None:
        return "No load recorded with these timings."
    if load["load_1m"] > load["cores"]:
        return (
            f"Taken under load {load['load_1m']:.2f} > {load['cores']} cores: the times in this table are not "
            "trustworthy; rerun on a quiet machine."
        )
    return f"Taken at a 1-minute load of at most {load['load_1m']:.2f} on {load['cores']} cores."


def mark(table: str, loads: Iterable[dict | None]) -> str:
    """``table`` headed by its :func:`caption`."""
    return f"{caption(list(loads))}\n\n{table}"


def docs_guard(path: Path | None, loads: Iterable[dict | None]) -> None:
    """Refuse (``SystemExit``) to write timings taken under a load above the core count into ``docs/``."""
    if path is None:
        return
    loads = list(loads)
    inside = Path(path).resolve().is_relative_to(DOCS)
    if inside and overloaded(loads):
        load = worst(loads)
        raise SystemExit(
            f"refusing to write {path}: its timings were taken under load {load['load_1m']:.2f} > "
            f"{load['cores']} cores; rerun on a quiet machine or write outside docs/"
        )
