"""Build of the compiled training kernel, skbpr._kernel (metadata lives in pyproject.toml).

The kernel is plain C++ with OpenMP where the compiler has it: GCC and
Clang on Linux (``-fopenmp``), MSVC (``/openmp``); Apple's clang has no
OpenMP, so macOS builds run one thread (``skbpr._kernel.OPENMP`` says
which). Binaries are portable: the baseline instruction set of the target,
plus on x86-64 a second build of the kernel with AVX2 and FMA that the
module picks at import on CPUs that have them (see src/bpr_kernel_avx2.cpp).
"""

import sys

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup


class BuildExt(build_ext):
    def build_extensions(self):
        compiler = self.compiler.compiler_type
        for ext in self.extensions:
            if compiler == "msvc":
                ext.extra_compile_args += ["/O2", "/openmp", "/fp:precise"]
            else:
                ext.extra_compile_args += ["-O3", "-fno-math-errno"]  # lets sqrt vectorise
                if sys.platform != "darwin":
                    ext.extra_compile_args += ["-fopenmp"]
                    ext.extra_link_args += ["-fopenmp"]
                else:
                    ext.extra_compile_args += ["-fopenmp-simd"]  # the simd pragmas only, no runtime
        super().build_extensions()


setup(
    ext_modules=[
        Pybind11Extension(
            "skbpr._kernel",
            ["src/module.cpp", "src/bpr_kernel.cpp", "src/bpr_kernel_avx2.cpp"],
            include_dirs=["src"],
            depends=["src/problem.hpp"],
            cxx_std=17,
        )
    ],
    cmdclass={"build_ext": BuildExt},
)
