"""The compiled CPU training kernel, :mod:`skbpr._kernel`, built when skbpr is installed.

The extension (C++ sources in ``src/`` of the repository, bound with
pybind11) runs whole epochs of mini-batches for the built-in losses and
optimisers on the CPU, with the update of the torch path in
:mod:`skbpr.training` (tests hold the two to the same weights). Nothing is
compiled at run time: if skbpr was installed without its extension (a
source install on a machine without a C++ compiler...), or ``SKBPR_NATIVE=0``
is set, training falls back to torch and :func:`unavailable_reason` says why.
"""

from __future__ import annotations

import functools
import importlib
import os
import time
import warnings
from types import ModuleType

import numpy as np
import torch

from skbpr.training.model import HybridFactorization
from skbpr.training.optimizers import RowAdagrad, RowAdam, RowSGD
from skbpr.training.problem import TrainingProblem
from skbpr.training.sampling import shared_distribution

LOSS_CODES = {"bpr": 0, "logistic": 1, "hinge": 2, "warp": 3, "softmax": 4}
OPTIMIZER_CODES = {RowAdagrad: 1, RowAdam: 2, RowSGD: 0}
NEGATIVE_CODES = {"uniform": 0, "implicit": 1, "mixed": 2}


@functools.cache
def _extension() -> tuple[ModuleType | None, str]:
    if os.environ.get("SKBPR_NATIVE", "1") == "0":
        return None, "disabled by SKBPR_NATIVE=0"
    try:
        return importlib.import_module("skbpr._kernel"), ""
    except ImportError as exc:
        return None, f"skbpr was installed without its compiled extension (skbpr._kernel: {exc})"


def available() -> bool:
    """Whether the compiled kernel can be used (``skbpr._kernel`` imports)."""
    return _extension()[0] is not None


def unavailable_reason() -> str:
    """Why :func:`available` is False (empty when it is True)."""
    return _extension()[1]


def _module() -> ModuleType:
    ext, reason = _extension()
    if ext is None:
        raise RuntimeError(f"the compiled training kernel is unavailable: {reason}")
    return ext


@functools.cache
def _warn_single_thread() -> None:
    warnings.warn(
        "skbpr's compiled kernel was built without OpenMP (as on macOS with Apple clang): "
        "it trains on one thread whatever n_threads asks",
        RuntimeWarning,
        stacklevel=4,
    )


def _array(a: np.ndarray | torch.Tensor, dtype: type) -> np.ndarray:
    """A C-contiguous copy of ``a`` in ``dtype`` that the kernel only reads.

    The copy is fresh memory: numpy backs large allocations with
    transparent huge pages on Linux, which saves TLB misses on the kernel's
    random reads.
    """
    if isinstance(a, torch.Tensor):
        a = a.cpu().numpy()
    return np.array(a, dtype=dtype, order="C", copy=True)


def thread_budget(requested: int) -> int:
    """The threads the kernel may run for a request of ``requested``: at most its OpenMP runtime's budget.

    The budget is ``omp_get_max_threads()`` of the runtime the kernel runs
    on, which ``OMP_NUM_THREADS`` (joblib's ``loky`` workers set it to their
    share of the cores, or to ``inner_max_num_threads``) and
    ``omp_set_num_threads`` (``threadpoolctl.threadpool_limits``, and
    torch's ``set_num_threads`` where torch shares the runtime) set, and at
    most one thread per CPU the process may run on. The deterministic
    mode's weights do not depend on the count.

    Examples
    --------
    >>> from skbpr.training import native
    >>> 1 <= native.thread_budget(64) <= 64
    True
    """
    requested = max(1, int(requested))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    ext = _extension()[0]
    runtime = int(ext.max_threads()) if ext is not None and hasattr(ext, "max_threads") else requested
    return max(1, min(requested, runtime, cores))


