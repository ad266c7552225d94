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


def available_memory(device: torch.device) -> int | None:
    """Bytes that new allocations on ``device`` can take now; ``None`` when the system does not say.

    CUDA: the free memory of the device (``torch.cuda.mem_get_info``). CPU:
    ``MemAvailable`` of ``/proc/meminfo`` on Linux, else the physical memory
    (``os.sysconf``).
    """
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as lines:
            for line in lines:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


OPTIMIZER_STATES = {"sgd": 0, "adagrad": 1, "adam": 2}  # table-sized state arrays per optimiser


def table_bytes(user_rows: int, item_rows: int, n_components: int, optimizer: str) -> int:
    """Bytes of the float32 embedding tables (items: one bias column more) and their optimiser state."""
    cells = int(user_rows) * int(n_components) + int(item_rows) * (int(n_components) + 1)  # Python ints: exact
    return 4 * cells * (1 + OPTIMIZER_STATES.get(optimizer, 2))
