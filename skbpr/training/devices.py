"""Where training runs: the torch device and its thread count."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a usable device."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be one of {DEVICES} (or 'cuda:N'), got {device!r}") from exc
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be one of {DEVICES} (or 'cuda:N'), got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available; use device='cpu' or 'auto'")
    return dev


def thread_budget() -> int:
    """The threads this process may use now: torch's thread count, at most one per CPU it may run on.

    Torch's count is its OpenMP runtime's, which the compiled kernel shares:
    joblib's ``loky`` workers set it to their share of the cores (through
    ``OMP_NUM_THREADS``, or ``inner_max_num_threads``), and
    ``threadpoolctl.threadpool_limits`` lowers it.

    Examples
    --------
    >>> import torch
    >>> from skbpr.training import thread_budget
    >>> 1 <= thread_budget() <= torch.get_num_threads()
    True
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(torch.get_num_threads(), cores))


@contextlib.contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Use ``n_threads`` intra-op threads inside the block, at most :func:`thread_budget` (``None``: leave as is).

    So a fit inside a joblib worker, or under a ``threadpoolctl`` limit,
    takes its share of the cores whatever it asks for, rather than
    oversubscribing them.
    """
    if n_threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(min(n_threads, thread_budget()))
    try:
        yield
    finally:
        torch.set_num_threads(before)
