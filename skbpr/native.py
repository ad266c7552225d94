"""The compiled CPU training kernel: built on first use, called through ctypes.

``bpr_kernel.cpp`` runs whole epochs of mini-batches for the built-in losses
and optimisers on the CPU, with the update of the torch path in
:mod:`skbpr.training` (tests hold the two to the same weights). It is plain
C++ with OpenMP and no Python or torch headers, so a C++ compiler builds it
in about a second; the shared library is cached under
``$SKBPR_CACHE_DIR`` (default ``~/.cache/skbpr``), keyed by the source, the
compiler and the CPU. Without a compiler, training falls back to torch.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from skbpr.model import FeatureMap, HybridFactorization
from skbpr.training import RowAdagrad, RowAdam, RowSGD

SOURCE = "bpr_kernel.cpp"
LOSS_CODES = {"bpr": 0, "logistic": 1, "hinge": 2, "warp": 3}
OPTIMIZER_CODES = {RowAdagrad: 1, RowAdam: 2, RowSGD: 0}
NEGATIVE_CODES = {"uniform": 0, "implicit": 1, "mixed": 2}
FLAG_SETS = (  # tried in order; -fno-math-errno lets sqrt vectorise
    ["-O3", "-fno-math-errno", "-march=native", "-fopenmp"],
    ["-O3", "-fno-math-errno", "-fopenmp"],
    ["-O3", "-fno-math-errno", "-fopenmp-simd"],
)

_p = ctypes.c_void_p
_i = ctypes.c_int64
_f = ctypes.c_double


class _Table(ctypes.Structure):
    _fields_ = [
        ("weight", _p),
        ("state1", _p),
        ("state2", _p),
        ("step", _p),
        ("head", _p),
        ("n_rows", _i),
        ("n_cols", _i),
    ]


class _FeatureRows(ctypes.Structure):
    _fields_ = [("indptr", _p), ("indices", _p), ("data", _p)]


class _Problem(ctypes.Structure):
    _fields_ = [
        ("n_samples", _i),
        ("users", _p),
        ("items", _p),
        ("pos_indptr", _p),
        ("pos_indices", _p),
        ("neg_indptr", _p),
        ("neg_indices", _p),
        ("n_items", _i),
        ("negatives", _i),
        ("implicit_ratio", _f),
        ("user_rows", _FeatureRows),
        ("item_rows", _FeatureRows),
        ("user", _Table),
        ("item", _Table),
        ("optimizer", _i),
        ("learning_rate", _f),
        ("eps", _f),
        ("beta1", _f),
        ("beta2", _f),
        ("loss", _i),
        ("sigma", _f),
        ("margin", _f),
        ("alpha", _f),
        ("n_negatives", _i),
        ("batch_size", _i),
        ("n_threads", _i),
        ("grad_user", _p),
        ("grad_item", _p),
        ("rep_user", _p),
        ("rep_item", _p),
        ("batch_users", _p),
        ("batch_items", _p),
        ("sample_loss", _p),
    ]


def _cache_dir() -> Path:
    return Path(os.environ.get("SKBPR_CACHE_DIR") or Path.home() / ".cache" / "skbpr") / "kernels"


def _cpu_signature() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("flags", "Features", "model name")):
                    return line
    except OSError:
        pass
    return platform.processor()


def _compile(compiler: str, source: Path, target: Path) -> str | None:
    """Build ``target`` from ``source`` with the first flag set that works; the error text otherwise."""
    target.parent.mkdir(parents=True, exist_ok=True)
    error = ""
    for flags in FLAG_SETS:
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            out = Path(tmp) / target.name
            cmd = [compiler, *flags, "-std=c++17", "-shared", "-fPIC", str(source), "-o", str(out)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode == 0:
                os.replace(out, target)  # atomic: concurrent builders never see half a file
                return None
            error = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
    return error


@functools.cache
def _library() -> tuple[ctypes.CDLL | None, str]:
    if os.environ.get("SKBPR_NATIVE", "1") == "0":
        return None, "disabled by SKBPR_NATIVE=0"
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    if compiler is None:
        return None, "no C++ compiler found (set CXX or install g++)"
    source = resources.files("skbpr").joinpath(SOURCE)
    code = source.read_bytes()
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout
    except OSError as exc:
        return None, f"C++ compiler {compiler!r} cannot run: {exc}"
    key = hashlib.sha256(code + version.encode() + _cpu_signature().encode() + repr(FLAG_SETS).encode()).hexdigest()
    target = _cache_dir() / f"bpr_kernel-{key[:20]}.so"
    if not target.exists():
        try:
            with resources.as_file(source) as path:
                error = _compile(compiler, Path(path), target)
        except OSError as exc:
            error = str(exc)
        if error is not None:
            return None, f"building {SOURCE} failed: {error}"
    try:
        lib = ctypes.CDLL(str(target))
    except OSError as exc:
        return None, f"loading {target} failed: {exc}"
    lib.skbpr_train.restype = ctypes.c_double
    lib.skbpr_train.argtypes = [ctypes.POINTER(_Problem), _i, _i, ctypes.c_uint64, _i, _p]
    lib.skbpr_sample.restype = None
    lib.skbpr_sample.argtypes = [ctypes.POINTER(_Problem), _p, _i, ctypes.c_uint64, _p]
    lib.skbpr_permutation.restype = None
    lib.skbpr_permutation.argtypes = [_i, ctypes.c_uint64, _p]
    return lib, ""


def available() -> bool:
    """Whether the compiled kernel can be used on this machine (builds it on the first call)."""
    return _library()[0] is not None


def unavailable_reason() -> str:
    """Why :func:`available` is False (empty when it is True)."""
    return _library()[1]


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _long(a: np.ndarray | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.int64).contiguous()


def _int(a: np.ndarray | torch.Tensor) -> torch.Tensor:
    return _huge_copy(torch.as_tensor(np.ascontiguousarray(a), dtype=torch.int32))


_HUGE = 2 << 20
_MADV_HUGEPAGE = 14


@functools.cache
def _madvise():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.madvise
        fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int], ctypes.c_int
        return fn
    except (OSError, AttributeError):
        return None


def _huge_copy(t: torch.Tensor) -> torch.Tensor:
    """A copy of ``t`` in memory the kernel may back with transparent huge pages.

    The kernel reads these arrays at random; with 4 KiB pages nearly every
    access of a large array also misses the TLB. Linux backs a region with
    2 MiB pages on request (``madvise``), but only for pages not yet
    touched, hence the fresh copy. Small arrays and other systems get a
    plain copy.
    """
    fn = _madvise() if sys.platform.startswith("linux") else None
    nbytes = t.numel() * t.element_size()
    if fn is None or nbytes < 4 * _HUGE:
        return t.clone().contiguous()
    raw = torch.empty(nbytes + _HUGE, dtype=torch.uint8)
    offset = (-raw.data_ptr()) % _HUGE
    fn(raw.data_ptr() + offset, nbytes - nbytes % _HUGE, _MADV_HUGEPAGE)
    out = raw[offset : offset + nbytes].view(t.dtype).view(t.shape)
    out.copy_(t)
    return out


class NativeKernel:
    """Epochs of the compiled kernel over one fit's data, weights and optimiser state.

    Parameters
    ----------
    model : HybridFactorization
        Weights, updated in place (float32, CPU, contiguous).
    user_map, item_map : FeatureMap
        Feature rows of users and items (identity or CSR).
    users, items : LongTensor
        The training positives, one entry per sample.
    positives : scipy.sparse.csr_matrix
        Training positives (sorted indices), for uniform negatives.
    negatives : scipy.sparse.csr_matrix or None
        Implicit negatives, for ``implicit`` and ``mixed`` modes.
    mode : {"uniform", "implicit", "mixed"}
        Sampling mode.
    implicit_ratio : float
        Share of implicit draws in ``mixed`` mode.
    user_optimizer, item_optimizer : RowSGD
        The optimisers whose state (``sum_sq``, ``m``, ``v``, ``t``) the
        kernel advances.
    loss : {"bpr", "logistic", "hinge", "warp"}
    sigma, margin, alpha : float
    n_negatives, batch_size : int
    """

    def __init__(
        self,
        *,
        model: HybridFactorization,
        user_map: FeatureMap,
        item_map: FeatureMap,
        users: torch.Tensor,
        items: torch.Tensor,
        positives: sp.csr_matrix,
        negatives: sp.csr_matrix | None,
        mode: str,
        implicit_ratio: float,
        user_optimizer: RowSGD,
        item_optimizer: RowSGD,
        loss: str,
        sigma: float,
        margin: float,
        alpha: float,
        n_negatives: int,
        batch_size: int,
    ) -> None:
        lib, reason = _library()
        if lib is None:
            raise RuntimeError(f"the compiled training kernel is unavailable: {reason}")
        self._lib = lib
        keep: list[torch.Tensor] = []  # everything the struct points to stays alive with self

        def hold(t: torch.Tensor | None) -> int | None:
            if t is not None:
                keep.append(t)
            return _ptr(t)

        d = model.n_components
        m, b = int(n_negatives), int(batch_size)
        n = users.numel()
        self.n_samples, self.batch_size = n, b
        self.model = model
        tables = []
        for param, optimizer in ((model.user_weight, user_optimizer), (model.item_weight, item_optimizer)):
            if param.dtype != torch.float32 or param.device.type != "cpu":
                raise ValueError("the compiled kernel needs float32 CPU weights")
            # the tables and their optimiser state move to huge-page-backed copies (same values)
            param.data = _huge_copy(param.data)
            weight = optimizer.param = param.data
            for key, value in optimizer.state.items():
                if value.dim():
                    optimizer.state[key] = _huge_copy(value)
            state = optimizer.state
            first = state.get("sum_sq", state.get("m"))
            tables.append(
                _Table(
                    hold(weight),
                    hold(first),
                    hold(state.get("v")),
                    hold(state.get("t")),
                    hold(torch.full((weight.shape[0],), -1, dtype=torch.int32)),
                    weight.shape[0],
                    weight.shape[1],
                )
            )
        rows = []
        for fmap in (user_map, item_map):
            if fmap.identity:
                rows.append(_FeatureRows(None, None, None))
            else:
                rows.append(
                    _FeatureRows(hold(fmap.indptr.contiguous()), hold(fmap.indices.contiguous()), hold(fmap.data))
                )
        pos = positives.tocsr()
        neg_indptr = neg_indices = None
        if mode != "uniform" and negatives is not None and negatives.nnz:
            neg = negatives.tocsr()
            neg_indptr, neg_indices = _long(neg.indptr), _int(neg.indices)
        optimizer = user_optimizer
        eps = getattr(optimizer, "eps", 0.0)
        betas = getattr(optimizer, "betas", (0.9, 0.999))
        self._problem = _Problem(
            n,
            hold(_int(users)),
            hold(_int(items)),
            hold(_long(pos.indptr)),
            hold(_int(pos.indices)),
            hold(neg_indptr),
            hold(neg_indices),
            pos.shape[1],
            NEGATIVE_CODES[mode],
            float(implicit_ratio),
            rows[0],
            rows[1],
            tables[0],
            tables[1],
            OPTIMIZER_CODES[type(optimizer)],
            float(optimizer.lr),
            float(eps),
            float(betas[0]),
            float(betas[1]),
            LOSS_CODES[loss],
            float(sigma),
            float(margin),
            float(alpha),
            m,
            b,
            1,
            hold(torch.empty((b, d))),
            hold(torch.empty((b, m + 1, d + 1))),
            hold(torch.empty((b, d)) if not user_map.identity else None),
            hold(torch.empty((b, m + 1, d + 1)) if not item_map.identity else None),
            hold(torch.empty(b, dtype=torch.int64)),
            hold(torch.empty((b, m + 1), dtype=torch.int64)),
            hold(torch.empty(b, dtype=torch.float64)),
        )
        self._keep = keep

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
            fixed = negatives.to(torch.int64).contiguous()
        self._problem.n_threads = max(1, int(n_threads))
        return self._lib.skbpr_train(ctypes.byref(self._problem), start, count, seed % 2**64, int(shuffle), _ptr(fixed))

    def epoch(self, seed: int, *, n_threads: int, chunk: int = 1 << 20) -> float:
        """One pass over the samples in a seeded random order; the mean batch loss.

        The work is cut into chunks of whole batches so that Ctrl-C is seen
        between them.
        """
        step = max(self.batch_size, chunk // self.batch_size * self.batch_size)
        total = 0.0
        for start in range(0, self.n_samples, step):
            total += self.train(start, min(step, self.n_samples - start), seed, n_threads=n_threads)
        return total / max(self.n_samples, 1)

    def sample(self, users: np.ndarray | torch.Tensor, seed: int) -> torch.Tensor:
        """The negatives the kernel draws for ``users`` at positions ``0..len-1``, shape ``(n, M)``."""
        users_t = _long(users)
        out = torch.empty((users_t.numel(), self._problem.n_negatives), dtype=torch.int64)
        self._lib.skbpr_sample(
            ctypes.byref(self._problem), users_t.data_ptr(), users_t.numel(), seed % 2**64, out.data_ptr()
        )
        return out


def permutation(n: int, seed: int) -> np.ndarray:
    """The epoch order the kernel uses for ``n`` samples and ``seed`` (for tests and inspection)."""
    lib, reason = _library()
    if lib is None:
        raise RuntimeError(f"the compiled training kernel is unavailable: {reason}")
    out = torch.empty(n, dtype=torch.int64)
    lib.skbpr_permutation(n, seed % 2**64, out.data_ptr())
    return out.numpy()