class ThreadTuner:
    """The team size of each kernel call, picked by measured speed: the threads asked, or one.

    When other processes hold the cores, a thread of the kernel waits in the
    OS's run queue and the others wait for it (at the deterministic mode's
    per-batch barriers, at the end of each call): two threads can then train
    several times slower than one. The tuner times every call, keeps the
    seconds per sample of both team sizes (an average of the recent calls),
    runs the faster, and tries the other again ``probe_every`` calls later,
    twice as many calls after each try that confirms the choice (up to
    ``max_interval``), so that it follows a load that comes and goes at a
    small cost on a quiet machine. The first call warms up and is not
    counted. The deterministic mode's weights do not depend on the team
    size, so the choice changes only the speed.

    Parameters
    ----------
    requested : int
        The threads asked for; 1 leaves nothing to choose.
    probe_every : int, default=8
        Calls between a change of team size and the next try of the other.
    max_interval : int, default=64
        The most calls between two tries.

    Examples
    --------
    >>> from skbpr.training.native import ThreadTuner
    >>> tuner = ThreadTuner(2)
    >>> tuner.record(tuner.next(), 1.0, 1000)  # the warm-up call: not counted
    >>> tuner.record(tuner.next(), 3e-3, 1000)  # two threads: 3 microseconds a sample
    >>> tuner.next()  # then one thread, to compare
    1
    >>> tuner.record(1, 1e-3, 1000)
    >>> tuner.next(), tuner.current  # one thread was faster: it stays until the next probe
    (1, 1)
    """

    def __init__(self, requested: int, probe_every: int = 8, max_interval: int = 64) -> None:
        self.requested = max(1, int(requested))
        self.probe_every, self.max_interval = int(probe_every), int(max_interval)
        self.interval = self.probe_every
        self.current = self.requested
        self.seconds_per_sample: dict[int, float] = {}
        self.calls = 0
        self.next_probe = 2  # right after the warm-up call and one timed call of the threads asked

    def _other(self) -> int:
        return 1 if self.current != 1 else self.requested

    def next(self) -> int:
        """The team size of the next call."""
        if self.requested == 1 or self.calls < 2:
            return self.requested
        return self._other() if self.calls >= self.next_probe else self.current

    def record(self, threads: int, seconds: float, samples: int) -> None:
        """Count a call of ``threads`` threads that took ``seconds`` for ``samples`` samples."""
        self.calls += 1
        if self.calls == 1 or samples <= 0 or threads not in (1, self.requested):
            return
        rate = seconds / samples
        before = self.seconds_per_sample.get(threads)
        self.seconds_per_sample[threads] = rate if before is None else (before + rate) / 2
        if threads == self.current or len(self.seconds_per_sample) < 2:
            return
        # a try of the other team size: switch if it was faster, and try again sooner after a switch
        best = min(self.seconds_per_sample, key=self.seconds_per_sample.__getitem__)
        self.interval = self.probe_every if best != self.current else min(2 * self.interval, self.max_interval)
        self.current = best
        self.next_probe = self.calls + self.interval


def _writable(t: torch.Tensor | None) -> np.ndarray | None:
    """The numpy view of a tensor the kernel writes into: no copy, so a wrong dtype fails in the kernel's checks."""
    return None if t is None else t.numpy()


