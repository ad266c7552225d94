"""Smoke test of an installed skbpr wheel: a small fit runs on the compiled kernel.

Used by cibuildwheel's test-command and by .ci/wheel_check.sh (which also
runs it with no compiler on PATH and an empty HOME).
"""

import shutil
import sys

import skbpr
from skbpr import HybridBPR
from skbpr.datasets import make_interactions
from skbpr.training import native

print(f"skbpr {skbpr.__version__} from {skbpr.__file__}")
assert "site-packages" in skbpr.__file__, f"not the installed wheel: {skbpr.__file__}"
compilers = {name: shutil.which(name) for name in ("g++", "c++", "cc", "gcc", "clang++", "cl")}
print("compilers on PATH:", {k: v for k, v in compilers.items() if v} or "none")
assert native.available(), native.unavailable_reason()
from skbpr import _kernel  # noqa: E402

print(f"kernel build: {_kernel.ISA} (supported here: {_kernel.SUPPORTED_ISAS}), OpenMP: {_kernel.OPENMP}")
data = make_interactions(60, 40, 400, random_state=1)
model = HybridBPR(8, epochs=2, random_state=0, n_threads=1).fit(data)
assert model.backend_ == "native", model.backend_
assert model.history_[-1]["loss"] > 0
print("fit on the compiled kernel: ok", file=sys.stderr)