class NativeKernel:
    """Epochs of the compiled kernel over one fit's data, weights and optimiser state.

    Parameters
    ----------
    problem : TrainingProblem
        The data and the update; its loss must be a built-in one's name.
    model : HybridFactorization
        Weights, updated in place (float32, CPU, contiguous).
    user_optimizer, item_optimizer : RowSGD
        The optimisers whose state (``sum_sq``, ``m``, ``v``, ``t``) the
        kernel advances in place.
    deterministic : bool, default=True
        ``False``: lock-free (Hogwild) updates, one sample at a time, for
        throughput over bit-identical weights (see ``src/bpr_kernel.cpp``).
    isa : str, default=""
        Which build of the kernel to run (``skbpr._kernel.SUPPORTED_ISAS``);
        empty: the best one this CPU supports.
    """

    def __init__(
        self,
        problem: TrainingProblem,
        model: HybridFactorization,
        user_optimizer: RowSGD,
        item_optimizer: RowSGD,
        *,
        deterministic: bool = True,
        isa: str = "",
    ) -> None:
        ext = _module()
        self.n_samples, self.batch_size = problem.n_samples, int(problem.batch_size)
        self.model = model
        tables = {}
        for name, param, optimizer in (
            ("user", model.user_weight, user_optimizer),
            ("item", model.item_weight, item_optimizer),
        ):
            if param.dtype != torch.float32 or param.device.type != "cpu":
                raise ValueError(
                    f"the compiled kernel needs float32 CPU weights, got {name} weights of dtype "
                    f"{param.dtype} on {param.device}"
                )
            weight = param.data
            state = optimizer.state
            tables[f"{name}_weight"] = _writable(weight)
            tables[f"{name}_state1"] = _writable(state.get("sum_sq", state.get("m")))
            tables[f"{name}_state2"] = _writable(state.get("v"))
            tables[f"{name}_step"] = _writable(state.get("t"))
        rows = {}
        for name, fmap in (("user_rows", problem.user_map), ("item_rows", problem.item_map)):
            rows[name] = None
            if not fmap.identity:
                rows[name] = (
                    _array(fmap.indptr, np.int64),
                    _array(fmap.indices, np.int64),
                    _array(fmap.data, np.float32),
                )
        pos = problem.positives.tocsr()
        neg_indptr = neg_indices = None
        if problem.sampling != "uniform" and problem.negatives is not None and problem.negatives.nnz:
            neg = problem.negatives.tocsr()
            neg_indptr, neg_indices = _array(neg.indptr, np.int64), _array(neg.indices, np.int32)
        shared_cdf = shared_log_q = None
        if problem.shared_negatives > 0:
            shared_cdf, shared_log_q = shared_distribution(pos, problem.shared_sampling)
            if problem.loss != "softmax":
                shared_log_q = None
        optimizer = user_optimizer
        betas = getattr(optimizer, "betas", (0.9, 0.999))
        self._kernel = ext.Kernel(
            users=_array(problem.users, np.int32),
            items=_array(problem.items, np.int32),
            pos_indptr=_array(pos.indptr, np.int64),
            pos_indices=_array(pos.indices, np.int32),
            neg_indptr=neg_indptr,
            neg_indices=neg_indices,
            n_items=pos.shape[1],
            negatives=NEGATIVE_CODES[problem.sampling],
            implicit_ratio=float(problem.implicit_ratio),
            n_users=pos.shape[0],
            n_item_entities=pos.shape[1],
            **rows,
            **tables,
            optimizer=OPTIMIZER_CODES[type(optimizer)],
            learning_rate=float(optimizer.lr),
            eps=float(getattr(optimizer, "eps", 0.0)),
            beta1=float(betas[0]),
            beta2=float(betas[1]),
            loss=LOSS_CODES[problem.loss],
            sigma=float(problem.sigma),
            margin=float(problem.margin),
            alpha=float(problem.alpha),
            n_negatives=int(problem.draws_per_sample),
            batch_size=self.batch_size,
            deterministic=bool(deterministic),
            isa=isa,
            weights=None if problem.weights is None else _array(problem.weights, np.float32),
            n_shared=int(problem.shared_negatives),
            shared_cdf=shared_cdf,
            shared_log_q=shared_log_q,
        )
        self.isa = self._kernel.isa
        self._openmp = bool(ext.OPENMP)

    @property
    def threads_used(self) -> int:
        """The number of threads the last :meth:`train` call ran (0 before the first).

        It may be below the ``n_threads`` asked: the deterministic mode runs
        at most one thread per 64 samples of a batch, and a build without
        OpenMP runs one.
        """
        return int(self._kernel.threads_used)

    def train(
        self,
        start: int,
        count: int,
        seed: int,
        *,
        n_threads: int,
        shuffle: bool = True,
        negatives: torch.Tensor | None = None,
    ) -> float:
        """Train on epoch positions ``[start, start + count)``; the summed batch-mean losses times batch sizes.

        ``negatives`` (``n_samples x M`` int64, by position) replaces the
        kernel's own draws, which lets tests feed both paths one batch.
        """
        if start % self.batch_size:
            raise ValueError(f"start must be a multiple of batch_size ({self.batch_size}), got {start}")
        fixed = None
        if negatives is not None:
            fixed = _array(negatives, np.int64)
        n_threads = max(1, int(n_threads))
        if n_threads > 1 and not self._openmp:
            _warn_single_thread()
        return self._kernel.train(
            start=start, count=count, seed=seed % 2**64, n_threads=n_threads, shuffle=shuffle, negatives=fixed
        )

    def epoch(self, seed: int, *, n_threads: int, chunk: int = 1 << 20, adapt: bool = True) -> float:
        """One pass over the samples in a seeded random order; the mean batch loss.

        The work is cut into chunks of whole batches so that Ctrl-C is seen
        between them. With ``adapt``, a :class:`ThreadTuner` kept across
        epochs runs each chunk on ``n_threads`` threads or on one, whichever
        it measured faster (one wins when other processes hold the cores).
        """
        step = max(self.batch_size, chunk // self.batch_size * self.batch_size)
        if not adapt or n_threads <= 1:
            tuner = None
        elif getattr(self, "_tuner", None) is None or self._tuner.requested != n_threads:
            tuner = self._tuner = ThreadTuner(n_threads)
        else:
            tuner = self._tuner
        total = 0.0
        for start in range(0, self.n_samples, step):
            count = min(step, self.n_samples - start)
            threads = n_threads if tuner is None else tuner.next()
            began = time.perf_counter()
            total += self.train(start, count, seed, n_threads=threads)
            if tuner is not None:
                tuner.record(threads, time.perf_counter() - began, count)
        return total / max(self.n_samples, 1)

    def sample(self, users: np.ndarray | torch.Tensor, seed: int) -> torch.Tensor:
        """The negatives the kernel draws for ``users`` at positions ``0..len-1``, shape ``(n, M)``."""
        return torch.from_numpy(self._kernel.sample(_array(users, np.int64), seed % 2**64))


def permutation(n: int, seed: int) -> np.ndarray:
    """The epoch order the kernel uses for ``n`` samples and ``seed`` (for tests and inspection)."""
    return _module().permutation(int(n), seed % 2**64)
